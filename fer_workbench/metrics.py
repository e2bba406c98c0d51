"""Pure computation on (true labels, class probabilities) → plain numbers and tables. No plotting here."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from sklearn import metrics as skm

from fer_workbench.errors import WorkbenchError

EPS = 1e-12


def _check(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(proba) != len(y_true):
        raise WorkbenchError(f"probabilities of shape {proba.shape} do not match {len(y_true)} labels")
    if len(y_true) == 0:
        raise WorkbenchError("no examples to evaluate (empty split?)")
    if y_true.min() < 0 or y_true.max() >= proba.shape[1]:
        raise WorkbenchError(f"labels outside 0..{proba.shape[1] - 1}: the model's class count differs from the data")
    # float32 softmax rows sum to 1 only within ~1e-6; renormalise so log-loss and ECE see exact probabilities
    proba = np.clip(proba, 0, None)
    return y_true, proba / np.maximum(proba.sum(axis=1, keepdims=True), EPS)


def expected_calibration_error(y_true, proba, n_bins: int = 15) -> float:
    """ECE: the bin-weighted gap between confidence and accuracy of the top prediction (equal-width bins)."""
    table = reliability_table(y_true, proba, n_bins)
    return float((table["count"] * (table["confidence"] - table["accuracy"]).abs()).sum() / table["count"].sum())


def reliability_table(y_true, proba, n_bins: int = 15) -> pd.DataFrame:
    """Per confidence bin: mean confidence, accuracy and count (empty bins dropped)."""
    y_true, proba = _check(y_true, proba)
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    frame = pd.DataFrame({"bin": bins, "confidence": confidence, "correct": correct})
    table = frame.groupby("bin").agg(confidence=("confidence", "mean"), accuracy=("correct", "mean"),
                                     count=("correct", "size")).reset_index()
    table["bin_low"] = table["bin"] / n_bins
    table["bin_high"] = (table["bin"] + 1) / n_bins
    return table


def fit_temperature(y_true, proba) -> float:
    """Temperature T minimising the negative log-likelihood of softmax(log p / T) (Guo et al., 2017)."""
    y_true, proba = _check(y_true, proba)
    logits = np.log(np.clip(proba, EPS, 1))

    def nll(log_t: float) -> float:
        return skm.log_loss(y_true, apply_temperature_to_logits(logits, np.exp(log_t)),
                            labels=range(proba.shape[1]))

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def apply_temperature_to_logits(logits: np.ndarray, temperature: float) -> np.ndarray:
    scaled = logits / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    return apply_temperature_to_logits(np.log(np.clip(np.asarray(proba, np.float64), EPS, 1)), temperature)


def summary_metrics(y_true, proba) -> dict:
    """Headline numbers: accuracy, balanced accuracy, macro / weighted F1, log loss, ECE, mean AP."""
    y_true, proba = _check(y_true, proba)
    y_pred = proba.argmax(axis=1)
    classes = range(proba.shape[1])
    present = np.unique(y_true)
    onehot = np.eye(proba.shape[1])[y_true]
    return {
        "n": len(y_true),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.recall_score(y_true, y_pred, labels=present, average="macro",
                                                    zero_division=0)),
        "macro_f1": float(skm.f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "weighted_f1": float(skm.f1_score(y_true, y_pred, labels=classes, average="weighted", zero_division=0)),
        "log_loss": float(skm.log_loss(y_true, np.clip(proba, EPS, 1), labels=classes)),
        "ece": expected_calibration_error(y_true, proba),
        "mean_average_precision": float(np.mean([skm.average_precision_score(onehot[:, k], proba[:, k])
                                                 for k in present])),
    }


def per_class_table(y_true, proba, class_names) -> pd.DataFrame:
    """Precision, recall, F1, support, one-vs-rest ROC AUC and average precision for each class."""
    y_true, proba = _check(y_true, proba)
    y_pred = proba.argmax(axis=1)
    labels = list(range(len(class_names)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                                         zero_division=0)
    auc, ap = [], []
    for k in labels:
        positive = y_true == k
        both = 0 < positive.sum() < len(y_true)
        auc.append(skm.roc_auc_score(positive, proba[:, k]) if both else np.nan)
        ap.append(skm.average_precision_score(positive, proba[:, k]) if positive.any() else np.nan)
    return pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support,
                         "auc": auc, "average_precision": ap}, index=pd.Index(class_names, name="class"))


def confusion(y_true, y_pred, class_names, normalise: bool = False) -> pd.DataFrame:
    """Confusion matrix, rows = true class, columns = predicted; row-normalised when asked."""
    matrix = skm.confusion_matrix(y_true, y_pred, labels=range(len(class_names))).astype(float)
    if normalise:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    frame = pd.DataFrame(matrix if normalise else matrix.astype(int), index=pd.Index(class_names, name="true"),
                         columns=pd.Index(class_names, name="predicted"))
    return frame


def _one_vs_rest(y_true, proba, class_names, curve, needs_negatives: bool) -> dict[str, pd.DataFrame]:
    """``curve(is_class, scores)`` → DataFrame for each class with positives (and negatives, when needed)."""
    y_true, proba = _check(y_true, proba)
    curves = {}
    for k, name in enumerate(class_names):
        positive = y_true == k
        if positive.any() and (positive.sum() < len(y_true) or not needs_negatives):
            curves[name] = curve(positive, proba[:, k])
    return curves


def roc_curves(y_true, proba, class_names) -> dict[str, pd.DataFrame]:
    """One-vs-rest ROC curve (fpr, tpr) per class present with both outcomes."""
    def roc(positive, scores):
        fpr, tpr, _ = skm.roc_curve(positive, scores)
        return pd.DataFrame({"fpr": fpr, "tpr": tpr})

    return _one_vs_rest(y_true, proba, class_names, roc, needs_negatives=True)


def pr_curves(y_true, proba, class_names) -> dict[str, pd.DataFrame]:
    """Precision-recall curve per class present."""
    def pr(positive, scores):
        precision, recall, _ = skm.precision_recall_curve(positive, scores)
        return pd.DataFrame({"recall": recall, "precision": precision})

    return _one_vs_rest(y_true, proba, class_names, pr, needs_negatives=False)


def top_confusions(y_true, y_pred, class_names, k: int = 6) -> pd.DataFrame:
    """The k most frequent (true, predicted) error pairs, with their share of the true class."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    wrong = y_true != y_pred
    pairs = pd.DataFrame({"true": y_true[wrong], "predicted": y_pred[wrong]}).value_counts().head(k)
    support = np.bincount(y_true, minlength=len(class_names))
    names = np.asarray(class_names)
    return pd.DataFrame({
        "true": names[[t for t, _ in pairs.index]], "predicted": names[[p for _, p in pairs.index]],
        "count": pairs.to_numpy(), "share_of_true_class": pairs.to_numpy() / support[[t for t, _ in pairs.index]],
    })


