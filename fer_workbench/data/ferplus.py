"""FER+ crowd votes (Microsoft's relabelling of FER2013), aligned to FER2013 by row order."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_workbench import SPLITS
from fer_workbench.data.dataset import Dataset
from fer_workbench.data.fer_csv import MAX_CSV_BYTES
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import read_bounded, sha256_bytes

VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                "unknown", "NF")
EMOTION_COLUMNS = VOTE_COLUMNS[:8]
# FER+ emotion column → FER2013 class index; contempt has no FER2013 class.
FERPLUS_TO_FER = {"neutral": 6, "happiness": 3, "surprise": 5, "sadness": 4, "anger": 0, "disgust": 1, "fear": 2}


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
