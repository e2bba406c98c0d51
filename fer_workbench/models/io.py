"""Model files: atomic ``.keras`` saves with their cards, safe-mode loading, and the float32 copy for shipping."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import keras
import numpy as np

from fer_workbench import CLASS_NAMES
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import UMASK, atomic_write_text
from fer_workbench.models import build_model, tag_model
from fer_workbench.provenance import run_metadata
from fer_workbench.runtime import precision_policy


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


def model_class_names(model: keras.Model | str | os.PathLike) -> tuple[str, ...]:
    """The classes a model predicts, in output order: what training recorded (``fer_class_names`` on the model,
    ``class_names`` in its card), else FER2013's seven (models from before cards recorded them). A path reads
    the model's card only."""
    if isinstance(model, (str, os.PathLike)):
        card_file = card_path_for(model)
        try:
            card = json.loads(card_file.read_text(encoding="utf-8")) if card_file.is_file() else {}
        except (OSError, ValueError) as exc:
            raise WorkbenchError(f"{card_file}: unreadable model card ({exc})") from None
        names = card.get("class_names") if isinstance(card, dict) else None
    else:
        names = getattr(model, "fer_class_names", None) or getattr(model, "fer_card", {}).get("class_names")
    return tuple(str(name) for name in names) if names else CLASS_NAMES


def save_model(model: keras.Model, path: str | os.PathLike, card: dict | None = None) -> Path:
    """Write the ``.keras`` file atomically and its model card (class names, preprocessing, provenance...).

    The card's ``class_names`` default to the model's own (``model_class_names``); a model whose output count
    does not match them, with no names given, gets no class names in its card rather than wrong ones."""
    path = Path(path)
    if path.suffix != ".keras":
        raise WorkbenchError(f"{path}: model files must end in .keras")
    card = dict(card or {})
    card.setdefault("model", getattr(model, "fer_spec", {"name": model.name}))
    card.setdefault("preprocessing", getattr(model, "fer_preprocessing", "none"))
    if "class_names" not in card and len(names := model_class_names(model)) == int(model.output_shape[-1]):
        card["class_names"] = list(names)
    card.setdefault("params", int(model.count_params()))
    if hasattr(model, "fer_pretrained"):
        card.setdefault("pretrained_weights", bool(model.fer_pretrained))
    card.setdefault("metadata", run_metadata())
    _save_keras_atomic(model, path)
    atomic_write_text(card_path_for(path), json.dumps(card, indent=1, default=_json_default))
    tag_model(model, fer_card=card)
    if card.get("class_names"):
        tag_model(model, fer_class_names=tuple(card["class_names"]))
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
    if card.get("class_names"):
        tag_model(model, fer_class_names=tuple(card["class_names"]))
    if "model" in card:
        tag_model(model, fer_spec=card["model"])
    return model



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
