"""Training, evaluation, checkpoints with resume, model files with cards, and fast prediction.

Splits: fit on Training, select (early stopping, best checkpoint) on PublicTest, report PrivateTest once.
Every random choice in the input pipeline is a stateless function of (seed, epoch, batch), so a resumed run
sees exactly the batches an uninterrupted one would have.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fer_workbench import CLASS_NAMES, IMAGE_SIZE
from fer_workbench.cleaning.duplicates import exact_duplicate_groups
from fer_workbench.config import Profile, Settings, get_profile
from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import UMASK, atomic_write_text, sha256_bytes
from fer_workbench.models import MODEL_NAMES, VGGConfig, as_vgg_config, build_model, tag_model
from fer_workbench.preprocess import check_variant, prepare_images
from fer_workbench.provenance import run_metadata

NUM_CLASSES = len(CLASS_NAMES)
AUTOTUNE = tf.data.AUTOTUNE


# ---------------------------------------------------------------------------------------------------- devices


@dataclass(frozen=True)
class DeviceSettings:
    """What the hardware selects: mixed-precision policy (None: float32), XLA, batch size."""

    gpu: bool
    mixed_precision: str | None
    jit_compile: bool
    batch_size: int


PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise WorkbenchError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 dot products natively (AVX512-BF16 or AMX-BF16; Linux /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def select_device(profile: Profile | str = "smoke", gpus: list | None = None,
                  compute_capability: tuple[int, int] | None = None, precision: str = "auto",
                  native_bf16: bool | None = None) -> DeviceSettings:
    """GPU present → mixed precision (bfloat16 on compute capability ≥ 8, else float16), XLA, the GPU batch size.

    ``precision`` "float32" forces full precision; "bfloat16" asks for mixed bfloat16 also on a CPU, which pays off
    only where the CPU has native bfloat16 (``cpu_has_native_bf16``: 1.24× the images/s of float32 on this
    project's 2-core AMD EPYC); elsewhere it warns and trains in float32. ``gpus`` defaults to
    ``tf.config.list_physical_devices("GPU")``; tests inject a list (and ``native_bf16``).
    """
    check_precision(precision)
    profile = get_profile(profile)
    if gpus is None:
        gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        policy = None
        if precision == "bfloat16":
            if native_bf16 if native_bf16 is not None else cpu_has_native_bf16():
                policy = "mixed_bfloat16"
            else:
                warnings.warn("precision bfloat16 asked for, but this CPU has no native bfloat16 (AVX512-BF16 / "
                              "AMX): training in float32", stacklevel=2)
        return DeviceSettings(gpu=False, mixed_precision=policy, jit_compile=False, batch_size=profile.batch_size)
    if compute_capability is None:
        try:
            compute_capability = tuple(tf.config.experimental.get_device_details(gpus[0])["compute_capability"])
        except Exception:  # noqa: BLE001 -- details unavailable (an injected device): the conservative policy
            compute_capability = (7, 0)
    if precision == "float32":
        policy = None
    elif precision == "bfloat16" or compute_capability >= (8, 0):
        policy = "mixed_bfloat16"
    else:
        policy = "mixed_float16"
    return DeviceSettings(gpu=True, mixed_precision=policy, jit_compile=True, batch_size=profile.gpu_batch_size)


def select_strategy(gpus: list | None = None) -> tf.distribute.Strategy:
    """Two or more GPUs → ``MirroredStrategy`` with one replica per GPU; otherwise TF's default single-device strategy.

    ``gpus`` defaults to ``tf.config.list_physical_devices("GPU")``; tests pass their own strategy to ``train``.
    """
    if gpus is None:
        gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) < 2:
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(len(gpus))])


def replica_scaled(batch_size: int, learning_rate: float, replicas: int) -> tuple[int, float]:
    """Linear scaling rule (Goyal et al. 2017): global batch = per-replica batch × replicas, learning rate × replicas.

    Batch sizes and learning rates in configs and search spaces are per replica, so a recipe means the same
    thing on one device and on eight.
    """
    return int(batch_size) * replicas, float(learning_rate) * replicas


@contextlib.contextmanager
def precision_policy(policy: str | None):
    """Set Keras' global dtype policy for the block (models built inside pick it up), then restore it."""
    previous = keras.config.dtype_policy()
    if policy:
        keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


# ------------------------------------------------------------------------------------------------ augmentation


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


# ---------------------------------------------------------------------------------------------------- input


def _sample_weights(labels: np.ndarray, class_weight: dict | str | None) -> np.ndarray | None:
    if class_weight is None:
        return None
    if class_weight == "balanced":
        counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
        present = counts > 0
        weights = np.zeros(NUM_CLASSES)
        weights[present] = len(labels) / (present.sum() * counts[present])
    elif isinstance(class_weight, dict):
        weights = np.ones(NUM_CLASSES)
        for k, v in class_weight.items():
            weights[CLASS_NAMES.index(k) if isinstance(k, str) else int(k)] = float(v)
    else:
        raise WorkbenchError(f"class_weight must be a dict, 'balanced' or None, got {class_weight!r}")
    return weights[labels].astype(np.float32)


def make_train_dataset(x: np.ndarray, labels: np.ndarray, batch_size: int, seed: int = 0, epochs: int = 1,
                       initial_epoch: int = 0, augment: float = 1.0, sample_indices: np.ndarray | None = None,
                       class_weight: dict | str | None = None) -> tuple[tf.data.Dataset, int]:
    """Batches for epochs ``initial_epoch..epochs-1`` in one stream, and the steps per epoch.

    ``x`` is model input (float32 N×48×48×1). Each epoch is a seeded permutation of ``sample_indices`` (default:
    every row; pass repeated indices to oversample). Batches are (x, one-hot y[, sample weight]).
    """
    labels = np.asarray(labels, dtype=np.int64)
    indices = np.arange(len(x)) if sample_indices is None else np.asarray(sample_indices, dtype=np.int64)
    if len(indices) == 0:
        raise WorkbenchError("no training images")
    steps = math.ceil(len(indices) / batch_size)
    x_t = tf.constant(x)
    y_t = tf.one_hot(labels, NUM_CLASSES)
    weights = _sample_weights(labels, class_weight)
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
        return (images, y) if w_t is None else (images, y, tf.gather(w_t, idx))

    ds = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches)
    ds = ds.enumerate(start=initial_epoch * steps).map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE), steps


