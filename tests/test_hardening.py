"""Issue 14: the bad inputs a careless user tried each get one clear line; nothing crashes, nothing is lost.

Each test names the issue's item it reproduces. The command-line side (exit codes, one stderr line, no file
outside --out touched) is tests/test_cli_contract.py; random corruptions are tests/test_properties.py.
"""

import io
import os
import stat
import threading
import warnings

import keras
import numpy as np
import pytest
from conftest import csv_text, limit_tf_threads, make_rows
from PIL import Image

from fer_workbench import WorkbenchError, cli
from fer_workbench.data import load_dataset
from fer_workbench.data.fer_csv import load_fer_csv, parse_fer_csv_bytes
from fer_workbench.data.folders import load_image_folder
from fer_workbench.errors import MAX_MESSAGE, MAX_QUOTED, one_line, printable, quote
from fer_workbench.files import check_output_dir, check_output_file, read_bounded
from fer_workbench.models.compatibility import check_model
from fer_workbench.photos import PhotoError, load_photo

limit_tf_threads()


def assert_one_clean_line(message: str) -> None:
    """One line a terminal shows as text: no line breaks, NULs, escapes or bells, and not endless."""
    assert message and len(message) <= MAX_MESSAGE + 40
    for char in "\n\r\x00\x1b\x07\x9b\u202e":
        assert char not in message, (char, message[:200])


def good_csv_bytes(n: int = 9) -> bytes:
    return csv_text(*make_rows(n)).encode()


def small_png(size=(64, 48), color=(90, 120, 150)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def dense_model(input_shape=(48, 48, 1), units=7, activation="softmax", softmax_layer=False) -> keras.Model:
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(units, activation=None if softmax_layer else activation)(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Softmax()(x) if softmax_layer else x)


# ------------------------------------------------------------------------------------------ 1. output paths


def test_output_dir_that_is_a_file_is_refused_and_left_alone(tmp_path):
    existing = tmp_path / "report.html"
    existing.write_text("keep me")
    with pytest.raises(WorkbenchError, match=r"--out .*report\.html: exists and is not a directory") as info:
        check_output_dir(existing)
    assert_one_clean_line(str(info.value))
    with pytest.raises(WorkbenchError, match=r"cannot be created \(.*report\.html is not a directory\)"):
        check_output_dir(existing / "sub" / "dir")
    assert existing.read_text() == "keep me"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_output_dir_that_cannot_be_created_is_refused():
    with pytest.raises(WorkbenchError, match=r"--out /proc/x: cannot create files in /proc"):
        check_output_dir("/proc/x")
    with pytest.raises(WorkbenchError, match=r"--to /proc/model\.keras: cannot create files in /proc"):
        check_output_file("/proc/model.keras", "--to")


def test_missing_output_dir_is_checked_without_being_created(tmp_path):
    target = tmp_path / "a" / "b"
    assert check_output_dir(target) == target
    assert not (tmp_path / "a").exists() and list(tmp_path.iterdir()) == []  # the probe left nothing behind
    with pytest.raises(WorkbenchError, match="is a directory; give a file name"):
        check_output_file(tmp_path, "--to")


def test_train_refuses_a_file_as_out_before_loading_data(tmp_path, monkeypatch):
    """The issue's `train` crashed after a whole epoch; now nothing is loaded or trained."""
    from fer_workbench import data

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: pytest.fail("data loaded before --out was checked"))
    existing = tmp_path / "run"
    existing.write_text("not a directory")
    assert cli.main(["train", "--out", str(existing)]) == 1


# ------------------------------------------------------------------------------ 2. and 10. model compatibility


def test_model_with_another_input_shape_is_refused_in_one_line():
    with pytest.raises(WorkbenchError, match=r"rgb\.keras: expects inputs of shape 64×64×3; the workbench gives "
                                             r"48×48×1") as info:
        check_model(dense_model((64, 64, 3)), "rgb.keras", num_classes=7)
    assert_one_clean_line(str(info.value))


