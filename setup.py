"""The one packaging step pyproject.toml cannot express: the notebooks, kept at the top level as their source,
travel inside the package as ``fer_workbench/notebooks`` so that `pip install .` followed by `fer-workbench run`
works from any directory (``fer_workbench.config.notebooks_dir`` finds them there when there is no checkout).
Everything else about the package is declared in pyproject.toml."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


class BuildWithNotebooks(build_py):
    """build_py, then copy notebooks/*.ipynb into the built package (editable installs use the checkout's)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "fer_workbench" / "notebooks"
        self.mkpath(str(target))
        for notebook in sorted(NOTEBOOKS.glob("[0-9]*.ipynb")):
            self.copy_file(str(notebook), str(target / notebook.name))

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        target = Path(self.build_lib) / "fer_workbench" / "notebooks"
        return outputs + [str(target / notebook.name) for notebook in sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))]


setup(cmdclass={"build_py": BuildWithNotebooks})
