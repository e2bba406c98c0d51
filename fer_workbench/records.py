"""Where a notebook's outputs go, and the results it records there for ``fer-workbench run`` to gather.

A numbered notebook (``NN_name.ipynb``) writes to its ``output_dir`` (:func:`resolve_output_dir`) and ends by
calling :func:`record_results`: ``<output_dir>/results/NN_name.json`` plus an optional ``NN_name.png`` thumbnail.
The runner gathers these into run.json and index.html. Light: no Jupyter, papermill or TensorFlow imports.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from fer_workbench.config import PROFILES, get_profile, project_root
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import atomic_write_bytes, atomic_write_text
from fer_workbench.provenance import differing_keys

NOTEBOOK_PATTERN = re.compile(r"^(?P<number>\d{2,})_(?P<name>[^.].*)\.ipynb$")  # a numbered notebook's file name
RESULTS_DIR = "results"  # inside a run directory: NN_name.json (+ NN_name.png) per notebook
THUMBNAIL_SIZE = (480, 360)  # largest thumbnail, pixels (width, height)


# --------------------------------------------------------------------------------------------- output directory


def source_checkout() -> Path | None:
    """The source checkout the package runs from (it has pyproject.toml and notebooks/), or None when installed."""
    root = project_root()
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def default_reports_dir() -> Path:
    """Where runs and interactive notebooks write by default: the checkout's ``reports/`` (git-ignored), or
    ``~/fer-workbench/reports`` for an installed package."""
    checkout = source_checkout()
    return checkout / "reports" if checkout is not None else Path.home() / "fer-workbench" / "reports"


def resolve_output_dir(output_dir: str | os.PathLike | None) -> Path:
    """A notebook's ``output_dir`` parameter as an absolute, existing directory, printing where outputs go.

    None (the notebooks' interactive default) means :func:`default_reports_dir`, so running a notebook in
    JupyterLab never writes beside the source notebooks; ``fer-workbench run`` always passes its ``--out``.
    """
    directory = Path(default_reports_dir() if output_dir is None else output_dir).expanduser().absolute()
    directory.mkdir(parents=True, exist_ok=True)
    print(f"outputs go to {directory}")
    return directory


# --------------------------------------------------------------------------------------------- results documents


def _notebook_stem(notebook_name: str | os.PathLike) -> str:
    stem = Path(str(notebook_name)).name.removesuffix(".ipynb")
    if not NOTEBOOK_PATTERN.match(f"{stem}.ipynb"):
        raise WorkbenchError(f"notebook name must look like NN_name (e.g. 05_metrics), got {str(notebook_name)!r}")
    return stem


def results_path(output_dir: str | os.PathLike, notebook_name: str) -> Path:
    """``<output_dir>/results/NN_name.json``."""
    return Path(output_dir) / RESULTS_DIR / f"{_notebook_stem(notebook_name)}.json"


def thumbnail_path(output_dir: str | os.PathLike, notebook_name: str) -> Path:
    """``<output_dir>/results/NN_name.png``."""
    return results_path(output_dir, notebook_name).with_suffix(".png")


def json_ready(value):
    """``value`` as plain JSON values: numpy scalars and arrays, pandas Series / DataFrames (records), paths and
    tuples converted; NaN and infinities become None (strict JSON has no NaN)."""
    import math

    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # DataFrame: one record per row, index kept
        if type(value.index).__name__ != "RangeIndex":
            value = value.reset_index()
        return json_ready(value.to_dict(orient="records"))
    if hasattr(value, "to_dict") and hasattr(value, "index"):  # Series
        return json_ready(value.to_dict())
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy array or scalar
        return json_ready(value.tolist())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_ready(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def thumbnail_png(figure, size: tuple[int, int] = THUMBNAIL_SIZE) -> bytes:
    """PNG bytes of a small thumbnail of a matplotlib figure, a PIL image or an image array (grey or RGB)."""
    import io

    import numpy as np
    from PIL import Image

    if hasattr(figure, "savefig"):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight", facecolor="white")
        image = Image.open(io.BytesIO(buffer.getvalue()))
    elif isinstance(figure, Image.Image):
        image = figure
    elif isinstance(figure, np.ndarray) and figure.ndim in (2, 3) and figure.size:
        image = Image.fromarray(np.clip(figure, 0, 255).astype(np.uint8))
    else:
        raise WorkbenchError(f"a thumbnail needs a matplotlib figure, a PIL image or an image array, "
                             f"not {type(figure).__name__}")
    image = image.convert("RGB")
    image.thumbnail(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def record_results(output_dir: str | os.PathLike, notebook_name: str, results: dict, figure=None) -> Path:
    """Write a notebook's key results to ``<output_dir>/results/NN_name.json`` (atomically) and, given a figure
    (matplotlib figure, PIL image or image array), a small PNG thumbnail beside it.

    ``fer-workbench run`` gathers these into run.json (under ``"results"``, keyed by notebook name) and shows them
    at the top of index.html: a ``"headline"`` list of short sentences is shown as is, otherwise the top-level
    numbers and strings. Returns the JSON path.
    """
    if not isinstance(results, dict):
        raise WorkbenchError(f"results must be a dict, got {type(results).__name__}")
    target = results_path(output_dir, notebook_name)
    document = json_ready(results)
    atomic_write_text(target, json.dumps(document, indent=2, allow_nan=False) + "\n")
    thumbnail = thumbnail_path(output_dir, notebook_name)
    if figure is None:
        thumbnail.unlink(missing_ok=True)
    else:
        atomic_write_bytes(thumbnail, thumbnail_png(figure))
    print(f"results recorded in {target}")
    return target


def read_results(output_dir: str | os.PathLike, notebook_name: str) -> dict | None:
    """A notebook's recorded results, or None when it recorded none (or the file is not a JSON object)."""
    path = results_path(output_dir, notebook_name)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def remove_results(output_dir: str | os.PathLike, notebook_name: str) -> None:
    """Delete a notebook's recorded results and thumbnail, if any (before it runs again)."""
    results_path(output_dir, notebook_name).unlink(missing_ok=True)
    thumbnail_path(output_dir, notebook_name).unlink(missing_ok=True)


# What notebooks leave in an output directory that a later run in it reuses (a finished search, trained models,
# the cleaning and its review decisions, the cached model choice): state that belongs to one set of run settings.
RUN_STATE = ("clean", "tuning", "models", "comparison", "ablations", "predict_demo", "model_choice.json",
             "explore_summary.json")
DECISIONS_FILE = "decisions.json"


def run_settings(parameters: dict, data_checksum: str | None) -> dict:
    """What a run's reusable state depends on: its parameters (the output directory aside), the data checksum, and
    the profile's every setting (a changed recipe makes a finished search or model stale)."""
    profile = parameters.get("profile")
    return {"parameters": {k: v for k, v in parameters.items() if k != "output_dir"}, "data_checksum": data_checksum,
            "profile_settings": json_ready(get_profile(profile).to_dict()) if profile in PROFILES else None}


def previous_settings_differ(output_dir: str | os.PathLike, settings: dict) -> list[str]:
    """What differs between ``settings`` and those of the run recorded in ``<output_dir>/run.json`` (none recorded
    but run state present: everything is assumed to differ); empty when they agree or there is no earlier run."""
    out = Path(output_dir)
    if not any((out / name).exists() for name in RUN_STATE):
        return []
    try:
        previous = json.loads((out / "run.json").read_text(encoding="utf-8"))["metadata"].get("settings")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        previous = None
    if not isinstance(previous, dict):
        return ["settings (no record of them)"]
    changed = [k for k in ("data_checksum", "profile_settings") if previous.get(k) != settings.get(k)]
    return changed + differing_keys(previous.get("parameters"), settings["parameters"])


def clear_run_state(output_dir: str | os.PathLike, data_checksum: str | None) -> None:
    """Remove an earlier run's reusable state (``RUN_STATE``) from ``output_dir``; nothing else is touched. Review
    decisions are work, not state: they stay as ``clean/decisions.json`` when made on the same data, else they are
    kept beside it as ``clean/decisions.<data checksum>.json``, not applied."""
    import shutil

    out = Path(output_dir)
    decisions = out / "clean" / DECISIONS_FILE
    kept = None
    if decisions.is_file():
        try:
            made_on = json.loads(decisions.read_text(encoding="utf-8")).get("data_checksum")
        except (OSError, ValueError, AttributeError):
            made_on = None
        kept = (decisions.read_bytes(), DECISIONS_FILE if made_on == data_checksum else
                f"decisions.{str(made_on)[:12]}.json")
    for name in RUN_STATE:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    if kept is not None:
        content, name = kept
        atomic_write_bytes(out / "clean" / name, content)


__all__ = ["NOTEBOOK_PATTERN", "RESULTS_DIR", "RUN_STATE", "THUMBNAIL_SIZE", "clear_run_state", "default_reports_dir",
           "json_ready", "previous_settings_differ", "read_results", "record_results", "remove_results",
           "resolve_output_dir", "results_path", "run_settings", "source_checkout", "thumbnail_path", "thumbnail_png"]
