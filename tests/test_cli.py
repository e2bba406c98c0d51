"""The `fer-workbench` command as a user runs it: exit codes, one-line errors (the smoke pipeline end to end is
tests/test_notebooks.py)."""

import json
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import csv_text, make_rows
from PIL import Image


def run_cli(*args, timeout=900):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "fer_workbench.cli", *map(str, args)], check=False,
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_data_summary_json(small_csv):
    result = run_cli("data", "summary", small_csv[0], "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 30 and summary["counts"]["total"]["total"] == 30
    assert len(summary["checksum"]) == 64


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    images, labels, splits = make_rows(3)
    text = csv_text(images, labels, splits).splitlines()
    text[2] = "3,1 2 3,Training"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(text) + "\n")
    before = bad.read_bytes()
    result = run_cli("data", "summary", bad)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "line 3" in result.stderr and "wrong pixel count" in result.stderr
    assert bad.read_bytes() == before  # the source is never modified
    skipped = run_cli("data", "summary", bad, "--skip-bad-rows")
    assert skipped.returncode == 0 and "skipped bad rows: 1" in skipped.stdout


@pytest.mark.parametrize("args, message", [
    (("run", "--data", "/no/such/file.csv"), "no such file"),
    (("run", "--only", "99"), "unknown notebook selection"),
    (("data", "summary", "/no/such/dir"), "no such file"),
])
def test_cli_errors(args, message):
    result = run_cli(*args)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_tune_then_train_best_of(tmp_path):
    """`tune` runs a smoke search that `train --best-of` then retrains, writing a model and its card."""
    search = tmp_path / "search"
    tuned = run_cli("tune", "--kind", "random", "--profile", "smoke", "--out", search, "--json")
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    trials = json.loads(tuned.stdout)
    assert len(trials) == 2 and all("score" in t for t in trials)
    out = tmp_path / "model"
    trained = run_cli("train", "--best-of", search / "vgg", "--profile", "smoke", "--out", out, "--json")
    assert trained.returncode == 0, trained.stderr[-2000:]
    summary = json.loads(trained.stdout)
    card = json.loads((out / "model_card.json").read_text())
    assert summary["model"].endswith("model.keras") and card["seed"] == 0
    assert "PrivateTest" in json.dumps(summary["metrics"])

    # the trained model evaluates on the CSV and on a folder dataset with a class it does not know
    from fer_workbench.data import resolve_data_path
    data = resolve_data_path(None, "smoke", 0)
    evaluated = run_cli("evaluate", "--data", data, "--model", out / "model.keras", "--json")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    report = json.loads(evaluated.stdout)
    for key in ("n", "accuracy", "balanced_accuracy", "macro_f1", "log_loss", "ece", "per_class", "confusion",
                "classes", "excluded_classes", "model", "data_checksum"):
        assert key in report
    assert report["n"] == 200 and len(report["confusion"]) == 7
    folder = tmp_path / "faces"
    for name in ("happiness", "contempt"):
        (folder / name).mkdir(parents=True)
        Image.fromarray(np.full((64, 64), 90, np.uint8)).save(folder / name / "a.png")
    on_folder = json.loads(run_cli("evaluate", "--data", folder, "--model", out / "model.keras", "--json").stdout)
    assert on_folder["n"] == 1 and on_folder["excluded_classes"] == ["contempt"]
    missing = run_cli("evaluate", "--data", data, "--model", tmp_path / "none.keras")
    assert missing.returncode == 1 and "no such model file" in missing.stderr


def test_train_rejects_bad_settings(tmp_path):
    result = run_cli("train", "--profile", "smoke", "--out", tmp_path / "m", "--set", "learning_rat=0.1")
    assert result.returncode == 1 and "unknown training setting" in result.stderr
    missing = run_cli("train", "--best-of", tmp_path / "nothing", "--out", tmp_path / "m2")
    assert missing.returncode == 1 and "not a search directory" in missing.stderr


