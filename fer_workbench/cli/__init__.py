"""`fer-workbench`: thin subcommands over the package. Errors become one line on stderr and a non-zero exit.

Each subcommand is a pair: ``_add_<name>(commands)`` declares its options, ``cmd_<name>(args)`` runs it; the pairs
live in one module per concern (pipeline, training, cleaning, inference, data) and ``SUBCOMMANDS`` lists them in
--help order. Allowed values come from the modules that own them: argparse checks the light ones (profiles,
detectors, imbalance strategies, distributed roles; see ``common.Owned``), and the owners of model names and tuner
kinds, which need TensorFlow, check those themselves when the subcommand reaches them
(``fer_workbench.training.resolve_config``, ``fer_workbench.tuning.make_tuner``) once the data is known to be good:
neither ``--help`` nor a wrong option loads TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from fer_workbench import __version__
from fer_workbench.cli.cleaning import _add_ablate_cleaning, _add_clean, cmd_ablate_cleaning, cmd_clean
from fer_workbench.cli.data import _add_data, cmd_data_clear_cache, cmd_data_default, cmd_data_summary
from fer_workbench.cli.inference import _add_evaluate, _add_predict, cmd_evaluate, cmd_predict
from fer_workbench.cli.pipeline import _add_run, cmd_run
from fer_workbench.cli.training import (
    _add_model_card,
    _add_probe,
    _add_ship,
    _add_train,
    _add_tune,
    cmd_model_card,
    cmd_probe,
    cmd_ship,
    cmd_train,
    cmd_tune,
)
from fer_workbench.errors import WorkbenchError, one_line

__all__ = ["SUBCOMMANDS", "build_parser", "check_paths", "cmd_ablate_cleaning", "cmd_clean", "cmd_data_clear_cache",
           "cmd_data_default", "cmd_data_summary", "cmd_evaluate", "cmd_model_card", "cmd_predict", "cmd_probe",
           "cmd_run", "cmd_ship", "cmd_train", "cmd_tune", "main"]


def _one_line_warnings(message, category, filename, lineno, file=None, line=None):
    print(f"fer-workbench: warning: {one_line(message)}", file=sys.stderr)


def check_paths(args) -> None:
    """Refuse unusable paths before any work starts: an output directory (``--out``) or file (``ship --to``) that
    is a file / a directory or cannot be created, and input files (``--config``, ``--ferplus``, ``--decisions``,
    ``--manifest``, ``--probes``, a ``--model`` file) that are not regular files. Every subcommand goes through this,
    from ``main``, before TensorFlow is imported."""
    from fer_workbench.config import model_file
    from fer_workbench.files import check_output_dir, check_output_file

    if getattr(args, "out", None):
        check_output_dir(args.out, "--out")
    if getattr(args, "to", None):
        check_output_file(args.to, "--to")
    model_is_file = args.command not in ("train", "ablate-cleaning")  # their --model names an architecture
    for option in ("config", "ferplus", "decisions", "model", "manifest", "probes"):
        value = getattr(args, option, None)
        if not value or (option == "model" and not model_is_file):
            continue
        path = model_file(value) if option == "model" else Path(value).expanduser()
        if option == "decisions" and not path.exists():
            continue  # written later by the review widget; absent means "no decisions yet"
        kind = "model file" if option == "model" else "file"
        if not path.exists():
            raise WorkbenchError(f"--{option} {path}: no such {kind}")
        if not path.is_file():
            raise WorkbenchError(f"--{option} {path}: not a regular {kind}")


# ------------------------------------------------------------------------------------------ the command


SUBCOMMANDS = (_add_run, _add_train, _add_probe, _add_tune, _add_clean, _add_ablate_cleaning, _add_ship,
               _add_model_card, _add_evaluate, _add_predict, _add_data)


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

