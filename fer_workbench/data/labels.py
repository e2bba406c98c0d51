"""Label sources: which labels a FER2013 dataset is trained and judged on.

* ``fer2013``: the labels the data file carries (FER2013's own seven classes for fer2013.csv).
* ``ferplus-majority``: the FER+ crowd's majority label over eight classes (FER2013's seven, then contempt).
* ``ferplus-soft``: the FER+ label distributions as training targets.

Both FER+ sources follow the FER+ paper (Barsoum et al., ICMI 2016) as its reference code (microsoft/FERPlus,
src/ferplus.py) implements it; the rules are in ``data.ferplus`` (``majority_labels``, ``soft_labels``):
single stray votes are removed first; a majority needs strictly more than half of the remaining votes, so ties
are dropped; rows whose answer is "unknown" or "not a face", and rows FER+ did not release, are dropped.
As in the reference, ``ferplus-soft`` uses distributions for Training only and judges PublicTest and PrivateTest on
the majority labels, so both FER+ sources are scored on the same test rows.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import numpy as np
import pandas as pd

from fer_workbench import CLASS_NAMES
from fer_workbench.data.dataset import Dataset
from fer_workbench.data.ferplus import (
    DROP_REASONS,
    FERPLUS_CLASS_NAMES,
    FerPlusVotes,
    load_ferplus,
    majority_labels,
    soft_labels,
)
from fer_workbench.errors import WorkbenchError

LABEL_SOURCES: tuple[str, ...] = ("fer2013", "ferplus-majority", "ferplus-soft")


def check_label_source(source: str) -> str:
    if source not in LABEL_SOURCES:
        raise WorkbenchError(f"unknown label source {source!r}; choose one of {', '.join(LABEL_SOURCES)}")
    return source


def label_source_classes(source: str) -> tuple[str, ...]:
    """The classes a label source has: FER2013's seven, or FER+'s eight (the seven, then contempt)."""
    return CLASS_NAMES if check_label_source(source) == "fer2013" else FERPLUS_CLASS_NAMES


def aligned_votes(dataset: Dataset, votes: FerPlusVotes | str | os.PathLike) -> FerPlusVotes:
    """The votes for the dataset's rows, refusing a votes file that does not describe the same rows: fewer rows,
    a different row count for a whole (unsubsetted) file, another Usage on any row, or a row with no votes."""
    votes = votes if isinstance(votes, FerPlusVotes) else load_ferplus(votes)
    whole = not dataset.skipped_rows and np.array_equal(dataset.row_ids, np.arange(len(dataset)))
    if len(dataset) and whole and len(votes) != len(dataset):
        raise WorkbenchError(f"{votes.source}: has {len(votes)} rows but {dataset.source} has {len(dataset)}; "
                             f"the votes file must have one row per data row, in the same order")
    aligned = votes.align(dataset)
    empty = np.flatnonzero(aligned.votes.sum(axis=1) == 0)
    if len(empty):
        first = int(aligned.row_ids[empty[0]])
        raise WorkbenchError(f"{votes.source}: {len(empty)} rows have no votes at all (first: data row {first}, "
                             f"line {first + 2}); is this a FER+ votes file?")
    return aligned


def ferplus_labels(votes: FerPlusVotes, source: str, splits: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(label or negative drop code per row, soft targets or None) under a FER+ ``source`` for aligned ``votes``.

    ``ferplus-soft``: distributions (and their top class) on Training, majority labels as one-hot elsewhere."""
    released = ~votes.dropped
    majority = majority_labels(votes.votes, released)
    if check_label_source(source) == "ferplus-majority":
        return majority, None
    if source != "ferplus-soft":
        raise WorkbenchError(f"{source!r} is not a FER+ label source")
    distributions, soft_top = soft_labels(votes.votes, released)
    training = np.asarray(splits) == "Training"
    labels = np.where(training, soft_top, majority)
    one_hot = np.eye(len(FERPLUS_CLASS_NAMES), dtype=np.float32)[np.maximum(majority, 0)] * (majority >= 0)[:, None]
    return labels, np.where(training[:, None], distributions, one_hot).astype(np.float32)


def with_label_source(dataset: Dataset, votes: FerPlusVotes | str | os.PathLike | None,
                      source: str = "fer2013") -> Dataset:
    """``dataset`` relabelled by a label source (see the module's docstring); rows without a label under it dropped.

    "fer2013" returns ``dataset`` itself (``votes`` may be None). A FER+ source needs FER2013-labelled data and its
    FER+ votes file (``FerPlusVotes`` or a path to fer2013new.csv) aligned row for row. The result has the eight
    FER+ classes, ``label_source`` set, and a checksum of its own (data, votes and source), so caches and model
    cards keyed by checksum never mix label sources.
    """
    check_label_source(source)
    if source == "fer2013":
        return dataset
    if votes is None:
        raise WorkbenchError(f"label source {source} needs the FER+ votes file (fer2013new.csv; --ferplus VOTES)")
    if dataset.label_source != "fer2013" or tuple(dataset.class_names) != CLASS_NAMES:
        raise WorkbenchError(f"{dataset.source}: FER+ labels replace FER2013's; this dataset has "
                             f"{dataset.label_source} labels over {', '.join(dataset.class_names)}")
    aligned = aligned_votes(dataset, votes)
    labels, targets = ferplus_labels(aligned, source, dataset.splits)
    kept = labels >= 0
    checksum = hashlib.sha256(f"{dataset.checksum}:{aligned.checksum}:{source}".encode()).hexdigest()
    part = dataset.subset(kept)
    return replace(part, labels=labels[kept], class_names=FERPLUS_CLASS_NAMES, label_source=source,
                   soft_labels=None if targets is None else targets[kept], checksum=checksum)


def label_source_counts(dataset: Dataset, votes: FerPlusVotes | str | os.PathLike, source: str) -> pd.DataFrame:
    """Per split: rows, rows kept under a FER+ ``source``, and rows dropped for each reason (``DROP_REASONS``)."""
    aligned = aligned_votes(dataset, votes)
    labels, _ = ferplus_labels(aligned, source, dataset.splits)
    frame = pd.DataFrame({"split": dataset.splits, "code": labels})
    rows = []
    for split in dataset.split_names():
        codes = frame.loc[frame["split"] == split, "code"].to_numpy()
        rows.append({"split": split, "rows": len(codes), "kept": int((codes >= 0).sum()),
                     **{f"dropped: {reason}": int((codes == code).sum()) for code, reason in DROP_REASONS.items()}})
    table = pd.DataFrame(rows).set_index("split")
    table.loc["total"] = table.sum(axis=0)
    return table
