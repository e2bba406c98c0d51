"""Fitting: configs, optimizers, resumable callbacks and ``train`` (restore or build → fit → finalise).

Splits: fit on Training, select (early stopping, best checkpoint; with ``average_last``, the snapshot average
against the best epoch) on PublicTest, report PrivateTest once. Batches come from ``inputs`` (stateless in
(seed, epoch, batch), mixup / CutMix included), so a resumed run sees exactly the batches an uninterrupted one
would have.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fer_workbench import CLASS_NAMES
from fer_workbench.config import Profile, Settings, get_profile
from fer_workbench.data.dataset import Dataset
from fer_workbench.distillation import check_distillation, distilled_targets
from fer_workbench.errors import WorkbenchError
from fer_workbench.evaluation import card_metrics
from fer_workbench.files import atomic_path, atomic_write_text, sha256_bytes
from fer_workbench.inputs import make_eval_dataset, make_train_dataset
from fer_workbench.models import MODEL_NAMES, VGGConfig, as_vgg_config, build_model, tag_model
from fer_workbench.models.io import _save_keras_atomic, card_path_for, float32_copy, load_model, save_model
from fer_workbench.preprocess import check_variant, prepare_images
from fer_workbench.provenance import read_resumable, run_metadata
from fer_workbench.runtime import (
    DeviceSettings,
    check_precision,
    precision_policy,
    replica_scaled,
    select_device,
    select_strategy,
)

# ------------------------------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class TrainConfig(Settings):
    """Model, preprocessing and optimisation settings; None fields are filled from the profile or defaults.

    Defaults follow the published FER2013 VGG recipe: SGD with Nesterov momentum and ReduceLROnPlateau
    (factor 0.75, patience 5), selection on PublicTest accuracy. Optimizer, learning rate and augmentation left
    unset come from the profile (``TrainSettings.optimizer`` ...): SGD with full augmentation on cpu/gpu, Adam on smoke.
    """

    KIND: ClassVar[str] = "training setting"

    model: str = "vgg"
    model_kwargs: dict = field(default_factory=dict)
    preprocessing: str = "none"
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None  # "sgd" (Nesterov), "adam", "adamw"; None: the profile's
    learning_rate: float | None = None  # None: the profile's, else sgd 0.01, adam/adamw 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "plateau"  # "plateau" (ReduceLROnPlateau), "cosine" (cosine decay), "constant"
    plateau_factor: float = 0.75
    plateau_patience: int = 5
    label_smoothing: float = 0.0
    augment: float | None = None  # augmentation strength, 0 = off; None: the profile's
    early_stopping_patience: int | None = None  # 0 = off
    monitor: str = "val_accuracy"
    precision: str = "auto"  # "auto" (mixed on a GPU), "float32", "bfloat16" (also on CPUs with native bfloat16)
    mixup: float = 0.0  # mixup's Beta(α, α) α, 0 = off (``inputs.mix_batch``)
    cutmix: float = 0.0  # CutMix's α, 0 = off; with mixup on too, each batch uses one of the two at random
    average_last: int = 0  # average the weights of the last N epochs (then re-estimate batch norm), 0 = off
    teachers: list = field(default_factory=list)  # distillation: model files / shipped names (``distillation``)
    teacher_weight: float = 0.0  # the teachers' share of the training targets, 0 = off
    teacher_temperature: float = 2.0  # softening of the teachers' probabilities


# TrainConfig fields added after runs were already on disk: left out of a run's fingerprint while off, so those
# runs still resume.
_OPTIONAL_FIELDS = {"mixup": 0.0, "cutmix": 0.0, "average_last": 0, "teachers": [], "teacher_weight": 0.0,
                    "teacher_temperature": 2.0}
BN_REESTIMATE_ROWS = 8192  # Training rows (at most) the batch-norm statistics of an averaged model are estimated on


def _check_alpha(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise WorkbenchError(f"{name} must be a number >= 0 (the Beta distribution's alpha; 0 = off), got {value!r}")


def _check_average_last(value, epochs: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WorkbenchError(f"average_last must be a whole number of epochs >= 0 (0 = off), got {value!r}")
    if value > epochs:
        raise WorkbenchError(f"average_last {value} is more than the run's {epochs} epochs")


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
    # The profile's recipe fills what the config leaves unset (its learning rate only goes with its optimizer).
    recipe_lr = profile.train.learning_rate if config.optimizer in (None, profile.train.optimizer) else None
    config = replace(config, optimizer=config.optimizer or profile.train.optimizer,
                     learning_rate=config.learning_rate if config.learning_rate is not None else recipe_lr,
                     augment=config.augment if config.augment is not None else profile.train.augment)
    if config.model not in MODEL_NAMES:
        raise WorkbenchError(f"unknown model {config.model!r}; choose one of {', '.join(MODEL_NAMES)}")
    check_variant(config.preprocessing)
    check_precision(config.precision)
    if config.optimizer not in ("sgd", "adam", "adamw"):
        raise WorkbenchError(f"unknown optimizer {config.optimizer!r}; choose sgd, adam or adamw")
    if config.schedule not in ("plateau", "cosine", "constant"):
        raise WorkbenchError(f"unknown schedule {config.schedule!r}; choose plateau, cosine or constant")
    _check_alpha("mixup", config.mixup)
    _check_alpha("cutmix", config.cutmix)
    check_distillation(config.teachers, config.teacher_weight, config.teacher_temperature)
    config = replace(config, teachers=list(config.teachers))
    model_kwargs = dict(config.model_kwargs)
    if config.model == "vgg":
        model_kwargs = as_vgg_config(model_kwargs.pop("config", profile.train.vgg_preset), **model_kwargs).to_dict()
    config = replace(
        config, model_kwargs=model_kwargs,
        epochs=config.epochs if config.epochs is not None else profile.train.epochs,
        learning_rate=config.learning_rate if config.learning_rate is not None else
        (0.01 if config.optimizer == "sgd" else 1e-3),
        early_stopping_patience=(config.early_stopping_patience if config.early_stopping_patience is not None
                                 else profile.train.early_stopping_patience))
    _check_average_last(config.average_last, config.epochs)
    return config


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


class EpochProgress(keras.callbacks.Callback):
    """A tqdm bar over a run's epochs with its PublicTest accuracy, for callers that train with ``verbose=0`` (a
    resumed run starts the bar at its epoch)."""

    def __init__(self, desc: str, leave: bool = False):
        super().__init__()
        self.desc, self.leave, self.bar = desc, leave, None

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.params.get("epochs"), desc=self.desc, unit="epoch", leave=self.leave)

    def on_epoch_end(self, epoch, logs=None):
        self.bar.n = epoch + 1
        if logs and "val_accuracy" in logs:
            self.bar.set_postfix(val_accuracy=f"{logs['val_accuracy']:.3f}")
        self.bar.refresh()

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()


def _seed_generators(model: keras.Model) -> list[tuple[str, keras.random.SeedGenerator]]:
    """(layer name, generator) of every layer drawing random numbers in training (dropout masks): their states
    are not in a ``.keras`` file, so the checkpoint state carries them for an exact resume."""
    return [(layer.name, layer.seed_generator) for layer in model._flatten_layers(include_self=False)
            if isinstance(getattr(layer, "seed_generator", None), keras.random.SeedGenerator)]


SNAPSHOT_DIR = "snapshots"  # inside checkpoints/: epoch-NNNN.npz, the weights at the end of an epoch


def _snapshot_path(out_dir: Path, epoch: int) -> Path:
    return out_dir / "checkpoints" / SNAPSHOT_DIR / f"epoch-{epoch:04d}.npz"


def _save_snapshot(weights: list[np.ndarray], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        np.savez(file, *weights)


def load_snapshot(path: str | os.PathLike) -> list[np.ndarray]:
    """The weights (``model.get_weights()`` order) one epoch's snapshot holds."""
    try:
        with np.load(path) as saved:
            return [saved[f"arr_{i}"] for i in range(len(saved.files))]
    except (OSError, ValueError, KeyError) as exc:
        raise WorkbenchError(f"{path}: unreadable weight snapshot ({exc})") from None


