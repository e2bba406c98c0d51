"""A synthetic FER2013-like dataset: procedural 48×48 faces whose expression is set by facial geometry.

It lets every notebook run end to end without the (non-redistributable) real data, and it is a ground-truth
instrument: planted non-faces, occlusions, flipped labels and duplicates are recorded in a ``SyntheticTruth``,
as is the facial region that carries each class's signal.

The images are drawn by ``data.synthetic_faces``. Output is deterministic for a given ``(n_rows, seed)`` on a
given platform.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_workbench import CLASS_NAMES, IMAGE_SIZE, SPLITS
from fer_workbench.data.fer_csv import fer_csv_bytes
from fer_workbench.data.synthetic_faces import (
    NONFACE_KINDS,
    OCCLUDER_KINDS,
    class_region_masks,
    draw_nonface,
    render_faces,
)
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import atomic_path, atomic_write_bytes

# FER2013's class counts (angry..neutral) and split sizes (Training, PublicTest, PrivateTest).
FER2013_CLASS_COUNTS = np.array([4953, 547, 5121, 8989, 6077, 4002, 6198])
FER2013_SPLIT_COUNTS = np.array([28709, 3589, 3589])

NONFACE_RATE = 0.005
OCCLUSION_RATE = 0.03
FLIP_RATE = 0.05
DUPLICATE_RATE = 0.015
DUPLICATE_CROSS_SPLIT = 0.35  # share of copies whose original is in another split
DUPLICATE_RELABELLED = 0.3  # share of copies that carry a different label from their original


@dataclass(eq=False)
class SyntheticTruth:
    """What was planted in a synthetic dataset; index i describes data row i of its CSV.

    ``clean_labels`` is the expression actually drawn (before any flip). Non-faces have no expression: their
    clean label is the label the row carries and ``label_flipped`` is False. ``duplicate_of`` is the row a
    copy's pixels were taken from (-1 for originals); a copy inherits its original's truth and may carry a
    different label, recorded as a flip. ``class_region_masks`` (7×48×48) are in the canonical, unposed face
    frame (pose jitter is small: ±10°, ±2.5 px, ±10% scale); ``image_region_masks`` (N×48×48) are that
    image's clean-class region after its pose transform, minus any occluder; all False for non-faces.
    """

    clean_labels: np.ndarray
    label_flipped: np.ndarray
    nonface: np.ndarray
    nonface_kind: np.ndarray
    occluded: np.ndarray
    occluder_kind: np.ndarray
    duplicate_of: np.ndarray
    class_region_masks: np.ndarray
    image_region_masks: np.ndarray
    seed: int
    n_rows: int

    _ARRAYS = ("clean_labels", "label_flipped", "nonface", "nonface_kind", "occluded", "occluder_kind",
               "duplicate_of", "class_region_masks")

    def __len__(self) -> int:
        return self.n_rows

    def save(self, path: str | os.PathLike) -> Path:
        """Write an .npz (image masks bit-packed) atomically."""
        path = Path(path)
        arrays = {name: np.asarray(getattr(self, name)) for name in self._ARRAYS}
        arrays["nonface_kind"] = arrays["nonface_kind"].astype(str)
        arrays["occluder_kind"] = arrays["occluder_kind"].astype(str)
        arrays["image_region_masks_packed"] = np.packbits(np.asarray(self.image_region_masks, bool), axis=-1)
        arrays["seed"] = np.int64(self.seed)
        arrays["n_rows"] = np.int64(self.n_rows)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a handle: np.savez appends .npz to paths
            np.savez_compressed(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SyntheticTruth:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                fields = {name: npz[name] for name in cls._ARRAYS}
                packed = npz["image_region_masks_packed"]
                seed, n_rows = int(npz["seed"]), int(npz["n_rows"])
        except FileNotFoundError:
            raise WorkbenchError(f"{path}: synthetic truth file not found") from None
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise WorkbenchError(f"{path}: not a readable synthetic truth file ({exc})") from None
        masks = np.unpackbits(packed, axis=-1, count=IMAGE_SIZE).astype(bool)
        if masks.shape != (n_rows, IMAGE_SIZE, IMAGE_SIZE) or any(
                len(fields[name]) != n_rows for name in cls._ARRAYS if name != "class_region_masks"):
            raise WorkbenchError(f"{path}: synthetic truth arrays do not match its {n_rows} rows")
        return cls(image_region_masks=masks, seed=seed, n_rows=n_rows, **fields)


# --------------------------------------------------------------------------------------------- layout


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``total`` in proportion to ``weights`` (largest remainder)."""
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def _layout(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split index per row (grouped like the real file) and labels with FER2013's shares in each split."""
    split_sizes = _apportion(n, FER2013_SPLIT_COUNTS)
    split_idx = np.repeat(np.arange(len(SPLITS)), split_sizes)
    labels = np.concatenate([rng.permutation(np.repeat(np.arange(len(CLASS_NAMES)),
                                                       _apportion(size, FER2013_CLASS_COUNTS)))
                             for size in split_sizes])
    return split_idx, labels


# --------------------------------------------------------------------------------------------- API


def _other_label(label: int, rng: np.random.Generator) -> int:
    """A wrong label, drawn with FER2013's class shares so that flips leave the label shares unchanged."""
    weights = FER2013_CLASS_COUNTS.astype(float)
    weights[label] = 0.0
    return int(rng.choice(len(weights), p=weights / weights.sum()))


def make_synthetic(n_rows: int, seed: int = 0) -> tuple[bytes, SyntheticTruth]:
    """FER2013-format CSV bytes for ``n_rows`` synthetic images, and the ground truth of what was planted."""
    if int(n_rows) != n_rows or n_rows < 1:
        raise WorkbenchError(f"synthetic dataset needs a positive whole number of rows, got {n_rows!r}")
    n = int(n_rows)
    rng = np.random.default_rng(seed)
    split_idx, slot_labels = _layout(n, rng)

    # copies: chosen first so that the other problems are planted among originals and inherited by copies
    n_copies = round(DUPLICATE_RATE * n) if n >= 20 else 0
    copies = np.sort(rng.choice(n, n_copies, replace=False))
    is_copy = np.zeros(n, bool)
    is_copy[copies] = True
    originals = np.flatnonzero(~is_copy)
    rest = rng.permutation(originals)
    n_nonface = round(NONFACE_RATE * n)
    nonface_rows = rest[:n_nonface]
    faces = rest[n_nonface:]
    occluded_rows = faces[:round(OCCLUSION_RATE * n)]
    flipped_rows = rng.choice(faces, round(FLIP_RATE * len(faces)), replace=False)

    clean = slot_labels.copy()
    labels = slot_labels.copy()
    labels[flipped_rows] = [_other_label(k, rng) for k in clean[flipped_rows]]
    nonface_kind = np.full(n, "", dtype="<U10")
    # kinds in equal shares (in shuffled order), so that even a small dataset has each one
    nonface_kind[nonface_rows] = rng.permutation(np.resize(NONFACE_KINDS, n_nonface))
    occluder_kind = np.full(n, "", dtype="<U10")
    occluder_kind[occluded_rows] = rng.permutation(np.resize(OCCLUDER_KINDS, len(occluded_rows)))

    class_masks = class_region_masks()
    images = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    regions = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), bool)
    faces_sorted = np.sort(faces)
    images[faces_sorted], regions[faces_sorted] = render_faces(clean[faces_sorted], occluder_kind[faces_sorted],
                                                                class_masks, rng)
    for row in np.sort(nonface_rows):
        images[row] = draw_nonface(nonface_kind[row], rng)

    duplicate_of = np.full(n, -1, np.int64)
    for row in copies:
        other_split = originals[split_idx[originals] != split_idx[row]]
        pool = other_split if len(other_split) and rng.random() < DUPLICATE_CROSS_SPLIT else originals
        source = int(rng.choice(pool))
        duplicate_of[row] = source
        images[row], regions[row] = images[source], regions[source]
        nonface_kind[row], occluder_kind[row] = nonface_kind[source], occluder_kind[source]
        labels[row] = labels[source]
        if rng.random() < DUPLICATE_RELABELLED:
            labels[row] = _other_label(labels[source], rng)
        clean[row] = labels[row] if nonface_kind[row] else clean[source]

    nonface = nonface_kind != ""
    truth = SyntheticTruth(
        clean_labels=clean.astype(np.int64), label_flipped=(labels != clean) & ~nonface, nonface=nonface,
        nonface_kind=nonface_kind, occluded=occluder_kind != "", occluder_kind=occluder_kind,
        duplicate_of=duplicate_of, class_region_masks=class_masks, image_region_masks=regions,
        seed=int(seed), n_rows=n)
    return fer_csv_bytes(images, labels, np.asarray(SPLITS)[split_idx]), truth


