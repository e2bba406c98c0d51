"""Exact and near-duplicate images, and the train/test leakage they cause."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fer_workbench.data.dataset import Dataset


def exact_duplicate_groups(images: np.ndarray) -> np.ndarray:
    """Group id per image (-1 for unique images); byte-identical images share an id."""
    flat = np.ascontiguousarray(images).reshape(len(images), -1)
    # A void view makes each row one hashable scalar, so np.unique compares whole images at C speed.
    rows = flat.view(np.dtype((np.void, flat.shape[1])))[:, 0]
    _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
    duplicated = counts[inverse] > 1
    group = np.full(len(images), -1, dtype=np.int64)
    # Renumber groups 0..G-1 in order of first appearance so ids are stable across loads.
    first_seen = {}
    for i in np.flatnonzero(duplicated):
        group[i] = first_seen.setdefault(int(inverse[i]), len(first_seen))
    return group


def exact_duplicate_table(dataset: Dataset) -> pd.DataFrame:
    """One row per exact-duplicate group: size, splits spanned, labels, and whether it leaks across splits."""
    group = exact_duplicate_groups(dataset.images)
    member = group >= 0
    frame = pd.DataFrame({"group": group[member], "row_id": dataset.row_ids[member],
                          "split": dataset.splits[member], "label": dataset.labels[member]})
    names = np.asarray(dataset.class_names)
    table = frame.groupby("group").agg(
        size=("row_id", "size"),
        row_ids=("row_id", lambda s: " ".join(map(str, s))),
        splits=("split", lambda s: ",".join(sorted(set(s)))),
        labels=("label", lambda s: ",".join(names[sorted(set(s))])),
        n_splits=("split", "nunique"),
        n_labels=("label", "nunique"),
    )
    table["cross_split"] = table["n_splits"] > 1
    table["label_conflict"] = table["n_labels"] > 1
    return table.drop(columns=["n_splits", "n_labels"]).reset_index()
