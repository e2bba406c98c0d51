"""Every use of keras-tuner's internals in fer_workbench, in one place.

keras-tuner has no public API for serving its oracle with one's own gRPC server, for a worker-side client of one's
own, or for its retry queue and display clock. The chief and the workers reach them only through this module.
``PRIVATE`` lists what these functions reach; ``UNDOCUMENTED`` what the chief and the workers use directly that
has a public name but no documentation. ``tests/test_tuner_adapter.py`` checks both against the installed
keras-tuner, and ``pyproject.toml`` pins the minor version they were checked on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras_tuner as kt
from keras_tuner.engine.trial import Trial
from keras_tuner.src import protos
from keras_tuner.src.distribute import oracle_chief, oracle_client
from keras_tuner.src.engine.oracle import Display

from fer_workbench.files import atomic_write_text

# keras-tuner's oracle service: each has a <name>Request and a <name>Response message.
RPCS = ("GetSpace", "UpdateSpace", "CreateTrial", "UpdateTrial", "EndTrial", "GetTrial", "GetBestTrials")


@dataclass(frozen=True)
class Member:
    """A keras-tuner member relied on: a method with its parameters (after ``self``/``cls``), or, with
    ``parameters=None``, an attribute of the owner's instances."""

    owner: type | object
    name: str
    parameters: tuple[str, ...] | None = None


_SERVICE_GRPC = protos.get_service_grpc()
PRIVATE = (
    Member(protos, "get_service", ()),
    Member(protos, "get_service_grpc", ()),
    Member(_SERVICE_GRPC, "add_OracleServicer_to_server", ("servicer", "server")),
    Member(_SERVICE_GRPC, "OracleStub", ("channel",)),
    Member(oracle_chief.OracleServicer, "__init__", ("oracle",)),
    *(Member(oracle_chief.OracleServicer, rpc, ("request", "context")) for rpc in RPCS),
    Member(oracle_client.OracleClient, "__getattr__", ("name",)),
    Member(oracle_client.OracleClient, "_oracle"),
    Member(kt.Oracle, "_get_oracle_fname", ()),
    Member(kt.Oracle, "_get_trial_dir", ("trial_id",)),
    Member(kt.Oracle, "_save_trial", ("trial",)),
    Member(kt.Oracle, "_retry_queue"),
    Member(kt.Oracle, "_display"),
    Member(Display, "trial_start"),
    Member(Display, "trial_number"),
)
UNDOCUMENTED = (
    Member(kt.Oracle, "trials"),
    Member(kt.Oracle, "ongoing_trials"),
    Member(kt.Oracle, "tuner_ids"),
    Member(kt.Oracle, "verbose"),
    Member(kt.Oracle, "remaining_trials", ()),
    Member(kt.Oracle, "get_state", ()),
    Member(oracle_client.OracleClient, "multi_worker"),
    Member(oracle_client.OracleClient, "should_report"),
    Member(Trial, "get_state", ()),
    Member(Trial, "to_proto", ()),
    Member(Trial, "from_proto", ("proto",)),
    Member(kt.HyperParameters, "to_proto", ()),
    Member(kt.HyperParameters, "from_proto", ("proto",)),
)


# ------------------------------------------------------------------------------------------ the oracle service


OracleServicer = oracle_chief.OracleServicer  # translates the service's messages to calls on an oracle


def add_oracle_servicer(servicer, server) -> None:
    """Serve keras-tuner's oracle service on a ``grpc.server`` through ``servicer``."""
    _SERVICE_GRPC.add_OracleServicer_to_server(servicer, server)


def oracle_stub(channel):
    """The oracle service's client side on a gRPC channel: one method per name in ``RPCS``."""
    return _SERVICE_GRPC.OracleStub(channel)


def request(rpc: str, **fields):
    """The request message of ``rpc`` (one of ``RPCS``)."""
    return getattr(protos.get_service(), f"{rpc}Request")(**fields)


def response(rpc: str, **fields):
    """The response message of ``rpc`` (one of ``RPCS``)."""
    return getattr(protos.get_service(), f"{rpc}Response")(**fields)


class OracleClient(oracle_client.OracleClient):
    """keras-tuner's worker-side oracle without its channel: reads of ``objective``, ``max_trials`` and the like go
    to the local oracle, as in keras-tuner; a subclass opens its own channel and sends the calls to the chief."""

    def __init__(self, oracle):
        self._oracle = oracle  # what keras-tuner's __getattr__ reads

    @property
    def local_oracle(self):
        return self._oracle


def local_oracle(oracle):
    """The oracle inside keras-tuner's worker-side client (the oracle itself when it is not wrapped)."""
    return getattr(oracle, "_oracle", oracle)


# ----------------------------------------------------------------------------------------- the oracle's files


def write_atomically(oracle) -> None:
    """Make ``oracle`` write oracle.json and trial.json atomically (keras-tuner rewrites them in place), so that
    a notebook reading a live search never sees half a file."""

    def save():
        atomic_write_text(oracle._get_oracle_fname(), json.dumps(oracle.get_state()))

    def save_trial(trial):
        atomic_write_text(Path(oracle._get_trial_dir(trial.trial_id)) / "trial.json", json.dumps(trial.get_state()))

    oracle.save, oracle._save_trial = save, save_trial


def save_trial(oracle, trial) -> None:
    """Write ``trial``'s trial.json as keras-tuner does when a trial ends."""
    oracle._save_trial(trial)


# ------------------------------------------------------------------------------------ retry queue and display


def queued_for_retry(oracle) -> list[str]:
    """The ids of the trials waiting to be handed out again (a copy)."""
    return list(oracle._retry_queue)


def queue_for_retry(oracle, trial_id: str) -> None:
    """Hand ``trial_id`` to the next worker that asks for a trial."""
    oracle._retry_queue.append(trial_id)


def unqueue(oracle, trial_id: str) -> bool:
    """Take ``trial_id`` off the retry queue; False when it was not on it."""
    if trial_id not in oracle._retry_queue:
        return False
    oracle._retry_queue.remove(trial_id)
    return True


def keep_trial_clock(oracle, trial_id: str, start) -> None:
    """Give keras-tuner's display a start time and number for a trial it did not start (it times trials from
    their start), unless it has them."""
    oracle._display.trial_start.setdefault(trial_id, start)
    oracle._display.trial_number.setdefault(trial_id, len(oracle.trials))
