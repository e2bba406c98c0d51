"""Robustness to controlled corruptions: perturb 48×48 uint8 faces, then measure accuracy per corruption level.

Pure computation: ``perturb`` maps images to images, ``robustness_curves`` maps a prediction function (uint8
images → class probabilities) and labelled images to a table. No model, plotting or display here.

The occlusion regions are fixed boxes on FER2013's canonical crop (faces registered so the eyes sit about a
third of the way down and the mouth about four-fifths), so they cover the named part on most images but not
all: FER2013's alignment is loose.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pandas as pd

from fer_workbench.errors import WorkbenchError

GREY = 128

# (top, bottom, left, right) on the 48×48 crop, at level 1.0
REGIONS: dict[str, tuple[int, int, int, int]] = {
    "eyes": (11, 24, 5, 43),
    "nose": (20, 33, 17, 31),
    "mouth": (31, 44, 11, 37),
}

ROBUSTNESS_LEVELS: dict[str, tuple[float, ...]] = {
    "occlude_eyes": (0.0, 0.5, 1.0, 1.25),  # fraction of the region's nominal size, centred on it
    "occlude_nose": (0.0, 0.5, 1.0, 1.25),
    "occlude_mouth": (0.0, 0.5, 1.0, 1.25),
    "brightness": (-96.0, -64.0, -32.0, 0.0, 32.0, 64.0, 96.0),  # grey levels added
    "contrast": (0.25, 0.5, 0.75, 1.0, 1.5, 2.0),  # scale around each image's mean
    "rotation": (-30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0),  # degrees, counter-clockwise as displayed
    "blur": (0.0, 0.5, 1.0, 1.5, 2.0, 3.0),  # gaussian sigma in pixels
    "downscale": (1.0, 1.5, 2.0, 3.0, 4.0, 6.0),  # shrink by this factor, then back up to 48×48
}

IDENTITY: dict[str, float] = {"occlude_eyes": 0.0, "occlude_nose": 0.0, "occlude_mouth": 0.0, "brightness": 0.0,
                              "contrast": 1.0, "rotation": 0.0, "blur": 0.0, "downscale": 1.0}

KINDS: tuple[str, ...] = tuple(ROBUSTNESS_LEVELS)


def _check_kind(kind: str) -> None:
    if kind not in ROBUSTNESS_LEVELS:
        raise WorkbenchError(f"unknown perturbation {kind!r}; choose from {', '.join(KINDS)}")


def _as_batch(images) -> tuple[np.ndarray, bool]:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise WorkbenchError(f"perturb expects uint8 images, got {images.dtype}")
    if images.ndim == 2:
        return images[None], True
    if images.ndim != 3:
        raise WorkbenchError(f"perturb expects N×H×W or H×W images, got shape {images.shape}")
    return images, False


def region_box(region: str, level: float, size: int = 48) -> tuple[int, int, int, int]:
    """The (top, bottom, left, right) box of a face region scaled by ``level`` about its centre."""
    top, bottom, left, right = REGIONS[region]
    scale = size / 48
    cy, cx = (top + bottom) / 2 * scale, (left + right) / 2 * scale
    hh, hw = (bottom - top) / 2 * scale * level, (right - left) / 2 * scale * level
    def clip(v: float) -> int:
        return int(np.clip(round(v), 0, size))

    return clip(cy - hh), clip(cy + hh), clip(cx - hw), clip(cx + hw)


def _each(images: np.ndarray, fn) -> np.ndarray:
    return np.stack([fn(image) for image in images]) if len(images) else images.copy()


def perturb(images_uint8, kind: str, level: float) -> np.ndarray:
    """Corrupt uint8 face images (N×H×W or H×W): same shape, dtype uint8, values clipped to 0..255."""
    _check_kind(kind)
    level = float(level)
    batch, single = _as_batch(images_uint8)
    h, w = batch.shape[1:]
    if level == IDENTITY[kind]:
        out = batch.copy()
    elif kind.startswith("occlude_"):
        if level < 0:
            raise WorkbenchError(f"{kind}: level must be ≥ 0 (fraction of the region), got {level}")
        top, bottom, left, right = region_box(kind.removeprefix("occlude_"), level, size=h)
        out = batch.copy()
        out[:, top:bottom, left:right] = GREY
    elif kind == "brightness":
        out = np.clip(batch.astype(np.int16) + round(level), 0, 255).astype(np.uint8)
    elif kind == "contrast":
        if level < 0:
            raise WorkbenchError(f"contrast: level must be ≥ 0, got {level}")
        x = batch.astype(np.float32)
        mean = x.mean(axis=(1, 2), keepdims=True)
        out = np.clip(np.round(mean + (x - mean) * level), 0, 255).astype(np.uint8)
    elif kind == "rotation":
        matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), level, 1.0)
        out = _each(batch, lambda im: cv2.warpAffine(im, matrix, (w, h), flags=cv2.INTER_LINEAR,
                                                     borderMode=cv2.BORDER_REPLICATE))
    elif kind == "blur":
        if level < 0:
            raise WorkbenchError(f"blur: sigma must be ≥ 0, got {level}")
        out = _each(batch, lambda im: cv2.GaussianBlur(im, (0, 0), sigmaX=level, borderType=cv2.BORDER_REFLECT_101))
    elif kind == "downscale":
        if level < 1:
            raise WorkbenchError(f"downscale: factor must be ≥ 1, got {level}")
        small = (max(1, round(w / level)), max(1, round(h / level)))
        out = _each(batch, lambda im: cv2.resize(cv2.resize(im, small, interpolation=cv2.INTER_AREA), (w, h),
                                                 interpolation=cv2.INTER_LINEAR))
    else:  # pragma: no cover - _check_kind guards
        raise WorkbenchError(f"unknown perturbation {kind!r}")
    out = np.ascontiguousarray(out, dtype=np.uint8)
    return out[0] if single else out


def robustness_curves(predict_fn: Callable[[np.ndarray], np.ndarray], images, labels, kinds=None,
                      levels: dict | None = None) -> pd.DataFrame:
    """Accuracy of ``predict_fn`` (uint8 images → N×C probabilities) on ``images`` under each corruption kind
    and level. Columns: kind, level, accuracy, n, drop (accuracy minus the unperturbed accuracy)."""
    images, _ = _as_batch(images)
    labels = np.asarray(labels, dtype=np.int64)
    if len(images) != len(labels):
        raise WorkbenchError(f"{len(images)} images but {len(labels)} labels")
    if not len(images):
        raise WorkbenchError("no images to perturb (empty split?)")
    kinds = list(kinds or KINDS)
    for kind in kinds:
        _check_kind(kind)
    levels = levels or {}

    def accuracy(batch: np.ndarray) -> float:
        proba = np.asarray(predict_fn(batch))
        if proba.ndim != 2 or len(proba) != len(labels):
            raise WorkbenchError(f"predict_fn returned shape {proba.shape} for {len(labels)} images")
        return float((proba.argmax(axis=1) == labels).mean())

    clean = accuracy(images)
    rows = []
    for kind in kinds:
        for level in levels.get(kind, ROBUSTNESS_LEVELS[kind]):
            level = float(level)
            acc = clean if level == IDENTITY[kind] else accuracy(perturb(images, kind, level))
            rows.append({"kind": kind, "level": level, "accuracy": acc, "n": len(labels), "drop": acc - clean})
    return pd.DataFrame(rows, columns=["kind", "level", "accuracy", "n", "drop"])


def perturbation_examples(image, kinds=None, levels: dict | None = None) -> dict[str, tuple[np.ndarray, list]]:
    """One image under every level of each kind: ``{kind: (images, levels)}`` for a gallery."""
    image = np.asarray(image)
    out = {}
    for kind in kinds or KINDS:
        _check_kind(kind)
        kind_levels = [float(v) for v in (levels or {}).get(kind, ROBUSTNESS_LEVELS[kind])]
        out[kind] = (np.stack([perturb(image, kind, v) for v in kind_levels]), kind_levels)
    return out
