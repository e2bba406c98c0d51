"""Model zoo, preprocessing variants and classical baselines (build-only; nothing here trains a network)."""

import warnings

import numpy as np
import pytest
from conftest import limit_tf_threads

from fer_workbench import CLASS_NAMES, WorkbenchError
from fer_workbench.models import MODEL_NAMES, VGG_PAPER, VGGConfig, baselines, build_model, build_vgg
from fer_workbench.models.classical import (
    CLASSICAL_MODELS,
    classical_proba,
    fit_classical,
    hog_features,
    stratified_positions,
)
from fer_workbench.preprocess import PREPROCESSING_VARIANTS, apply_preprocessing, prepare_images, to_model_input

limit_tf_threads()

TINY = {"blocks": 2, "base_width": 4, "fc_units": 16, "fc_layers": 1}


def faces(n=8, seed=0):
    """Smooth shading plus mild noise: pure noise would give the denoiser nothing to average."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40, 200, 48)[None, :, None] * rng.uniform(0.6, 1.0, (n, 1, 1))
    return np.clip(ramp + rng.normal(0, 12, (n, 48, 48)), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- preprocessing

def test_to_model_input_shape_range():
    x = to_model_input(faces(3))
    assert x.shape == (3, 48, 48, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert to_model_input(faces(1)[0]).shape == (1, 48, 48, 1)
    with pytest.raises(WorkbenchError):
        to_model_input(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(WorkbenchError):
        to_model_input(np.zeros((2, 48, 48), np.float32))


@pytest.mark.parametrize("variant", PREPROCESSING_VARIANTS)
def test_preprocessing_variants_keep_shape_and_dtype(variant):
    images = faces(4)
    out = apply_preprocessing(images, variant)
    assert out.shape == images.shape and out.dtype == np.uint8
    single = apply_preprocessing(images[0], variant)
    assert single.shape == (48, 48) and np.array_equal(single, out[0])
    if variant == "none":
        assert np.array_equal(out, images)
    else:
        assert not np.array_equal(out, images)
    assert prepare_images(images, variant).shape == (4, 48, 48, 1)


def test_unknown_preprocessing_errors():
    with pytest.raises(WorkbenchError, match="unknown preprocessing 'sharpen'"):
        apply_preprocessing(faces(1), "sharpen")


# ------------------------------------------------------------------------------------------------------ VGG

def test_paper_vgg_has_about_40m_params():
    model = build_vgg(VGG_PAPER)
    assert 39e6 < model.count_params() < 42e6
    assert model.output_shape == (None, len(CLASS_NAMES))
    convs = [layer for layer in model.layers if layer.name.startswith("block") and "conv" in layer.name]
    assert [layer.filters for layer in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [layer.units for layer in model.layers if layer.name.startswith("fc") and "dropout" not in layer.name] \
        == [4096, 4096]


def _kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_vgg_config_variants_change_structure():
    base = build_vgg(TINY)
    assert _kinds(build_vgg({**TINY, "blocks": 3})).count("MaxPooling2D") == 3
    assert _kinds(build_vgg({**TINY, "convs_per_block": 3})).count("Conv2D") == 6
    assert "BatchNormalization" not in _kinds(build_vgg({**TINY, "batch_norm": False}))
    assert "BatchNormalization" in _kinds(base)
    gap = build_vgg({**TINY, "global_pool": True})
    assert "GlobalAveragePooling2D" in _kinds(gap) and "Flatten" in _kinds(base)
    assert gap.count_params() < base.count_params()
    assert _kinds(build_vgg({**TINY, "fc_layers": 2})).count("Dense") == 3
    assert "Dropout" not in _kinds(build_vgg({**TINY, "dropout": 0.0}))
    capped = build_vgg({**TINY, "blocks": 4, "max_width": 8})
    assert max(layer.filters for layer in capped.layers if type(layer).__name__ == "Conv2D") == 8


def test_vgg_config_errors():
    with pytest.raises(WorkbenchError, match="unknown VGG setting"):
        build_vgg({"depth": 3})
    with pytest.raises(WorkbenchError, match="blocks"):
        build_vgg({**TINY, "blocks": 6})
    with pytest.raises(WorkbenchError, match="preset"):
        build_vgg("huge")
    assert VGGConfig(base_width=16, max_width=64, blocks=4).widths() == [16, 32, 64, 64]


# ------------------------------------------------------------------------------------------- registry, baselines

@pytest.mark.parametrize("name, kwargs", [("vgg", TINY), ("baseline_cnn", {}), ("mini_xception", {}),
                                          ("vgg16_transfer", {"weights": None})])
def test_registry_models_output_probabilities(name, kwargs):
    model = build_model(name, **kwargs)
    probs = model(to_model_input(faces(3)), training=False).numpy()
    assert probs.shape == (3, len(CLASS_NAMES))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5) and (probs >= 0).all()
    assert model.fer_spec["name"] == name


def test_registry_names_and_errors():
    assert set(MODEL_NAMES) == {"vgg", "baseline_cnn", "mini_xception", "vgg16_transfer", "vgg19_transfer"}
    with pytest.raises(WorkbenchError, match="unknown model"):
        build_model("resnet")
    with pytest.raises(WorkbenchError, match="bad arguments"):
        build_model("baseline_cnn", depth=3)
    assert build_model("vgg", config="tiny", fc_units=8).fer_spec["kwargs"]["fc_units"] == 8


def test_mini_xception_param_count():
    assert abs(build_model("mini_xception").count_params() - 58_423) < 1_000


def test_transfer_falls_back_offline_and_says_so(monkeypatch):
    real = baselines.TRANSFER_APPS["vgg19"]

    def offline(**kwargs):
        if kwargs.get("weights") is not None:
            raise ConnectionError("URL fetch failure on https://storage.googleapis.com/...: None -- no network")
        return real(**kwargs)

    monkeypatch.setitem(baselines.TRANSFER_APPS, "vgg19", offline)
    with pytest.warns(RuntimeWarning, match="could not load imagenet weights.*random initialisation"):
        model = build_model("vgg19_transfer")
    assert model.fer_pretrained is False
    base = model.get_layer("vgg19")
    assert base.trainable  # nothing pretrained to protect, so the whole network trains
    assert model(to_model_input(faces(2))).shape == (2, 7)


def test_transfer_with_weights_freezes_base_and_resizes(monkeypatch):
    real = baselines.TRANSFER_APPS["vgg16"]
    # Stand in for a successful ImageNet load without the 58 MB download.
    monkeypatch.setitem(baselines.TRANSFER_APPS, "vgg16", lambda **kw: real(**{**kw, "weights": None}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = build_model("vgg16_transfer", input_size=64)
    assert model.fer_pretrained is True and not model.get_layer("vgg16").trainable
    assert model.get_layer("resize").output.shape[1:3] == (64, 64)
    with pytest.raises(WorkbenchError):
        build_model("vgg16_transfer", input_size=16)


# ------------------------------------------------------------------------------------------------- classical

def separable(n, seed):
    """Two classes: bright top half vs bright bottom half, on noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n) * 3
    images = rng.integers(0, 80, (n, 48, 48)).astype(np.uint8)
    images[labels == 0, :20] += 120
    images[labels == 3, 28:] += 120
    return images, labels