def average_snapshots(out_dir: str | os.PathLike, epochs) -> list[np.ndarray]:
    """The element-wise mean (accumulated in float64) of the snapshots of ``epochs`` in run ``out_dir``."""
    epochs = list(epochs)
    if not epochs:
        raise WorkbenchError(f"{out_dir}: no weight snapshots to average")
    total = None
    for epoch in epochs:
        weights = load_snapshot(_snapshot_path(Path(out_dir), epoch))
        if total is None:
            total = [w.astype(np.float64) for w in weights]
        elif len(weights) != len(total):
            raise WorkbenchError(f"{_snapshot_path(Path(out_dir), epoch)}: {len(weights)} weights, expected "
                                 f"{len(total)}")
        else:
            for acc, w in zip(total, weights, strict=True):
                acc += w
    return [(acc / len(epochs)).astype(w.dtype) for acc, w in zip(total, weights, strict=True)]


class _Checkpointer(keras.callbacks.Callback):
    """Each epoch: last.keras (+ best.keras when the monitor improves) atomically, with ``average_last`` the
    epoch's weight snapshot (the last N are kept, listed in the state's ``snapshots``), then state.json."""

    def __init__(self, out_dir: Path, state: dict, monitor: str, resumables: dict, average_last: int = 0):
        super().__init__()
        self.out_dir, self.state, self.monitor, self.resumables = out_dir, state, monitor, resumables
        self.average_last = average_last

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
        state["seed_generators"] = {name: gen.state.numpy().tolist() for name, gen in _seed_generators(self.model)}
        if self.average_last:
            _save_snapshot(self.model.get_weights(), _snapshot_path(self.out_dir, epoch + 1))
            kept = [e for e in state.get("snapshots", []) if e < epoch + 1] + [epoch + 1]
            state["snapshots"] = kept[-self.average_last:]
        # The state is written last, so it never names a checkpoint that is not on disk.
        atomic_write_text(self.out_dir / "state.json", json.dumps(state, indent=1))
        if self.average_last:  # snapshots the state no longer names (older epochs, an overwritten run) go
            for path in (self.out_dir / "checkpoints" / SNAPSHOT_DIR).glob("epoch-*.npz"):
                if path not in {_snapshot_path(self.out_dir, e) for e in state["snapshots"]}:
                    path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ weight averaging


