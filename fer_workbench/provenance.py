"""Run metadata recorded with every report, manifest and model: versions, git commit, seed, checksum."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path

from fer_workbench.config import project_root
from fer_workbench.errors import WorkbenchError

TRACKED_PACKAGES = (
    "fer-workbench", "numpy", "pandas", "tensorflow", "keras", "keras-tuner", "tf-keras-vis",
    "scikit-learn", "plotly", "seaborn", "papermill", "nbconvert", "ipywidgets", "opencv-python-headless",
    "mtcnn", "cleanlab",
)


def package_versions(names=TRACKED_PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The checkout's commit, with ``-dirty`` when the work tree has changes; None outside git."""
    root = project_root()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def hardware_info() -> dict:
    """CPU model, core count and the GPUs ``nvidia-smi`` lists (none on a CPU-only machine)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    gpus: list[str] = []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
        gpus = [line.strip() for line in out.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "gpus": gpus}


def differing_keys(old: dict | None, new: dict | None) -> list[str]:
    """The keys whose values differ between two recorded identities (a key missing on one side differs), sorted:
    what a "holds a different run" message names."""
    old, new = old or {}, new or {}
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def read_resumable(path: Path, key: str, identity: dict, what: str, other: str, remedy: str) -> dict | None:
    """The JSON document a resumable job left at ``path`` (training state, ablation cells, probes), when its
    ``key`` records this job's ``identity``; None when there is none yet. An unreadable file is "PATH: unreadable
    WHAT (why)"; another job's is "OTHER (differs in: keys); REMEDY"."""
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{path}: unreadable {what} ({exc})") from None
    if saved.get(key) != identity:
        raise WorkbenchError(f"{other} (differs in: {', '.join(differing_keys(saved.get(key), identity))}); {remedy}")
    return saved


def run_metadata(**extra) -> dict:
    """Everything needed to reproduce a result, plus caller-specific fields (seed, profile, data checksum...)."""
    return {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "hardware": hardware_info(),
        **extra,
    }
