"""One Keras Tuner search across processes and machines: a chief serves the oracle, workers run the trials.

keras-tuner supplies the protocol: the environment variables ``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT`` pick a process's role, workers reach the chief's oracle over gRPC. This module adds what a
search on real machines needs beyond it:

* leases: a worker sends heartbeats while it holds a trial. When the chief hears nothing from a worker for
  ``lease_timeout`` seconds it ends that worker's trial as INVALID (keras-tuner's retry queue then hands it to the
  next worker that asks, up to ``max_retries`` times, after which it is FAILED) and forgets the worker, so neither
  the search nor the chief's exit waits for a dead process. A worker whose lease ran out drops its late result.
* an assignment log, ``<project_dir>/workers.json`` (``trial_assignments``): every attempt at every trial with its
  worker and outcome (running, completed, invalid, failed, lost), rewritten atomically by the chief on each change.
* bounded waits: a worker retries the chief for up to ``chief_wait`` seconds on every call, so it rides out a chief
  restart (and may be started before the chief).
* resume: a restarted chief reloads its directory (completed trials are kept). A trial that was running when the
  chief stopped stays with its worker if that worker reports back within one lease, and is retried otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
import warnings
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pandas as pd
from keras_tuner import errors as kt_errors
from keras_tuner.src import protos
from keras_tuner.src.distribute import oracle_chief, oracle_client
from keras_tuner.src.engine import hyperparameters as hp_module
from keras_tuner.src.engine import trial as trial_module

from fer_workbench.errors import WorkbenchError
from fer_workbench.files import atomic_write_text

ROLES = ("chief", "worker")
LOG_FILE = "workers.json"
BEST_FILE = "best_trial.json"
_LEASE_SERVICE, _LEASE_METHOD = "fer_workbench.Lease", "Heartbeat"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_Status = trial_module.TrialStatus
# Workers notice a (re)started chief within about a second instead of gRPC's default backoff of up to two minutes.
_CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 500), ("grpc.min_reconnect_backoff_ms", 500),
                    ("grpc.max_reconnect_backoff_ms", 1000)]


class ChiefError(WorkbenchError, kt_errors.FatalError):
    """The chief cannot be reached or refused this worker; fatal, so keras-tuner does not count it as a failed trial."""


def parse_oracle(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[IPv6]:PORT`` for IPv6) → (host, port)."""
    text = str(address or "").strip()
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # a bare IPv6 address is ambiguous
    if not sep or not host or any(c.isspace() for c in host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise WorkbenchError(f"--oracle expects HOST:PORT with a port in 1-65535 (e.g. 10.0.0.5:8000 or "
                             f"[::1]:8000), got {address!r}")
    return host, int(port)


def _default_worker_id() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()).strip("-.") or "host"
    return f"{name[:40]}-{os.getpid()}".replace("chief", "chf")


@dataclass(frozen=True)
class Cluster:
    """This process's part in a distributed search: the chief (serves the oracle) or a worker (runs trials)."""

    role: str
    host: str
    port: int
    worker_id: str = "chief"
    lease_timeout: float = 60.0
    chief_wait: float = 300.0
    max_retries: int = 1

    @classmethod
    def create(cls, role: str, oracle: str | None, worker_id: str | None = None, lease_timeout: float = 60.0,
               chief_wait: float = 300.0, max_retries: int = 1) -> Cluster:
        """Validated settings; ``worker_id`` defaults to ``<hostname>-<pid>`` (it names the worker in the log)."""
        if role not in ROLES:
            raise WorkbenchError(f"unknown role {role!r}; choose chief or worker")
        if not oracle:
            raise WorkbenchError("--role needs --oracle HOST:PORT (the chief's address)")
        host, port = parse_oracle(oracle)
        if role == "chief":
            if worker_id:
                raise WorkbenchError("--worker-id is for workers; the chief is always 'chief'")
            worker_id = "chief"
        else:
            worker_id = worker_id or _default_worker_id()
            if not _ID.fullmatch(worker_id):
                raise WorkbenchError(f"worker id {worker_id!r}: use up to 64 letters, digits, '.', '_' or '-'")
            if "chief" in worker_id:
                raise WorkbenchError(f"worker id {worker_id!r} contains 'chief', which keras-tuner reserves for the chief")
        if not lease_timeout > 0 or not chief_wait > 0 or max_retries < 0:
            raise WorkbenchError("--lease-timeout and --chief-wait must be positive, --max-retries at least 0")
        return cls(role, host, port, worker_id, float(lease_timeout), float(chief_wait), int(max_retries))

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def tuner_id(self) -> str:
        return "chief" if self.role == "chief" else self.worker_id

    @property
    def heartbeat_interval(self) -> float:
        """How often workers report while they hold a trial: four chances per lease, at least every 10 s."""
        return max(0.2, min(self.lease_timeout / 4, 10.0))

    def activate(self) -> None:
        """Set keras-tuner's environment variables: tuners built afterwards in this process take this role."""
        os.environ.update(KERASTUNER_TUNER_ID=self.tuner_id, KERASTUNER_ORACLE_IP=self.host,
                          KERASTUNER_ORACLE_PORT=str(self.port))


