"""Profiles (smoke / cpu / gpu), seeds and default paths: the one place budgets live."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from fer_workbench.errors import WorkbenchError

DEFAULT_SEED = 0


@dataclass(frozen=True)
class Profile:
    """Budgets for one scale of work; later stages read their knobs from here, never from literals."""

    name: str
    # embedded default dataset: total rows generated (split and class shares follow FER2013)
    synthetic_rows: int
    # images shown per class in galleries and sample grids
    gallery_per_class: int
    # rows used by per-image statistics plots (sampled reproducibly when the dataset is larger)
    stats_sample: int

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(name="smoke", synthetic_rows=2_000, gallery_per_class=6, stats_sample=2_000),
    "cpu": Profile(name="cpu", synthetic_rows=12_000, gallery_per_class=10, stats_sample=20_000),
    "gpu": Profile(name="gpu", synthetic_rows=35_887, gallery_per_class=10, stats_sample=40_000),
}


def get_profile(name: str | Profile, **overrides) -> Profile:
    """The named profile, optionally with some fields overridden."""
    if isinstance(name, Profile):
        profile = name
    else:
        try:
            profile = PROFILES[name]
        except KeyError:
            raise WorkbenchError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None
    return replace(profile, **overrides) if overrides else profile


def workbench_home() -> Path:
    """Where generated data and caches live (override with FER_WORKBENCH_HOME)."""
    return Path(os.environ.get("FER_WORKBENCH_HOME", Path.home() / ".cache" / "fer-workbench"))


def cache_dir() -> Path:
    return workbench_home() / "cache"


def default_data_dir() -> Path:
    return workbench_home() / "default-data"


def project_root() -> Path:
    """The source checkout (where notebooks/ lives)."""
    return Path(__file__).resolve().parent.parent


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def shared_fer2013_dir() -> Path:
    """The real FER2013 beside a developer checkout (absent in a user's fresh clone)."""
    return project_root().parent / "shared" / "data" / "fer2013"
