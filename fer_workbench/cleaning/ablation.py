"""The cleaning ablation: does cleaning help? One network, recipe and budget trained on Training sets that differ
only in what cleaning removed (or relabelled, or weighted), several seeds each, every variant evaluated on the full,
untouched PublicTest and PrivateTest against the original labels and the FER+ majority, and on the leakage-free
subset; each variant's difference from raw (and from the step it builds on) gets a paired bootstrap interval.

``run_cleaning_ablation`` writes ``results.json`` after every finished (variant, seed) cell, so a killed study
restarts where it stopped; a cell interrupted mid-training resumes from its last epoch (``training.train``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fer_workbench.cleaning.duplicates import leakage_free_mask
from fer_workbench.cleaning.imbalance import balancing_plan
from fer_workbench.cleaning.manifest import FLAGS, redundant_copies, standing_flags
from fer_workbench.config import Profile, get_profile
from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import atomic_write_text, sha256_bytes
from fer_workbench.provenance import read_resumable

TEST_SPLITS = ("PublicTest", "PrivateTest")
LABEL_SOURCES = ("original", "ferplus")  # the dataset's labels; FER+ majority (rows that have one)
SUBSETS = ("all", "leakage_free")  # the whole split; its rows with no byte-identical copy in raw Training
REMOVALS = ("blank", "nonface", "exact_duplicate", "near_duplicate", "label_issue")
RESULTS_FILE = "results.json"
REPORT_FILE = "cleaning_ablation.json"
FIGURE_FILE = "cleaning_ablation.png"


@dataclass(frozen=True)
class AblationVariant:
    """One Training set: the flags whose rows are removed, whether label issues are relabelled to the FER+
    majority instead, whether class-balanced weights are on, and the variant it adds one change to."""

    name: str
    removes: tuple[str, ...]
    parent: str | None
    relabel_label_issues: bool = False
    class_weighted: bool = False
    description: str = ""


# Cumulative, in the order the issue lists them; the last two each change one thing of the default policy's set.
ABLATION_VARIANTS: tuple[AblationVariant, ...] = (
    AblationVariant("raw", (), None, description="every Training row"),
    AblationVariant("minus_nonface", ("blank", "nonface"), "raw", description="minus blank frames and non-faces"),
    AblationVariant("minus_exact_dups", ("blank", "nonface", "exact_duplicate"), "minus_nonface",
                    description="also minus redundant byte-identical copies"),
    AblationVariant("minus_near_dups", ("blank", "nonface", "exact_duplicate", "near_duplicate"), "minus_exact_dups",
                    description="also minus redundant near-duplicate copies (the clean default before this study; "
                                "no longer, see cleaning.manifest.EXCLUDED_BY_DEFAULT)"),
    AblationVariant("minus_label_issues", ("blank", "nonface", "exact_duplicate", "near_duplicate", "label_issue"),
                    "minus_near_dups", description="also minus cleanlab label issues"),
    AblationVariant("relabel_label_issues", ("blank", "nonface", "exact_duplicate", "near_duplicate"),
                    "minus_near_dups", relabel_label_issues=True,
                    description="label issues relabelled to the FER+ majority where it exists, not dropped"),
    AblationVariant("class_weighted", ("blank", "nonface", "exact_duplicate", "near_duplicate"), "minus_near_dups",
                    class_weighted=True, description="class-balanced loss weights (effective number of samples)"),
)
VARIANT_NAMES = tuple(v.name for v in ABLATION_VARIANTS)


def get_variant(name: str) -> AblationVariant:
    for variant in ABLATION_VARIANTS:
        if variant.name == name:
            return variant
    raise WorkbenchError(f"unknown cleaning-ablation variant {name!r}; choose from {', '.join(VARIANT_NAMES)}")


# ------------------------------------------------------------------------------------------------ training rows


def check_manifest(manifest: pd.DataFrame, dataset: Dataset) -> None:
    """Refuse a manifest that does not describe this dataset row for row (row id, split and label)."""
    missing = [c for c in ("row_id", "split", "label", "exact_group", *(f"flag_{f}" for f in FLAGS[:3]))
               if c not in manifest]
    if missing:
        raise WorkbenchError(f"cleaning manifest lacks column(s) {', '.join(missing)}; is it a manifest.csv from "
                             "`fer-workbench clean`?")
    same = (len(manifest) == len(dataset)
            and np.array_equal(manifest["row_id"].to_numpy(np.int64), dataset.row_ids.astype(np.int64))
            and np.array_equal(manifest["split"].astype(str).to_numpy(), dataset.splits.astype(str))
            and np.array_equal(manifest["label"].to_numpy(np.int64), dataset.labels.astype(np.int64)))
    if not same:
        name = dataset.source or "this dataset"
        raise WorkbenchError(f"cleaning manifest ({len(manifest)} rows) does not describe {name} ({len(dataset)} "
                             "rows): row ids, splits or labels differ")


def _majority(ferplus, dataset: Dataset) -> np.ndarray:
    """The FER+ majority label per dataset row (-1: none), from votes aligned to the dataset."""
    return ferplus.align(dataset).majority_label


def removal_masks(manifest: pd.DataFrame, dataset: Dataset) -> dict[str, np.ndarray]:
    """Per removal in ``REMOVALS``, the rows it removes (any split; training uses the Training ones). A flag a
    reviewer rejected removes nothing; every other raised flag does. Exact duplicates: every byte-identical copy
    but one (a test copy is the one kept, as for near duplicates)."""
    standing = standing_flags(manifest, exclude_flags=FLAGS)
    rejected_dup = manifest.get("decision_duplicate", pd.Series([""] * len(manifest))).to_numpy() == "reject"
    masks = {"blank": standing["blank"], "nonface": standing["nonface"],
             "exact_duplicate": redundant_copies(dataset, manifest["exact_group"].to_numpy(np.int64))
             & ~rejected_dup,
             "near_duplicate": standing["duplicate"]}
    if "label_issue" in standing:
        masks["label_issue"] = standing["label_issue"]
    return masks


def variant_training_rows(manifest: pd.DataFrame, dataset: Dataset, variant: AblationVariant | str, ferplus=None,
                          masks: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(dataset positions, labels) of the Training rows ``variant`` trains on; labels are the dataset's, or the
    FER+ majority for relabelled label issues that have one."""
    variant = get_variant(variant) if isinstance(variant, str) else variant
    masks = removal_masks(manifest, dataset) if masks is None else masks
    needs_label_issues = "label_issue" in variant.removes or variant.relabel_label_issues
    if needs_label_issues and "label_issue" not in masks:
        raise WorkbenchError(f"variant {variant.name} needs label issues, but the manifest was scored without "
                             "them (clean without --no-label-issues)")
    if variant.relabel_label_issues and ferplus is None:
        raise WorkbenchError(f"variant {variant.name} relabels to the FER+ majority: pass the FER+ votes (--ferplus)")
    removed = np.zeros(len(dataset), bool)
    for name in variant.removes:
        removed |= masks[name]
    keep = np.flatnonzero((dataset.splits == "Training") & ~removed)
    labels = dataset.labels[keep].astype(np.int64)
    if variant.relabel_label_issues:
        majority = _majority(ferplus, dataset)[keep]
        relabel = masks["label_issue"][keep] & (majority >= 0)
        labels = np.where(relabel, majority, labels)
    return keep, labels


