"""Shared pieces of the benchmark scripts (no ``bench_`` prefix: `make benchmarks` does not run it).

The scripts run as ``python benchmarks/NAME.py``, so this directory is first on ``sys.path`` and they
``import _common``. TensorFlow is imported lazily (bench_face_detection must not load it).
"""

from __future__ import annotations

import io
import json
import os
import queue
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RECIPE = Path(__file__).resolve().parent.parent / "configs" / "fer2013-cpu.yaml"  # the shipped model's recipe
# The real FER2013 beside a developer checkout (../shared; absent in a user's fresh clone).
SHARED_FER2013 = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013"


def samples(fn, runs: int) -> tuple[list[float], list[float], object]:
    """Wall ms and process-CPU ms (all threads) of each of ``runs`` calls, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return walls, cpus, result


def timed(fn, runs: int) -> tuple[float, float, object]:
    """Median wall ms, median process-CPU ms (all threads) and the last result."""
    walls, cpus, result = samples(fn, runs)
    return statistics.median(walls), statistics.median(cpus), result


def astronaut_jpeg(quality: int = 90) -> bytes:
    """skimage's astronaut portrait (one real face, bundled with scikit-image) as a 512×512 JPEG."""
    from PIL import Image
    from skimage import data as skimage_data

    buffer = io.BytesIO()
    Image.fromarray(skimage_data.astronaut()).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def machine_line() -> str:
    """CPUs and load average: a loaded machine makes every figure slower (say so next to them)."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}"


def recipe_config(path: str | os.PathLike = RECIPE):
    """The shipped model's TrainConfig (configs/fer2013-cpu.yaml resolved against the cpu profile)."""
    import yaml

    from fer_workbench.training import resolve_config

    values = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return resolve_config(values, "cpu")


def build_recipe_model(seed: int = 0):
    """An untrained model of the shipped architecture."""
    import keras

    from fer_workbench.models import build_model

    keras.utils.set_random_seed(seed)
    config = recipe_config()
    return build_model(config.model, **config.model_kwargs)


def model_for_benchmark(path: str | os.PathLike | None = None):
    """(model, one-line description): ``path``, else the shipped model, else an untrained one of its architecture
    (with a notice: latency and throughput do not depend on the weights)."""
    from fer_workbench.config import shipped_model_path
    from fer_workbench.models.io import load_model

    if path:
        model = load_model(path)
        return model, f"{path} ({model.count_params():,} params)"
    if shipped_model_path().is_file():
        model = load_model(shipped_model_path())
        return model, f"shipped model {shipped_model_path().name} ({model.count_params():,} params)"
    model = build_recipe_model()
    print(f"notice: {shipped_model_path()} is absent; timing an UNTRAINED model of its architecture "
          f"({RECIPE.name}) — timings do not depend on the weights")
    return model, f"untrained {RECIPE.name} architecture ({model.count_params():,} params)"


def face_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """n uint8 48×48 images and labels: FER2013 Training rows from ../shared when present, else synthetic ones."""
    from fer_workbench.data import load_dataset

    rng = np.random.default_rng(seed)
    csv = SHARED_FER2013 / "fer2013.csv.gz"
    if csv.is_file():
        dataset = load_dataset(csv, progress=False).split("Training")
        source = f"FER2013 Training ({csv})"
    else:
        from fer_workbench.data.fer_csv import parse_fer_csv_bytes
        from fer_workbench.data.synthetic import make_synthetic

        dataset = parse_fer_csv_bytes(make_synthetic(min(max(n, 700), 12_000), seed)[0], "<synthetic>")
        source = "synthetic (fer_workbench.data.synthetic; ../shared FER2013 absent)"
    picks = rng.choice(len(dataset), n, replace=n > len(dataset))
    return dataset.images[picks], dataset.labels[picks], source


class PeerWorker:
    """A peer's worker script under another environment's Python (never this project's: the peer's package is not
    a dependency), answering one JSON line per command read from stdin; the first line is its start-up info."""

    def __init__(self, python: str, argv: list[str], timeout: float, cwd: str | os.PathLike | None = None,
                 env: dict | None = None):
        clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        self.python, self.timeout = python, timeout
        self.stderr = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen([python, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr, text=True, env={**clean, **(env or {})},
                                        cwd=cwd or tempfile.gettempdir())
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.info = self._answer()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith("{"):  # anything else on stdout is a library talking, not the worker answering
                self.lines.put(line)
        self.lines.put("")  # end of output: the process exited

    def _answer(self) -> dict:
        try:
            line = self.lines.get(timeout=self.timeout)
        except queue.Empty:
            self.close()
            raise RuntimeError(f"no answer in {self.timeout:.0f} s") from None
        if not line:
            self.process.wait()
            self.stderr.seek(0)
            tail = [t for t in self.stderr.read().strip().splitlines() if t.strip()] or ["(no output)"]
            raise RuntimeError(f"exit {self.process.returncode}: {tail[-1][:200]}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
        self.stderr.close()
