"""Shipping a run as the package model and writing the model card's figures and summary page."""

import json
from pathlib import Path

import pytest
from conftest import csv_text, limit_tf_threads
from test_training import TINY_VGG, toy_dataset

from fer_workbench import WorkbenchError
from fer_workbench.cli import main
from fer_workbench.model_card import read_card, ship_run, write_card_report
from fer_workbench.models.io import card_path_for
from fer_workbench.models.registry import resolve_model_path
from fer_workbench.training import train

limit_tf_threads()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(toy_dataset(), {"model": "vgg", "model_kwargs": TINY_VGG, "optimizer": "adam"}, out, "smoke", seed=0,
          epochs=2, verbose=0)
    return out


def test_ship_drops_optimizer_state_and_keeps_history(run_dir, tmp_path):
    card_path = ship_run(run_dir, tmp_path / "shipped.keras")
    shipped = tmp_path / "shipped.keras"
    assert card_path == card_path_for(shipped)
    card = read_card(shipped)
    assert [row["epoch"] for row in card["history"]] == [1, 2]
    assert card["best_epoch"] in (1, 2) and card["shipped_from"] == str(run_dir.resolve())
    assert card["metadata"]["hardware"]["cpu_count"] >= 1
    # The run's model carries AdamW/Adam slots; the shipped one only weights, so it is smaller.
    assert shipped.stat().st_size < (run_dir / "model.keras").stat().st_size


def test_ship_needs_a_finished_run(tmp_path):
    with pytest.raises(WorkbenchError, match=r"no model.keras"):
        ship_run(tmp_path, tmp_path / "x.keras")


