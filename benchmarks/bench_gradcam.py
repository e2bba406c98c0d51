"""GradCAM maps per second: tf-keras-vis' Gradcam vs the package's traced GradCAM (batch 64, CPU).

    python benchmarks/bench_gradcam.py [--images 256] [--batch 64] [--threads 2] [--repeats 3]

Models: the shipped FER2013 model (when the package has one; target ≥ 100 maps/s), then untrained ``VGG_CPU`` and
mini-Xception (speed does not depend on the weights). Both
paths take the same uint8 images through ``saliency_maps`` (preprocessing, batching, logits instead of
softmax), so the difference is the GradCAM computation itself; their maps are also compared.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per implementation (best is kept)")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)

    from fer_workbench.config import shipped_model_path
    from fer_workbench.models import VGG_CPU, build_model
    from fer_workbench.models.io import load_model
    from fer_workbench.saliency import saliency_maps

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 48, 48), dtype=np.uint8)
    classes = rng.integers(0, 7, args.images)
    print(f"{args.images} images, batch {args.batch}, {args.threads} TF threads")
    print(f"{'model':<14} {'params':>9} {'tf-keras-vis/s':>15} {'package/s':>10} {'ratio':>6} {'max |Δ|':>8}")
    models = [("vgg (VGG_CPU)", lambda: build_model("vgg", config=VGG_CPU)),
              ("mini_xception", lambda: build_model("mini_xception"))]
    if shipped_model_path().is_file():
        models.insert(0, ("shipped", lambda: load_model(shipped_model_path())))
    else:
        print("no shipped model in the package: timing untrained models only")
    for name, build in models:
        model = build()
        rates, maps = {}, {}
        for impl in ("tf-keras-vis", "fast"):
            saliency_maps(model, images[:args.batch], classes[:args.batch], "gradcam", args.batch,
                          implementation=impl)  # warm-up: tracing, clone/view building
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                maps[impl] = saliency_maps(model, images, classes, "gradcam", args.batch, implementation=impl)
                best = min(best, time.perf_counter() - start)
            rates[impl] = args.images / best
        diff = float(np.abs(maps["fast"] - maps["tf-keras-vis"]).max())
        print(f"{name:<14} {model.count_params():>9,} {rates['tf-keras-vis']:>15.1f} {rates['fast']:>10.1f} "
              f"{rates['fast'] / rates['tf-keras-vis']:>5.1f}x {diff:>8.1e}"
              + (f"  target ≥ 100/s: {'PASS' if rates['fast'] >= 100 else 'FAIL'}" if name == "shipped" else ""))


if __name__ == "__main__":
    main()
