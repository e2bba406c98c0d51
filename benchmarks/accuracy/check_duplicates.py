"""Accuracy check: exact and near-duplicate groups, and the recall of perturbed copies planted among the rows
(100 per kind: shift, crop, resize, brightness, JPEG). On real FER2013 from ../shared, else on the synthetic
default, where the generator's own planted copies are checked too.

Run: .venv/bin/python benchmarks/accuracy/check_duplicates.py [--synthetic-rows 3000] [--skip-real]
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np
from _checks import argument_parser, checks, planted_copies_grouped, real_fer2013, synthetic

from fer_workbench.cleaning.duplicates import duplicate_groups, exact_duplicate_table, group_table
from fer_workbench.data.fer_csv import load_fer_csv

KINDS = ("shift", "crop", "resize", "brightness", "jpeg")


def perturb(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "shift":  # 1-3 px in each direction
        dx, dy = rng.integers(-3, 4, 2)
        return cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), (48, 48), borderMode=cv2.BORDER_REPLICATE)
    if kind == "crop":  # 2-4 px off every side, resized back (zoom up to 1.2)
        c = int(rng.integers(2, 5))
        return cv2.resize(image[c:48 - c, c:48 - c], (48, 48))
    if kind == "resize":  # down to 32-39 px and back
        s = int(rng.integers(32, 40))
        return cv2.resize(cv2.resize(image, (s, s), interpolation=cv2.INTER_AREA), (48, 48))
    if kind == "brightness":
        return np.clip(image * rng.uniform(0.8, 1.2) + rng.integers(-30, 30), 0, 255).astype(np.uint8)
    _, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 70))])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--synthetic-rows", type=int, default=3000)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    real = real_fer2013(skip=args.skip_real)
    data, truth = (load_fer_csv(real[0]), None) if real else synthetic(args.synthetic_rows)
    checks("exact and near-duplicate groups (every exact group inside one near group), and the share of planted "
           "perturbed copies grouped with their source (recall per kind)" + ("" if real else
           "; the synthetic generator's planted copies grouped with their originals"),
           f"{data.source}, {len(data)} rows", skip_real=real is None)
    start = time.time()
    exact = exact_duplicate_table(data)
    print(f"exact: {len(exact)} groups, {int(exact['size'].sum())} rows, {int(exact['cross_split'].sum())} "
          f"cross-split, {int(exact['label_conflict'].sum())} with label conflicts ({time.time() - start:.2f} s)")
    start = time.time()
    groups = duplicate_groups(data.images)
    elapsed = time.time() - start
    near = group_table(data, groups["near_group"].to_numpy())
    in_exact = groups["exact_group"].to_numpy() >= 0
    exact_ok = all(groups["near_group"][groups["exact_group"] == g].nunique() == 1
                   for g in range(int(groups["exact_group"].max()) + 1))
    print(f"near (incl. exact): {len(near)} groups, {int(near['size'].sum())} rows, "
          f"{int(near['cross_split'].sum())} cross-split, {int(near['label_conflict'].sum())} label conflicts; "
          f"rows near-duplicated but not exact: {int(((groups['near_group'] >= 0) & ~in_exact).sum())}; "
          f"every exact group inside one near group: {exact_ok} ({elapsed:.1f} s)")
    if truth is not None:
        n_copies, found = planted_copies_grouped(truth, groups["near_group"].to_numpy())
        print(f"synthetic planted copies: {n_copies}, {found:.2f} grouped with their original")
    rng = np.random.default_rng(0)
    sources = rng.choice(len(data), 100 * len(KINDS), replace=False)
    copies = np.stack([perturb(data.images[s], KINDS[k // 100], rng) for k, s in enumerate(sources)])
    both = np.concatenate([data.images, copies])
    start = time.time()
    planted = duplicate_groups(both)["near_group"].to_numpy()
    print(f"planted copies (100 per kind) among all {len(data)} rows ({time.time() - start:.1f} s):")
    for k, kind in enumerate(KINDS):
        src, cop = sources[k * 100:(k + 1) * 100], len(data) + np.arange(k * 100, (k + 1) * 100)
        print(f"  {kind:10s} recall {np.mean((planted[src] >= 0) & (planted[src] == planted[cop])):.2f}")


if __name__ == "__main__":
    main()