def _variant_dataset(dataset: Dataset, positions: np.ndarray, labels: np.ndarray) -> Dataset:
    """The variant's Training rows (with its labels) and every PublicTest / PrivateTest row, untouched."""
    tests = np.flatnonzero(np.isin(dataset.splits, TEST_SPLITS))
    part = dataset.subset(np.concatenate([positions, tests]))
    return replace(part, labels=np.concatenate([labels, dataset.labels[tests]]).astype(part.labels.dtype))


# ------------------------------------------------------------------------------------------------- evaluation


@dataclass
class ScoringTargets:
    """Per test split and label source: the labels scored against, the split positions that have them, and the
    leakage-free mask over those positions."""

    labels: dict = field(default_factory=dict)  # (split, source) -> labels
    rows: dict = field(default_factory=dict)  # (split, source) -> positions within the split
    subsets: dict = field(default_factory=dict)  # (split, source, subset) -> bool over ``rows``

    def keys(self):
        return list(self.labels)


def scoring_targets(dataset: Dataset, ferplus=None) -> ScoringTargets:
    """What every cell is scored against: original labels on every test row; the FER+ majority where it exists."""
    targets = ScoringTargets()
    majority = None if ferplus is None else _majority(ferplus, dataset)
    for split in TEST_SPLITS:
        if split not in dataset.split_names():
            raise WorkbenchError(f"{dataset.source or 'dataset'}: no {split} split to evaluate the ablation on")
        in_split = dataset.splits == split
        free = leakage_free_mask(dataset, split)
        sources = {"original": dataset.labels[in_split].astype(np.int64)}
        if majority is not None:
            sources["ferplus"] = majority[in_split].astype(np.int64)
        for source, labels in sources.items():
            rows = np.flatnonzero(labels >= 0)
            targets.labels[split, source] = labels[rows]
            targets.rows[split, source] = rows
            targets.subsets[split, source, "all"] = np.ones(len(rows), bool)
            targets.subsets[split, source, "leakage_free"] = free[rows]
    return targets