def search_identity(tuner, dataset, profile, seed: int) -> dict:
    """What every process of one search must agree on; the chief turns away workers that differ."""
    budgets = json.dumps(profile.to_dict(), sort_keys=True, default=str).encode()
    return {"data": getattr(dataset, "checksum", None) or None, "kind": type(tuner).__name__,
            "profile": f"{profile.name}:{hashlib.sha256(budgets).hexdigest()[:12]}", "seed": int(seed),
            "preprocessing": getattr(tuner.hypermodel, "preprocessing", "none")}


def attach(tuner, cluster: Cluster):
    """Make ``tuner`` (built after ``cluster.activate()``) this process's chief or worker; returns it."""
    tuner.fer_cluster = cluster
    if cluster.role == "chief":
        _atomic_saves(tuner.oracle)
    else:
        client = tuner.oracle
        tuner.oracle = _WorkerClient(getattr(client, "_oracle", client), cluster,
                                     multi_worker=getattr(client, "multi_worker", False),
                                     should_report=getattr(client, "should_report", True))
    return tuner


def _atomic_saves(oracle) -> None:
    # keras-tuner rewrites oracle.json and trial.json in place; a notebook reading a live search must never see
    # half a file.
    def save():
        atomic_write_text(oracle._get_oracle_fname(), json.dumps(oracle.get_state()))

    def save_trial(trial):
        atomic_write_text(Path(oracle._get_trial_dir(trial.trial_id)) / "trial.json", json.dumps(trial.get_state()))

    oracle.save, oracle._save_trial = save, save_trial


def _to_json(value) -> bytes:
    return json.dumps(value).encode("utf-8")


