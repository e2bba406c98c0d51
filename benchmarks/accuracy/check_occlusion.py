"""Accuracy check: occlusion score's ROC AUC against the planted occluders of the synthetic default (per kind,
with timings) and, with ../shared, the top-ranked rows of real FER2013 (row ids only: look at them yourself; no
real images are written).

Run: .venv/bin/python benchmarks/accuracy/check_occlusion.py [--rows 2000 12000] [--skip-real] [--threads 1]
AUC is over faces only (planted non-faces are left out). The detector never sees the synthetic truth, and its
pasted occluders are drawn independently of the synthetic generator's planted ones.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from _checks import argument_parser, checks, synthetic
from sklearn.metrics import roc_auc_score

from fer_workbench.cleaning.occlusion import occlusion_scores
from fer_workbench.data.synthetic import OCCLUDER_KINDS
from fer_workbench.runtime import limit_threads


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[2000, 12000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    real = checks("ROC AUC of the occlusion score for planted occluded faces vs clean faces, overall and per occluder "
                  "kind; on real FER2013, score quantiles and the 20 top-ranked row ids",
                  f"synthetic default, {' and '.join(map(str, args.rows))} rows, {args.threads} thread(s)",
                  args.skip_real)
    limit_threads(args.threads)
    for rows in args.rows:
        data, truth = synthetic(rows)
        start = time.time()
        scores = occlusion_scores(data.images, seed=args.seed, threads=args.threads, progress=False)
        seconds = time.time() - start
        faces = ~truth.nonface
        auc = roc_auc_score(truth.occluded[faces], scores[faces])
        per_kind = []
        for kind in OCCLUDER_KINDS:
            keep = faces & (~truth.occluded | (truth.occluder_kind == kind))
            per_kind.append(f"{kind} {roc_auc_score(truth.occluded[keep], scores[keep]):.3f}")
        print(f"synthetic {rows} rows ({truth.occluded.sum()} occluded faces): ROC AUC {auc:.3f} (target >= 0.9); "
              f"{', '.join(per_kind)}; {seconds:.1f} s")
    if not real:
        return
    from fer_workbench.data import load_dataset

    data = load_dataset(real[0], progress=False)
    start = time.time()
    scores = occlusion_scores(data.images, seed=args.seed, threads=args.threads, progress=False)
    seconds = time.time() - start
    top = np.argsort(-scores, kind="stable")[:20]
    print(f"real FER2013 {len(data)} rows: {seconds:.1f} s; score quantiles 50/90/99%: "
          f"{np.round(np.quantile(scores, [0.5, 0.9, 0.99]), 3).tolist()}")
    print(f"  top 20 row ids: {data.row_ids[top].tolist()}")


if __name__ == "__main__":
    main()
