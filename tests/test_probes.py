"""Probes (issue 15): short controlled trainings of one recipe with one change each, resumable, reported as a
table chosen on PublicTest; the `probe` subcommand, the committed probe file, the card's and notebook 03's table.

The study runs on a 400-row synthetic dataset with a tiny VGG for one epoch per probe.
"""

import json

import numpy as np
import pytest
import yaml
from conftest import limit_tf_threads

from fer_workbench import WorkbenchError, cli
from fer_workbench.data import load_dataset
from fer_workbench.data.synthetic import write_synthetic_dataset
from fer_workbench.probes import (
    Probe,
    committed_probe_table,
    load_probes,
    parse_probes,
    probe_config,
    read_probe_report,
    run_probes,
    select_probes,
    write_probe_report,
)

limit_tf_threads()

TINY = {"blocks": 1, "base_width": 4, "max_width": 4, "fc_units": 8, "fc_layers": 1, "global_pool": True}
BASE = {"model": "vgg", "model_kwargs": TINY, "optimizer": "adam", "learning_rate": 0.003, "schedule": "cosine",
        "augment": 0.3, "batch_size": 32}
PROBES = {"epochs": 1, "probes": [
    {"name": "baseline", "overrides": {}, "description": "the recipe as it is"},
    {"name": "wider", "overrides": {"model_kwargs": {"base_width": 8, "max_width": 8}}},
    {"name": "mixup0.2", "overrides": {"mixup": 0.2, "label_smoothing": 0.1}},
]}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("probes")
    data = write_synthetic_dataset(root, 400, seed=0)
    (root / "base.yaml").write_text(yaml.safe_dump(BASE))
    (root / "probes.yaml").write_text(yaml.safe_dump(PROBES))
    return root, data


@pytest.fixture(scope="module")
def study(files):
    root, data = files
    dataset = load_dataset(data)
    results = run_probes(dataset, root / "base.yaml", root / "probes.yaml", root / "study", epochs=1, seed=0,
                         profile="smoke", progress=False)
    return dataset, results


def test_every_probe_trains_the_same_budget_and_reports_a_table(study):
    dataset, results = study
    assert results.trained_now == ["baseline", "wider", "mixup0.2"]
    table = results.table()
    assert list(table["probe"]) == ["baseline", "wider", "mixup0.2"]
    assert list(table.columns[:3]) == ["probe", "overrides", "publictest_accuracy"]
    assert json.loads(table.loc[1, "overrides"]) == {"model_kwargs": {"base_width": 8, "max_width": 8}}
    assert table["publictest_accuracy"].between(0, 1).all() and table["privatetest_accuracy"].between(0, 1).all()
    assert (table["best_epoch"] == 1).all() and (table["kept"] == "best_epoch").all()
    assert table.loc[1, "params"] > table.loc[0, "params"] == table.loc[2, "params"]
    assert (table["images_per_second"] > 0).all() and (table["seconds"] > 0).all()
    # the baseline is the reference: no difference for itself, an interval around each other probe's
    assert np.isnan(table.loc[0, "publictest_vs_baseline"])
    for i in (1, 2):
        row = table.loc[i]
        assert row.vs_baseline_low <= row.publictest_vs_baseline <= row.vs_baseline_high
        assert np.isclose(row.publictest_vs_baseline, row.publictest_accuracy - table.loc[0, "publictest_accuracy"])
    configs = {row["probe"]: row["config"] for row in results.rows}
    assert {c["epochs"] for c in configs.values()} == {1} and {c["early_stopping_patience"] for c in configs.values()} \
        == {0}
    assert configs["mixup0.2"]["mixup"] == 0.2 and configs["baseline"]["mixup"] == 0.0
    assert results.study["data_checksum"] == dataset.checksum


def test_finished_probes_are_not_retrained(study, files, monkeypatch):
    from fer_workbench import training

    root, _ = files
    dataset, first = study

    def no_training(*args, **kwargs):
        raise AssertionError("a finished probe was retrained")

    monkeypatch.setattr(training, "train", no_training)
    again = run_probes(dataset, root / "base.yaml", root / "probes.yaml", root / "study", epochs=1, seed=0,
                       profile="smoke", progress=False, only=["mixup0.2", "baseline"])
    assert again.trained_now == []
    assert list(again.table()["probe"]) == ["baseline", "mixup0.2"]
    assert again.table()["publictest_accuracy"].tolist() == first.table()["publictest_accuracy"].iloc[[0, 2]].tolist()


