"""Distributed tuning on loopback: a chief and two workers as separate processes share one search; a worker killed
mid-trial loses its lease and the trial is rerun elsewhere; a chief killed and restarted resumes its directory;
and MirroredStrategy training over two logical CPU devices (how several GPUs are used)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import limit_tf_threads

from fer_workbench import WorkbenchError
from fer_workbench.distributed import Cluster, parse_oracle, read_log, trial_assignments
from fer_workbench.runtime import replica_scaled
from fer_workbench.tuning import best_trials, open_tuner, results_frame

limit_tf_threads()

LEASE_S = 10  # the chief's lease in these tests: long enough for a busy 2-core machine, short enough to wait out
START_S = 180  # a process importing TensorFlow on a loaded CI machine
SEARCH_S = 240
# One thread each: three TensorFlow processes share two cores.
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "2", "TF_NUM_INTRAOP_THREADS": "1",
       "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def free_port(attempts: int = 20) -> int:
    """A port nothing listens on now: bind port 0 and let the OS choose (a few tries, never forever)."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {attempts} attempts")


class Search:
    """Processes of one smoke search (random search, 2 trials, the synthetic default dataset) in ``tmp_path``."""

    def __init__(self, tmp_path: Path):
        self.dir = tmp_path
        self.project = tmp_path / "search" / "vgg"
        self.oracle = f"127.0.0.1:{free_port()}"
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "fer_workbench.cli", "tune", "--kind", "random", "--profile", "smoke",
               "--out", str(self.project.parent), "--oracle", self.oracle, "--lease-timeout", str(LEASE_S),
               "--chief-wait", str(SEARCH_S), *args]
        with open(self.dir / f"{name}.log", "wb") as log:
            # Own process group, so that teardown can end the process and anything it started.
            self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=ENV,
                                                start_new_session=True)
        return self.procs[name]

    def worker(self, worker_id: str) -> subprocess.Popen:
        return self.start(worker_id, "--role", "worker", "--worker-id", worker_id)

    def chief(self, name: str = "chief") -> subprocess.Popen:
        return self.start(name, "--role", "chief")

    def output(self, name: str) -> str:
        return (self.dir / f"{name}.log").read_text(errors="replace")

    def log(self) -> dict:
        return read_log(self.project) or {"sessions": [], "trials": {}, "workers": {}}

    def wait_for(self, condition, what: str, timeout: float = SEARCH_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None and p.returncode != 0
                    and p.returncode != -signal.SIGKILL}
            if dead:
                pytest.fail(f"waiting for {what}: {dead} failed\n" + self.tails(*dead))
            time.sleep(0.1)
        pytest.fail(f"no {what} within {timeout:.0f} s\n" + self.tails(*self.procs))

    def wait_ready(self, *workers: str) -> None:
        """Workers say so just before their first call to the chief (which waits for the chief to listen)."""
        self.wait_for(lambda: all("asking the chief" in self.output(w) for w in workers), "workers ready", START_S)

    def wait_exit(self, name: str, timeout: float = SEARCH_S) -> str:
        try:
            code = self.procs[name].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} still running after {timeout:.0f} s\n" + self.tails(*self.procs))
        assert code == 0, self.tails(name)
        return self.output(name)

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(timeout=30)

    def tails(self, *names: str) -> str:
        return "\n".join(f"--- {n}:\n{self.output(n)[-3000:]}" for n in names)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


@pytest.fixture
def search(tmp_path):
    from fer_workbench.data import load_dataset, resolve_data_path

    # Written and parsed once here, not by three processes racing to create the same cache files.
    load_dataset(resolve_data_path(None, "smoke", 0))
    run = Search(tmp_path)
    try:
        yield run
    finally:
        run.stop_all()


def completed_trials(log: dict) -> list[str]:
    return [trial_id for trial_id, entry in log["trials"].items() if entry.get("status") == "completed"]


# --------------------------------------------------------------------------------------------- without processes


