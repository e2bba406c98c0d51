"""Training inputs: stateless augmentation and the tf.data pipelines for fitting and validation.

Every random choice is a stateless function of (seed, epoch, batch), so a resumed run sees exactly the batches an
uninterrupted one would have.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from fer_workbench import CLASS_NAMES, IMAGE_SIZE
from fer_workbench.errors import WorkbenchError

NUM_CLASSES = len(CLASS_NAMES)
AUTOTUNE = tf.data.AUTOTUNE


def _seed_for(seed, counter, salt: int) -> tf.Tensor:
    return tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + salt, tf.cast(counter, tf.int64)])


def augment_batch(images: tf.Tensor, seed, counter=0, strength: float = 1.0) -> tf.Tensor:
    """Random scale/shift/rotation, horizontal flip and random erasing on float B×48×48×1 in [0, 1].

    Vectorised and stateless: the same (seed, counter) always gives the same batch. ``strength`` 1 is the
    published FER2013 VGG recipe (±20 % scale and shift, ±10° rotation, erasing with p = 0.5); 0 is identity.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    if strength <= 0:
        return images
    b = tf.shape(images)[0]
    h = w = float(IMAGE_SIZE)

    def uniform(salt, shape, lo, hi):
        return tf.random.stateless_uniform(shape, _seed_for(seed, counter, salt), lo, hi)

    angle = uniform(1, [b], -1.0, 1.0) * (10.0 * strength) * (math.pi / 180)
    scale = 1.0 + uniform(2, [b], -1.0, 1.0) * 0.2 * strength
    tx = uniform(3, [b], -1.0, 1.0) * 0.2 * strength * w
    ty = uniform(4, [b], -1.0, 1.0) * 0.2 * strength * h
    # Output pixel (x, y) samples input at R(−angle)/scale · (p − c) + c − t.
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a2 = cx - cos * cx - sin * cy - tx
    b2 = cy + sin * cx - cos * cy - ty
    zeros = tf.zeros_like(cos)
    transforms = tf.stack([cos, sin, a2, -sin, cos, b2, zeros, zeros], axis=1)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.constant([IMAGE_SIZE, IMAGE_SIZE]),
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")

    flip = uniform(5, [b], 0.0, 1.0) < 0.5
    out = tf.where(flip[:, None, None, None], tf.reverse(out, axis=[2]), out)

    # Random erasing (Zhong et al.): a rectangle of 2–20 % of the image, aspect 1/3–3, filled with noise.
    erase = uniform(6, [b], 0.0, 1.0) < 0.5 * min(strength, 1.0)
    area = uniform(7, [b], 0.02, 0.2) * h * w
    log_ratio = uniform(8, [b], math.log(1 / 3), math.log(3))
    eh = tf.minimum(tf.sqrt(area * tf.exp(log_ratio)), h)
    ew = tf.minimum(tf.sqrt(area / tf.exp(log_ratio)), w)
    y0 = uniform(9, [b], 0.0, 1.0) * (h - eh)
    x0 = uniform(10, [b], 0.0, 1.0) * (w - ew)
    grid = tf.range(IMAGE_SIZE, dtype=tf.float32)
    in_y = (grid[None, :] >= y0[:, None]) & (grid[None, :] < (y0 + eh)[:, None])
    in_x = (grid[None, :] >= x0[:, None]) & (grid[None, :] < (x0 + ew)[:, None])
    mask = in_y[:, :, None] & in_x[:, None, :] & erase[:, None, None]
    noise = uniform(11, tf.shape(out), 0.0, 1.0)
    return tf.where(mask[..., None], noise, out)


def _beta(seed, counter, salt: int, alpha: float, size) -> tf.Tensor:
    """Stateless Beta(alpha, alpha) draws: G1 / (G1 + G2) of two stateless Gamma(alpha) draws."""
    g1 = tf.random.stateless_gamma([size], _seed_for(seed, counter, salt), alpha)
    g2 = tf.random.stateless_gamma([size], _seed_for(seed, counter, salt + 1), alpha)
    return g1 / tf.maximum(g1 + g2, 1e-12)


