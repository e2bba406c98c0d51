"""Knowledge distillation: training targets that mix the data's labels with teacher models' softened predictions.

A run with ``TrainConfig.teachers`` (model files, or shipped names such as "shipped" and "shipped-ferplus") and
``teacher_weight`` w > 0 fits ``(1 - w) · labels + w · teachers`` instead of the labels alone: the teachers' class
probabilities on each Training image, softened by ``teacher_temperature`` T (``metrics.apply_temperature``: the
softmax of the logits over T), averaged over teachers. A teacher's classes are matched to the data's by name; a
class the data lacks (FER+'s contempt for a FER2013 run) is dropped and the rest renormalised. The teachers never
see PublicTest or PrivateTest here, and a shipped teacher was selected on PublicTest only, so the protocol holds.
"""

from __future__ import annotations

import numpy as np

from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import sha256_file


def check_distillation(teachers, weight, temperature) -> None:
    """One-line errors for distillation settings (``resolve_config`` calls this)."""
    if not isinstance(teachers, list | tuple) or not all(isinstance(t, str) and t for t in teachers):
        raise WorkbenchError(f"teachers must be a list of model files or shipped model names, got {teachers!r}")
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
        raise WorkbenchError(f"teacher_weight must be a number from 0 (off) to 1, got {weight!r}")
    if weight and not teachers:
        raise WorkbenchError("teacher_weight is set but no teachers are given")
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not temperature > 0:
        raise WorkbenchError(f"teacher_temperature must be a number > 0, got {temperature!r}")


def to_classes(proba: np.ndarray, teacher_classes, class_names) -> np.ndarray:
    """A teacher's probabilities over ``class_names`` (matched by name; classes the data lacks dropped, rows
    renormalised). A teacher sharing fewer than two of the data's classes is refused."""
    teacher_classes = list(teacher_classes)
    shared = [name for name in class_names if name in teacher_classes]
    if len(shared) < 2:
        raise WorkbenchError(f"a teacher predicts {', '.join(teacher_classes)}: it shares fewer than two classes with "
                             f"the data's ({', '.join(class_names)})")
    out = np.zeros((len(proba), len(class_names)))
    for i, name in enumerate(class_names):
        if name in teacher_classes:
            out[:, i] = proba[:, teacher_classes.index(name)]
    total = out.sum(axis=1, keepdims=True)
    return np.where(total > 0, out / np.where(total > 0, total, 1), 1 / len(class_names))


def teacher_probabilities(images: np.ndarray, teachers, class_names, temperature: float) -> tuple[np.ndarray, list]:
    """(the teachers' averaged softened probabilities over ``class_names``, a record per teacher: name, file,
    sha256, classes)."""
    from fer_workbench.config import model_file
    from fer_workbench.inference import predict_proba
    from fer_workbench.metrics import apply_temperature
    from fer_workbench.models.io import load_model, model_class_names

    total, record = np.zeros((len(images), len(class_names))), []
    for name in teachers:
        path = model_file(name)
        if not path.is_file():
            raise WorkbenchError(f"teacher {name}: {path}: no such model file")
        model = load_model(path)
        classes = model_class_names(model)
        total += to_classes(apply_temperature(predict_proba(model, images), temperature), classes, class_names)
        record.append({"teacher": name, "path": str(path), "sha256": sha256_file(path), "classes": list(classes)})
    return total / len(teachers), record


def distilled_targets(train_set: Dataset, targets: np.ndarray, teachers, weight: float, temperature: float
                      ) -> tuple[np.ndarray, dict]:
    """(Training targets ``(1 - weight) · targets + weight · teachers`` as N×classes float32, the record for the
    card). ``targets`` are class indices or N×classes distributions (a soft label source)."""
    targets = np.asarray(targets)
    base = targets if targets.ndim == 2 else np.eye(len(train_set.class_names))[targets]
    teacher, record = teacher_probabilities(train_set.images, teachers, train_set.class_names, temperature)
    mixed = ((1 - weight) * base + weight * teacher).astype(np.float32)
    agreement = float((teacher.argmax(1) == base.argmax(1)).mean())
    return mixed, {"teachers": record, "weight": float(weight), "temperature": float(temperature),
                   "teacher_agreement_with_labels": agreement}


__all__ = ["check_distillation", "distilled_targets", "teacher_probabilities", "to_classes"]
