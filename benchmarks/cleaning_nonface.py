"""Non-face ranking on real FER2013 (vs FER+'s 173 dropped rows) and on the synthetic default (vs planted truth).

Run: .venv/bin/python benchmarks/cleaning_nonface.py [--synthetic-rows 2000] [--skip-real]
FER+ only scores the ranking; nothing is fitted on it.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve

from fer_workbench.cleaning.nonface import nonface_scores
from fer_workbench.config import shared_fer2013_dir
from fer_workbench.data.fer_csv import load_fer_csv, parse_fer_csv_bytes
from fer_workbench.data.ferplus import load_ferplus
from fer_workbench.data.synthetic import make_synthetic


def report(name: str, truth: np.ndarray, score: np.ndarray) -> None:
    order = np.argsort(-score, kind="stable")
    print(f"  {name:16s} AP {average_precision_score(truth, score):.3f}  P@50 {truth[order[:50]].mean():.2f}  "
          f"P@{truth.sum()} {truth[order[:truth.sum()]].mean():.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--synthetic-rows", type=int, default=2000)
    parser.add_argument("--skip-real", action="store_true")
    args = parser.parse_args()
    raw, truth = make_synthetic(args.synthetic_rows, seed=0)
    syn = parse_fer_csv_bytes(raw, source="synthetic")
    start = time.time()
    scores = nonface_scores(syn.images)
    print(f"synthetic {len(syn)} rows, {truth.nonface.sum()} planted non-faces ({time.time() - start:.1f} s)")
    for name in ("low_information", "face_outlier", "noise", "nonface"):
        report(name, truth.nonface, scores[name])
    precision, recall, _ = precision_recall_curve(truth.nonface, scores["nonface"])
    ok = precision >= 0.9
    print(f"  best recall at precision >= 0.9: {recall[ok].max():.3f} (target >= 0.95)")
    if args.skip_real or not (shared_fer2013_dir() / "fer2013.csv.gz").exists():
        return
    data = load_fer_csv(shared_fer2013_dir() / "fer2013.csv.gz")
    dropped = load_ferplus(shared_fer2013_dir() / "fer2013new.csv").align(data).dropped
    start = time.time()
    scores = nonface_scores(data.images)
    print(f"real FER2013 {len(data)} rows vs {dropped.sum()} FER+ dropped ({time.time() - start:.1f} s; "
          f"targets AP >= 0.35, P@50 >= 0.8)")
    for name in ("low_information", "face_outlier", "noise", "nonface"):
        report(name, dropped, scores[name])
    blank = data.images.reshape(len(data), -1).std(axis=1) < 3
    print(f"  near-blank (std < 3): {blank.sum()}, all in the top {blank.sum()} of nonface: "
          f"{set(np.flatnonzero(blank)) <= set(np.argsort(-scores['nonface'])[:blank.sum()])}")


if __name__ == "__main__":
    main()
