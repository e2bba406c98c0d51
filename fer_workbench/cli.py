"""`fer-workbench`: thin subcommands over the package. Errors become one line on stderr and a non-zero exit.

Each subcommand is a pair: ``_add_<name>(commands)`` declares its options, ``cmd_<name>(args)`` runs it. Allowed
values come from the modules that own them: argparse checks the light ones (profiles, detectors, imbalance
strategies, distributed roles; see ``_Owned``), and the owners of model names and tuner kinds, which need
TensorFlow, check those themselves when the subcommand reaches them (``training.resolve_config``,
``tuning.make_tuner``) once the data is known to be good: neither ``--help`` nor a wrong option loads TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
import warnings
from pathlib import Path

from fer_workbench import __version__
from fer_workbench.config import DEFAULT_SEED, PROFILES
from fer_workbench.errors import WorkbenchError, one_line

SKIP_BAD_ROWS_HELP = "drop malformed CSV rows / unreadable images (and report them) instead of failing"
DATA_HELP = "FER2013 CSV or image folder; default: the synthetic dataset"
MAX_CONFIG_BYTES = 1_000_000  # a settings file; anything larger is not one


def _one_line_warnings(message, category, filename, lineno, file=None, line=None):
    print(f"fer-workbench: warning: {one_line(message)}", file=sys.stderr)


def check_paths(args) -> None:
    """Refuse unusable paths before any work starts: an output directory (``--out``) or file (``ship --to``) that
    is a file / a directory or cannot be created, and input files (``--config``, ``--ferplus``, ``--decisions``,
    ``--manifest``, a ``--model`` file) that are not regular files. Every subcommand goes through this, from
    ``main``, before TensorFlow is imported."""
    from fer_workbench.files import check_output_dir, check_output_file

    if getattr(args, "out", None):
        check_output_dir(args.out, "--out")
    if getattr(args, "to", None):
        check_output_file(args.to, "--to")
    model_is_file = args.command not in ("train", "ablate-cleaning")  # their --model names an architecture
    for option in ("config", "ferplus", "decisions", "model", "manifest"):
        value = getattr(args, option, None)
        if not value or (option == "model" and (not model_is_file or value == "shipped")):
            continue
        path = Path(value).expanduser()
        if option == "decisions" and not path.exists():
            continue  # written later by the review widget; absent means "no decisions yet"
        kind = "model file" if option == "model" else "file"
        if not path.exists():
            raise WorkbenchError(f"--{option} {path}: no such {kind}")
        if not path.is_file():
            raise WorkbenchError(f"--{option} {path}: not a regular {kind}")


def _progress_to_stderr(enabled: bool):
    """With --json, stdout carries only the JSON document: Keras / keras-tuner progress goes to stderr."""
    return contextlib.redirect_stdout(sys.stderr) if enabled else contextlib.nullcontext()


def _print_json(value) -> None:
    print(json.dumps(value, indent=2, default=str))


# ------------------------------------------------------------------------------------------ options many share


class _Owned:
    """The allowed values of an option, read from ``module.name`` (the module that owns them) on first use: when
    argparse checks a value given on the command line, or writes that subcommand's --help or an invalid-choice
    message. Building the parser (``fer-workbench --help``, every subcommand) imports nothing."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name
        self._values: tuple | None = None

    @property
    def values(self) -> tuple:
        if self._values is None:
            self._values = tuple(getattr(importlib.import_module(self.module), self.name))
        return self._values

    def __contains__(self, value) -> bool:
        return value in self.values

    def __iter__(self):
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"


def _add_owned_choice(parser, flag: str, owner: _Owned, **kwargs) -> None:
    """Option ``flag`` restricted to ``owner``'s values. argparse formats an option's metavar (from its choices)
    as soon as the option is added, so a placeholder stands in until then and the choices show in --help."""
    action = parser.add_argument(flag, choices=owner, metavar=flag.lstrip("-").upper(), **kwargs)
    action.metavar = None


def _add_profile_and_seed(parser) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default="smoke")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)