def test_an_averaging_probe_shares_its_partners_run(study, files, tmp_path, monkeypatch):
    """The baseline and "baseline + average_last" train one run: the baseline's row is that run's best epoch, the
    same model a run of its own gives (same seed, same trajectory); a lone averaging probe trains on its own."""
    from fer_workbench import training

    root, _ = files
    dataset, first = study
    calls = []
    real_train = training.train
    monkeypatch.setattr(training, "train", lambda *a, **k: calls.append(a[2].name) or real_train(*a, **k))
    probes = [Probe("baseline"), Probe("average-last1", {"average_last": 1})]
    shared = run_probes(dataset, root / "base.yaml", probes, tmp_path / "shared", epochs=1, seed=0,
                        profile="smoke", progress=False)
    assert calls == ["average-last1"] and shared.trained_now == ["average-last1", "baseline"]
    table = shared.table()
    assert list(table["probe"]) == ["baseline", "average-last1"]
    base, averaged = shared.rows
    assert base["shared_run"] == "average-last1" and base["kept"] == "best_epoch" and base["averaging"] is None
    assert base["config"]["average_last"] == 0 and averaged["config"]["average_last"] == 1
    assert averaged["averaging"]["kept"] in ("averaged", "best_epoch")
    assert base["publictest_accuracy"] == first.rows[0]["publictest_accuracy"]
    assert base["privatetest_accuracy"] == first.rows[0]["privatetest_accuracy"]
    assert base["publictest_accuracy"] == pytest.approx(averaged["averaging"]["publictest_accuracy"]["best_epoch"])
    calls.clear()
    run_probes(dataset, root / "base.yaml", probes, tmp_path / "alone", epochs=1, seed=0, profile="smoke",
               progress=False, only=["average-last1"])
    assert calls == ["average-last1"]


def test_another_study_or_changed_probe_in_the_same_directory_is_refused(study, files):
    root, _ = files
    dataset, _ = study
    with pytest.raises(WorkbenchError, match=r"holds other probes \(differs in: epochs\)"):
        run_probes(dataset, root / "base.yaml", root / "probes.yaml", root / "study", epochs=2, seed=0,
                   profile="smoke", progress=False)
    changed = [Probe("baseline", {"augment": 0.0})]
    with pytest.raises(WorkbenchError, match="probe baseline ran with other overrides"):
        run_probes(dataset, BASE, changed, root / "study", epochs=1, seed=0, profile="smoke", progress=False)


def test_a_bad_probe_is_refused_before_anything_trains(study, tmp_path):
    dataset, _ = study
    probes = [Probe("baseline"), Probe("bad", {"cutmix": -1})]
    with pytest.raises(WorkbenchError, match=r"^probe bad: cutmix must be a number >= 0"):
        run_probes(dataset, BASE, probes, tmp_path / "study", epochs=1, profile="smoke", progress=False)
    assert not (tmp_path / "study").exists()
    with pytest.raises(WorkbenchError, match="probe typo: unknown training setting"):
        run_probes(dataset, BASE, [Probe("typo", {"mixpu": 0.2})], tmp_path / "study", epochs=1, profile="smoke")


