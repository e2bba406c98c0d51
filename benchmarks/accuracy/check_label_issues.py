"""Accuracy check: label-issue ranking against an independent reference. On real FER2013 from ../shared the
reference is FER+'s majority vote (FER+ only scores, never fits); else it is the synthetic default's planted
label flips.

Run: .venv/bin/python benchmarks/accuracy/check_label_issues.py [--model cnn|hog-logreg] [--folds 5] [--epochs 6]
     [--top 500] [--synthetic-rows 3000] [--skip-real] [--cache probs.npy]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from _checks import checks, real_fer2013, synthetic

from fer_workbench.cleaning.label_issues import label_issue_scores, out_of_fold_probabilities
from fer_workbench.data.fer_csv import load_fer_csv
from fer_workbench.data.ferplus import load_ferplus


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--top", type=int, default=500)
    parser.add_argument("--synthetic-rows", type=int, default=3000)
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--cache", default="", help="optional .npy path to save/reuse the OOF probabilities")
    args = parser.parse_args()
    real = None if args.skip_real else real_fer2013()
    if real:
        data = load_fer_csv(real[0])
        votes = load_ferplus(real[1]).align(data)
        wrong, reference = votes.majority_label != data.labels, "FER+ majority differs"
        base, base_name = ~votes.dropped, "rows FER+ keeps"
        top_n, target = args.top, " (target >= 0.75)"
    else:
        data, truth = synthetic(args.synthetic_rows)
        wrong, reference = truth.label_flipped, "label planted as a flip"
        base, base_name = ~truth.nonface, "faces"
        top_n, target = min(args.top, int(truth.label_flipped.sum())), ""
    checks(f"out-of-fold accuracy, and among the {top_n} rows of lowest label quality the share whose {reference} "
           "(against its base rate), and the same share among the rows cleanlab flags",
           f"{data.source}, {len(data)} rows" + ("" if real else " (../shared FER2013 absent or skipped)")
           + f"; model={args.model} folds={args.folds} epochs={args.epochs}")
    start = time.time()
    if args.cache and os.path.exists(args.cache):
        probs = np.load(args.cache)
    else:
        probs = out_of_fold_probabilities(data.images, data.labels, len(data.class_names), folds=args.folds,
                                          model=args.model, epochs=args.epochs, seed=0)
        if args.cache:
            np.save(args.cache, probs)
    elapsed = time.time() - start
    quality, issues = label_issue_scores(data.labels, probs)
    top = np.argsort(quality, kind="stable")[:top_n]
    print(f"oof_seconds={elapsed:.0f}")
    print(f"oof accuracy {np.mean(probs.argmax(1) == data.labels):.3f}")
    print(f"base rate ({reference}): {base_name} {wrong[base].mean():.3f}, all rows {wrong.mean():.3f}")
    print(f"top {top_n} by label quality: {reference} {wrong[top].mean():.3f}{target}")
    print(f"cleanlab find_label_issues flags {issues.sum()} rows; {reference} among them {wrong[issues].mean():.3f}")


if __name__ == "__main__":
    main()
