"""Saliency maps and the checks that say whether to trust them.

* ``saliency_maps``: GradCAM, GradCAM++, ScoreCAM, vanilla gradients and SmoothGrad behind one batched call,
  on uint8 images through the model's own preprocessing. Gradients are taken of the class *logit* (the
  softmax is bypassed, as tf-keras-vis' ``ReplaceToLinear`` does) without touching the caller's model.
  GradCAM runs as one traced ``tf.function`` per model (conv activations, gradients, weighting, upsampling
  and normalisation in one graph); the other four methods are tf-keras-vis' own.
* ``randomisation_check``: Adebayo et al. (2018) cascading model-parameter randomisation.
* ``deletion_insertion``: Petsiuk et al. (2018) deletion / insertion curves against a random order.
* ``region_mass`` / ``region_report``: how much of a map falls where the synthetic data planted the signal.
"""

from __future__ import annotations

import functools
import warnings

import cv2
import keras
import numpy as np
import pandas as pd
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


def _check_model(model) -> None:
    if not isinstance(model, keras.Model):
        raise WorkbenchError(f"saliency needs a Keras model, got {type(model).__name__}")
    size = _num_outputs(model)
    if size != NUM_CLASSES:
        raise WorkbenchError(f"model outputs {size} scores but there are {NUM_CLASSES} classes "
                             f"({', '.join(CLASS_NAMES)})")


