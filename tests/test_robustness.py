"""Robustness: perturbations keep shape/dtype/range and change what they should; curves react to them."""

import numpy as np
import pandas as pd
import pytest

from fer_workbench import WorkbenchError
from fer_workbench.robustness import (
    IDENTITY,
    KINDS,
    ROBUSTNESS_LEVELS,
    perturb,
    perturbation_examples,
    region_box,
    robustness_curves,
)


@pytest.fixture(scope="module")
def faces():
    rng = np.random.default_rng(0)
    return rng.integers(30, 226, size=(12, 48, 48), dtype=np.uint8)


def brightness_classifier(images):
    """Class 1 when the image is brighter than mid-grey, else class 0 (a stand-in for a model)."""
    bright = np.asarray(images, np.float64).mean(axis=(1, 2)) > 128
    return np.stack([~bright, bright], axis=1).astype(np.float64)


@pytest.mark.parametrize("kind", KINDS)
def test_every_level_keeps_shape_dtype_and_range(faces, kind):
    for level in ROBUSTNESS_LEVELS[kind]:
        out = perturb(faces, kind, level)
        assert out.shape == faces.shape and out.dtype == np.uint8
        assert out.min() >= 0 and out.max() <= 255
    assert perturb(faces[0], kind, ROBUSTNESS_LEVELS[kind][-1]).shape == (48, 48)


@pytest.mark.parametrize("kind", KINDS)
def test_identity_level_is_in_defaults_and_changes_nothing(faces, kind):
    assert IDENTITY[kind] in ROBUSTNESS_LEVELS[kind]
    out = perturb(faces, kind, IDENTITY[kind])
    assert np.array_equal(out, faces) and out is not faces


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "brightness"] + ["brightness"])
def test_non_identity_levels_change_images(faces, kind):
    level = max(ROBUSTNESS_LEVELS[kind], key=lambda v: abs(v - IDENTITY[kind]))
    assert not np.array_equal(perturb(faces, kind, level), faces)


def test_occlusion_paints_grey_only_inside_its_region(faces):
    out = perturb(faces, "occlude_mouth", 1.0)
    top, bottom, left, right = region_box("mouth", 1.0)
    assert (out[:, top:bottom, left:right] == 128).all()
    mask = np.ones((48, 48), bool)
    mask[top:bottom, left:right] = False
    assert np.array_equal(out[:, mask], faces[:, mask])
    eyes = region_box("eyes", 1.0)
    assert eyes[1] <= top  # eyes sit above the mouth


def test_brightness_contrast_and_downscale_behave(faces):
    flat = np.full((1, 48, 48), 100, np.uint8)
    assert (perturb(flat, "brightness", 40) == 140).all()
    assert (perturb(flat, "brightness", 200) == 255).all()  # clipped, not wrapped
    assert (perturb(flat, "brightness", -200) == 0).all()
    assert perturb(faces, "contrast", 0.5).std() < faces.std()
    assert perturb(faces, "blur", 2.0).std() < faces.std()
    assert perturb(faces, "downscale", 4.0).std() < faces.std()


def test_unknown_kind_and_bad_input_raise(faces):
    with pytest.raises(WorkbenchError, match="unknown perturbation"):
        perturb(faces, "sepia", 1)
    with pytest.raises(WorkbenchError, match="uint8"):
        perturb(faces.astype(np.float32), "blur", 1)
    with pytest.raises(WorkbenchError, match="factor"):
        perturb(faces, "downscale", 0.5)
    with pytest.raises(WorkbenchError, match="unknown perturbation"):
        robustness_curves(brightness_classifier, faces, np.zeros(len(faces)), kinds=["sepia"])


