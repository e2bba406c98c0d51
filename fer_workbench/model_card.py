"""Shipping a trained run as the package's model, and the model card's figures and summary page.

``ship_run`` copies a run's best model (weights only: no optimizer state) beside its card, with the training
history added; ``write_card_report`` re-evaluates a model on its data and writes the small PNGs and the Markdown
summary that ``reports/fer2013/`` keeps in the repository.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from fer_workbench import plots
from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import atomic_path, atomic_write_text

CARD_FIGURES = ("confusion.png", "learning_curves.png")


def read_card(model_path: str | os.PathLike) -> dict:
    """The model card beside ``model_path`` (``{}`` when there is none)."""
    from fer_workbench.models.io import card_path_for

    path = card_path_for(model_path)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise WorkbenchError(f"{path}: unreadable model card ({exc})") from None


def ship_run(run_dir: str | os.PathLike, destination: str | os.PathLike | None = None) -> Path:
    """Copy ``run_dir``'s model (written by ``training.train``) to ``destination`` (default: the shipped model of
    its label source: FER2013's, or FER+'s for a model trained on FER+ labels),
    without optimizer state, with its card plus the per-epoch history from the run's ``state.json``."""
    run = Path(run_dir)
    source = run / "model.keras"
    if not source.is_file():
        raise WorkbenchError(f"{run}: no model.keras; finish the run with fer-workbench train first")
    from fer_workbench.config import shipped_model_path, shipped_name_for
    from fer_workbench.models.io import card_path_for, load_model, save_model  # TensorFlow, once the run is there

    card = read_card(source)
    state_path = run / "state.json"
    if state_path.is_file():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        card["history"] = state.get("history", [])
        card["best_epoch"] = state.get("best_epoch")
    card["shipped_from"] = str(run.resolve())
    destination = (Path(destination) if destination
                   else shipped_model_path(shipped_name_for(card.get("label_source", "fer2013"))))
    model = load_model(source, compile=False)  # uncompiled: the saved file carries no optimizer state
    save_model(model, destination, card)
    return card_path_for(destination)


