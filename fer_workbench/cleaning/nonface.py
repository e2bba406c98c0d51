"""Non-face and low-information scores: image statistics, a face detector and a face-model outlier score."""

from __future__ import annotations

import numpy as np

HAAR_CASCADES = ("haarcascade_frontalface_alt2.xml", "haarcascade_profileface.xml")
BLANK_STD = 3.0  # pixel std below which an image is called blank
DETECTOR_WEIGHT = 3.0  # robust-z units a Haar miss adds (a hit removes) on the examined candidates


def image_statistics(images: np.ndarray) -> dict[str, np.ndarray]:
    """Cheap per-image statistics (vectorised): contrast, histogram shape, flatness, edges, symmetry."""
    n = len(images)
    flat = images.reshape(n, -1)
    x = images.astype(np.float32)
    offsets = (np.arange(n, dtype=np.int64) * 256)[:, None]
    hist = np.bincount((flat + offsets).ravel(), minlength=n * 256).reshape(n, 256)
    p = hist / flat.shape[1]
    window = np.cumsum(np.pad(hist, ((0, 0), (3, 2))), axis=1)
    window = window[:, 5:] - window[:, :-5]
    gx = np.abs(np.diff(x, axis=2))[:, :-1, :]
    gy = np.abs(np.diff(x, axis=1))[:, :, :-1]
    grad = (gx + gy).reshape(n, -1)
    import cv2

    blurred = np.stack([cv2.GaussianBlur(im, (0, 0), 2.0) for im in x])
    z = (x - x.mean(axis=(1, 2), keepdims=True)) / (x.std(axis=(1, 2), keepdims=True) + 1e-3)
    return {
        "pixel_std": x.reshape(n, -1).std(axis=1),
        # Shannon entropy of the grey-level histogram (bits): icons, text and blank frames use few levels.
        "entropy": -(np.where(p > 0, p * np.log2(np.maximum(p, 1e-12)), 0)).sum(axis=1),
        # Share of pixels within ±2 grey levels of the most common level: flat backgrounds.
        "mode_fraction": window.max(axis=1) / flat.shape[1],
        "saturated_fraction": ((flat <= 8) | (flat >= 247)).mean(axis=1),
        "flat_gradient_fraction": (grad <= 1).mean(axis=1),
        "edge_density": (grad >= 60).mean(axis=1),
        # Mean |Laplacian| over mean |gradient|: high for pixel noise, low for smooth photographs.
        "noise_ratio": np.abs(4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2]
                              - x[:, 1:-1, 2:]).reshape(n, -1).mean(axis=1) / (grad.mean(axis=1) + 1.0),
        # Share of pixel variance surviving a σ=2 px blur: ≈0.03 for pixel noise, most of it for any photograph.
        "structure_ratio": blurred.reshape(n, -1).var(axis=1) / (x.reshape(n, -1).var(axis=1) + 1e-3),
        "symmetry": (z * z[:, :, ::-1]).mean(axis=(1, 2)),
    }


def haar_face_evidence(images: np.ndarray, progress: bool = False) -> np.ndarray:
    """Best Haar-cascade detection weight per image (frontal, profile and mirrored profile) on the 2×
    upscaled, histogram-equalised image; -1 where no cascade finds a face."""
    import cv2
    from tqdm.auto import tqdm

    cascades = [cv2.CascadeClassifier(cv2.data.haarcascades + name) for name in HAAR_CASCADES]
    best = np.full(len(images), -1.0)
    for k, image in enumerate(tqdm(images, desc="haar", disable=not progress)):
        big = cv2.equalizeHist(cv2.resize(image, (96, 96), interpolation=cv2.INTER_LINEAR))
        views = [(cascades[0], big), (cascades[1], big), (cascades[1], np.ascontiguousarray(big[:, ::-1]))]
        for cascade, view in views:
            # Viola-Jones cascade, multi-scale; outputRejectLevels gives a confidence per detection.
            _, _, weights = cascade.detectMultiScale3(view, scaleFactor=1.15, minNeighbors=1, minSize=(36, 36),
                                                      outputRejectLevels=True)
            if len(weights):
                best[k] = max(best[k], float(np.max(weights)))
    return best


def face_model_outlier(images: np.ndarray, seed: int = 0, components: int = 40) -> np.ndarray:
    """PCA-residual outlier score on HOG features: distance of each image from the dataset's face subspace."""
    from sklearn.decomposition import PCA

    from fer_workbench.preprocess import hog_features

    feats = hog_features(images)
    feats -= feats.mean(axis=0)
    k = int(min(components, len(images) - 1, feats.shape[1]))
    if k < 1:
        return np.zeros(len(images))
    sample = np.random.default_rng(seed).permutation(len(images))[:20_000]
    pca = PCA(k, random_state=seed).fit(feats[sample])
    # PCA reconstruction error of HOG: faces share gradient layouts, drawings/noise/text do not.
    recon = pca.inverse_transform(pca.transform(feats))
    return np.linalg.norm(feats - recon, axis=1) / (np.linalg.norm(feats, axis=1) + 1e-6)


def robust_z(x: np.ndarray) -> np.ndarray:
    """(x − median) / (1.4826 · MAD): how far from the typical (face) image, in robust standard deviations."""
    med = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - med))
    return (x - med) / (mad if mad > 1e-9 else (np.std(x) + 1e-9))


def nonface_scores(images: np.ndarray, stats: dict | None = None, haar_top: int = 1500, seed: int = 0,
                   progress: bool = False) -> dict[str, np.ndarray]:
    """Per image: ``low_information`` (blank/flat/few grey levels), ``face_outlier``, ``haar_face`` and the
    combined ``nonface`` score (higher = less face-like). The detector runs on the ``haar_top`` highest
    candidates of the cheap scores; the rest keep +∞ face evidence (not examined)."""
    stats = stats or image_statistics(images)
    # One-sided robust z-scores, each pointing toward "not a face"; the dataset itself is the face model.
    low_info = np.mean([np.clip(-robust_z(stats["entropy"]), 0, None),
                        np.clip(robust_z(stats["mode_fraction"]), 0, None)], axis=0)
    outlier = face_model_outlier(images, seed=seed)
    # Log scale: pixel noise keeps ~3 % of its variance after a blur, photographs most of it.
    noise = np.clip(-robust_z(np.log(stats["structure_ratio"] + 1e-3)), 0, None)
    structure = np.clip(robust_z(outlier), 0, None)
    cheap = np.maximum(low_info, np.maximum(structure, noise))
    haar = np.full(len(images), np.inf)
    top = np.argsort(-cheap, kind="stable")[: min(haar_top, len(images))]
    haar[top] = haar_face_evidence(images[top], progress=progress)
    # Combination: the strongest kind of image evidence (robust-z units), ± DETECTOR_WEIGHT units for a cascade
    # miss / hit.
    detector = np.where(np.isinf(haar), 0.0, np.where(haar >= 0, -DETECTOR_WEIGHT, DETECTOR_WEIGHT))
    return {"low_information": low_info, "face_outlier": outlier, "noise": noise, "haar_face": haar,
            "nonface": cheap + detector}


def blank_score(stats: dict) -> np.ndarray:
    """1 − std/ (std + 3): 0.5 at the blank threshold (pixel std 3), → 1 for a constant image."""
    return 1.0 - stats["pixel_std"] / (stats["pixel_std"] + BLANK_STD)
