"""Label issues on real FER2013 vs FER+'s majority vote (FER+ only scores, never fits).

Run: .venv/bin/python benchmarks/cleaning_label_issues.py [--model cnn|hog-logreg] [--folds 5] [--epochs 6]
Prints OOF accuracy, and among the 500 lowest label-quality rows the share whose FER+ majority differs.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from fer_workbench.cleaning.label_issues import label_issue_scores, out_of_fold_probabilities
from fer_workbench.config import shared_fer2013_dir
from fer_workbench.data.fer_csv import load_fer_csv
from fer_workbench.data.ferplus import load_ferplus


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--top", type=int, default=500)
    parser.add_argument("--cache", default="", help="optional .npy path to save/reuse the OOF probabilities")
    args = parser.parse_args()
    data = load_fer_csv(shared_fer2013_dir() / "fer2013.csv.gz")
    votes = load_ferplus(shared_fer2013_dir() / "fer2013new.csv").align(data)
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
    differs = votes.majority_label != data.labels
    kept = ~votes.dropped
    top = np.argsort(quality, kind="stable")[: args.top]
    print(f"model={args.model} folds={args.folds} epochs={args.epochs} oof_seconds={elapsed:.0f}")
    print(f"oof accuracy {np.mean(probs.argmax(1) == data.labels):.3f}")
    print(f"base rate FER+ majority differs: kept rows {differs[kept].mean():.3f}, all rows {differs.mean():.3f}")
    print(f"top {args.top} by label quality: FER+ majority differs {differs[top].mean():.3f} (target >= 0.75)")
    print(f"cleanlab find_label_issues flags {issues.sum()} rows; FER+ differs among them "
          f"{differs[issues].mean():.3f}")


if __name__ == "__main__":
    main()
