"""`fer-workbench data ...`: dataset utilities (summary, the synthetic default dataset, the parsed-data cache)."""

from __future__ import annotations

from fer_workbench.cli.common import add_json, add_profile_and_seed, add_skip_bad_rows, print_json
from fer_workbench.errors import one_line

# ------------------------------------------------------------------------------------------ data ...


def _add_data(commands) -> None:
    data = commands.add_parser("data", help="dataset utilities").add_subparsers(dest="data_command", required=True)
    summary = data.add_parser("summary", help="counts per split × class, duplicates, blank images, checksum")
    summary.add_argument("path")
    add_json(summary)
    add_skip_bad_rows(summary)
    summary.set_defaults(func=cmd_data_summary)
    default = data.add_parser("make-default", help="write the synthetic default dataset and print its path")
    add_profile_and_seed(default)
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
        print_json(summary)
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
