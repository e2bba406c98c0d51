"""Training images/s of the shipped architecture: the package's input pipeline vs plain `model.fit` on NumPy arrays.

Usage: python benchmarks/bench_training_throughput.py [--model PATH] [--steps 300] [--warmup 20] [--batch 64]
                                                      [--threads 0] [--skip-no-augment] [--val-images 1024]

Model: --model, else the shipped FER2013 model, else an untrained model of its architecture (configs/fer2013-cpu.yaml;
speed does not depend on the weights); each variant trains a fresh clone, compiled as `train` compiles it (the
recipe's optimizer and schedule, `compile_model`, no XLA on CPU). Data: FER2013 Training rows from ../shared when
present, else synthetic ones, as float32 model input. Variants, each --warmup steps (tracing, oneDNN caches) then
--steps timed steps of batch --batch in one `fit` call:

* package, the recipe's precision: when the recipe asks for bfloat16 and this CPU has it natively (what `train`
  then does), a fresh model built under `mixed_bfloat16`, with the bfloat16 / float32 ratio printed;
* package: `make_train_dataset(..., augment=<the recipe's strength>)` (what `train` feeds `fit`), float32;
* package, augment=0: the same tf.data pipeline without augmentation (separates pipeline from augmentation cost);
* plain `model.fit(x, y, batch_size=...)` on in-memory NumPy arrays, no augmentation (the usual notebook recipe).

Prints images/s (timed steps / their wall time, and from the median step), ratios to plain fit, and the estimated
minutes per FER2013 epoch (28,709 training images; with and without the PublicTest validation pass, whose speed is
measured with `evaluate` on --val-images images) and per the recipe's epochs. No target: the recipe's budget is
≤ 120 min for its 50 epochs on a 2-core CPU, which the estimate checks.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FER2013_TRAIN = 28_709
FER2013_PUBLIC_TEST = 3_589
BUDGET_MINUTES = 120


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a .keras file (default: the shipped model)")
    parser.add_argument("--steps", type=int, default=300, help="timed training steps per variant")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: TF's default)")
    parser.add_argument("--skip-no-augment", action="store_true", help="skip the augment=0 package variant")
    parser.add_argument("--val-images", type=int, default=1024, help="images for the validation-speed estimate "
                                                                     "(0: skip)")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)

    from _common import face_images, machine_line, model_for_benchmark, recipe_config

    from fer_workbench import CLASS_NAMES
    from fer_workbench.inputs import make_eval_dataset, make_train_dataset
    from fer_workbench.models import build_model
    from fer_workbench.preprocess import prepare_images
    from fer_workbench.runtime import precision_policy, select_device
    from fer_workbench.training import compile_model

    config = recipe_config()
    template, described = model_for_benchmark(args.model)
    total = args.warmup + args.steps
    images, labels, source = face_images(min(FER2013_TRAIN, total * args.batch))
    x = prepare_images(images, config.preprocessing)
    steps_per_epoch = math.ceil(len(x) / args.batch)
    print(f"model: {described}\nimages: {len(x):,} from {source}\n"
          f"recipe: {config.optimizer} lr {config.learning_rate} {config.schedule}, augment {config.augment}, "
          f"{config.epochs} epochs; batch {args.batch}; {args.warmup} warm-up + {args.steps} timed steps per variant\n"
          f"TF intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}; "
          f"{machine_line()}")

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    def fresh_model(policy: str | None = None) -> keras.Model:
        keras.utils.set_random_seed(0)
        if policy:  # the template's layers carry float32 in their configs, so a clone would stay float32
            with precision_policy(policy):
                net = build_model(config.model, **config.model_kwargs)
        else:
            net = keras.models.clone_model(template)
        return compile_model(net, config, steps_per_epoch)

    def run(label: str, fit, policy: str | None = None) -> None:
        net, clock = fresh_model(policy), StepClock()
        start = time.perf_counter()
        fit(net, clock)
        wall = time.perf_counter() - start
        ends = clock.ends[:total]
        if len(ends) < total:
            raise SystemExit(f"{label}: fit stopped after {len(ends)} of {total} steps")
        timed_steps = np.diff(ends[args.warmup - 1:]) if args.warmup else np.diff([start, *ends])
        rows[label] = (args.batch * len(timed_steps) / float(timed_steps.sum()),
                       args.batch / float(statistics.median(timed_steps)), wall)
        if label.startswith("package:"):
            models["package"] = net

    rows: dict[str, tuple[float, float, float]] = {}
    models: dict[str, keras.Model] = {}

    def package_fit(augment: float):
        def fit(net, clock):
            epochs = math.ceil(total / steps_per_epoch)
            ds, _ = make_train_dataset(x, labels, args.batch, seed=0, epochs=epochs, augment=augment)
            net.fit(ds, epochs=1, steps_per_epoch=total, shuffle=False, verbose=0, callbacks=[clock])
        return fit

    def plain_fit(net, clock):
        n = min(len(x), total * args.batch)
        y = keras.utils.to_categorical(labels[:n], len(CLASS_NAMES))
        epochs = math.ceil(total * args.batch / n)  # only when --steps × --batch exceeds the Training split
        net.fit(x[:n], y, batch_size=args.batch, epochs=epochs, shuffle=True, verbose=0, callbacks=[clock])

    # The recipe's precision first (what `train` does on this machine), so the estimate below uses it.
    recipe_policy = select_device("cpu", gpus=[], precision=config.precision).mixed_precision
    if recipe_policy:
        run(f"package: augment={config.augment:g}, {recipe_policy} (recipe)", package_fit(config.augment),
            recipe_policy)
    run(f"package: make_train_dataset(augment={config.augment:g}) + fit", package_fit(config.augment))
    if not args.skip_no_augment:
        run("package: make_train_dataset(augment=0) + fit", package_fit(0.0))
    run("plain model.fit(numpy x, y), no augmentation", plain_fit)

    val_ips = None
    if args.val_images:
        net = models.get("package") or fresh_model()
        n = min(args.val_images, len(x))
        val = make_eval_dataset(x[:n], labels[:n], args.batch)
        net.evaluate(val.take(2), verbose=0)  # warm-up: traces the test function
        start = time.perf_counter()
        net.evaluate(val, verbose=0)
        val_ips = n / (time.perf_counter() - start)

    plain = next(v for k, v in rows.items() if k.startswith("plain"))[0]
    print(f"\n{'':52} {'images/s':>9} {'(median step)':>13} {'/plain':>7} {'min/epoch':>9} "
          f"{f'min/{config.epochs} ep':>10} {'fit s':>6}")
    for label, (ips, median_ips, wall) in rows.items():
        minutes = FER2013_TRAIN / ips / 60
        print(f"{label:52} {ips:9.1f} {median_ips:13.1f} {ips / plain:7.2f} {minutes:9.1f} "
              f"{minutes * config.epochs:10.0f} {wall:6.0f}")
    package_ips = next(iter(rows.values()))[0]
    if recipe_policy:
        float32_ips = rows[f"package: make_train_dataset(augment={config.augment:g}) + fit"][0]
        print(f"{recipe_policy} / float32 (same pipeline, same augmentation): {package_ips / float32_ips:.2f}x")
    train_min = FER2013_TRAIN / package_ips / 60
    if val_ips:
        val_min = FER2013_PUBLIC_TEST / val_ips / 60
        total_min = (train_min + val_min) * config.epochs
        print(f"validation (evaluate on PublicTest-sized batches): {val_ips:.0f} images/s → "
              f"{val_min * 60:.0f} s per epoch for {FER2013_PUBLIC_TEST:,} PublicTest images")
        print(f"estimated training run with the package pipeline: {train_min + val_min:.1f} min/epoch, "
              f"{total_min:.0f} min for {config.epochs} epochs (budget ≤ {BUDGET_MINUTES} min: "
              f"{'within' if total_min <= BUDGET_MINUTES else 'OVER'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
