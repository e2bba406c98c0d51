"""The CLI's error contract, subcommand by subcommand: a bad invocation exits non-zero (2 for usage errors, 1 for
everything else) with exactly one line on stderr naming the problem, and changes no file outside its --out.

Each case runs the CLI in a sandbox folder of inputs (valid and broken CSVs, photos, models of the wrong shape or
with logits), fingerprinted before and after: the whole table through ``cli.main`` in this process, and a few
cases again as a fresh ``python -m fer_workbench.cli`` process (start-up output included).
"""

import hashlib
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import csv_text, limit_tf_threads, make_rows, save_tiny_model
from PIL import Image

from fer_workbench.errors import MAX_MESSAGE

# TensorFlow / absl start-up lines, ignored only if they still reach stderr (the CLI silences them).
TF_STARTUP = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IWEF]\d{4} \d\d:\d\d:\d\d"
                        r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |To enable the following instructions)")
ESCAPE = "\x1b"

limit_tf_threads()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    import keras

    root = tmp_path_factory.mktemp("sandbox")
    good = csv_text(*make_rows(21))
    (root / "good.csv").write_text(good)
    lines = good.splitlines()
    lines[3] = "3,1 2 3,Training"
    (root / "bad.csv").write_text("\n".join(lines) + "\n")
    (root / "utf16.csv").write_bytes(good.encode("utf-16"))
    (root / "evil.csv").write_bytes(b"\x1b]0;pwned\x07\x1b[2Jemotion,pix\r\n1,2\r\n")
    (root / "crjunk.csv").write_bytes(b"a,b,c\r" * 15000)
    (root / "longheader.csv").write_bytes(b"x" * 85_000 + b"\n1,2,3\n")
    (root / "afile").write_text("a plain file, not a directory")
    (root / "bad.yaml").write_text("[1, 2")
    (root / "norun").mkdir()
    (root / "folder").mkdir()
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(root / "photo.png")
    (root / "empty.jpg").write_bytes(b"")
    save_tiny_model(root / "tiny.keras")
    rgb = keras.Input((64, 64, 3))
    probabilities = keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(rgb))
    keras.Model(rgb, probabilities).save(root / "rgb64.keras")
    gray = keras.Input((48, 48, 1))
    keras.Model(gray, keras.layers.Dense(7)(keras.layers.Flatten()(gray))).save(root / "logits.keras")
    return root


def fingerprint(root: Path, skip: Path | None) -> dict[str, tuple]:
    """Every file and folder under ``root`` (except under ``skip``): contents hash, size and permission bits."""
    found = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        found[str(path.relative_to(root))] = (digest, info.st_size if path.is_file() else 0, info.st_mode)
    return found