def make_eval_dataset(x: np.ndarray, labels: np.ndarray, batch_size: int) -> tf.data.Dataset:
    y = tf.one_hot(np.asarray(labels, dtype=np.int64), NUM_CLASSES)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(AUTOTUNE)


# ------------------------------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class TrainConfig(Settings):
    """Model, preprocessing and optimisation settings; None fields are filled from the profile or defaults.

    Defaults follow the published FER2013 VGG recipe: SGD with Nesterov momentum and ReduceLROnPlateau
    (factor 0.75, patience 5), selection on PublicTest accuracy.
    """

    KIND: ClassVar[str] = "training setting"

    model: str = "vgg"
    model_kwargs: dict = field(default_factory=dict)
    preprocessing: str = "none"
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str = "sgd"  # "sgd" (Nesterov), "adam", "adamw"
    learning_rate: float | None = None  # sgd 0.01, adam/adamw 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "plateau"  # "plateau" (ReduceLROnPlateau), "cosine" (cosine decay), "constant"
    plateau_factor: float = 0.75
    plateau_patience: int = 5
    label_smoothing: float = 0.0
    augment: float = 1.0  # augmentation strength, 0 = off
    early_stopping_patience: int | None = None  # 0 = off
    monitor: str = "val_accuracy"
    precision: str = "auto"  # "auto" (mixed on a GPU), "float32", "bfloat16" (also on CPUs with native bfloat16)


