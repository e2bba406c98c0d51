"""Model zoo: VGG family, baselines and transfer models behind one registry; classical models beside it."""

from __future__ import annotations

import keras

from fer_workbench.errors import WorkbenchError
from fer_workbench.models.baselines import build_baseline_cnn, build_mini_xception, build_transfer
from fer_workbench.models.common import tag_model
from fer_workbench.models.vgg import VGG_CPU, VGG_PAPER, VGG_PRESETS, VGG_TINY, VGGConfig, as_vgg_config, build_vgg

_BUILDERS = {
    "vgg": build_vgg,
    "baseline_cnn": build_baseline_cnn,
    "mini_xception": build_mini_xception,
    "vgg16_transfer": lambda **kw: build_transfer("vgg16", **kw),
    "vgg19_transfer": lambda **kw: build_transfer("vgg19", **kw),
}
MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def build_model(name: str, **kwargs) -> keras.Model:
    """Build a registered model. For "vgg", pass ``config=`` (VGGConfig, dict or preset name) and/or fields.

    The returned model carries ``fer_spec`` ({"name", "kwargs"}), which training records in the model card.
    """
    if name not in _BUILDERS:
        raise WorkbenchError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    if name == "vgg":
        config = as_vgg_config(kwargs.pop("config", None), **{k: kwargs.pop(k) for k in list(kwargs)
                                                               if k in VGGConfig.__dataclass_fields__})
        model = build_vgg(config, **kwargs)
        spec_kwargs = {**config.to_dict(), **kwargs}
    else:
        try:
            model = _BUILDERS[name](**kwargs)
        except TypeError as exc:
            raise WorkbenchError(f"{name}: bad arguments ({exc})") from None
        spec_kwargs = dict(kwargs)
    return tag_model(model, fer_spec={"name": name, "kwargs": spec_kwargs})


__all__ = [
    "MODEL_NAMES",
    "VGG_CPU",
    "VGG_PAPER",
    "VGG_PRESETS",
    "VGG_TINY",
    "VGGConfig",
    "as_vgg_config",
    "build_baseline_cnn",
    "build_mini_xception",
    "build_model",
    "build_transfer",
    "build_vgg",
    "tag_model",
]
