"""An ordinary (non-editable) install runs the notebooks: the wheel carries them, and `fer-workbench run` finds them
from any directory.

The wheel is built from a clean copy of this checkout's sources (an in-tree build would reuse whatever a
stale build/ folder holds), without build isolation, and unpacked with ``pip install --no-deps --target`` into a
temporary folder, which goes first on PYTHONPATH; the dependencies are this environment's.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fer_workbench.config import project_root

pytestmark = pytest.mark.timeout(900)


def _pip(*args, cwd=None):
    result = subprocess.run([sys.executable, "-m", "pip", *map(str, args)], capture_output=True, text=True,
                            check=False, timeout=600, cwd=cwd, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, site): the package's wheel, and a folder it is installed into (nothing else there)."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for folder in ("fer_workbench", "notebooks"):
        shutil.copytree(project_root() / folder, source / folder, ignore=skip)
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(project_root() / name, source / name)
    _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", root / "dist", source, cwd=root)
    wheel = next((root / "dist").glob("fer_workbench-*.whl"))
    _pip("install", "--no-deps", "--no-compile", "--target", root / "site", wheel)
    return wheel, root / "site"


def _installed_python(site: Path, cwd: Path, *args, home: Path | None = None, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONWARNINGS": "ignore"}
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout, check=False)


def test_wheel_carries_the_notebooks_and_templates(installed):
    wheel, _ = installed
    sources = sorted((project_root() / "notebooks").glob("[0-9]*.ipynb"))
    assert sources
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for notebook in sources:
            assert archive.read(f"fer_workbench/notebooks/{notebook.name}") == notebook.read_bytes()
    assert "fer_workbench/templates/index.html.j2" in names
    assert "fer_workbench/assets/fer2013_model.keras" in names


def test_installed_package_finds_its_notebooks_outside_a_checkout(installed, tmp_path):
    _, site = installed
    script = ("import json, fer_workbench\n"
              "from fer_workbench.config import notebooks_dir\n"
              "from fer_workbench.records import default_reports_dir, source_checkout\n"
              "from fer_workbench.runner import discover_notebooks\n"
              "print(json.dumps({'package': fer_workbench.__file__,\n"
              "                  'notebooks': [str(p) for p in discover_notebooks()],\n"
              "                  'dir': str(notebooks_dir()), 'checkout': source_checkout(),\n"
              "                  'reports': str(default_reports_dir())}))")
    result = _installed_python(site, tmp_path, "-c", script, home=tmp_path / "home")
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout)
    assert Path(found["package"]).is_relative_to(site)
    assert found["dir"] == str(site / "fer_workbench" / "notebooks") and found["checkout"] is None
    shipped = sorted(p.name for p in (project_root() / "notebooks").glob("[0-9]*.ipynb"))
    assert [Path(p).name for p in found["notebooks"]] == shipped
    assert found["reports"] == str(tmp_path / "home" / "fer-workbench" / "reports")


@pytest.mark.slow
def test_installed_package_runs_a_notebook_from_any_directory(installed, tmp_path):
    _, site = installed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _installed_python(site, elsewhere, "-m", "fer_workbench.cli", "run", "--only", "01", "--out", "out",
                               "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((elsewhere / "out" / "run.json").read_text())
    assert [nb["status"] for nb in run["notebooks"]] == ["ok"]
    assert Path(run["notebooks"][0]["source"]).is_relative_to(site)
    assert run["results"]["01_explore"]["rows"] > 0
    assert sorted(p.name for p in elsewhere.iterdir()) == ["out"]  # nothing written beside it