@pytest.mark.slow
def test_clean_writes_manifest_and_honours_decisions(tmp_path):
    from fer_workbench.cleaning import read_manifest
    from fer_workbench.cleaning.review import record_decision
    from fer_workbench.data import load_dataset, resolve_data_path

    out = tmp_path / "clean"
    first = run_cli("clean", "--profile", "smoke", "--out", out, "--no-label-issues", "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    summary = json.loads(first.stdout)
    assert summary["rows"] == 2000 and summary["flagged"]["nonface"] > 0
    manifest = read_manifest(out / "manifest.csv")
    assert list(manifest.columns[:3]) == ["row_id", "split", "label"] and len(manifest) == 2000
    row = int(manifest.loc[manifest["flag_nonface"].astype(bool), "row_id"].iloc[0])
    dataset = load_dataset(resolve_data_path(None, "smoke", 0))
    record_decision(out / "decisions.json", dataset, row, "nonface", "reject")
    second = run_cli("clean", "--profile", "smoke", "--out", out, "--no-label-issues", "--json")
    again = json.loads(second.stdout)
    assert again["decisions_applied"] >= 1
    assert again["excluded_by"]["nonface"] == summary["excluded_by"]["nonface"] - 1


# Options whose allowed values another module owns: (arguments before the option, option, the owner's values).
OWNED_CHOICES = [
    (["predict", "photo.png"], "--detector", "fer_workbench.faces", "DETECTORS"),
    (["clean", "--out", "o"], "--imbalance", "fer_workbench.cleaning.imbalance", "STRATEGIES"),
    (["tune", "--out", "o"], "--role", "fer_workbench.distributed.cluster", "ROLES"),
    *[([*command, "--out", "o"], "--profile", "fer_workbench.config", "PROFILES")
      for command in (["run"], ["train"], ["tune"], ["clean"], ["data", "make-default"])],
]


@pytest.mark.parametrize("argv, option, module, name", OWNED_CHOICES,
                         ids=[f"{argv[0]} {option}" for argv, option, *_ in OWNED_CHOICES])
def test_choices_are_exactly_their_owners_values(argv, option, module, name, capsys):
    """Every value the owner defines parses; a wrong one is refused with a list that is the owner's, no more."""
    import importlib

    from fer_workbench.cli import build_parser

    owned = list(getattr(importlib.import_module(module), name))
    parser = build_parser()
    dest = option.lstrip("-").replace("-", "_")
    for value in owned:
        assert getattr(parser.parse_args([*argv, option, value]), dest) == value
    with pytest.raises(SystemExit) as refused:
        parser.parse_args([*argv, option, "bogus"])
    err = capsys.readouterr().err
    assert refused.value.code == 2 and err.count("\n") == 1 and "invalid choice: 'bogus'" in err
    assert sorted(re.findall(r"'([^']*)'", err.split("choose from", 1)[1])) == sorted(owned)


def test_model_names_and_tuner_kinds_are_checked_by_their_owners(small_csv, tmp_path, capsys):
    """`train --model` and `tune --kind` take every name their owners define, and a wrong one gets the owner's
    one-line message (those owners load TensorFlow, so the subcommand checks them, not argparse)."""
    from fer_workbench import cli
    from fer_workbench.models import MODEL_NAMES
    from fer_workbench.tuning import TUNER_KINDS

    parser = cli.build_parser()
    assert [parser.parse_args(["train", "--out", "o", "--model", n]).model for n in MODEL_NAMES] == list(MODEL_NAMES)
    assert [parser.parse_args(["tune", "--out", "o", "--kind", k]).kind for k in TUNER_KINDS] == list(TUNER_KINDS)
    data = str(small_csv[0])
    with warnings.catch_warnings():  # restores the showwarning hook main() installs
        warnings.simplefilter("ignore")
        assert cli.main(["train", "--data", data, "--model", "bogus", "--out", str(tmp_path / "train")]) == 1
        err = capsys.readouterr().err
        assert err == f"fer-workbench: error: unknown model 'bogus'; choose one of {', '.join(MODEL_NAMES)}\n"
        assert cli.main(["tune", "--data", data, "--kind", "bogus", "--out", str(tmp_path / "tune")]) == 1
        err = capsys.readouterr().err
        assert err == f"fer-workbench: error: unknown tuner 'bogus'; choose one of {', '.join(TUNER_KINDS)}\n"
    assert not (tmp_path / "tune").exists() and not (tmp_path / "train").exists()


NO_TENSORFLOW_SCRIPT = """
import json, sys
from fer_workbench import cli

loaded = {}
for argv in json.loads(sys.argv[1]):
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    heavy = sorted(m for m in ("tensorflow", "keras", "keras_tuner", "grpc") if m in sys.modules)
    loaded[" ".join(argv)] = [code, heavy]
print(json.dumps(loaded))
"""


def test_help_and_early_errors_do_not_load_tensorflow(tmp_path):
    """--help, `data summary` of a broken file and the errors argparse or a cheap check finds come back without
    TensorFlow (or keras-tuner, grpc): one process, checked after each command in turn."""
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    out = str(tmp_path / "out")
    commands = [["--help"], ["tune", "--help"], ["clean", "--help"], ["predict", "--help"],
                ["data", "summary", str(bad)],
                ["predict", "photo.png", "--detector", "bogus"],
                ["clean", "--imbalance", "bogus", "--out", out],
                ["tune", "--role", "boss", "--out", out],
                ["tune", "--role", "worker", "--oracle", "no-port", "--out", out],
                ["train", "--data", str(bad), "--out", out],
                ["evaluate", "--data", str(bad)]]
    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW_SCRIPT, json.dumps(commands)], check=False,
                            capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    expected_codes = [0, 0, 0, 0, 1, 2, 2, 2, 1, 1, 1]
    assert [code for code, _ in loaded.values()] == expected_codes, result.stderr[-2000:]
    assert {argv: heavy for argv, (_, heavy) in loaded.items() if heavy} == {}
