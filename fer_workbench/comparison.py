"""Model comparison and ablations: many trainings under one protocol (fit Training, select PublicTest, report
PrivateTest), summarised in one table."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fer_workbench.cleaning.duplicates import leakage_free_mask
from fer_workbench.config import Profile, get_profile
from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError
from fer_workbench.inference import predict_proba
from fer_workbench.metrics import summary_metrics
from fer_workbench.models import classical
from fer_workbench.training import TrainingResult, resolve_config, train

ABLATIONS: dict[str, tuple] = {
    "augment": (0.0, 1.0),
    "preprocessing": ("none", "histeq", "clahe", "denoise", "edges"),
}

# Keras trainings finished in this process, by what determines them (data, resolved settings, seed, profile):
# the ablations' default-valued runs are the comparison's own model, so they are trained once.
_FINISHED: dict[tuple, TrainingResult] = {}


def _keras_run(dataset: Dataset, model: str, out_dir: Path, profile: Profile, seed: int,
               **overrides) -> TrainingResult:
    """``train`` with the profile's comparison epochs; a run equal to one finished earlier is that run."""
    if profile.compare.epochs and "epochs" not in overrides:
        overrides["epochs"] = profile.compare.epochs
    config = resolve_config(model, profile, **overrides)
    key = (dataset.checksum, seed, profile, repr(config))
    if key not in _FINISHED or not _FINISHED[key].model_path.is_file():
        _FINISHED[key] = train(dataset, config, out_dir, profile=profile, seed=seed, verbose=0)
    return _FINISHED[key]


def _row(name: str, kind: str, probs: np.ndarray, test: Dataset, clean: np.ndarray, seconds: float,
         params: int | None, **extra) -> dict:
    summary = summary_metrics(test.labels, probs)
    return {"model": name, "kind": kind, "accuracy": summary["accuracy"], "macro_f1": summary["macro_f1"],
            "leakage_free_accuracy": float((probs[clean].argmax(1) == test.labels[clean]).mean())
            if clean.any() else np.nan,
            "train_seconds": seconds, "params": params, **extra}


def _test_split(dataset: Dataset) -> tuple[Dataset, np.ndarray]:
    if "PrivateTest" not in dataset.split_names():
        raise WorkbenchError(f"{dataset.source}: no PrivateTest split to report on")
    clean = leakage_free_mask(dataset, "PrivateTest")
    return dataset.split("PrivateTest"), clean


def compare_models(dataset: Dataset, out_dir: str | os.PathLike, names=None, profile: Profile | str = "smoke",
                   seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Train each model (default: the profile's ``compare.models``; Keras ones for the profile's
    ``compare.epochs``, classical ones on ``compare.classical_rows`` Training rows) and report PrivateTest
    accuracy, macro-F1, leakage-free accuracy, training time and size."""
    profile = get_profile(profile)
    names = profile.compare.models if names is None else names
    test, clean = _test_split(dataset)
    rows = []
    for name in tqdm(list(names), desc="models", disable=not progress):
        if name in classical.CLASSICAL_MODELS:
            train_set = dataset.split("Training")
            take = train_set.sample_positions(profile.compare.classical_rows, seed)
            start = time.perf_counter()
            model = classical.fit_classical(name, train_set.images[take], train_set.labels[take], seed=seed)
            seconds = time.perf_counter() - start
            probs = classical.classical_proba(model, test.images, len(dataset.class_names))
            rows.append(_row(name, "classical", probs, test, clean, seconds, None, train_rows=len(take)))
        else:
            result = _keras_run(dataset, name, Path(out_dir) / name, profile, seed)
            probs = predict_proba(result.model, test.images)
            rows.append(_row(name, "keras", probs, test, clean, result.seconds, result.model.count_params(),
                             train_rows=int((dataset.splits == "Training").sum()),
                             pretrained=getattr(result.model, "fer_pretrained", None)))
    return pd.DataFrame(rows)


def ablation(dataset: Dataset, setting: str, out_dir: str | os.PathLike, values=None, model: str = "vgg",
             profile: Profile | str = "smoke", seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Train ``model`` once per value of one training setting (e.g. augment, preprocessing), all else equal.

    The default values (the profile's ``compare.ablation_values``, else ``ABLATIONS``) always include the profile's
    own, so the table has its reference run; that run is the comparison's model when ``compare_models`` trained it in
    this process (not trained again).
    """
    profile = get_profile(profile)
    defaults = {**ABLATIONS, **dict(profile.compare.ablation_values)}
    if setting not in defaults and values is None:
        raise WorkbenchError(f"no default values for ablation of {setting!r}; pass values (known: "
                             f"{', '.join(defaults)})")
    if values is None:
        values = list(defaults[setting])
        reference = getattr(resolve_config(model, profile), setting)
        if reference not in values:
            values = sorted([*values, reference]) if isinstance(reference, float) else [reference, *values]
    test, clean = _test_split(dataset)
    rows = []
    for value in tqdm(list(values), desc=f"ablation: {setting}", disable=not progress):
        result = _keras_run(dataset, model, Path(out_dir) / f"{setting}={value}", profile, seed, **{setting: value})
        probs = predict_proba(result.model, test.images)
        rows.append(_row(model, "keras", probs, test, clean, result.seconds, result.model.count_params(),
                         **{setting: value}))
    return pd.DataFrame(rows)
