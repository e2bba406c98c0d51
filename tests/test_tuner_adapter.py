"""The keras-tuner internals that fer_workbench.distributed.adapter relies on are still there and still behave as it
expects, and nothing else in the package reaches keras-tuner's internals. Each failure names the member, the installed
keras-tuner and the pin in pyproject.toml, so an upgrade that breaks the distributed search says so here first."""

import ast
import importlib
import inspect
import tomllib
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import grpc
import keras_tuner as kt
import pytest
from keras_tuner.engine.trial import TrialStatus
from packaging.specifiers import SpecifierSet

from fer_workbench.config import project_root

INSTALLED = version("keras-tuner")
PIN = next(d for d in tomllib.loads((project_root() / "pyproject.toml").read_text())["project"]["dependencies"]
           if d.startswith("keras-tuner")).split("#")[0].strip()
ADAPTER_FILE = Path("fer_workbench/distributed/adapter.py")


def where() -> str:
    return f"keras-tuner {INSTALLED} (pyproject pins {PIN}; {ADAPTER_FILE} was written for that pin)"


def load(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"{module} no longer imports under {where()}: {exc}")


adapter = load("fer_workbench.distributed.adapter")


@pytest.fixture
def tuner(tmp_path):
    tuner = kt.RandomSearch(hypermodel=lambda hp: None, objective=kt.Objective("score", "max"), max_trials=3,
                            max_retries_per_trial=1, directory=tmp_path, project_name="search")
    tuner.oracle.verbose = 0  # no trial tables printed
    space = kt.HyperParameters()
    space.Int("width", 1, 1000)
    tuner.oracle.update_space(space)
    return tuner


@pytest.fixture
def worker_side_client(tuner, monkeypatch):
    """The client keras-tuner itself wraps a worker's oracle in (it reads the chief's address from the environment)."""
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "w1")
    return adapter.OracleClient.__mro__[1](tuner.oracle)


def test_installed_keras_tuner_is_the_pinned_minor_version():
    assert INSTALLED in SpecifierSet(PIN.removeprefix("keras-tuner")), f"{where()}: installed outside the pin"
    assert "<" in PIN, f"{PIN}: pin the minor version that {ADAPTER_FILE} was checked on (e.g. <1.5)"


def _parameters(target) -> tuple[str, ...]:
    names = [p.name for p in inspect.signature(target).parameters.values()]
    return tuple(names[1:] if names[:1] in (["self"], ["cls"]) else names)


def test_every_member_the_adapter_relies_on_is_there_with_its_signature(tuner, worker_side_client):
    oracle = tuner.oracle
    instances = [oracle, worker_side_client, *vars(oracle).values()]
    problems = []
    for member in adapter.PRIVATE + adapter.UNDOCUMENTED:
        owner = getattr(member.owner, "__qualname__", getattr(member.owner, "__name__", repr(member.owner)))
        if member.parameters is None:
            instance = next((i for i in instances if isinstance(i, member.owner)), None)
            if instance is None or not hasattr(instance, member.name):
                problems.append(f"{owner}.{member.name}: no such attribute on its instances")
            continue
        target = getattr(member.owner, member.name, None)
        if not callable(target):
            problems.append(f"{owner}.{member.name}: missing or not callable")
        elif _parameters(target) != member.parameters:
            problems.append(f"{owner}.{member.name}: takes {_parameters(target)}, the adapter passes "
                            f"{member.parameters}")
    assert not problems, f"{where()}:\n" + "\n".join(problems)


def test_the_adapter_writes_the_oracles_files_and_reads_the_retry_queue_keras_tuner_uses(tuner, monkeypatch):
    oracle, project = tuner.oracle, Path(tuner.project_dir)
    written = []
    real_write = adapter.atomic_write_text
    monkeypatch.setattr(adapter, "atomic_write_text", lambda path, text: (written.append(Path(path)),
                                                                          real_write(path, text)))
    adapter.write_atomically(oracle)
    trial = oracle.create_trial("w1")
    assert trial.status == TrialStatus.RUNNING
    trial.status = TrialStatus.INVALID
    oracle.end_trial(trial)  # one retry left: keras-tuner queues it
    assert {project / "oracle.json", project / f"trial_{trial.trial_id}" / "trial.json"} <= set(written), \
        f"{where()}: keras-tuner no longer saves through Oracle.save and Oracle._save_trial"
    assert adapter.queued_for_retry(oracle) == [trial.trial_id], f"{where()}: Oracle._retry_queue changed meaning"

    assert adapter.unqueue(oracle, trial.trial_id) and not adapter.unqueue(oracle, trial.trial_id)
    assert adapter.queued_for_retry(oracle) == []
    adapter.queue_for_retry(oracle, trial.trial_id)
    again = oracle.create_trial("w2")
    assert again.trial_id == trial.trial_id, f"{where()}: create_trial no longer hands out Oracle._retry_queue first"

    written.clear()
    adapter.save_trial(oracle, oracle.trials[trial.trial_id])
    assert written == [project / f"trial_{trial.trial_id}" / "trial.json"]


