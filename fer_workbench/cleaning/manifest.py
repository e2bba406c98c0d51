"""The cleaning manifest in three steps: ``score_images`` (every per-image score and flag, a DataFrame, no files),
``apply_decisions`` (reviewer decisions and the exclusion policy → what is kept and why) and ``write_cleaning``
(manifest.csv, cleaned.csv, excluded.csv, decisions.json, summary.json). ``run_cleaning`` composes them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fer_workbench.cleaning.duplicates import duplicate_groups, group_table, leaks_across_splits
from fer_workbench.cleaning.imbalance import balancing_plan, imbalance_report
from fer_workbench.cleaning.label_issues import label_issue_scores, out_of_fold_probabilities
from fer_workbench.cleaning.nonface import BLANK_STD, blank_score, image_statistics, nonface_scores
from fer_workbench.cleaning.occlusion import occlusion_scores
from fer_workbench.config import Profile, get_profile
from fer_workbench.data.dataset import Dataset
from fer_workbench.data.fer_csv import write_fer_csv
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import atomic_write_text
from fer_workbench.provenance import run_metadata

FLAGS = ("blank", "nonface", "duplicate", "occlusion", "label_issue")
NONFACE_FLAG = 8.0  # nonface score (robust-z units incl. detector) at which a row is flagged
# Occlusion probability at which a face is flagged for review: flags ~2.6 % of FER2013 (0.5 would flag 14 %);
# on the synthetic default its precision is 1.0 (recall 0.46).
OCCLUSION_FLAG = 0.8
DECISIONS = ("accept", "reject")  # accept: the flag stands (row excluded); reject: reviewer overrules it
# Flags that exclude a row without review, set from the cleaning ablation on real FER2013
# (reports/fer2013/cleaning_ablation.json, README "Does cleaning help?"): removing blank frames and non-faces costs
# nothing (+0.7 pt PrivateTest, interval [-0.0, +1.4]) and they carry no expression; removing redundant exact
# copies cost 1.7 pt and near copies another 1.6 pt (both intervals below 0), so duplicates, like occlusions and
# label issues, exclude only once a reviewer accepts them. Test-split copies never leave: leakage is reported as
# the leakage-free subset instead.
EXCLUDED_BY_DEFAULT = ("blank", "nonface")
SPLIT_KEEP_ORDER = ("PrivateTest", "PublicTest", "Training")  # which copy of a duplicate group is kept
CLEANING_FILES = {"manifest": "manifest.csv", "summary": "summary.json", "cleaned": "cleaned.csv",
                  "excluded": "excluded.csv", "decisions": "decisions.json"}


@dataclass
class CleaningResult:
    manifest: pd.DataFrame
    summary: dict
    paths: dict = field(default_factory=dict)
    duplicate_groups: pd.DataFrame | None = None
    balancing: dict | None = None


def _check_dataset(dataset: Dataset) -> None:
    if len(dataset) == 0:
        raise WorkbenchError(f"{dataset.source or 'dataset'}: no images to clean")
    if len(np.unique(dataset.labels)) < 2:
        raise WorkbenchError(f"{dataset.source or 'dataset'}: only one class "
                             f"({dataset.class_names[int(dataset.labels[0])]}); cleaning needs at least two")


# --------------------------------------------------------------------------------------------- decisions


def load_decisions(source, dataset: Dataset) -> pd.DataFrame:
    """Review decisions (row_id, flag, decision) from a sidecar JSON path or a DataFrame, checked against the
    dataset: a different checksum or unknown row ids raise WorkbenchError instead of being applied."""
    if isinstance(source, pd.DataFrame):
        checksum, frame = source.attrs.get("data_checksum", dataset.checksum), source
    else:
        try:
            payload = json.loads(Path(source).read_text())
        except (OSError, ValueError) as exc:
            raise WorkbenchError(f"{source}: cannot read decisions ({exc})") from None
        checksum, frame = payload.get("data_checksum"), pd.DataFrame(payload.get("decisions", []))
    if checksum != dataset.checksum:
        raise WorkbenchError(f"decisions were made on data {str(checksum)[:12]!r}, this dataset is "
                             f"{dataset.checksum[:12]!r}; they are not applied")
    frame = frame.reindex(columns=["row_id", "flag", "decision"])
    missing = sorted(set(frame["row_id"].astype(int)) - set(dataset.row_ids.tolist()))
    if missing:
        raise WorkbenchError(f"decisions name {len(missing)} row ids not in this dataset (first: {missing[:5]}); "
                             "they are not applied")
    bad = frame[~frame["flag"].isin(FLAGS) | ~frame["decision"].isin(DECISIONS)]
    if len(bad):
        raise WorkbenchError(f"decisions: unknown flag/decision in {len(bad)} rows (flags: {', '.join(FLAGS)}; "
                             f"decisions: {', '.join(DECISIONS)})")
    return frame.astype({"row_id": np.int64}).drop_duplicates(["row_id", "flag"], keep="last")


def save_decisions(path, frame: pd.DataFrame, dataset: Dataset) -> Path:
    """Write decisions as a sidecar keyed by row id and the data checksum (atomic)."""
    payload = {"data_checksum": dataset.checksum, "decisions": frame[["row_id", "flag", "decision"]]
               .astype({"row_id": int}).to_dict(orient="records")}
    return atomic_write_text(path, json.dumps(payload, indent=1))


def manifest_flags(manifest: pd.DataFrame) -> list[str]:
    """The flags a manifest was scored for, in ``FLAGS`` order."""
    return [name for name in FLAGS if f"flag_{name}" in manifest]


def manifest_decisions(manifest: pd.DataFrame) -> pd.DataFrame:
    """The reviewer decisions recorded in a manifest's ``decision_*`` columns (row_id, decision, flag)."""
    return pd.concat([manifest.loc[manifest[f"decision_{n}"] != "", ["row_id", f"decision_{n}"]]
                      .rename(columns={f"decision_{n}": "decision"}).assign(flag=n) for n in manifest_flags(manifest)])


