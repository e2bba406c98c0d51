"""Subcommands that make and ship models: `train`, `probe` (short controlled trainings of one recipe), `tune` (alone or
distributed), `ship`, `model-card`.
TensorFlow is imported inside each command, once its data is known to be good."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fer_workbench.cli.common import (
    DATA_HELP,
    Owned,
    add_json,
    add_label_source,
    add_owned_choice,
    add_profile_and_seed,
    add_skip_bad_rows,
    check_label_source,
    labelled,
    print_json,
    progress_to_stderr,
)
from fer_workbench.config import DEFAULT_SEED, PROFILES
from fer_workbench.errors import WorkbenchError

MAX_CONFIG_BYTES = 1_000_000  # a settings file; anything larger is not one


# ------------------------------------------------------------------------------------------ train


def _add_train(commands) -> None:
    train = commands.add_parser("train", help="train a model (fit Training, select PublicTest, report PrivateTest)")
    train.add_argument("--data", help=DATA_HELP)
    # No argparse choices: the names live in fer_workbench.models (TensorFlow); train() checks them first thing.
    train.add_argument("--model", default="vgg", help="a registered model name (default: vgg; a wrong one is "
                                                      "answered with the list)")
    train.add_argument("--config", help="JSON/YAML file of training settings (TrainConfig fields)")
    train.add_argument("--best-of", help="a keras-tuner search directory: train its best configuration")
    add_profile_and_seed(train)
    train.add_argument("--out", required=True, help="run directory (re-running the same command resumes)")
    train.add_argument("--class-weight", choices=["balanced"], default=None)
    train.add_argument("--tta", action="store_true", help="also report ten-crop test-time augmentation")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a training setting")
    add_label_source(train)
    add_skip_bad_rows(train)
    add_json(train)
    train.set_defaults(func=cmd_train)


def _load_config_file(path: str) -> dict:
    from fer_workbench.files import read_yaml_mapping

    return read_yaml_mapping(path, "training settings", MAX_CONFIG_BYTES)


def _parse_overrides(pairs: list[str]) -> dict:
    """`--set key=value` pairs; values parsed as YAML scalars (numbers, booleans, null, strings)."""
    import yaml

    overrides = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise WorkbenchError(f"--set expects key=value, got {pair!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def cmd_train(args) -> int:
    from fer_workbench.data import load_dataset, resolve_data_path

    if args.config and args.best_of:
        raise WorkbenchError("give --config or --best-of, not both")
    check_label_source(args)
    dataset = load_dataset(resolve_data_path(args.data, args.profile, args.seed), skip_bad_rows=args.skip_bad_rows)
    dataset = labelled(args, dataset)
    from fer_workbench.training import train  # TensorFlow: imported once the data is known to be good
    with progress_to_stderr(args.json):
        if args.best_of:
            from fer_workbench.tuning import best_config, open_tuner

            model = best_config(open_tuner(args.best_of))
        elif args.config:
            model = _load_config_file(args.config)
        else:
            model = args.model
        result = train(dataset, model, args.out, profile=args.profile, seed=args.seed, tta=args.tta,
                       class_weight=args.class_weight, **_parse_overrides(args.set))
    summary = {"model": str(result.model_path), "card": str(result.card_path), "seconds": round(result.seconds, 1),
               "images_per_second": round(result.images_per_second, 1), "metrics": result.metrics}
    if args.json:
        print_json(summary)
    else:
        print(f"model: {result.model_path}\ncard:  {result.card_path}")
        for split, values in result.metrics.items():
            if isinstance(values, dict) and "accuracy" in values:
                print(f"{split}: accuracy {values['accuracy']:.4f}")
    return 0


# ------------------------------------------------------------------------------------------ probe


def _add_probe(commands) -> None:
    probe = commands.add_parser("probe", help="train each probe (a recipe with one change) for the same short budget "
                                              "and seed; a table chosen on PublicTest (resumes --out)")
    probe.add_argument("--data", help=DATA_HELP)
    probe.add_argument("--config", required=True, help="the base recipe: JSON/YAML file of training settings "
                                                       "(e.g. configs/fer2013-cpu.yaml)")
    probe.add_argument("--probes", required=True, help="probe file: a 'probes:' list of {name, overrides, "
                                                       "description} (e.g. configs/fer2013-probes.yaml)")
    probe.add_argument("--epochs", type=int, help="epochs every probe trains (default: the probe file's epochs)")
    probe.add_argument("--out", required=True, help="study directory: probes_results.json and one run per probe; "
                                                    "re-running the same command resumes")
    probe.add_argument("--report", help="directory for probes.json and probes.png (default: --out)")
    probe.add_argument("--only", help="comma-separated probe names (default: every probe in the file)")
    probe.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    probe.add_argument("--seed", type=int, default=DEFAULT_SEED)
    add_skip_bad_rows(probe)
    add_json(probe)
    probe.set_defaults(func=cmd_probe)


def cmd_probe(args) -> int:
    from fer_workbench.data import load_dataset, resolve_data_path
    from fer_workbench.files import check_output_dir
    from fer_workbench.probes import check_epochs, load_probes, select_probes

    if args.report:
        check_output_dir(args.report, "--report")
    base = _load_config_file(args.config)
    probes, file_epochs = load_probes(args.probes)
    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    probes = select_probes(probes, only)
    if args.epochs is None and file_epochs is None:
        raise WorkbenchError(f"give --epochs (or an 'epochs:' entry in {args.probes})")
    epochs = check_epochs(args.epochs if args.epochs is not None else file_epochs, "--epochs")
    dataset = load_dataset(resolve_data_path(args.data, args.profile, args.seed), skip_bad_rows=args.skip_bad_rows)
    from fer_workbench.probes import run_probes, write_probe_report  # TensorFlow, once the data is known to be good
    with progress_to_stderr(args.json):
        results = run_probes(dataset, base, probes, args.out, epochs, seed=args.seed, profile=args.profile,
                             progress=not args.json)
    paths = write_probe_report(results, args.report or args.out,
                               command="fer-workbench " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["probe"]
                               else None)
    table = results.table()
    if args.json:
        print_json({"probes": json.loads(table.to_json(orient="records")), "trained_now": results.trained_now,
                    "paths": {k: str(v) for k, v in paths.items()}})
        return 0
    print(table.drop(columns=["overrides"]).round(4).to_string(index=False))
    for name, path in paths.items():
        print(f"{name:>8}: {path}")
    return 0


# ------------------------------------------------------------------------------------------ tune


def _add_tune(commands) -> None:
    tune = commands.add_parser("tune", help="keras-tuner search over VGG-style networks (resumes a directory)")
    tune.add_argument("--data", help=DATA_HELP)
    # No argparse choices: the kinds live in fer_workbench.tuning (TensorFlow); make_tuner checks them first thing.
    tune.add_argument("--kind", default="hyperband", help="keras-tuner search algorithm (default: hyperband; a wrong "
                                                          "name is answered with the list)")
    add_profile_and_seed(tune)
    tune.add_argument("--out", required=True, help="search directory")
    tune.add_argument("--project", default="vgg")
    tune.add_argument("--overwrite", action="store_true", help="start the search afresh")
    add_skip_bad_rows(tune)
    add_json(tune)
    dist = tune.add_argument_group("distributed search (see README, Distributed tuning)")
    add_owned_choice(dist, "--role", Owned("fer_workbench.distributed.cluster", "ROLES"),
                      help="chief: serve the search's oracle; worker: run its trials (same --out/--kind/--profile/"
                           "--seed/--data everywhere)")
    dist.add_argument("--oracle", metavar="HOST:PORT",
                      help="chief: address to listen on (e.g. 0.0.0.0:8000); worker: the chief's address")
    dist.add_argument("--worker-id", help="this worker's name in the assignment log (default: HOSTNAME-PID)")
    dist.add_argument("--lease-timeout", type=float, default=60.0, metavar="SECONDS",
                      help="chief: a worker silent this long loses its trial, which is retried (default 60)")
    dist.add_argument("--max-retries", type=int, default=1,
                      help="chief: reruns of a lost or crashed trial before it counts as failed (default 1)")
    dist.add_argument("--chief-wait", type=float, default=300.0, metavar="SECONDS",
                      help="worker: how long to keep retrying an unreachable chief (default 300)")
    tune.set_defaults(func=cmd_tune)


def _cluster(args):
    """The --role/--oracle/... settings of a distributed search, or None for a search in this process alone."""
    if not args.role:
        if args.oracle or args.worker_id:
            raise WorkbenchError("--oracle and --worker-id need --role chief or --role worker")
        return None
    from fer_workbench.distributed import Cluster  # plain Python: the package loads keras-tuner only when used

    if args.overwrite and args.role == "worker":
        raise WorkbenchError("--overwrite is for the chief only (a worker never deletes the search directory)")
    return Cluster.create(args.role, args.oracle, worker_id=args.worker_id, lease_timeout=args.lease_timeout,
                          chief_wait=args.chief_wait, max_retries=args.max_retries)


def cmd_tune(args) -> int:
    from fer_workbench.data import load_dataset, resolve_data_path

    cluster = _cluster(args)
    dataset = load_dataset(resolve_data_path(args.data, args.profile, args.seed), skip_bad_rows=args.skip_bad_rows)
    from fer_workbench.tuning import make_tuner, results_frame, run_search  # TensorFlow, once the data is good
    with progress_to_stderr(args.json):
        tuner = make_tuner(args.kind, directory=args.out, project_name=args.project, profile=args.profile,
                           seed=args.seed, overwrite=args.overwrite, cluster=cluster)
        if cluster is not None and cluster.role == "worker":
            print(f"worker {cluster.worker_id}: asking the chief at {cluster.address} for trials", file=sys.stderr,
                  flush=True)
        run_search(tuner, dataset, profile=args.profile, seed=args.seed)
    if cluster is not None and cluster.role == "worker":
        ran = tuner.oracle.trials_run
        if args.json:
            print_json({"worker": cluster.worker_id, "trials": ran})
        else:
            print(f"worker {cluster.worker_id}: ran trials {', '.join(ran) or '(none)'}")
        return 0
    table = results_frame(tuner)
    if args.json:
        print(table.to_json(orient="records", indent=2))
    else:
        print(table.to_string(index=False))
        print(f"search directory: {Path(args.out) / args.project}")
        from fer_workbench.distributed import BEST_FILE

        best = Path(tuner.project_dir) / BEST_FILE
        if cluster is not None and best.exists():
            best = json.loads(best.read_text(encoding="utf-8"))
            print(f"best trial: {best['trial_id']} ({best['objective']} {best['score']:.4f}, worker {best['worker']})")
    return 0


# ------------------------------------------------------------------------------------------ ship


def _add_ship(commands) -> None:
    ship = commands.add_parser("ship", help="make a finished training run the package's default model")
    ship.add_argument("run", help="run directory written by fer-workbench train")
    ship.add_argument("--to", help="destination .keras file (default: the package's shipped model of the run's "
                                   "label source: FER2013's, or FER+'s)")
    ship.set_defaults(func=cmd_ship)


def cmd_ship(args) -> int:
    from fer_workbench.model_card import ship_run

    card = ship_run(args.run, args.to)
    print(f"model: {card.with_name(card.name.replace('.model_card.json', '.keras'))}\ncard:  {card}")
    return 0


# ------------------------------------------------------------------------------------------ model-card


def _add_model_card(commands) -> None:
    card = commands.add_parser("model-card", help="evaluate a model and write its card figures and summary page")
    card.add_argument("--data", required=True, help="the FER2013 CSV the model was trained on")
    card.add_argument("--model", help=".keras model file, 'shipped' or 'shipped-ferplus' (default: 'shipped')")
    card.add_argument("--split", default="PrivateTest")
    add_label_source(card)
    add_skip_bad_rows(card)
    card.add_argument("--out", default="reports/fer2013", help="folder for the PNGs and model_card.md")
    add_json(card)
    card.set_defaults(func=cmd_model_card)


def cmd_model_card(args) -> int:
    from fer_workbench.data import load_dataset, resolve_data_path

    check_label_source(args)
    dataset = load_dataset(resolve_data_path(args.data, "smoke", DEFAULT_SEED), skip_bad_rows=args.skip_bad_rows)
    dataset = labelled(args, dataset)
    from fer_workbench.model_card import write_card_report  # TensorFlow, once the data is known to be good
    from fer_workbench.models.registry import resolve_model_path
    with progress_to_stderr(args.json):
        result = write_card_report(resolve_model_path(args.model), dataset, args.out, split=args.split)
    if args.json:
        print_json(result)
    else:
        tta, lf = result["tta"], result["leakage_free"]
        print(f"{args.split}: accuracy {result['single_crop']['accuracy']:.4f}, with TTA {tta['accuracy']:.4f}, "
              f"macro-F1 {tta['macro_f1']:.4f}; leakage-free ({lf['n']}) {lf['accuracy']:.4f}\nfigures: {args.out}")
    return 0
