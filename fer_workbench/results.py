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
                   ablations: dict[str, pd.DataFrame] | None = None,
                   label_sources: pd.DataFrame | None = None) -> dict:
    """03: the best trial and its score, the retrained model's scores, the comparison, the ablations and the
    label-source comparison (``comparison.label_source_comparison``).

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
    if label_sources is not None and len(label_sources):
        headline.append("labels, PrivateTest of each source's own labels: " + "; ".join(
            f"{row['labels']} {row['PrivateTest accuracy']:.3f}" for _, row in label_sources.iterrows()))
    return {"best_trial": best_trial, "trials": len(trials), "run_model": run_model, "comparison": comparison,
            "ablations": ablation_rows, "label_sources": label_sources, "headline": headline}


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
    """The whole source ``dataset`` was cut from (by cleaning, or by a FER+ label source dropping rows without a
    label); a dataset built in memory, with no source file, is its own source."""
    from fer_workbench.data import load_dataset

    if not Path(dataset.source).is_file():
        return dataset
    source = load_dataset(dataset.source, progress=False)
    order = np.argsort(source.row_ids)
    at = order[np.clip(np.searchsorted(source.row_ids, dataset.row_ids, sorter=order), 0, len(order) - 1)]
    if not len(source) or not (np.array_equal(source.row_ids[at], dataset.row_ids)
                                and np.array_equal(source.images[at], dataset.images)):
        raise WorkbenchError(f"{dataset.source}: changed since this run loaded it; run the notebooks again")
    return source


def _leakage_free_rows(dataset: Dataset, split: str = "PrivateTest", source: Dataset | None = None) -> np.ndarray:
    """Per row of ``dataset.split(split)``: no byte-identical copy in the whole source's Training (the standard
    figure, as in model cards: this run's cleaning may have dropped the Training copies, but a model trained
    elsewhere, such as the shipped one, saw them)."""
    from fer_workbench.cleaning.duplicates import leakage_free_mask

    source = _uncleaned(dataset) if source is None else source
    free = source.row_ids[source.splits == split][leakage_free_mask(source, split)]
    return np.isin(dataset.row_ids[dataset.splits == split], free)


def headline_metrics(dataset: Dataset, proba: dict[str, np.ndarray], output_dir=None) -> pd.DataFrame:
    """Summary metrics of each test split in full (the standard figures, e.g. n = 3,589 on FER2013's PrivateTest),
    then PrivateTest's subsets beside them: the rows this run's cleaning kept (when ``output_dir`` has a cleaned
    export of this data) and the rows with no exact copy in Training (leakage-free)."""
    from fer_workbench.data import cleaning_kept_rows
    from fer_workbench.metrics import summary_metrics

    rows = {name: summary_metrics(dataset.split(name).labels, p) for name, p in proba.items()}
    if "PrivateTest" in proba:
        positions = np.flatnonzero(dataset.splits == "PrivateTest")
        labels, p = dataset.labels[positions], proba["PrivateTest"]
        source = _uncleaned(dataset)  # cleaning and FER+ label sources cut rows from it; row ids survive
        kept = cleaning_kept_rows(source, output_dir) if output_dir is not None else None
        subsets = {}
        if kept is not None:
            subsets[SUBSET_CLEANED] = np.isin(dataset.row_ids[positions], source.row_ids[kept])
        subsets[SUBSET_LEAKAGE_FREE] = _leakage_free_rows(dataset, source=source)
        for name, member in subsets.items():
            if member.any():
                rows[name] = summary_metrics(labels[member], p[member])
    return pd.DataFrame(rows).T


def label_source_cross_table(models: dict[str, Path], dataset: Dataset, votes, splits=("PublicTest", "PrivateTest"),
                             tta: bool = False, loaded: dict | None = None) -> pd.DataFrame:
    """Each model scored on each label source's test labels — FER2013's and the FER+ majority — over the classes
    model and labels share (``metrics.shared_class_accuracy``): a FER2013 model on FER+ over the seven shared classes,
    a FER+ model on FER2013's labels without its contempt. One row per model × labels × split. ``dataset`` is this
    run's data under any label source; the test rows come from its whole source file."""
    from fer_workbench.data.labels import with_label_source
    from fer_workbench.inference import predict_proba
    from fer_workbench.metrics import shared_class_accuracy
    from fer_workbench.models.io import load_model, model_class_names

    source = _uncleaned(dataset)
    if source.label_source != "fer2013":
        raise WorkbenchError(f"{dataset.source}: the cross table needs the FER2013 labels of the source file")
    tests = source.subset(np.isin(source.splits, list(splits)))
    by_labels = {"fer2013": tests, "ferplus-majority": with_label_source(tests, votes, "ferplus-majority")}
    rows = []
    for label, path in models.items():
        model = (loaded or {}).get(label) or load_model(path)
        classes = model_class_names(model)
        proba = predict_proba(model, tests.images, tta=tta)
        at = {row_id: i for i, row_id in enumerate(tests.row_ids)}
        for source_name, labelled in by_labels.items():
            for split in splits:
                part = labelled.split(split)
                scores = shared_class_accuracy(proba[[at[r] for r in part.row_ids]], classes, part.labels,
                                               labelled.class_names)
                rows.append({"model": label, "model classes": len(classes), "labels": source_name, "split": split,
                             **scores})
    return pd.DataFrame(rows)


def label_source_cross_view(table: pd.DataFrame) -> pd.DataFrame:
    """``label_source_cross_table`` as notebook 05 shows it: a row per model, accuracy then n per labels × split (n
    stays a count)."""
    view = table.pivot_table(index="model", columns=["labels", "split"], values=["accuracy", "n"], sort=False)
    view["n"] = view["n"].astype(int)
    view["accuracy"] = view["accuracy"].round(3)
    return view


def metrics_results(choice, headline: pd.DataFrame, temperature: float | None = None,
                    comparison: pd.DataFrame | None = None, label_source_cross: pd.DataFrame | None = None) -> dict:
    """05: the model analysed (and why), each split's headline metrics (full PrivateTest first, subsets beside
    it), the fitted temperature, the side-by-side comparison of every candidate model and, with FER+ votes, every
    model on every label source (``label_source_cross_table``)."""
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
    if label_source_cross is not None and len(label_source_cross):
        mine = label_source_cross[(label_source_cross["model"] == choice.label)
                                  & (label_source_cross["split"] == "PrivateTest")]
        lines.append("PrivateTest by label source: " + "; ".join(
            f"{row['labels']} {row['accuracy']:.3f} (n = {row['n']:,}, {row['classes']} classes)"
            for _, row in mine.iterrows()))
    if comparison is not None:
        comparison = comparison.reset_index()
        if "n" in comparison:
            comparison["n"] = comparison["n"].astype(int)
    return {**_model_fields(choice), "PrivateTest": private, "PublicTest": entries.get("PublicTest"),
            "PrivateTest_cleaned": entries.get(SUBSET_CLEANED),
            "PrivateTest_leakage_free": entries.get(SUBSET_LEAKAGE_FREE), "temperature": temperature,
            "models_compared": comparison, "label_source_cross": label_source_cross, "headline": lines}


# --------------------------------------------------------------------------------------------- 06 predict


def video_results(clip) -> dict:
    """A clip's part of 06's record: its frames, tracks (with dominant labels) and cuts, without per-frame data."""
    return {"file": Path(clip.file).name, "fps": clip.fps, "frames_total": clip.frames_total,
            "frames_analysed": clip.frames_analysed, "faces_found": clip.faces_found, "cuts": list(clip.cuts),
            "tracks": clip.tracks_dicts(), "error": clip.error}


def prediction_results(choice, predictions: list, detector: str, clip=None) -> dict:
    """06: photos read, faces found, the emotions predicted, and the model (and why); with ``clip`` (a
    ``video.VideoPrediction``), the clip's tracks too."""
    faces = [face for result in predictions for face in result.faces]
    labels = Counter(face.label for face in faces)
    problems = {Path(r.file).name: r.error for r in predictions if not r.faces}
    headline = [(f"{len(faces)} face(s) found in {sum(1 for r in predictions if r.faces)} of {len(predictions)} "
                 f"photo(s) (detector {detector})"),
                "predicted: " + (", ".join(f"{label} {n}" for label, n in labels.most_common()) or "nothing"),
                choice.summary()]
    if clip is not None:
        headline.insert(2, f"video {Path(clip.file).name}: {len(clip.tracks)} track(s) in {clip.frames_analysed} "
                           f"analysed frame(s), {len(clip.cuts)} cut(s)"
                           + "".join(f"; #{t['track']} mostly {t['dominant_label']}" for t in clip.tracks_dicts()))
    return {**_model_fields(choice), "photos": len(predictions), "faces_found": len(faces),
            "photos_with_faces": sum(1 for r in predictions if r.faces), "labels": dict(labels),
            "problems": problems, "detector": detector, "faces": [r.to_dict() for r in predictions],
            "video": None if clip is None else video_results(clip), "headline": headline}


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
           "metrics_results", "planted_truth_scores", "prediction_results", "saliency_results", "tuning_results",
           "video_results"]