def _classes(classes, n: int) -> np.ndarray:
    """An int, a class name, or one per image → int32 array of length n, each in [0, NUM_CLASSES)."""
    values = np.asarray(classes)
    if values.dtype.kind in "US":
        lookup = {name: i for i, name in enumerate(CLASS_NAMES)}
        bad = sorted({str(v) for v in values.ravel() if str(v) not in lookup})
        if bad:
            raise WorkbenchError(f"unknown class name(s) {', '.join(bad)}; choose from {', '.join(CLASS_NAMES)}")
        values = np.vectorize(lookup.__getitem__, otypes=[np.int64])(values)
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        values = values.astype(np.int64)
    if values.dtype.kind not in "iub":
        raise WorkbenchError(f"classes must be integers or class names, got dtype {values.dtype}")
    if values.ndim == 0:
        values = np.full(n, int(values))
    if values.ndim != 1 or len(values) != n:
        raise WorkbenchError(f"classes must be one int or one per image ({n}), got shape {values.shape}")
    if n and (values.min() < 0 or values.max() >= NUM_CLASSES):
        raise WorkbenchError(f"class index out of range 0..{NUM_CLASSES - 1}: "
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
    _check_model(model)
    batch, single = _images(images_uint8)
    cls = _classes(classes, len(batch))
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


# ----------------------------------------------------------------------------------- randomisation (Adebayo)


def _block_key(name: str) -> str:
    """block3_conv1 → block3, m4_sep2 → m4, stem_bn1 → stem, fc1 → fc1, logits → logits."""
    return name.split("_", 1)[0]


def randomisation_steps(model: keras.Model, granularity: str = "block") -> list[list[str]]:
    """Layers with weights grouped into steps from the output backwards: one block (name prefix before '_',
    e.g. ``block4``, ``m3``, ``fc1``, ``logits``) or one layer per step."""
    if granularity not in ("block", "layer"):
        raise WorkbenchError(f"granularity must be 'block' or 'layer', got {granularity!r}")
    weighted = [layer for layer in model.layers if layer.weights]
    if granularity == "layer":
        return [[layer.name] for layer in reversed(weighted)]
    groups: dict[str, list[str]] = {}
    last: dict[str, int] = {}
    for i, layer in enumerate(weighted):
        key = _block_key(layer.name)
        groups.setdefault(key, []).append(layer.name)
        last[key] = i
    return [groups[key] for key in sorted(groups, key=lambda k: -last[k])]


def _initializer_for(layer, var, seed: int):
    name = var.name.split("/")[-1].split(":")[0]
    candidates = [f"{name}_initializer"]
    if name.endswith("_kernel"):
        candidates.append(f"{name[:-len('_kernel')]}_initializer")  # depthwise_kernel → depthwise_initializer
    init = next((getattr(layer, c) for c in candidates if getattr(layer, c, None) is not None), None)
    if init is None:
        init = keras.initializers.GlorotUniform() if len(var.shape) >= 2 else keras.initializers.Zeros()
    config = init.get_config()
    if "seed" in config:
        init = type(init).from_config({**config, "seed": seed})
    return init


def _reinitialise(layer, seed: int) -> None:
    if isinstance(layer, keras.Model):  # a nested model: each inner layer with its own initialisers
        for j, inner in enumerate(layer.layers):
            _reinitialise(inner, seed * 7919 + j)
        return
    for j, var in enumerate(layer.weights):
        init = _initializer_for(layer, var, seed * 1000 + j)
        var.assign(keras.ops.cast(init(var.shape, dtype=var.dtype), var.dtype))


def _spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman ρ between each pair of maps (average ranks for ties); 0 where either map is constant."""
    from scipy.stats import rankdata

    ra = rankdata(a.reshape(len(a), -1), axis=1)
    rb = rankdata(b.reshape(len(b), -1), axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra**2).sum(1) * (rb**2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra * rb).sum(1) / denom
    return np.where(denom > 0, rho, 0.0)


def randomisation_check(model: keras.Model, images, classes, method: str = "gradcam", steps=None, *,
                        granularity: str = "block", seed: int = 0, batch_size: int = 64, **kwargs) -> pd.DataFrame:
    """Cascading model-parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps").

    A clone of ``model`` is re-initialised step by step from the output backwards (``randomisation_steps``:
    one block or layer per step; ``steps`` an int keeps the first that many, a list of lists of layer names
    sets them). After each step the maps are recomputed and compared with the trained model's by Spearman
    rank correlation. Rows: step 0 (nothing randomised, ρ = 1) then one per step, with the layers randomised
    at that step, the cumulative count, mean / std ρ and the share of maps that came out constant (counted as
    ρ = 0). A method that explains the model should fall towards 0; one that stays high is an edge detector.
    """
    _check_model(model)
    batch, _ = _images(images)
    cls = _classes(classes, len(batch))
    if steps is None or isinstance(steps, (int, np.integer)):
        plan = randomisation_steps(model, granularity)
        if steps is not None:
            if steps < 1:
                raise WorkbenchError(f"steps must be ≥ 1, got {steps}")
            plan = plan[:int(steps)]
    else:
        plan = [[s] if isinstance(s, str) else list(s) for s in steps]
        known = {layer.name for layer in model.layers}
        unknown = sorted({name for group in plan for name in group} - known)
        if unknown:
            raise WorkbenchError(f"model {model.name!r} has no layer(s) {', '.join(unknown)}")
    reference = saliency_maps(model, batch, cls, method, batch_size, **kwargs)
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    tag_model(clone, fer_preprocessing=getattr(model, "fer_preprocessing", "none"))
    layer = kwargs.pop("layer", None)
    if layer is None and method in ("gradcam", "gradcam++", "scorecam"):
        layer = last_conv_layer(model).name
    rows = [{"step": 0, "randomised": "", "layers_randomised": 0, "spearman_mean": 1.0, "spearman_std": 0.0,
             "constant_share": float(np.mean(reference.reshape(len(reference), -1).std(1) == 0))}]
    done = 0
    for k, group in enumerate(plan, start=1):
        for j, name in enumerate(group):
            _reinitialise(clone.get_layer(name), seed * 100_003 + k * 101 + j)
        done += len(group)
        maps = saliency_maps(clone, batch, cls, method, batch_size, layer=layer, **kwargs)
        rho = _spearman_rows(reference, maps)
        rows.append({"step": k, "randomised": ",".join(group), "layers_randomised": done,
                     "spearman_mean": float(rho.mean()), "spearman_std": float(rho.std()),
                     "constant_share": float(np.mean(maps.reshape(len(maps), -1).std(1) == 0))})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ deletion / insertion (RISE)


def _baseline_images(batch: np.ndarray, baseline: str) -> np.ndarray:
    if baseline == "blur":
        # RISE's insertion canvas: a heavy blur keeps the mean brightness and removes the detail.
        return np.stack([cv2.GaussianBlur(image, (0, 0), sigmaX=5.0) for image in batch])
    mean = np.rint(batch.reshape(len(batch), -1).mean(1)).astype(np.uint8)
    return np.broadcast_to(mean[:, None, None], batch.shape).copy()


def _curves(model, batch, base, cls, orders, fractions, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of ``cls`` as the first k pixels of each order are deleted (→ base) / inserted (→ image)."""
    from fer_workbench.inference import predict_proba

    n, npix = len(batch), IMAGE_SIZE * IMAGE_SIZE
    counts = np.rint(fractions * npix).astype(np.int64)
    rank = np.empty_like(orders)
    np.put_along_axis(rank, orders, np.arange(npix)[None, :].repeat(n, 0), axis=1)  # position of each pixel
    deletion = np.empty((n, len(counts)), np.float32)
    insertion = np.empty((n, len(counts)), np.float32)
    flat_img, flat_base = batch.reshape(n, -1), base.reshape(n, -1)
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        taken = rank[sl, None, :] < counts[None, :, None]  # (m, steps, pixels): pixel is among the first k
        deleted = np.where(taken, flat_base[sl, None, :], flat_img[sl, None, :])
        inserted = np.where(taken, flat_img[sl, None, :], flat_base[sl, None, :])
        m = taken.shape[0]
        both = np.concatenate([deleted, inserted]).reshape(-1, IMAGE_SIZE, IMAGE_SIZE).astype(np.uint8)
        probs = predict_proba(model, both)
        target = np.tile(np.repeat(cls[sl], len(counts)), 2)
        p = probs[np.arange(len(both)), target].reshape(2, m, len(counts))
        deletion[sl], insertion[sl] = p[0], p[1]
    return deletion, insertion


def _auc(curves: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    return np.trapezoid(curves, fractions, axis=-1)


def deletion_insertion(model: keras.Model, images, classes, maps, steps: int = 20, baseline: str = "blur", *,
                       seed: int = 0, chunk: int = 64) -> dict:
    """Deletion and insertion curves (Petsiuk et al. 2018) for saliency ``maps`` and for a random order.

    Pixels are ranked by the map (ties broken at random, seeded) and in ``steps`` equal steps the top ones are
    replaced by the ``baseline`` ("blur": the image Gaussian-blurred with σ = 5 px; "mean": its mean gray)
    for deletion, or put back onto the baseline for insertion; the curve is the model's probability of the
    class (through its own preprocessing). AUCs are over the removed/added fraction 0..1, so in [0, 1]. A
    faithful map has deletion AUC below and insertion AUC above the random order's (``random_*``).

    Returns ``fractions``; mean curves ``deletion``, ``insertion``, ``random_deletion``,
    ``random_insertion``; mean AUCs ``deletion_auc``, ``insertion_auc``, ``random_deletion_auc``,
    ``random_insertion_auc``; and per-image AUC arrays under ``per_image`` (same keys).
    """
    _check_model(model)
    if baseline not in ("blur", "mean"):
        raise WorkbenchError(f"baseline must be 'blur' or 'mean', got {baseline!r}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise WorkbenchError(f"steps must be a positive integer, got {steps!r}")
    batch, _ = _images(images)
    cls = _classes(classes, len(batch))
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.shape != batch.shape:
        raise WorkbenchError(f"maps must match the images' shape {batch.shape}, got {maps.shape}")
    if len(batch) == 0:
        raise WorkbenchError("no images")
    rng = np.random.default_rng(seed)
    n, npix = len(batch), IMAGE_SIZE * IMAGE_SIZE
    tiebreak = rng.random((n, npix))
    flat = np.nan_to_num(maps.reshape(n, -1), nan=-np.inf)
    orders = np.lexsort((tiebreak, -flat), axis=1)  # by map descending, then random
    random_orders = np.argsort(rng.random((n, npix)), axis=1)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    base = _baseline_images(batch, baseline)
    d, i = _curves(model, batch, base, cls, orders, fractions, chunk)
    rd, ri = _curves(model, batch, base, cls, random_orders, fractions, chunk)
    curves = {"deletion": d, "insertion": i, "random_deletion": rd, "random_insertion": ri}
    result: dict = {"fractions": fractions, "steps": steps, "baseline": baseline, "n": n, "per_image": {}}
    for key, values in curves.items():
        result[key] = values.mean(axis=0)
        aucs = _auc(values, fractions)
        result[f"{key}_auc"] = float(aucs.mean())
        result["per_image"][f"{key}_auc"] = aucs
    return result


# ----------------------------------------------------------------------------------------- region checks


def region_mass(maps, masks) -> np.ndarray:
    """Share of each map's mass inside its image's mask (N; NaN for a zero map or an empty mask).

    ``masks``: N×48×48 bool (e.g. ``SyntheticTruth.image_region_masks``) or one 48×48 mask for all.
    """
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3 or maps.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise WorkbenchError(f"expected N×48×48 maps, got shape {maps.shape}")
    if masks.shape == (IMAGE_SIZE, IMAGE_SIZE):
        masks = np.broadcast_to(masks, maps.shape)
    if masks.shape != maps.shape:
        raise WorkbenchError(f"masks must be 48×48 or match the maps' shape {maps.shape}, got {masks.shape}")
    if np.any(maps < 0):
        raise WorkbenchError("maps must be non-negative to measure their mass")
    total = maps.sum(axis=(1, 2))
    inside = (maps * masks).sum(axis=(1, 2))
    empty = ~masks.any(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = inside / total
    share[(total <= 0) | empty] = np.nan
    return share


def region_report(maps, masks, labels, class_names=CLASS_NAMES) -> pd.DataFrame:
    """Per class: images, mean share of map mass inside the mask, mean share of the image the mask covers, and
    their ratio (``lift``: > 1 means the maps concentrate on the signal region). Images with an empty mask
    (non-faces) or a zero map are left out; a final ``all`` row pools every image."""
    share = region_mass(maps, masks)
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim == 2:
        masks = np.broadcast_to(masks, (len(share), IMAGE_SIZE, IMAGE_SIZE))
    labels = np.asarray(labels)
    if labels.shape != (len(share),):
        raise WorkbenchError(f"labels must be one per map ({len(share)}), got shape {labels.shape}")
    area = masks.mean(axis=(1, 2))
    valid = np.isfinite(share)
    rows = []
    groups = [(name, labels == k) for k, name in enumerate(class_names)] + [("all", np.ones(len(share), bool))]
    for name, member in groups:
        sel = member & valid
        mass, cover = (float(share[sel].mean()), float(area[sel].mean())) if sel.any() else (np.nan, np.nan)
        rows.append({"class": name, "n": int(sel.sum()), "mass_share": mass, "area_share": cover,
                     "lift": mass / cover if sel.any() and cover > 0 else np.nan})
    return pd.DataFrame(rows).set_index("class")


RANDOMISED_RHO_MAX = 0.3  # |ρ| with every layer randomised: below this the maps depend on the learned weights


def check_verdicts(sanity: pd.DataFrame, faithfulness: pd.DataFrame,
                   rho_max: float = RANDOMISED_RHO_MAX) -> pd.DataFrame:
    """Pass / fail per method and check, from ``randomisation_table`` and ``faithfulness_table``.

    Randomisation passes when the maps of the fully randomised model no longer resemble the trained model's
    (|mean ρ| < ``rho_max``); deletion passes when removing salient pixels first lowers the class probability
    faster than a random order (lower AUC), insertion when adding them first raises it faster (higher AUC).
    """
    rows = []
    for method, table in sanity.groupby("method", sort=False):
        last = table.sort_values("step").iloc[-1]
        rows.append({"method": method, "check": "randomisation: |ρ| with all layers randomised",
                     "value": abs(float(last["spearman_mean"])), "reference": rho_max,
                     "passed": abs(float(last["spearman_mean"])) < rho_max})
    for method, row in faithfulness.iterrows():
        rows.append({"method": method, "check": "deletion AUC vs random order", "value": float(row["deletion"]),
                     "reference": float(row["random_deletion"]),
                     "passed": float(row["deletion"]) < float(row["random_deletion"])})
        rows.append({"method": method, "check": "insertion AUC vs random order", "value": float(row["insertion"]),
                     "reference": float(row["random_insertion"]),
                     "passed": float(row["insertion"]) > float(row["random_insertion"])})
    return pd.DataFrame(rows, columns=["method", "check", "value", "reference", "passed"])


def example_positions(labels: np.ndarray, predicted: np.ndarray, class_names, per_class: int = 4, seed: int = 0
                      ) -> tuple[np.ndarray, list[str]]:
    """Up to ``per_class`` correct then up to ``per_class`` wrong examples of each class (positions), with
    "true → predicted" captions; drawn reproducibly."""
    rng = np.random.default_rng(seed)
    correct = predicted == labels
    chosen = []
    for k in range(len(class_names)):
        for member in (correct, ~correct):
            pool = np.flatnonzero((labels == k) & member)
            chosen.append(rng.choice(pool, min(per_class, len(pool)), replace=False))
    positions = np.concatenate(chosen).astype(int)
    names = np.asarray(class_names)
    return positions, [f"{names[labels[i]]} → {names[predicted[i]]}" for i in positions]


def class_mean_maps(images: np.ndarray, maps: np.ndarray, labels: np.ndarray, predicted: np.ndarray, class_names
                    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per class with correctly classified images: the mean face (uint8), the mean map (rescaled to [0, 1])
    and a caption with the count."""
    correct = predicted == labels
    present = [k for k in range(len(class_names)) if (correct & (labels == k)).any()]
    faces = np.stack([images[correct & (labels == k)].mean(0) for k in present]).astype(np.uint8)
    means = np.stack([maps[correct & (labels == k)].mean(0) for k in present])
    means /= np.maximum(means.max(axis=(1, 2), keepdims=True), 1e-8)
    return faces, means, [f"{class_names[k]} (n={(correct & (labels == k)).sum()})" for k in present]


def randomisation_table(model, images, classes, methods=("gradcam", "saliency"), seed: int = 0) -> pd.DataFrame:
    """``randomisation_check`` for several methods in one long table (column ``method``)."""
    return pd.concat([randomisation_check(model, images, classes, method, seed=seed).assign(method=method)
                      for method in methods], ignore_index=True)


def faithfulness_table(model, images, classes, methods=("gradcam", "saliency"), steps: int = 10, seed: int = 0
                       ) -> tuple[pd.DataFrame, dict]:
    """Deletion / insertion AUCs (and their random-order baselines) per method, plus the full curves."""
    curves, rows = {}, []
    for method in methods:
        maps = saliency_maps(model, images, classes, method)
        curves[method] = deletion_insertion(model, images, classes, maps, steps=steps, seed=seed)
        rows.append({"method": method, **{key: curves[method][f"{key}_auc"] for key in
                                          ("deletion", "random_deletion", "insertion", "random_insertion")}})
    return pd.DataFrame(rows).set_index("method"), curves


__all__ = ["METHODS", "check_verdicts", "class_mean_maps", "deletion_insertion", "example_positions",
           "faithfulness_table", "last_conv_layer", "randomisation_check", "randomisation_steps", "randomisation_table",
           "region_mass", "region_report", "saliency_maps"]