def test_oracle_addresses_and_cluster_settings():
    assert parse_oracle("127.0.0.1:8000") == ("127.0.0.1", 8000)
    assert parse_oracle("[::1]:9000") == ("::1", 9000)
    for bad in ("localhost", "host:", ":8000", "host:0", "host:70000", "host:http", "::1:8000", "a b:1", None):
        with pytest.raises(WorkbenchError, match="expects HOST:PORT"):
            parse_oracle(bad)
    worker = Cluster.create("worker", "10.0.0.5:8000", worker_id="gpu-box.1")
    assert (worker.tuner_id, worker.address, worker.heartbeat_interval) == ("gpu-box.1", "10.0.0.5:8000", 10.0)
    assert "chief" not in Cluster.create("worker", "h:1").tuner_id
    assert Cluster.create("chief", "0.0.0.0:8000").tuner_id == "chief"
    with pytest.raises(WorkbenchError, match="reserves for the chief"):
        Cluster.create("worker", "h:1", worker_id="chief2")
    with pytest.raises(WorkbenchError, match="needs --oracle"):
        Cluster.create("worker", None)
    with pytest.raises(WorkbenchError, match="must be positive"):
        Cluster.create("chief", "h:1", lease_timeout=0)
    with pytest.raises(WorkbenchError, match="not a distributed search"):
        trial_assignments(Path("nowhere"))
    assert replica_scaled(32, 0.01, 4) == (128, 0.04) and replica_scaled(32, 0.01, 1) == (32, 0.01)


def test_bad_oracle_address_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fer_workbench.cli", "tune", "--role", "worker", "--oracle",
                             "chief-host", "--out", str(tmp_path)], check=False, capture_output=True, text=True,
                            env=ENV, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("fer-workbench: error: --oracle expects HOST:PORT")


# ------------------------------------------------------------------------------------------------ on loopback


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_chief_and_two_workers_share_one_search(search):
    search.worker("w1")
    search.worker("w2")
    search.wait_ready("w1", "w2")  # both wait for the chief, so that both get a trial when it starts
    search.chief()
    search.wait_for(lambda: completed_trials(search.log()), "a completed trial")

    live = results_frame(open_tuner(search.project))  # the notebook's view of a search still being served
    done = live[live["status"] == "COMPLETED"]
    assert len(done) >= 1 and done["score"].notna().all() and done["worker"].isin(["w1", "w2"]).all()

    chief_out = search.wait_exit("chief")
    assert "worker w1: ran trials" in search.wait_exit("w1") and "worker w2: ran trials" in search.wait_exit("w2")
    attempts = trial_assignments(search.project)
    assert len(attempts) == 2 and (attempts["status"] == "completed").all()
    assert set(attempts["worker"]) == {"w1", "w2"}  # one trial each

    best = json.loads((search.project / "best_trial.json").read_text())
    reopened = open_tuner(search.project)
    top = best_trials(reopened.oracle, 1)[0]
    assert (best["trial_id"], best["hyperparameters"]) == (top.trial_id, top.hyperparameters.values)
    assert best["score"] == pytest.approx(top.score)
    assert f"best trial: {top.trial_id} (val_accuracy {top.score:.4f}" in chief_out
    frame = results_frame(reopened)
    assert len(frame) == 2 and set(frame["status"]) == {"COMPLETED"}
    assert (dict(zip(frame["trial_id"], frame["worker"], strict=True))
            == dict(zip(attempts["trial_id"], attempts["worker"], strict=True)))
    assert best["worker"] == dict(zip(frame["trial_id"], frame["worker"], strict=True))[top.trial_id]


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_worker_killed_mid_trial_loses_its_lease_and_the_trial_is_rerun(search):
    search.worker("w1")
    search.worker("w2")
    search.wait_ready("w1", "w2")
    search.chief()
    search.wait_for(lambda: search.log()["workers"].get("w1", {}).get("status") == "running", "w1 running a trial")
    lost = search.log()["workers"]["w1"]["trial"]
    search.kill("w1")

    assert search.procs["chief"].poll() is None  # the lease has not run out yet: the chief is still serving
    live = results_frame(open_tuner(search.project)).set_index("trial_id")
    assert lost in live.index and live.loc[lost, "worker"] in ("w1", "w2")

    search.wait_exit("chief")
    assert "worker w2: ran trials" in search.wait_exit("w2")
    attempts = trial_assignments(search.project)
    rerun = attempts[attempts["trial_id"] == lost]
    assert list(rerun["worker"]) == ["w1", "w2"] and list(rerun["status"]) == ["lost", "completed"]
    assert "no word from w1" in rerun["note"].iloc[0]
    log = search.log()
    assert log["trials"][lost]["retried"] and log["trials"][lost]["lost_on"] == ["w1"]
    assert log["workers"]["w1"]["status"] == "lost" and log["workers"]["w2"]["status"] == "finished"
    frame = results_frame(open_tuner(search.project)).set_index("trial_id")
    assert len(frame) == 2 and set(frame["status"]) == {"COMPLETED"} and frame.loc[lost, "worker"] == "w2"


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_restarted_chief_resumes_and_keeps_the_running_trial_with_its_worker(search):
    search.worker("w1")
    search.wait_ready("w1")
    search.chief()

    def second_trial_running():
        log = search.log()
        return completed_trials(log) == ["0"] and log["workers"].get("w1", {}).get("trial") == "1"

    search.wait_for(second_trial_running, "trial 0 done and trial 1 running")
    first = json.loads((search.project / "trial_0" / "trial.json").read_text())
    search.kill("chief")
    search.chief("chief-again")  # same command, same port: the worker rides out the outage

    assert "chief: serving" in search.wait_exit("chief-again")
    assert "worker w1: ran trials 0, 1" in search.wait_exit("w1")
    log = search.log()
    assert len(log["sessions"]) == 2 and log["sessions"][1]["resumed_trials"] == 2
    attempts = trial_assignments(search.project)
    assert list(attempts["trial_id"]) == ["0", "1"] and (attempts["status"] == "completed").all()  # nothing rerun
    assert "across a chief restart" in attempts["note"].iloc[1]
    assert json.loads((search.project / "trial_0" / "trial.json").read_text())["metrics"] == first["metrics"]
    frame = results_frame(open_tuner(search.project))
    assert len(frame) == 2 and set(frame["status"]) == {"COMPLETED"}


