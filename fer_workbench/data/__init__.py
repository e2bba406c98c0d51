"""Loaders (FER2013 CSV, image folders, FER+ votes), the Dataset type, the cache and the synthetic default."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fer_workbench.data.cache import cache_file, load_cached, save_cached
from fer_workbench.data.dataset import Dataset
from fer_workbench.data.fer_csv import load_fer_csv
from fer_workbench.data.ferplus import FERPLUS_CLASS_NAMES, FerPlusVotes, load_ferplus
from fer_workbench.data.folders import load_image_folder
from fer_workbench.data.labels import LABEL_SOURCES, label_source_counts, with_label_source
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


__all__ = ["FERPLUS_CLASS_NAMES", "LABEL_SOURCES", "Dataset", "FerPlusVotes", "label_source_counts", "load_dataset",
           "load_fer_csv", "load_ferplus", "load_image_folder", "with_label_source"]


def resolve_data_path(data_path: str | os.PathLike | None, profile: str = "smoke", seed: int = 0) -> Path:
    """The user's dataset, or (when none is given) the embedded synthetic default for this profile and seed."""
    if data_path:
        return Path(data_path).expanduser()
    from fer_workbench.data.synthetic import ensure_default_dataset

    return ensure_default_dataset(profile, seed)


__all__.append("resolve_data_path")


def is_synthetic(data_path: str | os.PathLike | None, profile: str = "smoke", seed: int = 0) -> bool:
    """Whether ``data_path`` (None: the embedded default) is a synthetic dataset: drawn faces, with the truth file
    ``data.synthetic`` writes beside them."""
    from fer_workbench.data.synthetic import truth_path_for

    return truth_path_for(resolve_data_path(data_path, profile, seed)).exists()


__all__.append("is_synthetic")


def cleaned_data_path(output_dir: str | os.PathLike) -> Path:
    """Where notebook 02 / `fer-workbench clean` leave the cleaned export inside a run directory."""
    return Path(output_dir) / "clean" / "cleaned.csv"


def cleaning_kept_rows(dataset: Dataset, output_dir: str | os.PathLike) -> np.ndarray | None:
    """Boolean mask over ``dataset``: the rows notebook 02 / `fer-workbench clean` kept in this run's cleaned export;
    None when the run has no export made from this very data."""
    import json

    import pandas as pd

    cleaned = cleaned_data_path(output_dir)
    summary = cleaned.parent / "summary.json"
    if not (cleaned.exists() and summary.exists()):
        return None
    try:
        made_from = json.loads(summary.read_text(encoding="utf-8")).get("data_checksum")
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{summary}: unreadable cleaning summary ({exc})") from None
    if made_from != dataset.checksum:
        return None
    try:
        kept_ids = pd.read_csv(cleaned, usecols=["row_id"])["row_id"].to_numpy()
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{cleaned}: cannot read its row_id column ({exc}); run 02_clean again") from None
    return np.isin(dataset.row_ids, kept_ids)


def load_working_dataset(data_path, output_dir, profile: str = "smoke", seed: int = 0,
                         skip_bad_rows: bool = False, labels: str = "fer2013",
                         ferplus: str | os.PathLike | FerPlusVotes | None = None) -> tuple[Dataset, str]:
    """The dataset later notebooks work on, and a sentence saying what it is.

    Cleaning decides what *training* sees: with this run's cleaned export of the same source, Training keeps only
    the rows cleaning kept, while PublicTest and PrivateTest stay whole (n = 3,589 each on FER2013), so test
    figures compare with papers and model cards. ``cleaning_kept_rows`` gives the cleaned test subsets to report
    beside the full figures. ``labels`` is the label source (``data.labels``; FER+ ones need ``ferplus``, the
    votes file), applied after cleaning.
    """
    dataset, description = _cleaned_working_dataset(data_path, output_dir, profile, seed, skip_bad_rows)
    if labels == "fer2013":
        return dataset, description
    relabelled = with_label_source(dataset, ferplus, labels)
    return relabelled, (f"{description} Labels: {labels} ({len(relabelled):,} of {len(dataset):,} images have one; "
                        f"classes {', '.join(relabelled.class_names)}).")


def _cleaned_working_dataset(data_path, output_dir, profile: str, seed: int, skip_bad_rows: bool
                             ) -> tuple[Dataset, str]:
    source = load_dataset(resolve_data_path(data_path, profile, seed), skip_bad_rows=skip_bad_rows)
    cleaned = cleaned_data_path(output_dir)
    if not cleaned.exists():
        return source, f"{source.source} (no cleaned export in {cleaned.parent}: run 02_clean first to use one)"
    kept = cleaning_kept_rows(source, output_dir)
    if kept is None:
        return source, f"{source.source} (the cleaned export in {cleaned.parent} is of other data: not used)"
    training = source.splits == "Training"
    dataset = source.subset(kept | ~training)
    removed = ", ".join(f"{name} {int((~kept & (source.splits == name)).sum()):,} of "
                        f"{int((source.splits == name).sum()):,}" for name in source.split_names())
    return dataset, (f"{source.source} with this run's cleaning applied to Training only "
                     f"({int((kept & training).sum()):,} of {int(training.sum()):,} Training images kept; test "
                     f"splits evaluated in full). Cleaning flagged: {removed}.")


__all__ += ["cleaned_data_path", "cleaning_kept_rows", "load_working_dataset"]