def examples_of(y_true, y_pred, true_class: int, predicted_class: int, limit: int = 12) -> np.ndarray:
    """Positions of examples with this (true, predicted) pair."""
    return np.flatnonzero((np.asarray(y_true) == true_class) & (np.asarray(y_pred) == predicted_class))[:limit]


def evaluation_report(y_true, proba, class_names, excluded_classes=(), **context) -> dict:
    """The JSON document of `fer-workbench evaluate --json`: summary, per-class table, confusion, context."""
    y_true, proba = _check(y_true, proba)
    table = per_class_table(y_true, proba, class_names)
    report = summary_metrics(y_true, proba)
    report["per_class"] = {name: {key: (None if pd.isna(v) else (int(v) if key == "support" else float(v)))
                                  for key, v in row.items()} for name, row in table.iterrows()}
    report["confusion"] = confusion(y_true, proba.argmax(axis=1), class_names).to_numpy().tolist()
    report["classes"] = list(class_names)
    report["excluded_classes"] = list(excluded_classes)
    report.update(context)
    return report


def model_comparison(labels: dict[str, np.ndarray], predictions: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """Headline metrics per (model, split): ``labels`` is {split: y_true}, ``predictions`` {model: {split: proba}}."""
    rows = {(model, split): summary_metrics(labels[split], proba)
            for model, by_split in predictions.items() for split, proba in by_split.items()}
    table = pd.DataFrame(rows).T
    table.index.names = ["model", "split"]
    return table


def calibration_comparison(y_true, before, after) -> pd.DataFrame:
    """ECE and log loss of two probability sets for the same labels (e.g. before / after temperature scaling)."""
    return pd.DataFrame({name: [expected_calibration_error(y_true, proba), summary_metrics(y_true, proba)["log_loss"]]
                         for name, proba in (("before", before), ("after", after))}, index=["ECE", "log loss"])


def shared_class_accuracy(proba, model_classes, labels, label_classes) -> dict:
    """Accuracy of a model on labels drawn from another class list, over the classes both lists have: rows whose
    label the model cannot predict are left out, and the model's answer is its most probable *shared* class (a
    FER+ model judged on FER2013's labels never answers contempt; a FER2013 model skips FER+'s contempt rows)."""
    model_classes, label_classes = list(model_classes), list(label_classes)
    proba, labels = np.asarray(proba), np.asarray(labels)
    shared = [name for name in label_classes if name in model_classes]
    if not shared:
        raise WorkbenchError(f"no classes in common between the model ({', '.join(model_classes)}) and the labels "
                             f"({', '.join(label_classes)})")
    to_shared = np.full(len(label_classes), -1)
    to_shared[[label_classes.index(name) for name in shared]] = np.arange(len(shared))
    mapped = to_shared[labels]
    keep = mapped >= 0
    choice = proba[keep][:, [model_classes.index(name) for name in shared]].argmax(axis=1)
    return {"classes": len(shared), "n": int(keep.sum()), "left_out": int((~keep).sum()),
            "accuracy": float((choice == mapped[keep]).mean()) if keep.any() else float("nan")}