def standing_flags(manifest: pd.DataFrame, exclude_flags=EXCLUDED_BY_DEFAULT) -> dict[str, np.ndarray]:
    """Per flag, the rows it excludes: raised and accepted by a reviewer, or raised, not reviewed and in
    ``exclude_flags``. A rejected flag never excludes."""
    standing = {}
    for name in manifest_flags(manifest):
        decision = manifest[f"decision_{name}"].to_numpy()
        unreviewed_excludes = name in exclude_flags
        standing[name] = manifest[f"flag_{name}"].to_numpy() & ((decision == "accept")
                                                                 | ((decision == "") & unreviewed_excludes))
    return standing


def _joined(flags: dict[str, np.ndarray], n_rows: int) -> list[str]:
    """Per row, the names of the flags that are True there, ';'-joined."""
    columns = {name: np.asarray(values, bool) for name, values in flags.items()}
    return [";".join(name for name, values in columns.items() if values[k]) for k in range(n_rows)]


# --------------------------------------------------------------------------------------------- scoring


def redundant_copies(dataset: Dataset, group: np.ndarray) -> np.ndarray:
    """True for rows that are a redundant copy: every near-group member except one (test copies are kept)."""
    order = {s: k for k, s in enumerate(SPLIT_KEEP_ORDER)}
    rank = np.array([order.get(s, len(order)) for s in dataset.splits])
    frame = pd.DataFrame({"g": group, "rank": rank, "pos": np.arange(len(group))})
    frame = frame[frame.g >= 0].sort_values(["g", "rank", "pos"])
    redundant = np.zeros(len(group), bool)
    redundant[frame.pos[frame.duplicated("g")].to_numpy()] = True
    return redundant