def _encode(predicted: np.ndarray) -> str:
    return "".join(map(str, np.asarray(predicted, np.int64).tolist()))


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("ascii"), np.uint8).astype(np.int64) - ord("0")


def correctness(predictions: dict[str, str], targets: ScoringTargets) -> dict[tuple[str, str], np.ndarray]:
    """Per (split, label source), whether each scored image was predicted right (bool over ``targets.rows``)."""
    out = {}
    for (split, source), labels in targets.labels.items():
        predicted = _decode(predictions[split])[targets.rows[split, source]]
        out[split, source] = predicted == labels
    return out


def accuracy_rows(predictions: dict[str, str], targets: ScoringTargets) -> list[dict]:
    """Accuracy and n per (split, label source, subset) of one cell's predictions."""
    rows = []
    for (split, source), right in correctness(predictions, targets).items():
        for subset in SUBSETS:
            mask = targets.subsets[split, source, subset]
            rows.append({"split": split, "label_source": source, "subset": subset, "n": int(mask.sum()),
                         "accuracy": float(right[mask].mean()) if mask.any() else float("nan")})
    return rows


# ---------------------------------------------------------------------------------------------------- the study


@dataclass
class CleaningAblation:
    """A study's cells (one per finished (variant, seed)), what they were scored against, and where it lives."""

    study: dict
    cells: list[dict]
    targets: ScoringTargets
    out_dir: Path
    trained_now: list[tuple[str, int]] = field(default_factory=list)  # cells fitted in this call (not restored)

    def table(self) -> pd.DataFrame:
        """Long table: variant, seed, rows_trained, split, label_source, subset, accuracy, n."""
        rows = [{"variant": c["variant"], "seed": c["seed"], "rows_trained": c["rows_trained"], **row}
                for c in self.cells for row in c["accuracy"]]
        return pd.DataFrame(rows, columns=["variant", "seed", "rows_trained", "split", "label_source", "subset",
                                           "accuracy", "n"])


def ablation_recipe(profile: Profile | str, model: str | None = None, epochs: int | None = None) -> dict:
    """The TrainConfig fields every cell trains with: the profile's ablation model, epochs and recipe."""
    profile = get_profile(profile)
    recipe = {"model": model or profile.clean.ablation_model, **dict(profile.clean.ablation_recipe),
              "epochs": int(epochs if epochs is not None else profile.clean.ablation_epochs)}
    if recipe["epochs"] < 1:
        raise WorkbenchError(f"the ablation needs at least one epoch, got {recipe['epochs']}")
    return recipe


def _manifest_digest(masks: dict[str, np.ndarray]) -> str:
    return sha256_bytes(b"".join(name.encode() + np.packbits(masks[name]).tobytes() for name in sorted(masks)))


def _read_results(path: Path, study: dict) -> list[dict]:
    """The finished cells of the study in ``path``; another study there is refused rather than mixed in."""
    saved = read_resumable(path, "study", study, "ablation results",
                           f"{path} holds a different cleaning ablation", "use another --out")
    return list((saved or {}).get("cells", []))


def _check_seeds(seeds) -> list[int]:
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise WorkbenchError(f"the ablation needs one or more distinct seeds, got {seeds}")
    return seeds