def resolve_config(model: str | VGGConfig | TrainConfig | dict = "vgg", profile: Profile | str = "smoke",
                   **overrides) -> TrainConfig:
    """A complete TrainConfig from a model name, a VGGConfig, a TrainConfig or a dict (e.g. ``best_config``)."""
    profile = get_profile(profile)
    if isinstance(model, TrainConfig):
        config = model
    elif isinstance(model, VGGConfig):
        config = TrainConfig(model="vgg", model_kwargs=model.to_dict())
    elif isinstance(model, dict):
        config = TrainConfig.from_dict(model)
    elif isinstance(model, str):
        config = TrainConfig(model=model)
    else:
        raise WorkbenchError(f"expected a model name, VGGConfig, TrainConfig or dict, got {type(model).__name__}")
    if overrides:
        config = TrainConfig.from_dict({**config.to_dict(), **overrides})
    if config.model not in MODEL_NAMES:
        raise WorkbenchError(f"unknown model {config.model!r}; choose one of {', '.join(MODEL_NAMES)}")
    check_variant(config.preprocessing)
    check_precision(config.precision)
    if config.optimizer not in ("sgd", "adam", "adamw"):
        raise WorkbenchError(f"unknown optimizer {config.optimizer!r}; choose sgd, adam or adamw")
    if config.schedule not in ("plateau", "cosine", "constant"):
        raise WorkbenchError(f"unknown schedule {config.schedule!r}; choose plateau, cosine or constant")
    model_kwargs = dict(config.model_kwargs)
    if config.model == "vgg":
        model_kwargs = as_vgg_config(model_kwargs.pop("config", profile.vgg_preset), **model_kwargs).to_dict()
    return replace(
        config, model_kwargs=model_kwargs,
        epochs=config.epochs if config.epochs is not None else profile.epochs,
        learning_rate=config.learning_rate if config.learning_rate is not None else
        (0.01 if config.optimizer == "sgd" else 1e-3),
        early_stopping_patience=(config.early_stopping_patience if config.early_stopping_patience is not None
                                 else profile.early_stopping_patience))


def make_optimizer(config: TrainConfig, steps_per_epoch: int = 1) -> keras.optimizers.Optimizer:
    lr = config.learning_rate
    if config.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, config.epochs * steps_per_epoch))
    wd = config.weight_decay or None
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=config.momentum, nesterov=True, weight_decay=wd)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(lr, weight_decay=wd)
    return keras.optimizers.AdamW(lr, weight_decay=config.weight_decay)


def compile_model(model: keras.Model, config: TrainConfig, steps_per_epoch: int = 1, jit_compile: bool = False
                  ) -> keras.Model:
    model.compile(optimizer=make_optimizer(config, steps_per_epoch),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                  metrics=["accuracy"], jit_compile=jit_compile)
    return model


# ---------------------------------------------------------------------------------------------- callbacks


def _finite(value):
    value = float(value)
    return value if math.isfinite(value) else None


class _Resumable:
    """Mixin: restore counters (wait, best, ...) that Keras resets in on_train_begin."""

    _STATE: tuple[str, ...] = ()

    def set_initial_state(self, state: dict | None):
        self._initial_state = state or {}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for key, value in getattr(self, "_initial_state", {}).items():
            if value is not None:
                setattr(self, key, value)

    def get_state(self) -> dict:
        return {key: _finite(getattr(self, key)) for key in self._STATE}


class ResumableReduceLROnPlateau(_Resumable, keras.callbacks.ReduceLROnPlateau):
    _STATE = ("wait", "best", "cooldown_counter")


class ResumableEarlyStopping(_Resumable, keras.callbacks.EarlyStopping):
    _STATE = ("wait", "best")


def _current_lr(optimizer) -> float:
    lr = optimizer.learning_rate  # a Keras variable, or a tensor when a schedule drives it
    return float(tf.convert_to_tensor(getattr(lr, "value", lr)).numpy())