def _save_png(fig: plt.Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _averaging_line(averaging: dict) -> str:
    scores = averaging.get("publictest_accuracy") or averaging.get("publictest_cross_entropy") or {}
    measure = "accuracy" if "publictest_accuracy" in averaging else "cross-entropy"
    epochs = averaging.get("epochs") or []
    return (f"- Weight averaging: epochs {epochs[0] if epochs else '?'}–{epochs[-1] if epochs else '?'} averaged, "
            f"batch norm re-estimated on {averaging.get('batch_norm_rows', 0):,} Training rows; PublicTest {measure} "
            f"{scores.get('averaged', float('nan')):.4f} averaged vs {scores.get('best_epoch', float('nan')):.4f} at "
            f"the best epoch ({averaging.get('best_epoch')}): the {averaging.get('kept', '?').replace('_', ' ')} "
            "model is kept")


def _calibration_line(calibration: dict) -> str:
    return (f"Temperature {calibration['temperature']:.3f}, fitted on {calibration['fitted_on']} (divide the logits "
            f"by it for calibrated scores): {calibration['evaluated_on']} ECE {calibration['ece_before']:.3f} → "
            f"{calibration['ece_after']:.3f}, log loss {calibration['log_loss_before']:.3f} → "
            f"{calibration['log_loss_after']:.3f} (single crop).")


def card_markdown(card: dict, evaluation: dict, tta_evaluation: dict | None, leakage_free: dict,
                  probes: dict | None = None, calibration: dict | None = None) -> str:
    """The card as a short Markdown page: what was trained how, and the PrivateTest figures; with ``probes`` (a
    ``probes.json`` of the same data) the probe table too, with ``calibration``
    (``evaluation.temperature_calibration``) the temperature and its effect."""
    meta = card.get("metadata", {})
    hardware = meta.get("hardware", {})
    packages = meta.get("packages", {})
    training = (f"- Training: `{json.dumps(card.get('train_config'))}`, seed {card.get('seed')}, "
                f"{card.get('epochs_trained')} epochs (best PublicTest epoch {card.get('best_epoch')}), "
                f"{card.get('training_rows')} Training rows")
    timing = (f"- Training time: {card.get('training_seconds', 0) / 60:.1f} min at "
              f"{card.get('images_per_second', 0):.0f} images/s on {hardware.get('cpu', 'unknown CPU')} "
              f"({hardware.get('cpu_count', '?')} cores, GPU: {', '.join(hardware.get('gpus') or []) or 'none'})")
    averaging = (card.get("metrics") or {}).get("averaging")
    code = (f"- Code: git `{meta.get('git_commit')}`, TensorFlow {packages.get('tensorflow')}, "
            f"Keras {packages.get('keras')}")
    lines = [
        f"# Model card: {Path(card.get('model_file', 'model')).name}", "",
        f"- Architecture: `{json.dumps(card.get('model'))}`, {card.get('params', 0):,} parameters",
        training, *([_averaging_line(averaging)] if averaging else []), timing,
        f"- Data: `{card.get('data_source')}` sha256 `{card.get('data_checksum')}`",
        f"- Labels: {card.get('label_source', 'fer2013')}; classes: "
        f"{', '.join(card.get('class_names') or evaluation.get('classes') or [])}",
        code, "",
        f"## PrivateTest, {evaluation.get('label_source', card.get('label_source', 'fer2013'))} labels "
        "(evaluated once; selection used PublicTest)", "",
        "| | accuracy | macro-F1 | balanced accuracy | log loss | ECE |", "|---|---|---|---|---|---|",
    ]
    for name, ev in (("single crop", evaluation), ("ten-crop TTA", tta_evaluation)):
        if ev:
            lines.append(f"| {name} | {_pct(ev['accuracy'])} | {ev['macro_f1']:.3f} | {_pct(ev['balanced_accuracy'])}"
                         f" | {ev['log_loss']:.3f} | {ev['ece']:.3f} |")
    lines += ["", f"Leakage-free PrivateTest (the {leakage_free['n']} images with no exact copy in Training): "
              f"{_pct(leakage_free['accuracy'])} single crop"
              + (f", {_pct(leakage_free['accuracy_tta'])} with TTA" if leakage_free.get("accuracy_tta") else "")
              + ".", *(["", _calibration_line(calibration)] if calibration else []),
              "", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, row in evaluation["per_class"].items():
        lines.append(f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    lines += ["", "![confusion](confusion.png)", "", "![learning curves](learning_curves.png)", ""]
    if probes:
        from fer_workbench.probes import probe_markdown

        lines += probe_markdown(probes)
    return "\n".join(lines)


def _probes_beside(out: Path, dataset: Dataset) -> dict | None:
    """The probe report in ``out`` when there is one of this data (else None: a stale one is not shown)."""
    from fer_workbench.probes import REPORT_FILE, read_probe_report

    path = out / REPORT_FILE
    if not path.is_file():
        return None
    document = read_probe_report(path)
    return document if document["study"]["data_checksum"] == dataset.checksum else None


def write_card_report(model_path: str | os.PathLike, dataset: Dataset, out_dir: str | os.PathLike,
                      split: str = "PrivateTest") -> dict:
    """Evaluate the model on ``split`` (single crop and TTA) and write confusion.png, learning_curves.png and
    model_card.md to ``out_dir``; returns the evaluation. A ``probes.json`` (``fer-workbench probe --report``) in
    ``out_dir`` of the same data adds the probe table to the page."""
    from fer_workbench.evaluation import evaluate_split, temperature_calibration
    from fer_workbench.models.io import load_model

    model_path = Path(model_path)
    model = load_model(model_path)
    card = {**read_card(model_path), "model_file": str(model_path)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    single = evaluate_split(model, dataset, split, model_path=model_path)
    tta = evaluate_split(model, dataset, split, tta=True, model_path=model_path)
    leakage_free = {"n": single.get("leakage_free_n", 0), "accuracy": single.get("leakage_free_accuracy"),
                    "accuracy_tta": tta.get("leakage_free_accuracy")}
    matrix = pd.DataFrame(tta["confusion"], index=dataset.class_names, columns=dataset.class_names)
    _save_png(plots.count_table_heatmap(matrix, f"{split}, ten-crop TTA: accuracy {_pct(tta['accuracy'])} "
                                        "(rows: true class)", normalise_rows=True), out / "confusion.png")
    if card.get("history"):
        _save_png(plots.learning_curves_static(pd.DataFrame(card["history"])), out / "learning_curves.png")
    else:
        (out / "learning_curves.png").unlink(missing_ok=True)
    calibration = (temperature_calibration(model, dataset) if split == "PrivateTest"
                   and "PublicTest" in dataset.split_names() else None)
    atomic_write_text(out / "model_card.md",
                      card_markdown(card, single, tta, leakage_free, _probes_beside(out, dataset), calibration))
    return {"single_crop": single, "tta": tta, "leakage_free": leakage_free, "calibration": calibration}


__all__ = ["CARD_FIGURES", "card_markdown", "read_card", "ship_run", "write_card_report"]
