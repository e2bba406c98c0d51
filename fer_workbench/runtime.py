"""Where training runs: devices, distribution strategy, precision policy and CPU thread limits."""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from fer_workbench.config import Profile, get_profile
from fer_workbench.errors import WorkbenchError


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
        return DeviceSettings(gpu=False, mixed_precision=policy, jit_compile=False, batch_size=profile.train.batch_size)
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
    return DeviceSettings(gpu=True, mixed_precision=policy, jit_compile=True, batch_size=profile.train.gpu_batch_size)


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



def limit_threads(intra_op: int, inter_op: int = 1) -> None:
    """Cap TensorFlow's thread pools (before its first op; later calls keep the settings already in force)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:  # already initialised in this process
        pass