class _EpochLog(keras.callbacks.Callback):
    """Adds the epoch's learning rate and wall seconds to the logs (and so to the history)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _current_lr(self.model.optimizer)
            logs["seconds"] = time.perf_counter() - self._start


class _Checkpointer(keras.callbacks.Callback):
    """Each epoch: last.keras (+ best.keras when the monitor improves) atomically, then state.json."""

    def __init__(self, out_dir: Path, state: dict, monitor: str, resumables: dict):
        super().__init__()
        self.out_dir, self.state, self.monitor, self.resumables = out_dir, state, monitor, resumables

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
        state = self.state
        state["history"].append(row)
        value = logs.get(self.monitor)
        better = value is not None and (state["best"] is None or (value > state["best"] if "acc" in self.monitor
                                                                  else value < state["best"]))
        ckpt = self.out_dir / "checkpoints"
        _save_keras_atomic(self.model, ckpt / "last.keras")
        if better:
            state["best"], state["best_epoch"] = float(value), epoch + 1
            _save_keras_atomic(self.model, ckpt / "best.keras")
        state["epoch"] = epoch + 1
        state["stopped_early"] = bool(self.model.stop_training)
        state["callbacks"] = {name: cb.get_state() for name, cb in self.resumables.items()}
        # The state is written last, so it never names a checkpoint that is not on disk.
        atomic_write_text(self.out_dir / "state.json", json.dumps(state, indent=1))


# ----------------------------------------------------------------------------------------- saving / loading


def _save_keras_atomic(model: keras.Model, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keras insists on a ".keras" suffix, so files.atomic_path's ".tmp" names will not do.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
    os.close(fd)
    try:
        model.save(tmp, overwrite=True)
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600 files; model files get the usual permissions
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def card_path_for(model_path: str | os.PathLike) -> Path:
    """``model.keras`` → ``model_card.json``; any other ``NAME.keras`` → ``NAME.model_card.json``."""
    model_path = Path(model_path)
    name = "model_card.json" if model_path.name == "model.keras" else f"{model_path.stem}.model_card.json"
    return model_path.with_name(name)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, tuple, set)):
        return str(value) if isinstance(value, Path) else list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_model(model: keras.Model, path: str | os.PathLike, card: dict | None = None) -> Path:
    """Write the ``.keras`` file atomically and its model card (class names, preprocessing, provenance...)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise WorkbenchError(f"{path}: model files must end in .keras")
    card = dict(card or {})
    card.setdefault("model", getattr(model, "fer_spec", {"name": model.name}))
    card.setdefault("preprocessing", getattr(model, "fer_preprocessing", "none"))
    card.setdefault("class_names", list(CLASS_NAMES))
    card.setdefault("params", int(model.count_params()))
    if hasattr(model, "fer_pretrained"):
        card.setdefault("pretrained_weights", bool(model.fer_pretrained))
    card.setdefault("metadata", run_metadata())
    _save_keras_atomic(model, path)
    atomic_write_text(card_path_for(path), json.dumps(card, indent=1, default=_json_default))
    tag_model(model, fer_card=card)
    return path


