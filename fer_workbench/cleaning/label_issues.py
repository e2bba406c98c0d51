"""Label issues: cleanlab on out-of-fold predicted probabilities from a quick model."""

from __future__ import annotations

import os

import numpy as np

from fer_workbench.errors import WorkbenchError
from fer_workbench.preprocess import hog_features

MODELS = ("cnn", "hog-logreg")


def _tiny_cnn(n_classes: int, seed: int, learning_rate: float):
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers

    def conv(x, filters):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        return layers.ReLU()(layers.BatchNormalization()(x))

    inputs = keras.Input((48, 48, 1))
    x = layers.RandomFlip("horizontal", seed=seed)(layers.Rescaling(1 / 255.0)(inputs))
    x = layers.MaxPooling2D()(conv(x, 16))
    x = layers.MaxPooling2D()(conv(conv(x, 32), 32))
    x = layers.MaxPooling2D()(conv(conv(x, 64), 64))
    x = layers.GlobalAveragePooling2D()(conv(x, 128))
    outputs = layers.Dense(n_classes, activation="softmax")(layers.Dropout(0.3)(x))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    return model


def _fit_predict_cnn(x_train, y_train, x_test, n_classes, epochs, seed, threads):
    import keras

    from fer_workbench.runtime import limit_threads

    limit_threads(threads)
    rate = 3e-3
    model = _tiny_cnn(n_classes, seed, rate)
    schedule = keras.callbacks.LearningRateScheduler(lambda e: rate * 0.5 * (1 + np.cos(np.pi * e / epochs)))
    model.fit(x_train[..., None], y_train, batch_size=128, epochs=epochs, verbose=0, shuffle=True,
              callbacks=[schedule])
    # Test-time flip averaging: both views of a face should carry the same expression.
    probs = (model.predict(x_test[..., None], batch_size=512, verbose=0)
             + model.predict(x_test[:, :, ::-1][..., None], batch_size=512, verbose=0)) / 2
    keras.backend.clear_session()
    return probs


def _fit_predict_logreg(f_train, y_train, f_test, n_classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=300))
    model.fit(f_train, y_train)
    probs = np.zeros((len(f_test), n_classes))
    probs[:, model.classes_] = model.predict_proba(f_test)
    return probs


def out_of_fold_probabilities(images: np.ndarray, labels: np.ndarray, n_classes: int, folds: int = 5,
                              model: str = "cnn", epochs: int = 6, seed: int = 0, threads: int = 2,
                              progress: bool = True) -> np.ndarray:
    """N×C predicted probabilities, each row from a model that never saw that row (StratifiedKFold)."""
    from sklearn.model_selection import StratifiedKFold
    from tqdm.auto import tqdm

    if model not in MODELS:
        raise WorkbenchError(f"unknown label-issue model {model!r}; choose one of {', '.join(MODELS)}")
    present, counts = np.unique(labels, return_counts=True)
    if len(present) < 2:
        raise WorkbenchError("label issues need at least two classes; this dataset has "
                             f"{len(present)}")
    folds = int(min(folds, counts.max()))
    if folds < 2:
        raise WorkbenchError("label issues need at least two images in some class for cross-validation")
    # Classes rarer than the fold count cannot be stratified; StratifiedKFold warns and still covers them.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    features = hog_features(images) if model == "hog-logreg" else None
    probs = np.zeros((len(labels), n_classes))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        splits = list(splitter.split(np.zeros(len(labels)), labels))
    for k, (train, test) in enumerate(tqdm(splits, desc="label-issue folds", disable=not progress)):
        if model == "cnn":
            probs[test] = _fit_predict_cnn(images[train], labels[train], images[test], n_classes, epochs,
                                           seed + k, threads)
        else:
            probs[test] = _fit_predict_logreg(features[train], labels[train], features[test], n_classes)
    return probs


def label_issue_scores(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label quality in 0..1, low = suspicious; cleanlab's issue flag) from out-of-fold probabilities."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    # Label quality: cleanlab normalized margin p[given] − max p[other] (best of cleanlab's scores on FER+).
    quality = get_label_quality_scores(labels, probs, method="normalized_margin")
    # Flags: cleanlab's confident-learning count of off-diagonal joint mass, pruned by the same ranking.
    present = np.unique(labels)
    if len(present) < probs.shape[1]:
        # cleanlab needs every class present among the labels; restrict to the present ones and renormalise.
        sub = probs[:, present] / np.clip(probs[:, present].sum(axis=1, keepdims=True), 1e-12, None)
        remap = np.searchsorted(present, labels)
        issues = find_label_issues(remap, sub, filter_by="prune_by_noise_rate")
    else:
        issues = find_label_issues(labels, probs, filter_by="prune_by_noise_rate")
    return quality, np.asarray(issues, bool)
