"""Jupyter server hooks for working on the checkout's notebooks in JupyterLab.

The numbered notebooks in notebooks/ (``NN_name.ipynb``, the ones ``fer-workbench run`` runs) are committed without
outputs; the executed copies, outputs and all, are what a run writes to reports/. JupyterLab saves a notebook with
its outputs, on Ctrl-S and by autosave every two minutes, so an interactive session would leave them modified in
git. :func:`strip_outputs_on_save` is a ``ContentsManager.pre_save_hook`` that saves those notebooks as they are
committed: no outputs, no execution counts, no kernel details beyond the language name. jupyter_server_config.py
at the repository root installs it (``make lab`` puts that folder on JUPYTER_CONFIG_PATH); every other file is
saved as it is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from fer_workbench.config import notebooks_dir
from fer_workbench.records import NOTEBOOK_PATTERN

# Cell metadata a run may add: JupyterLab's execution timing (its "record timing" setting).
RUN_CELL_METADATA = ("execution",)


def strip_run_state(notebook: dict) -> dict:
    """Clear, in place, what running a notebook (nbformat 4, as a dict) adds: code cells' outputs, execution
    counts and timing metadata, and the kernel's details in ``metadata.language_info`` beyond its name."""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"] = []
        cell["execution_count"] = None
        for key in RUN_CELL_METADATA:
            cell.get("metadata", {}).pop(key, None)
    language = notebook.get("metadata", {}).get("language_info")
    if isinstance(language, dict) and "name" in language:
        notebook["metadata"]["language_info"] = {"name": language["name"]}
    return notebook


def is_workbench_notebook(os_path: str | os.PathLike, directory: str | os.PathLike) -> bool:
    """True when ``os_path`` is a numbered notebook (``NN_name.ipynb``, as the runner finds them) directly inside
    ``directory``."""
    path = Path(os_path).absolute()
    return bool(NOTEBOOK_PATTERN.match(path.name)) and path.parent.resolve() == Path(directory).resolve()


def output_stripping_hook(directory: str | os.PathLike) -> Callable[..., None]:
    """A ``pre_save_hook`` that strips the run state (:func:`strip_run_state`) from the numbered notebooks saved
    directly inside ``directory`` and leaves every other file as it is."""

    def hook(model: dict, path: str, contents_manager, **kwargs) -> None:
        if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
            return
        if model["content"].get("nbformat") != 4:
            return
        os_path = Path(contents_manager.root_dir, path.strip("/"))  # path: the API path, relative to root_dir
        if is_workbench_notebook(os_path, directory):
            strip_run_state(model["content"])

    hook.__name__ = hook.__qualname__ = "strip_outputs_on_save"
    hook.__doc__ = f"Save the numbered notebooks in {directory} without outputs (fer_workbench.jupyter_hooks)."
    return hook


def strip_outputs_on_save(model: dict, path: str, contents_manager, **kwargs) -> None:
    """``ContentsManager.pre_save_hook`` for the checkout's own notebooks (:func:`config.notebooks_dir`): saving
    one in JupyterLab writes it without outputs, execution counts or kernel details, as it is committed."""
    output_stripping_hook(notebooks_dir())(model=model, path=path, contents_manager=contents_manager, **kwargs)