def test_report_figure_card_and_notebook_table(study, tmp_path):
    from fer_workbench.model_card import _probes_beside, card_markdown

    dataset, results = study
    paths = write_probe_report(results, tmp_path / "report", command="fer-workbench probe ...")
    document = read_probe_report(paths["report"])
    assert document["selected_on"] == "PublicTest" and document["study"]["data_checksum"] == dataset.checksum
    best = max(document["probes"], key=lambda row: row["publictest_accuracy"])
    assert document["best_on_publictest"] == best["probe"]
    assert all("publictest_correct" not in row for row in document["probes"])  # no per-image data in the report
    assert paths["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    table, note = committed_probe_table(dataset, paths["report"])
    assert list(table["probe"]) == ["baseline", "wider", "mixup0.2"] and "chosen on PublicTest" in note
    other = load_dataset(write_synthetic_dataset(tmp_path, 300, seed=1))
    table, note = committed_probe_table(other, paths["report"])
    assert table is None and "run on other data" in note
    table, note = committed_probe_table(dataset, tmp_path / "missing.json")
    assert table is None and "no committed probe report" in note

    assert _probes_beside(paths["report"].parent, dataset) == document  # the model card's page shows them
    assert _probes_beside(paths["report"].parent, other) is None  # ...only for the same data

    evaluation = {"accuracy": 0.5, "macro_f1": 0.4, "balanced_accuracy": 0.4, "log_loss": 1.2, "ece": 0.05,
                  "per_class": {}}
    page = card_markdown({"metadata": {}}, evaluation, None, {"n": 10, "accuracy": 0.5}, document)
    assert "## Probes: 1 epochs each, seed 0, selection on PublicTest" in page
    assert "| wider | `{\"model_kwargs\": {\"base_width\": 8, \"max_width\": 8}}` |" in page


# ------------------------------------------------------------------------------------------------ probe files


def test_probe_files_are_checked():
    probes, epochs = parse_probes(PROBES)
    assert epochs == 1 and [p.name for p in probes] == ["baseline", "wider", "mixup0.2"]
    assert [p.name for p in select_probes(probes, ["mixup0.2", "baseline"])] == ["baseline", "mixup0.2"]
    with pytest.raises(WorkbenchError, match=r"unknown probe\(s\) bogus; the probe file has baseline, wider"):
        select_probes(probes, ["bogus"])
    bad = [({"probes": []}, "expected a non-empty list of probes"),
           ({"probes": [{"name": "a"}, {"name": "a"}]}, r"probe name\(s\) a used more than once"),
           ({"probes": [{"name": "a/b"}]}, "must be letters, digits"),
           ({"probes": [{"name": "a", "overrides": {"epochs": 3}}]}, "probe a sets epochs: every probe trains the"),
           ({"probes": [{"name": "a", "override": {}}]}, r"unknown key\(s\) override"),
           ({"probes": [{"name": "a"}], "seed": 1}, r"unknown key\(s\) seed"),
           ({"epochs": 0, "probes": [{"name": "a"}]}, "epochs must be a whole number of epochs >= 1")]
    for values, says in bad:
        with pytest.raises(WorkbenchError, match=says):
            parse_probes(values, "p.yaml")


def test_model_kwargs_overrides_merge_into_the_base():
    config = probe_config(BASE, Probe("w", {"model_kwargs": {"base_width": 8}, "mixup": 0.2}), 4)
    assert config["model_kwargs"] == {**TINY, "base_width": 8} and config["mixup"] == 0.2
    assert config["epochs"] == 4 and config["early_stopping_patience"] == 0 and BASE["model_kwargs"] == TINY


def test_the_committed_probe_file_resolves_against_the_shipped_recipe():
    from fer_workbench.config import project_root
    from fer_workbench.training import resolve_config

    root = project_root() / "configs"
    base = yaml.safe_load((root / "fer2013-cpu.yaml").read_text())
    probes, epochs = load_probes(root / "fer2013-probes.yaml")
    names = [p.name for p in probes]
    assert names[0] == "baseline" and probes[0].overrides == {} and epochs >= 1
    configs = {p.name: resolve_config(probe_config(base, p, epochs), "cpu") for p in probes}
    baseline = configs["baseline"].to_dict()
    assert baseline == {**resolve_config(base, "cpu").to_dict(), "epochs": epochs}
    changed = {name: sorted(k for k, v in c.to_dict().items() if v != baseline[k]) for name, c in configs.items()}
    assert changed["baseline"] == [] and all(changed[name] for name in names[1:])  # each probe changes something
    assert configs["width64"].model_kwargs["base_width"] == 64


# ------------------------------------------------------------------------------------------------- the CLI


def test_cli_probe_reads_back_a_finished_study(study, files, tmp_path, capsys):
    root, data = files
    code = cli.main(["probe", "--data", str(data), "--config", str(root / "base.yaml"), "--probes",
                     str(root / "probes.yaml"), "--out", str(root / "study"), "--report", str(tmp_path / "report"),
                     "--profile", "smoke", "--only", "baseline,wider", "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["trained_now"] == [] and [row["probe"] for row in printed["probes"]] == ["baseline", "wider"]
    assert (tmp_path / "report" / "probes.json").is_file() and (tmp_path / "report" / "probes.png").is_file()


@pytest.mark.parametrize("extra, says", [
    (["--only", "bogus"], "unknown probe(s) bogus; the probe file has baseline, wider, mixup0.2"),
    (["--epochs", "0"], "--epochs must be a whole number of epochs >= 1, got 0"),
    (["--report", "{afile}"], "--report {afile}: exists and is not a directory"),
])
def test_cli_probe_errors_are_one_line(files, tmp_path, capsys, extra, says):
    root, data = files
    afile = tmp_path / "afile"
    afile.write_text("x")
    code = cli.main(["probe", "--data", str(data), "--config", str(root / "base.yaml"), "--probes",
                     str(root / "probes.yaml"), "--out", str(tmp_path / "out"), "--profile", "smoke",
                     *(part.format(afile=afile) for part in extra)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0] == "fer-workbench: error: " + says.format(afile=afile)
    assert not (tmp_path / "out").exists()


def test_cli_probe_needs_epochs_and_a_probe_list(files, tmp_path, capsys):
    root, data = files
    no_epochs = tmp_path / "no-epochs.yaml"
    no_epochs.write_text(yaml.safe_dump({"probes": PROBES["probes"]}))
    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text("- 1\n- 2\n")
    for probes, says in ((no_epochs, "give --epochs (or an 'epochs:' entry in"),
                         (not_a_mapping, "expected a mapping of probes")):
        code = cli.main(["probe", "--data", str(data), "--config", str(root / "base.yaml"), "--probes", str(probes),
                         "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and len(err) == 1 and says in err[0]
    with pytest.raises(SystemExit) as exited:
        cli.main(["probe", "--config", str(root / "base.yaml"), "--out", str(tmp_path / "out")])
    assert exited.value.code == 2 and "--probes" in capsys.readouterr().err


def test_epoch_progress_counts_epochs_and_shows_publictest_accuracy(capsys):
    """Probes train with verbose=0; their per-epoch bar says how far a 20-minute probe is (a resumed run's bar
    starts at its epoch)."""
    from fer_workbench.training import EpochProgress

    bar = EpochProgress("baseline")
    bar.set_params({"epochs": 10})
    bar.on_train_begin()
    bar.on_epoch_end(3, {"val_accuracy": 0.4567})
    assert bar.bar.n == 4 and bar.bar.total == 10
    bar.on_train_end()
    err = capsys.readouterr().err
    assert "baseline" in err and "4/10" in err and "val_accuracy=0.457" in err
