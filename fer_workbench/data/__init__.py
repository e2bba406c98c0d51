"""Loaders (FER2013 CSV, image folders, FER+ votes), the Dataset type, the cache and the synthetic default."""

from __future__ import annotations

import os
from pathlib import Path

from fer_workbench.data.cache import cache_file, load_cached, save_cached
from fer_workbench.data.dataset import Dataset
from fer_workbench.data.fer_csv import load_fer_csv
from fer_workbench.data.ferplus import FerPlusVotes, load_ferplus
from fer_workbench.data.folders import load_image_folder
from fer_workbench.errors import WorkbenchError


def load_dataset(path: str | os.PathLike, skip_bad_rows: bool = False, cache: bool = True,
                 progress: bool = True) -> Dataset:
    """Load a FER2013 CSV (plain or .gz) or an image folder; repeated loads of an unchanged source hit a cache."""
    path = Path(path).expanduser()
    if not path.exists():
        raise WorkbenchError(f"{path}: no such file or directory")
    options = {"skip_bad_rows": skip_bad_rows}
    target = cache_file(path, options) if cache else None
    if target is not None and (cached := load_cached(target)) is not None:
        return cached
    if path.is_dir():
        dataset = load_image_folder(path, skip_unreadable=skip_bad_rows, progress=progress)
    elif path.name.lower().endswith((".csv", ".csv.gz", ".gz")):
        dataset = load_fer_csv(path, skip_bad_rows=skip_bad_rows)
    else:
        raise WorkbenchError(f"{path}: not a FER2013 CSV (.csv / .csv.gz) or an image folder")
    if target is not None:
        save_cached(target, dataset)
    return dataset


__all__ = ["Dataset", "FerPlusVotes", "load_dataset", "load_fer_csv", "load_ferplus", "load_image_folder"]


def resolve_data_path(data_path: str | os.PathLike | None, profile: str = "smoke", seed: int = 0) -> Path:
    """The user's dataset, or (when none is given) the embedded synthetic default for this profile and seed."""
    if data_path:
        return Path(data_path).expanduser()
    from fer_workbench.data.synthetic import ensure_default_dataset

    return ensure_default_dataset(profile, seed)


__all__.append("resolve_data_path")


def cleaned_data_path(output_dir: str | os.PathLike) -> Path:
    """Where notebook 02 / `fer-workbench clean` leave the cleaned export inside a run directory."""
    return Path(output_dir) / "clean" / "cleaned.csv"


def load_working_dataset(data_path, output_dir, profile: str = "smoke", seed: int = 0) -> tuple[Dataset, str]:
    """The dataset later notebooks work on: the cleaned export of this run when cleaning produced one for the
    same source data, else the source itself. Returns the dataset and a sentence saying which it is."""
    source = load_dataset(resolve_data_path(data_path, profile, seed))
    cleaned = cleaned_data_path(output_dir)
    summary = cleaned.parent / "summary.json"
    if cleaned.exists() and summary.exists():
        import json

        if json.loads(summary.read_text()).get("data_checksum") == source.checksum:
            dataset = load_dataset(cleaned)
            return dataset, (f"cleaned export {cleaned} ({len(dataset)} of {len(source)} images kept by "
                             f"cleaning)")
        return source, f"{source.source} (the cleaned export in {cleaned.parent} is of other data: not used)"
    return source, f"{source.source} (no cleaned export in {cleaned.parent}: run 02_clean first to use one)"


__all__ += ["cleaned_data_path", "load_working_dataset"]