def test_logits_model_is_refused_and_softmax_models_pass():
    with pytest.raises(WorkbenchError, match=r"outputs are not class probabilities .*activation linear.*refused; "
                                             r"end the model with a softmax layer"):
        check_model(dense_model(activation=None), "logits.keras")
    with pytest.raises(WorkbenchError, match=r"not class probabilities.*sigmoid"):
        check_model(dense_model(activation="sigmoid"), "sigmoid.keras")
    check_model(dense_model(), "dense_softmax.keras", num_classes=7)
    check_model(dense_model(softmax_layer=True), "softmax_layer.keras", num_classes=7)
    with pytest.raises(WorkbenchError, match="predicts 3 classes, expected 7"):
        check_model(dense_model(units=3), "three.keras", num_classes=7)


def test_predictor_refuses_incompatible_models():
    from fer_workbench.predict import FacePredictor

    with pytest.raises(WorkbenchError, match="expects inputs of shape 64×64×3"):
        FacePredictor(dense_model((64, 64, 3)))
    with pytest.raises(WorkbenchError, match="not class probabilities"):
        FacePredictor(dense_model(activation=None))


# ------------------------------------------------------------------------------------ 3. non-regular files


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_devices_are_refused_not_read_without_limit():
    with pytest.raises(PhotoError, match="/dev/zero: a character device, not a regular file or a pipe: refused"):
        load_photo("/dev/zero")
    with pytest.raises(WorkbenchError, match="/dev/zero: a character device"):
        load_fer_csv("/dev/zero")
    with pytest.raises(WorkbenchError, match="/dev/zero: a character device"):
        read_bounded("/dev/zero", None)  # even without a limit: a device has no end


def _serve_fifo(path, payload: bytes, repeat: bool) -> threading.Thread:
    def write():
        try:
            with open(path, "wb") as pipe:
                while True:
                    pipe.write(payload)
                    if not repeat:
                        return
        except (BrokenPipeError, OSError):
            return  # the reader stopped at its limit and closed the pipe

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_pipes_are_read_to_the_limit_only(tmp_path):
    endless = tmp_path / "endless"
    os.mkfifo(endless)
    writer = _serve_fifo(endless, b"\0" * 65536, repeat=True)
    with pytest.raises(PhotoError, match=r"endless: more than 0\.1 MB, over the limit \(max_bytes=100000\)"):
        load_photo(endless, max_bytes=100_000)
    writer.join(timeout=10)
    assert not writer.is_alive()

    photo_pipe = tmp_path / "photo"
    os.mkfifo(photo_pipe)
    writer = _serve_fifo(photo_pipe, small_png(), repeat=False)
    assert load_photo(photo_pipe).size == (64, 48)  # a photo piped in (bounded) is fine
    writer.join(timeout=10)


def test_predictor_reports_a_device_as_an_unreadable_input(tiny_model_file):
    from fer_workbench.predict import FacePredictor

    result = FacePredictor(tiny_model_file, detector="haar").predict_photo("/dev/zero")
    assert not result.readable and "character device" in result.error


# ------------------------------------------------------------------------------------------ 4. --skip-bad-rows


DATA_COMMANDS = [["run"], ["train", "--out", "o"], ["tune", "--out", "o"], ["clean", "--out", "o"],
                 ["model-card", "--data", "d.csv"], ["evaluate", "--data", "d.csv"], ["data", "summary", "d.csv"]]


