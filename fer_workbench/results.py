"""What each notebook found, as the small JSON-ready documents ``records.record_results`` writes beside its HTML.

One builder per notebook; each returns plain values plus a ``headline``: the few sentences index.html shows for
that notebook. The numbers are the ones the notebook displays, never recomputed differently. Also here: the
figures a notebook reports that need more than one call (the headline metrics of the full test splits with their
cleaned and leakage-free subsets beside them) and the small matplotlib figures used as thumbnails.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError

SUBSET_CLEANED = "PrivateTest, cleaned subset"
SUBSET_LEAKAGE_FREE = "PrivateTest, leakage-free"


def _split_entry(metrics: dict | None) -> dict | None:
    """``{"n", "accuracy", ...}`` from a summary-metrics dict (None stays None)."""
    if not metrics:
        return None
    keys = ("n", "accuracy", "balanced_accuracy", "macro_f1", "log_loss", "ece")
    entry = {k: metrics[k] for k in keys if k in metrics and metrics[k] is not None}
    if "n" in entry:
        entry["n"] = int(entry["n"])
    return entry


def _model_fields(choice) -> dict:
    return {"model": choice.label, "model_path": str(choice.path), "model_choice": choice.to_dict()}


# --------------------------------------------------------------------------------------------- 01 explore


def explore_results(dataset: Dataset, summary: dict | None = None) -> dict:
    """01: images per split and class, blank images and exact duplicates (``summary``: explore.dataset_summary)."""
    from fer_workbench.explore import dataset_summary

    summary = summary or dataset_summary(dataset)
    counts = summary["counts"]
    splits = {split: row["total"] for split, row in counts.items() if split != "total"}
    classes = {name: value for name, value in counts["total"].items() if name != "total"}
    duplicates = summary["duplicates"]
    smallest = min(classes, key=classes.get)
    headline = [
        f"{summary['rows']:,} images: " + ", ".join(f"{split} {n:,}" for split, n in splits.items()),
        (f"{len(classes)} classes; smallest {smallest} ({classes[smallest]:,}), largest "
         f"{max(classes, key=classes.get)} ({max(classes.values()):,})"),
        (f"{summary['blank_images']:,} blank images; {duplicates['groups']:,} exact-duplicate groups, "
         f"{duplicates['cross_split_groups']:,} spanning splits"),
    ]
    return {"source": summary["source"], "checksum": summary["checksum"], "rows": summary["rows"],
            "splits": splits, "classes": classes, "blank_images": summary["blank_images"],
            "duplicates": duplicates, "skipped_rows": summary.get("skipped_rows", 0), "headline": headline}


# --------------------------------------------------------------------------------------------- 02 clean


def planted_truth_scores(manifest: pd.DataFrame, data_file: str | os.PathLike) -> dict | None:
    """On the synthetic default (a truth file beside ``data_file``): how many of the planted problems the
    cleaning flags caught. Non-faces count as caught when flagged ``nonface`` or ``blank``. None for real data."""
    from fer_workbench.data.synthetic import load_truth_for, truth_path_for

    if not truth_path_for(data_file).exists():
        return None
    truth = load_truth_for(data_file)
    rows = manifest["row_id"].to_numpy()

    def score(planted: np.ndarray, flagged: np.ndarray) -> dict:
        caught = int((planted & flagged).sum())
        return {"planted": int(planted.sum()), "flagged": int(flagged.sum()), "caught": caught,
                "recall": caught / planted.sum() if planted.any() else None,
                "precision": caught / flagged.sum() if flagged.any() else None}

    def flag(name: str) -> np.ndarray:
        column = f"flag_{name}"
        return manifest[column].to_numpy(bool) if column in manifest else np.zeros(len(manifest), bool)

    scores = {"nonface": score(truth.nonface[rows], flag("nonface") | flag("blank")),
              "occlusion": score(truth.occluded[rows], flag("occlusion"))}
    if "flag_label_issue" in manifest:
        scores["label_issue"] = score(truth.label_flipped[rows], flag("label_issue"))
    return scores


def cleaning_results(summary: dict, manifest: pd.DataFrame | None = None,
                     data_file: str | os.PathLike | None = None) -> dict:
    """02: rows, kept and excluded, flags per kind, duplicates, and (synthetic default) planted-problem recall."""
    planted = planted_truth_scores(manifest, data_file) if manifest is not None and data_file else None
    flagged = summary.get("flagged", {})
    headline = [f"{summary['rows']:,} rows: {summary['kept']:,} kept, {summary['excluded']:,} excluded",
                "flagged: " + ", ".join(f"{name} {n:,}" for name, n in flagged.items())]
    if planted is not None and planted["nonface"]["recall"] is not None:
        nonface = planted["nonface"]
        headline.append(f"planted non-faces caught: {nonface['caught']} of {nonface['planted']} "
                        f"(recall {nonface['recall']:.2f})")
    return {"rows": summary["rows"], "kept": summary["kept"], "excluded": summary["excluded"],
            "flagged": flagged, "excluded_by": summary.get("excluded_by", {}),
            "duplicates": summary.get("duplicates", {}), "planted": planted, "headline": headline}


# --------------------------------------------------------------------------------------------- 03 tune


def tuning_results(trials: pd.DataFrame, best, compared: pd.DataFrame | None = None,
                   ablations: dict[str, pd.DataFrame] | None = None) -> dict:
    """03: the best trial and its score, the retrained model's scores, the comparison and the ablations.

    ``trials`` is tuning.results_frame (best first), ``best`` the TrainingResult of the retrained configuration.
    """
    top = trials.iloc[0] if len(trials) else None
    best_trial = None
    if top is not None:
        bookkeeping = ("trial_id", "status", "score", "epochs", "seconds", "worker")
        hyperparameters = {k: v for k, v in top.items() if k not in bookkeeping and not k.startswith("tuner/")}
        best_trial = {"trial_id": str(top["trial_id"]), "score": top["score"], "hyperparameters": hyperparameters}
    metrics = best.metrics
    run_model = {"path": str(best.model_path), "params": int(best.model.count_params()),
                 "train_seconds": best.seconds, "PublicTest": _split_entry(metrics.get("PublicTest")),
                 "PrivateTest": _split_entry(metrics.get("PrivateTest")),
                 "PrivateTest_tta": _split_entry(metrics.get("PrivateTest_tta"))}
    private = metrics.get("PrivateTest") or {}
    if "leakage_free_accuracy" in private:
        run_model["PrivateTest_leakage_free"] = {"n": private.get("leakage_free_n"),
                                                 "accuracy": private["leakage_free_accuracy"]}
    columns = ["model", "kind", "accuracy", "macro_f1", "leakage_free_accuracy", "params", "train_seconds"]
    comparison = compared[[c for c in columns if c in compared]] if compared is not None else None
    ablation_rows = {setting: table.drop(columns=["kind"], errors="ignore") for setting, table in
                     (ablations or {}).items() if table is not None}
    headline = []
    if best_trial is not None:
        epochs = top.get("epochs")
        after = f" after {int(epochs)} search epoch(s)" if epochs is not None and pd.notna(epochs) else ""
        headline.append(f"{len(trials)} trials; best {best_trial['trial_id']}: validation accuracy "
                        f"{best_trial['score']:.3f}{after}, before the full retraining")
    if run_model["PrivateTest"]:
        headline.append(f"retrained best: PrivateTest accuracy {run_model['PrivateTest']['accuracy']:.3f} "
                        f"(n = {run_model['PrivateTest']['n']:,})")
    if comparison is not None and len(comparison):
        top_model = comparison.sort_values("accuracy", ascending=False).iloc[0]
        headline.append(f"comparison: best {top_model['model']} {top_model['accuracy']:.3f} "
                        f"of {len(comparison)} models")
    return {"best_trial": best_trial, "trials": len(trials), "run_model": run_model, "comparison": comparison,
            "ablations": ablation_rows, "headline": headline}


# --------------------------------------------------------------------------------------------- 04 saliency


def saliency_results(choice, labels: np.ndarray, predicted: np.ndarray, verdicts: pd.DataFrame,
                     regions: pd.DataFrame | None = None) -> dict:
    """04: the model analysed (and why), its PrivateTest accuracy, the check verdicts per method, and on the
    synthetic default the per-class planted-region lift (a class passes with lift > 1)."""
    n = len(labels)
    accuracy = float((predicted == labels).mean()) if n else None
    passed = verdicts.groupby("method", sort=False)["passed"].all()
    region_check = None
    if regions is not None:
        per_class = regions.drop(index="all", errors="ignore")["lift"]
        valid = per_class.dropna()
        region_check = {"lift": per_class.to_dict(), "classes_passing": int((valid > 1).sum()),
                        "classes": len(valid), "all_lift": regions["lift"].get("all")}
    headline = [f"PrivateTest accuracy {accuracy:.3f} (n = {n:,})" if n else "PrivateTest empty",
                "checks passed: " + ", ".join(f"{method} {int(group.sum())} of {len(group)}" for method, group
                                              in verdicts.groupby("method", sort=False)["passed"])]
    if region_check is not None:
        headline.append(f"planted-region lift > 1 for {region_check['classes_passing']} of "
                        f"{region_check['classes']} classes")
    headline.append(choice.summary())
    return {**_model_fields(choice), "PrivateTest": {"n": n, "accuracy": accuracy},
            "verdicts": verdicts, "methods_passing_all_checks": list(passed.index[passed]),
            "region_check": region_check, "headline": headline}


# --------------------------------------------------------------------------------------------- 05 metrics


def _uncleaned(dataset: Dataset) -> Dataset:
    """The source ``dataset`` was cut from (same file, same checksum; its test splits are the same rows); a dataset
    built in memory, with no source file, is its own source."""
    from fer_workbench.data import load_dataset

    if not Path(dataset.source).is_file():
        return dataset
    source = load_dataset(dataset.source, progress=False)
    if source.checksum != dataset.checksum or (source.splits == "PrivateTest").sum() != (
            dataset.splits == "PrivateTest").sum():
        raise WorkbenchError(f"{dataset.source}: changed since this run loaded it; run the notebooks again")
    return source


def headline_metrics(dataset: Dataset, proba: dict[str, np.ndarray], output_dir=None) -> pd.DataFrame:
    """Summary metrics of each test split in full (the standard figures, e.g. n = 3,589 on FER2013's PrivateTest),
    then PrivateTest's subsets beside them: the rows this run's cleaning kept (when ``output_dir`` has a cleaned
    export of this data) and the rows with no exact copy in Training (leakage-free)."""
    from fer_workbench.cleaning.duplicates import leakage_free_mask
    from fer_workbench.data import cleaning_kept_rows
    from fer_workbench.metrics import summary_metrics

    rows = {name: summary_metrics(dataset.split(name).labels, p) for name, p in proba.items()}
    if "PrivateTest" in proba:
        positions = np.flatnonzero(dataset.splits == "PrivateTest")
        labels, p = dataset.labels[positions], proba["PrivateTest"]
        kept = cleaning_kept_rows(dataset, output_dir) if output_dir is not None else None
        subsets = {}
        if kept is not None:
            subsets[SUBSET_CLEANED] = kept[positions]
        # Leakage is judged against the source's whole Training (the standard figure, as in model cards): this
        # run's cleaning dropped the Training copies, but a model trained elsewhere (the shipped one) saw them.
        subsets[SUBSET_LEAKAGE_FREE] = leakage_free_mask(_uncleaned(dataset) if kept is not None else dataset,
                                                         "PrivateTest")
        for name, member in subsets.items():
            if member.any():
                rows[name] = summary_metrics(labels[member], p[member])
    return pd.DataFrame(rows).T


def metrics_results(choice, headline: pd.DataFrame, temperature: float | None = None,
                    comparison: pd.DataFrame | None = None) -> dict:
    """05: the model analysed (and why), each split's headline metrics (full PrivateTest first, subsets beside
    it), the fitted temperature and the side-by-side comparison of every candidate model."""
    entries = {name: _split_entry(row.dropna().to_dict()) for name, row in headline.iterrows()}
    private = entries.get("PrivateTest")
    lines = []
    if private:
        beside = "; ".join(f"{name.removeprefix('PrivateTest, ')} {entries[name]['accuracy']:.3f} "
                           f"(n = {entries[name]['n']:,})" for name in (SUBSET_CLEANED, SUBSET_LEAKAGE_FREE)
                           if entries.get(name))
        lines.append(f"PrivateTest accuracy {private['accuracy']:.3f} (n = {private['n']:,}), macro-F1 "
                     f"{private.get('macro_f1', float('nan')):.3f}" + (f"; {beside}" if beside else ""))
    lines.append(choice.summary())
    if comparison is not None:
        comparison = comparison.reset_index()
        if "n" in comparison:
            comparison["n"] = comparison["n"].astype(int)
    return {**_model_fields(choice), "PrivateTest": private, "PublicTest": entries.get("PublicTest"),
            "PrivateTest_cleaned": entries.get(SUBSET_CLEANED),
            "PrivateTest_leakage_free": entries.get(SUBSET_LEAKAGE_FREE), "temperature": temperature,
            "models_compared": comparison, "headline": lines}


# --------------------------------------------------------------------------------------------- 06 predict


def prediction_results(choice, predictions: list, detector: str) -> dict:
    """06: photos read, faces found, the emotions predicted, and the model (and why)."""
    faces = [face for result in predictions for face in result.faces]
    labels = Counter(face.label for face in faces)
    problems = {Path(r.file).name: r.error for r in predictions if not r.faces}
    headline = [(f"{len(faces)} face(s) found in {sum(1 for r in predictions if r.faces)} of {len(predictions)} "
                 f"photo(s) (detector {detector})"),
                "predicted: " + (", ".join(f"{label} {n}" for label, n in labels.most_common()) or "nothing"),
                choice.summary()]
    return {**_model_fields(choice), "photos": len(predictions), "faces_found": len(faces),
            "photos_with_faces": sum(1 for r in predictions if r.faces), "labels": dict(labels),
            "problems": problems, "detector": detector, "faces": [r.to_dict() for r in predictions],
            "headline": headline}


# --------------------------------------------------------------------------------------------- thumbnails


def confusion_figure(labels: np.ndarray, predicted: np.ndarray, class_names, title: str):
    """A small row-normalised confusion heatmap (matplotlib) for a thumbnail."""
    from fer_workbench.metrics import confusion
    from fer_workbench.plots import count_table_heatmap

    return count_table_heatmap(confusion(labels, predicted, list(class_names)), title, normalise_rows=True)


def first_photo_figure(predictions: list):
    """The first photo with faces found, boxes drawn (matplotlib); None when no photo had a face."""
    from fer_workbench.plots import photo_with_boxes

    for result in predictions:
        if result.faces and result.photo is not None:
            return photo_with_boxes(result.photo.rgb, result.faces, title=Path(result.file).name, width=5.0)
    return None


__all__ = ["cleaning_results", "confusion_figure", "explore_results", "first_photo_figure", "headline_metrics",
           "metrics_results", "planted_truth_scores", "prediction_results", "saliency_results", "tuning_results"]