def reestimate_batch_norm(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> int:
    """Replace every trainable BatchNormalization layer's moving mean and variance by their averages over ``x``
    (model input), as SWA does after averaging weights: the averaged weights never produced the statistics the
    layers carry. One forward pass in training mode with dropout off (the activations inference sees); each batch
    weighs by its size, so the mean is exactly the mean over ``x`` and the variance the mean of batch variances.
    Returns the rows used (0 when the model has no batch norm)."""
    layers = list(model._flatten_layers(include_self=False))
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
    if not norms or len(x) == 0:
        return 0
    dropouts = [layer for layer in layers if isinstance(layer, keras.layers.Dropout)]
    momenta, rates = [layer.momentum for layer in norms], [layer.rate for layer in dropouts]
    for layer in norms:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, np.float32))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, np.float32))
    seen = 0
    try:
        for layer in dropouts:
            layer.rate = 0.0
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size]
            for layer in norms:  # moving = moving·seen/(seen+b) + batch·b/(seen+b): the running mean over rows
                layer.momentum = seen / (seen + len(batch))
            model(batch, training=True)
            seen += len(batch)
    finally:
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum
        for layer, rate in zip(dropouts, rates, strict=True):
            layer.rate = rate
    return seen


def _publictest_score(model: keras.Model, val_set: Dataset, monitor: str) -> float:
    """What selection compares: PublicTest accuracy (higher is better), or for a loss monitor minus the
    cross-entropy, so that higher is better either way."""
    from fer_workbench.inference import predict_proba

    probabilities = predict_proba(model, val_set.images)
    if "acc" in monitor:
        return float((probabilities.argmax(1) == val_set.labels).mean())
    picked = probabilities[np.arange(len(val_set)), val_set.labels.astype(np.int64)]
    return -float(np.mean(-np.log(np.clip(picked, 1e-7, 1.0))))


