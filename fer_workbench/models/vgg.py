"""The VGG family for 48×48 grayscale faces: the published FER2013 VGG and everything a search varies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import keras
from keras import layers

from fer_workbench import CLASS_NAMES, IMAGE_SIZE
from fer_workbench.config import Settings
from fer_workbench.errors import WorkbenchError


@dataclass(frozen=True)
class VGGConfig(Settings):
    """VGG hyperparameters; width doubles per block from ``base_width`` up to ``max_width``."""

    KIND: ClassVar[str] = "VGG setting"

    blocks: int = 4
    convs_per_block: int = 2
    base_width: int = 64
    max_width: int = 512
    fc_units: int = 4096
    fc_layers: int = 2
    dropout: float = 0.5
    batch_norm: bool = True
    global_pool: bool = False  # global average pooling instead of flatten before the FC layers
    standardize: bool = False  # per-image standardisation of the input (zero mean, unit variance per face)

    def widths(self) -> list[int]:
        return [min(self.base_width * 2**i, self.max_width) for i in range(self.blocks)]

    def validate(self) -> VGGConfig:
        # Each block halves the side; 48 px allows five poolings (48→24→12→6→3→1).
        if not 1 <= self.blocks <= 5:
            raise WorkbenchError(f"VGG blocks must be 1..5 for 48×48 input, got {self.blocks}")
        if self.convs_per_block < 1 or self.base_width < 1 or self.max_width < 1:
            raise WorkbenchError("VGG convs_per_block, base_width and max_width must be positive")
        if self.fc_layers < 0 or (self.fc_layers and self.fc_units < 1):
            raise WorkbenchError("VGG fc_layers must be ≥ 0 and fc_units positive")
        if not 0 <= self.dropout < 1:
            raise WorkbenchError(f"VGG dropout must be in [0, 1), got {self.dropout}")
        return self


# Khaireddin & Chen (2021), "Facial Emotion Recognition: State of the Art Performance on FER2013": ~40M params.
VGG_PAPER = VGGConfig()
# Same shape at CPU scale (~4.6M params).
VGG_CPU = VGGConfig(base_width=32, max_width=256, fc_units=1024)
# For smoke runs and tests: trains in seconds. On ~1,600 images and ~10 epochs a network this small learns only
# without the brakes of the big recipe: dropout and batch normalisation both hold it at the majority class for
# most of the budget; standardised input (and no batch normalisation: half the CPU time) gets it off that plateau.
VGG_TINY = VGGConfig(blocks=3, base_width=8, max_width=32, fc_units=64, fc_layers=1, dropout=0.0, batch_norm=False,
                     standardize=True)
VGG_PRESETS: dict[str, VGGConfig] = {"paper": VGG_PAPER, "cpu": VGG_CPU, "tiny": VGG_TINY}


def as_vgg_config(config: VGGConfig | dict | str | None = None, **overrides) -> VGGConfig:
    """A VGGConfig from a config, a dict of fields, or a preset name ('paper', 'cpu', 'tiny')."""
    if config is None:
        config = VGG_PAPER
    elif isinstance(config, str):
        try:
            config = VGG_PRESETS[config]
        except KeyError:
            raise WorkbenchError(f"unknown VGG preset {config!r}; choose one of {', '.join(VGG_PRESETS)}") from None
    elif isinstance(config, dict):
        config = VGGConfig.from_dict(config)
    elif not isinstance(config, VGGConfig):
        raise WorkbenchError(f"expected a VGGConfig, dict or preset name, got {type(config).__name__}")
    if overrides:
        config = VGGConfig.from_dict({**config.to_dict(), **overrides})
    return config.validate()


def build_vgg(config: VGGConfig | dict | str | None = None, num_classes: int = len(CLASS_NAMES), **overrides
              ) -> keras.Model:
    """VGG on float32 N×48×48×1 inputs in [0, 1]; softmax over ``num_classes`` (kept float32 under mixed precision)."""
    config = as_vgg_config(config, **overrides)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="image")
    x = inputs
    if config.standardize:
        # LayerNormalization over height, width and channel without its affine = per-image standardisation:
        # removes each face's brightness and contrast before the first convolution.
        x = layers.LayerNormalization(axis=(1, 2, 3), center=False, scale=False, name="standardize")(x)
    for b, width in enumerate(config.widths(), start=1):
        for c in range(1, config.convs_per_block + 1):
            x = layers.Conv2D(width, 3, padding="same", use_bias=not config.batch_norm,
                              kernel_initializer="he_normal", name=f"block{b}_conv{c}")(x)
            if config.batch_norm:
                # momentum 0.9 = PyTorch's default (the paper's framework); 0.99 lags badly in short runs.
                x = layers.BatchNormalization(momentum=0.9, name=f"block{b}_bn{c}")(x)
            x = layers.Activation("relu", name=f"block{b}_relu{c}")(x)
        x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x) if config.global_pool else layers.Flatten(name="flatten")(x)
    for f in range(1, config.fc_layers + 1):
        x = layers.Dense(config.fc_units, activation="relu", name=f"fc{f}")(x)
        if config.dropout:
            x = layers.Dropout(config.dropout, name=f"fc{f}_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name="vgg")


__all__ = ["VGG_CPU", "VGG_PAPER", "VGG_PRESETS", "VGG_TINY", "VGGConfig", "as_vgg_config", "build_vgg"]