def run_cleaning_ablation(dataset: Dataset, manifest: pd.DataFrame, out_dir: str | os.PathLike, variants=None,
                          seeds=None, model: str | None = None, epochs: int | None = None, ferplus=None,
                          profile: Profile | str = "cpu", progress: bool = True) -> CleaningAblation:
    """Train every (variant, seed) cell not already in ``out_dir``/results.json and score it; the file is
    rewritten (atomically) after each cell. ``variants`` default: all of ``ABLATION_VARIANTS`` (the relabelling one
    only with ``ferplus``, FER+ votes); ``seeds``, ``model`` and ``epochs`` default to the profile's ``clean``
    section. Each cell's run directory is ``out_dir``/<variant>/seed=<seed>."""
    from fer_workbench.data.ferplus import FerPlusVotes, load_ferplus

    profile = get_profile(profile)
    if ferplus is not None and not isinstance(ferplus, FerPlusVotes):
        ferplus = load_ferplus(ferplus)
    chosen = [v if isinstance(v, AblationVariant) else get_variant(v) for v in variants] if variants is not None else \
        [v for v in ABLATION_VARIANTS if ferplus is not None or not v.relabel_label_issues]
    if "raw" not in [v.name for v in chosen]:
        raise WorkbenchError("the ablation compares every variant with raw: include the raw variant")
    seeds = _check_seeds(profile.clean.ablation_seeds if seeds is None else seeds)
    check_manifest(manifest, dataset)
    masks = removal_masks(manifest, dataset)
    targets = scoring_targets(dataset, ferplus)  # refuses FER+ votes not aligned with the data, before any training
    training = {v.name: variant_training_rows(manifest, dataset, v, ferplus, masks) for v in chosen}
    recipe = ablation_recipe(profile, model, epochs)
    study = {"data_checksum": dataset.checksum, "manifest": _manifest_digest(masks), "recipe": recipe,
             "profile": profile.name, "ferplus": None if ferplus is None else ferplus.checksum}
    out = Path(out_dir)
    results_path = out / RESULTS_FILE
    cells = _read_results(results_path, study)
    done = {(c["variant"], c["seed"]) for c in cells}
    todo = [(v, s) for v in chosen for s in seeds if (v.name, s) not in done]
    trained_now = []
    if todo:
        from fer_workbench.inference import predict_proba
        from fer_workbench.training import train

        for variant, seed in tqdm(todo, desc="cleaning ablation", disable=not progress):
            positions, labels = training[variant.name]
            weights = None
            if variant.class_weighted:
                plan = balancing_plan(labels, len(dataset.class_names), "class_weights", seed=seed)
                weights = {k: float(w) for k, w in enumerate(plan["class_weights"])}
            start = time.perf_counter()
            result = train(_variant_dataset(dataset, positions, labels), recipe["model"],
                           out / variant.name / f"seed={seed}", profile=profile, seed=seed, class_weight=weights,
                           train_rows=0, verbose=0, **{k: v for k, v in recipe.items() if k != "model"})
            predictions = {split: _encode(predict_proba(result.model, dataset.split(split).images).argmax(1))
                           for split in TEST_SPLITS}
            cells.append({"variant": variant.name, "seed": seed, "rows_trained": len(positions),
                          "relabelled": int((labels != dataset.labels[positions]).sum()),
                          "class_weights": None if weights is None else list(weights.values()),
                          "epochs": int(result.history["epoch"].max()) if len(result.history) else 0,
                          "train_seconds": round(result.seconds, 1),
                          "images_per_second": round(result.images_per_second, 1),
                          "cell_seconds": round(time.perf_counter() - start, 1),
                          "accuracy": accuracy_rows(predictions, targets), "predictions": predictions})
            trained_now.append((variant.name, seed))
            atomic_write_text(results_path, json.dumps({"study": study, "cells": cells}))
    wanted = {(v.name, s) for v in chosen for s in seeds}
    return CleaningAblation(study=study, cells=[c for c in cells if (c["variant"], c["seed"]) in wanted],
                            targets=targets, out_dir=out, trained_now=trained_now)


# ------------------------------------------------------------------------------------------------- statistics


