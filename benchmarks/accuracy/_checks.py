"""Shared pieces of the accuracy checks (no ``check_`` prefix: `make accuracy-checks` does not run it).

The checks run as ``python benchmarks/accuracy/NAME.py``, so this directory is first on ``sys.path`` and they
``import _checks``. Real FER2013 and FER+ come from ../shared beside the checkout; without them a check runs on
the synthetic default, whose planted problems (``SyntheticTruth``) are the ground truth.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# The real FER2013 beside a developer checkout (../shared; absent in a user's fresh clone).
SHARED_FER2013 = Path(__file__).resolve().parents[3] / "shared" / "data" / "fer2013"


def checks(what: str, run: str, skip_real: bool = False) -> tuple[Path, Path] | None:
    """Print what a check measures and what it runs on, before any figure; return ``real_fer2013(skip_real)``."""
    real = real_fer2013(skip_real)
    data = f"real FER2013 and FER+ from {real[0].parent}" if real else "no real FER2013 (../shared absent or skipped)"
    print(f"checks: {what}\nruns on: {run}; {data}", flush=True)
    return real


def argument_parser(description: str | None) -> argparse.ArgumentParser:
    """A check's options, starting with ``--skip-real`` (run on the synthetic default only)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--skip-real", action="store_true", help="leave ../shared's real FER2013 out")
    return parser


def real_fer2013(skip: bool = False) -> tuple[Path, Path] | None:
    """../shared's FER2013 CSV and FER+ votes, or None when skipped or this checkout has none beside it."""

    csv, ferplus = SHARED_FER2013 / "fer2013.csv.gz", SHARED_FER2013 / "fer2013new.csv"
    return (csv, ferplus) if not skip and csv.is_file() and ferplus.is_file() else None


def synthetic(rows: int, seed: int = 0):
    """The synthetic default with ``rows`` rows as a Dataset, and its planted truth."""
    from fer_workbench.data.fer_csv import parse_fer_csv_bytes
    from fer_workbench.data.synthetic import make_synthetic

    raw, truth = make_synthetic(rows, seed=seed)
    return parse_fer_csv_bytes(raw, source=f"synthetic-{rows}-seed{seed}", checksum=f"synthetic-{rows}-{seed}"), truth


def planted_copies_grouped(truth, near_group) -> tuple[int, float]:
    """How many copies the synthetic generator planted, and the share put in their original's near group."""
    copies = [int(i) for i in (truth.duplicate_of >= 0).nonzero()[0]]
    grouped = [near_group[i] >= 0 and near_group[i] == near_group[truth.duplicate_of[i]] for i in copies]
    return len(copies), sum(grouped) / max(len(copies), 1)