def score_images(dataset: Dataset, profile: str | Profile = "smoke", seed: int = 0, label_issues: bool = True,
                 progress: bool = True) -> pd.DataFrame:
    """One manifest row per image: statistics, non-face, duplicate, occlusion and (with ``label_issues``)
    label-issue scores, each raised flag (``flag_*``, listed in ``flags``), and empty ``decision_*`` columns
    for a reviewer. Writes nothing."""
    _check_dataset(dataset)
    profile = get_profile(profile)
    stats = image_statistics(dataset.images)
    nonface = nonface_scores(dataset.images, stats, haar_top=profile.clean.nonface_detector_rows, seed=seed,
                             progress=progress)
    dups = duplicate_groups(dataset.images)
    near_group = dups["near_group"].to_numpy()
    manifest = dataset.to_frame()
    for name, values in stats.items():
        manifest[name] = values
    manifest["blank_score"] = blank_score(stats)
    for name, values in nonface.items():
        manifest[name] = values
    manifest = pd.concat([manifest, dups], axis=1)
    manifest["cross_split_leak"] = leaks_across_splits(near_group, dataset.splits)
    conflict = group_table(dataset, near_group).set_index("group")["label_conflict"]
    manifest["duplicate_label_conflict"] = manifest["near_group"].map(conflict).fillna(False).astype(bool)

    flags = {"blank": stats["pixel_std"] < BLANK_STD,
             "nonface": nonface["nonface"] >= NONFACE_FLAG,
             "duplicate": redundant_copies(dataset, near_group)}
    manifest["occlusion"] = occlusion_scores(dataset.images, seed=seed, progress=progress)
    # Placeholder icons score high too; they are reported as non-faces, not as occluded faces.
    flags["occlusion"] = (manifest["occlusion"].to_numpy() >= OCCLUSION_FLAG) & ~flags["nonface"] & ~flags["blank"]
    if label_issues:
        probs = out_of_fold_probabilities(dataset.images, dataset.labels, len(dataset.class_names),
                                          folds=profile.clean.label_issue_folds, model=profile.clean.label_issue_model,
                                          epochs=profile.clean.label_issue_epochs, seed=seed, progress=progress)
        quality, issues = label_issue_scores(dataset.labels, probs)
        manifest["label_quality"] = quality
        manifest["predicted_label"] = probs.argmax(axis=1)
        manifest["predicted_confidence"] = probs.max(axis=1)
        # Non-faces and blanks have no true expression: their label issue is reported under those flags.
        flags["label_issue"] = issues & ~flags["nonface"] & ~flags["blank"]
    for name, values in flags.items():
        manifest[f"flag_{name}"] = values
        manifest[f"decision_{name}"] = ""
    manifest["flags"] = _joined(flags, len(dataset))
    return manifest


def apply_decisions(manifest: pd.DataFrame, dataset: Dataset, decisions=None,
                    exclude_flags=EXCLUDED_BY_DEFAULT) -> pd.DataFrame:
    """A copy of a scored manifest with reviewer ``decisions`` (anything ``load_decisions`` reads; decisions on
    flags the manifest was not scored for are left out) in its ``decision_*`` columns, the flags that stand per
    row (``reason``) and whether the row is ``excluded`` (see ``standing_flags``)."""
    manifest = manifest.copy()
    decided = load_decisions(decisions, dataset) if decisions is not None else None
    if decided is not None and len(decided):
        position = pd.Series(np.arange(len(manifest)), index=manifest["row_id"].to_numpy())
        for flag, rows in decided.groupby("flag"):
            if f"decision_{flag}" in manifest:
                manifest.loc[position[rows["row_id"]].to_numpy(), f"decision_{flag}"] = rows["decision"].to_numpy()
    standing = standing_flags(manifest, exclude_flags)
    manifest["reason"] = _joined(standing, len(manifest))
    manifest["excluded"] = np.logical_or.reduce(list(standing.values()))
    return manifest


# --------------------------------------------------------------------------------------------- summary, files


def _ferplus_comparison(manifest: pd.DataFrame, ferplus, dataset: Dataset) -> dict:
    from sklearn.metrics import average_precision_score

    from fer_workbench.data.ferplus import FerPlusVotes, load_ferplus

    votes = ferplus if isinstance(ferplus, FerPlusVotes) else load_ferplus(ferplus)
    votes = votes.align(dataset)
    dropped = votes.dropped
    out = {"ferplus_source": votes.source, "ferplus_dropped": int(dropped.sum())}
    if dropped.any():
        score = manifest["nonface"].to_numpy()
        top = np.argsort(-score, kind="stable")[:50]
        out.update(nonface_ap_vs_dropped=float(average_precision_score(dropped, score)),
                   nonface_precision_top50=float(dropped[top].mean()))
    if "label_quality" in manifest:
        differs = votes.majority_label != dataset.labels
        top = np.argsort(manifest["label_quality"].to_numpy(), kind="stable")[:500]
        out.update(label_issue_top500_ferplus_differs=float(differs[top].mean()),
                   ferplus_differs_base_rate=float(differs[~dropped].mean()))
    return out


