"""Occlusion score: a small CNN trained self-supervised to tell images with pasted occluders from the originals.

No labels are needed. Occluders (``cleaning.occluders``: hands, sunglasses, face masks, overlaid text, held
objects) are drawn procedurally onto a random sample of the dataset's own images, a detector learns "pasted vs
original", and every original image is then scored by the detector's probability. Real occlusions (a hand on
the cheek, sunglasses, a watermark) look like the pasted ones, so they rank high. Scoring is cross-fitted (two
halves: each is scored by the model trained on the other half), so an already-occluded image that the detector
saw labelled "original" is not simply memorised as clean (datasets smaller than ``max_train`` use one detector).
"""

from __future__ import annotations

import os

import numpy as np

from fer_workbench.cleaning.occluders import SIZE, composite, occluder_bank
from fer_workbench.errors import WorkbenchError

BATCH = 64
PREDICT_BATCH = 1024
BANK_MAX = 6000


def _standardise(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float32)
    x -= x.mean(axis=(1, 2), keepdims=True)
    x /= x.std(axis=(1, 2), keepdims=True) + 8.0
    return x[..., None]


def _detector(seed: int, learning_rate: float):
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers

    def conv(x, filters, strides=1, kernel=3, norm=True):
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=not norm)(x)
        return layers.ReLU()(layers.BatchNormalization()(x) if norm else x)

    inputs = keras.Input((SIZE, SIZE, 1))
    x = conv(inputs, 16, strides=2, kernel=5, norm=False)  # 24×24
    x = conv(x, 32, strides=2)  # 12×12
    x = layers.MaxPooling2D()(conv(x, 32))  # 6×6
    x = conv(x, 48)  # keep the layout: where on the face something sits matters
    x = layers.Flatten()(layers.Conv2D(8, 1, activation="relu")(x))
    x = layers.Dense(32, activation="relu")(layers.Dropout(0.2)(x))
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(learning_rate), "binary_crossentropy")
    return model


def make_training_pairs(images: np.ndarray, bank: tuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each image twice: as it is (label 0) and under a random occluder from ``bank`` (label 1); each copy is
    mirrored at random (so the occluder, too, can be on either side)."""
    occ, alpha, relative, _ = bank
    pick = rng.integers(0, len(occ), len(images))
    layer_flip = rng.random(len(images)) < 0.5
    occ, alpha = occ[pick], alpha[pick]
    occ[layer_flip], alpha[layer_flip] = occ[layer_flip, :, ::-1], alpha[layer_flip, :, ::-1]
    pasted = composite(images, occ, alpha, relative[pick], rng)
    clean = images.copy()
    flip = rng.random(len(images)) < 0.5
    clean[flip] = clean[flip, :, ::-1]
    x = np.concatenate([clean, pasted])
    y = np.concatenate([np.zeros(len(images)), np.ones(len(images))]).astype(np.float32)
    return x, y


def _fit_predict(train_images, score_images, bank, epochs, seed, progress):
    import keras

    rng = np.random.default_rng(seed)
    rate = 3e-3
    model = _detector(seed, rate)
    for epoch in range(epochs):
        # fresh image–occluder pairings every epoch: the detector cannot memorise particular pastes
        x, y = make_training_pairs(train_images, bank, rng)
        model.optimizer.learning_rate.assign(rate * 0.5 * (1 + np.cos(np.pi * epoch / epochs)))
        order = rng.permutation(len(x))
        model.fit(_standardise(x[order]), y[order], batch_size=BATCH, epochs=1, verbose=2 if progress else 0,
                  shuffle=False)
    # Test-time mirror averaging. Direct calls rather than predict(): no tf.function retracing (and its
    # warning) for every new detector.
    probs = np.zeros(len(score_images))
    for start in range(0, len(score_images), PREDICT_BATCH):
        xs = _standardise(score_images[start:start + PREDICT_BATCH])
        both = model(np.concatenate([xs, xs[:, :, ::-1]]), training=False).numpy()[:, 0]
        probs[start:start + len(xs)] = (both[:len(xs)] + both[len(xs):]) / 2
    keras.backend.clear_session()
    return probs


def occlusion_scores(images: np.ndarray, seed: int = 0, epochs: int = 6, max_train: int = 6000, threads: int = 2,
                     progress: bool = True) -> np.ndarray:
    """Per image (uint8 N×48×48), the probability (float64, 0..1) that something covers part of the face.

    A small CNN learns, self-supervised, to tell the images from copies with pasted occluders (fresh pairings
    from one bank of drawn occluders every epoch). With at least ``max_train`` images, two detectors are
    trained on ``max_train // 2`` images of each half and each half is scored by the other half's detector
    (cross-fitting); with fewer, one detector is trained on all of them and scores them all. ``threads`` caps
    TensorFlow's intra-op threads (when TensorFlow is not yet initialised). Deterministic for a given seed and
    thread count; prints only Keras' per-epoch lines, and only when ``progress``.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (SIZE, SIZE):
        raise WorkbenchError(f"occlusion scores need N×48×48 images, got shape {images.shape}")
    if len(images) < 4:
        raise WorkbenchError(f"occlusion scores need at least 4 images to train a detector, got {len(images)}")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.number) or not np.all(np.isfinite(images)) \
                or images.min() < 0 or images.max() > 255:
            raise WorkbenchError(f"occlusion scores need grey levels in 0..255, got {images.dtype} values")
        images = np.rint(images).astype(np.uint8)
    if int(epochs) < 1 or int(max_train) < 4:
        raise WorkbenchError(f"occlusion scores need epochs ≥ 1 and max_train ≥ 4, got {epochs} and {max_train}")
    epochs, max_train = int(epochs), int(max_train)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from fer_workbench.runtime import limit_threads

    limit_threads(threads)
    rng = np.random.default_rng(seed)
    crossfit = len(images) >= max_train
    per_model = max_train // 2 if crossfit else len(images)
    # one bank of occluder layers, re-paired with the images every epoch (drawing them is the slow part)
    bank = occluder_bank(min(max(2 * per_model, 256), BANK_MAX), rng)
    if not crossfit:
        # Too few images to train two detectors on halves. Measured on synthetic data: the images the detector
        # saw as "clean" score no lower than held-out ones, so there is little memorisation to guard against.
        return _fit_predict(images, images, bank, epochs, seed * 2, progress).astype(np.float64)
    order = rng.permutation(len(images))
    halves = [np.sort(order[: len(images) // 2]), np.sort(order[len(images) // 2:])]
    scores = np.zeros(len(images))
    for k in range(2):
        train = np.sort(rng.choice(halves[k], per_model, replace=False))
        scores[halves[1 - k]] = _fit_predict(images[train], images[halves[1 - k]], bank, epochs, seed * 2 + k,
                                             progress)
    return scores
