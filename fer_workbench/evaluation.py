"""The one way a model is scored on a dataset: ``evaluate_split``; cards, ``evaluate --json`` and training call it."""

from __future__ import annotations

import keras
import pandas as pd

from fer_workbench.cleaning.duplicates import leakage_free_mask
from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError
from fer_workbench.inference import predict_proba
from fer_workbench.metrics import evaluation_report
from fer_workbench.models.io import model_class_names


def evaluate_split(model: keras.Model, dataset: Dataset, split: str | None = "PrivateTest", tta: bool = False,
                   model_path=None) -> dict:
    """``metrics.evaluation_report`` of ``model`` on ``split`` (every row when None, e.g. a flat folder) — summary,
    per-class table, confusion — with the data's checksum and excluded classes, and, for a test split of a dataset
    that has Training, accuracy on its leakage-free subset (no byte-identical copy in Training). ``model_path``
    names the model in the document. The model's classes (``models.io.model_class_names``) must be the data's."""
    n_out = int(model.output_shape[-1])
    if n_out != len(dataset.class_names):
        raise WorkbenchError(f"{model_path or 'model'}: predicts {n_out} classes but {dataset.source} has "
                             f"{len(dataset.class_names)}")
    classes = model_class_names(model)
    if tuple(classes) != tuple(dataset.class_names):
        raise WorkbenchError(f"{model_path or 'model'}: predicts {', '.join(classes)} but {dataset.source} "
                             f"({dataset.label_source} labels) has {', '.join(dataset.class_names)}")
    part = dataset.split(split) if split else dataset
    if len(part) == 0:
        raise WorkbenchError(f"{dataset.source}: split {split!r} is empty")
    probs = predict_proba(model, part.images, tta=tta)
    report = evaluation_report(part.labels, probs, dataset.class_names, excluded_classes=dataset.skipped_classes,
                               data_checksum=dataset.checksum, data_source=dataset.source, split=split or "all",
                               tta=tta, model=None if model_path is None else str(model_path))
    report["label_source"] = dataset.label_source
    if split and split != "Training" and "Training" in dataset.split_names():
        free = leakage_free_mask(dataset, split)
        report["leakage_free_n"] = int(free.sum())
        report["leakage_free_accuracy"] = (float((probs[free].argmax(1) == part.labels[free]).mean())
                                           if free.any() else None)
    return report


def card_metrics(model: keras.Model, dataset: Dataset, tta: bool = False) -> dict:
    """What a trained model's card records: PublicTest (selection) and PrivateTest (reported once), each
    ``evaluate_split``'s document, plus PrivateTest with ten-crop TTA when asked, and the temperature fitted on
    PublicTest with PrivateTest's calibration before and after it (``calibration``)."""
    report: dict = {"tta": tta}
    for key, split, use_tta in (("PublicTest", "PublicTest", False), ("PrivateTest", "PrivateTest", False),
                                ("PrivateTest_tta", "PrivateTest", True)):
        if split in dataset.split_names() and (tta or not use_tta):
            report[key] = evaluate_split(model, dataset, split, tta=use_tta)
    if {"PublicTest", "PrivateTest"} <= set(dataset.split_names()):
        report["calibration"] = temperature_calibration(model, dataset)
    return report


def temperature_calibration(model: keras.Model, dataset: Dataset) -> dict:
    """The temperature that minimises PublicTest's log loss (selection data only), and PrivateTest's ECE and log
    loss before and after dividing the logits by it (single crop). A model's ``predict`` outputs stay
    uncalibrated; consumers that want calibrated scores apply this temperature."""
    from fer_workbench.metrics import apply_temperature, calibration_comparison, fit_temperature

    public, private = dataset.split("PublicTest"), dataset.split("PrivateTest")
    temperature = fit_temperature(public.labels, predict_proba(model, public.images))
    proba = predict_proba(model, private.images)
    table = calibration_comparison(private.labels, proba, apply_temperature(proba, temperature))
    return {"temperature": temperature, "fitted_on": "PublicTest", "evaluated_on": "PrivateTest",
            "ece_before": float(table.loc["ECE", "before"]), "ece_after": float(table.loc["ECE", "after"]),
            "log_loss_before": float(table.loc["log loss", "before"]),
            "log_loss_after": float(table.loc["log loss", "after"])}


def report_table(metrics: dict) -> pd.DataFrame:
    """``card_metrics``' documents (a ``TrainingResult.metrics`` or a card's) as one row per evaluated split."""
    rows = []
    for key, entry in metrics.items():
        if isinstance(entry, dict) and "accuracy" in entry:
            rows.append({"evaluated on": key, "n": entry.get("n"), "accuracy": entry.get("accuracy"),
                         "macro_f1": entry.get("macro_f1"), "leakage_free_accuracy": entry.get("leakage_free_accuracy"),
                         "log_loss": entry.get("log_loss", entry.get("loss")), "ece": entry.get("ece")})
    return pd.DataFrame(rows).set_index("evaluated on")