def _add_skip_bad_rows(parser, scope: str = "") -> None:
    parser.add_argument("--skip-bad-rows", action="store_true", help=SKIP_BAD_ROWS_HELP + scope)


def _add_json(parser) -> None:
    parser.add_argument("--json", action="store_true")


# ------------------------------------------------------------------------------------------ run


def _add_run(commands) -> None:
    from fer_workbench.records import default_reports_dir

    run = commands.add_parser("run", help="execute the notebook sequence and export HTML reports")
    run.add_argument("--data", help="FER2013 CSV (.csv/.csv.gz) or image folder; default: the synthetic dataset")
    run.add_argument("--ferplus", help="FER+ votes file (fer2013new.csv)")
    _add_profile_and_seed(run)
    run.add_argument("--out", default=str(default_reports_dir()),
                     help="output directory (default: %(default)s: the checkout's reports/, or ~/fer-workbench/reports "
                          "when installed, where the notebooks write when run interactively)")
    run.add_argument("--only", help="comma-separated notebook numbers or names, e.g. 01,02")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_skip_bad_rows(run, " (every notebook)")
    run.add_argument("--model", help="model for notebooks 04-06: a .keras file or 'shipped' (default: 04-05 use the "
                                     "model notebook 03 trained, 06 the shipped model)")
    run.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from fer_workbench.data import resolve_data_path
    from fer_workbench.runner import run_pipeline

    data_path = resolve_data_path(args.data, args.profile, args.seed)
    if not data_path.exists():
        raise WorkbenchError(f"{data_path}: no such file or directory")
    if args.ferplus and not Path(args.ferplus).exists():
        raise WorkbenchError(f"{args.ferplus}: no such file")
    out = Path(args.out).resolve()
    parameters = {"data_path": str(data_path.resolve()), "profile": args.profile, "seed": args.seed,
                  "ferplus_path": str(Path(args.ferplus).resolve()) if args.ferplus else None,
                  "skip_bad_rows": bool(args.skip_bad_rows)}
    if args.model:
        parameters["model_path"] = _model_argument(args.model)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    result = run_pipeline(out, parameters, only=only, progress=not args.quiet)
    print(f"report: {result.index_path}")
    if not result.ok:
        raise WorkbenchError(result.failure_message())
    return 0


def _model_argument(value: str) -> str:
    """``shipped`` names the package's model; anything else must be an existing .keras file."""
    from fer_workbench.config import shipped_model_path

    path = shipped_model_path() if value == "shipped" else Path(value)
    if not path.is_file():
        raise WorkbenchError(f"{path}: no such model file")
    return str(path.resolve())


# ------------------------------------------------------------------------------------------ train


def _add_train(commands) -> None:
    train = commands.add_parser("train", help="train a model (fit Training, select PublicTest, report PrivateTest)")
    train.add_argument("--data", help=DATA_HELP)
    # No argparse choices: the names live in fer_workbench.models (TensorFlow); train() checks them first thing.
    train.add_argument("--model", default="vgg", help="a registered model name (default: vgg; a wrong one is "
                                                      "answered with the list)")
    train.add_argument("--config", help="JSON/YAML file of training settings (TrainConfig fields)")
    train.add_argument("--best-of", help="a keras-tuner search directory: train its best configuration")
    _add_profile_and_seed(train)
    train.add_argument("--out", required=True, help="run directory (re-running the same command resumes)")
    train.add_argument("--class-weight", choices=["balanced"], default=None)
    train.add_argument("--tta", action="store_true", help="also report ten-crop test-time augmentation")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a training setting")
    _add_skip_bad_rows(train)
    _add_json(train)
    train.set_defaults(func=cmd_train)