def truth_path_for(csv_path: str | os.PathLike) -> Path:
    """The ``.truth.npz`` beside a synthetic CSV."""
    csv_path = Path(csv_path)
    stem = csv_path.name.removesuffix(".gz").removesuffix(".csv")
    return csv_path.with_name(f"{stem}.truth.npz")


def load_truth_for(csv_path: str | os.PathLike) -> SyntheticTruth:
    return SyntheticTruth.load(truth_path_for(csv_path))


def write_synthetic_dataset(directory: str | os.PathLike, n_rows: int, seed: int = 0) -> Path:
    """Write ``fer-synthetic-{n_rows}-seed{seed}.csv`` and its truth into ``directory`` unless both exist."""
    csv_path = Path(directory) / f"fer-synthetic-{n_rows}-seed{seed}.csv"
    truth_path = truth_path_for(csv_path)
    if csv_path.is_file() and truth_path.is_file():
        return csv_path
    data, truth = make_synthetic(n_rows, seed)
    truth.save(truth_path)
    atomic_write_bytes(csv_path, data)
    return csv_path


def write_synthetic_ferplus_votes(csv_path: str | os.PathLike, votes_path: str | os.PathLike | None = None,
                                  agreement: float = 0.8, seed: int = 0) -> Path:
    """A FER+-format votes file (fer2013new.csv's columns, one row per data row) for a synthetic CSV, from its
    planted truth: ten annotators per face, each voting the *clean* label with probability ``agreement`` (so the
    crowd majority undoes FER2013-style label flips) and another emotion or contempt otherwise; planted non-faces
    get "not a face" votes. Default path: ``<stem>.ferplus.csv`` beside the CSV. For trying FER+ label sources
    (``--ferplus``) without the real votes."""
    from fer_workbench.data import load_dataset
    from fer_workbench.data.ferplus import EMOTION_COLUMNS, FERPLUS_TO_FER, VOTE_COLUMNS

    csv_path = Path(csv_path)
    truth, dataset = load_truth_for(csv_path), load_dataset(csv_path, progress=False)
    rng = np.random.default_rng(seed)
    column_of = {label: VOTE_COLUMNS.index(name) for name, label in FERPLUS_TO_FER.items()}
    votes = np.zeros((len(dataset), len(VOTE_COLUMNS)), np.int64)
    for row, label in enumerate(truth.clean_labels[dataset.row_ids]):
        if truth.nonface[dataset.row_ids[row]]:
            votes[row, VOTE_COLUMNS.index("NF")] = 10
            continue
        agree = rng.random(10) < agreement
        votes[row, column_of[int(label)]] += int(agree.sum())
        for column in rng.integers(0, len(EMOTION_COLUMNS), int((~agree).sum())):
            votes[row, column] += 1
    lines = ["Usage,Image name," + ",".join(VOTE_COLUMNS)]
    lines += [f"{split},fer{row:07d}.png," + ",".join(map(str, counts))
              for split, row, counts in zip(dataset.splits, dataset.row_ids, votes, strict=True)]
    target = Path(votes_path) if votes_path else csv_path.with_name(
        csv_path.name.removesuffix(".gz").removesuffix(".csv") + ".ferplus.csv")
    atomic_write_bytes(target, ("\n".join(lines) + "\n").encode())
    return target


def ensure_default_dataset(profile="smoke", seed: int = 0) -> Path:
    """The profile's embedded synthetic dataset in the default data directory, generated on first use."""
    from fer_workbench import config

    return write_synthetic_dataset(config.default_data_dir(), config.get_profile(profile).data.synthetic_rows, seed)


def region_masks_for(dataset, source_csv) -> np.ndarray | None:
    """Per-image signal-region masks for ``dataset`` (rows matched by row id, so a cleaned export works too),
    or None when ``source_csv`` is not a synthetic dataset with a truth file."""
    if not truth_path_for(source_csv).exists():
        return None
    return load_truth_for(source_csv).image_region_masks[dataset.row_ids]