def test_the_display_clock_is_kept_for_trials_started_elsewhere(tuner):
    oracle = tuner.oracle
    start = datetime(2024, 5, 1, 12, 0, 0)
    adapter.keep_trial_clock(oracle, "7", start)
    adapter.keep_trial_clock(oracle, "7", datetime(2030, 1, 1))  # set once: a second call keeps the first
    display = oracle.get_state()["display"]
    assert (display["trial_start"].get("7"), display["trial_number"].get("7")) == (start.isoformat(), 0), \
        f"{where()}: Oracle._display.trial_start / trial_number changed"


def test_worker_side_clients_reach_the_local_oracle(tuner, worker_side_client):
    oracle = tuner.oracle
    assert adapter.local_oracle(worker_side_client) is oracle, f"{where()}: OracleClient._oracle changed"
    assert adapter.local_oracle(oracle) is oracle
    ours = adapter.OracleClient(oracle)
    assert ours.local_oracle is oracle and adapter.local_oracle(ours) is oracle
    assert (ours.objective, ours.max_trials) == (oracle.objective, 3), \
        f"{where()}: OracleClient.__getattr__ no longer reads the local oracle's objective and max_trials"


def test_every_call_of_the_oracle_service_is_handled_on_both_sides(worker_side_client):
    from fer_workbench.distributed.chief import _Servicer
    from fer_workbench.distributed.worker import WorkerClient

    served = {name for name in dir(adapter.OracleServicer) if name[:1].isupper()}
    assert served == set(adapter.RPCS), f"{where()}: the oracle service's calls are now {sorted(served)}"
    stub = adapter.oracle_stub(grpc.insecure_channel("127.0.0.1:1"))
    for rpc in adapter.RPCS:
        assert adapter.request(rpc) is not None and adapter.response(rpc) is not None and hasattr(stub, rpc)
        assert rpc in vars(_Servicer), f"the chief's servicer does not route {rpc} through its lock"
    client_calls = {name for name, value in vars(type(worker_side_client)).items()
                    if callable(value) and not name.startswith("_")}
    missing = client_calls - set(vars(WorkerClient))
    assert not missing, f"{where()}: OracleClient gained {sorted(missing)}, which WorkerClient does not forward"


def _keras_tuner_private_names(tuner, client) -> set[str]:
    owners = [kt.Oracle, kt.Tuner, type(tuner), type(tuner.oracle), type(client), adapter.OracleServicer]
    names = {n for owner in owners for n in dir(owner)} | set(vars(tuner)) | set(vars(tuner.oracle)) | set(vars(client))
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_only_the_adapter_reaches_keras_tuners_internals(tuner, worker_side_client):
    private = _keras_tuner_private_names(tuner, worker_side_client)
    package = project_root() / "fer_workbench"
    found = []
    for path in sorted(package.rglob("*.py")):
        if path == project_root() / ADAPTER_FILE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.relative_to(project_root())}:{node.lineno} imports {m}" for m in modules
                      if m.startswith("keras_tuner.src")]
            names = [node.attr] if isinstance(node, ast.Attribute) else \
                [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)] if isinstance(node, ast.Call) \
                and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr", "hasattr") else []
            found += [f"{path.relative_to(project_root())}:{node.lineno} uses .{name}" for name in names
                      if name in private]
    assert not found, f"go through {ADAPTER_FILE} instead:\n" + "\n".join(sorted(found))


def test_search_identity_depends_on_search_budgets_only():
    """The chief turns away workers whose identity differs: a display-only change must not, a search budget must."""
    from types import SimpleNamespace

    from fer_workbench.config import get_profile
    from fer_workbench.distributed import search_identity

    tuner = SimpleNamespace(hypermodel=SimpleNamespace(preprocessing="none"))
    data = SimpleNamespace(checksum="abc")
    base = search_identity(tuner, data, get_profile("smoke"), 0)
    elsewhere = get_profile("smoke", display={"gallery_per_class": 3}, clean={"label_issue_epochs": 9},
                            train={"epochs": 3, "vgg_preset": "cpu"}, compare={"epochs": 1}, data={"synthetic_rows": 9})
    assert search_identity(tuner, data, elsewhere, 0) == base
    assert search_identity(tuner, data, get_profile("smoke", tune={"max_trials": 7}), 0) != base
