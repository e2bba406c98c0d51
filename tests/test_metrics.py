import numpy as np
import pytest
from sklearn.metrics import log_loss

from fer_workbench import CLASS_NAMES, WorkbenchError
from fer_workbench import metrics as m


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 600)
    logits = rng.normal(size=(600, 7))
    logits[np.arange(600), y] += 2.0  # informative but imperfect
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


def test_summary_on_perfect_and_random(predictions):
    y, proba = predictions
    perfect = np.eye(7)[y]
    summary = m.summary_metrics(y, perfect)
    assert summary["accuracy"] == 1 and summary["macro_f1"] == 1 and summary["ece"] < 1e-9
    noisy = m.summary_metrics(y, proba)
    assert 1 / 7 < noisy["accuracy"] < 1
    assert noisy["log_loss"] == pytest.approx(log_loss(y, proba, labels=range(7)))


def test_per_class_and_confusion(predictions):
    y, proba = predictions
    table = m.per_class_table(y, proba, CLASS_NAMES)
    assert list(table.index) == list(CLASS_NAMES)
    assert table["support"].sum() == 600 and (table["auc"] > 0.5).all()
    counts = m.confusion(y, proba.argmax(1), CLASS_NAMES)
    assert counts.to_numpy().sum() == 600 and (counts.sum(axis=1).to_numpy() == table["support"].to_numpy()).all()
    rows = m.confusion(y, proba.argmax(1), CLASS_NAMES, normalise=True).sum(axis=1)
    np.testing.assert_allclose(rows, 1)


def test_temperature_scaling_fixes_overconfidence(predictions):
    y, proba = predictions
    sharpened = m.apply_temperature(proba, 0.3)  # make it overconfident
    temperature = m.fit_temperature(y, sharpened)
    assert temperature > 1  # softens the overconfident scores
    fixed = m.apply_temperature(sharpened, temperature)
    assert m.expected_calibration_error(y, fixed) < m.expected_calibration_error(y, sharpened)
    np.testing.assert_array_equal(fixed.argmax(1), sharpened.argmax(1))  # accuracy unchanged


def test_top_confusions_and_examples():
    y_true = np.array([2, 2, 2, 5, 5, 4, 4, 4, 6])
    y_pred = np.array([5, 5, 2, 2, 5, 6, 6, 4, 6])
    top = m.top_confusions(y_true, y_pred, CLASS_NAMES, k=2)
    assert top.iloc[0].tolist()[:3] == ["fear", "surprise", 2]
    assert m.examples_of(y_true, y_pred, 4, 6).tolist() == [5, 6]


def test_bad_inputs_are_clear():
    with pytest.raises(WorkbenchError, match="empty"):
        m.summary_metrics(np.array([], int), np.zeros((0, 7)))
    with pytest.raises(WorkbenchError, match="class count"):
        m.summary_metrics(np.array([0, 7]), np.full((2, 7), 1 / 7))


def test_evaluation_report_keys(predictions):
    y, proba = predictions
    report = m.evaluation_report(y, proba, CLASS_NAMES, model="m.keras", data_checksum="abc")
    for key in ("n", "accuracy", "balanced_accuracy", "macro_f1", "log_loss", "ece", "per_class", "confusion",
                "classes", "excluded_classes", "model", "data_checksum"):
        assert key in report
    assert set(report["per_class"]["happy"]) >= {"precision", "recall", "f1", "support", "auc"}


def test_metric_figures_carry_the_numbers(predictions):
    from fer_workbench import plots

    y, proba = predictions
    table = m.per_class_table(y, proba, CLASS_NAMES)
    roc = plots.roc_figure(m.roc_curves(y, proba, CLASS_NAMES), table["auc"].to_dict())
    assert len(roc.data) == 8 and "AUC" in roc.data[0].name
    heat = plots.confusion_heatmap(m.confusion(y, proba.argmax(1), CLASS_NAMES))
    assert np.asarray(heat.data[0].z).sum() == 600
    rel = m.reliability_table(y, proba)
    diagram = plots.reliability_diagram(rel, m.expected_calibration_error(y, proba))
    assert "ECE" in diagram.layout.title.text
    assert len(plots.per_class_bars(table).data) == 3
    assert len(plots.pr_figure(m.pr_curves(y, proba, CLASS_NAMES)).data) == 7


def test_calibration_comparison(predictions):
    y, proba = predictions
    table = m.calibration_comparison(y, proba, m.apply_temperature(proba, 2.0))
    assert list(table.index) == ["ECE", "log loss"] and list(table.columns) == ["before", "after"]


def test_shared_class_accuracy_sets_aside_classes_one_side_lacks():
    seven, eight = ["a", "b", "c"], ["a", "b", "c", "contempt"]
    # an 8-class model judged on 7-class labels: its contempt answer is set aside, the next best counts
    proba8 = np.array([[0.1, 0.2, 0.0, 0.7], [0.6, 0.1, 0.1, 0.2], [0.1, 0.1, 0.5, 0.3]])
    scores = m.shared_class_accuracy(proba8, eight, np.array([1, 0, 0]), seven)
    assert scores == {"classes": 3, "n": 3, "left_out": 0, "accuracy": pytest.approx(2 / 3)}
    # a 7-class model judged on 8-class labels: rows labelled contempt are left out
    proba7 = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    scores = m.shared_class_accuracy(proba7, seven, np.array([0, 3, 2]), eight)
    assert scores == {"classes": 3, "n": 2, "left_out": 1, "accuracy": 1.0}
    # class order may differ between model and labels: matched by name
    scores = m.shared_class_accuracy(proba7[:, ::-1], seven[::-1], np.array([0, 1, 2]), seven)
    assert scores["accuracy"] == 1.0
    with pytest.raises(WorkbenchError, match="no classes in common"):
        m.shared_class_accuracy(proba7, seven, np.array([0]), ["x"])


def test_model_comparison_rows_per_model_and_split(predictions):
    y, proba = predictions
    table = m.model_comparison({"A": y, "B": y[:100]},
                               {"good": {"A": proba, "B": proba[:100]}, "perfect": {"A": np.eye(7)[y]}})
    assert list(table.index) == [("good", "A"), ("good", "B"), ("perfect", "A")]
    assert table.loc[("perfect", "A"), "accuracy"] == 1
    assert table.loc[("good", "B"), "n"] == 100
    assert table.loc[("good", "A"), "accuracy"] == m.summary_metrics(y, proba)["accuracy"]