@pytest.mark.parametrize("name", CLASSICAL_MODELS)
def test_classical_models_beat_chance(name):
    images, labels = separable(120, 0)
    test_images, test_labels = separable(60, 1)
    model = fit_classical(name, images, labels)
    probs = classical_proba(model, test_images)
    assert probs.shape == (60, 7) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert probs[:, [1, 2, 4, 5, 6]].max() == 0  # unseen classes get zero
    assert (probs.argmax(1) == test_labels).mean() > 0.8


def test_a_rare_class_still_calibrates():
    """FER2013's disgust is 1.5 % of Training: a 500-row draw can hold 2 of them, fewer than the SVM's three Platt
    folds (this stopped notebook 03 on real data). The draw keeps 3 of every class; the SVM copes with 2, not 1."""
    labels = np.array([0] * 600 + [3] * 390 + [1] * 10)
    take = stratified_positions(labels, 50, seed=0)
    counts = np.bincount(labels[take], minlength=4)
    assert counts[1] >= 3 and len(take) <= 53 and np.all(np.diff(take) > 0)
    assert len(stratified_positions(labels, None)) == len(labels) == len(stratified_positions(labels, 5000))
    scarce = np.array([0] * 50 + [1, 1])
    assert np.bincount(scarce[stratified_positions(scarce, 10)], minlength=2)[1] == 2  # all there is
    images, separable_labels = separable(40, 0)
    two = np.concatenate([separable_labels[separable_labels == 0][:2], separable_labels[separable_labels != 0]])
    pics = np.concatenate([images[separable_labels == 0][:2], images[separable_labels != 0]])
    assert fit_classical("svm_hog", pics, two).named_steps["clf"].cv == 2
    with pytest.raises(WorkbenchError, match=r"svm_hog: class 0 has a single training example"):
        fit_classical("svm_hog", pics[1:], two[1:])


def test_classical_errors_and_hog():
    assert hog_features(faces(2)).shape == (2, 900)
    with pytest.raises(WorkbenchError, match="unknown classical"):
        fit_classical("tree_hog", *separable(10, 0))