def _averaged_or_best(net: keras.Model, out: Path, state: dict, config: TrainConfig, x_train: np.ndarray,
                      val_set: Dataset, batch_size: int, seed: int) -> tuple[keras.Model, dict]:
    """The snapshot average of the last ``average_last`` epochs (batch norm re-estimated on up to
    ``BN_REESTIMATE_ROWS`` Training rows) or ``net`` (the best PublicTest epoch), whichever scores better on
    PublicTest (a tie keeps the average), and the record of both for the card."""
    epochs = list(state.get("snapshots", []))
    averaged = float32_copy(net)
    averaged.set_weights(average_snapshots(out, epochs))
    rows = np.sort(np.random.default_rng(seed).choice(len(x_train), min(len(x_train), BN_REESTIMATE_ROWS),
                                                      replace=False))
    bn_rows = reestimate_batch_norm(averaged, x_train[rows], batch_size)
    scores = {"averaged": _publictest_score(averaged, val_set, config.monitor),
              "best_epoch": _publictest_score(net, val_set, config.monitor)}
    kept = "averaged" if scores["averaged"] >= scores["best_epoch"] else "best_epoch"
    measure = "accuracy" if "acc" in config.monitor else "cross_entropy"
    sign = 1.0 if measure == "accuracy" else -1.0
    record = {"epochs": epochs, "batch_norm_rows": bn_rows, "best_epoch": state["best_epoch"], "kept": kept,
              f"publictest_{measure}": {name: sign * value for name, value in scores.items()}}
    return (averaged if kept == "averaged" else net), record


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
    for name, off in _OPTIONAL_FIELDS.items():
        if settings[name] == off:
            settings.pop(name)
    return {"config": settings, "seed": seed, "batch_size": batch_size, "data": data_hash}


def _restore_state(out: Path, fingerprint: dict, overwrite: bool) -> dict:
    """This run's saved state (when ``out`` holds the same run), else a fresh one; a clear error for another run."""
    state = None if overwrite else read_resumable(
        out / "state.json", "fingerprint", fingerprint, "training state",
        f"{out} holds a different run", "use another directory or overwrite=True")
    if state is not None:
        return state
    return {"fingerprint": fingerprint, "epoch": 0, "history": [], "best": None, "best_epoch": None,
            "stopped_early": False, "callbacks": {}, "fit_seconds": 0.0, "images_seen": 0}


def _restore_or_build(out: Path, state: dict, config: TrainConfig, fit_config: TrainConfig, steps: int,
                      device: DeviceSettings, class_names: tuple[str, ...] = CLASS_NAMES) -> keras.Model:
    """The last checkpoint of a resumed run (optimizer state included), or a new compiled network with one output
    per class of ``class_names`` (the data's)."""
    if state["epoch"] > 0:
        net = load_model(out / "checkpoints" / "last.keras", compile=True)
        net.jit_compile = device.jit_compile
        saved = state.get("seed_generators", {})
        for name, generator in _seed_generators(net):
            if name in saved:
                generator.state.assign(np.asarray(saved[name], dtype=generator.state.dtype))
    else:
        kwargs = dict(config.model_kwargs)
        if len(class_names) != len(CLASS_NAMES):  # FER2013's seven are every builder's default
            kwargs.setdefault("num_classes", len(class_names))
        net = build_model(config.model, **kwargs)
        compile_model(net, fit_config, steps, device.jit_compile)
    if int(net.output_shape[-1]) != len(class_names):
        raise WorkbenchError(f"{config.model}: predicts {int(net.output_shape[-1])} classes but the data has "
                             f"{len(class_names)} ({', '.join(class_names)})")
    spec = getattr(net, "fer_spec", None) or {"name": config.model, "kwargs": config.model_kwargs}
    return tag_model(net, fer_spec=spec, fer_preprocessing=config.preprocessing, fer_class_names=tuple(class_names))