def _from_json(data: bytes):
    return json.loads(data.decode("utf-8"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# ------------------------------------------------------------------------------------------- assignment log


def read_log(project_dir: str | os.PathLike) -> dict | None:
    """The assignment log of a distributed search, or None when ``project_dir`` has none."""
    path = Path(project_dir) / LOG_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{path}: unreadable assignment log ({exc})") from None


class _Log:
    """``workers.json``: sessions of the chief, attempts per trial, state per worker; only the chief writes it."""

    def __init__(self, project_dir: Path):
        self.path = project_dir / LOG_FILE
        self.data = read_log(project_dir) or {"sessions": [], "trials": {}, "workers": {}}

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=1))

    def worker(self, worker: str, status: str, trial_id: str | None = None) -> None:
        entry = self.data["workers"].setdefault(worker, {"first_seen": _now(), "trials": []})
        entry.update(status=status, trial=trial_id, last_event=_now())
        if trial_id is not None and trial_id not in entry["trials"]:
            entry["trials"].append(trial_id)

    def _attempts(self, trial_id: str) -> list:
        return self.data["trials"].setdefault(trial_id, {"attempts": []})["attempts"]

    def _running(self, trial_id: str, worker: str) -> dict | None:
        return next((a for a in reversed(self._attempts(trial_id))
                     if a["worker"] == worker and a["status"] == "running"), None)

    def start(self, trial_id: str, worker: str) -> None:
        if self._running(trial_id, worker) is None:  # a restarted worker may be handed its own trial again
            self._attempts(trial_id).append({"worker": worker, "status": "running", "started": _now(),
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
        ended = _now()
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


# ------------------------------------------------------------------------------------------------- the chief


class _Chief:
    """Bookkeeping around keras-tuner's oracle: leases, trials orphaned by a chief restart, the assignment log."""

    def __init__(self, oracle, project_dir: Path, cluster: Cluster, identity: dict | None):
        self.oracle, self.cluster = oracle, cluster
        self.identity = None if identity is None else json.loads(json.dumps(identity))
        self.lock = threading.RLock()
        self.log = _Log(project_dir)
        self.started = time.monotonic()
        self.last_seen: dict[str, float] = {}  # tuner id → when the chief last heard from it
        self.pending: dict[str, tuple[str, float]] = {}  # trial id → (worker, deadline) after a restart
        self.stop_triggered = False
        self.fatal: str | None = None
        # Trials running when the previous chief stopped: keras-tuner's reload queued them for retry; hold them
        # back for one lease so that their workers, if alive, can finish them.
        oracle_file = project_dir / "oracle.json"
        ongoing = json.loads(oracle_file.read_text(encoding="utf-8")).get("ongoing_trials", {}) \
            if oracle_file.exists() else {}
        for worker, trial_id in ongoing.items():
            if trial_id in oracle._retry_queue:
                oracle._retry_queue.remove(trial_id)
                self.pending[trial_id] = (worker, self.started + cluster.lease_timeout)
        remaining = oracle.remaining_trials()
        self.done_at_start = remaining is not None and remaining <= 0 and not oracle._retry_queue \
            and not self.pending and not oracle.ongoing_trials
        self.log.data["sessions"].append({"started": _now(), "ended": None, "address": cluster.address,
                                          "lease_timeout": cluster.lease_timeout, "max_retries": cluster.max_retries,
                                          "resumed_trials": len(oracle.trials), "identity": self.identity})
        self.log.save()

    def seen(self, tuner_id: str) -> None:
        self.last_seen[tuner_id] = time.monotonic()  # stamped on arrival, before waiting for the lock

    def holder(self, trial_id: str) -> str | None:
        return next((t for t, trial in self.oracle.ongoing_trials.items() if trial.trial_id == trial_id), None)

    def create_trial(self, tuner_id: str):
        self.seen(tuner_id)
        with self.lock:
            oracle = self.oracle
            if self.fatal:
                oracle.tuner_ids.discard(tuner_id)
                trial = trial_module.Trial(oracle.get_space(), trial_id="", status=_Status.STOPPED)
            else:
                trial = oracle.create_trial(tuner_id)
            if trial.status == _Status.STOPPED:
                if not self.fatal and (oracle.ongoing_trials or self.pending):
                    # Keep the worker: a trial still running elsewhere may be lost and need someone to rerun it.
                    oracle.tuner_ids.add(tuner_id)
                    return trial_module.Trial(oracle.get_space(), trial_id="", status=_Status.IDLE)
                self.stop_triggered = True
                self.log.worker(tuner_id, "finished")
                self.log.save()
            elif trial.status == _Status.RUNNING:
                self.log.start(trial.trial_id, tuner_id)
                self.log.save()
            return trial

    def update_trial(self, trial_id: str, metrics, step):
        with self.lock:
            holder = self.holder(trial_id)
            if holder is None:  # a late report from a worker that lost this trial: ignored
                return self.oracle.get_trial(trial_id)
            self.seen(holder)
            return self.oracle.update_trial(trial_id, metrics, step=step)

    def end_trial(self, trial) -> None:
        with self.lock:
            holder = self.holder(trial.trial_id)
            if holder is not None:  # else a duplicate, or a worker that lost this trial: ignored
                self.seen(holder)
                self._end(trial, holder)

    def _end(self, trial, holder: str, status: str | None = None, note: str | None = None) -> None:
        oracle = self.oracle
        try:
            oracle.end_trial(trial)
        except RuntimeError as exc:  # keras-tuner's max_consecutive_failed_trials: stop handing out trials
            self.fatal = str(exc).strip().splitlines()[0]
            oracle.ongoing_trials.pop(holder, None)
            oracle._save_trial(oracle.trials[trial.trial_id])
            oracle.save()
        stored = oracle.trials[trial.trial_id]
        outcome = {_Status.COMPLETED: "completed", _Status.FAILED: "failed", _Status.INVALID: "invalid"}.get(
            stored.status, str(stored.status).lower())
        trial_status = "queued for retry" if trial.trial_id in oracle._retry_queue else outcome
        self.log.end(trial.trial_id, holder, status or outcome, trial_status, note)
        self.log.worker(holder, "lost" if status == "lost" else "idle")
        self.log.save()

    def heartbeat(self, request: dict, context=None) -> dict:
        """A worker checks in: with a trial id, it asks whether it still holds that trial (and renews the lease)."""
        tuner_id = str(request.get("tuner_id"))
        self.seen(tuner_id)
        reply = {"held": False, "interval": self.cluster.heartbeat_interval, "error": None}
        theirs = request.get("identity")
        if theirs is not None and self.identity is not None and theirs != self.identity:
            differ = sorted(k for k in set(theirs) | set(self.identity) if theirs.get(k) != self.identity.get(k))
            reply["error"] = (f"worker {tuner_id} is not running the chief's search (differs in: {', '.join(differ)});"
                              f" start every process with the same --data, --kind, --profile and --seed")
            return reply
        trial_id = request.get("trial_id")
        if trial_id:
            with self.lock:
                current = self.oracle.ongoing_trials.get(tuner_id)
                if current is not None:
                    reply["held"] = current.trial_id == trial_id
                elif self.pending.get(trial_id, ("",))[0] == tuner_id:
                    self._readopt(trial_id, tuner_id)
                    reply["held"] = True
        return reply

    def _readopt(self, trial_id: str, tuner_id: str) -> None:
        del self.pending[trial_id]
        oracle = self.oracle
        trial = oracle.trials[trial_id]
        trial.status = _Status.RUNNING
        oracle.ongoing_trials[tuner_id] = trial
        oracle.tuner_ids.add(tuner_id)
        # keras-tuner's display times trials from their start; this one started under the previous chief.
        oracle._display.trial_start.setdefault(trial_id, datetime.now())
        oracle._display.trial_number.setdefault(trial_id, len(oracle.trials))
        oracle.save()
        self.log.note(trial_id, tuner_id, "kept by its worker across a chief restart")
        self.log.save()

    def reap(self) -> None:
        """End the trials of workers silent for longer than the lease; retry the orphans nobody reclaimed."""
        now, lease = time.monotonic(), self.cluster.lease_timeout
        with self.lock:
            oracle = self.oracle
            for tuner_id in sorted(set(oracle.tuner_ids) | set(oracle.ongoing_trials)):
                silent = now - self.last_seen.get(tuner_id, self.started)
                if silent <= lease:
                    continue
                oracle.tuner_ids.discard(tuner_id)
                note = f"no word from {tuner_id} for {silent:.1f} s (lease {lease:g} s)"
                trial = oracle.ongoing_trials.get(tuner_id)
                if trial is not None:
                    trial.status, trial.message = _Status.INVALID, note
                    self._end(trial, tuner_id, "lost", note)
                else:
                    self.log.worker(tuner_id, "lost")
                    self.log.save()
            for trial_id, (tuner_id, deadline) in list(self.pending.items()):
                if now >= deadline:
                    del self.pending[trial_id]
                    oracle._retry_queue.append(trial_id)
                    oracle.save()
                    self.log.end(trial_id, tuner_id, "lost", "queued for retry",
                                 f"{tuner_id} did not report back within {lease:g} s of the chief restarting")
                    self.log.worker(tuner_id, "lost")
                    self.log.save()

    def finished(self) -> bool:
        with self.lock:
            if self.done_at_start:
                return True
            oracle = self.oracle
            return bool(self.stop_triggered or self.fatal) and not oracle.ongoing_trials and not oracle.tuner_ids \
                and not self.pending

    def close(self) -> None:
        with self.lock:
            self.log.data["sessions"][-1]["ended"] = _now()
            self.log.save()


class _Servicer(oracle_chief.OracleServicer):
    """keras-tuner's oracle service, routed through the chief's bookkeeping."""

    def __init__(self, chief: _Chief):
        super().__init__(chief.oracle)
        self.chief = chief

    def GetSpace(self, request, context):
        with self.chief.lock:
            return super().GetSpace(request, context)

    def UpdateSpace(self, request, context):
        with self.chief.lock:
            return super().UpdateSpace(request, context)

    def CreateTrial(self, request, context):
        trial = self.chief.create_trial(request.tuner_id)
        return protos.get_service().CreateTrialResponse(trial=trial.to_proto())

    def UpdateTrial(self, request, context):
        trial = self.chief.update_trial(request.trial_id, request.metrics, request.step)
        return protos.get_service().UpdateTrialResponse(trial=trial.to_proto())

    def EndTrial(self, request, context):
        self.chief.end_trial(trial_module.Trial.from_proto(request.trial))
        return protos.get_service().EndTrialResponse()

    def GetTrial(self, request, context):
        with self.chief.lock:
            return super().GetTrial(request, context)

    def GetBestTrials(self, request, context):
        with self.chief.lock:
            return super().GetBestTrials(request, context)


def serve(tuner, cluster: Cluster, identity: dict | None = None, verbose="auto", poll: float = 0.25) -> dict | None:
    """Run the chief: serve ``tuner``'s oracle on ``cluster.address`` until every trial has ended and every worker
    has been told to stop or declared lost. Returns the best trial, also written to ``<project_dir>/best_trial.json``.
    """
    oracle = tuner.oracle
    oracle.verbose = verbose
    project_dir = Path(tuner.project_dir)
    chief = _Chief(oracle, project_dir, cluster, identity)
    tuner.save()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                         options=[("grpc.so_reuseport", 0)])  # a second chief on the same port must fail, not share
    protos.get_service_grpc().add_OracleServicer_to_server(_Servicer(chief), server)
    lease = grpc.unary_unary_rpc_method_handler(chief.heartbeat, request_deserializer=_from_json,
                                                response_serializer=_to_json)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_LEASE_SERVICE, {_LEASE_METHOD: lease}),))
    try:
        bound = server.add_insecure_port(cluster.address)
    except RuntimeError:
        bound = 0
    if not bound:
        chief.close()
        raise WorkbenchError(f"cannot listen on {cluster.address} (port in use, or not an address of this machine)")
    server.start()
    if verbose:
        print(f"chief: serving {project_dir} on {cluster.address} (lease {cluster.lease_timeout:g} s)",
              file=sys.stderr, flush=True)
    try:
        while not chief.finished():
            time.sleep(poll)
            chief.reap()
    finally:
        server.stop(grace=1.0).wait()
        chief.close()
    if chief.fatal:
        raise WorkbenchError(f"search stopped: {chief.fatal}")
    return write_best_trial(tuner)


