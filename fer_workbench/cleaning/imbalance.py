"""Class imbalance: report and the sampling strategies training consumes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fer_workbench.errors import WorkbenchError

STRATEGIES = ("none", "class_weights", "oversample", "augment_oversample")


def imbalance_report(labels: np.ndarray, class_names, beta: float = 0.999) -> pd.DataFrame:
    """Per class: count, share, ratio to the largest class, effective number of samples (Cui et al. 2019)."""
    counts = np.bincount(labels, minlength=len(class_names)).astype(float)
    # Effective number of samples: (1 − β^n) / (1 − β).
    effective = (1 - beta ** counts) / (1 - beta)
    return pd.DataFrame({"class": list(class_names), "count": counts.astype(int),
                         "share": counts / max(counts.sum(), 1), "ratio_to_max": counts / max(counts.max(), 1),
                         "effective_samples": effective})


def balancing_plan(labels: np.ndarray, n_classes: int, strategy: str = "class_weights", seed: int = 0,
                   beta: float = 0.999) -> dict:
    """What training should do: ``class_weights`` (C,), ``sample_weights`` (N,), ``indices`` (resampled row
    positions) and ``augment`` (bool per index: apply augmentation to this repeated copy)."""
    if strategy not in STRATEGIES:
        raise WorkbenchError(f"unknown imbalance strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    if (counts > 0).sum() < 2:
        raise WorkbenchError("imbalance strategies need at least two classes with images")
    present = counts > 0
    # Class-balanced weights from the effective number of samples, normalised to mean 1 over present classes.
    effective = (1 - beta ** counts) / (1 - beta)
    weights = np.where(present, 1.0 / np.where(present, effective, 1.0), 0.0)
    weights *= present.sum() / weights.sum()
    indices = np.arange(len(labels))
    augment = np.zeros(len(labels), bool)
    if strategy in ("oversample", "augment_oversample"):
        rng = np.random.default_rng(seed)
        target = int(counts.max())
        extra = [rng.choice(np.flatnonzero(labels == c), target - int(counts[c]), replace=True)
                 for c in range(n_classes) if 0 < counts[c] < target]
        extra = np.concatenate(extra) if extra else np.zeros(0, np.int64)
        indices = np.concatenate([indices, extra])
        # Repeated copies get augmentation so the model sees new views, not exact repeats.
        augment = np.concatenate([augment, np.full(len(extra), strategy == "augment_oversample")])
    class_weights = weights if strategy == "class_weights" else np.where(present, 1.0, 0.0)
    return {"strategy": strategy, "class_weights": class_weights, "sample_weights": class_weights[labels],
            "indices": indices, "augment": augment}
