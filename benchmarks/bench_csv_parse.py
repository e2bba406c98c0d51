"""Parse speed of the FER2013 CSV loader vs the naive per-row loop, and the cache's second load.

Usage: python benchmarks/bench_csv_parse.py [PATH]   (default: ../shared FER2013, else a synthetic file of
the same size). Prints median seconds over --repeats runs and the ratios; targets: parse ≤ 2 s, cached ≤ 0.3 s.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import SHARED_FER2013


def naive_load(path: Path) -> np.ndarray:
    """The usual notebook recipe: pandas for the columns, then np.fromstring(dtype=int) per row."""
    frame = pd.read_csv(path)
    return np.stack([np.fromstring(p, dtype=int, sep=" ") for p in frame["pixels"]]).reshape(-1, 48, 48)


def tuned_peer_load(path: Path) -> np.ndarray:
    """The same loop with the narrowest dtype: the fastest plain-pandas peer (no validation, no checksum)."""
    frame = pd.read_csv(path)
    return np.stack([np.fromstring(p, dtype=np.uint8, sep=" ") for p in frame["pixels"]]).reshape(-1, 48, 48)


def median_seconds(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-csv-"))
    os.environ["FER_WORKBENCH_HOME"] = str(work / "home")  # a cold, private cache
    from fer_workbench.data import load_dataset, load_fer_csv

    source = Path(args.path) if args.path else SHARED_FER2013 / "fer2013.csv.gz"
    if not source.exists():
        from fer_workbench.data.synthetic import make_synthetic

        print(f"{source} not found: using a synthetic FER2013-format file of the same size")
        source = work / "synthetic.csv"
        source.write_bytes(make_synthetic(35_887, seed=0)[0])
    raw = gzip.decompress(source.read_bytes()) if source.suffix == ".gz" else source.read_bytes()
    plain = work / "plain.csv"
    plain.write_bytes(raw)
    gz = work / "data.csv.gz"
    gz.write_bytes(gzip.compress(raw, compresslevel=6))

    naive_s, reference = median_seconds(lambda: naive_load(plain), args.repeats)
    peer_s, _ = median_seconds(lambda: tuned_peer_load(plain), args.repeats)
    plain_s, dataset = median_seconds(lambda: load_fer_csv(plain), args.repeats)
    gz_s, _ = median_seconds(lambda: load_fer_csv(gz), args.repeats)
    assert np.array_equal(reference.astype(np.uint8), dataset.images), "fast parser disagrees with the naive one"
    load_dataset(gz)  # fills the cache
    cached_s, _ = median_seconds(lambda: load_dataset(gz), args.repeats)

    print(f"rows: {len(dataset)}   source: {source}   (median of {args.repeats} runs, {os.cpu_count()} cores)")
    print(f"naive per-row np.fromstring(int) (.csv):  {naive_s:6.2f} s")
    print(f"tuned peer, fromstring(uint8) (.csv):     {peer_s:6.2f} s   (no validation, no checksum)")
    print(f"load_fer_csv, plain .csv:                 {plain_s:6.2f} s   {naive_s / plain_s:4.1f}x faster than naive, "
          f"{peer_s / plain_s:4.2f}x the tuned peer  (target ≤ 2 s: {'met' if plain_s <= 2 else 'MISSED'})")
    print(f"load_fer_csv, .csv.gz:                    {gz_s:6.2f} s   {naive_s / gz_s:4.1f}x faster")
    print(f"load_dataset, second load (cache):        {cached_s:6.3f} s   {naive_s / cached_s:4.0f}x faster  "
          f"(target ≤ 0.3 s: {'met' if cached_s <= 0.3 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