def test_card_report_writes_figures_and_page(run_dir, tmp_path):
    ship_run(run_dir, tmp_path / "m.keras")
    dataset = toy_dataset()
    result = write_card_report(tmp_path / "m.keras", dataset, tmp_path / "card")
    for name in ("confusion.png", "learning_curves.png", "model_card.md"):
        assert (tmp_path / "card" / name).stat().st_size > 0
    assert (tmp_path / "card" / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    page = (tmp_path / "card" / "model_card.md").read_text()
    assert "ten-crop TTA" in page and "Leakage-free" in page and "| happy |" in page
    assert result["tta"]["n"] == len(dataset.split("PrivateTest"))
    assert result["leakage_free"]["n"] == len(dataset.split("PrivateTest"))  # the toy set has no duplicates
    assert f"{100 * result['single_crop']['accuracy']:.1f}%" in page
    calibration = result["calibration"]  # fitted on PublicTest, judged on PrivateTest
    assert calibration["fitted_on"] == "PublicTest" and calibration["temperature"] > 0
    assert calibration["log_loss_after"] <= calibration["log_loss_before"] + 0.05
    assert f"Temperature {calibration['temperature']:.3f}, fitted on PublicTest" in page


def test_cli_ship_and_model_card(run_dir, tmp_path, capsys):
    assert main(["ship", str(run_dir), "--to", str(tmp_path / "m.keras")]) == 0
    dataset = toy_dataset()
    csv = tmp_path / "toy.csv"
    csv.write_text(csv_text(dataset.images, dataset.labels, dataset.splits))
    capsys.readouterr()
    assert main(["model-card", "--data", str(csv), "--model", str(tmp_path / "m.keras"), "--out",
                 str(tmp_path / "card"), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"single_crop", "tta", "leakage_free", "calibration"}
    assert main(["ship", str(tmp_path / "nothing")]) != 0
    assert "no model.keras" in capsys.readouterr().err


def test_resolve_model_path_explicit_or_shipped(tmp_path, monkeypatch):
    from fer_workbench import config

    shipped = tmp_path / "assets" / "fer2013_model.keras"
    shipped.parent.mkdir(parents=True)
    shipped.write_bytes(b"x")
    monkeypatch.setattr(config, "shipped_model_path", lambda name="shipped": shipped)
    assert resolve_model_path(None) == shipped == resolve_model_path("shipped")
    other = tmp_path / "mine.keras"
    other.write_bytes(b"x")
    assert resolve_model_path(other) == other
    with pytest.raises(WorkbenchError, match="no such model file"):
        resolve_model_path(tmp_path / "missing.keras")


def _learned_model(dataset, path: Path, epochs: int) -> Path:
    """A tiny CNN fitted on ``dataset``'s Training split for ``epochs`` epochs (0: untrained)."""
    import keras

    from fer_workbench.models import build_model
    from fer_workbench.models.io import save_model
    from fer_workbench.preprocess import to_model_input

    keras.utils.set_random_seed(0)
    model = build_model("baseline_cnn", widths=[8, 8, 8], dense=[16, 8])
    if epochs:
        train = dataset.split("Training")
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(to_model_input(train.images), train.labels, epochs=epochs, batch_size=16, verbose=0)
    return save_model(model, path, {"preprocessing": "none"})


def test_choose_model_scores_candidates_on_publictest_and_caches(tmp_path, monkeypatch):
    from fer_workbench import config
    from fer_workbench.models.registry import CHOICE_FILE, RUN_LABEL, SHIPPED_LABEL, choose_model, run_model_path

    data = toy_dataset()
    out = tmp_path / "run"
    shipped = _learned_model(data, tmp_path / "shipped.keras", 0)
    monkeypatch.setattr(config, "shipped_model_path", lambda name="shipped": shipped)
    run_model = _learned_model(data, run_model_path(out), 12)
    choice = choose_model(None, out, data)
    by_label = {c.label: c for c in choice.candidates}
    assert set(by_label) == {RUN_LABEL, SHIPPED_LABEL}
    assert by_label[RUN_LABEL].n == (data.splits == "PublicTest").sum()
    best = max(choice.candidates, key=lambda c: c.accuracy)
    assert choice.path == best.path and choice.rule == "best PublicTest accuracy"
    assert choice.label in choice.summary() and "PublicTest" in choice.summary()
    assert next(iter(choice.models())) == choice.label and choice.table()["chosen"].sum() == 1
    assert (out / CHOICE_FILE).is_file()
    cached = choose_model(None, out, data)
    assert cached.to_dict() == choice.to_dict()
    explicit = choose_model("shipped", out, data)
    assert explicit.path == shipped and explicit.rule == "explicit" and "explicitly" in explicit.summary()
    run_model.unlink()
    assert choose_model(None, out, data).path == shipped  # the cache keys on the files that exist


def test_photos_of_a_synthetic_run_go_to_the_shipped_model(tmp_path, monkeypatch):
    """Notebook 06 on the synthetic default: the run's model wins on drawn faces but has never seen a real one, so
    photos and clips go to the shipped model; on real data, or with a model given, the usual rule holds."""
    from fer_workbench import config
    from fer_workbench.models.registry import REAL_FACES_RULE, choose_model, choose_photo_model, run_model_path

    data = toy_dataset()
    out = tmp_path / "run"
    shipped = _learned_model(data, tmp_path / "shipped.keras", 0)
    monkeypatch.setattr(config, "shipped_model_path", lambda name="shipped": shipped)
    run_model = _learned_model(data, run_model_path(out), 12)
    assert choose_model(None, out, data).path == run_model
    photos = choose_photo_model(None, out, data, synthetic=True)
    assert photos.path == shipped and photos.rule == REAL_FACES_RULE
    assert "synthetic" in photos.summary() and "never seen a real face" in photos.summary()
    assert photos.table()["chosen"].sum() == 1 and photos.table().loc[photos.label, "chosen"]
    assert choose_photo_model(None, out, data, synthetic=False).path == run_model
    assert choose_photo_model(run_model, out, data, synthetic=True).rule == "explicit"


def test_choose_model_leaves_out_models_of_other_classes(tmp_path, monkeypatch):
    from fer_workbench import config
    from fer_workbench.models import build_model
    from fer_workbench.models.io import save_model
    from fer_workbench.models.registry import choose_model, run_model_path

    data = toy_dataset()
    five = save_model(build_model("baseline_cnn", num_classes=5, widths=(4, 4, 4), dense=(8, 8)),
                      tmp_path / "five.keras")
    monkeypatch.setattr(config, "shipped_model_path", lambda name="shipped": five)
    _learned_model(data, run_model_path(tmp_path / "run"), 0)
    choice = choose_model(None, tmp_path / "run", data)
    left_out = [c for c in choice.candidates if not c.compatible]
    assert len(left_out) == 1 and "predicts 5 classes" in left_out[0].reason
    assert "Left out" in choice.summary()
    with pytest.raises(WorkbenchError, match=r"no model fits this data.*predicts 5 classes"):
        choose_model(None, tmp_path / "empty-run", data)


@pytest.mark.parametrize("name, epochs", [("fer2013-cpu", 50), ("fer2013-gpu", 300), ("ferplus-cpu", 50)])
def test_committed_recipes_are_complete_training_configs(name, epochs):
    import yaml

    from fer_workbench.config import project_root
    from fer_workbench.training import resolve_config

    raw = yaml.safe_load((project_root() / "configs" / f"{name}.yaml").read_text())
    config = resolve_config(raw, "gpu")
    assert config.epochs == epochs and config.model == "vgg"
    assert config.model_kwargs == {**raw["model_kwargs"]}  # every architecture field spelled out


def test_predict_with_models_skips_a_model_of_other_classes(run_dir, tmp_path):
    from fer_workbench.models import build_model
    from fer_workbench.models.io import load_model, save_model
    from fer_workbench.models.registry import predict_with_models

    five = save_model(build_model("baseline_cnn", num_classes=5, widths=(4, 4, 4), dense=(8, 8)),
                      tmp_path / "five.keras")
    data = toy_dataset()
    splits = {name: data.split(name) for name in ("PublicTest", "PrivateTest")}
    run_model = load_model(run_dir / "model.keras")
    predictions, skipped = predict_with_models({"run": run_dir / "model.keras", "five": five}, splits, 7,
                                               loaded={"run": run_model})
    assert list(predictions) == ["run"] and list(skipped) == ["five"] and "predicts 5 classes" in skipped["five"]
    assert predictions["run"]["PrivateTest"].shape == (len(splits["PrivateTest"]), 7)
