"""On-disk cache of parsed datasets, keyed by the source's identity (path, size, mtime) and load options."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from fer_workbench.config import cache_dir
from fer_workbench.data.dataset import Dataset
from fer_workbench.files import atomic_path

CACHE_FORMAT = 2


def source_identity(path: Path) -> list:
    """What changes when the source changes: for a folder, every file's relative path, size and mtime."""
    if path.is_dir():
        return [(str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns)
                for p in sorted(path.rglob("*")) if p.is_file()]
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def cache_file(path: Path, options: dict) -> Path:
    key = json.dumps([CACHE_FORMAT, str(path.resolve()), source_identity(path), options], sort_keys=True)
    return cache_dir() / f"dataset-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"


def save_cached(target: Path, dataset: Dataset) -> None:
    meta = {"source": dataset.source, "checksum": dataset.checksum, "class_names": list(dataset.class_names),
            "skipped_rows": [list(r) for r in dataset.skipped_rows], "skipped_classes": list(dataset.skipped_classes)}
    arrays = {"images": dataset.images, "labels": dataset.labels, "splits": dataset.splits,
              "row_ids": dataset.row_ids, "meta": np.array(json.dumps(meta))}
    if dataset.paths is not None:
        arrays["paths"] = dataset.paths
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load_cached(target: Path) -> Dataset | None:
    """The cached dataset, or None when absent or unreadable (a broken cache is rebuilt, never trusted)."""
    if not target.exists():
        return None
    try:
        with np.load(target, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            return Dataset(images=archive["images"], labels=archive["labels"], splits=archive["splits"],
                           row_ids=archive["row_ids"], class_names=tuple(meta["class_names"]),
                           source=meta["source"], checksum=meta["checksum"],
                           paths=archive["paths"] if "paths" in archive.files else None,
                           skipped_rows=tuple(tuple(r) for r in meta["skipped_rows"]),
                           skipped_classes=tuple(meta.get("skipped_classes", ())))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return None


def clear_cache() -> int:
    """Delete every cached dataset; returns how many files were removed."""
    removed = 0
    for file in cache_dir().glob("dataset-*.npz"):
        os.remove(file)
        removed += 1
    return removed
