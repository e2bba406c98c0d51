"""Subcommands about cleaning the data: `clean` (score, decide, export) and `ablate-cleaning` (what it buys)."""

from __future__ import annotations

import sys
from pathlib import Path

from fer_workbench.cli.common import (
    DATA_HELP,
    Owned,
    add_json,
    add_owned_choice,
    add_profile_and_seed,
    add_skip_bad_rows,
    print_json,
    progress_to_stderr,
)
from fer_workbench.config import PROFILES
from fer_workbench.errors import WorkbenchError

# ------------------------------------------------------------------------------------------ clean


def _add_clean(commands) -> None:
    clean = commands.add_parser("clean", help="score every image (non-face, blank, duplicates, label issues), "
                                              "write a manifest and a cleaned export")
    clean.add_argument("--data", help=DATA_HELP)
    clean.add_argument("--ferplus", help="FER+ votes, used only to score the flags")
    clean.add_argument("--out", required=True, help="directory for manifest.csv, summary.json, cleaned.csv, ...")
    add_profile_and_seed(clean)
    clean.add_argument("--decisions", help="review decisions to apply (default: OUT/decisions.json when present)")
    add_owned_choice(clean, "--imbalance", Owned("fer_workbench.cleaning.imbalance", "STRATEGIES"),
                      default="class_weights")
    clean.add_argument("--no-label-issues", action="store_true", help="skip the cleanlab step")
    add_skip_bad_rows(clean)
    add_json(clean)
    clean.set_defaults(func=cmd_clean)


def cmd_clean(args) -> int:
    from fer_workbench.cleaning import run_cleaning
    from fer_workbench.cleaning.review import overview
    from fer_workbench.data import load_dataset, load_ferplus, resolve_data_path

    dataset = load_dataset(resolve_data_path(args.data, args.profile, args.seed), skip_bad_rows=args.skip_bad_rows)
    ferplus = load_ferplus(args.ferplus) if args.ferplus else None
    decisions = args.decisions or (Path(args.out) / "decisions.json")
    with progress_to_stderr(args.json):
        result = run_cleaning(dataset, args.out, profile=args.profile, seed=args.seed, ferplus=ferplus,
                              decisions=decisions if Path(decisions).exists() else None,
                              label_issues=not args.no_label_issues, imbalance_strategy=args.imbalance,
                              progress=not args.json)
    if args.json:
        print_json({**{k: v for k, v in result.summary.items() if k != "packages"}, "paths": result.paths})
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
    add_skip_bad_rows(ablate)
    add_json(ablate)
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
    with progress_to_stderr(args.json):
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
        print_json({"summary": summary.to_dict(orient="records"), "paths": {k: str(v) for k, v in paths.items()},
                     "trained_now": ablation.trained_now})
        return 0
    print(summary_text(summary))
    for name, path in paths.items():
        print(f"{name:>8}: {path}")
    return 0