def test_curves_follow_brightness_and_stay_flat_at_identity():
    rng = np.random.default_rng(1)
    images = np.clip(rng.normal(128, 20, (40, 48, 48)) + np.repeat([-30, 30], 20)[:, None, None], 0, 255
                     ).astype(np.uint8)
    labels = np.repeat([0, 1], 20)
    curves = robustness_curves(brightness_classifier, images, labels, kinds=["brightness", "rotation"],
                               levels={"rotation": [0, 0]})
    assert isinstance(curves, pd.DataFrame)
    assert list(curves.columns) == ["kind", "level", "accuracy", "n", "drop"]
    assert (curves["n"] == 40).all()
    bright = curves[curves["kind"] == "brightness"].set_index("level")["accuracy"]
    assert bright[0.0] == 1.0
    assert bright[96.0] == pytest.approx(0.5) and bright[-96.0] == pytest.approx(0.5)  # all one class
    assert (curves[curves["kind"] == "rotation"]["accuracy"] == bright[0.0]).all()
    assert curves["drop"].max() == 0.0


def test_curves_reject_mismatched_predictions(faces):
    with pytest.raises(WorkbenchError, match="labels"):
        robustness_curves(brightness_classifier, faces, np.zeros(3))
    with pytest.raises(WorkbenchError, match="returned shape"):
        robustness_curves(lambda x: np.zeros((1, 2)), faces, np.zeros(len(faces)), kinds=["blur"])


def test_perturbation_examples_gallery(faces):
    gallery = perturbation_examples(faces[0], kinds=["blur", "occlude_eyes"])
    images, levels = gallery["blur"]
    assert images.shape == (len(ROBUSTNESS_LEVELS["blur"]), 48, 48) and levels == list(ROBUSTNESS_LEVELS["blur"])


def test_figures_and_dashboard_build_from_results():
    from fer_workbench import CLASS_NAMES, metrics, plots, widgets

    rng = np.random.default_rng(2)
    y = np.tile(np.arange(7), 12)
    proba = rng.dirichlet(np.ones(7), len(y))
    proba[np.arange(len(y)), y] += 0.4
    proba /= proba.sum(axis=1, keepdims=True)
    images = rng.integers(0, 256, (len(y), 48, 48), dtype=np.uint8)

    curves = robustness_curves(lambda x: proba, images, y, kinds=["blur", "occlude_eyes"])
    fig = plots.robustness_figure(curves)
    assert len(fig.data) == 2  # one line per kind, each in its own panel
    assert sorted(a.text for a in fig.layout.annotations) == ["blur", "occlude_eyes"]

    roc, pr = metrics.roc_curves(y, proba, CLASS_NAMES), metrics.pr_curves(y, proba, CLASS_NAMES)
    selector = plots.class_selector_figure(roc, pr)
    buttons = selector.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["all classes", *CLASS_NAMES]
    assert all(buttons[0].args[0]["visible"])
    shown = buttons[1].args[0]["visible"]
    assert sum(shown) == 3  # angry's ROC and PR curves and the chance line

    dashboard = widgets.metrics_dashboard({"A": (y, proba, images), "B": (y, proba)}, class_names=CLASS_NAMES)
    split_box, class_box = dashboard.children[0].children
    class_box.value = "fear"
    assert "<b>fear</b>" in dashboard.children[1].value
    split_box.value = "B"
    assert "no images" in dashboard.children[5].value

    worse = np.roll(proba, 1, axis=1)  # a second model that is always wrong
    compared = widgets.metrics_dashboard({"good": {"A": (y, proba, images), "B": (y, proba)},
                                          "bad": {"A": (y, worse, images)}}, class_names=CLASS_NAMES)
    model_box, split_box, class_box = compared.children[0].children
    assert list(model_box.options) == ["good", "bad"]
    split_box.value = "B"
    good_numbers = compared.children[1].value
    model_box.value = "bad"
    assert list(split_box.options) == ["A"] and split_box.value == "A"
    assert compared.children[1].value != good_numbers
    with pytest.raises(WorkbenchError):
        widgets.metrics_dashboard({"empty": {}})
