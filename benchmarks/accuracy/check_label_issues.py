"""Accuracy check: label-issue ranking against an independent reference. On real FER2013 from ../shared the
reference is FER+'s majority vote (FER+ only scores, never fits); else it is the synthetic default's planted
label flips.

Run: .venv/bin/python benchmarks/accuracy/check_label_issues.py [--model cnn|hog-logreg] [--folds 5] [--epochs 6]
     [--top 500] [--synthetic-rows 3000] [--skip-real] [--cache probs.npy]
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from _checks import argument_parser, checks, real_fer2013, synthetic

from fer_workbench.cleaning.label_issues import label_issue_scores, out_of_fold_probabilities
from fer_workbench.data.fer_csv import load_fer_csv
from fer_workbench.data.ferplus import load_ferplus


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--top", type=int, default=500)
    parser.add_argument("--synthetic-rows", type=int, default=3000)
    parser.add_argument("--cache", default="", help="optional .npy path to save/reuse the OOF probabilities")
    args = parser.parse_args()
    real = real_fer2013(skip=args.skip_real)
    if real:
        data = load_fer_csv(real[0])
        votes = load_ferplus(real[1]).align(data)
        wrong, reference = votes.majority_label != data.labels, "rows whose FER+ majority differs"
        base, base_name = ~votes.dropped, "rows FER+ keeps"
        top_n, target = args.top, " (target >= 0.75)"
    else:
        data, truth = synthetic(args.synthetic_rows)
        wrong, reference = truth.label_flipped, "rows with a planted label flip"
        base, base_name = ~truth.nonface, "faces"
        top_n, target = min(args.top, int(truth.label_flipped.sum())), ""
    checks(f"out-of-fold accuracy; the share of {reference} among the {top_n} rows of lowest label quality "
           "(against its base rate) and among the rows cleanlab flags",
           f"{data.source}, {len(data)} rows, model={args.model} folds={args.folds} epochs={args.epochs}",
           skip_real=real is None)
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
    print(f"base rate of {reference}: among {base_name} {wrong[base].mean():.3f}, among all {wrong.mean():.3f}")
    print(f"top {top_n} by label quality: {reference} {wrong[top].mean():.3f}{target}")
    print(f"cleanlab find_label_issues flags {issues.sum()} rows: {reference} {wrong[issues].mean():.3f}")


if __name__ == "__main__":
    main()
