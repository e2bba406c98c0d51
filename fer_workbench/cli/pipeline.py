"""`fer-workbench run`: the notebook sequence, executed and exported as HTML reports."""

from __future__ import annotations

from pathlib import Path

from fer_workbench.cli.common import (
    Owned,
    add_owned_choice,
    add_profile_and_seed,
    add_skip_bad_rows,
    check_label_source,
)
from fer_workbench.errors import WorkbenchError


def _add_run(commands) -> None:
    from fer_workbench.records import default_reports_dir

    run = commands.add_parser("run", help="execute the notebook sequence and export HTML reports")
    run.add_argument("--data", help="FER2013 CSV (.csv/.csv.gz) or image folder; default: the synthetic dataset")
    run.add_argument("--ferplus", help="FER+ votes file (fer2013new.csv)")
    add_owned_choice(run, "--labels", Owned("fer_workbench.data.labels", "LABEL_SOURCES"), default="fer2013",
                     help="what notebooks 03-05 train and judge on: fer2013 (the data's own labels, default), "
                          "ferplus-majority or ferplus-soft (FER+ crowd votes, 8 classes; needs --ferplus)")
    add_profile_and_seed(run)
    run.add_argument("--out", default=str(default_reports_dir()),
                     help="output directory (default: %(default)s: the checkout's reports/, or ~/fer-workbench/reports "
                          "when installed, where the notebooks write when run interactively)")
    run.add_argument("--only", help="comma-separated notebook numbers or names, e.g. 01,02")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    add_skip_bad_rows(run, " (every notebook)")
    run.add_argument("--model", help="model for notebooks 04-06: a .keras file, 'shipped' or 'shipped-ferplus' "
                                     "(default: the best on PublicTest of this run's model and the shipped ones whose "
                                     "classes fit, see the README)")
    run.add_argument("--fresh", action="store_true",
                     help="replace the search, models and cleaning an earlier run left in --out (needed when it used "
                          "other settings; review decisions are kept)")
    run.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from fer_workbench.data import resolve_data_path
    from fer_workbench.runner import run_pipeline

    check_label_source(args)
    data_path = resolve_data_path(args.data, args.profile, args.seed)
    if not data_path.exists():
        raise WorkbenchError(f"{data_path}: no such file or directory")
    if args.ferplus and not Path(args.ferplus).exists():
        raise WorkbenchError(f"{args.ferplus}: no such file")
    out = Path(args.out).resolve()
    parameters = {"data_path": str(data_path.resolve()), "profile": args.profile, "seed": args.seed,
                  "ferplus_path": str(Path(args.ferplus).resolve()) if args.ferplus else None,
                  "skip_bad_rows": bool(args.skip_bad_rows), "labels": args.labels}
    if args.model:
        parameters["model_path"] = _model_argument(args.model)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    result = run_pipeline(out, parameters, only=only, progress=not args.quiet, fresh=args.fresh)
    print(f"report: {result.index_path}")
    if not result.ok:
        raise WorkbenchError(result.failure_message())
    return 0


def _model_argument(value: str) -> str:
    """A shipped model's name ("shipped", "shipped-ferplus") or an existing .keras file, as an absolute path."""
    from fer_workbench.config import model_file

    path = model_file(value)
    if not path.is_file():
        raise WorkbenchError(f"{path}: no such model file")
    return str(path.resolve())
