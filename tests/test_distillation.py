"""Distillation (issue 15): training targets mixed from the labels and teacher models' softened predictions."""

import numpy as np
import pytest
from conftest import limit_tf_threads

from fer_workbench import CLASS_NAMES, WorkbenchError
from fer_workbench.data import FERPLUS_CLASS_NAMES, load_dataset
from fer_workbench.data.synthetic import write_synthetic_dataset
from fer_workbench.distillation import check_distillation, distilled_targets, to_classes
from fer_workbench.metrics import apply_temperature as soften  # what distillation softens teachers with

limit_tf_threads()

TINY = {"blocks": 1, "base_width": 4, "max_width": 4, "fc_units": 8, "fc_layers": 1, "global_pool": True}


def test_soften_flattens_and_keeps_the_ranking():
    proba = np.array([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]])
    assert np.allclose(soften(proba, 1.0), proba)
    warm = soften(proba, 3.0)
    assert np.allclose(warm.sum(1), 1) and (warm.argmax(1) == proba.argmax(1)).all()
    assert (warm.max(1) < proba.max(1)).all()  # flatter
    assert np.allclose(warm[0], proba[0] ** (1 / 3) / (proba[0] ** (1 / 3)).sum())


def test_a_ferplus_teacher_is_read_over_fer2013s_classes():
    proba = np.full((2, 8), 0.1)
    proba[:, FERPLUS_CLASS_NAMES.index("contempt")] = 0.3
    mapped = to_classes(proba, FERPLUS_CLASS_NAMES, CLASS_NAMES)
    assert mapped.shape == (2, 7) and np.allclose(mapped.sum(1), 1)
    assert np.allclose(mapped, 1 / 7)  # contempt's share dropped, the rest renormalised
    with pytest.raises(WorkbenchError, match="shares fewer than two classes"):
        to_classes(np.ones((1, 2)) / 2, ("cat", "happy"), CLASS_NAMES)


@pytest.mark.parametrize("args, says", [
    (("shipped", 0.5, 2.0), "teachers must be a list"),
    ([[], 0.5, 2.0], "teacher_weight is set but no teachers"),
    ([["shipped"], 1.5, 2.0], "teacher_weight must be a number from 0"),
    ([["shipped"], 0.5, 0], "teacher_temperature must be a number > 0"),
])
def test_bad_distillation_settings_are_one_line(args, says):
    with pytest.raises(WorkbenchError, match=says):
        check_distillation(*args)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from fer_workbench.models import build_model
    from fer_workbench.models.io import save_model

    root = tmp_path_factory.mktemp("distil")
    dataset = load_dataset(write_synthetic_dataset(root, 300, seed=0))
    teacher = save_model(build_model("vgg", **TINY), root / "teacher.keras")
    return root, dataset, teacher


def test_targets_mix_labels_and_teacher(tiny):
    _, dataset, teacher = tiny
    train = dataset.split("Training")
    mixed, record = distilled_targets(train, train.labels, [str(teacher)], 0.25, 2.0)
    assert mixed.shape == (len(train), 7) and np.allclose(mixed.sum(1), 1, atol=1e-5)
    onehot = np.eye(7)[train.labels]
    assert (mixed[onehot == 1] >= 0.75 - 1e-6).all()  # the label keeps its (1 - w) share
    assert record["weight"] == 0.25 and record["temperature"] == 2.0 and len(record["teachers"][0]["sha256"]) == 64
    with pytest.raises(WorkbenchError, match=r"teacher .*no such model file"):
        distilled_targets(train, train.labels, [str(teacher) + ".missing"], 0.25, 2.0)


def test_a_distilled_run_records_its_teachers_and_resumes_only_with_them(tiny):
    from fer_workbench.training import train

    root, dataset, teacher = tiny
    config = {"model": "vgg", "model_kwargs": TINY, "epochs": 1, "batch_size": 32, "optimizer": "adam",
              "teachers": [str(teacher)], "teacher_weight": 0.5}
    result = train(dataset, config, root / "run", profile="smoke", verbose=0)
    record = result.metrics["distillation"]
    assert record["teachers"][0]["path"] == str(teacher) and 0 <= record["teacher_agreement_with_labels"] <= 1
    assert result.config.teachers == [str(teacher)]
    assert result.metrics["calibration"]["temperature"] > 0  # every card records its PublicTest temperature
    with pytest.raises(WorkbenchError, match="holds a different run"):
        train(dataset, {**config, "teacher_weight": 0.25, "epochs": 2}, root / "run", profile="smoke", verbose=0)
    plain = train(dataset, {**config, "teachers": [], "teacher_weight": 0.0}, root / "plain", profile="smoke",
                  verbose=0)
    assert "distillation" not in plain.metrics
