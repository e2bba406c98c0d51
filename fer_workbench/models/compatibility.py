"""Is a loaded Keras model one the workbench can use? One input of 48×48×1 grayscale images, one output of class
probabilities. Checked when `predict` and `evaluate` load a model, so a mismatch is one line, not a traceback."""

from __future__ import annotations

import os

import keras
import numpy as np

from fer_workbench import IMAGE_SIZE
from fer_workbench.errors import WorkbenchError

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
PROBABILITY_TOLERANCE = 1e-3  # how far from 1 a row of softmax outputs may sum (float16/bfloat16 rounding)


def _shape_text(shape) -> str:
    return "×".join("?" if d is None else str(d) for d in shape)


def _last_activation(model: keras.Model) -> tuple[str, str]:
    """(name of the layer that makes the output, its activation's name or its class name)."""
    layer = model.layers[-1] if model.layers else None
    if layer is None:
        return "", ""
    if isinstance(layer, keras.layers.Softmax):
        return layer.name, "softmax"
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None) or (type(layer).__name__ if activation is None else str(activation))
    return layer.name, name


def _probe_outputs(model: keras.Model) -> np.ndarray:
    """The model's outputs on a few fixed inputs in the training range [0, 1]: black, mid grey and noise."""
    rng = np.random.default_rng(0)
    probe = np.stack([np.zeros(INPUT_SHAPE), np.full(INPUT_SHAPE, 0.5), rng.random(INPUT_SHAPE)]).astype(np.float32)
    return np.asarray(keras.ops.convert_to_numpy(model(probe, training=False)), dtype=np.float64)


def check_model(model: keras.Model, path: str | os.PathLike | None = None, num_classes: int | None = None) -> None:
    """Raise a one-line WorkbenchError unless ``model`` takes N×48×48×1 images and returns N×K probabilities.

    Input: exactly one, of shape (batch, 48, 48, 1) (unknown sizes allowed). Output: exactly one, (batch, K),
    with K == ``num_classes`` when given, and K the number of the model's classes (``models.io.model_class_names``:
    the names its card records, FER2013's seven when it records none). Probabilities: a model ending in softmax
    passes at once; any other last layer is run on three probe images and must give values in [0, 1] summing to 1
    per row. A model whose last
    layer emits logits is refused (not silently softmaxed: its file is what needs fixing, and every consumer —
    metrics, calibration, saliency — would otherwise disagree about what its outputs mean).
    """
    label = str(path) if path is not None else f"model {getattr(model, 'name', '')}".strip()
    try:
        model.inputs[0], model.outputs[0]  # a model that was never built or called has neither
    except (AttributeError, ValueError, IndexError, TypeError):
        raise WorkbenchError(f"{label}: has no defined inputs and outputs (build or call it once first)") from None
    if len(model.inputs) != 1:
        raise WorkbenchError(f"{label}: takes {len(model.inputs)} inputs; the workbench gives one batch of "
                             f"{_shape_text(INPUT_SHAPE)} grayscale images")
    in_shape = tuple(model.inputs[0].shape)
    if len(in_shape) != 4 or any(d is not None and d != want
                                 for d, want in zip(in_shape[1:], INPUT_SHAPE, strict=True)):
        raise WorkbenchError(f"{label}: expects inputs of shape {_shape_text(in_shape[1:])}; the workbench gives "
                             f"{_shape_text(INPUT_SHAPE)} grayscale images (FER2013 format)")
    if len(model.outputs) != 1:
        raise WorkbenchError(f"{label}: has {len(model.outputs)} outputs; expected one vector of class "
                             f"probabilities")
    out_shape = tuple(model.outputs[0].shape)
    if len(out_shape) != 2 or out_shape[1] is None:
        raise WorkbenchError(f"{label}: outputs shape {_shape_text(out_shape[1:])}; expected one vector of class "
                             f"probabilities")
    if num_classes is not None and int(out_shape[1]) != num_classes:
        raise WorkbenchError(f"{label}: predicts {out_shape[1]} classes, expected {num_classes}")
    from fer_workbench.models.io import model_class_names

    names = model_class_names(model)
    if int(out_shape[1]) != len(names):
        recorded = getattr(model, "fer_class_names", None) or getattr(model, "fer_card", {}).get("class_names")
        raise WorkbenchError(f"{label}: predicts {out_shape[1]} classes but " + (
            f"its card names {len(names)} ({', '.join(names)})" if recorded else
            f"records no class names (its card has none, so FER2013's {len(names)} are assumed)"))
    layer, activation = _last_activation(model)
    if activation == "softmax":
        return
    outputs = _probe_outputs(model)
    sums = outputs.sum(axis=1)
    if (np.isfinite(outputs).all() and outputs.min() >= 0.0 and outputs.max() <= 1.0
            and np.abs(sums - 1.0).max() <= PROBABILITY_TOLERANCE):
        return
    raise WorkbenchError(f"{label}: outputs are not class probabilities (last layer {layer!r}, activation "
                         f"{activation}; on probe images they range {outputs.min():.3g}..{outputs.max():.3g} and sum "
                         f"to {sums.min():.3g}..{sums.max():.3g}): refused; end the model with a softmax layer")
