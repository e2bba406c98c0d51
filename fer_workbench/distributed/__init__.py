"""One Keras Tuner search across processes and machines: a chief serves the oracle, workers run the trials.

keras-tuner supplies the protocol: the environment variables ``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT`` pick a process's role, workers reach the chief's oracle over gRPC. This package adds what a
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

Modules: ``cluster`` (roles, addresses), ``log`` (workers.json), ``chief`` (``serve``), ``worker`` (the client),
and ``adapter``, the only place that touches keras-tuner's internals.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fer_workbench.distributed.chief import BEST_FILE, serve, write_best_trial
    from fer_workbench.distributed.cluster import ROLES, Cluster, parse_oracle
    from fer_workbench.distributed.log import LOG_FILE, read_log, trial_assignments, trial_workers
    from fer_workbench.distributed.worker import ChiefError

# The package's names, each imported from its module on first use (PEP 562): ``cluster`` is plain Python, so
# ``Cluster`` and ``ROLES`` (the CLI's --role) load no keras-tuner, grpc or TensorFlow; ``chief`` and ``worker`` do.
_EXPORTS = {"BEST_FILE": "chief", "serve": "chief", "write_best_trial": "chief",
            "ROLES": "cluster", "Cluster": "cluster", "parse_oracle": "cluster",
            "LOG_FILE": "log", "read_log": "log", "trial_assignments": "log", "trial_workers": "log",
            "ChiefError": "worker"}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


def search_identity(tuner, dataset, profile, seed: int) -> dict:
    """What every process of one search must agree on; the chief turns away workers that differ."""
    budgets = json.dumps(profile.tune.to_dict(), sort_keys=True, default=str).encode()
    return {"data": getattr(dataset, "checksum", None) or None, "kind": type(tuner).__name__,
            "profile": f"{profile.name}:{hashlib.sha256(budgets).hexdigest()[:12]}", "seed": int(seed),
            "preprocessing": getattr(tuner.hypermodel, "preprocessing", "none")}


def attach(tuner, cluster: Cluster):
    """Make ``tuner`` (built after ``cluster.activate()``) this process's chief or worker; returns it."""
    from fer_workbench.distributed import adapter
    from fer_workbench.distributed.worker import WorkerClient

    tuner.fer_cluster = cluster
    if cluster.role == "chief":
        adapter.write_atomically(tuner.oracle)
    else:
        client = tuner.oracle
        tuner.oracle = WorkerClient(adapter.local_oracle(client), cluster,
                                    multi_worker=getattr(client, "multi_worker", False),
                                    should_report=getattr(client, "should_report", True))
    return tuner


__all__ = ["BEST_FILE", "LOG_FILE", "ROLES", "ChiefError", "Cluster", "attach", "parse_oracle", "read_log",
           "search_identity", "serve", "trial_assignments", "trial_workers", "write_best_trial"]
