"""The assignment log of a distributed search, ``<project_dir>/workers.json``: who ran which trial, and how it ended."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from fer_workbench.errors import WorkbenchError
from fer_workbench.files import atomic_write_text

LOG_FILE = "workers.json"


def now() -> str:
    """The log's timestamps: UTC, ISO 8601, milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def read_log(project_dir: str | os.PathLike) -> dict | None:
    """The assignment log of a distributed search, or None when ``project_dir`` has none."""
    path = Path(project_dir) / LOG_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{path}: unreadable assignment log ({exc})") from None


class AssignmentLog:
    """``workers.json``: sessions of the chief, attempts per trial, state per worker; only the chief writes it."""

    def __init__(self, project_dir: Path):
        self.path = project_dir / LOG_FILE
        self.data = read_log(project_dir) or {"sessions": [], "trials": {}, "workers": {}}

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=1))

    def worker(self, worker: str, status: str, trial_id: str | None = None) -> None:
        entry = self.data["workers"].setdefault(worker, {"first_seen": now(), "trials": []})
        entry.update(status=status, trial=trial_id, last_event=now())
        if trial_id is not None and trial_id not in entry["trials"]:
            entry["trials"].append(trial_id)

    def _attempts(self, trial_id: str) -> list:
        return self.data["trials"].setdefault(trial_id, {"attempts": []})["attempts"]

    def _running(self, trial_id: str, worker: str) -> dict | None:
        return next((a for a in reversed(self._attempts(trial_id))
                     if a["worker"] == worker and a["status"] == "running"), None)

    def start(self, trial_id: str, worker: str) -> None:
        if self._running(trial_id, worker) is None:  # a restarted worker may be handed its own trial again
            self._attempts(trial_id).append({"worker": worker, "status": "running", "started": now(),
                                             "ended": None, "seconds": None, "note": None})
        self._summarise(trial_id, "running")
        self.worker(worker, "running", trial_id)

    def note(self, trial_id: str, worker: str, note: str) -> None:
        attempt = self._running(trial_id, worker)
        if attempt is not None:
            attempt["note"] = note
        self.worker(worker, "running", trial_id)

    def end(self, trial_id: str, worker: str, status: str, trial_status: str, note: str | None = None) -> None:
        attempt = self._running(trial_id, worker)
        if attempt is None:
            attempt = {"worker": worker, "started": None}
            self._attempts(trial_id).append(attempt)
        ended = now()
        seconds = None
        if attempt.get("started"):
            seconds = round((datetime.fromisoformat(ended) - datetime.fromisoformat(attempt["started"]))
                            .total_seconds(), 3)
        attempt.update(status=status, ended=ended, seconds=seconds, note=note or attempt.get("note"))
        self._summarise(trial_id, trial_status)

    def _summarise(self, trial_id: str, status: str) -> None:
        entry = self.data["trials"][trial_id]
        attempts = entry["attempts"]
        entry.update(status=status, worker=attempts[-1]["worker"] if attempts else None,
                     retried=len(attempts) > 1, lost_on=[a["worker"] for a in attempts if a["status"] == "lost"])


def trial_assignments(project_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per attempt at a trial: trial_id, attempt (1, 2, ...), worker, status (running, completed, invalid,
    failed, lost), trial_status (the trial's state now), started, ended, seconds, note."""
    log = read_log(project_dir)
    if log is None:
        raise WorkbenchError(f"{project_dir}: no {LOG_FILE}; not a distributed search (fer-workbench tune --role)")
    rows = [{"trial_id": trial_id, "attempt": k, "worker": a["worker"], "status": a["status"],
             "trial_status": entry.get("status"), "started": a.get("started"), "ended": a.get("ended"),
             "seconds": a.get("seconds"), "note": a.get("note")}
            for trial_id, entry in log["trials"].items() for k, a in enumerate(entry["attempts"], 1)]
    columns = ["trial_id", "attempt", "worker", "status", "trial_status", "started", "ended", "seconds", "note"]
    return pd.DataFrame(rows, columns=columns)


def trial_workers(project_dir: str | os.PathLike) -> dict:
    """trial_id → the worker of its latest attempt (the one whose result counts)."""
    log = read_log(project_dir) or {"trials": {}}
    return {trial_id: entry.get("worker") for trial_id, entry in log["trials"].items()}