def load_model(path: str | os.PathLike, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` file in Keras safe mode; its card (when present) sets ``fer_preprocessing``/``fer_card``."""
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"{path}: no such model file")
    if path.suffix != ".keras":
        raise WorkbenchError(f"{path}: not a .keras model file")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=compile)
    except Exception as exc:  # noqa: BLE001 -- zip, HDF5, JSON and config errors all mean "not a model"
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise WorkbenchError(f"{path}: not a loadable Keras model ({type(exc).__name__}: {reason})") from None
    card_file = card_path_for(path)
    card = {}
    if card_file.is_file():
        try:
            card = json.loads(card_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WorkbenchError(f"{card_file}: unreadable model card ({exc})") from None
    tag_model(model, fer_card=card, fer_preprocessing=card.get("preprocessing", "none"))
    if "model" in card:
        tag_model(model, fer_spec=card["model"])
    return model


# ------------------------------------------------------------------------------------------------ prediction

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
    """uint8 images (N×48×48 or one 48×48) → N×7 probabilities, via the model's own preprocessing variant.

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
    probs = np.concatenate(out) if out else np.zeros((0, NUM_CLASSES), np.float32)
    return probs[0] if single else probs


class Predictor:
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
        probs = np.atleast_2d(self(images))
        return [CLASS_NAMES[i] for i in probs.argmax(axis=1)]


def evaluate(model: keras.Model, images: np.ndarray, labels: np.ndarray, tta: bool = False,
             preprocessing: str | None = None) -> dict:
    """Accuracy, mean log loss and count on uint8 images."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return {"accuracy": None, "loss": None, "n": 0}
    probs = predict_proba(model, images, tta=tta, preprocessing=preprocessing)
    loss = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)).mean()
    return {"accuracy": float((probs.argmax(1) == labels).mean()), "loss": float(loss), "n": len(labels)}


def model_report(model: keras.Model, dataset: Dataset, tta: bool = False) -> dict:
    """What a model card reports: PublicTest accuracy; PrivateTest summary metrics and per-class precision /
    recall / F1 (with and without ten-crop TTA when asked), and accuracy on the leakage-free PrivateTest."""
    from fer_workbench.metrics import per_class_table, summary_metrics

    report: dict = {"tta": tta}
    if "PublicTest" in dataset.split_names():
        val = dataset.split("PublicTest")
        report["PublicTest"] = evaluate(model, val.images, val.labels)
    if "PrivateTest" not in dataset.split_names():
        return report
    test = dataset.split("PrivateTest")
    clean = np.isin(np.flatnonzero(dataset.splits == "PrivateTest"), leakage_free_indices(dataset))
    for key, use_tta in (("PrivateTest", False), ("PrivateTest_tta", True)):
        if use_tta and not tta:
            continue
        probs = predict_proba(model, test.images, tta=use_tta)
        entry = summary_metrics(test.labels, probs)
        entry["per_class"] = per_class_table(test.labels, probs, dataset.class_names)[
            ["precision", "recall", "f1", "support"]].to_dict(orient="index")
        if clean.any():
            entry["leakage_free_accuracy"] = float((probs[clean].argmax(1) == test.labels[clean]).mean())
            entry["leakage_free_n"] = int(clean.sum())
        report[key] = entry
    return report


def float32_copy(model: keras.Model) -> keras.Model:
    """The same network with float32 layers and the trained weights (mixed-precision variables are float32 already).

    Model files are always float32: a bfloat16 layer on a CPU without native bfloat16 is emulated and slow, and
    saliency gradients want full precision.
    """
    spec = getattr(model, "fer_spec", None)
    if spec is None:
        raise WorkbenchError(f"{model.name}: no fer_spec, so it cannot be rebuilt in float32")
    with precision_policy("float32"):
        clone = build_model(spec["name"], **spec.get("kwargs", {}))
    clone.set_weights(model.get_weights())
    tag_model(clone, **{k: v for k, v in model.__dict__.items() if k.startswith("fer_")})
    return clone


def run_model_path(output_dir: str | os.PathLike) -> Path:
    """Where notebook 03 leaves the retrained best model of a run."""
    return Path(output_dir) / "models" / "best" / "model.keras"


def resolve_model_path(path: str | os.PathLike | None, output_dir: str | os.PathLike | None = None,
                       prefer: str = "shipped") -> Path:
    """The given model file; else the shipped model and (inside a pipeline run) the model notebook 03 trained
    in ``output_dir``, in the order ``prefer`` ("shipped" or "run") says; a clear error when there is none.

    The analysis notebooks prefer the run's model (it was trained on the run's data and classes); prediction on
    photos prefers the shipped FER2013 model.
    """
    from fer_workbench.config import shipped_model_path

    if path:
        path = Path(path)
        if not path.is_file():
            raise WorkbenchError(f"{path}: no such model file")
        return path
    if prefer not in ("shipped", "run"):
        raise WorkbenchError(f"prefer must be 'shipped' or 'run', got {prefer!r}")
    candidates = [shipped_model_path()] + ([run_model_path(output_dir)] if output_dir else [])
    if prefer == "run":
        candidates.reverse()
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise WorkbenchError(f"no model found (looked for {', '.join(map(str, candidates))}); pass --model PATH "
                         "(a .keras file from fer-workbench train) or run notebook 03 first")


def available_models(path: str | os.PathLike | None, output_dir: str | os.PathLike | None = None,
                     prefer: str = "shipped") -> dict[str, Path]:
    """Every model a notebook can compare, label → file: ``resolve_model_path``'s choice first, then the shipped
    model and the run's notebook-03 model when they exist and are other files."""
    from fer_workbench.config import shipped_model_path

    chosen = resolve_model_path(path, output_dir, prefer)
    labelled = [("shipped FER2013 model", shipped_model_path())]
    if output_dir:
        labelled.append(("this run's notebook-03 model", run_model_path(output_dir)))
    label_of = {candidate.resolve(): label for label, candidate in labelled if candidate.is_file()}
    models = {label_of.get(chosen.resolve(), chosen.name): chosen}
    for resolved, label in label_of.items():
        if resolved != chosen.resolve():
            models[label] = resolved
    return models


def predict_with_models(models: dict[str, Path], splits: dict[str, Dataset], num_classes: int, tta: bool = False,
                        loaded: dict[str, keras.Model] | None = None) -> tuple[dict, dict[str, str]]:
    """``{label: {split: probabilities}}`` for each model in ``available_models``'s dict that predicts
    ``num_classes`` classes, and ``{label: reason}`` for those left out. ``loaded`` reuses models already in memory."""
    predictions, skipped = {}, {}
    for label, path in models.items():
        model = (loaded or {}).get(label) or load_model(path)
        n_out = int(model.output_shape[-1])
        if n_out != num_classes:
            skipped[label] = f"{path}: predicts {n_out} classes, the data has {num_classes}"
            continue
        predictions[label] = {name: predict_proba(model, part.images, tta=tta) for name, part in splits.items()}
    return predictions, skipped


def evaluation_document(model: keras.Model, model_path, dataset: Dataset, split: str | None = "PrivateTest",
                        tta: bool = False) -> dict:
    """What `fer-workbench evaluate --json` prints: metrics.evaluation_report on one split (all rows when the
    dataset has no such split, e.g. a flat folder), with the model, data checksum and excluded classes."""
    from fer_workbench.metrics import evaluation_report

    n_out = int(model.output_shape[-1])
    if n_out != len(dataset.class_names):
        raise WorkbenchError(f"{model_path}: the model predicts {n_out} classes but {dataset.source} has "
                             f"{len(dataset.class_names)}")
    part = dataset.split(split) if split else dataset
    if len(part) == 0:
        raise WorkbenchError(f"{dataset.source}: split {split!r} is empty")
    probs = predict_proba(model, part.images, tta=tta)
    return evaluation_report(part.labels, probs, dataset.class_names, excluded_classes=dataset.skipped_classes,
                             model=str(model_path), data_checksum=dataset.checksum, data_source=dataset.source,
                             split=split or "all", tta=tta)


def leakage_free_indices(dataset: Dataset, test_split: str = "PrivateTest", train_split: str = "Training"
                         ) -> np.ndarray:
    """Dataset positions of ``test_split`` images with no byte-identical copy in ``train_split``."""
    train_idx = np.flatnonzero(dataset.splits == train_split)
    test_idx = np.flatnonzero(dataset.splits == test_split)
    groups = exact_duplicate_groups(dataset.images[np.concatenate([train_idx, test_idx])])
    train_groups = np.unique(groups[:len(train_idx)])
    test_groups = groups[len(train_idx):]
    leaked = (test_groups >= 0) & np.isin(test_groups, train_groups)
    return test_idx[~leaked]


# -------------------------------------------------------------------------------------------------- training


@dataclass
class TrainingResult:
    model: keras.Model
    history: pd.DataFrame
    config: TrainConfig
    out_dir: Path
    model_path: Path
    card_path: Path
    seconds: float  # wall time of fitting across all sessions of this run
    images_per_second: float
    metrics: dict  # best PublicTest epoch, PrivateTest (all and leakage-free)
    resumed_from_epoch: int = 0
    device: DeviceSettings | None = None


def _fingerprint(config: TrainConfig, seed: int, batch_size: int, data_hash: str) -> dict:
    settings = config.to_dict()
    settings.pop("epochs")  # asking for more epochs continues the same run
    return {"config": settings, "seed": seed, "batch_size": batch_size, "data": data_hash}


def _subsample(n: int, rows: int | None, seed: int) -> np.ndarray:
    if not rows or rows >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=rows, replace=False))


def train(dataset: Dataset, model: str | VGGConfig | TrainConfig | dict = "vgg", out_dir: str | os.PathLike = "run",
          profile: Profile | str = "smoke", seed: int = 0, *, class_weight: dict | str | None = None,
          sample_indices: np.ndarray | None = None, train_rows: int | None = None, tta: bool = False,
          overwrite: bool = False, callbacks: list | None = None, verbose="auto", gpus: list | None = None,
          strategy: tf.distribute.Strategy | None = None, **overrides) -> TrainingResult:
    """Train on Training, select on PublicTest, report PrivateTest once; resume when ``out_dir`` holds this run.

    ``model`` is a registry name, a VGGConfig, a TrainConfig or a dict of TrainConfig fields; ``overrides`` are
    TrainConfig fields. ``sample_indices`` index the (subsampled) Training split, repeats allowed (oversampling).
    Writes ``out_dir``/checkpoints/{last,best}.keras and state.json each epoch, then model.keras + model_card.json.
    ``strategy`` defaults to ``select_strategy(gpus)``; with several replicas the batch size and learning rate are
    scaled by ``replica_scaled``.
    """
    profile = get_profile(profile)
    config = resolve_config(model, profile, **overrides)
    device = select_device(profile, gpus, precision=config.precision)
    strategy = strategy if strategy is not None else select_strategy(gpus)
    replicas = strategy.num_replicas_in_sync
    batch_size, learning_rate = replica_scaled(config.batch_size or device.batch_size, config.learning_rate, replicas)
    fit_config = replace(config, learning_rate=learning_rate)
    out = Path(out_dir)
    train_set = dataset.split("Training")
    train_set = train_set.subset(_subsample(len(train_set), train_rows, seed))
    val_set = dataset.split("PublicTest")
    x_train = prepare_images(train_set.images, config.preprocessing)
    x_val = prepare_images(val_set.images, config.preprocessing)
    data_hash = sha256_bytes(train_set.images.tobytes() + train_set.labels.astype(np.int64).tobytes()
                             + val_set.images.tobytes())
    fingerprint = _fingerprint(config, seed, batch_size, data_hash)

    state_path = out / "state.json"
    state = None
    if state_path.exists() and not overwrite:
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WorkbenchError(f"{state_path}: unreadable training state ({exc})") from None
        if state.get("fingerprint") != fingerprint:
            old = state.get("fingerprint") or {}
            differ = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
            raise WorkbenchError(f"{out} holds a different run (differs in: {', '.join(differ)}); use another "
                                 f"directory or overwrite=True")
    if state is None:
        state = {"fingerprint": fingerprint, "epoch": 0, "history": [], "best": None, "best_epoch": None,
                 "stopped_early": False, "callbacks": {}, "fit_seconds": 0.0, "images_seen": 0}
    resumed_from = state["epoch"]

    keras.utils.set_random_seed(seed)
    with precision_policy(device.mixed_precision):
        steps = math.ceil((len(x_train) if sample_indices is None else len(sample_indices)) / batch_size)
        with strategy.scope():
            if resumed_from > 0:
                net = load_model(out / "checkpoints" / "last.keras", compile=True)
                net.jit_compile = device.jit_compile
            else:
                net = build_model(config.model, **config.model_kwargs)
                compile_model(net, fit_config, steps, device.jit_compile)
        spec = getattr(net, "fer_spec", None) or {"name": config.model, "kwargs": config.model_kwargs}
        tag_model(net, fer_spec=spec, fer_preprocessing=config.preprocessing)

        if state["epoch"] < config.epochs and not state["stopped_early"]:
            train_ds, steps = make_train_dataset(
                x_train, train_set.labels, batch_size, seed=seed, epochs=config.epochs,
                initial_epoch=state["epoch"], augment=config.augment, sample_indices=sample_indices,
                class_weight=class_weight)
            mode = "max" if "acc" in config.monitor else "min"
            resumables = {}
            if config.schedule == "plateau":
                resumables["plateau"] = ResumableReduceLROnPlateau(
                    monitor=config.monitor, mode=mode, factor=config.plateau_factor,
                    patience=config.plateau_patience, verbose=0)
            if config.early_stopping_patience:
                resumables["early_stopping"] = ResumableEarlyStopping(
                    monitor=config.monitor, mode=mode, patience=config.early_stopping_patience)
            for name, cb in resumables.items():
                cb.set_initial_state(state["callbacks"].get(name))
            cbs = [_EpochLog(), *resumables.values(), *(callbacks or []),
                   _Checkpointer(out, state, config.monitor, resumables)]
            start_epoch = state["epoch"]
            start = time.perf_counter()
            net.fit(train_ds, epochs=config.epochs, initial_epoch=start_epoch, steps_per_epoch=steps,
                    validation_data=make_eval_dataset(x_val, val_set.labels, batch_size), callbacks=cbs,
                    shuffle=False, verbose=verbose)
            state["fit_seconds"] += time.perf_counter() - start
            per_epoch = len(x_train) if sample_indices is None else len(sample_indices)
            state["images_seen"] += (state["epoch"] - start_epoch) * per_epoch
            atomic_write_text(state_path, json.dumps(state, indent=1))

        best = out / "checkpoints" / "best.keras"
        if best.exists():
            net.load_weights(best)
    if device.mixed_precision:
        net = float32_copy(net)

    history = pd.DataFrame(state["history"])
    metrics = {"best_epoch": state["best_epoch"], f"best_{config.monitor}": state["best"],
               **model_report(net, dataset, tta=tta)}

    seconds = state["fit_seconds"]
    ips = state["images_seen"] / seconds if seconds else 0.0
    card = {
        "model": spec, "train_config": config.to_dict(), "preprocessing": config.preprocessing, "seed": seed,
        "profile": profile.to_dict(), "data_checksum": dataset.checksum, "data_source": dataset.source,
        "training_rows": len(train_set), "batch_size": batch_size, "device": asdict(device),
        "distribution": {"strategy": type(strategy).__name__.lstrip("_"), "replicas": replicas,
                         "global_batch_size": batch_size, "learning_rate": learning_rate},
        "epochs_trained": state["epoch"], "stopped_early": state["stopped_early"], "training_seconds": seconds,
        "images_per_second": ips, "metrics": metrics,
        "metadata": run_metadata(seed=seed, profile=profile.name, data_checksum=dataset.checksum),
    }
    model_path = save_model(net, out / "model.keras", card)
    return TrainingResult(model=net, history=history, config=config, out_dir=out, model_path=model_path,
                          card_path=card_path_for(model_path), seconds=seconds, images_per_second=ips,
                          metrics=metrics, resumed_from_epoch=resumed_from, device=device)


def report_table(metrics: dict) -> pd.DataFrame:
    """The evaluation part of ``TrainingResult.metrics`` / a model card as one row per evaluated split."""
    rows = []
    for key, entry in metrics.items():
        if isinstance(entry, dict) and "accuracy" in entry:
            rows.append({"evaluated on": key, "n": entry.get("n"), "accuracy": entry.get("accuracy"),
                         "macro_f1": entry.get("macro_f1"), "leakage_free_accuracy": entry.get("leakage_free_accuracy"),
                         "log_loss": entry.get("log_loss", entry.get("loss")), "ece": entry.get("ece")})
    return pd.DataFrame(rows).set_index("evaluated on")
