"""Saliency maps: GradCAM (one traced graph per model), GradCAM++, ScoreCAM, vanilla gradients and SmoothGrad behind
``saliency_maps``, on uint8 images through the model's own preprocessing."""

from __future__ import annotations

import functools
import warnings

import keras
import numpy as np
import tensorflow as tf

from fer_workbench import CLASS_NAMES, IMAGE_SIZE
from fer_workbench.errors import WorkbenchError
from fer_workbench.models.common import tag_model
from fer_workbench.preprocess import _as_batch, prepare_images

METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "scorecam", "saliency", "smoothgrad")
IMPLEMENTATIONS: tuple[str, ...] = ("auto", "fast", "tf-keras-vis")
NUM_CLASSES = len(CLASS_NAMES)
_EPS = 1e-7  # keras.backend.epsilon(), what tf-keras-vis' normalize() adds to the range


# ---------------------------------------------------------------------------------------------- validation


def _images(images) -> tuple[np.ndarray, bool]:
    images = np.asarray(images)
    batch, single = _as_batch(images)
    if batch.dtype != np.uint8:
        raise WorkbenchError(f"expected uint8 images, got {batch.dtype}")
    return batch, single


def _num_outputs(model) -> int:
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1:
        raise WorkbenchError(f"saliency needs a Keras model with one output, got {type(model).__name__}")
    return outputs[0].shape[-1]


def _check_model(model) -> tuple[str, ...]:
    """The model's classes (``models.io.model_class_names``), once it is a Keras model with one score per class."""
    from fer_workbench.models.io import model_class_names

    if not isinstance(model, keras.Model):
        raise WorkbenchError(f"saliency needs a Keras model, got {type(model).__name__}")
    size = _num_outputs(model)
    names = model_class_names(model)
    if size != len(names):
        raise WorkbenchError(f"model outputs {size} scores but there are {len(names)} classes "
                             f"({', '.join(names)})")
    return names


def _classes(classes, n: int, class_names: tuple[str, ...] = CLASS_NAMES) -> np.ndarray:
    """An int, a class name, or one per image → int32 array of length n, each in [0, len(class_names))."""
    values = np.asarray(classes)
    if values.dtype.kind in "US":
        lookup = {name: i for i, name in enumerate(class_names)}
        bad = sorted({str(v) for v in values.ravel() if str(v) not in lookup})
        if bad:
            raise WorkbenchError(f"unknown class name(s) {', '.join(bad)}; choose from {', '.join(class_names)}")
        values = np.vectorize(lookup.__getitem__, otypes=[np.int64])(values)
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        values = values.astype(np.int64)
    if values.dtype.kind not in "iub":
        raise WorkbenchError(f"classes must be integers or class names, got dtype {values.dtype}")
    if values.ndim == 0:
        values = np.full(n, int(values))
    if values.ndim != 1 or len(values) != n:
        raise WorkbenchError(f"classes must be one int or one per image ({n}), got shape {values.shape}")
    if n and (values.min() < 0 or values.max() >= len(class_names)):
        raise WorkbenchError(f"class index out of range 0..{len(class_names) - 1}: "
                             f"{int(values.min()) if values.min() < 0 else int(values.max())}")
    return values.astype(np.int32)


# -------------------------------------------------------------------------------------------------- layers


def _is_conv(layer) -> bool:
    try:
        ndim = len(layer.output.shape)
    except (AttributeError, ValueError, TypeError):
        return False
    return ndim == 4 and ("Conv" in type(layer).__name__ or (isinstance(layer, keras.Model) and any(
        _is_conv(inner) for inner in layer.layers)))


def last_conv_layer(model: keras.Model) -> keras.layers.Layer:
    """The last top-level layer with a 4-D output that is a convolution (Conv2D, SeparableConv2D, ...), or a
    nested model holding one (a transfer base). For VGG that is the last block's last Conv2D, for mini-Xception
    ``class_conv``, for the baseline CNN ``conv3``: what tf-keras-vis picks."""
    for layer in reversed(model.layers):
        if _is_conv(layer):
            return layer
    raise WorkbenchError(f"model {model.name!r} has no convolutional layer for GradCAM")