@pytest.mark.parametrize("argv", DATA_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_command_that_loads_data_accepts_skip_bad_rows(argv):
    assert cli.build_parser().parse_args([*argv, "--skip-bad-rows"]).skip_bad_rows is True
    assert cli.build_parser().parse_args(argv).skip_bad_rows is False


@pytest.fixture
def bad_csv(tmp_path):
    lines = csv_text(*make_rows(12)).splitlines()
    lines[4] = "3,1 2 3,Training"
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


class _Stop(WorkbenchError):
    pass


@pytest.mark.parametrize("command", [["train", "--out", "{out}", "--data", "{data}"],
                                     ["tune", "--out", "{out}", "--data", "{data}"],
                                     ["model-card", "--out", "{out}", "--data", "{data}"],
                                     ["clean", "--out", "{out}", "--data", "{data}"],
                                     ["evaluate", "--data", "{data}"], ["data", "summary", "{data}"]],
                         ids=lambda c: c[0] if c[0] != "data" else "data summary")
def test_commands_load_data_with_skip_bad_rows(command, bad_csv, tmp_path, monkeypatch, capsys):
    """The error told users to add --skip-bad-rows, and train/run rejected the flag: now it reaches the loader."""
    from fer_workbench import data

    real_load, seen = data.load_dataset, {}

    def load_then_stop(*args, **kwargs):
        seen["dataset"] = real_load(*args, **kwargs)
        raise _Stop("stopped after loading")

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    monkeypatch.setattr(data, "load_dataset", load_then_stop)
    argv = [c.format(out=tmp_path / "out", data=bad_csv) for c in command]
    assert cli.main(argv) == 1
    assert "1 bad row: wrong pixel count on line 5 (skip_bad_rows=True / --skip-bad-rows drops them)" \
        in capsys.readouterr().err and "dataset" not in seen
    assert cli.main([*argv, "--skip-bad-rows"]) == 1
    assert "stopped after loading" in capsys.readouterr().err
    assert len(seen["dataset"]) == 11 and seen["dataset"].skipped_rows[0][0] == 5


def test_run_passes_skip_bad_rows_to_the_notebooks(tmp_path, monkeypatch, bad_csv):
    from fer_workbench import runner

    passed = {}

    def fake_run_pipeline(out, parameters, **kwargs):
        passed.update(parameters)
        raise _Stop("not running notebooks in this test")

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    monkeypatch.setattr(runner, "run_pipeline", fake_run_pipeline)
    cli.main(["run", "--data", str(bad_csv), "--out", str(tmp_path / "r"), "--skip-bad-rows"])
    assert passed["skip_bad_rows"] is True
    cli.main(["run", "--data", str(bad_csv), "--out", str(tmp_path / "r")])
    assert passed["skip_bad_rows"] is False


# ------------------------------------------------------------------------------------------ 5. encodings


def test_utf8_bom_is_accepted():
    plain = parse_fer_csv_bytes(good_csv_bytes(), "plain.csv")
    bom = parse_fer_csv_bytes(b"\xef\xbb\xbf" + good_csv_bytes(), "bom.csv")
    assert np.array_equal(plain.images, bom.images) and np.array_equal(plain.labels, bom.labels)
    icml = good_csv_bytes().replace(b"emotion,pixels,Usage", b"emotion, Usage, pixels", 1)
    icml_rows = [b"emotion, Usage, pixels"] + [b",".join((r.split(b",")[0], r.split(b",")[2], r.split(b",")[1]))
                                               for r in icml.splitlines()[1:]]
    assert len(parse_fer_csv_bytes(b"\xef\xbb\xbf" + b"\r\n".join(icml_rows), "icml.csv")) == 9


@pytest.mark.parametrize("encoding, says", [("utf-16", "UTF-16 text (byte-order mark ff fe)"),
                                            ("utf-16-be", "looks like UTF-16 text without a byte-order mark"),
                                            ("utf-16-le", "looks like UTF-16 text without a byte-order mark"),
                                            ("utf-32", "UTF-32 text")])
def test_utf16_and_utf32_are_named_without_nul_bytes(encoding, says):
    data = good_csv_bytes().decode().encode(encoding)
    with pytest.raises(WorkbenchError, match=says.replace("(", r"\(").replace(")", r"\)")) as info:
        parse_fer_csv_bytes(data, "export.csv")
    assert "save it as UTF-8" in str(info.value)
    assert_one_clean_line(str(info.value))


@pytest.mark.parametrize("data, says", [(b"", "empty file"), (b"\n\n  \n", "empty file"),
                                        (small_png(), "a PNG image, not CSV text"),
                                        (b"PK\x03\x04rest", "a ZIP archive"),
                                        (b"emotion,pixels\x00,Usage\n", "holds NUL bytes")])
def test_files_that_are_not_csv_text_are_named(data, says):
    with pytest.raises(WorkbenchError, match=says) as info:
        parse_fer_csv_bytes(data, "data.csv")
    assert_one_clean_line(str(info.value))


# ------------------------------------------------------------------------------------------ 6. blank lines


def test_trailing_blank_lines_are_not_bad_rows():
    dataset = parse_fer_csv_bytes(good_csv_bytes() + b"\n\n   \n\r\n\t\n", "trailing.csv")
    assert len(dataset) == 9 and dataset.skipped_rows == ()
    crlf = good_csv_bytes().replace(b"\n", b"\r\n") + b"\r\n\r\n"
    assert len(parse_fer_csv_bytes(crlf, "crlf.csv")) == 9


def test_a_blank_line_inside_the_data_is_named_as_one():
    lines = good_csv_bytes().split(b"\n")
    lines.insert(3, b"")
    with pytest.raises(WorkbenchError, match="1 bad row: blank line on line 4"):
        parse_fer_csv_bytes(b"\n".join(lines), "gap.csv")


# ------------------------------------------------------------------------------------ 7. terminal injection


def test_header_escape_sequences_are_escaped():
    data = b"\x1b]0;pwned\x07\x1b[2J\x1b[31memotion,pix\r\n1,2\r\n"
    with pytest.raises(WorkbenchError, match="missing columns emotion, pixels, Usage") as info:
        parse_fer_csv_bytes(data, "evil.csv")
    message = str(info.value)
    assert_one_clean_line(message)
    assert r"\x1b]0;pwned\x07\x1b[2J" in message  # shown, harmlessly


def test_field_values_quoted_in_row_problems_are_escaped_and_cut():
    lines = good_csv_bytes().split(b"\n")
    pixels = lines[1].split(b",")[1]
    lines[1] = b"\x1b[2J" + b"9" * 5000 + b"," + pixels + b",Training"
    lines[2] = b"3," + pixels + b",\x1b]0;title\x07" + b"x" * 500
    dataset = parse_fer_csv_bytes(b"\n".join(lines), "rows.csv", skip_bad_rows=True)
    details = [detail for _, detail in dataset.skipped_rows]
    assert len(details) == 2
    for detail in details:
        assert_one_clean_line(detail)
        assert len(detail) < MAX_QUOTED + 80 and "\\x1b" in detail


def test_cr_only_files_load_and_a_huge_header_is_cut():
    classic_mac = good_csv_bytes().replace(b"\n", b"\r")
    assert len(parse_fer_csv_bytes(classic_mac, "mac.csv")) == 9
    with pytest.raises(WorkbenchError) as info:
        parse_fer_csv_bytes(b"a,b,c\r" * 15000, "cr-junk.csv")  # 90 KB of header once CRs are not line ends
    assert_one_clean_line(str(info.value))
    assert len(str(info.value)) < 300
    with pytest.raises(WorkbenchError) as info:
        parse_fer_csv_bytes(b"x" * 85_000 + b"\n1,2,3\n", "long-header.csv")
    assert len(str(info.value)) < 300 and "more characters" in str(info.value)


def test_every_message_is_escaped_and_capped():
    assert printable("Ünïcødé 表情 😀 ok") == "Ünïcødé 表情 😀 ok"
    assert printable("a\x1b[2Jb\u202ec\x00") == r"a\x1b[2Jb\u202ec\x00"
    assert quote(b"\xff\xfeab") == "'\ufffd\ufffdab'"
    message = str(WorkbenchError("file\x1b]0;t\x07.csv: " + "y" * 10_000))
    assert_one_clean_line(message)
    assert message.startswith(r"file\x1b]0;t\x07.csv: ") and len(message) <= MAX_MESSAGE + 40
    assert one_line("two\nlines\r\n") == "two lines"


def test_cli_warnings_are_escaped(capsys):
    cli._one_line_warnings("skipped folders: \x1b[2Jcontempt\nsecond line", UserWarning, "f.py", 1)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and r"\x1b[2Jcontempt second line" in err


def test_folder_names_with_escapes_reach_messages_escaped(tmp_path):
    happy = tmp_path / "happy"
    happy.mkdir()
    (happy / "bad\x1b[2J.png").write_bytes(b"not a png")
    with pytest.raises(WorkbenchError, match="1 unreadable image") as info:
        load_image_folder(tmp_path, progress=False)
    assert_one_clean_line(str(info.value))


# ------------------------------------------------------------------------------------------ 8. upload widget


@pytest.fixture(scope="module")
def predictor(tiny_model_file):
    from fer_workbench.predict import FacePredictor

    return FacePredictor(tiny_model_file, detector="haar")


def test_photo_named_like_math_text_with_no_face_is_shown(predictor):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from fer_workbench import widgets

    name = "holiday $\\foo$.png"
    [result] = widgets.predict_uploads(predictor, ({"name": name, "type": "image/png", "size": 300,
                                                    "content": memoryview(small_png((200, 160)))},))
    assert result.error == "no face found" and result.file == name
    views = widgets.photo_views(result)
    figures = [v for v in views if isinstance(v, Figure)]
    assert len(figures) == 1 and name in figures[0].axes[0].get_title().replace("\\$", "$")
    figures[0].savefig(io.BytesIO(), format="png")  # drawing is where math text used to fail
    plt.close("all")


def test_upload_errors_name_the_file(predictor):
    from fer_workbench import widgets

    results = widgets.predict_uploads(predictor, (
        {"name": "notes.png", "type": "image/png", "size": 12, "content": memoryview(b"not an image")},
        {"name": "empty.jpg", "type": "image/jpeg", "size": 0, "content": memoryview(b"")},
    ))
    for result, name in zip(results, ("notes.png", "empty.jpg"), strict=True):
        assert not result.readable and result.error.startswith(f"{name}: ") and "<image bytes>" not in result.error


def test_upload_size_limit_is_enforced_from_the_reported_size():
    from fer_workbench import widgets

    class NeverCalled:
        def predict_photo(self, *args, **kwargs):
            raise AssertionError("an oversized upload reached the predictor")

    [result] = widgets.predict_uploads(NeverCalled(), ({"name": "huge.jpg", "type": "image/jpeg",
                                                        "size": 40_000_000, "content": memoryview(b"\xff\xd8")},))
    assert result.error == "huge.jpg: 40.0 MB is too large (limit 30 MB)"


def test_folder_datasets_obey_the_photo_pixel_limit(tmp_path):
    happy = tmp_path / "happy"
    happy.mkdir()
    Image.new("L", (9000, 9000)).save(happy / "bomb.png")  # 81 MP, a few KB on disk
    Image.new("L", (60, 60), 128).save(happy / "fine.png")
    with pytest.raises(WorkbenchError, match=r"bomb\.png \(9000×9000 = 81\.0 megapixels is over the 50-megapixel "
                                             r"limit"):
        load_image_folder(tmp_path, progress=False)
    kept = load_image_folder(tmp_path, skip_unreadable=True, progress=False)
    assert len(kept) == 1 and "bomb.png" in kept.skipped_rows[0][0]


# ------------------------------------------------------------------------------------------ 10. smaller ones


def test_predict_names_the_file_once(tmp_path, tiny_model_file, capsys, monkeypatch):
    from fer_workbench.predict import PhotoPrediction

    assert PhotoPrediction(file="a.jpg", error="a.jpg: empty file (0 bytes)").message == "a.jpg: empty file (0 bytes)"
    assert PhotoPrediction(file="a.jpg", error="no face found").message == "a.jpg: no face found"
    empty = tmp_path / "zero.jpg"
    empty.write_bytes(b"")
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    assert cli.main(["predict", str(empty), "--model", str(tiny_model_file), "--detector", "haar"]) == 1
    out = capsys.readouterr().out
    assert out == f"{empty}: empty file (0 bytes)\n"


def test_load_dataset_keeps_sources_untouched(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + good_csv_bytes() + b"\n\n")
    before = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    assert len(load_dataset(path, cache=False)) == 9
    assert (path.read_bytes(), stat.S_IMODE(path.stat().st_mode)) == before


def _train_twice(tmp_path, dropout: float):
    """One uninterrupted 2-epoch run, and one interrupted after epoch 1 then resumed by re-running it."""
    from test_training import TINY_VGG, toy_dataset

    from fer_workbench.models.io import load_model
    from fer_workbench.training import train

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    toy = toy_dataset()
    config = {"model": "vgg", "model_kwargs": {**TINY_VGG, "dropout": dropout}, "optimizer": "adam",
              "schedule": "cosine", "augment": 0.5, "epochs": 2}
    whole, pieces = tmp_path / f"whole{dropout}", tmp_path / f"pieces{dropout}"
    train(toy, config, whole, "smoke", seed=3, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        train(toy, config, pieces, "smoke", seed=3, verbose=0, callbacks=[Interrupt()])
    resumed = train(toy, config, pieces, "smoke", seed=3, verbose=0)
    assert resumed.resumed_from_epoch == 1
    return [load_model(d / "checkpoints" / "last.keras", compile=True) for d in (whole, pieces)]


def test_resume_is_exact_without_dropout(tmp_path):
    """README (Command line, resuming): weights, optimizer state, schedule, batches and augmentation are restored,
    so a model without dropout resumes to exactly the numbers of an uninterrupted run."""
    whole, pieces = _train_twice(tmp_path, dropout=0.0)
    for a, b in zip(whole.get_weights(), pieces.get_weights(), strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(whole.optimizer.variables, pieces.optimizer.variables, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_resume_is_exact_with_dropout_too(tmp_path):
    """README: the dropout layers' random state travels in state.json, so the epochs after a resume draw the
    masks an uninterrupted run would, and the weights end identical."""
    whole, pieces = _train_twice(tmp_path, dropout=0.2)
    assert int(whole.optimizer.iterations) == int(pieces.optimizer.iterations)
    for a, b in zip(whole.get_weights(), pieces.get_weights(), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("command", [["predict", "--model", "{missing}", "{photo}"],
                                     ["evaluate", "--data", "{photo}", "--model", "{folder}"]])
def test_an_unusable_model_file_is_refused_before_tensorflow_loads(tmp_path, command):
    """A wrong --model path is a one-line error at once, not after TensorFlow's seconds of start-up."""
    import subprocess
    import sys

    values = {"missing": tmp_path / "missing.keras", "photo": tmp_path / "face.png", "folder": tmp_path}
    argv = [part.format(**values) for part in command]
    probe = ("import sys; from fer_workbench import cli; code = cli.main(sys.argv[1:]); "
             "print('tensorflow loaded' if 'tensorflow' in sys.modules else 'tensorflow not loaded'); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.strip() == "tensorflow not loaded"
    model = argv[argv.index("--model") + 1]
    problem = "no such model file" if model.endswith("missing.keras") else "not a regular model file"
    assert result.stderr.strip().splitlines() == [f"fer-workbench: error: --model {model}: {problem}"]
