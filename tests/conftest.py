import gzip
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# Tests never touch the user's cache; one scratch home per test session.
os.environ.setdefault("FER_WORKBENCH_HOME", tempfile.mkdtemp(prefix="fer-workbench-tests-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The real FER2013 beside a developer checkout (../shared; absent in a user's fresh clone and skipped then).
SHARED_FER2013 = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013"
REAL_CSV = SHARED_FER2013 / "fer2013.csv.gz"
REAL_FERPLUS = SHARED_FER2013 / "fer2013new.csv"


def limit_tf_threads() -> None:
    """Keep TensorFlow to the two cores CI has, without oversubscribing them."""
    from fer_workbench.runtime import limit_threads

    limit_threads(2)


@pytest.fixture(scope="session")
def real_csv() -> Path:
    if not REAL_CSV.exists():
        pytest.skip("real FER2013 not available (../shared/data/fer2013 is absent)")
    return REAL_CSV


@pytest.fixture(scope="session")
def real_ferplus() -> Path:
    if not REAL_FERPLUS.exists():
        pytest.skip("FER+ votes not available (../shared/data/fer2013 is absent)")
    return REAL_FERPLUS


def make_rows(n: int, seed: int = 0):
    """Random images, labels and splits for building small test files."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)
    labels = np.arange(n) % 7
    splits = np.array(["Training", "PublicTest", "PrivateTest"])[np.arange(n) % 3]
    return images, labels, splits


def csv_text(images, labels, splits, header=("emotion", "pixels", "Usage"), sep=",") -> str:
    lines = [sep.join(header)]
    for image, label, split in zip(images, labels, splits, strict=True):
        fields = {"emotion": str(label), "pixels": " ".join(map(str, image.ravel())), "Usage": split}
        lines.append(",".join(fields[h.strip()] for h in header))
    return "\n".join(lines) + "\n"


@pytest.fixture
def small_csv(tmp_path):
    images, labels, splits = make_rows(30)
    path = tmp_path / "small.csv"
    path.write_text(csv_text(images, labels, splits))
    return path, images, labels, splits


@pytest.fixture
def small_csv_gz(tmp_path, small_csv):
    path, *rest = small_csv
    gz = tmp_path / "small.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    return (gz, *rest)


def save_tiny_model(path: Path) -> Path:
    """An untrained small CNN saved as a model file: enough to check plumbing (valid probabilities per face)."""
    from fer_workbench.models import build_model
    from fer_workbench.models.io import save_model

    return save_model(build_model("baseline_cnn", widths=[4, 8, 8], dense=[16, 8]), path, {"preprocessing": "none"})


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model") / "model.keras")