def _resolve_layer(model: keras.Model, layer) -> keras.layers.Layer:
    if layer is None:
        return last_conv_layer(model)
    if isinstance(layer, keras.layers.Layer):
        found = next((candidate for candidate in model.layers if candidate is layer), None)
        if found is None:
            raise WorkbenchError(f"layer {layer.name!r} is not a top-level layer of model {model.name!r}")
    else:
        try:
            found = model.get_layer(name=layer) if isinstance(layer, str) else model.get_layer(index=int(layer))
        except (ValueError, IndexError, TypeError):
            raise WorkbenchError(f"model {model.name!r} has no layer {layer!r}") from None
    try:
        ndim = len(found.output.shape)
    except (AttributeError, ValueError):
        raise WorkbenchError(f"layer {found.name!r} has no single output tensor") from None
    if ndim != 4:
        raise WorkbenchError(f"layer {found.name!r} outputs {ndim}-D tensors; CAM methods need a 4-D feature map")
    return found


def _layer_output(layer) -> keras.KerasTensor:
    """The layer's output in the graph it is used in: for a nested model (a transfer base) ``layer.output`` is
    its own inner graph's tensor, not the one the outer model connects, so take the single call's output."""
    nodes = getattr(layer, "_inbound_nodes", None) or []
    if len(nodes) == 1 and len(nodes[0].output_tensors) == 1:
        return nodes[0].output_tensors[0]
    return layer.output


def _is_softmax(activation) -> bool:
    return activation is keras.activations.softmax or getattr(activation, "__name__", "") == "softmax"


def _logit_model(model: keras.Model) -> keras.Model:
    """A model with the same layers (shared weights) whose output is the logits before the final softmax.

    The package's models end in a separate ``Activation("softmax")`` layer, so this is a new graph over the
    caller's layers: nothing of theirs is modified and later weight updates are seen. A model whose last layer
    folds softmax into itself (``Dense(..., activation="softmax")``) is cloned and tf-keras-vis'
    ``ReplaceToLinear`` applied to the clone (weights copied each call). Any other output is used as is.
    """
    out_layer = model.outputs[0]._keras_history.operation
    activation = getattr(out_layer, "activation", None)
    if not _is_softmax(activation):
        return model
    if isinstance(out_layer, keras.layers.Activation):
        return keras.Model(model.inputs, out_layer.input, name=f"{model.name}_logits")
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    ReplaceToLinear()(clone)
    tag_model(clone, _fer_is_clone=True)
    return clone


def _cache(model: keras.Model) -> dict:
    cache = model.__dict__.get("_fer_saliency_cache")
    if cache is None:
        cache = {}
        tag_model(model, _fer_saliency_cache=cache)
    return cache


def _views(model: keras.Model) -> keras.Model:
    """The cached logit model (re-synced when it is a clone)."""
    cache = _cache(model)
    if "logits" not in cache:
        cache["logits"] = _logit_model(model)
    view = cache["logits"]
    if view.__dict__.get("_fer_is_clone"):
        view.set_weights(model.get_weights())
    return view


# ------------------------------------------------------------------------------------------------- GradCAM


def _upsample_normalise(cam: tf.Tensor) -> tf.Tensor:
    """B×h×w → B×48×48, bilinear with corners aligned (scipy ``zoom(order=1)``, what tf-keras-vis uses), then
    per-image min-max to [0, 1] as tf-keras-vis' ``normalize``."""
    cam = tf.raw_ops.ResizeBilinear(images=cam[..., None], size=[IMAGE_SIZE, IMAGE_SIZE], align_corners=True,
                                    half_pixel_centers=False)[..., 0]
    lo = tf.reduce_min(cam, axis=[1, 2], keepdims=True)
    hi = tf.reduce_max(cam, axis=[1, 2], keepdims=True)
    return (cam - lo) / (hi - lo + _EPS)


