"""The worker side of a distributed search: keras-tuner's oracle client with bounded waits and leases."""

from __future__ import annotations

import threading
import time
import warnings

import grpc
import keras_tuner as kt
from keras_tuner import errors as kt_errors
from keras_tuner.engine.trial import Trial, TrialStatus

from fer_workbench.distributed import adapter
from fer_workbench.distributed.cluster import LEASE_METHOD, LEASE_SERVICE, Cluster, from_json, to_json
from fer_workbench.errors import WorkbenchError

# Workers notice a (re)started chief within about a second instead of gRPC's default backoff of up to two minutes.
_CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 500), ("grpc.min_reconnect_backoff_ms", 500),
                    ("grpc.max_reconnect_backoff_ms", 1000)]


class ChiefError(WorkbenchError, kt_errors.FatalError):
    """The chief cannot be reached or refused this worker; fatal, so keras-tuner does not count it as a failed trial."""


class _Timeout(Exception):
    pass


class WorkerClient(adapter.OracleClient):
    """keras-tuner's OracleClient with bounded retries (the chief may be restarting), heartbeats while a trial
    runs, and a lease check before reporting, so a worker the chief gave up on drops its result."""

    def __init__(self, oracle, cluster: Cluster, multi_worker: bool = False, should_report: bool = True):
        super().__init__(oracle)
        self.cluster = cluster
        self.tuner_id = cluster.tuner_id
        self.multi_worker, self.should_report = multi_worker, should_report
        channel = grpc.insecure_channel(cluster.address, options=_CHANNEL_OPTIONS)
        self.stub = adapter.oracle_stub(channel)
        self._lease = channel.unary_unary(f"/{LEASE_SERVICE}/{LEASE_METHOD}", request_serializer=to_json,
                                          response_deserializer=from_json)
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

    def _rpc(self, rpc: str, **fields):
        """Call the chief's oracle service (``rpc`` is one of ``adapter.RPCS``)."""
        return self._call(getattr(self.stub, rpc), adapter.request(rpc, **fields), rpc)

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
        return kt.HyperParameters.from_proto(self._rpc("GetSpace").hyperparameters)

    def update_space(self, hyperparameters):
        if self.should_report:
            self._rpc("UpdateSpace", hyperparameters=hyperparameters.to_proto())

    def create_trial(self, tuner_id):
        self._check_in()
        trial = Trial.from_proto(self._rpc("CreateTrial", tuner_id=tuner_id).trial)
        if trial.status == TrialStatus.RUNNING:
            self._start_heartbeats(trial.trial_id)
        elif trial.status == TrialStatus.IDLE:
            time.sleep(min(1.0, self.interval))  # keras-tuner asks again at once: do not spin
        return trial

    def update_trial(self, trial_id, metrics, step=0):
        if self.should_report and self._holds(trial_id):
            response = self._rpc("UpdateTrial", trial_id=trial_id, metrics=metrics, step=step)
            if not self.multi_worker:
                return Trial.from_proto(response.trial)
        return Trial(self.local_oracle.get_space(), trial_id=trial_id, status=TrialStatus.RUNNING)

    def end_trial(self, trial):
        self._stop_heartbeats()
        if self.should_report and self._holds(trial.trial_id):
            self._rpc("EndTrial", trial=trial.to_proto())
            self.trials_run.append(trial.trial_id)

    def get_trial(self, trial_id):
        return Trial.from_proto(self._rpc("GetTrial", trial_id=trial_id).trial)

    def get_best_trials(self, num_trials=1):
        return [Trial.from_proto(trial) for trial in self._rpc("GetBestTrials", num_trials=num_trials).trials]
