"""Dataset statistics for exploration and `fer-workbench data summary`: numbers only, no figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from fer_workbench.cleaning.duplicates import exact_duplicate_groups, exact_duplicate_table, split_membership
from fer_workbench.cleaning.imbalance import imbalance_report
from fer_workbench.cleaning.nonface import BLANK_STD  # pixel std below this: a (near-)blank frame
from fer_workbench.data.dataset import Dataset
from fer_workbench.data.ferplus import FerPlusVotes
from fer_workbench.files import atomic_write_text
from fer_workbench.provenance import run_metadata


def class_balance(dataset: Dataset) -> pd.DataFrame:
    """Per class: count, share, imbalance ratio (largest class / this class) and the effective number of
    samples that class-balanced weighting in cleaning and training uses."""
    report = imbalance_report(dataset.labels, dataset.class_names).set_index("class")
    ratio = report["ratio_to_max"].to_numpy()
    report["imbalance_ratio"] = np.divide(1.0, ratio, out=np.full(len(ratio), np.inf), where=ratio > 0)
    return report[["count", "share", "imbalance_ratio", "effective_samples"]]


def image_statistics(dataset: Dataset) -> pd.DataFrame:
    """Per image: mean brightness, contrast (pixel std), dynamic range and blank flag, with split and class."""
    flat = dataset.images.reshape(len(dataset), -1).astype(np.float32)
    frame = dataset.to_frame()
    frame["brightness"] = flat.mean(axis=1)
    frame["contrast"] = flat.std(axis=1)
    frame["dynamic_range"] = flat.max(axis=1) - flat.min(axis=1)
    frame["blank"] = frame["contrast"] < BLANK_STD
    return frame


def mean_faces(dataset: Dataset) -> np.ndarray:
    """Mean image per class (classes × 48 × 48, float32; NaN for an absent class)."""
    means = np.full((len(dataset.class_names), *dataset.images.shape[1:]), np.nan, np.float32)
    for k in range(len(dataset.class_names)):
        members = dataset.images[dataset.labels == k]
        if len(members):
            means[k] = members.mean(axis=0, dtype=np.float64)
    return means


def duplicate_summary(dataset: Dataset) -> dict:
    """Exact (byte-identical) duplicate groups, within and across splits, and label conflicts."""
    table = exact_duplicate_table(dataset)
    rows = int(table["size"].sum())
    return {
        "groups": len(table),
        "rows_in_groups": rows,
        "redundant_rows": rows - len(table),
        "cross_split_groups": int(table["cross_split"].sum()),
        "cross_split_rows": int(table["size"][table["cross_split"].astype(bool)].sum()),
        "label_conflict_groups": int(table["label_conflict"].sum()),
    }


def leakage_matrix(dataset: Dataset) -> pd.DataFrame:
    """Rows of each split (rows) that have a byte-identical copy in another split (columns)."""
    splits = dataset.split_names()
    reached = split_membership(exact_duplicate_groups(dataset.images), dataset.splits, splits)
    counts = [[int(reached[b][dataset.splits == a].sum()) if a != b else 0 for b in splits] for a in splits]
    return pd.DataFrame(counts, index=pd.Index(splits, name="split"), columns=splits)


def ferplus_agreement(dataset: Dataset, votes: FerPlusVotes) -> pd.DataFrame:
    """Original FER2013 label (rows) × FER+ majority label (columns, plus contempt / dropped), in counts."""
    aligned = votes.align(dataset)
    majority = aligned.majority_label
    columns = [*dataset.class_names, "contempt", "dropped by FER+"]
    column_of = np.where(aligned.dropped, len(columns) - 1,
                         np.where(majority >= 0, majority, len(columns) - 2))
    table = pd.crosstab(pd.Categorical(np.asarray(dataset.class_names)[dataset.labels], dataset.class_names),
                        pd.Categorical(np.asarray(columns)[column_of], columns), dropna=False)
    table.index.name, table.columns.name = "FER2013 label", "FER+ majority"
    return table


def ferplus_summary(dataset: Dataset, votes: FerPlusVotes) -> dict:
    aligned = votes.align(dataset)
    kept = ~aligned.dropped
    majority = aligned.majority_label
    return {
        "rows": len(aligned),
        "dropped_by_ferplus": int(aligned.dropped.sum()),
        "nonface_majority": int((aligned.nonface_votes > aligned.votes.sum(axis=1) / 2).sum()),
        "disagreement_rate_kept": float(((majority != dataset.labels) & kept).sum() / max(kept.sum(), 1)),
        "tied_votes": int((aligned.tied & kept).sum()),
    }


def dataset_summary(dataset: Dataset) -> dict:
    """Counts per split × class, duplicates, blank images and checksum, as plain JSON-ready values."""
    counts = dataset.counts()
    contrast = dataset.images.reshape(len(dataset), -1).std(axis=1)
    return {
        "source": dataset.source,
        "checksum": dataset.checksum,
        "rows": len(dataset),
        "classes": list(dataset.class_names),
        "counts": {split: {c: int(v) for c, v in row.items()} for split, row in counts.iterrows()},
        "blank_images": int((contrast < BLANK_STD).sum()),
        "duplicates": duplicate_summary(dataset),
        "skipped_rows": len(dataset.skipped_rows),
    }


def select_page(dataset: Dataset, class_name: str | None = None, split: str | None = None, page: int = 0,
                per_page: int = 40) -> tuple[np.ndarray, int]:
    """Positions of the images on one page of a class/split filter (None = all), and the page count."""
    mask = np.ones(len(dataset), bool)
    if class_name is not None:
        mask &= dataset.labels == list(dataset.class_names).index(class_name)
    if split is not None:
        mask &= dataset.splits == split
    positions = np.flatnonzero(mask)
    pages = max(1, int(np.ceil(len(positions) / per_page)))
    page = min(max(page, 0), pages - 1)
    return positions[page * per_page:(page + 1) * per_page], pages


def class_samples(dataset: Dataset, per_class: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A reproducible random sample of images for each class: ``{class name: images}``."""
    rng = np.random.default_rng(seed)
    samples = {}
    for k, name in enumerate(dataset.class_names):
        members = np.flatnonzero(dataset.labels == k)
        chosen = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False))
        samples[name] = dataset.images[chosen]
    return samples


def blank_images(dataset: Dataset) -> Dataset:
    """The (near-)blank frames: pixel std below BLANK_STD."""
    return dataset.subset(dataset.images.reshape(len(dataset), -1).std(axis=1) < BLANK_STD)


def write_summary(dataset: Dataset, output_dir, profile: str, seed: int, name: str = "explore_summary.json"):
    """Write ``dataset_summary`` with run metadata (seed, profile, versions, commit) as JSON; returns the path."""
    record = {"metadata": run_metadata(profile=profile, seed=seed, data_checksum=dataset.checksum),
              "summary": dataset_summary(dataset)}
    return atomic_write_text(Path(output_dir) / name, json.dumps(record, indent=2))