def _duplicate_counts(manifest: pd.DataFrame, near: pd.DataFrame) -> dict:
    exact, near_group = manifest["exact_group"], manifest["near_group"]
    return {"exact_groups": int(exact.max() + 1), "exact_rows": int((exact >= 0).sum()),
            "near_groups": len(near), "near_rows": int((near_group >= 0).sum()),
            "near_not_exact_rows": int(((near_group >= 0) & (exact < 0)).sum()),
            "cross_split_groups": int(near["cross_split"].sum()) if len(near) else 0,
            "label_conflict_groups": int(near["label_conflict"].sum()) if len(near) else 0}


def write_cleaning(out_dir, manifest: pd.DataFrame, dataset: Dataset, summary: dict) -> dict[str, str]:
    """Write a decided manifest's files under ``out_dir``, each atomically and summary.json last: manifest.csv,
    cleaned.csv (the kept rows as FER2013 CSV with their source row ids), excluded.csv (row and reason),
    decisions.json (every decision, for the next run). Returns their paths by ``CLEANING_FILES`` key."""
    paths = {key: Path(out_dir) / name for key, name in CLEANING_FILES.items()}
    excluded = manifest["excluded"].to_numpy(bool)
    atomic_write_text(paths["manifest"], manifest.to_csv(index=False))
    # row_id keeps each image's source row, so FER+ votes and synthetic truth still line up with the export.
    write_fer_csv(paths["cleaned"], dataset.subset(~excluded), row_ids=True)
    atomic_write_text(paths["excluded"], manifest.loc[excluded, ["row_id", "split", "label", "label_name", "reason"]]
                      .to_csv(index=False))
    save_decisions(paths["decisions"], manifest_decisions(manifest), dataset)
    atomic_write_text(paths["summary"], json.dumps(summary, indent=1, default=str))
    return {key: str(path) for key, path in paths.items()}


def run_cleaning(dataset: Dataset, out_dir, profile: str | Profile = "smoke", seed: int = 0, ferplus=None,
                 decisions=None, label_issues: bool = True, imbalance_strategy: str = "class_weights",
                 exclude_flags=EXCLUDED_BY_DEFAULT, progress: bool = True) -> CleaningResult:
    """Score every image, apply ``decisions`` and ``exclude_flags`` (see ``apply_decisions``), and write
    manifest.csv, summary.json, cleaned.csv, excluded.csv and decisions.json under ``out_dir``; the source file
    is only read. FER+ (path or FerPlusVotes) only scores, never fits."""
    _check_dataset(dataset)
    profile = get_profile(profile)
    decided = load_decisions(decisions, dataset) if decisions is not None else None  # refused before any work
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    manifest = apply_decisions(score_images(dataset, profile, seed=seed, label_issues=label_issues,
                                            progress=progress), dataset, decided, exclude_flags)
    excluded = manifest["excluded"].to_numpy()
    kept = dataset.subset(~excluded)
    plan = balancing_plan(kept.labels, len(dataset.class_names), imbalance_strategy, seed=seed) \
        if len(np.unique(kept.labels)) >= 2 else None
    near = group_table(dataset, manifest["near_group"].to_numpy())
    standing = standing_flags(manifest, exclude_flags)
    summary = run_metadata(seed=seed, profile=profile.to_dict(), data_checksum=dataset.checksum,
                           data_source=dataset.source)
    summary.update(
        rows=len(dataset), excluded=int(excluded.sum()), kept=len(kept),
        flagged={n: int(manifest[f"flag_{n}"].sum()) for n in standing},
        excluded_by={n: int(rows.sum()) for n, rows in standing.items()}, excluded_without_review=list(exclude_flags),
        duplicates=_duplicate_counts(manifest, near),
        imbalance={"before": imbalance_report(dataset.labels, dataset.class_names).to_dict(orient="list"),
                   "after": imbalance_report(kept.labels, dataset.class_names).to_dict(orient="list"),
                   "strategy": imbalance_strategy,
                   "class_weights": None if plan is None else plan["class_weights"].round(4).tolist()},
        decisions_applied=0 if decided is None else len(decided),
    )
    if ferplus is not None:
        summary["ferplus"] = _ferplus_comparison(manifest, ferplus, dataset)
    paths = write_cleaning(out_dir, manifest, dataset, summary)
    return CleaningResult(manifest=manifest, summary=summary, paths=paths, duplicate_groups=near, balancing=plan)


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """A manifest written by run_cleaning (flags as bools, decisions as strings)."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    for col in [c for c in frame if c.startswith("decision_") or c in ("flags", "reason")]:
        frame[col] = frame[col].astype(object).where(frame[col].notna(), "").astype(str)
    return frame
