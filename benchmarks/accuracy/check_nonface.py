"""Accuracy check: non-face ranking on the synthetic default (vs its planted non-faces) and, with ../shared, on
real FER2013 (vs the 173 rows FER+ drops). FER+ only scores the ranking; nothing is fitted on it.

Run: .venv/bin/python benchmarks/accuracy/check_nonface.py [--synthetic-rows 2000] [--skip-real]
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from _checks import argument_parser, checks, synthetic
from sklearn.metrics import average_precision_score, precision_recall_curve

from fer_workbench.cleaning.nonface import nonface_scores
from fer_workbench.data.fer_csv import load_fer_csv
from fer_workbench.data.ferplus import load_ferplus

SCORES = ("low_information", "face_outlier", "noise", "nonface")


def report(name: str, truth: np.ndarray, score: np.ndarray) -> None:
    order = np.argsort(-score, kind="stable")
    print(f"  {name:16s} AP {average_precision_score(truth, score):.3f}  P@50 {truth[order[:50]].mean():.2f}  "
          f"P@{truth.sum()} {truth[order[:truth.sum()]].mean():.2f}")


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--synthetic-rows", type=int, default=2000)
    args = parser.parse_args()
    real = checks("average precision, precision at 50 and at the number of true non-faces of each non-face score; "
                  "best recall at precision >= 0.9 on synthetic data; on real FER2013, whether every near-blank "
                  "frame ranks first",
                  f"synthetic default, {args.synthetic_rows} rows", args.skip_real)
    syn, truth = synthetic(args.synthetic_rows)
    start = time.time()
    scores = nonface_scores(syn.images)
    print(f"synthetic {len(syn)} rows, {truth.nonface.sum()} planted non-faces ({time.time() - start:.1f} s)")
    for name in SCORES:
        report(name, truth.nonface, scores[name])
    precision, recall, _ = precision_recall_curve(truth.nonface, scores["nonface"])
    ok = precision >= 0.9
    print(f"  best recall at precision >= 0.9: {recall[ok].max():.3f} (target >= 0.95)")
    if not real:
        return
    data = load_fer_csv(real[0])
    dropped = load_ferplus(real[1]).align(data).dropped
    start = time.time()
    scores = nonface_scores(data.images)
    print(f"real FER2013 {len(data)} rows vs {dropped.sum()} FER+ dropped ({time.time() - start:.1f} s; "
          f"targets AP >= 0.35, P@50 >= 0.8)")
    for name in SCORES:
        report(name, dropped, scores[name])
    blank = data.images.reshape(len(data), -1).std(axis=1) < 3
    print(f"  near-blank (std < 3): {blank.sum()}, all in the top {blank.sum()} of nonface: "
          f"{set(np.flatnonzero(blank)) <= set(np.argsort(-scores['nonface'])[:blank.sum()])}")


if __name__ == "__main__":
    main()
