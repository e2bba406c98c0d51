"""Saving one of the checkout's numbered notebooks from JupyterLab writes it as committed (no outputs, execution
counts or kernel details), so an interactive session leaves ``git status`` clean; other notebooks are saved as they
are. jupyter_server_config.py at the repository root installs the hook, and ``make lab`` puts it on Jupyter's
config path. The browser-level check (Ctrl-S in JupyterLab after Run All) is in test_jupyterlab.py."""

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from jupyter_server.services.contents.filemanager import FileContentsManager
from traitlets.utils.importstring import import_item

from fer_workbench.config import notebooks_dir, project_root
from fer_workbench.jupyter_hooks import output_stripping_hook, strip_outputs_on_save, strip_run_state

HOOK_IMPORT_STRING = "fer_workbench.jupyter_hooks.strip_outputs_on_save"
KERNEL_LANGUAGE_INFO = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                        "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                        "pygments_lexer": "ipython3", "version": "3.11.7"}


def as_run_in_lab(notebook: dict) -> dict:
    """A copy of ``notebook`` as JupyterLab holds it after Run All: outputs, counts, timing and kernel details."""
    ran = copy.deepcopy(notebook)
    count = 0
    for cell in ran["cells"]:
        if cell["cell_type"] == "code":
            count += 1
            cell["execution_count"] = count
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": f"cell {count}\n"},
                               {"output_type": "execute_result", "execution_count": count, "metadata": {},
                                "data": {"text/plain": "42"}}]
            cell["metadata"]["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00.000Z"}
    ran["metadata"]["language_info"] = dict(KERNEL_LANGUAGE_INFO)
    return ran


def contents_manager(tree: Path) -> FileContentsManager:
    """jupyter_server's file contents manager on ``tree``, stripping the numbered notebooks saved there."""
    manager = FileContentsManager(root_dir=str(tree))
    manager.pre_save_hook = output_stripping_hook(tree)
    return manager


def shipped(name: str = "01_explore.ipynb") -> dict:
    return nbformat.read(notebooks_dir() / name, as_version=4)


def test_strip_run_state_leaves_a_notebook_as_committed():
    committed = shipped()
    assert strip_run_state(as_run_in_lab(committed)) == committed
    markdown = next(c for c in committed.cells if c.cell_type == "markdown")
    assert "outputs" not in markdown and "execution_count" not in markdown


@pytest.mark.parametrize("name", sorted(p.name for p in notebooks_dir().glob("*.ipynb")))
def test_saving_a_shipped_notebook_writes_the_committed_bytes(tmp_path, name):
    """Through jupyter_server's own FileContentsManager, as JupyterLab's Ctrl-S and autosave reach it."""
    tree = tmp_path / "notebooks"
    tree.mkdir()
    shutil.copy(notebooks_dir() / name, tree / name)
    committed_bytes = (tree / name).read_bytes()
    manager = contents_manager(tree)
    ran = as_run_in_lab(manager.get(name)["content"])
    assert nbformat.writes(nbformat.from_dict(ran)).encode() != committed_bytes
    manager.save({"type": "notebook", "format": "json", "content": ran}, name)
    assert (tree / name).read_bytes() == committed_bytes


def test_other_notebooks_and_files_are_saved_as_they_are(tmp_path):
    tree = tmp_path / "notebooks"
    (tree / "mine").mkdir(parents=True)
    manager = contents_manager(tree)
    ran = as_run_in_lab(shipped())
    for path in ("Untitled.ipynb", "explore-with-outputs.ipynb", "mine/01_explore.ipynb"):
        manager.save({"type": "notebook", "format": "json", "content": copy.deepcopy(ran)}, path)
        assert nbformat.read(tree / path, as_version=4) == ran, path
    manager.save({"type": "file", "format": "text", "content": '{"outputs": [1]}'}, "02_notes.ipynb.txt")
    assert (tree / "02_notes.ipynb.txt").read_text() == '{"outputs": [1]}'


@pytest.mark.parametrize(("root_dir", "path", "stripped"), [
    ("notebooks", "01_explore.ipynb", True),  # `make lab`: jupyter lab notebooks/
    ("root", "notebooks/01_explore.ipynb", True),  # jupyter lab from the repository root
    ("root", "/notebooks/05_metrics.ipynb", True),
    ("notebooks", "Untitled.ipynb", False),
    ("root", "reports/executed/01_explore.ipynb", False),
])
def test_the_checkout_hook_strips_only_the_checkouts_numbered_notebooks(root_dir, path, stripped):
    root = {"notebooks": notebooks_dir(), "root": project_root()}[root_dir]
    model = {"type": "notebook", "format": "json", "content": as_run_in_lab(shipped())}
    strip_outputs_on_save(model=model, path=path, contents_manager=SimpleNamespace(root_dir=str(root)))
    assert (model["content"] == shipped()) is stripped


def test_the_repository_config_installs_the_hook_for_make_lab():
    """jupyter_server_config.py at the root names the hook; `make lab` puts the root on JUPYTER_CONFIG_PATH (Jupyter
    reads no config from the current directory), and JupyterLab started that way has the hook configured."""
    root = project_root()
    assert import_item(HOOK_IMPORT_STRING) is strip_outputs_on_save
    env = dict(os.environ, JUPYTER_CONFIG_PATH=str(root), JUPYTER_CONFIG_DIR=str(root / "no-such-config-dir"))
    shown = subprocess.run([sys.executable, "-m", "jupyter", "lab", "--show-config", "notebooks/"], cwd=root,
                           env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    assert f"ContentsManager\n  .pre_save_hook = '{HOOK_IMPORT_STRING}'" in shown, shown
    if shutil.which("make"):
        recipe = subprocess.run(["make", "-s", "-n", "lab"], cwd=root, capture_output=True, text=True,
                                timeout=60, check=True).stdout.splitlines()[-1]
        assert recipe.startswith(f'JUPYTER_CONFIG_PATH="{root}') and recipe.endswith("/jupyter lab notebooks/")
