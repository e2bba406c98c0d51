"""Photo → faces → probabilities, through the package and through `fer-workbench predict`."""

import json

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from test_cli import run_cli

from fer_workbench import CLASS_NAMES, WorkbenchError
from fer_workbench.predict import FacePredictor, expand_inputs


@pytest.fixture(scope="module")
def model_file(tiny_model_file):
    return tiny_model_file


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(skdata.astronaut()).resize((512, 512)).save(folder / "astronaut.jpg")
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(folder / "grey.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes((folder / "astronaut.jpg").read_bytes()[:2000])
    return folder


def test_predicts_each_face_with_valid_scores(model_file, photos):
    result = FacePredictor(model_file, detector="haar").predict_photo(photos / "astronaut.jpg")
    assert result.error is None and len(result.faces) == 1
    face = result.faces[0]
    x, y, w, h = face.box
    assert 150 < x + w / 2 < 300 and 50 < y + h / 2 < 200  # the astronaut's face, in original pixels
    assert set(face.scores) == set(CLASS_NAMES) and abs(sum(face.scores.values()) - 1) < 1e-4
    assert face.label == max(face.scores, key=face.scores.get) and face.crop.shape == (48, 48)


def test_bad_inputs_become_messages(model_file, photos):
    predictor = FacePredictor(model_file, detector="haar")
    results = {r.file.split("/")[-1]: r for r in predictor.predict_paths(
        [photos / "grey.png", photos / "notes.txt", photos / "empty.jpg", photos / "truncated.jpg",
         photos / "missing.png"])}
    assert results["grey.png"].error == "no face found" and results["grey.png"].readable
    for name in ("notes.txt", "empty.jpg", "truncated.jpg", "missing.png"):
        assert not results[name].readable and "\n" not in results[name].error and name in results[name].error


def test_folders_expand_to_their_images(photos):
    names = [p.name for p in expand_inputs([photos])]
    assert names == ["astronaut.jpg", "empty.jpg", "grey.png", "truncated.jpg"]  # images only, sorted


def test_model_with_wrong_class_count_is_refused(tmp_path):
    import keras

    inputs = keras.Input((48, 48, 1))
    wrong = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs)))
    with pytest.raises(WorkbenchError, match="predicts 3 classes"):
        FacePredictor(wrong)


def test_cli_predict_json_and_exit_status(model_file, photos):
    result = run_cli("predict", photos, "--model", model_file, "--detector", "haar", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    entries = {e["file"].split("/")[-1]: e for e in json.loads(result.stdout)}
    assert len(entries["astronaut.jpg"]["faces"]) == 1 and entries["astronaut.jpg"]["error"] is None
    assert set(entries["astronaut.jpg"]["faces"][0]) >= {"box", "label", "scores"}
    assert entries["empty.jpg"]["faces"] == [] and entries["empty.jpg"]["error"]
    unreadable = run_cli("predict", photos / "notes.txt", photos / "missing.png", "--model", model_file)
    assert unreadable.returncode == 1 and "none of the inputs could be read" in unreadable.stderr


def test_demo_folder_and_table(model_file, tmp_path):
    from fer_workbench.predict import predictions_table, write_demo_photos

    folder = write_demo_photos(tmp_path / "demo")
    results = FacePredictor(model_file, detector="haar").predict_paths([folder])
    table = predictions_table(results)
    assert list(table.columns) == ["file", "face", "box", "label", "top score", "error"]
    faces = table[table["face"].notna()]
    assert sorted(faces["file"].unique()) == ["astronaut.jpg", "two_faces.jpg"]
    assert (faces["file"] == "two_faces.jpg").sum() == 2
    problems = table.set_index("file")["error"]
    assert problems["coffee.jpg"] == "no face found" and "not an image" in problems["not_a_photo.jpg"]


def test_prediction_loads_no_training_tuning_or_cleaning_code():
    """Predicting a photo needs inference and the model file only: the import graph says so (a subprocess, so the
    other tests' imports do not count)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "import numpy as np\n"
        "from fer_workbench.predict import FacePredictor\n"
        "FacePredictor().predict_photo(np.zeros((64, 64, 3), np.uint8))\n"
        "print(sorted(m for m in sys.modules if m.startswith('fer_workbench')))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = done.stdout.strip().splitlines()[-1]
    assert "fer_workbench.inference" in loaded
    for concern in ("fer_workbench.training", "fer_workbench.tuning", "fer_workbench.cleaning",
                    "fer_workbench.evaluation", "fer_workbench.distributed"):
        assert f"'{concern}" not in loaded, f"{concern} imported by prediction: {loaded}"
