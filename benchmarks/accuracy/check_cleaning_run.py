"""Accuracy check of a whole cleaning run (``run_cleaning``): the smoke profile on the synthetic default against
its planted truth and, with --real and ../shared, real FER2013 without the label-issue step (the 5-minute
budget), FER+ used only to score.

Run: .venv/bin/python benchmarks/accuracy/check_cleaning_run.py [--rows 2000] [--profile smoke] [--real]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from _checks import checks, planted_copies_grouped, synthetic
from sklearn.metrics import precision_recall_curve

from fer_workbench.cleaning import run_cleaning
from fer_workbench.data.fer_csv import load_fer_csv


def recall_at_precision(truth, score, precision_floor):
    precision, recall, _ = precision_recall_curve(truth, score)
    return float(recall[precision >= precision_floor].max())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--real", action="store_true")
    args = parser.parse_args()
    real = checks("on synthetic data, the non-face flag's precision and recall (and recall at precision >= 0.9), the "
                  "ranking and flags of planted label flips, the share of planted copies grouped with their original; "
                  "with --real, the run's time on real FER2013 (target <= 300 s) and its FER+ comparison",
                  f"synthetic default, {args.rows} rows, profile {args.profile}", not args.real)
    data, truth = synthetic(args.rows)
    with tempfile.TemporaryDirectory() as out:
        start = time.time()
        result = run_cleaning(data, out, profile=args.profile, seed=0, progress=False)
        elapsed = time.time() - start
    m = result.manifest
    print(f"synthetic {len(data)} rows, profile {args.profile}: whole cleaning {elapsed:.1f} s")
    print(f"  non-face: recall at precision>=0.9 {recall_at_precision(truth.nonface, m['nonface'], 0.9):.3f}; "
          f"flag precision {truth.nonface[m['flag_nonface']].mean():.2f} recall "
          f"{m['flag_nonface'][truth.nonface].mean():.2f}")
    flipped = truth.label_flipped
    rank = np.argsort(m["label_quality"].to_numpy(), kind="stable")
    top = rank[: flipped.sum()]
    print(f"  flipped labels: {flipped.sum()} planted; precision in top-{flipped.sum()} "
          f"{flipped[top].mean():.2f}; precision at recall>=0.5 "
          f"{precision_at_recall(flipped, -m['label_quality'].to_numpy(), 0.5):.2f}; cleanlab flags "
          f"{m['flag_label_issue'].sum()} with precision {flipped[m['flag_label_issue']].mean():.2f} recall "
          f"{m['flag_label_issue'][flipped].mean():.2f}")
    n_copies, found = planted_copies_grouped(truth, m["near_group"].to_numpy())
    print(f"  planted duplicates: {n_copies} copies, {found:.2f} grouped with their original; summary "
          f"{result.summary['duplicates']}")
    if not real:
        return
    dataset = load_fer_csv(real[0])
    with tempfile.TemporaryDirectory() as out:
        start = time.time()
        result = run_cleaning(dataset, out, profile="cpu", seed=0, label_issues=False, ferplus=real[1],
                              progress=False)
        elapsed = time.time() - start
    print(f"real FER2013 {len(dataset)} rows, everything but label issues: {elapsed:.0f} s (target <= 300 s)")
    print(f"  FER+ comparison: {result.summary['ferplus']}")
    print(f"  flagged {result.summary['flagged']}, duplicates {result.summary['duplicates']}")


def precision_at_recall(truth, score, recall_floor):
    precision, recall, _ = precision_recall_curve(truth, score)
    return float(precision[recall >= recall_floor].max())


if __name__ == "__main__":
    main()
