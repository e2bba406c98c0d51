"""What a run did, notebook by notebook: the records behind run.json and index.html.

:class:`NotebookRecord` is one notebook's outcome (status, timing, outputs, where it failed), :class:`PipelineResult`
the whole run's, and :meth:`PipelineResult.to_dict` the run.json document. :func:`describe_run` gathers the run's
metadata (profile, seed, data and its checksum, kernel, versions).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fer_workbench.files import sha256_file
from fer_workbench.provenance import run_metadata

OK = "ok"
FAILED = "failed"
NOT_RUN = "not run"
PENDING = "pending"
RUNNING = "running"

# parameter / metadata keys shown prominently in index.html when present
_DATA_PATH_KEYS = ("data_path", "data_dir", "data", "dataset", "csv_path")
_DATA_CHECKSUM_KEYS = ("data_checksum", "data_sha256", "checksum", "sha256")


@dataclass
class NotebookRecord:
    """What happened to one notebook of a run."""

    name: str  # file name, e.g. "02_clean.ipynb"
    source: Path
    status: str = PENDING  # "ok", "failed", "not run" (transiently "pending" / "running")
    seconds: float | None = None  # execution wall time (kernel start included, HTML export excluded)
    html: Path | None = None
    executed: Path | None = None
    error: str | None = None  # one line, e.g. "ValueError: bad row"
    failed_cell: int | None = None  # 0-based index into the *source* notebook's cells
    failed_execution_count: int | None = None  # the "In [n]" shown in the executed notebook / HTML
    results: Path | None = None  # results/NN_name.json when the notebook recorded results
    thumbnail: Path | None = None  # results/NN_name.png when it recorded a figure with them
    earlier: str | None = None  # not run this time: kept from the run created then (same settings, ``--only``)

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    def to_dict(self, relative_to: Path | None = None) -> dict:
        def rel(path: Path | None) -> str | None:
            if path is None:
                return None
            if relative_to is not None:
                with contextlib.suppress(ValueError):
                    return Path(path).relative_to(relative_to).as_posix()
            return str(path)

        return {
            "name": self.name, "source": str(self.source), "status": self.status,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "html": rel(self.html), "executed": rel(self.executed), "error": self.error,
            "failed_cell": self.failed_cell, "failed_execution_count": self.failed_execution_count,
            "results": rel(self.results), "thumbnail": rel(self.thumbnail), "earlier": self.earlier,
        }

    def failure_message(self) -> str | None:
        if self.status != FAILED:
            return None
        where = ""
        if self.failed_cell is not None:
            where = f" at cell {self.failed_cell}"
            if self.failed_execution_count is not None:
                where += f" (In [{self.failed_execution_count}])"
        return f"notebook {self.name} failed{where}: {self.error or 'unknown error'}"


@dataclass
class PipelineResult:
    """What happened to a whole run: its directory, its notebooks' records, metadata and gathered results."""

    out_dir: Path
    index_path: Path
    records: list[NotebookRecord]
    metadata: dict = field(default_factory=dict)
    run_json: Path | None = None
    results: dict = field(default_factory=dict)  # notebook stem -> its recorded results, in run order

    @property
    def ok(self) -> bool:
        return all(record.status == OK for record in self.records)

    @property
    def failed(self) -> NotebookRecord | None:
        return next((record for record in self.records if record.status == FAILED), None)

    def failure_message(self) -> str | None:
        """One line, e.g. ``notebook 02_clean.ipynb failed at cell 7 (In [5]): ValueError: ...``; None if ok.

        The cell number is the 0-based index into the source notebook's cells (``nb.cells[7]``).
        """
        record = self.failed
        if record is not None:
            return record.failure_message()
        if not self.ok:
            return "run did not finish: " + ", ".join(f"{r.name} {r.status}" for r in self.records if r.status != OK)
        return None

    def to_dict(self) -> dict:
        """The run.json document: metadata, outcome, one record per notebook, and the results they recorded."""
        return {
            "metadata": self.metadata,
            "ok": self.ok,
            "failure": self.failure_message(),
            "notebooks": [record.to_dict(relative_to=self.out_dir) for record in self.records],
            "results": {record.stem: self.results[record.stem] for record in self.records
                        if record.stem in self.results},
        }


def plain_values(value):
    """Parameters as JSON/papermill-friendly values (paths to str, tuples to lists)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {str(k): plain_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain_values(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        return value.item()  # numpy scalar
    return value


def _first(mapping: dict, keys: Sequence[str]):
    for key in keys:
        if mapping.get(key) not in (None, ""):
            return mapping[key]
    return None


def describe_run(parameters: dict, extra: dict | None, kernel: dict, paths: Sequence[Path]) -> dict:
    """The run's metadata: provenance plus profile, seed, data path and checksum picked from the parameters and
    ``extra`` (the caller's fields, which win), the kernel, the notebooks and the parameters themselves."""
    extra = plain_values(dict(extra or {}))
    merged = {**parameters, **extra}
    fields = {
        "profile": _first(merged, ("profile",)),
        "seed": _first(merged, ("seed",)),
        "data_path": _first(merged, _DATA_PATH_KEYS),
        "data_checksum": _first(merged, _DATA_CHECKSUM_KEYS),
        "kernel": kernel,
        "notebooks": [p.name for p in paths],
        "parameters": parameters,
    }
    fields.update({k: v for k, v in extra.items() if k not in fields or v is not None})
    if fields["data_checksum"] is None and fields["data_path"] and Path(fields["data_path"]).is_file():
        fields["data_checksum"] = sha256_file(fields["data_path"])  # ~1 s for FER2013's 300 MB CSV
    return run_metadata(**fields)


__all__ = ["FAILED", "NOT_RUN", "OK", "PENDING", "RUNNING", "NotebookRecord", "PipelineResult", "describe_run",
           "plain_values"]
