"""The chief of a distributed search: serves keras-tuner's oracle and the workers' leases, keeps the assignment log."""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent import futures
from datetime import datetime
from pathlib import Path

import grpc
from keras_tuner.engine.trial import Trial, TrialStatus

from fer_workbench.distributed import adapter
from fer_workbench.distributed.cluster import LEASE_METHOD, LEASE_SERVICE, Cluster, from_json, to_json
from fer_workbench.distributed.log import AssignmentLog, now, trial_workers
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import atomic_write_text

BEST_FILE = "best_trial.json"


class _Chief:
    """Bookkeeping around keras-tuner's oracle: leases, trials orphaned by a chief restart, the assignment log."""

    def __init__(self, oracle, project_dir: Path, cluster: Cluster, identity: dict | None):
        self.oracle, self.cluster = oracle, cluster
        self.identity = None if identity is None else json.loads(json.dumps(identity))
        self.lock = threading.RLock()
        self.log = AssignmentLog(project_dir)
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
            if adapter.unqueue(oracle, trial_id):
                self.pending[trial_id] = (worker, self.started + cluster.lease_timeout)
        remaining = oracle.remaining_trials()
        self.done_at_start = remaining is not None and remaining <= 0 and not adapter.queued_for_retry(oracle) \
            and not self.pending and not oracle.ongoing_trials
        self.log.data["sessions"].append({"started": now(), "ended": None, "address": cluster.address,
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
                trial = Trial(oracle.get_space(), trial_id="", status=TrialStatus.STOPPED)
            else:
                trial = oracle.create_trial(tuner_id)
            if trial.status == TrialStatus.STOPPED:
                if not self.fatal and (oracle.ongoing_trials or self.pending):
                    # Keep the worker: a trial still running elsewhere may be lost and need someone to rerun it.
                    oracle.tuner_ids.add(tuner_id)
                    return Trial(oracle.get_space(), trial_id="", status=TrialStatus.IDLE)
                self.stop_triggered = True
                self.log.worker(tuner_id, "finished")
                self.log.save()
            elif trial.status == TrialStatus.RUNNING:
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
            adapter.save_trial(oracle, oracle.trials[trial.trial_id])
            oracle.save()
        stored = oracle.trials[trial.trial_id]
        outcome = {TrialStatus.COMPLETED: "completed", TrialStatus.FAILED: "failed",
                   TrialStatus.INVALID: "invalid"}.get(stored.status, str(stored.status).lower())
        trial_status = "queued for retry" if trial.trial_id in adapter.queued_for_retry(oracle) else outcome
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
        trial.status = TrialStatus.RUNNING
        oracle.ongoing_trials[tuner_id] = trial
        oracle.tuner_ids.add(tuner_id)
        adapter.keep_trial_clock(oracle, trial_id, datetime.now())  # it started under the previous chief
        oracle.save()
        self.log.note(trial_id, tuner_id, "kept by its worker across a chief restart")
        self.log.save()

    def reap(self) -> None:
        """End the trials of workers silent for longer than the lease; retry the orphans nobody reclaimed."""
        now_s, lease = time.monotonic(), self.cluster.lease_timeout
        with self.lock:
            oracle = self.oracle
            for tuner_id in sorted(set(oracle.tuner_ids) | set(oracle.ongoing_trials)):
                silent = now_s - self.last_seen.get(tuner_id, self.started)
                if silent <= lease:
                    continue
                oracle.tuner_ids.discard(tuner_id)
                note = f"no word from {tuner_id} for {silent:.1f} s (lease {lease:g} s)"
                trial = oracle.ongoing_trials.get(tuner_id)
                if trial is not None:
                    trial.status, trial.message = TrialStatus.INVALID, note
                    self._end(trial, tuner_id, "lost", note)
                else:
                    self.log.worker(tuner_id, "lost")
                    self.log.save()
            for trial_id, (tuner_id, deadline) in list(self.pending.items()):
                if now_s >= deadline:
                    del self.pending[trial_id]
                    adapter.queue_for_retry(oracle, trial_id)
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
            self.log.data["sessions"][-1]["ended"] = now()
            self.log.save()


def _under_lock(rpc: str):
    """keras-tuner's handler of ``rpc``, run while the servicer's chief holds its lock."""
    handler = getattr(adapter.OracleServicer, rpc)

    def locked(self, request, context):
        with self.chief.lock:
            return handler(self, request, context)

    locked.__name__ = locked.__qualname__ = rpc
    return locked


class _Servicer(adapter.OracleServicer):
    """keras-tuner's oracle service, routed through the chief's bookkeeping."""

    def __init__(self, chief: _Chief):
        super().__init__(chief.oracle)
        self.chief = chief

    GetSpace = _under_lock("GetSpace")
    UpdateSpace = _under_lock("UpdateSpace")
    GetTrial = _under_lock("GetTrial")
    GetBestTrials = _under_lock("GetBestTrials")

    def CreateTrial(self, request, context):
        trial = self.chief.create_trial(request.tuner_id)
        return adapter.response("CreateTrial", trial=trial.to_proto())

    def UpdateTrial(self, request, context):
        trial = self.chief.update_trial(request.trial_id, request.metrics, request.step)
        return adapter.response("UpdateTrial", trial=trial.to_proto())

    def EndTrial(self, request, context):
        self.chief.end_trial(Trial.from_proto(request.trial))
        return adapter.response("EndTrial")


def _start_server(chief: _Chief) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                         options=[("grpc.so_reuseport", 0)])  # a second chief on the same port must fail, not share
    adapter.add_oracle_servicer(_Servicer(chief), server)
    lease = grpc.unary_unary_rpc_method_handler(chief.heartbeat, request_deserializer=from_json,
                                                response_serializer=to_json)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(LEASE_SERVICE, {LEASE_METHOD: lease}),))
    address = chief.cluster.address
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        chief.close()
        raise WorkbenchError(f"cannot listen on {address} (port in use, or not an address of this machine)")
    server.start()
    return server


def serve(tuner, cluster: Cluster, identity: dict | None = None, verbose="auto", poll: float = 0.25) -> dict | None:
    """Run the chief: serve ``tuner``'s oracle on ``cluster.address`` until every trial has ended and every worker
    has been told to stop or declared lost. Returns the best trial, also written to ``<project_dir>/best_trial.json``.
    """
    oracle = tuner.oracle
    oracle.verbose = verbose
    project_dir = Path(tuner.project_dir)
    chief = _Chief(oracle, project_dir, cluster, identity)
    tuner.save()
    server = _start_server(chief)
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
    from fer_workbench.tuning import best_trials

    best = best_trials(tuner.oracle, 1)
    if not best:
        return None
    trial = best[0]
    document = {"trial_id": trial.trial_id, "score": trial.score, "objective": tuner.oracle.objective.name,
                "hyperparameters": dict(trial.hyperparameters.values),
                "worker": trial_workers(tuner.project_dir).get(trial.trial_id)}
    atomic_write_text(Path(tuner.project_dir) / BEST_FILE, json.dumps(document, indent=1, default=str))
    return document