class _GradcamFn:
    """conv activations A and d logit_c / dA for a batch → ReLU(Σ_k mean(dA_k) · A_k), upsampled, normalised.

    A callable object rather than a closure: TF's retracing detector keys closures by their code, and every
    model gets its own function (see ``inference.compiled_predict``).
    """

    def __init__(self, net: keras.Model):
        self.net = net

    def __call__(self, x, classes):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            conv, logits = self.net(x, training=False)
            score = tf.gather(tf.cast(logits, tf.float32), classes, axis=1, batch_dims=1)
        grads = tf.cast(tape.gradient(score, conv), tf.float32)
        conv = tf.cast(conv, tf.float32)
        weights = tf.reduce_mean(grads, axis=[1, 2], keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(conv * weights, axis=-1))
        return _upsample_normalise(cam)


def _gradcam_fn(model: keras.Model, layer: keras.layers.Layer):
    """The traced GradCAM function for (model, layer), built once and cached on the model."""
    cache = _cache(model)
    key = ("gradcam", layer.name)
    view = _views(model)
    if key not in cache:
        target = view.get_layer(layer.name)  # the caller's own layer unless the view is a clone
        net = keras.Model(view.inputs, [_layer_output(target), view.outputs[0]], name=f"{model.name}_gradcam")
        spec = [tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32), tf.TensorSpec([None], tf.int32)]
        cache[key] = tf.function(_GradcamFn(net), input_signature=spec)
    return cache[key]


# ---------------------------------------------------------------------------------------------- tf-keras-vis


def _tfkv_maps(view: keras.Model, layer_name: str, x: np.ndarray, classes: np.ndarray, method: str,
               smooth_samples: int, smooth_noise: float, max_channels: int | None) -> np.ndarray:
    with warnings.catch_warnings():
        # tf-keras-vis 0.8.7 imports zoom from scipy.ndimage.interpolation (deprecated, works up to SciPy 2.0).
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*scipy.ndimage.*")
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.scores import CategoricalScore

    score = CategoricalScore([int(c) for c in classes])
    target = view.get_layer(layer_name) if layer_name else None
    with warnings.catch_warnings():
        # Keras warns that tf-keras-vis passes the one input as a list; harmless.
        warnings.filterwarnings("ignore", message=".*structure of `inputs`.*")
        warnings.filterwarnings("ignore", message=".*Expected: .*")
        if method in ("gradcam", "gradcam++"):
            cls = Gradcam if method == "gradcam" else GradcamPlusPlus
            out = cls(view)(score, x, penultimate_layer=target, seek_penultimate_conv_layer=False)
        elif method == "scorecam":
            # Score-CAM softmaxes what the model returns, so it gets logits: its weights are then probabilities.
            viz = Scorecam(view)
            object.__setattr__(viz, "model", _QuietPredict(view))
            out = viz(score, x, penultimate_layer=target, seek_penultimate_conv_layer=False,
                      max_N=max_channels)
        else:
            samples = smooth_samples if method == "smoothgrad" else 0
            out = Saliency(view)(score, x, smooth_samples=samples, smooth_noise=smooth_noise)
    return np.asarray(out, dtype=np.float32).reshape(len(x), IMAGE_SIZE, IMAGE_SIZE)


class _QuietPredict:
    """The model, with ``predict`` silenced (Score-CAM calls it with Keras' default progress bar)."""

    def __init__(self, model):
        self._model = model

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __call__(self, *args, **kwargs):
        return self._model(*args, **kwargs)

    def predict(self, x, batch_size=32, **kwargs):
        return self._model.predict(x, batch_size=batch_size, verbose=0, **kwargs)


@functools.cache
def _np_random_lock():
    import threading

    return threading.Lock()


# -------------------------------------------------------------------------------------------------- the API