MIRRORED = r"""
import json, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from fer_workbench.config import get_profile
from fer_workbench.data.fer_csv import parse_fer_csv_bytes
from fer_workbench.data.synthetic import make_synthetic
from fer_workbench.runtime import select_strategy
from fer_workbench.training import train
from fer_workbench.tuning import make_tuner, results_frame, run_search

out = sys.argv[1]
dataset = parse_fer_csv_bytes(make_synthetic(140, seed=0)[0], "synthetic-140")
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
result = train(dataset, {"model": "baseline_cnn", "model_kwargs": {"widths": [4, 8, 8], "dense": [16, 8]}},
               out + "/run", "smoke", epochs=1, batch_size=8, learning_rate=0.01, strategy=strategy, verbose=0)
card = json.loads(result.card_path.read_text())
profile = get_profile("smoke", tune={"max_trials": 1, "max_epochs": 1, "train_rows": 64, "val_rows": 14,
                                     "base_widths": (4,), "fc_units": (16,), "batch_sizes": (8,)})
tuner = make_tuner("random", out + "/search", "vgg", profile, strategy=strategy)
run_search(tuner, dataset, profile, verbose=0)
print(json.dumps({
    "default_replicas": select_strategy([]).num_replicas_in_sync,
    "variable": type(result.model.trainable_weights[0].value).__name__,
    "distribution": card["distribution"], "batch_size": card["train_config"]["batch_size"],
    "learning_rate": card["train_config"]["learning_rate"], "epochs": len(result.history),
    "accuracy": card["metrics"]["PrivateTest"]["accuracy"],
    "tuner_strategy": type(tuner.distribution_strategy).__name__, "tuner_replicas": tuner.hypermodel.replicas,
    "trials": results_frame(tuner)["status"].tolist()}))
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    """The multi-GPU path, on CPU: two replicas, global batch and learning rate scaled by the linear rule."""
    result = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path)], check=False, capture_output=True,
                            text=True, env=ENV, timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["default_replicas"] == 1 and report["variable"] == "MirroredVariable"
    assert report["distribution"] == {"strategy": "MirroredStrategy", "replicas": 2, "global_batch_size": 16,
                                      "learning_rate": 0.02}
    assert (report["batch_size"], report["learning_rate"]) == (8, 0.01)  # the recipe stays per replica
    assert report["epochs"] == 1 and 0 <= report["accuracy"] <= 1
    assert (report["tuner_strategy"], report["tuner_replicas"], report["trials"]) == ("MirroredStrategy", 2,
                                                                                        ["COMPLETED"])