# (id, argv, exit status, text the one stderr line must contain, exact stdout or None)
CASES = [
    ("run-out-is-file", ["run", "--out", "afile"], 1, "--out afile: exists and is not a directory", None),
    ("run-out-proc", ["run", "--out", "/proc/x"], 1, "--out /proc/x: cannot create files in /proc", None),
    ("run-missing-data", ["run", "--data", "missing.csv", "--out", "outs/run"], 1,
     "missing.csv: no such file", None),
    ("run-ferplus-device", ["run", "--ferplus", "/dev/zero", "--out", "outs/run"], 1,
     "--ferplus /dev/zero: not a regular file", None),
    ("train-out-is-file", ["train", "--data", "good.csv", "--out", "afile"], 1, "exists and is not a directory", None),
    ("train-out-below-file", ["train", "--data", "good.csv", "--out", "afile/run"], 1,
     "--out afile/run: cannot be created", None),
    ("train-bad-rows", ["train", "--data", "bad.csv", "--out", "outs/train"], 1,
     "bad.csv: 1 bad row: wrong pixel count on line 4 (skip_bad_rows=True / --skip-bad-rows drops them)", None),
    ("train-config-device", ["train", "--config", "/dev/zero", "--out", "outs/train"], 1,
     "--config /dev/zero: not a regular file", None),
    ("train-config-bad-yaml", ["train", "--data", "good.csv", "--config", "bad.yaml", "--out", "outs/train"], 1,
     "bad.yaml: not valid JSON or YAML", None),
    ("train-no-out", ["train"], 2, "the following arguments are required: --out", None),
    ("train-unknown-model", ["train", "--data", "good.csv", "--model", "bogus", "--out", "outs/train"], 1,
     "unknown model 'bogus'; choose one of vgg, ", None),
    ("probe-no-probes", ["probe", "--config", "bad.yaml", "--out", "outs/probe"], 2,
     "the following arguments are required: --probes", None),
    ("probe-probes-device", ["probe", "--config", "bad.yaml", "--probes", "/dev/zero", "--out", "outs/probe"], 1,
     "--probes /dev/zero: not a regular file", None),
    ("probe-config-bad-yaml", ["probe", "--data", "good.csv", "--config", "bad.yaml", "--probes", "bad.yaml",
                               "--out", "outs/probe"], 1, "bad.yaml: not valid JSON or YAML", None),
    ("tune-out-is-file", ["tune", "--out", "afile"], 1, "--out afile: exists and is not a directory", None),
    ("tune-utf16", ["tune", "--data", "utf16.csv", "--out", "outs/tune"], 1,
     "utf16.csv: UTF-16 text (byte-order mark ff fe); save it as UTF-8", None),
    ("tune-unknown-kind", ["tune", "--data", "good.csv", "--kind", "bogus", "--out", "outs/tune"], 1,
     "unknown tuner 'bogus'; choose one of hyperband, ", None),
    ("clean-out-is-file", ["clean", "--data", "good.csv", "--out", "afile"], 1, "exists and is not a directory", None),
    ("clean-out-proc", ["clean", "--data", "good.csv", "--out", "/proc/x"], 1, "cannot create files in /proc", None),
    ("clean-escape-header", ["clean", "--data", "evil.csv", "--out", "outs/clean"], 1,
     r"(header has: '\x1b]0;pwned\x07\x1b[2Jemotion,pix')", None),
    ("clean-decisions-folder", ["clean", "--data", "good.csv", "--decisions", "folder", "--out", "outs/clean"], 1,
     "--decisions folder: not a regular file", None),
    ("ablate-cleaning-unknown-variant", ["ablate-cleaning", "--data", "good.csv", "--variants", "raw,bogus", "--out",
                                         "outs/ablate"], 1, "unknown cleaning-ablation variant 'bogus'", None),
    ("ablate-cleaning-manifest-folder", ["ablate-cleaning", "--data", "good.csv", "--manifest", "folder", "--out",
                                         "outs/ablate"], 1, "--manifest folder: not a regular file", None),
    ("ablate-cleaning-bad-seeds", ["ablate-cleaning", "--data", "good.csv", "--seeds", "0,x", "--out", "outs/ablate"],
     1, "--seeds expects comma-separated integers", None),
    ("ship-no-model", ["ship", "norun"], 1, "norun: no model.keras", None),
    ("ship-to-proc", ["ship", "norun", "--to", "/proc/model.keras"], 1,
     "--to /proc/model.keras: cannot create files in /proc", None),
    ("model-card-bad-rows", ["model-card", "--data", "bad.csv", "--out", "outs/card"], 1, "1 bad row", None),
    ("model-card-out-is-file", ["model-card", "--data", "good.csv", "--out", "afile"], 1,
     "exists and is not a directory", None),
    ("evaluate-rgb-model", ["evaluate", "--data", "good.csv", "--model", "rgb64.keras"], 1,
     "rgb64.keras: expects inputs of shape 64×64×3; the workbench gives 48×48×1", None),
    ("evaluate-logits-model", ["evaluate", "--data", "good.csv", "--model", "logits.keras"], 1,
     "logits.keras: outputs are not class probabilities", None),
    ("evaluate-device-data", ["evaluate", "--data", "/dev/zero"], 1, "/dev/zero: not a FER2013 CSV", None),
    ("predict-device", ["predict", "/dev/zero", "--model", "tiny.keras", "--detector", "haar"], 1,
     "none of the inputs could be read",
     "/dev/zero: a character device, not a regular file or a pipe: refused\n"),
    ("predict-empty-named-once", ["predict", "empty.jpg", "--model", "tiny.keras", "--detector", "haar"], 1,
     "none of the inputs could be read", "empty.jpg: empty file (0 bytes)\n"),
    ("predict-rgb-model", ["predict", "photo.png", "--model", "rgb64.keras"], 1, "expects inputs of shape 64×64×3",
     ""),
    ("predict-unknown-detector", ["predict", "photo.png", "--detector", "bogus"], 2,
     "argument --detector: invalid choice: 'bogus' (choose from 'auto', ", None),
    ("predict-logits-model", ["predict", "photo.png", "--model", "logits.keras"], 1,
     "outputs are not class probabilities", ""),
    ("summary-utf16", ["data", "summary", "utf16.csv"], 1, "UTF-16 text", None),
    ("summary-cr-only", ["data", "summary", "crjunk.csv"], 1, "(header has: 'a,b,c')", None),
    ("summary-long-header", ["data", "summary", "longheader.csv"], 1, "more characters)", None),
    ("summary-device", ["data", "summary", "/dev/zero"], 1, "/dev/zero: not a FER2013 CSV", None),
    ("make-default-out-is-file", ["data", "make-default", "--out", "afile"], 1,
     "--out afile: exists and is not a directory", None),
    ("clear-cache-bad-option", ["data", "clear-cache", "--bogus"], 2, "unrecognized arguments: --bogus", None),
]


