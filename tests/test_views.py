"""Figure builders and widgets of notebooks 04 (saliency) and 06 (predict): shapes, and no tracebacks."""

import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from conftest import limit_tf_threads
from PIL import Image
from skimage import data as skdata

from fer_workbench import CLASS_NAMES, plots, widgets
from fer_workbench.models.io import load_model
from fer_workbench.predict import FacePrediction, FacePredictor, PhotoPrediction

limit_tf_threads()


@pytest.fixture(scope="module")
def model_file(tiny_model_file):
    return tiny_model_file


@pytest.fixture(scope="module")
def predictor(model_file):
    return FacePredictor(model_file, detector="haar")


@pytest.fixture(scope="module")
def astronaut_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(skdata.astronaut()).resize((256, 256)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.random((n, 48, 48)).astype(np.float32)


def _panels(fig: plt.Figure) -> int:
    return sum(1 for ax in fig.axes if ax.images)


def test_saliency_figures_have_one_panel_per_image_and_method():
    images, maps = _images(5)
    assert plots.overlay_rgb(images[0], maps[0]).shape == (48, 48, 3)
    assert _panels(plots.saliency_overlay_grid(images, maps, [str(i) for i in range(5)], columns=3)) == 5
    fig = plots.method_comparison(images[:2], {"gradcam": maps[:2], "saliency": maps[2:4]})
    assert _panels(fig) == 2 * 3


def test_saliency_check_plots_have_their_traces():
    table = pd.DataFrame({"step": [0, 1, 2], "randomised": ["", "dense", "conv"], "spearman_mean": [1, .5, .1],
                          "spearman_std": [0, .1, .1], "method": "gradcam"})
    assert len(plots.randomisation_plot(table).data) == 1
    assert len(plots.randomisation_plot(pd.concat([table, table.assign(method="saliency")])).data) == 2
    fractions = np.linspace(0, 1, 5)
    result = {k: fractions for k in ("fractions", "deletion", "insertion", "random_deletion", "random_insertion")}
    result.update({f"{k}_auc": 0.5 for k in ("deletion", "insertion", "random_deletion", "random_insertion")})
    assert len(plots.deletion_insertion_plot(result).data) == 4
    report = pd.DataFrame({"class": ["angry", "all"], "n": [3, 3], "mass_share": [.5, .5], "area_share": [.2, .2],
                           "lift": [2.5, 2.5]}).set_index("class")
    fig = plots.region_bars(report)
    assert len(fig.data) == 2 and list(fig.data[0].x) == ["angry", "all"]


def test_prediction_figures():
    face = FacePrediction(box=(10, 10, 30, 30), label="happy", scores=dict.fromkeys(CLASS_NAMES, 1 / 7),
                          detector="haar", crop=np.zeros((48, 48), np.uint8))
    fig = plots.photo_with_boxes(np.zeros((80, 100, 3), np.uint8), [face, face])
    assert len(fig.axes[0].patches) == 2
    bars = plots.face_scores_bar(face.scores)
    assert isinstance(bars, go.Figure) and len(bars.data) == 1 and list(bars.data[0].x) == list(CLASS_NAMES)


def test_photo_views_turn_errors_into_messages(predictor):
    views = widgets.photo_views(PhotoPrediction(file="notes.txt", error="notes.txt: not an image file",
                                                readable=False), predictor.model)
    assert any("not an image file" in getattr(v, "data", "") for v in views)
    assert not any(isinstance(v, (plt.Figure, go.Figure)) for v in views)


def test_photo_views_show_each_face(predictor, astronaut_jpeg):
    result = predictor.predict_photo(astronaut_jpeg, name="astronaut.jpg")
    assert len(result.faces) == 1
    views = widgets.photo_views(result, predictor.model, "gradcam")
    assert sum(isinstance(v, go.Figure) for v in views) == 1  # one probability chart per face
    assert sum(isinstance(v, plt.Figure) for v in views) == 2  # the photo with boxes, the face's overlay


def test_upload_handler_processes_images_and_junk(predictor, astronaut_jpeg):
    box = widgets.predict_upload(predictor)
    value = ({"name": "astronaut.jpg", "type": "image/jpeg", "size": len(astronaut_jpeg),
              "content": memoryview(astronaut_jpeg), "last_modified": 0},
             {"name": "notes.txt", "type": "text/plain", "size": 12, "content": memoryview(b"not an image"),
              "last_modified": 0},
             {"name": "empty.png", "type": "image/png", "size": 0, "content": memoryview(b""), "last_modified": 0})
    results = box.handle(value)
    by_name = {r.file: r for r in results}
    assert len(by_name["astronaut.jpg"].faces) == 1
    assert not by_name["notes.txt"].faces and "not an image" in by_name["notes.txt"].error
    assert by_name["empty.png"].error
    assert box.last is results and "3 photo(s)" in box.children[1].value


def test_saliency_picker_builds_and_switches(model_file):
    model = load_model(model_file)
    images, _ = _images(6)
    labels = np.array([0, 0, 1, 1, 2, 3])
    predictions = np.array([0, 1, 1, 1, 0, 3])
    picker = widgets.saliency_picker(model, images, labels, predictions, CLASS_NAMES, methods=("gradcam", "saliency"))
    picture, details = picker.children[2], picker.children[3]
    assert picture.value and "angry" in details.value
    outcome = picker.children[1].children[0]
    outcome.value = "wrong"
    assert picture.value and "predicted <b>disgust</b>" in details.value
    picker.children[0].children[0].value = "happy"  # no wrong happy predictions: a message, no exception
    assert "No wrong" in details.value
