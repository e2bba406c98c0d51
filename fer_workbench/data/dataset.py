"""The one dataset type every loader returns and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from fer_workbench import CLASS_NAMES, IMAGE_SIZE, SPLITS
from fer_workbench.errors import WorkbenchError


@dataclass(frozen=True, eq=False)
class Dataset:
    """uint8 images (N×48×48), integer labels, split names and a stable row id per image.

    ``row_ids`` are the 0-based data-row numbers of the source file (or positions in sorted path order for an
    image folder), so they stay the same across loads of the same source and survive subsetting.
    ``label_source`` says where the labels come from: "fer2013" (the labels the file carries) or a FER+ source
    (``data.labels.with_label_source``); ``soft_labels`` (N×classes, rows summing to 1) are the training targets
    when the source gives distributions rather than one class per image.
    """

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    row_ids: np.ndarray
    class_names: tuple[str, ...] = CLASS_NAMES
    source: str = ""
    checksum: str = ""
    paths: np.ndarray | None = None
    skipped_rows: tuple = field(default=())  # (row description, reason) pairs the loader was told to skip
    skipped_classes: tuple = field(default=())  # source classes with no FER2013 counterpart (e.g. contempt)
    label_source: str = "fer2013"
    soft_labels: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise WorkbenchError(f"{self.source or 'dataset'}: images must be uint8 N×48×48, got "
                                 f"{self.images.dtype} {self.images.shape}")
        for name in ("labels", "splits", "row_ids"):
            if len(getattr(self, name)) != n:
                raise WorkbenchError(f"{self.source or 'dataset'}: {name} has {len(getattr(self, name))} "
                                     f"entries for {n} images")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise WorkbenchError(f"{self.source or 'dataset'}: labels outside 0..{len(self.class_names) - 1}")
        if self.soft_labels is not None and self.soft_labels.shape != (n, len(self.class_names)):
            raise WorkbenchError(f"{self.source or 'dataset'}: soft labels of shape {self.soft_labels.shape} for "
                                 f"{n} images of {len(self.class_names)} classes")

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return f"Dataset({len(self)} images, source={self.source!r}, checksum={self.checksum[:12]!r})"

    def subset(self, selector) -> Dataset:
        """Rows chosen by a boolean mask or an index array; row ids are kept."""
        selector = np.asarray(selector)
        return replace(self, images=self.images[selector], labels=self.labels[selector],
                       splits=self.splits[selector], row_ids=self.row_ids[selector],
                       paths=None if self.paths is None else self.paths[selector],
                       soft_labels=None if self.soft_labels is None else self.soft_labels[selector])

    def targets(self) -> np.ndarray:
        """Training targets, float32 N×classes: the soft labels when the label source gives them, else one-hot."""
        if self.soft_labels is not None:
            return self.soft_labels.astype(np.float32)
        return np.eye(len(self.class_names), dtype=np.float32)[self.labels]

    def sample(self, n: int | None, seed: int = 0) -> Dataset:
        """At most ``n`` rows drawn reproducibly for ``seed``, in their original order (all rows when ``n`` is
        None, 0 or not smaller than the dataset)."""
        return self.subset(self.sample_positions(n, seed))

    def sample_positions(self, n: int | None, seed: int = 0) -> np.ndarray:
        """The positions ``sample`` takes."""
        if not n or n >= len(self):
            return np.arange(len(self))
        return np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))

    def split(self, name: str) -> Dataset:
        if name not in self.split_names():
            raise WorkbenchError(f"{self.source or 'dataset'}: no split {name!r}; it has "
                                 f"{', '.join(self.split_names()) or 'no rows'}")
        return self.subset(self.splits == name)

    def split_names(self) -> list[str]:
        present = set(np.unique(self.splits).tolist())
        return [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))

    def counts(self) -> pd.DataFrame:
        """Images per split (rows) × class (columns), with totals."""
        table = pd.crosstab(pd.Categorical(self.splits, categories=self.split_names()),
                            pd.Categorical(self.labels, categories=range(len(self.class_names))),
                            dropna=False)
        table.index.name, table.columns.name = "split", "class"
        table.columns = list(self.class_names)
        table["total"] = table.sum(axis=1)
        table.loc["total"] = table.sum(axis=0)
        return table

    def to_frame(self) -> pd.DataFrame:
        """One row per image without pixels: row id, split, label index and name."""
        frame = pd.DataFrame({"row_id": self.row_ids, "split": self.splits, "label": self.labels,
                              "label_name": np.asarray(self.class_names)[self.labels]})
        if self.paths is not None:
            frame["path"] = self.paths
        return frame