def _load_config_file(path: str) -> dict:
    from fer_workbench.files import read_bounded

    file = Path(path)
    try:
        text = read_bounded(file, MAX_CONFIG_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WorkbenchError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        import yaml

        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WorkbenchError(f"{file}: not valid JSON or YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise WorkbenchError(f"{file}: expected a mapping of training settings")
    return values


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
    dataset = load_dataset(resolve_data_path(args.data, args.profile, args.seed), skip_bad_rows=args.skip_bad_rows)
    from fer_workbench.training import train  # TensorFlow: imported once the data is known to be good
    with _progress_to_stderr(args.json):
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
        _print_json(summary)
    else:
        print(f"model: {result.model_path}\ncard:  {result.card_path}")
        for split, values in result.metrics.items():
            if isinstance(values, dict) and "accuracy" in values:
                print(f"{split}: accuracy {values['accuracy']:.4f}")
    return 0


# ------------------------------------------------------------------------------------------ tune


def _add_tune(commands) -> None:
    tune = commands.add_parser("tune", help="keras-tuner search over VGG-style networks (resumes a directory)")
    tune.add_argument("--data", help=DATA_HELP)
    # No argparse choices: the kinds live in fer_workbench.tuning (TensorFlow); make_tuner checks them first thing.
    tune.add_argument("--kind", default="hyperband", help="keras-tuner search algorithm (default: hyperband; a wrong "
                                                          "name is answered with the list)")
    _add_profile_and_seed(tune)
    tune.add_argument("--out", required=True, help="search directory")
    tune.add_argument("--project", default="vgg")
    tune.add_argument("--overwrite", action="store_true", help="start the search afresh")
    _add_skip_bad_rows(tune)
    _add_json(tune)
    dist = tune.add_argument_group("distributed search (see README, Distributed tuning)")
    _add_owned_choice(dist, "--role", _Owned("fer_workbench.distributed.cluster", "ROLES"),
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
    with _progress_to_stderr(args.json):
        tuner = make_tuner(args.kind, directory=args.out, project_name=args.project, profile=args.profile,
                           seed=args.seed, overwrite=args.overwrite, cluster=cluster)
        if cluster is not None and cluster.role == "worker":
            print(f"worker {cluster.worker_id}: asking the chief at {cluster.address} for trials", file=sys.stderr,
                  flush=True)
        run_search(tuner, dataset, profile=args.profile, seed=args.seed)
    if cluster is not None and cluster.role == "worker":
        ran = tuner.oracle.trials_run
        if args.json:
            _print_json({"worker": cluster.worker_id, "trials": ran})
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


# ------------------------------------------------------------------------------------------ clean


def _add_clean(commands) -> None:
    clean = commands.add_parser("clean", help="score every image (non-face, blank, duplicates, label issues), "
                                              "write a manifest and a cleaned export")
    clean.add_argument("--data", help=DATA_HELP)
    clean.add_argument("--ferplus", help="FER+ votes, used only to score the flags")
    clean.add_argument("--out", required=True, help="directory for manifest.csv, summary.json, cleaned.csv, ...")
    _add_profile_and_seed(clean)
    clean.add_argument("--decisions", help="review decisions to apply (default: OUT/decisions.json when present)")
    _add_owned_choice(clean, "--imbalance", _Owned("fer_workbench.cleaning.imbalance", "STRATEGIES"),
                      default="class_weights")
    clean.add_argument("--no-label-issues", action="store_true", help="skip the cleanlab step")
    _add_skip_bad_rows(clean)
    _add_json(clean)
    clean.set_defaults(func=cmd_clean)


def cmd_clean(args) -> int:
    from fer_workbench.cleaning import run_cleaning
    from fer_workbench.cleaning.review import overview
    from fer_workbench.data import load_dataset, load_ferplus, resolve_data_path

    dataset = load_dataset(resolve_data_path(args.data, args.profile, args.seed), skip_bad_rows=args.skip_bad_rows)
    ferplus = load_ferplus(args.ferplus) if args.ferplus else None
    decisions = args.decisions or (Path(args.out) / "decisions.json")
    with _progress_to_stderr(args.json):
        result = run_cleaning(dataset, args.out, profile=args.profile, seed=args.seed, ferplus=ferplus,
                              decisions=decisions if Path(decisions).exists() else None,
                              label_issues=not args.no_label_issues, imbalance_strategy=args.imbalance,
                              progress=not args.json)
    if args.json:
        _print_json({**{k: v for k, v in result.summary.items() if k != "packages"}, "paths": result.paths})
        return 0
    print(overview(result.summary).to_string())
    for name, path in result.paths.items():
        print(f"{name:>10}: {path}")
    return 0


# ------------------------------------------------------------------------------------------ ablate-cleaning


def _add_ablate_cleaning(commands) -> None:
    ablate = commands.add_parser("ablate-cleaning", help="train one recipe on raw and on each cleaned Training set "
                                                         "(several seeds) and measure what cleaning buys")
    ablate.add_argument("--data", help=DATA_HELP)
    ablate.add_argument("--ferplus", help="FER+ votes: score against the FER+ majority too, and relabel label issues")
    ablate.add_argument("--manifest", help="a manifest.csv from `clean` of the same data (default: scored now)")
    ablate.add_argument("--variants", help="comma-separated variants (default: all; see fer_workbench.cleaning."
                                           "ablation.ABLATION_VARIANTS)")
    ablate.add_argument("--seeds", help="comma-separated seeds (default: the profile's clean.ablation_seeds)")
    ablate.add_argument("--model", help="network (default: the profile's clean.ablation_model)")
    ablate.add_argument("--epochs", type=int, help="epochs per cell (default: the profile's clean.ablation_epochs)")
    ablate.add_argument("--out", required=True, help="study directory: results.json and one run per (variant, seed);"
                                                     " re-running the same command resumes")
    ablate.add_argument("--report", help="directory for cleaning_ablation.json and its figure (default: --out)")
    ablate.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    _add_skip_bad_rows(ablate)
    _add_json(ablate)
    ablate.set_defaults(func=cmd_ablate_cleaning)


def _int_list(text: str, option: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise WorkbenchError(f"{option} expects comma-separated integers, got {text!r}") from None


def cmd_ablate_cleaning(args) -> int:
    from fer_workbench.cleaning.ablation import (
        ablation_summary,
        get_variant,
        run_cleaning_ablation,
        summary_text,
        write_report,
    )
    from fer_workbench.data import load_dataset, load_ferplus, resolve_data_path
    from fer_workbench.files import check_output_dir

    if args.report:
        check_output_dir(args.report, "--report")
    variants = [get_variant(v.strip()) for v in args.variants.split(",") if v.strip()] if args.variants else None
    seeds = _int_list(args.seeds, "--seeds") if args.seeds else None
    dataset = load_dataset(resolve_data_path(args.data, args.profile), skip_bad_rows=args.skip_bad_rows)
    ferplus = load_ferplus(args.ferplus) if args.ferplus else None
    with _progress_to_stderr(args.json):
        if args.manifest:
            from fer_workbench.cleaning import read_manifest

            manifest = read_manifest(Path(args.manifest).expanduser())
        else:
            from fer_workbench.cleaning import score_images

            manifest = score_images(dataset, args.profile, progress=not args.json)
        ablation = run_cleaning_ablation(dataset, manifest, args.out, variants=variants, seeds=seeds,
                                         model=args.model, epochs=args.epochs, ferplus=ferplus,
                                         profile=args.profile, progress=not args.json)
    summary = ablation_summary(ablation)
    paths = write_report(ablation, summary, args.report or args.out,
                         command="fer-workbench " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["ablate-cleaning"]
                         else None)
    if args.json:
        _print_json({"summary": summary.to_dict(orient="records"), "paths": {k: str(v) for k, v in paths.items()},
                     "trained_now": ablation.trained_now})
        return 0
    print(summary_text(summary))
    for name, path in paths.items():
        print(f"{name:>8}: {path}")
    return 0


# ------------------------------------------------------------------------------------------ ship


def _add_ship(commands) -> None:
    ship = commands.add_parser("ship", help="make a finished training run the package's default model")
    ship.add_argument("run", help="run directory written by fer-workbench train")
    ship.add_argument("--to", help="destination .keras file (default: the package's shipped model)")
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
    card.add_argument("--model", help=".keras model file (default: the shipped model)")
    card.add_argument("--split", default="PrivateTest")
    _add_skip_bad_rows(card)
    card.add_argument("--out", default="reports/fer2013", help="folder for the PNGs and model_card.md")
    _add_json(card)
    card.set_defaults(func=cmd_model_card)


def cmd_model_card(args) -> int:
    from fer_workbench.data import load_dataset, resolve_data_path

    dataset = load_dataset(resolve_data_path(args.data, "smoke", DEFAULT_SEED), skip_bad_rows=args.skip_bad_rows)
    from fer_workbench.model_card import write_card_report  # TensorFlow, once the data is known to be good
    from fer_workbench.models.registry import resolve_model_path
    with _progress_to_stderr(args.json):
        result = write_card_report(resolve_model_path(args.model), dataset, args.out, split=args.split)
    if args.json:
        _print_json(result)
    else:
        tta, lf = result["tta"], result["leakage_free"]
        print(f"{args.split}: accuracy {result['single_crop']['accuracy']:.4f}, with TTA {tta['accuracy']:.4f}, "
              f"macro-F1 {tta['macro_f1']:.4f}; leakage-free ({lf['n']}) {lf['accuracy']:.4f}\nfigures: {args.out}")
    return 0


# ------------------------------------------------------------------------------------------ evaluate


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="metrics of a model on a dataset split")
    evaluate.add_argument("--data", required=True, help="FER2013 CSV or image folder")
    evaluate.add_argument("--split", default="PrivateTest",
                          help="split to evaluate (default PrivateTest; a folder without splits uses every image)")
    evaluate.add_argument("--model", help=".keras model file or 'shipped' (default: the best of the shipped model "
                          "and --run's model on PublicTest)")
    evaluate.add_argument("--run", help="a `fer-workbench run` directory whose notebook-03 model is a candidate")
    evaluate.add_argument("--tta", action="store_true", help="ten-crop + flip test-time augmentation")
    _add_skip_bad_rows(evaluate)
    _add_json(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from fer_workbench.data import load_dataset

    dataset = load_dataset(args.data, skip_bad_rows=args.skip_bad_rows)
    from fer_workbench.evaluation import evaluate_split  # TensorFlow, once the data is known to be good
    from fer_workbench.models.compatibility import check_model
    from fer_workbench.models.registry import choose_model

    choice = choose_model(args.model, args.run, dataset)
    model_path, model = choice.path, choice.load()
    check_model(model, model_path)  # 48×48×1 in, probabilities out; the class count is checked against the data
    # A dataset without the default split (e.g. a folder with only train/) is evaluated on all its images.
    split = None if args.split == "PrivateTest" and args.split not in dataset.split_names() else args.split
    report = evaluate_split(model, dataset, split, tta=args.tta, model_path=model_path)
    report["model_choice"] = choice.to_dict()
    if args.json:
        _print_json(report)
        return 0
    print(choice.summary())
    print(f"{report['model']} on {report['data_source']} ({report['split']}, n={report['n']}, "
          f"TTA {'on' if args.tta else 'off'})")
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "log_loss", "ece"):
        print(f"{key:>18}: {report[key]:.4f}")
    if report["excluded_classes"]:
        print(f"excluded classes (unknown to the model): {', '.join(report['excluded_classes'])}")
    return 0


# ------------------------------------------------------------------------------------------ predict


def _add_predict(commands) -> None:
    predict = commands.add_parser("predict", help="find faces in photos and predict their expressions")
    predict.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    predict.add_argument("--model", help=".keras model file (default: the shipped model)")
    _add_owned_choice(predict, "--detector", _Owned("fer_workbench.faces", "DETECTORS"), default="auto",
                      help="auto: Haar cascade, MTCNN when Haar finds nothing")
    predict.add_argument("--align", action="store_true", help="level the eyes before cropping (needs MTCNN keypoints)")
    predict.add_argument("--tta", action="store_true")
    _add_json(predict)
    predict.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from fer_workbench.predict import FacePredictor

    with _progress_to_stderr(args.json):
        predictor = FacePredictor(args.model, detector=args.detector, tta=args.tta, align=args.align)
        results = predictor.predict_paths(args.inputs)
    if args.json:
        _print_json([r.to_dict() for r in results])
    else:
        for result in results:
            if result.error and not result.faces:
                print(one_line(result.message))
            for k, face in enumerate(result.faces, 1):
                x, y, w, h = face.box
                print(f"{result.file}: face {k} at x={x} y={y} w={w} h={h}: {face.label} "
                      f"({face.scores[face.label]:.2f})")
    if results and not any(r.readable for r in results):
        raise WorkbenchError("none of the inputs could be read")
    return 0


# ------------------------------------------------------------------------------------------ data ...


def _add_data(commands) -> None:
    data = commands.add_parser("data", help="dataset utilities").add_subparsers(dest="data_command", required=True)
    summary = data.add_parser("summary", help="counts per split × class, duplicates, blank images, checksum")
    summary.add_argument("path")
    _add_json(summary)
    _add_skip_bad_rows(summary)
    summary.set_defaults(func=cmd_data_summary)
    default = data.add_parser("make-default", help="write the synthetic default dataset and print its path")
    _add_profile_and_seed(default)
    default.add_argument("--out", help="directory to write it to (default: the workbench cache)")
    default.set_defaults(func=cmd_data_default)
    clear = data.add_parser("clear-cache", help="delete cached parsed datasets")
    clear.set_defaults(func=cmd_data_clear_cache)


def cmd_data_summary(args) -> int:
    from fer_workbench.data import load_dataset
    from fer_workbench.explore import dataset_summary

    dataset = load_dataset(args.path, skip_bad_rows=args.skip_bad_rows)
    summary = dataset_summary(dataset)
    if args.json:
        _print_json(summary)
        return 0
    print(f"{summary['source']}  ({summary['rows']} images, sha256 {summary['checksum'][:16]}…)")
    print(dataset.counts().to_string())
    dup = summary["duplicates"]
    print(f"blank images: {summary['blank_images']}")
    print(f"exact duplicates: {dup['groups']} groups covering {dup['rows_in_groups']} rows; "
          f"{dup['cross_split_groups']} groups span more than one split; "
          f"{dup['label_conflict_groups']} groups carry conflicting labels")
    if dataset.skipped_rows:
        where, why = dataset.skipped_rows[0]
        print(one_line(f"skipped bad rows: {len(dataset.skipped_rows)} (first: {where}: {why})"))
    return 0


def cmd_data_default(args) -> int:
    from fer_workbench.config import get_profile
    from fer_workbench.data.synthetic import ensure_default_dataset, write_synthetic_dataset

    if args.out:
        path = write_synthetic_dataset(args.out, get_profile(args.profile).data.synthetic_rows, args.seed)
    else:
        path = ensure_default_dataset(args.profile, args.seed)
    print(path)
    return 0


def cmd_data_clear_cache(args) -> int:
    from fer_workbench.data.cache import clear_cache

    print(f"removed {clear_cache()} cached datasets")
    return 0


# ------------------------------------------------------------------------------------------ the command


SUBCOMMANDS = (_add_run, _add_train, _add_tune, _add_clean, _add_ablate_cleaning, _add_ship, _add_model_card,
               _add_evaluate, _add_predict, _add_data)


class _OneLineParser(argparse.ArgumentParser):
    """argparse's usage errors as one line (argparse's exit status 2), like every other error; --help has the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="fer-workbench", description=__doc__.split(":")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _one_line_warnings
    try:
        check_paths(args)
        return args.func(args)
    except WorkbenchError as exc:
        print(f"fer-workbench: error: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print("fer-workbench: error: out of memory", file=sys.stderr)
        return 1
    except OSError as exc:  # the machine, not the input: disk full, permission lost mid-run, ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"fer-workbench: error: {one_line(where + (exc.strerror or str(exc)))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fer-workbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