def _fit(net: keras.Model, out: Path, state: dict, config: TrainConfig, train_xy: tuple, val_xy: tuple,
         batch_size: int, seed: int, sample_indices, class_weight, callbacks, verbose,
         class_names: tuple[str, ...] = CLASS_NAMES) -> None:
    """Fit the remaining epochs, checkpointing after each; ``state`` is updated (and saved) in place."""
    train_ds, steps = make_train_dataset(
        *train_xy, batch_size, seed=seed, epochs=config.epochs, initial_epoch=state["epoch"], augment=config.augment,
        sample_indices=sample_indices, class_weight=class_weight, class_names=class_names, mixup=config.mixup,
        cutmix=config.cutmix)
    mode = "max" if "acc" in config.monitor else "min"
    resumables = {}
    if config.schedule == "plateau":
        resumables["plateau"] = ResumableReduceLROnPlateau(
            monitor=config.monitor, mode=mode, factor=config.plateau_factor, patience=config.plateau_patience,
            verbose=0)
    if config.early_stopping_patience:
        resumables["early_stopping"] = ResumableEarlyStopping(
            monitor=config.monitor, mode=mode, patience=config.early_stopping_patience)
    for name, cb in resumables.items():
        cb.set_initial_state(state["callbacks"].get(name))
    cbs = [_EpochLog(), *resumables.values(), *(callbacks or []),
           _Checkpointer(out, state, config.monitor, resumables, config.average_last)]
    start_epoch = state["epoch"]
    start = time.perf_counter()
    net.fit(train_ds, epochs=config.epochs, initial_epoch=start_epoch, steps_per_epoch=steps,
            validation_data=make_eval_dataset(*val_xy, batch_size, len(class_names)), callbacks=cbs, shuffle=False,
            verbose=verbose)
    state["fit_seconds"] += time.perf_counter() - start
    per_epoch = len(train_xy[0]) if sample_indices is None else len(sample_indices)
    state["images_seen"] += (state["epoch"] - start_epoch) * per_epoch
    atomic_write_text(out / "state.json", json.dumps(state, indent=1))


