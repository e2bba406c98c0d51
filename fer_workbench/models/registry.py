"""Which model a run uses: the shipped model, the run's own models, and the one rule that chooses between them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import keras
import pandas as pd

from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import atomic_write_text
from fer_workbench.inference import predict_proba
from fer_workbench.models.io import load_model


def run_model_path(output_dir: str | os.PathLike) -> Path:
    """Where notebook 03 leaves the retrained best model of a run."""
    return Path(output_dir) / "models" / "best" / "model.keras"


def resolve_model_path(path: str | os.PathLike | None) -> Path:
    """The given model file or shipped model's name ("shipped", "shipped-ferplus"), else the shipped FER2013 model:
    what photo prediction and model cards use. Analyses of a dataset use ``choose_model`` instead."""
    from fer_workbench.config import model_file, shipped_model_paths

    path = model_file(path or "shipped")
    if not path.is_file():
        raise WorkbenchError(f"{path}: no such model file" + ("" if path not in shipped_model_paths() else
                             "; pass --model PATH (a .keras file from fer-workbench train)"))
    return path


SHIPPED_LABEL = "shipped FER2013 model"
SHIPPED_FERPLUS_LABEL = "shipped FER+ model"
RUN_LABEL = "this run's notebook-03 model"
SELECTION_SPLIT = "PublicTest"
CHOICE_FILE = "model_choice.json"


@dataclass
class Candidate:
    """One model the rule considered: its selection score, or why it was left out."""

    label: str
    path: Path
    accuracy: float | None = None
    n: int = 0
    compatible: bool = True
    reason: str = ""

    def to_dict(self) -> dict:
        return {"label": self.label, "path": str(self.path), "accuracy": self.accuracy, "n": self.n,
                "compatible": self.compatible, "reason": self.reason}


REAL_FACES_RULE = "shipped model for real faces"  # ModelChoice.rule of ``choose_photo_model`` on synthetic data


@dataclass
class ModelChoice:
    """The model a run analyses and why: an explicit file wins; else the best candidate on the selection split."""

    path: Path
    label: str
    rule: str  # "explicit" or "best PublicTest accuracy"
    split: str
    candidates: list[Candidate] = field(default_factory=list)
    _loaded: dict = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        if self.rule == "explicit":
            return f"Analysing {self.label} ({self.path.name}): given explicitly (model_path / --model)."
        if self.rule == REAL_FACES_RULE:
            scored = "; ".join(f"{c.label} {c.accuracy:.3f}" for c in self.candidates if c.accuracy is not None)
            return (f"Using {self.label} for photos and clips: this run's data is synthetic (drawn faces), and a model "
                    f"trained on it has never seen a real face, so real photos go to the shipped model (synthetic "
                    f"{self.split} accuracy: {scored}). Pass model_path / --model to choose another.")
        scored = [c for c in self.candidates if c.accuracy is not None]
        others = "; ".join(f"{c.label} {c.accuracy:.3f}" for c in scored if c.path != self.path)
        left_out = "; ".join(f"{c.label}: {c.reason}" for c in self.candidates if not c.compatible)
        chosen = next(c for c in self.candidates if c.path == self.path)
        text = (f"Analysing {self.label}: the best {self.split} accuracy among {len(scored)} candidate(s) "
                f"({chosen.accuracy:.3f} on n = {chosen.n}" + (f"; {others}" if others else "") + ").")
        return text + (f" Left out: {left_out}." if left_out else "")

    def table(self) -> pd.DataFrame:
        """One row per candidate: file, selection accuracy and n, whether it was chosen, and any note."""
        rows = [{"model": c.label, "file": c.path.name, f"{self.split} accuracy": c.accuracy, "n": c.n,
                 "chosen": c.path == self.path, "note": c.reason} for c in self.candidates]
        return pd.DataFrame(rows).set_index("model")

    def to_dict(self) -> dict:
        return {"model": self.label, "path": str(self.path), "rule": self.rule, "split": self.split,
                "candidates": [c.to_dict() for c in self.candidates]}

    def models(self) -> dict[str, Path]:
        """Every compatible candidate, label → file, the chosen one first (what notebook 05 compares)."""
        ordered = [(self.label, self.path)] + [(c.label, c.path) for c in self.candidates
                                               if c.compatible and c.path != self.path]
        return dict(ordered)

    def every_model(self) -> dict[str, Path]:
        """``models()`` plus the candidates left out for their classes and every shipped model: what a table that
        scores models across label sources compares."""
        from fer_workbench.config import shipped_model_paths

        every = {**self.models(), **{c.label: c.path for c in self.candidates}}
        for path in shipped_model_paths():
            if path.is_file() and path not in every.values():
                every[_label_for(path, None)] = path
        return every

    def load(self) -> keras.Model:
        """The chosen model (loaded once)."""
        if self.path not in self._loaded:
            self._loaded[self.path] = load_model(self.path)
        return self._loaded[self.path]


def _label_for(path: Path, output_dir) -> str:
    from fer_workbench.config import shipped_model_path

    resolved = path.resolve()
    if resolved == shipped_model_path().resolve():
        return SHIPPED_LABEL
    if resolved == shipped_model_path("shipped-ferplus").resolve():
        return SHIPPED_FERPLUS_LABEL
    if output_dir and resolved == run_model_path(output_dir).resolve():
        return RUN_LABEL
    return path.name


def _incompatibility(model: keras.Model, dataset: Dataset) -> str:
    """Why ``model`` cannot be scored on ``dataset`` ("" when it can)."""
    from fer_workbench import IMAGE_SIZE

    if tuple(model.input_shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE, 1):
        return f"takes input {tuple(model.input_shape[1:])}, the data is {IMAGE_SIZE}×{IMAGE_SIZE}×1"
    n_out = int(model.output_shape[-1])
    if n_out != len(dataset.class_names):
        return f"predicts {n_out} classes, the data has {len(dataset.class_names)}"
    classes = getattr(model, "fer_card", {}).get("class_names")
    if classes and tuple(classes) != tuple(dataset.class_names):
        return f"its classes ({', '.join(classes)}) are not the data's"
    return ""


def _candidate_key(paths: list[Path], dataset: Dataset, split: str) -> dict:
    return {"data_checksum": dataset.checksum, "n": len(dataset), "split": split,
            "files": {str(p.resolve()): [p.stat().st_size, p.stat().st_mtime_ns] for p in paths}}


def choose_model(model_path: str | os.PathLike | None, output_dir: str | os.PathLike | None, dataset: Dataset,
                 split: str = SELECTION_SPLIT) -> ModelChoice:
    """The one rule for which model a run analyses (notebooks 04–06, ``evaluate``, the index).

    An explicit ``model_path`` (a file, or a shipped model's name) wins. Otherwise every compatible candidate — the
    model notebook 03 trained in ``output_dir`` and the shipped models (FER2013's and FER+'s), when their classes
    and image size are the data's — is scored on ``split`` (PublicTest: selection never looks at PrivateTest) and
    the most accurate is chosen; ties go to the run's own model. The choice is cached in
    ``output_dir/model_choice.json`` for the same data and model files, so every notebook of a run analyses the same
    model.
    """
    from fer_workbench.config import model_file, shipped_model_paths

    if model_path:
        path = model_file(model_path)
        if not path.is_file():
            raise WorkbenchError(f"{path}: no such model file")
        return ModelChoice(path=path, label=_label_for(path, output_dir), rule="explicit", split=split,
                           candidates=[Candidate(_label_for(path, output_dir), path)])
    paths = ([run_model_path(output_dir)] if output_dir else []) + shipped_model_paths()
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise WorkbenchError("no model to analyse: this run has no notebook-03 model and the shipped models are "
                             "missing; pass --model PATH (a .keras file from fer-workbench train)")
    cache = Path(output_dir) / CHOICE_FILE if output_dir else None
    key = _candidate_key(paths, dataset, split)
    if cache is not None and cache.is_file():
        try:
            stored = json.loads(cache.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = {}
        if stored.get("key") == key:
            doc = stored["choice"]
            return ModelChoice(path=Path(doc["path"]), label=doc["model"], rule=doc["rule"], split=doc["split"],
                               candidates=[Candidate(c["label"], Path(c["path"]), c["accuracy"], c["n"],
                                                     c["compatible"], c["reason"]) for c in doc["candidates"]])
    part = dataset.split(split) if split in dataset.split_names() else dataset
    candidates, loaded = [], {}
    for path in paths:
        label = _label_for(path, output_dir)
        model = load_model(path)
        reason = _incompatibility(model, dataset)
        if reason:
            candidates.append(Candidate(label, path, compatible=False, reason=reason))
            continue
        accuracy = float((predict_proba(model, part.images).argmax(1) == part.labels).mean()) if len(part) else 0.0
        candidates.append(Candidate(label, path, accuracy, len(part),
                                    reason="" if part is not dataset else f"no {split} split: scored on all rows"))
        loaded[path] = model
    scored = [c for c in candidates if c.compatible]
    if not scored:
        raise WorkbenchError("no model fits this data: " + "; ".join(f"{c.path}: {c.reason}" for c in candidates))
    best = max(scored, key=lambda c: c.accuracy)  # max keeps the first of equals: the run's model
    choice = ModelChoice(path=best.path, label=best.label, rule=f"best {split} accuracy", split=split,
                         candidates=candidates, _loaded={best.path: loaded[best.path]})
    if cache is not None:
        atomic_write_text(cache, json.dumps({"key": key, "choice": choice.to_dict()}, indent=1))
    return choice


def choose_photo_model(model_path: str | os.PathLike | None, output_dir: str | os.PathLike | None,
                       dataset: Dataset, synthetic: bool) -> ModelChoice:
    """The model notebook 06 runs on photos and clips: ``choose_model``'s, except when the run's data is
    ``synthetic`` (the embedded default) and no model is given: scoring on drawn faces says nothing about real ones,
    so the shipped model of the data's label source is used (the candidates' scores are kept)."""
    from fer_workbench.config import shipped_model_path, shipped_name_for

    choice = choose_model(model_path, output_dir, dataset)
    if not synthetic or choice.rule == "explicit":
        return choice
    shipped = shipped_model_path(shipped_name_for(dataset.label_source))
    if not shipped.is_file():
        return choice
    candidates = choice.candidates
    if not any(c.path.resolve() == shipped.resolve() for c in candidates):
        candidates = [*candidates, Candidate(_label_for(shipped, output_dir), shipped)]
    return ModelChoice(path=shipped, label=_label_for(shipped, output_dir), rule=REAL_FACES_RULE, split=choice.split,
                       candidates=candidates)


def predict_with_models(models: dict[str, Path], splits: dict[str, Dataset], num_classes: int, tta: bool = False,
                        loaded: dict[str, keras.Model] | None = None) -> tuple[dict, dict[str, str]]:
    """``{label: {split: probabilities}}`` for each model in ``ModelChoice.models()`` that predicts
    ``num_classes`` classes, and ``{label: reason}`` for those left out. ``loaded`` reuses models already in memory."""
    predictions, skipped = {}, {}
    for label, path in models.items():
        model = (loaded or {}).get(label) or load_model(path)
        n_out = int(model.output_shape[-1])
        if n_out != num_classes:
            skipped[label] = f"{path}: predicts {n_out} classes, the data has {num_classes}"
            continue
        predictions[label] = {name: predict_proba(model, part.images, tta=tta) for name, part in splits.items()}
    return predictions, skipped