def saliency_maps(model: keras.Model, images_uint8, classes, method: str = "gradcam", batch_size: int = 64,
                  layer=None, *, implementation: str = "auto", smooth_samples: int = 20, smooth_noise: float = 0.2,
                  max_channels: int | None = None, seed: int = 0) -> np.ndarray:
    """float32 N×48×48 maps in [0, 1] (each min-max normalised) of ``classes`` for uint8 N×48×48 images.

    ``method``: "gradcam", "gradcam++", "scorecam" (Wang et al. 2020), "saliency" (|d logit / d pixel|) or
    "smoothgrad" (the same averaged over ``smooth_samples`` noisy copies, noise σ = ``smooth_noise`` × the
    image's range, seeded). ``classes``: one int / class name, or one per image. ``layer`` (CAM methods): a
    name, index or layer; default the last convolution (``last_conv_layer``). ``max_channels``: Score-CAM on
    only that many highest-variance channels (faster; default all). ``implementation``: "auto" (the fast traced
    GradCAM, tf-keras-vis for the rest), "fast" (GradCAM only) or "tf-keras-vis". Images go through the model's
    own preprocessing (``model.fer_preprocessing``). A single 48×48 image gives a single 48×48 map.
    """
    if method not in METHODS:
        raise WorkbenchError(f"unknown saliency method {method!r}; choose one of {', '.join(METHODS)}")
    if implementation not in IMPLEMENTATIONS:
        raise WorkbenchError(f"unknown implementation {implementation!r}; choose one of {', '.join(IMPLEMENTATIONS)}")
    if implementation == "fast" and method != "gradcam":
        raise WorkbenchError(f"the fast implementation covers gradcam only, not {method!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise WorkbenchError(f"batch_size must be a positive integer, got {batch_size!r}")
    if method == "smoothgrad" and smooth_samples < 1:
        raise WorkbenchError(f"smooth_samples must be ≥ 1, got {smooth_samples}")
    class_names = _check_model(model)
    batch, single = _images(images_uint8)
    cls = _classes(classes, len(batch), class_names)
    target = _resolve_layer(model, layer) if method in ("gradcam", "gradcam++", "scorecam") else None
    if (target is not None and isinstance(target, keras.Model)
            and (method != "gradcam" or implementation == "tf-keras-vis")):
        raise WorkbenchError(f"{method} via tf-keras-vis cannot reach inside the nested model {target.name!r}; "
                             f"use method='gradcam' (the fast implementation) or a top-level conv layer")
    if method == "scorecam" and max_channels is not None:
        if not isinstance(max_channels, (int, np.integer)) or max_channels < 1:
            raise WorkbenchError(f"max_channels must be a positive integer, got {max_channels!r}")
        max_channels = min(int(max_channels), int(target.output.shape[-1]))
    x = prepare_images(batch, getattr(model, "fer_preprocessing", "none"))
    out = np.zeros((len(x), IMAGE_SIZE, IMAGE_SIZE), np.float32)
    if len(x) == 0:
        return out
    fast = method == "gradcam" and implementation != "tf-keras-vis"
    view = None if fast else _views(model)
    fn = _gradcam_fn(model, target) if fast else None
    rng_state = None
    if method == "smoothgrad":
        # tf-keras-vis draws SmoothGrad's noise from NumPy's global generator: seed it, then restore it.
        _np_random_lock().acquire()
        rng_state = np.random.get_state()
        np.random.seed(seed)
    try:
        for start in range(0, len(x), batch_size):
            stop = min(start + batch_size, len(x))
            if fast:
                maps = fn(tf.constant(x[start:stop]), tf.constant(cls[start:stop])).numpy()
            else:
                maps = _tfkv_maps(view, target.name if target is not None else "", x[start:stop], cls[start:stop],
                                  method, smooth_samples, smooth_noise, max_channels)
            out[start:stop] = maps
    finally:
        if rng_state is not None:
            np.random.set_state(rng_state)
            _np_random_lock().release()
    np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0, out=out)
    return out[0] if single else out
