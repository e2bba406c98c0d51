"""FER+ crowd votes (Microsoft's relabelling of FER2013), aligned to FER2013 by row order, and the FER+ paper's rules
that turn ten votes per image into a majority label or a label distribution (Barsoum et al., ICMI 2016)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_workbench import CLASS_NAMES, SPLITS
from fer_workbench.data.dataset import Dataset
from fer_workbench.data.fer_csv import MAX_CSV_BYTES
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import read_bounded, sha256_bytes

VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                "unknown", "NF")
EMOTION_COLUMNS = VOTE_COLUMNS[:8]
# FER+ emotion column → FER2013 class index; contempt has no FER2013 class.
FERPLUS_TO_FER = {"neutral": 6, "happiness": 3, "surprise": 5, "sadness": 4, "anger": 0, "disgust": 1, "fear": 2}

# The eight FER+ classes: FER2013's seven in FER2013's order and names, then contempt. A class index below 7 means
# the same expression under either label source, so 7-class and 8-class predictions compare without remapping.
FERPLUS_CLASS_NAMES: tuple[str, ...] = (*CLASS_NAMES, "contempt")
# FER+ emotion column (VOTE_COLUMNS order) → FERPLUS_CLASS_NAMES index.
COLUMN_CLASS = np.array([FERPLUS_TO_FER.get(c, FERPLUS_CLASS_NAMES.index("contempt")) for c in EMOTION_COLUMNS])

# Why a row has no FER+ label (negative codes in place of a class index).
NOT_IN_FERPLUS = -1  # FER+ released no image for the row (no image name): not part of FER+
NO_MAJORITY = -2  # the votes settle on no class (majority: no strict majority, ties included; soft: too spread)
NOT_AN_EMOTION = -3  # the crowd's answer is "unknown" or "not a face"
DROP_REASONS = {NOT_IN_FERPLUS: "not in FER+", NO_MAJORITY: "no majority", NOT_AN_EMOTION: "unknown or not a face"}


def without_stray_votes(votes: np.ndarray) -> np.ndarray:
    """The votes with every single vote removed: a class (emotion, unknown or NF) that got exactly one of the ten
    votes gets none. The FER+ paper's outlier removal, done before every rule (reference code: src/ferplus.py,
    ``_process_data``, "remove emotions with a single vote")."""
    votes = np.array(votes, dtype=np.int64)
    votes[votes <= 1] = 0
    return votes


def majority_labels(votes: np.ndarray, released: np.ndarray | None = None) -> np.ndarray:
    """FER+ majority label per row (FERPLUS_CLASS_NAMES index), or a negative DROP_REASONS code.

    After ``without_stray_votes``, the most-voted column must hold strictly more than half of the remaining votes
    (unknown and NF votes included); so a tie for the top is never a majority and the row is dropped, like a row
    whose majority is "unknown" or "not a face" (reference ``_process_data`` majority mode:
    ``maxval > 0.5*sum_list``, else unknown). ``released`` (default: all) marks rows FER+ published.
    """
    votes = without_stray_votes(votes)
    total, top, top_votes = votes.sum(axis=1), votes.argmax(axis=1), votes.max(axis=1)
    majority = 2 * top_votes > total  # strict; never true when no votes are left
    labels = np.full(len(votes), NO_MAJORITY, dtype=np.int64)
    emotion = majority & (top < len(EMOTION_COLUMNS))
    labels[emotion] = COLUMN_CLASS[top[emotion]]
    labels[majority & ~emotion] = NOT_AN_EMOTION
    if released is not None:
        labels[~np.asarray(released, bool)] = NOT_IN_FERPLUS
    return labels


def _taken_votes(votes: np.ndarray) -> np.ndarray | None:
    """One row's votes (stray votes removed) kept for its distribution, or None when the row is discarded.

    Columns are taken most-voted first, all columns tied at a count together (in VOTE_COLUMNS order), until the
    taken votes reach 75 % of the votes or three columns are taken. "unknown"/"NF" end the search: taken when they
    come first, left out when an emotion is already taken. The row is discarded when the taken votes are not more
    than half of all votes or more than three columns tie their way in (reference ``_process_data``, probability
    and crossentropy modes).
    """
    total = votes.sum()
    remaining = votes.astype(np.float64)
    taken = np.zeros_like(remaining)
    n_taken = 0
    searching = True
    while searching and taken.sum() < 0.75 * total and n_taken < 3:
        top = remaining.max()
        for column in np.flatnonzero(remaining == top):
            remaining[column] = 0
            if column >= len(EMOTION_COLUMNS):
                searching = False
                if taken.sum() > 0:
                    break
            taken[column] = top
            n_taken += 1
            if not searching:
                break
    if taken.sum() <= 0.5 * total or n_taken > 3:
        return None
    return taken


def soft_labels(votes: np.ndarray, released: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """FER+ label distributions: (N×8 float32 in FERPLUS_CLASS_NAMES order, rows summing to 1; hard label per row).

    The hard label is the distribution's most probable class (the first in FER+ column order on a tie, as the
    reference's ``np.argmax``) or a negative DROP_REASONS code, in which case the row's distribution is all zero:
    discarded by ``_taken_votes``, or its top is "unknown"/"not a face" (reference ``load_folders`` keeps a row only
    when the argmax is one of the eight emotions). Stray single votes are removed first (``without_stray_votes``).
    """
    votes = without_stray_votes(votes)
    n_emotions = len(EMOTION_COLUMNS)
    distributions = np.zeros((len(votes), len(FERPLUS_CLASS_NAMES)), dtype=np.float32)
    labels = np.full(len(votes), NO_MAJORITY, dtype=np.int64)
    for row, counts in enumerate(votes):
        taken = _taken_votes(counts)
        if taken is None:
            continue
        if taken.argmax() >= n_emotions:
            labels[row] = NOT_AN_EMOTION
            continue
        distributions[row, COLUMN_CLASS] = taken[:n_emotions] / taken[:n_emotions].sum()
        labels[row] = COLUMN_CLASS[taken[:n_emotions].argmax()]
    if released is not None:
        released = np.asarray(released, bool)
        labels[~released] = NOT_IN_FERPLUS
        distributions[~released] = 0
    return distributions, labels


@dataclass(frozen=True, eq=False)
class FerPlusVotes:
    """Vote counts (N×10, columns VOTE_COLUMNS) per FER2013 row, with FER+'s usage and image name."""

    votes: np.ndarray
    usage: np.ndarray
    image_names: np.ndarray
    row_ids: np.ndarray
    source: str = ""
    checksum: str = ""

    def __len__(self) -> int:
        return len(self.votes)

    @property
    def dropped(self) -> np.ndarray:
        """Rows FER+ excluded from its release (no image name): mostly non-faces."""
        return self.image_names == ""

    @property
    def nonface_votes(self) -> np.ndarray:
        return self.votes[:, VOTE_COLUMNS.index("NF")]

    @property
    def unknown_votes(self) -> np.ndarray:
        return self.votes[:, VOTE_COLUMNS.index("unknown")]

    @property
    def majority_label(self) -> np.ndarray:
        """FER2013 class index of the most-voted emotion (ties go to the first FER+ column, as plain argmax
        does; this reproduces the 37% disagreement quoted for FER2013); -1 for contempt or dropped rows."""
        mapping = np.array([FERPLUS_TO_FER.get(c, -1) for c in EMOTION_COLUMNS])
        label = mapping[self.votes[:, : len(EMOTION_COLUMNS)].argmax(axis=1)]
        label[self.dropped] = -1
        return label

    @property
    def tied(self) -> np.ndarray:
        """Rows whose top emotion vote count is shared by several emotions."""
        emotion = self.votes[:, : len(EMOTION_COLUMNS)]
        return (emotion == emotion.max(axis=1, keepdims=True)).sum(axis=1) > 1

    def align(self, dataset: Dataset) -> FerPlusVotes:
        """The votes for exactly the dataset's rows (by row id), checking the two files describe the same rows."""
        if len(dataset) and dataset.row_ids.max() >= len(self):
            raise WorkbenchError(f"{self.source}: has {len(self)} rows but {dataset.source} has row id "
                                 f"{int(dataset.row_ids.max())}; is this the FER+ file for that dataset?")
        aligned = FerPlusVotes(votes=self.votes[dataset.row_ids], usage=self.usage[dataset.row_ids],
                               image_names=self.image_names[dataset.row_ids], row_ids=dataset.row_ids,
                               source=self.source, checksum=self.checksum)
        mismatch = np.flatnonzero(aligned.usage != dataset.splits)
        if len(mismatch):
            first = int(dataset.row_ids[mismatch[0]])
            raise WorkbenchError(f"{self.source}: Usage disagrees with {dataset.source} on {len(mismatch)} rows "
                                 f"(first: data row {first}, line {first + 2}); the files are not aligned")
        return aligned

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.votes, columns=list(VOTE_COLUMNS))
        frame.insert(0, "row_id", self.row_ids)
        frame["dropped"] = self.dropped
        frame["majority_label"] = self.majority_label
        return frame


