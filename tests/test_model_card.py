"""Shipping a run as the package model and writing the model card's figures and summary page."""

import json

import pytest
from conftest import csv_text, limit_tf_threads
from test_training import TINY_VGG, toy_dataset

from fer_workbench import WorkbenchError
from fer_workbench.cli import main
from fer_workbench.model_card import read_card, ship_run, write_card_report
from fer_workbench.training import available_models, card_path_for, resolve_model_path, train

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
    with pytest.raises(WorkbenchError, match="no model.keras"):
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


def test_cli_ship_and_model_card(run_dir, tmp_path, capsys):
    assert main(["ship", str(run_dir), "--to", str(tmp_path / "m.keras")]) == 0
    dataset = toy_dataset()
    csv = tmp_path / "toy.csv"
    csv.write_text(csv_text(dataset.images, dataset.labels, dataset.splits))
    capsys.readouterr()
    assert main(["model-card", "--data", str(csv), "--model", str(tmp_path / "m.keras"), "--out",
                 str(tmp_path / "card"), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"single_crop", "tta", "leakage_free"}
    assert main(["ship", str(tmp_path / "nothing")]) != 0
    assert "no model.keras" in capsys.readouterr().err


def test_resolve_model_path_order(tmp_path, monkeypatch):
    from fer_workbench import config

    shipped = tmp_path / "assets" / "fer2013_model.keras"
    run_model = tmp_path / "out" / "models" / "best" / "model.keras"
    for path in (shipped, run_model):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
    monkeypatch.setattr(config, "shipped_model_path", lambda: shipped)
    assert resolve_model_path(None, tmp_path / "out") == shipped
    assert resolve_model_path(None, tmp_path / "out", prefer="run") == run_model
    assert list(available_models(None, tmp_path / "out", prefer="run").items()) == [
        ("this run's notebook-03 model", run_model.resolve()), ("shipped FER2013 model", shipped.resolve())]
    other = tmp_path / "mine.keras"
    other.write_bytes(b"x")
    assert list(available_models(other, tmp_path / "out")) == ["mine.keras", "shipped FER2013 model",
                                                                "this run's notebook-03 model"]
    assert list(available_models(shipped, None)) == ["shipped FER2013 model"]
    run_model.unlink()
    assert resolve_model_path(None, tmp_path / "out", prefer="run") == shipped
    with pytest.raises(WorkbenchError, match="no such model file"):
        resolve_model_path(tmp_path / "missing.keras")


@pytest.mark.parametrize("name, epochs", [("fer2013-cpu", 50), ("fer2013-gpu", 300)])
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
    from fer_workbench.training import load_model, predict_with_models, save_model

    five = save_model(build_model("baseline_cnn", num_classes=5, widths=(4, 4, 4), dense=(8, 8)), tmp_path / "five.keras")
    data = toy_dataset()
    splits = {name: data.split(name) for name in ("PublicTest", "PrivateTest")}
    run_model = load_model(run_dir / "model.keras")
    predictions, skipped = predict_with_models({"run": run_dir / "model.keras", "five": five}, splits, 7,
                                               loaded={"run": run_model})
    assert list(predictions) == ["run"] and list(skipped) == ["five"] and "predicts 5 classes" in skipped["five"]
    assert predictions["run"]["PrivateTest"].shape == (len(splits["PrivateTest"]), 7)
