"""The model boundary: preprocessing variants on uint8 images and the one normalisation every model sees.

Training, evaluation, saliency and prediction all go through ``prepare_images`` (variant, then
``to_model_input``), so a model never sees pixels prepared differently from how it was trained.
"""

from __future__ import annotations

import cv2
import numpy as np

from fer_workbench import IMAGE_SIZE
from fer_workbench.errors import WorkbenchError

PREPROCESSING_VARIANTS: tuple[str, ...] = ("none", "histeq", "clahe", "denoise", "edges")


def _as_batch(images: np.ndarray) -> tuple[np.ndarray, bool]:
    images = np.asarray(images)
    single = images.ndim == 2
    batch = images[None] if single else images
    if batch.ndim == 4 and batch.shape[-1] == 1:
        batch = batch[..., 0]
    if batch.ndim != 3 or batch.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise WorkbenchError(f"expected 48×48 images (N×48×48 or 48×48), got shape {images.shape}")
    return batch, single


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 N×48×48 (or one 48×48) → float32 N×48×48×1 in [0, 1]: the shared normalisation."""
    batch, _ = _as_batch(images)
    if batch.dtype != np.uint8:
        raise WorkbenchError(f"expected uint8 images, got {batch.dtype}")
    return (batch.astype(np.float32) * np.float32(1 / 255))[..., None]


def _histeq(image: np.ndarray) -> np.ndarray:
    return cv2.equalizeHist(image)


_CLAHE = None


def _clahe(image: np.ndarray) -> np.ndarray:
    global _CLAHE
    if _CLAHE is None:
        # 4×4 tiles of 12 px: 8×8 tiles (the usual default) are too small on a 48 px face to hold a histogram.
        _CLAHE = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))
    return _CLAHE.apply(image)


def _denoise(image: np.ndarray) -> np.ndarray:
    # Edge-preserving bilateral filter: ~30 µs per face, where non-local means takes ~3 ms (100 s on FER2013).
    return cv2.bilateralFilter(image, d=5, sigmaColor=30, sigmaSpace=5)


def _edges(image: np.ndarray) -> np.ndarray:
    # Unsharp mask: add back the detail a Gaussian blur removes, which sharpens facial edges.
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=1.0)
    return cv2.addWeighted(image, 1.6, blurred, -0.6, 0)


_VARIANTS = {"histeq": _histeq, "clahe": _clahe, "denoise": _denoise, "edges": _edges}


def check_variant(name: str) -> str:
    if name not in PREPROCESSING_VARIANTS:
        raise WorkbenchError(f"unknown preprocessing {name!r}; choose one of {', '.join(PREPROCESSING_VARIANTS)}")
    return name


def apply_preprocessing(images: np.ndarray, name: str = "none") -> np.ndarray:
    """A preprocessing variant applied image by image on uint8; same shape and dtype out."""
    check_variant(name)
    batch, single = _as_batch(images)
    if batch.dtype != np.uint8:
        raise WorkbenchError(f"expected uint8 images, got {batch.dtype}")
    if name == "none":
        out = batch.copy()
    else:
        fn = _VARIANTS[name]
        out = np.empty_like(batch)
        for i, image in enumerate(batch):
            out[i] = fn(np.ascontiguousarray(image))
    return out[0] if single else out


def prepare_images(images: np.ndarray, variant: str = "none") -> np.ndarray:
    """Variant then normalisation: the model input for training, evaluation, saliency and prediction."""
    return to_model_input(apply_preprocessing(images, variant))


def hog_features(images: np.ndarray) -> np.ndarray:
    """HOG descriptors of uint8 48×48 images (OpenCV: 16 px blocks, 8 px cells, 9 bins): float32 N×900.

    The one feature extractor of the classical baselines, the label-issue model and the non-face outlier score.
    """
    batch, _ = _as_batch(images)
    hog = cv2.HOGDescriptor((48, 48), (16, 16), (8, 8), (8, 8), 9)
    return np.stack([hog.compute(np.ascontiguousarray(im)).ravel() for im in batch]).astype(np.float32)

