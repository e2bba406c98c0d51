"""Classical baselines: kNN and SVM on HOG features or raw pixels (scikit-learn pipelines)."""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from fer_workbench import CLASS_NAMES
from fer_workbench.errors import WorkbenchError
from fer_workbench.preprocess import _as_batch, hog_features

CLASSICAL_MODELS: tuple[str, ...] = ("knn_hog", "svm_hog", "knn_pixels", "svm_pixels")
CALIBRATION_FOLDS = 3  # the SVM's Platt-scaling folds (fewer when a class has fewer examples)


def pixel_features(images: np.ndarray) -> np.ndarray:
    batch, _ = _as_batch(images)
    return batch.reshape(len(batch), -1).astype(np.float32) / 255


def make_classical(name: str, seed: int = 0, n_neighbors: int = 5, C: float = 10.0, pca_components: int = 100
                   ) -> Pipeline:
    """An unfitted pipeline: features → standardise → PCA → kNN or calibrated RBF SVM."""
    if name not in CLASSICAL_MODELS:
        raise WorkbenchError(f"unknown classical model {name!r}; choose one of {', '.join(CLASSICAL_MODELS)}")
    kind, features = name.split("_")
    steps = [("features", FunctionTransformer(hog_features if features == "hog" else pixel_features)),
             ("scale", StandardScaler()),
             ("pca", PCA(n_components=pca_components, random_state=seed))]
    if kind == "knn":
        steps.append(("clf", KNeighborsClassifier(n_neighbors=n_neighbors, weights="distance")))
    else:
        # Platt scaling on held-out folds gives probabilities (what SVC(probability=True) did before sklearn 1.9).
        svm = SVC(C=C, kernel="rbf", gamma="scale", random_state=seed)
        steps.append(("clf", CalibratedClassifierCV(svm, method="sigmoid", cv=CALIBRATION_FOLDS, ensemble=False)))
    return Pipeline(steps)


def fit_classical(name: str, images: np.ndarray, labels: np.ndarray, seed: int = 0, **params) -> Pipeline:
    """Fit a classical model on uint8 images; PCA is shrunk for tiny training sets."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    model = make_classical(name, seed=seed, **params)
    limit = min(len(images), (900 if name.endswith("hog") else images[0].size)) - 1
    if model.named_steps["pca"].n_components > limit:
        model.set_params(pca__n_components=max(1, limit))
    if name.startswith("knn"):
        model.set_params(clf__n_neighbors=min(model.named_steps["clf"].n_neighbors, len(images)))
    else:
        # Platt scaling's folds are stratified: each class needs an example in every fold
        classes, counts = np.unique(labels, return_counts=True)
        if counts.min() < 2:
            raise WorkbenchError(f"{name}: class {int(classes[counts.argmin()])} has a single training example; the "
                                 "SVM's probability calibration needs at least 2 per class")
        model.set_params(clf__cv=int(min(CALIBRATION_FOLDS, counts.min())))
    return model.fit(images, labels)


def stratified_positions(labels: np.ndarray, n: int | None, seed: int = 0, at_least: int = 3) -> np.ndarray:
    """Sorted positions of ``n`` rows drawn at random, then every class topped up to ``at_least`` rows where it has
    them (a 500-row draw from FER2013 can hold 2 disgust images or none)."""
    labels = np.asarray(labels)
    if not n or n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    taken = np.zeros(len(labels), bool)
    taken[rng.choice(len(labels), size=n, replace=False)] = True
    for cls in np.unique(labels):
        members = labels == cls
        missing = min(at_least, members.sum()) - (taken & members).sum()
        if missing > 0:
            taken[rng.choice(np.flatnonzero(members & ~taken), size=missing, replace=False)] = True
    return np.flatnonzero(taken)


def classical_proba(model: Pipeline, images: np.ndarray, num_classes: int = len(CLASS_NAMES)) -> np.ndarray:
    """N×num_classes probabilities in CLASS_NAMES order (zero for classes unseen in training)."""
    batch, _ = _as_batch(images)
    scores = model.predict_proba(batch)
    out = np.zeros((len(batch), num_classes), dtype=np.float32)
    out[:, model.classes_.astype(int)] = scores
    return out