def load_ferplus(path: str | os.PathLike) -> FerPlusVotes:
    """Read `fer2013new.csv` (FER+ votes in FER2013 row order); ``~`` is the home folder, as in ``data_path``."""
    path = Path(path).expanduser()
    raw = read_bounded(path, MAX_CSV_BYTES)  # refuses devices such as /dev/zero; never reads without limit
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype={"Image name": str}, keep_default_na=False,
                            compression="infer" if path.suffix != ".gz" else "gzip")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"{path}: not a readable FER+ CSV ({str(exc).splitlines()[0]})") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in ("Usage", "Image name", *VOTE_COLUMNS) if c not in frame.columns]
    if missing:
        raise WorkbenchError(f"{path}: missing FER+ column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    votes = frame[list(VOTE_COLUMNS)]
    numeric = votes.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna().any(axis=1) | (numeric < 0).any(axis=1)
    if bad.any():
        lines = (np.flatnonzero(bad.to_numpy()) + 2)[:10].tolist()
        raise WorkbenchError(f"{path}: {int(bad.sum())} rows with missing or non-numeric votes (lines {lines})")
    usage = frame["Usage"].astype(str).str.strip().to_numpy()
    unknown = ~np.isin(usage, SPLITS)
    if unknown.any():
        first = int(np.flatnonzero(unknown)[0])
        raise WorkbenchError(f"{path}: unknown Usage {usage[first]!r} on line {first + 2}")
    return FerPlusVotes(votes=numeric.to_numpy(np.int64), usage=usage,
                        image_names=frame["Image name"].astype(str).str.strip().to_numpy(),
                        row_ids=np.arange(len(frame)), source=str(path), checksum=sha256_bytes(raw))
