"""Single-image latency and batch throughput of the shipped model: the package's predict path vs plain Keras calls.

Usage: python benchmarks/bench_inference.py [--model PATH] [--runs 200] [--batch-sizes 1,32,256,1024]
                                            [--batch-runs 5] [--threads 0] [--xla]

Model: --model, else the shipped FER2013 model, else an untrained model of its architecture
(configs/fer2013-cpu.yaml; latency does not depend on the weights). Images: 48×48 uint8 FER2013 Training rows from
../shared when present, else synthetic ones; each timed call gets a different image. Every path starts from uint8
pixels and ends with a NumPy array of probabilities (the same normalisation, `prepare_images`, on all paths).

Prints median wall and CPU ms (and the best wall ms: a hint on a busy machine) per image for: the package path —
`CropPredictor(model)(image)` (what `FacePredictor` and `fer-workbench predict` use) and `predict_proba(model, image)`,
with and without ten-crop TTA — vs eager `model(x)` and `model.predict(x)`, with the ratio of each to the package
path; then images/s per batch size through `CropPredictor` vs `model.predict` (given the package's chunk size,
min(batch, 256)). --xla adds an informational row for `compiled_predict(model, jit_compile=True)` (not the package
default).
Target: single-image latency through the package path ≤ 3 ms (eager `model(x)`: 20–45 ms on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TARGET_MS = 3.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a .keras file (default: the shipped model)")
    parser.add_argument("--runs", type=int, default=200, help="timed single-image calls per path")
    parser.add_argument("--batch-sizes", default="1,32,256,1024")
    parser.add_argument("--batch-runs", type=int, default=5, help="timed calls per batch size and path")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: TF's default)")
    parser.add_argument("--xla", action="store_true", help="also time compiled_predict(jit_compile=True)")
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]

    import numpy as np
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)

    from _common import face_images, machine_line, model_for_benchmark, samples, timed

    from fer_workbench.inference import CropPredictor, compiled_predict, predict_proba
    from fer_workbench.preprocess import prepare_images

    model, described = model_for_benchmark(args.model)
    variant = getattr(model, "fer_preprocessing", "none")
    images, _, source = face_images(max([*batch_sizes, args.runs]))
    print(f"model: {described}; preprocessing {variant!r}\nimages: {source}\n"
          f"TF intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}; "
          f"{machine_line()}; {args.runs} single-image runs, {args.batch_runs} per batch size")

    predictor = CropPredictor(model)  # traces the compiled forward pass once
    predictor_tta = CropPredictor(model, tta=True)
    counter = iter(range(10**9))  # rebound below to restart at images[0]; one() reads the current iterator

    def one() -> np.ndarray:  # a different image on every call
        return images[next(counter) % len(images)]

    def eager():
        return model(prepare_images(one(), variant), training=False).numpy()[0]

    def keras_predict():
        return model.predict(prepare_images(one(), variant), verbose=0)[0]

    paths = {
        "package: CropPredictor(model)(image)": lambda: predictor(one()),
        "package: predict_proba(model, image)": lambda: predict_proba(model, one()),
        "package: CropPredictor, ten-crop TTA": lambda: predictor_tta(one()),
        "eager model(x)": eager,
        "model.predict(x)": keras_predict,
    }
    if args.xla:
        xla = compiled_predict(model, jit_compile=True)
        paths["compiled_predict(jit_compile=True)  (info)"] = lambda: xla(prepare_images(one(), variant)).numpy()[0]

    check = predictor(images[0])
    for label, fn in paths.items():
        start = time.perf_counter()
        for _ in range(3):
            out = fn()  # warm-up: tracing, Keras' predict function, oneDNN primitive caches
        warm_ms = (time.perf_counter() - start) * 1000
        if "TTA" not in label:
            counter = iter(range(10**9))
            assert np.allclose(fn(), check, atol=1e-4), f"{label} disagrees with the package path"
        del out
        paths[label] = (fn, warm_ms)

    rows = {}
    for label, (fn, warm_ms) in paths.items():
        runs = args.runs if "predict(x)" not in label else max(5, args.runs // 4)  # model.predict is slow
        walls, cpus, _ = samples(fn, runs)
        rows[label] = (statistics.median(walls), statistics.median(cpus), min(walls), runs, warm_ms)
    base_wall, base_cpu = rows["package: CropPredictor(model)(image)"][:2]
    print(f"\none 48×48 uint8 image → probabilities {'':11} {'wall ms':>8} {'CPU ms':>7} {'best ms':>8} "
          f"{'wall/pkg':>9} {'CPU/pkg':>8} {'runs':>5} {'3 warm-up calls ms':>19}")
    for label, (wall, cpu, best, runs, warm_ms) in rows.items():
        print(f"{label:50} {wall:8.2f} {cpu:7.2f} {best:8.2f} {wall / base_wall:9.2f} {cpu / base_cpu:8.2f} "
              f"{runs:5d} {warm_ms:19.0f}")
    eager_wall = rows["eager model(x)"][0]
    print(f"package path {eager_wall / base_wall:.1f}× faster than eager model(x), "
          f"{rows['model.predict(x)'][0] / base_wall:.1f}× faster than model.predict(x)")
    print(f"target: single-image latency ≤ {TARGET_MS:g} ms through the package path: {base_wall:.2f} ms "
          f"{'PASS' if base_wall <= TARGET_MS else 'FAIL'}")

    print(f"\nbatch throughput, images/s (median of {args.batch_runs} calls; uint8 in, probabilities out)")
    print(f"{'batch':>6} {'CropPredictor':>10} {'model.predict':>14} {'ratio':>6}")
    for size in batch_sizes:
        batch = images[:size]
        predictor(batch), model.predict(prepare_images(batch, variant), batch_size=min(size, 256), verbose=0)
        ours, _, _ = timed(lambda batch=batch: predictor(batch), args.batch_runs)
        theirs, _, _ = timed(lambda batch=batch, size=size: model.predict(
            prepare_images(batch, variant), batch_size=min(size, 256), verbose=0), args.batch_runs)
        print(f"{size:>6} {size / ours * 1000:>10.0f} {size / theirs * 1000:>14.0f} {theirs / ours:>5.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
