"""Saliency maps (five methods), the randomisation sanity check, deletion/insertion and region mass.

A tiny VGG is trained for 3 epochs on a toy task whose signal region is known: angry = a bright 12×12 square
near the top-left, happy = one near the bottom-right, neutral = no square.
"""

import keras
import numpy as np
import pytest
from conftest import limit_tf_threads

from fer_workbench import CLASS_NAMES, WorkbenchError
from fer_workbench.models import build_model
from fer_workbench.preprocess import apply_preprocessing, to_model_input
from fer_workbench.saliency import (
    METHODS,
    deletion_insertion,
    last_conv_layer,
    randomisation_check,
    randomisation_steps,
    region_mass,
    region_report,
    saliency_maps,
)

limit_tf_threads()

TINY_VGG = {"blocks": 2, "base_width": 4, "fc_units": 16, "fc_layers": 1}
ANGRY, HAPPY, NEUTRAL = (CLASS_NAMES.index(c) for c in ("angry", "happy", "neutral"))


def squares(n, seed):
    """Noise images; angry/happy carry a bright square in the top-left/bottom-right (the mask), neutral none."""
    rng = np.random.default_rng(seed)
    labels = np.array([ANGRY, HAPPY, NEUTRAL])[rng.integers(0, 3, n)]
    images = rng.integers(0, 60, (n, 48, 48)).astype(np.uint8)
    masks = np.zeros((n, 48, 48), bool)
    for i, label in enumerate(labels):
        r, c = rng.integers(2, 8, 2)
        if label == HAPPY:
            r, c = 36 - r, 36 - c
        if label != NEUTRAL:
            masks[i, r:r + 12, c:c + 12] = True
    images[masks] += 150
    return images, labels, masks


@pytest.fixture(scope="module")
def trained():
    images, labels, _ = squares(384, 0)
    keras.utils.set_random_seed(0)
    model = build_model("vgg", config=TINY_VGG)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(to_model_input(images), labels, epochs=3, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def toy_test():
    return squares(48, 1)


def test_trained_model_learns_the_toy(trained, toy_test):
    images, labels, _ = toy_test
    assert (trained.predict(to_model_input(images), verbose=0).argmax(1) == labels).mean() > 0.9


def test_gradcam_concentrates_on_the_signal_region(trained, toy_test):
    images, labels, masks = toy_test
    maps = saliency_maps(trained, images, labels)
    share = region_mass(maps, masks)
    signal = labels != NEUTRAL
    assert np.isnan(share[~signal]).all()  # no mask, no share
    assert np.nanmean(share) > 4 * masks[signal].mean()
    report = region_report(maps, masks, labels)
    assert list(report.index) == [*CLASS_NAMES, "all"]
    for name in ("angry", "happy", "all"):
        assert report.loc[name, "lift"] > 3
    assert report.loc["all", "n"] == signal.sum()
    assert np.isnan(report.loc["fear", "mass_share"])


def test_all_methods_shape_range_and_model_untouched(trained, toy_test):
    images, labels, _ = toy_test
    images, labels = images[:6], labels[:6]
    x = to_model_input(images)
    before = trained.predict(x, verbose=0)
    out_layer = trained.layers[-1]
    for method in METHODS:
        maps = saliency_maps(trained, images, labels, method, batch_size=4, smooth_samples=3)
        assert maps.shape == (6, 48, 48) and maps.dtype == np.float32, method
        assert maps.min() >= 0 and maps.max() <= 1 and maps.max() > 0.99, method
    np.testing.assert_array_equal(trained.predict(x, verbose=0), before)
    assert out_layer.activation is keras.activations.softmax and len(trained.outputs) == 1
    single = saliency_maps(trained, images[0], "angry")
    assert single.shape == (48, 48)
    np.testing.assert_allclose(single, saliency_maps(trained, images[:1], [ANGRY])[0], atol=1e-6)


def test_fast_gradcam_equals_tf_keras_vis(trained, toy_test):
    images, labels, _ = toy_test
    fast = saliency_maps(trained, images, labels, implementation="fast", batch_size=20)
    reference = saliency_maps(trained, images, labels, implementation="tf-keras-vis")
    np.testing.assert_allclose(fast, reference, atol=1e-4)


def test_smoothgrad_is_seeded_and_leaves_numpy_state(trained, toy_test):
    images, labels, _ = toy_test
    state = np.random.get_state()[1].copy()
    a = saliency_maps(trained, images[:3], labels[:3], "smoothgrad", smooth_samples=2, seed=1)
    b = saliency_maps(trained, images[:3], labels[:3], "smoothgrad", smooth_samples=2, seed=1)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_uses_the_models_preprocessing(trained, toy_test):
    images, labels, _ = toy_test
    object.__setattr__(trained, "fer_preprocessing", "histeq")
    try:
        tagged = saliency_maps(trained, images[:4], labels[:4])
    finally:
        object.__setattr__(trained, "fer_preprocessing", "none")
    direct = saliency_maps(trained, apply_preprocessing(images[:4], "histeq"), labels[:4])
    np.testing.assert_allclose(tagged, direct, atol=1e-6)


def test_other_architectures_and_softmax_inside_dense():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 48, 48), dtype=np.uint8)
    xception = build_model("mini_xception")
    assert last_conv_layer(xception).name == "class_conv"
    assert last_conv_layer(build_model("baseline_cnn")).name == "conv3"
    for method in ("gradcam", "scorecam"):
        maps = saliency_maps(xception, images, 2, method)
        assert maps.shape == (3, 48, 48) and 0 <= maps.min() and maps.max() <= 1
    # Softmax folded into the last Dense: handled on a clone with tf-keras-vis' ReplaceToLinear.
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.Model(inputs, keras.layers.Dense(7, activation="softmax", name="out")(x))
    before = dense.predict(to_model_input(images), verbose=0)
    maps = saliency_maps(dense, images, [0, 1, 2])
    assert maps.shape == (3, 48, 48)
    assert dense.get_layer("out").activation is keras.activations.softmax
    np.testing.assert_array_equal(dense.predict(to_model_input(images), verbose=0), before)


