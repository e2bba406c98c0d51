"""The FER2013 model the package ships: size, card, and (with ../shared) that its card's figures reproduce and
that the saliency instruments pass their checks on it."""

import numpy as np
import pytest
from conftest import limit_tf_threads

from fer_workbench.config import shipped_model_path
from fer_workbench.model_card import read_card

limit_tf_threads()

CARD_KEYS = {"model", "train_config", "data_checksum", "training_seconds", "images_per_second", "epochs_trained",
             "history", "metrics", "metadata", "params", "class_names", "preprocessing"}


@pytest.fixture(scope="module")
def shipped():
    from fer_workbench.models.io import load_model

    return load_model(shipped_model_path())


def test_shipped_model_and_card_are_complete():
    path = shipped_model_path()
    assert path.is_file()
    assert path.stat().st_size <= 20 * 2**20
    card = read_card(path)
    assert CARD_KEYS <= set(card)
    metrics = card["metrics"]
    for key in ("PrivateTest", "PrivateTest_tta"):
        entry = metrics[key]
        assert {"accuracy", "macro_f1", "leakage_free_accuracy", "per_class"} <= set(entry)
        assert set(entry["per_class"]) == set(card["class_names"])
    assert card["metadata"]["hardware"]["cpu_count"] >= 1
    assert len(card["history"]) == card["epochs_trained"]


@pytest.fixture(scope="module")
def real_dataset(real_csv):
    from fer_workbench.data import load_dataset

    return load_dataset(real_csv)


@pytest.mark.real_data
@pytest.mark.slow
def test_card_metrics_reproduce_on_real_data(shipped, real_dataset):
    from fer_workbench.inference import predict_proba

    card = read_card(shipped_model_path())
    assert card["data_checksum"] == real_dataset.checksum
    test = real_dataset.split("PrivateTest")
    for key, tta in (("PrivateTest", False), ("PrivateTest_tta", True)):
        probs = predict_proba(shipped, test.images, tta=tta)
        accuracy = float((probs.argmax(1) == test.labels).mean())
        assert accuracy == pytest.approx(card["metrics"][key]["accuracy"], abs=1e-3)


@pytest.mark.real_data
@pytest.mark.slow
def test_saliency_checks_pass_on_shipped_model(shipped, real_dataset):
    from fer_workbench.inference import predict_proba
    from fer_workbench.saliency import check_verdicts, faithfulness_table, randomisation_table

    test = real_dataset.split("PrivateTest")
    rows = np.random.default_rng(0).choice(len(test), 48, replace=False)
    images = test.images[rows]
    predicted = predict_proba(shipped, images).argmax(1)
    sanity = randomisation_table(shipped, images, predicted, methods=("gradcam",))
    faithfulness, _ = faithfulness_table(shipped, images, predicted, methods=("gradcam",))
    verdicts = check_verdicts(sanity, faithfulness)
    assert verdicts["passed"].all(), verdicts.to_string()
