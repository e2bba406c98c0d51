"""Prediction shared by predict, saliency, metrics and evaluation: compiled forward pass, ten-crop TTA and
``CropPredictor`` (48×48 face crops in, probabilities out)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from fer_workbench import CLASS_NAMES, IMAGE_SIZE
from fer_workbench.models import tag_model
from fer_workbench.preprocess import check_variant, prepare_images

NUM_CLASSES = len(CLASS_NAMES)


def compiled_predict(model: keras.Model, jit_compile: bool = False):
    """A ``tf.function`` over float32 N×48×48×1 with a fixed signature: traced once, so one image takes ~ms."""
    key = bool(jit_compile)
    cache = model.__dict__.get("_fer_predict_fns")
    if cache is None:
        cache = {}
        tag_model(model, _fer_predict_fns=cache)
    if key not in cache:
        spec = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32)
        # Wrapping the model itself (outside fit it runs in inference mode) rather than a closure: TF's
        # retracing detector keys closures by their code, so one closure per model warns after five models.
        cache[key] = tf.function(model, input_signature=[spec], reduce_retracing=True, jit_compile=jit_compile)
    return cache[key]


TTA_UPSCALE = 54  # ten 48×48 crops of the image scaled up 12.5 %: four corners, centre, and their mirrors


def ten_crops(x: np.ndarray | tf.Tensor) -> tf.Tensor:
    """Model input N×48×48×1 → 10×N×48×48×1 (corners, centre, then their horizontal flips)."""
    big = tf.image.resize(tf.convert_to_tensor(x, tf.float32), (TTA_UPSCALE, TTA_UPSCALE), method="bilinear")
    m = TTA_UPSCALE - IMAGE_SIZE
    offsets = [(0, 0), (0, m), (m, 0), (m, m), (m // 2, m // 2)]
    crops = [big[:, r:r + IMAGE_SIZE, c:c + IMAGE_SIZE, :] for r, c in offsets]
    crops += [tf.reverse(c, axis=[2]) for c in crops]
    return tf.stack(crops)


def predict_proba(model: keras.Model, images: np.ndarray, tta: bool = False, preprocessing: str | None = None,
                  batch_size: int = 256) -> np.ndarray:
    """uint8 images (N×48×48 or one 48×48) → N×classes probabilities, via the model's own preprocessing variant.

    ``tta=True`` averages ten crops and their mirrors (``ten_crops``).
    """
    images = np.asarray(images)
    single = images.ndim == 2
    x = prepare_images(images, preprocessing or getattr(model, "fer_preprocessing", "none"))
    fn = compiled_predict(model)
    out = []
    for start in range(0, len(x), batch_size):
        chunk = x[start:start + batch_size]
        if tta:
            crops = ten_crops(chunk)
            probs = fn(tf.reshape(crops, (-1, IMAGE_SIZE, IMAGE_SIZE, 1)))
            out.append(tf.reduce_mean(tf.reshape(probs, (10, len(chunk), -1)), axis=0).numpy())
        else:
            out.append(fn(tf.constant(chunk)).numpy())
    probs = np.concatenate(out) if out else np.zeros((0, int(model.output_shape[-1])), np.float32)
    return probs[0] if single else probs


class CropPredictor:
    """Fast repeated prediction: preprocessing variant from the model, compiled forward pass, optional TTA."""

    def __init__(self, model: keras.Model, preprocessing: str | None = None, tta: bool = False):
        self.model = model
        self.preprocessing = check_variant(preprocessing or getattr(model, "fer_preprocessing", "none"))
        self.tta = tta
        self._fn = compiled_predict(model)
        self._fn(tf.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 1)))  # trace now, not on the first real image

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return predict_proba(self.model, images, tta=self.tta, preprocessing=self.preprocessing)

    def predict_labels(self, images: np.ndarray) -> list[str]:
        from fer_workbench.models.io import model_class_names

        names = model_class_names(self.model)
        probs = np.atleast_2d(self(images))
        return [names[i] for i in probs.argmax(axis=1)]
