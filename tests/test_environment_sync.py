"""environment.yml and pyproject.toml must list the same dependencies with the same pins."""

import tomllib

import yaml

from fer_workbench.config import project_root


def test_environment_matches_pyproject():
    root = project_root()
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((root / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {d for d in pip_section if d != "-e ."}
    assert listed == wanted, f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"
    assert "-e ." in pip_section


def test_pins_that_matter():
    deps = tomllib.loads((project_root() / "pyproject.toml").read_text())["project"]["dependencies"]
    opencv = next(d for d in deps if d.startswith("opencv"))
    assert "<5" in opencv, "opencv-python 5.x has no CascadeClassifier"
    assert any(d.startswith("tensorboard") for d in deps), "keras-tuner imports tensorboard at trial time"