def test_bad_inputs_raise_one_line_errors(trained, toy_test):
    images = toy_test[0]
    bad_calls = [
        lambda: saliency_maps(trained, np.zeros((2, 32, 32), np.uint8), 0),
        lambda: saliency_maps(trained, images[:2].astype(np.float32), 0),
        lambda: saliency_maps(trained, images[:2], 7),
        lambda: saliency_maps(trained, images[:2], -1),
        lambda: saliency_maps(trained, images[:2], [0, 1, 2]),
        lambda: saliency_maps(trained, images[:2], "joy"),
        lambda: saliency_maps(trained, images[:2], 0, method="lime"),
        lambda: saliency_maps(trained, images[:2], 0, layer="nope"),
        lambda: saliency_maps(trained, images[:2], 0, layer="fc1"),
        lambda: saliency_maps(trained, images[:2], 0, batch_size=0),
        lambda: saliency_maps(build_model("vgg", config=TINY_VGG, num_classes=3), images[:2], 0),
        lambda: deletion_insertion(trained, images[:2], 0, np.zeros((3, 48, 48))),
        lambda: deletion_insertion(trained, images[:2], 0, np.zeros((2, 48, 48)), baseline="zero"),
        lambda: region_mass(np.zeros((2, 48, 48)), np.zeros((3, 48, 48), bool)),
        lambda: randomisation_check(trained, images[:2], 0, steps=[["nope"]]),
    ]
    for call in bad_calls:
        with pytest.raises(WorkbenchError) as info:
            call()
        assert "\n" not in str(info.value)


def test_randomisation_correlation_drops(trained, toy_test):
    images, labels, _ = toy_test
    plan = randomisation_steps(trained)
    assert plan[0] == ["logits"] and plan[-1][0].startswith("block1")
    df = randomisation_check(trained, images[:24], labels[:24])
    assert list(df["step"]) == list(range(len(plan) + 1))
    assert df["spearman_mean"].iloc[0] == 1.0
    assert (df["spearman_mean"].iloc[-2:] < 0.5).all()
    # Randomising the clone never touches the model.
    np.testing.assert_allclose(saliency_maps(trained, images[:24], labels[:24]),
                               saliency_maps(trained, images[:24], labels[:24]))
    assert len(randomisation_check(trained, images[:4], labels[:4], steps=1)) == 2


def test_deletion_beats_random(trained, toy_test):
    images, labels, _ = toy_test
    maps = saliency_maps(trained, images, labels)
    for baseline in ("mean", "blur"):
        result = deletion_insertion(trained, images, labels, maps, steps=10, baseline=baseline)
        assert result["deletion"].shape == result["random_insertion"].shape == (11,)
        assert result["per_image"]["deletion_auc"].shape == (len(images),)
        assert 0 <= result["deletion_auc"] <= 1
        assert result["deletion_auc"] < result["random_deletion_auc"] - 0.05
        assert result["insertion_auc"] > result["random_insertion_auc"]


def test_region_mass_by_hand():
    maps = np.zeros((3, 48, 48), np.float32)
    maps[0, :24] = 1  # all mass in the top half
    maps[1] = 1  # uniform
    mask = np.zeros((48, 48), bool)
    mask[:24] = True
    share = region_mass(maps, mask)
    np.testing.assert_allclose(share[:2], [1.0, 0.5])
    assert np.isnan(share[2])  # a zero map has no mass to share
    report = region_report(maps, mask, [0, 0, 3], class_names=("a", "b", "c", "d"))
    assert report.loc["a", "n"] == 2 and report.loc["a", "mass_share"] == pytest.approx(0.75)
    assert report.loc["a", "lift"] == pytest.approx(1.5) and report.loc["d", "n"] == 0


def test_example_positions_and_class_means():
    from fer_workbench.saliency import class_mean_maps, example_positions

    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 0, 1, 1, 0])
    positions, titles = example_positions(labels, predicted, ["a", "b", "c"], per_class=1, seed=0)
    assert len(positions) == 4  # a: one right and one wrong; b: one right; c: one wrong
    assert titles[1] == "a → b" and titles[-1] == "c → a"
    images = np.arange(6 * 48 * 48, dtype=np.float64).reshape(6, 48, 48) % 256
    maps = np.zeros((6, 48, 48), np.float32)
    maps[:, 0, 0] = 1.0
    faces, means, captions = class_mean_maps(images.astype(np.uint8), maps, labels, predicted, ["a", "b", "c"])
    assert faces.shape == (2, 48, 48) and means.max() == 1.0 and captions == ["a (n=2)", "b (n=2)"]


def test_check_verdicts_by_hand():
    import pandas as pd

    from fer_workbench.saliency import check_verdicts

    sanity = pd.DataFrame({"step": [0, 1, 2, 0, 1, 2], "spearman_mean": [1, 0.6, 0.1, 1, 0.9, 0.8],
                           "method": ["gradcam"] * 3 + ["saliency"] * 3})
    faith = pd.DataFrame({"deletion": [0.2, 0.5], "random_deletion": [0.4, 0.4], "insertion": [0.7, 0.3],
                          "random_insertion": [0.5, 0.5]}, index=pd.Index(["gradcam", "saliency"], name="method"))
    verdicts = check_verdicts(sanity, faith).set_index(["method", "check"])["passed"]
    assert verdicts.loc["gradcam"].all()
    assert not verdicts.loc["saliency"].any()
    assert len(verdicts) == 6