def write_best_trial(tuner) -> dict | None:
    """The best completed trial (id, score, hyperparameters, worker) → ``<project_dir>/best_trial.json``."""
    best = [t for t in tuner.oracle.get_best_trials(1) if t.status == _Status.COMPLETED]
    if not best:
        return None
    trial = best[0]
    document = {"trial_id": trial.trial_id, "score": trial.score, "objective": tuner.oracle.objective.name,
                "hyperparameters": dict(trial.hyperparameters.values),
                "worker": trial_workers(tuner.project_dir).get(trial.trial_id)}
    atomic_write_text(Path(tuner.project_dir) / BEST_FILE, json.dumps(document, indent=1, default=str))
    return document


# ------------------------------------------------------------------------------------------------ the workers


class _WorkerClient(oracle_client.OracleClient):
    """keras-tuner's OracleClient with bounded retries (the chief may be restarting), heartbeats while a trial
    runs, and a lease check before reporting, so a worker the chief gave up on drops its result."""

    def __init__(self, oracle, cluster: Cluster, multi_worker: bool = False, should_report: bool = True):
        self._oracle = oracle
        self.cluster = cluster
        self.tuner_id = cluster.tuner_id
        self.multi_worker, self.should_report = multi_worker, should_report
        channel = grpc.insecure_channel(cluster.address, options=_CHANNEL_OPTIONS)
        self.stub = protos.get_service_grpc().OracleStub(channel)
        self._lease = channel.unary_unary(f"/{_LEASE_SERVICE}/{_LEASE_METHOD}", request_serializer=_to_json,
                                          response_deserializer=_from_json)
        self.identity: dict | None = None
        self.interval = 1.0
        self.trials_run: list[str] = []
        self._beating: threading.Event | None = None
        self._dropped: set[str] = set()

    def _call(self, method, request, what: str):
        deadline = time.monotonic() + self.cluster.chief_wait
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise _Timeout
                return method(request, wait_for_ready=True, timeout=remaining)
            except _Timeout:
                pass
            except grpc.RpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline:
                    time.sleep(0.5)  # the connection dropped mid-call: the chief is restarting
                    continue
                if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise ChiefError(f"the chief at {self.cluster.address} failed on {what}: "
                                     f"{(exc.details() or code.name).splitlines()[0]}") from None
            raise ChiefError(f"no answer from the chief at {self.cluster.address} for "
                             f"{self.cluster.chief_wait:g} s ({what}); is it running and is the port open?")

    def _check_in(self, trial_id: str | None = None) -> bool:
        reply = self._call(self._lease, {"tuner_id": self.tuner_id, "trial_id": trial_id, "identity": self.identity},
                           "lease")
        if reply.get("error"):
            raise ChiefError(reply["error"])
        self.interval = float(reply.get("interval") or self.interval)
        return bool(reply.get("held"))

    def _holds(self, trial_id: str) -> bool:
        if trial_id in self._dropped:
            return False
        if self._check_in(trial_id):
            return True
        self._dropped.add(trial_id)
        warnings.warn(f"worker {self.tuner_id}: the chief gave trial {trial_id} up (no heartbeat within its lease); "
                      f"dropping this worker's result", stacklevel=2)
        return False

    def _start_heartbeats(self, trial_id: str) -> None:
        self._stop_heartbeats()
        stop = self._beating = threading.Event()
        request = {"tuner_id": self.tuner_id, "trial_id": trial_id}

        def beat():
            while not stop.wait(self.interval):
                try:
                    reply = self._lease(request, timeout=max(1.0, self.interval))
                    self.interval = float(reply.get("interval") or self.interval)
                except grpc.RpcError:
                    pass  # the chief is away; its lease decides what happens to this trial

        threading.Thread(target=beat, name=f"lease-{trial_id}", daemon=True).start()

    def _stop_heartbeats(self) -> None:
        if self._beating is not None:
            self._beating.set()
            self._beating = None

    def get_space(self):
        response = self._call(self.stub.GetSpace, protos.get_service().GetSpaceRequest(), "GetSpace")
        return hp_module.HyperParameters.from_proto(response.hyperparameters)

    def update_space(self, hyperparameters):
        if self.should_report:
            request = protos.get_service().UpdateSpaceRequest(hyperparameters=hyperparameters.to_proto())
            self._call(self.stub.UpdateSpace, request, "UpdateSpace")

    def create_trial(self, tuner_id):
        self._check_in()
        request = protos.get_service().CreateTrialRequest(tuner_id=tuner_id)
        trial = trial_module.Trial.from_proto(self._call(self.stub.CreateTrial, request, "CreateTrial").trial)
        if trial.status == _Status.RUNNING:
            self._start_heartbeats(trial.trial_id)
        elif trial.status == _Status.IDLE:
            time.sleep(min(1.0, self.interval))  # keras-tuner asks again at once: do not spin
        return trial

    def update_trial(self, trial_id, metrics, step=0):
        if self.should_report and self._holds(trial_id):
            request = protos.get_service().UpdateTrialRequest(trial_id=trial_id, metrics=metrics, step=step)
            response = self._call(self.stub.UpdateTrial, request, "UpdateTrial")
            if not self.multi_worker:
                return trial_module.Trial.from_proto(response.trial)
        return trial_module.Trial(self._oracle.get_space(), trial_id=trial_id, status=_Status.RUNNING)

    def end_trial(self, trial):
        self._stop_heartbeats()
        if self.should_report and self._holds(trial.trial_id):
            request = protos.get_service().EndTrialRequest(trial=trial.to_proto())
            self._call(self.stub.EndTrial, request, "EndTrial")
            self.trials_run.append(trial.trial_id)

    def get_trial(self, trial_id):
        request = protos.get_service().GetTrialRequest(trial_id=trial_id)
        return trial_module.Trial.from_proto(self._call(self.stub.GetTrial, request, "GetTrial").trial)

    def get_best_trials(self, num_trials=1):
        request = protos.get_service().GetBestTrialsRequest(num_trials=num_trials)
        response = self._call(self.stub.GetBestTrials, request, "GetBestTrials")
        return [trial_module.Trial.from_proto(trial) for trial in response.trials]


class _Timeout(Exception):
    pass


__all__ = ["BEST_FILE", "LOG_FILE", "ChiefError", "Cluster", "attach", "parse_oracle", "read_log", "search_identity",
           "serve", "trial_assignments", "trial_workers", "write_best_trial"]
