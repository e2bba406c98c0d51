"""One place that scores a model on a dataset: quick accuracy, the card's report, the ``evaluate --json`` document."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from fer_workbench.cleaning.duplicates import leakage_free_indices
from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError
from fer_workbench.inference import predict_proba


def evaluate(model: keras.Model, images: np.ndarray, labels: np.ndarray, tta: bool = False,
             preprocessing: str | None = None) -> dict:
    """Accuracy, mean log loss and count on uint8 images."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return {"accuracy": None, "loss": None, "n": 0}
    probs = predict_proba(model, images, tta=tta, preprocessing=preprocessing)
    loss = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)).mean()
    return {"accuracy": float((probs.argmax(1) == labels).mean()), "loss": float(loss), "n": len(labels)}


def model_report(model: keras.Model, dataset: Dataset, tta: bool = False) -> dict:
    """What a model card reports: PublicTest accuracy; PrivateTest summary metrics and per-class precision /
    recall / F1 (with and without ten-crop TTA when asked), and accuracy on the leakage-free PrivateTest."""
    from fer_workbench.metrics import per_class_table, summary_metrics

    report: dict = {"tta": tta}
    if "PublicTest" in dataset.split_names():
        val = dataset.split("PublicTest")
        report["PublicTest"] = evaluate(model, val.images, val.labels)
    if "PrivateTest" not in dataset.split_names():
        return report
    test = dataset.split("PrivateTest")
    clean = np.isin(np.flatnonzero(dataset.splits == "PrivateTest"), leakage_free_indices(dataset))
    for key, use_tta in (("PrivateTest", False), ("PrivateTest_tta", True)):
        if use_tta and not tta:
            continue
        probs = predict_proba(model, test.images, tta=use_tta)
        entry = summary_metrics(test.labels, probs)
        entry["per_class"] = per_class_table(test.labels, probs, dataset.class_names)[
            ["precision", "recall", "f1", "support"]].to_dict(orient="index")
        if clean.any():
            entry["leakage_free_accuracy"] = float((probs[clean].argmax(1) == test.labels[clean]).mean())
            entry["leakage_free_n"] = int(clean.sum())
        report[key] = entry
    return report



def evaluation_document(model: keras.Model, model_path, dataset: Dataset, split: str | None = "PrivateTest",
                        tta: bool = False) -> dict:
    """What `fer-workbench evaluate --json` prints: metrics.evaluation_report on one split (all rows when the
    dataset has no such split, e.g. a flat folder), with the model, data checksum and excluded classes."""
    from fer_workbench.metrics import evaluation_report

    n_out = int(model.output_shape[-1])
    if n_out != len(dataset.class_names):
        raise WorkbenchError(f"{model_path}: the model predicts {n_out} classes but {dataset.source} has "
                             f"{len(dataset.class_names)}")
    part = dataset.split(split) if split else dataset
    if len(part) == 0:
        raise WorkbenchError(f"{dataset.source}: split {split!r} is empty")
    probs = predict_proba(model, part.images, tta=tta)
    return evaluation_report(part.labels, probs, dataset.class_names, excluded_classes=dataset.skipped_classes,
                             model=str(model_path), data_checksum=dataset.checksum, data_source=dataset.source,
                             split=split or "all", tta=tta)


def report_table(metrics: dict) -> pd.DataFrame:
    """The evaluation part of ``TrainingResult.metrics`` / a model card as one row per evaluated split."""
    rows = []
    for key, entry in metrics.items():
        if isinstance(entry, dict) and "accuracy" in entry:
            rows.append({"evaluated on": key, "n": entry.get("n"), "accuracy": entry.get("accuracy"),
                         "macro_f1": entry.get("macro_f1"), "leakage_free_accuracy": entry.get("leakage_free_accuracy"),
                         "log_loss": entry.get("log_loss", entry.get("loss")), "ece": entry.get("ece")})
    return pd.DataFrame(rows).set_index("evaluated on")