def paired_bootstrap(correct_a: np.ndarray, correct_b: np.ndarray, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float]:
    """Mean of b − a over images and its percentile bootstrap interval, resampling images (paired: both are
    scored on the same images; per-image values may be averages over seeds)."""
    a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise WorkbenchError(f"paired bootstrap needs two equal-length, non-empty vectors, got {a.shape} and "
                             f"{b.shape}")
    diff = b - a
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // len(diff))
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        means[start:stop] = diff[rng.integers(0, len(diff), (stop - start, len(diff)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(diff.mean()), float(low), float(high)


def verdict(low: float, high: float) -> str:
    """"better" / "worse" only when the interval excludes 0."""
    return "better" if low > 0 else "worse" if high < 0 else "no difference"


def ablation_summary(ablation: CleaningAblation, n_boot: int = 2000, seed: int = 0, level: float = 0.95
                     ) -> pd.DataFrame:
    """Per variant, split, label source and subset: seeds, rows trained, accuracy mean ± std over seeds, and the
    difference from raw and from its parent variant (paired by test image, seeds averaged per image) with its
    bootstrap interval and verdict."""
    by_variant: dict[str, list[dict]] = {}
    for cell in ablation.cells:
        by_variant.setdefault(cell["variant"], []).append(cell)
    if "raw" not in by_variant:
        raise WorkbenchError("no finished raw cell to compare with")
    mean_correct = {}  # (variant, split, source) -> per-image share of seeds that got it right
    for name, cells in by_variant.items():
        per_seed = [correctness(c["predictions"], ablation.targets) for c in cells]
        for key in ablation.targets.keys():
            mean_correct[(name, *key)] = np.mean([p[key] for p in per_seed], axis=0)
    table = ablation.table()
    rows = []
    order = [v.name for v in ABLATION_VARIANTS if v.name in by_variant]
    for name in order:
        parent = get_variant(name).parent
        for (split, source, subset), mask in ablation.targets.subsets.items():
            accs = table.loc[(table.variant == name) & (table.split == split) & (table.label_source == source)
                             & (table.subset == subset), "accuracy"].to_numpy()
            row = {"variant": name, "split": split, "label_source": source, "subset": subset, "n": int(mask.sum()),
                   "seeds": len(accs), "rows_trained": int(by_variant[name][0]["rows_trained"]),
                   "accuracy_mean": float(accs.mean()), "accuracy_std": float(accs.std(ddof=1)) if len(accs) > 1
                   else float("nan")}
            for against, label in (("raw", "raw"), (parent, "parent")):
                if name == "raw" or against is None or against not in by_variant:
                    row.update({f"vs_{label}": against if label == "parent" else "raw", f"diff_vs_{label}": np.nan,
                                f"low_vs_{label}": np.nan, f"high_vs_{label}": np.nan, f"verdict_vs_{label}": ""})
                    continue
                diff, low, high = paired_bootstrap(mean_correct[(against, split, source)][mask],
                                                   mean_correct[(name, split, source)][mask], n_boot, seed, level)
                row.update({f"vs_{label}": against, f"diff_vs_{label}": diff, f"low_vs_{label}": low,
                            f"high_vs_{label}": high, f"verdict_vs_{label}": verdict(low, high)})
            rows.append(row)
    return pd.DataFrame(rows)


def report_document(ablation: CleaningAblation, summary: pd.DataFrame, command: str | None = None) -> dict:
    """What ``cleaning_ablation.json`` holds: the study, every cell's accuracies (no per-image data) and the
    summary table."""
    cells = [{k: v for k, v in c.items() if k != "predictions"} for c in ablation.cells]
    variants = {v.name: {"removes": list(v.removes), "relabel_label_issues": v.relabel_label_issues,
                         "class_weighted": v.class_weighted, "parent": v.parent, "description": v.description}
                for v in ABLATION_VARIANTS if any(c["variant"] == v.name for c in cells)}
    return {"study": ablation.study, "command": command, "variants": variants, "cells": cells,
            "summary": json.loads(summary.to_json(orient="records"))}


def write_report(ablation: CleaningAblation, summary: pd.DataFrame, report_dir: str | os.PathLike,
                 command: str | None = None) -> dict[str, Path]:
    """Write ``cleaning_ablation.json`` and its figure (PNG) into ``report_dir``, each atomically."""
    from fer_workbench.files import atomic_path
    from fer_workbench.plots import cleaning_ablation_figure

    report_dir = Path(report_dir)
    paths = {"report": report_dir / REPORT_FILE, "figure": report_dir / FIGURE_FILE}
    atomic_write_text(paths["report"], json.dumps(report_document(ablation, summary, command), indent=1))
    figure = cleaning_ablation_figure(summary)
    with atomic_path(paths["figure"]) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return paths


def summary_text(summary: pd.DataFrame, subset: str = "all") -> str:
    """The summary as a fixed-width table: accuracy mean ± std and the difference from raw with its interval."""
    part = summary[summary.subset == subset]
    lines = []
    for (split, source), group in part.groupby(["split", "label_source"], sort=False):
        lines.append(f"{split}, {source} labels ({subset}, n = {int(group['n'].iloc[0])}):")
        for _, r in group.iterrows():
            diff = "" if r.variant == "raw" else (f"  {r.diff_vs_raw * 100:+.2f} pt [{r.low_vs_raw * 100:+.2f}, "
                                                  f"{r.high_vs_raw * 100:+.2f}] {r.verdict_vs_raw}")
            std = "" if np.isnan(r.accuracy_std) else f" ± {r.accuracy_std * 100:.2f}"
            lines.append(f"  {r.variant:<22} rows {r.rows_trained:>6}  {r.accuracy_mean * 100:6.2f}{std:<8}{diff}")
    return "\n".join(lines)


__all__ = ["ABLATION_VARIANTS", "AblationVariant", "CleaningAblation", "ablation_recipe", "ablation_summary",
           "paired_bootstrap", "removal_masks", "run_cleaning_ablation", "scoring_targets",
           "variant_training_rows", "verdict", "write_report"]
