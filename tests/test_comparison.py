import numpy as np
import pandas as pd
import pytest

from fer_workbench import WorkbenchError, comparison, plots, tuning
from fer_workbench.data.fer_csv import parse_fer_csv_bytes
from fer_workbench.data.synthetic import make_synthetic


@pytest.fixture(scope="module")
def synthetic():
    return parse_fer_csv_bytes(make_synthetic(700, seed=2)[0], "synthetic")


def test_classical_comparison_rows(synthetic, tmp_path):
    table = comparison.compare_models(synthetic, tmp_path, names=("knn_hog", "svm_hog"), progress=False)
    assert list(table["model"]) == ["knn_hog", "svm_hog"]
    assert (table["accuracy"] > 1 / 7).all()  # the synthetic expressions are learnable from HOG
    assert table[["macro_f1", "leakage_free_accuracy", "train_seconds"]].notna().all().all()
    assert len(plots.comparison_bars(table).data) == 3


def test_ablation_needs_known_setting(synthetic, tmp_path):
    with pytest.raises(WorkbenchError, match="no default values"):
        comparison.ablation(synthetic, "dropout", tmp_path)


def test_hyperparameter_importance_finds_the_driver():
    rng = np.random.default_rng(0)
    lr = rng.choice([1e-3, 1e-2, 1e-1], 30)
    frame = pd.DataFrame({"trial_id": range(30), "status": "COMPLETED", "learning_rate": lr,
                          "optimizer": rng.choice(["sgd", "adam"], 30), "score": -np.log10(lr) / 3})
    importance = tuning.hyperparameter_importance(frame)
    assert importance.index[0] == "learning_rate" and importance["learning_rate"] > 0.8
    figure = plots.tuning_parallel_coordinates(frame)
    assert [d.label for d in figure.data[0].dimensions] == ["learning_rate", "optimizer", "score"]
