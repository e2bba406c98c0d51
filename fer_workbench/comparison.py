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


def _rows_trained(dataset: Dataset, profile: Profile) -> int:
    """The Training rows a Keras run of ``profile`` fits on: all, or its ``train.rows`` subsample."""
    available = int((dataset.splits == "Training").sum())
    return min(available, profile.train.rows) if profile.train.rows else available


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
            take = classical.stratified_positions(train_set.labels, profile.compare.classical_rows, seed)
            start = time.perf_counter()
            model = classical.fit_classical(name, train_set.images[take], train_set.labels[take], seed=seed)
            seconds = time.perf_counter() - start
            probs = classical.classical_proba(model, test.images, len(dataset.class_names))
            rows.append(_row(name, "classical", probs, test, clean, seconds, None, train_rows=len(take)))
        else:
            result = _keras_run(dataset, name, Path(out_dir) / name, profile, seed)
            probs = predict_proba(result.model, test.images)
            rows.append(_row(name, "keras", probs, test, clean, result.seconds, result.model.count_params(),
                             train_rows=_rows_trained(dataset, profile),
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


def label_source_comparison(dataset: Dataset, votes, out_dir: str | os.PathLike, sources=None, model: str = "vgg",
                            profile: Profile | str = "smoke", seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """The same network and budget trained on each label source (default: every one, ``data.labels``), each judged
    on PublicTest and PrivateTest of its own labels, and all on common ground: the FER+ majority over the classes
    every source has (FER2013's seven; a FER+ model's contempt answers are set aside, see
    ``metrics.shared_class_accuracy``). ``dataset`` carries FER2013's labels (cleaned Training allowed)."""
    from fer_workbench.data.labels import LABEL_SOURCES, with_label_source
    from fer_workbench.metrics import shared_class_accuracy

    profile = get_profile(profile)
    sources = list(LABEL_SOURCES if sources is None else sources)
    common = with_label_source(dataset, votes, "ferplus-majority")
    rows = []
    for source in tqdm(sources, desc="label sources", disable=not progress):
        data = with_label_source(dataset, votes, source)
        result = _keras_run(data, model, Path(out_dir) / f"labels={source}", profile, seed)
        row = {"labels": source, "classes": len(data.class_names),
               "train_rows": _rows_trained(data, profile)}
        for split in ("PublicTest", "PrivateTest"):
            part = data.split(split)
            row[f"{split} accuracy"] = float((predict_proba(result.model, part.images).argmax(1) == part.labels).mean())
            row[f"{split} n"] = len(part)
        shared = common.split("PrivateTest")
        proba = predict_proba(result.model, shared.images)[:, [data.class_names.index(n) for n in dataset.class_names]]
        scores = shared_class_accuracy(proba, dataset.class_names, shared.labels, common.class_names)
        row["PrivateTest FER+ majority, shared classes"] = scores["accuracy"]
        row["shared n"] = scores["n"]
        rows.append({**row, "train_seconds": result.seconds})
    return pd.DataFrame(rows)