def train(dataset: Dataset, model: str | VGGConfig | TrainConfig | dict = "vgg", out_dir: str | os.PathLike = "run",
          profile: Profile | str = "smoke", seed: int = 0, *, class_weight: dict | str | None = None,
          sample_indices: np.ndarray | None = None, train_rows: int | None = None, tta: bool = False,
          overwrite: bool = False, callbacks: list | None = None, verbose="auto", gpus: list | None = None,
          strategy: tf.distribute.Strategy | None = None, **overrides) -> TrainingResult:
    """Train on Training, select on PublicTest, report PrivateTest once; resume when ``out_dir`` holds this run.

    ``model`` is a registry name, a VGGConfig, a TrainConfig or a dict of TrainConfig fields; ``overrides`` are
    TrainConfig fields. ``train_rows`` (default: the profile's; 0 or None there: all) subsamples Training
    reproducibly; ``sample_indices`` index that subsample, repeats allowed (oversampling). Writes
    ``out_dir``/checkpoints/{last,best}.keras and state.json each epoch, then model.keras + model_card.json.
    ``strategy`` defaults to ``select_strategy(gpus)``; with several replicas the batch size and learning rate are
    scaled by ``replica_scaled``. The network predicts the data's classes (``dataset.class_names``, recorded in
    the card with its ``label_source``) and fits its soft labels when the label source gives them.

    What is selected, always on PublicTest only: the epoch with the best ``monitor`` (checkpoints/best.keras).
    With ``average_last`` N the run also keeps the weights of its last N epochs; the evaluated and saved model is
    their average (batch norm re-estimated on Training) unless the best single epoch scores better on PublicTest,
    in which case that epoch is; the card's ``metrics.averaging`` records both PublicTest figures and which was
    kept. PrivateTest is evaluated once, on the kept model only.
    """
    profile = get_profile(profile)
    config = resolve_config(model, profile, **overrides)
    device = select_device(profile, gpus, precision=config.precision)
    strategy = strategy if strategy is not None else select_strategy(gpus)
    replicas = strategy.num_replicas_in_sync
    batch_size, learning_rate = replica_scaled(config.batch_size or device.batch_size, config.learning_rate, replicas)
    out = Path(out_dir)
    train_set = dataset.split("Training").sample(profile.train.rows if train_rows is None else train_rows, seed)
    val_set = dataset.split("PublicTest")
    x_train = prepare_images(train_set.images, config.preprocessing)
    x_val = prepare_images(val_set.images, config.preprocessing)
    train_targets = train_set.labels if train_set.soft_labels is None else train_set.soft_labels
    distillation = None
    if config.teacher_weight:
        train_targets, distillation = distilled_targets(train_set, train_targets, config.teachers,
                                                        config.teacher_weight, config.teacher_temperature)
    data_hash = sha256_bytes(train_set.images.tobytes() + train_set.labels.astype(np.int64).tobytes()
                             + (b"" if train_set.soft_labels is None else train_set.soft_labels.tobytes())
                             + val_set.images.tobytes()
                             + "".join(t["sha256"] for t in (distillation or {}).get("teachers", [])).encode())
    state = _restore_state(out, _fingerprint(config, seed, batch_size, data_hash), overwrite)
    resumed_from = state["epoch"]

    keras.utils.set_random_seed(seed)
    with precision_policy(device.mixed_precision):
        steps = math.ceil((len(x_train) if sample_indices is None else len(sample_indices)) / batch_size)
        with strategy.scope():
            net = _restore_or_build(out, state, config, replace(config, learning_rate=learning_rate), steps, device,
                                    tuple(dataset.class_names))
        if state["epoch"] < config.epochs and not state["stopped_early"]:
            _fit(net, out, state, config, (x_train, train_targets), (x_val, val_set.labels), batch_size, seed,
                 sample_indices, class_weight, callbacks, verbose, tuple(dataset.class_names))
        best = out / "checkpoints" / "best.keras"
        if best.exists():
            net.load_weights(best)
    if device.mixed_precision:
        net = float32_copy(net)
    averaging = None
    if config.average_last:
        net, averaging = _averaged_or_best(net, out, state, config, x_train, val_set, batch_size, seed)
    distribution = {"strategy": type(strategy).__name__.lstrip("_"), "replicas": replicas,
                    "global_batch_size": batch_size, "learning_rate": learning_rate}
    return _finalise(net, out, state, config, dataset, profile, seed, len(train_set), batch_size, device,
                     distribution, tta, resumed_from, {"averaging": averaging, "distillation": distillation})


def _finalise(net: keras.Model, out: Path, state: dict, config: TrainConfig, dataset: Dataset, profile: Profile,
              seed: int, training_rows: int, batch_size: int, device: DeviceSettings, distribution: dict, tta: bool,
              resumed_from: int, records: dict | None = None) -> TrainingResult:
    """Evaluate the selected weights, write model.keras with its card, and gather the result. ``records``: what
    the run did beyond plain training (``averaging``, ``distillation``), for the card's metrics."""
    metrics = {"best_epoch": state["best_epoch"], f"best_{config.monitor}": state["best"],
               **{k: v for k, v in (records or {}).items() if v}, **card_metrics(net, dataset, tta=tta)}
    seconds = state["fit_seconds"]
    ips = state["images_seen"] / seconds if seconds else 0.0
    card = {
        "model": net.fer_spec, "train_config": config.to_dict(), "preprocessing": config.preprocessing,
        "seed": seed, "profile": profile.to_dict(), "data_checksum": dataset.checksum,
        "data_source": dataset.source, "label_source": dataset.label_source,
        "class_names": list(dataset.class_names), "training_rows": training_rows, "batch_size": batch_size,
        "device": asdict(device), "distribution": distribution, "epochs_trained": state["epoch"],
        "stopped_early": state["stopped_early"], "training_seconds": seconds, "images_per_second": ips,
        "metrics": metrics, "metadata": run_metadata(seed=seed, profile=profile.name, data_checksum=dataset.checksum),
    }
    model_path = save_model(net, out / "model.keras", card)
    return TrainingResult(model=net, history=pd.DataFrame(state["history"]), config=config, out_dir=out,
                          model_path=model_path, card_path=card_path_for(model_path), seconds=seconds,
                          images_per_second=ips, metrics=metrics, resumed_from_epoch=resumed_from, device=device)