def _out_dir(argv: list[str]) -> str | None:
    for flag in ("--out", "--to"):
        if flag in argv:
            return argv[argv.index(flag) + 1]
    return None


def test_every_subcommand_has_cases():
    from fer_workbench.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    covered = {argv[0] if argv[0] != "data" else f"data {argv[1]}" for _, argv, *_ in CASES}
    expected = {c for c in commands if c != "data"} | {f"data {c}" for c in commands["data"]._subparsers
                                                       ._group_actions[0].choices}
    assert expected <= covered, f"subcommands without contract cases: {expected - covered}"


def _check(status, stdout, stderr, sandbox, out_path, before, want_status, says, want_stdout):
    lines = [line for line in stderr.splitlines() if not TF_STARTUP.match(line)]
    assert status == want_status, stderr[-3000:]
    assert len(lines) == 1, stderr[-3000:]
    line = lines[0]
    assert line.startswith("fer-workbench") and ": error: " in line and says in line, line
    assert len(line) <= MAX_MESSAGE + 40 and ESCAPE not in stderr and "\x07" not in stderr
    assert "Traceback" not in stderr
    if want_stdout is not None:
        assert stdout == want_stdout
    assert fingerprint(sandbox, out_path) == before, "a file outside --out changed"


def _out_path(sandbox: Path, argv: list[str]) -> Path | None:
    out = _out_dir(argv)
    return (sandbox / out).resolve() if out and not out.startswith("/") else None


LINUX = os.path.isdir("/proc/self") and os.path.exists("/dev/zero")


@pytest.mark.skipif(not LINUX, reason="needs /proc and /dev/zero")
@pytest.mark.parametrize("argv, status, says, stdout", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_invocation_is_one_line_and_touches_nothing(sandbox, tmp_path, monkeypatch, capfd, argv, status, says,
                                                        stdout):
    """In this process (fast: TensorFlow is loaded once), through ``cli.main`` as the console script calls it."""
    from fer_workbench import cli

    out_path = _out_path(sandbox, argv)
    before = fingerprint(sandbox, out_path)
    monkeypatch.chdir(sandbox)
    monkeypatch.setenv("FER_WORKBENCH_HOME", str(tmp_path / "home"))
    capfd.readouterr()
    with warnings.catch_warnings():  # restores the showwarning hook main() installs
        warnings.simplefilter("ignore")
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
    captured = capfd.readouterr()
    _check(code, captured.out, captured.err, sandbox, out_path, before, status, says, stdout)


SUBPROCESS_CASES = ("clear-cache-bad-option", "run-out-proc", "predict-empty-named-once", "evaluate-rgb-model")


@pytest.mark.skipif(not LINUX, reason="needs /proc and /dev/zero")
@pytest.mark.parametrize("case", [c for c in CASES if c[0] in SUBPROCESS_CASES], ids=lambda c: c[0])
def test_bad_invocation_in_a_fresh_process(sandbox, tmp_path, case):
    """The same contract for the real command, start-up included (TensorFlow's start-up lines must not count)."""
    _, argv, status, says, stdout = case
    out_path = _out_path(sandbox, argv)
    before = fingerprint(sandbox, out_path)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "FER_WORKBENCH_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-m", "fer_workbench.cli", *argv], cwd=sandbox, env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    _check(result.returncode, result.stdout, result.stderr, sandbox, out_path, before, status, says, stdout)
