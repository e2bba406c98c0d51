"""What several subcommands share: the options they declare alike (``Owned``: allowed values read from the module
that owns them, only when argparse needs them) and how they write to stdout."""

from __future__ import annotations

import contextlib
import importlib
import json
import sys

from fer_workbench.config import DEFAULT_SEED, PROFILES

SKIP_BAD_ROWS_HELP = "drop malformed CSV rows / unreadable images (and report them) instead of failing"
DATA_HELP = "FER2013 CSV or image folder; default: the synthetic dataset"


def progress_to_stderr(enabled: bool):
    """With --json, stdout carries only the JSON document: Keras / keras-tuner progress goes to stderr."""
    return contextlib.redirect_stdout(sys.stderr) if enabled else contextlib.nullcontext()


def print_json(value) -> None:
    print(json.dumps(value, indent=2, default=str))


# ------------------------------------------------------------------------------------------ options many share


class Owned:
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


def add_owned_choice(parser, flag: str, owner: Owned, **kwargs) -> None:
    """Option ``flag`` restricted to ``owner``'s values. argparse formats an option's metavar (from its choices)
    as soon as the option is added, so a placeholder stands in until then and the choices show in --help."""
    action = parser.add_argument(flag, choices=owner, metavar=flag.lstrip("-").upper(), **kwargs)
    action.metavar = None


def add_profile_and_seed(parser) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default="smoke")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)


def add_skip_bad_rows(parser, scope: str = "") -> None:
    parser.add_argument("--skip-bad-rows", action="store_true", help=SKIP_BAD_ROWS_HELP + scope)


def add_json(parser) -> None:
    parser.add_argument("--json", action="store_true")


def add_label_source(parser) -> None:
    """``--labels SOURCE`` (``data.labels.LABEL_SOURCES``) and ``--ferplus VOTES``, which the FER+ sources need."""
    parser.add_argument("--ferplus", metavar="VOTES", help="FER+ votes file (fer2013new.csv), for --labels ferplus-*")
    add_owned_choice(parser, "--labels", Owned("fer_workbench.data.labels", "LABEL_SOURCES"), default="fer2013",
                     help="which labels to train / judge on: fer2013 (the data's own, default), ferplus-majority "
                          "or ferplus-soft (FER+ crowd votes; 8 classes with contempt; needs --ferplus)")


def check_label_source(args) -> None:
    """Refuse a FER+ label source without its votes file, before any data is read."""
    from fer_workbench.errors import WorkbenchError

    if args.labels != "fer2013" and not args.ferplus:
        raise WorkbenchError(f"--labels {args.labels} needs --ferplus VOTES (the FER+ votes file, fer2013new.csv)")


def labelled(args, dataset):
    """``dataset`` under the label source the command was given (``--labels``, ``--ferplus``)."""
    from fer_workbench.data import with_label_source

    return with_label_source(dataset, args.ferplus, args.labels)