def mix_batch(images: tf.Tensor, targets: tf.Tensor, seed, counter=0, mixup: float = 0.0, cutmix: float = 0.0,
              weights: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
    """Mixup (Zhang et al. 2018) or CutMix (Yun et al. 2019) within a batch: each image is paired with another of
    the batch (a stateless permutation), and its target becomes the convex combination λ·own + (1 − λ)·partner's,
    so soft targets still sum to 1. ``mixup`` / ``cutmix`` are the Beta(α, α) parameters of λ (drawn per image);
    0 turns one off, and with both on each batch uses one of them, chosen at random. Mixup blends the pixels;
    CutMix pastes a rectangle of the partner covering 1 − λ of the image (λ is then the share actually kept).
    Sample weights, when given, mix like the targets. Deterministic in (seed, counter): the same batch always mixes
    the same way."""
    images = tf.convert_to_tensor(images, tf.float32)
    targets = tf.convert_to_tensor(targets, tf.float32)
    if mixup <= 0 and cutmix <= 0:
        return images, targets, weights
    b = tf.shape(images)[0]
    partner = tf.argsort(tf.random.stateless_uniform([b], _seed_for(seed, counter, 20)))
    other_images, other_targets = tf.gather(images, partner), tf.gather(targets, partner)

    def blended():
        lam = _beta(seed, counter, 21, mixup, b)
        return lam[:, None, None, None] * images + (1 - lam[:, None, None, None]) * other_images, lam

    def pasted():
        size = float(IMAGE_SIZE)
        lam = _beta(seed, counter, 23, cutmix, b)
        side = tf.sqrt(1.0 - lam) * size  # a box of area (1 − λ)·48², centred anywhere, clipped to the image
        cy = tf.random.stateless_uniform([b], _seed_for(seed, counter, 25), 0.0, size)
        cx = tf.random.stateless_uniform([b], _seed_for(seed, counter, 26), 0.0, size)
        y0, y1 = tf.round(tf.clip_by_value(cy - side / 2, 0, size)), tf.round(tf.clip_by_value(cy + side / 2, 0, size))
        x0, x1 = tf.round(tf.clip_by_value(cx - side / 2, 0, size)), tf.round(tf.clip_by_value(cx + side / 2, 0, size))
        grid = tf.range(IMAGE_SIZE, dtype=tf.float32)
        in_y = (grid[None, :] >= y0[:, None]) & (grid[None, :] < y1[:, None])
        in_x = (grid[None, :] >= x0[:, None]) & (grid[None, :] < x1[:, None])
        box = (in_y[:, :, None] & in_x[:, None, :])[..., None]
        kept = 1.0 - (y1 - y0) * (x1 - x0) / (size * size)
        return tf.where(box, other_images, images), kept

    if mixup > 0 and cutmix > 0:
        use_cutmix = tf.random.stateless_uniform([], _seed_for(seed, counter, 27)) < 0.5
        mixed, lam = tf.cond(use_cutmix, pasted, blended)
    else:
        mixed, lam = pasted() if cutmix > 0 else blended()
    mixed_targets = lam[:, None] * targets + (1 - lam[:, None]) * other_targets
    if weights is not None:
        weights = lam * weights + (1 - lam) * tf.gather(weights, partner)
    return mixed, mixed_targets, weights


# ---------------------------------------------------------------------------------------------------- input


def _sample_weights(labels: np.ndarray, class_weight: dict | str | None,
                    class_names: tuple[str, ...] = CLASS_NAMES) -> np.ndarray | None:
    if class_weight is None:
        return None
    n_classes = len(class_names)
    if class_weight == "balanced":
        counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
        present = counts > 0
        weights = np.zeros(n_classes)
        weights[present] = len(labels) / (present.sum() * counts[present])
    elif isinstance(class_weight, dict):
        weights = np.ones(n_classes)
        for k, v in class_weight.items():
            if isinstance(k, str) and k not in class_names:
                raise WorkbenchError(f"class_weight names {k!r}, not one of {', '.join(class_names)}")
            weights[class_names.index(k) if isinstance(k, str) else int(k)] = float(v)
    else:
        raise WorkbenchError(f"class_weight must be a dict, 'balanced' or None, got {class_weight!r}")
    return weights[labels].astype(np.float32)


def as_targets(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """(float32 N×classes targets, int class per row): integer labels become one-hot; N×classes rows (soft labels,
    e.g. FER+ vote distributions) are the targets themselves, their most probable class the row's class."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        if labels.shape[1] != num_classes:
            raise WorkbenchError(f"soft labels have {labels.shape[1]} classes, expected {num_classes}")
        return labels.astype(np.float32), labels.argmax(axis=1).astype(np.int64)
    labels = labels.astype(np.int64)
    return np.eye(num_classes, dtype=np.float32)[labels], labels


def make_train_dataset(x: np.ndarray, labels: np.ndarray, batch_size: int, seed: int = 0, epochs: int = 1,
                       initial_epoch: int = 0, augment: float = 1.0, sample_indices: np.ndarray | None = None,
                       class_weight: dict | str | None = None, class_names: tuple[str, ...] = CLASS_NAMES,
                       mixup: float = 0.0, cutmix: float = 0.0) -> tuple[tf.data.Dataset, int]:
    """Batches for epochs ``initial_epoch..epochs-1`` in one stream, and the steps per epoch.

    ``x`` is model input (float32 N×48×48×1); ``labels`` class indices into ``class_names`` or soft labels
    (N×classes, see ``as_targets``). Each epoch is a seeded permutation of ``sample_indices`` (default: every row;
    pass repeated indices to oversample). Batches are (x, target y[, sample weight]), augmented (``augment_batch``)
    and then mixed (``mix_batch``: ``mixup`` / ``cutmix`` are Beta α's, 0 = off), both stateless in
    (seed, global step = epoch × steps + batch).
    """
    targets, labels = as_targets(labels, len(class_names))
    indices = np.arange(len(x)) if sample_indices is None else np.asarray(sample_indices, dtype=np.int64)
    if len(indices) == 0:
        raise WorkbenchError("no training images")
    steps = math.ceil(len(indices) / batch_size)
    x_t = tf.constant(x)
    y_t = tf.constant(targets)
    weights = _sample_weights(labels, class_weight, tuple(class_names))
    w_t = None if weights is None else tf.constant(weights)
    idx_t = tf.constant(indices)
    n = len(indices)

    def epoch_batches(epoch):
        order = tf.argsort(tf.random.stateless_uniform([n], _seed_for(seed, epoch, 0)))
        return tf.data.Dataset.from_tensor_slices(tf.gather(idx_t, order)).batch(batch_size)

    def load(step, idx):
        images = tf.gather(x_t, idx)
        images = augment_batch(images, seed, step, augment) if augment > 0 else images
        y = tf.gather(y_t, idx)
        w = None if w_t is None else tf.gather(w_t, idx)
        if mixup > 0 or cutmix > 0:
            images, y, w = mix_batch(images, y, seed, step, mixup, cutmix, w)
        return (images, y) if w is None else (images, y, w)

    ds = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches)
    ds = ds.enumerate(start=initial_epoch * steps).map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE), steps


def make_eval_dataset(x: np.ndarray, labels: np.ndarray, batch_size: int, num_classes: int = NUM_CLASSES
                      ) -> tf.data.Dataset:
    y, _ = as_targets(labels, num_classes)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(AUTOTUNE)

