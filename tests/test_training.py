"""Input pipeline, augmentation, device selection, training with resume, TTA, saving and loading.

Training runs use a learnable toy set (bright top = angry, bright bottom = happy) and a tiny VGG for 1–2 epochs.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import limit_tf_threads

from fer_workbench import CLASS_NAMES, WorkbenchError
from fer_workbench.cleaning.duplicates import leakage_free_indices
from fer_workbench.config import get_profile
from fer_workbench.data.dataset import Dataset
from fer_workbench.inference import CropPredictor, compiled_predict, predict_proba, ten_crops
from fer_workbench.inputs import augment_batch, make_train_dataset
from fer_workbench.models import VGGConfig, build_model, tag_model
from fer_workbench.models.io import load_model, save_model
from fer_workbench.preprocess import to_model_input
from fer_workbench.runtime import precision_policy, select_device
from fer_workbench.training import TrainConfig, resolve_config, train

limit_tf_threads()

TINY_VGG = {"blocks": 2, "base_width": 8, "max_width": 16, "fc_units": 32, "fc_layers": 1, "dropout": 0.2,
            "global_pool": False}


def toy_dataset(n=240, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n) * 3  # angry (0) vs happy (3)
    images = rng.integers(0, 60, (n, 48, 48)).astype(np.uint8)
    images[labels == 0, :20] += 150
    images[labels == 3, 28:] += 150
    splits = np.array(["Training", "PublicTest", "PrivateTest"])[np.minimum(np.arange(n) * 10 // n, 9) // 7
                                                                  + (np.arange(n) * 10 // n == 9)]
    return Dataset(images, labels, splits, np.arange(n), source="toy")


@pytest.fixture(scope="module")
def toy():
    return toy_dataset()


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return train(toy, {"model": "vgg", "model_kwargs": TINY_VGG}, out, "smoke", seed=0, epochs=2, verbose=0)


# ------------------------------------------------------------------------------------------------ augmentation

def test_augmentation_is_deterministic_and_changes_images():
    x = to_model_input(toy_dataset(16).images)
    a = augment_batch(x, seed=3, counter=7).numpy()
    b = augment_batch(x, seed=3, counter=7).numpy()
    assert a.shape == x.shape and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.allclose(a, x)
    assert not np.allclose(a, augment_batch(x, seed=3, counter=8).numpy())
    assert not np.allclose(a, augment_batch(x, seed=4, counter=7).numpy())
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert np.array_equal(augment_batch(x, seed=3, strength=0).numpy(), x)
    mild = np.abs(augment_batch(x, seed=3, counter=7, strength=0.2).numpy() - x).mean()
    assert mild < np.abs(a - x).mean()


def test_train_stream_is_deterministic_and_resumable():
    data = toy_dataset(40)
    x = to_model_input(data.images)
    full, steps = make_train_dataset(x, data.labels, 16, seed=1, epochs=3)
    batches = list(full)
    assert steps == 3 and len(batches) == 9
    again = list(make_train_dataset(x, data.labels, 16, seed=1, epochs=3)[0])
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(batches, again, strict=True))
    assert not np.array_equal(batches[0][0], batches[3][0])  # each epoch reshuffles
    resumed = list(make_train_dataset(x, data.labels, 16, seed=1, epochs=3, initial_epoch=1)[0])
    assert len(resumed) == 6 and all(np.array_equal(p[0], q[0]) for p, q in zip(batches[3:], resumed, strict=True))
    assert batches[0][1].shape == (16, len(CLASS_NAMES))


def test_oversampling_and_class_weights():
    data = toy_dataset(40)
    x = to_model_input(data.images)
    idx = np.r_[np.arange(40), np.flatnonzero(data.labels == 0)]
    ds, steps = make_train_dataset(x, data.labels, 8, seed=0, epochs=1, sample_indices=idx, augment=0)
    assert steps == int(np.ceil(len(idx) / 8))
    assert sum(len(b[0]) for b in ds) == len(idx)
    ds, _ = make_train_dataset(x, data.labels, 64, seed=0, augment=0, class_weight={"angry": 2.0})
    _, yb, wb = next(iter(ds))
    assert np.allclose(wb.numpy(), np.where(yb.numpy().argmax(1) == 0, 2.0, 1.0))
    ds, _ = make_train_dataset(x, data.labels, 64, seed=0, augment=0, class_weight="balanced")
    _, yb, wb = next(iter(ds))
    totals = [wb.numpy()[yb.numpy().argmax(1) == c].sum() for c in (0, 3)]
    assert np.isclose(totals[0], totals[1])


# ------------------------------------------------------------------------------------------------------ devices

class FakeGPU:
    name, device_type = "/physical_device:GPU:0", "GPU"


def test_device_selection_with_mocked_devices():
    cpu = select_device("cpu", gpus=[])
    assert (cpu.gpu, cpu.mixed_precision, cpu.jit_compile, cpu.batch_size) == (False, None, False, 64)
    hopper = select_device("cpu", gpus=[FakeGPU()], compute_capability=(9, 0))
    assert (hopper.gpu, hopper.mixed_precision, hopper.jit_compile, hopper.batch_size) == \
        (True, "mixed_bfloat16", True, 128)
    assert select_device("cpu", gpus=[FakeGPU()], compute_capability=(7, 5)).mixed_precision == "mixed_float16"
    assert select_device("gpu", gpus=[FakeGPU()]).mixed_precision == "mixed_float16"  # details unavailable
    assert not select_device().gpu  # this CPU machine
    assert select_device("cpu", gpus=[FakeGPU()], compute_capability=(9, 0), precision="float32").mixed_precision \
        is None
    assert select_device("cpu", gpus=[FakeGPU()], compute_capability=(7, 5),
                         precision="bfloat16").mixed_precision == "mixed_bfloat16"


def test_bfloat16_on_cpu_only_where_native():
    assert select_device("cpu", gpus=[], precision="bfloat16", native_bf16=True).mixed_precision == "mixed_bfloat16"
    with pytest.warns(UserWarning, match="no native bfloat16"):
        assert select_device("cpu", gpus=[], precision="bfloat16", native_bf16=False).mixed_precision is None
    assert select_device("cpu", gpus=[], precision="auto", native_bf16=True).mixed_precision is None
    with pytest.raises(WorkbenchError, match="unknown precision"):
        select_device("cpu", gpus=[], precision="half")
    with pytest.raises(WorkbenchError, match="unknown precision"):
        resolve_config({"model": "vgg", "precision": "half"})


def test_precision_policy_is_restored():
    before = keras.config.dtype_policy().name
    with precision_policy("mixed_float16"):
        model = build_model("vgg", **TINY_VGG)
        assert model.get_layer("block1_conv1").compute_dtype == "float16"
        assert model.output.dtype == "float32"
    assert keras.config.dtype_policy().name == before


# ------------------------------------------------------------------------------------------------------ configs

def test_resolve_config():
    assert resolve_config("vgg", "smoke").model_kwargs == VGGConfig(**resolve_config("vgg").model_kwargs).to_dict()
    assert resolve_config("vgg", "gpu").model_kwargs["fc_units"] == 4096
    cfg = resolve_config(VGGConfig(base_width=4), "smoke", optimizer="adamw")
    assert cfg.model_kwargs["base_width"] == 4 and cfg.learning_rate == 1e-3
    assert cfg.epochs == get_profile("smoke").train.epochs
    assert resolve_config(cfg.to_dict()) == cfg
    assert isinstance(resolve_config(TrainConfig(model="mini_xception")), TrainConfig)
    for bad in ({"optimiser": "sgd"}, {"model": "alexnet"}, {"preprocessing": "blur"}, {"schedule": "step"}):
        with pytest.raises(WorkbenchError):
            resolve_config({"model": "vgg", **bad})


# ----------------------------------------------------------------------------------------------------- training

def test_training_learns_the_toy_task(trained):
    history = trained.history
    assert list(history["epoch"]) == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"} <= set(history.columns)
    assert trained.metrics["PrivateTest"]["accuracy"] > 0.75  # chance is 0.5
    assert trained.metrics["PrivateTest"]["leakage_free_n"] == trained.metrics["PrivateTest"]["n"]
    assert {"precision", "recall", "f1", "support"} <= set(trained.metrics["PrivateTest"]["per_class"]["happy"])
    assert trained.images_per_second > 0 and trained.seconds > 0
    card = json.loads(trained.card_path.read_text())
    assert card["class_names"] == list(CLASS_NAMES) and card["preprocessing"] == "none"
    assert card["seed"] == 0 and card["profile"]["name"] == "smoke" and card["epochs_trained"] == 2
    assert card["model"]["name"] == "vgg" and card["metadata"]["packages"]["keras"]
    assert (trained.out_dir / "checkpoints" / "last.keras").exists()


def test_resume_continues_from_saved_epoch(toy, tmp_path):
    config = {"model": "baseline_cnn", "model_kwargs": {"widths": [4, 8, 8], "dense": [16, 8]},
              "optimizer": "adam", "schedule": "cosine", "epochs": 1, "preprocessing": "clahe"}
    first = train(toy, config, tmp_path, "smoke", seed=1, verbose=0)
    assert first.resumed_from_epoch == 0 and len(first.history) == 1
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["epoch"] == 1
    second = train(toy, {**config, "epochs": 2}, tmp_path, "smoke", seed=1, verbose=0)
    assert second.resumed_from_epoch == 1
    assert list(second.history["epoch"]) == [1, 2]
    assert second.history["loss"].iloc[0] == first.history["loss"].iloc[0]  # epoch 1 kept, not redone
    last = load_model(tmp_path / "checkpoints" / "last.keras", compile=True)  # optimizer state carried over
    assert int(last.optimizer.iterations) == 2 * int(np.ceil((toy.splits == "Training").sum() / 32))
    done = train(toy, {**config, "epochs": 2}, tmp_path, "smoke", seed=1, verbose=0)
    assert done.resumed_from_epoch == 2 and len(done.history) == 2
    with pytest.raises(WorkbenchError, match=r"different run.*seed"):
        train(toy, config, tmp_path, "smoke", seed=2, verbose=0)


def test_mixed_precision_training_saves_a_float32_model(toy, tmp_path, monkeypatch):
    from fer_workbench import runtime

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)  # bfloat16 is emulated elsewhere: slow, same
    result = train(toy, {"model": "vgg", "model_kwargs": TINY_VGG, "precision": "bfloat16"}, tmp_path, "smoke",
                   seed=0, epochs=1, verbose=0)
    assert result.device.mixed_precision == "mixed_bfloat16"
    checkpoint = load_model(tmp_path / "checkpoints" / "best.keras")
    assert checkpoint.get_layer("block1_conv1").compute_dtype == "bfloat16"
    saved = load_model(result.model_path)
    assert {layer.compute_dtype for layer in saved.layers} == {"float32"}
    for ours, theirs in zip(saved.get_weights(), checkpoint.get_weights(), strict=True):
        assert np.array_equal(ours, theirs)
    x = to_model_input(toy.images[:8])
    assert np.abs(saved(x).numpy() - checkpoint(x).numpy()).max() < 0.05  # bfloat16 rounding, same network


def test_tta_predictions_are_probabilities(trained, toy):
    images = toy.images[:5]
    plain = predict_proba(trained.model, images)
    tta = predict_proba(trained.model, images, tta=True)
    for probs in (plain, tta):
        assert probs.shape == (5, len(CLASS_NAMES)) and (probs >= 0).all()
        assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert not np.allclose(plain, tta)
    assert predict_proba(trained.model, images[0], tta=True).shape == (len(CLASS_NAMES),)
    crops = ten_crops(to_model_input(images)).numpy()
    assert crops.shape == (10, 5, 48, 48, 1) and np.allclose(crops[5], crops[0][:, :, ::-1])


def test_compiled_predict_matches_eager(trained, toy):
    x = to_model_input(toy.images[:3])
    fn = compiled_predict(trained.model)
    assert fn is compiled_predict(trained.model)
    assert np.allclose(fn(tf.constant(x)).numpy(), trained.model(x, training=False).numpy(), atol=1e-5)
    predictor = CropPredictor(trained.model)
    assert predictor(toy.images[0]).shape == (7,)
    assert set(predictor.predict_labels(toy.images[:4])) <= set(CLASS_NAMES)


def test_save_load_round_trip_and_corrupt_file(trained, toy, tmp_path):
    model = build_model("mini_xception")
    tag_model(model, fer_preprocessing="histeq")
    path = save_model(model, tmp_path / "mx.keras", {"seed": 5, "metrics": {"accuracy": np.float32(0.5)}})
    assert (tmp_path / "mx.model_card.json").exists()
    loaded = load_model(path)
    assert loaded.fer_preprocessing == "histeq" and loaded.fer_card["seed"] == 5
    assert loaded.fer_card["class_names"] == list(CLASS_NAMES)
    assert np.allclose(predict_proba(loaded, toy.images[:4]), predict_proba(model, toy.images[:4]), atol=1e-5)
    reloaded = load_model(trained.model_path)
    assert np.allclose(predict_proba(reloaded, toy.images[:4]), predict_proba(trained.model, toy.images[:4]),
                       atol=1e-5)

    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"this is not a zip archive")
    with pytest.raises(WorkbenchError) as err:
        load_model(corrupt)
    assert str(corrupt) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(WorkbenchError, match="no such model file"):
        load_model(tmp_path / "missing.keras")
    with pytest.raises(WorkbenchError, match=r"must end in .keras"):
        save_model(model, tmp_path / "model.h5")


def test_leakage_free_indices(toy):
    images = toy.images.copy()
    train_idx = np.flatnonzero(toy.splits == "Training")
    test_idx = np.flatnonzero(toy.splits == "PrivateTest")
    images[test_idx[0]] = images[train_idx[3]]  # leaked into the test split
    images[test_idx[2]] = images[test_idx[1]]  # duplicated within the test split only: not a leak
    data = Dataset(images, toy.labels, toy.splits, toy.row_ids)
    clean = leakage_free_indices(data)
    assert test_idx[0] not in clean and {test_idx[1], test_idx[2]} <= set(clean)
    assert len(clean) == len(test_idx) - 1 and (data.splits[clean] == "PrivateTest").all()


def test_profile_caps_the_training_rows_reproducibly(toy, tmp_path):
    """A profile's ``train_rows`` (smoke: 2,000) bounds what one training sees, so smoke stays minutes on real data."""

    capped = get_profile("smoke", train={"rows": 40})
    first = train(toy, {"model": "vgg", "model_kwargs": TINY_VGG}, tmp_path / "a", capped, seed=0, epochs=1,
                  verbose=0)
    assert first.model.fer_card["training_rows"] == 40
    everything = train(toy, {"model": "vgg", "model_kwargs": TINY_VGG}, tmp_path / "b", capped, seed=0, epochs=1,
                       train_rows=0, verbose=0)
    assert everything.model.fer_card["training_rows"] == (toy.splits == "Training").sum()
    assert get_profile("smoke").train.rows == 2_000 and get_profile("cpu").train.rows == 0


# ------------------------------------------------------------------------------------------- mixup and cutmix

def _identified_batch(b=12):
    """Images of row k: (k + 1) × a fixed non-constant pattern, and one-hot targets over b columns: a mixed row shows
    which two rows it came from and in what shares."""
    pattern = 1.0 + np.linspace(0.0, 1.0, 48 * 48, dtype=np.float32).reshape(48, 48, 1)
    images = np.arange(1, b + 1, dtype=np.float32)[:, None, None, None] * pattern
    return images, np.eye(b, dtype=np.float32), pattern


@pytest.mark.parametrize("mixup, cutmix", [(0.2, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_mixed_targets_are_convex_combinations_matching_the_images(mixup, cutmix):
    from fer_workbench.inputs import mix_batch

    images, targets, pattern = _identified_batch()
    weights = np.arange(1, 13, dtype=np.float32)
    kinds = set()
    for counter in range(8):
        x, y, w = (t.numpy() for t in mix_batch(images, targets, seed=5, counter=counter, mixup=mixup,
                                                 cutmix=cutmix, weights=weights))
        assert np.allclose(y.sum(axis=1), 1.0, atol=1e-6) and y.min() >= 0 and y.max() <= 1 + 1e-6
        for i in range(len(y)):
            others = np.delete(np.arange(len(y)), i)
            partner = others[np.argmax(y[i, others])] if y[i, others].max() > 0 else i
            own = y[i, i] if partner != i else 1.0
            assert np.count_nonzero(np.delete(y[i], [i, partner])) == 0  # its own row and one partner, no more
            assert np.isclose(w[i], own * weights[i] + (1 - own) * weights[partner], rtol=1e-5)
            ratio = x[i] / pattern  # the row numbers the pixels came from (blended: a weighted mean of two)
            if np.allclose(ratio, ratio.flat[0], rtol=1e-5):  # blended (mixup), or a whole copy
                assert np.isclose(ratio.flat[0], own * (i + 1) + (1 - own) * (partner + 1), rtol=1e-5)
                if not np.isclose(ratio.flat[0], round(float(ratio.flat[0])), atol=1e-3):
                    kinds.add("mixup")
            else:  # pasted (CutMix): each pixel is its own or the partner's, the partner's share is 1 - λ
                rows = np.round(ratio).astype(int)
                assert np.allclose(ratio, rows, atol=1e-4) and set(np.unique(rows)) == {i + 1, partner + 1}
                assert np.isclose((rows == partner + 1).mean(), 1 - own, atol=1e-6)
                kinds.add("cutmix")
    assert kinds == {k for k, alpha in (("mixup", mixup), ("cutmix", cutmix)) if alpha > 0}


def test_mixing_is_deterministic_per_seed_and_step():
    from fer_workbench.inputs import mix_batch

    images, targets, _ = _identified_batch()

    def mixed(seed, counter):
        return [t.numpy() for t in mix_batch(images, targets, seed, counter, mixup=0.3, cutmix=1.0)[:2]]

    first = mixed(1, 4)
    assert all(np.array_equal(a, b) for a, b in zip(first, mixed(1, 4), strict=True))
    assert not np.array_equal(first[1], mixed(1, 5)[1]) and not np.array_equal(first[1], mixed(2, 4)[1])
    off = mix_batch(images, targets, 1, 4)
    assert np.array_equal(off[0].numpy(), images) and np.array_equal(off[1].numpy(), targets)


def test_mixed_train_stream_is_deterministic_and_resumable_on_soft_labels():
    data = toy_dataset(40)
    x = to_model_input(data.images)
    soft = np.full((40, len(CLASS_NAMES)), 0.05, np.float32)
    soft[np.arange(40), data.labels] = 0.7
    kwargs = {"seed": 1, "epochs": 3, "augment": 0.5, "mixup": 0.2, "cutmix": 1.0}
    batches = list(make_train_dataset(x, soft, 16, **kwargs)[0])
    again = list(make_train_dataset(x, soft, 16, **kwargs)[0])
    resumed = list(make_train_dataset(x, soft, 16, initial_epoch=1, **kwargs)[0])
    assert all(np.array_equal(p[0], q[0]) and np.array_equal(p[1], q[1]) for p, q in zip(batches, again, strict=True))
    assert all(np.array_equal(p[1], q[1]) for p, q in zip(batches[3:], resumed, strict=True))
    for _, y in batches:
        assert np.allclose(y.numpy().sum(axis=1), 1.0, atol=1e-5)
    plain = list(make_train_dataset(x, soft, 16, seed=1, epochs=1, augment=0.5)[0])
    assert not np.array_equal(plain[0][1], batches[0][1])  # mixing changed the targets


@pytest.mark.parametrize("field, value, says", [
    ("mixup", -0.1, "mixup must be a number >= 0"), ("mixup", "strong", "mixup must be a number >= 0"),
    ("cutmix", float("nan"), "cutmix must be a number >= 0"), ("cutmix", True, "cutmix must be a number >= 0"),
    ("average_last", 2.5, "average_last must be a whole number"), ("average_last", -1, "average_last must be"),
    ("average_last", 9, "average_last 9 is more than the run's 3 epochs")])
def test_invalid_mixing_and_averaging_settings_are_one_line_errors(field, value, says):
    with pytest.raises(WorkbenchError, match=says) as caught:
        resolve_config({"model": "vgg", "epochs": 3, field: value}, "smoke")
    assert "\n" not in str(caught.value)


def test_new_settings_left_off_keep_old_runs_resumable():
    from fer_workbench.training import _fingerprint

    plain = _fingerprint(resolve_config("vgg", "smoke"), 0, 32, "data")
    assert not {"mixup", "cutmix", "average_last"} & set(plain["config"])
    mixed = _fingerprint(resolve_config("vgg", "smoke", mixup=0.2, average_last=2), 0, 32, "data")
    assert mixed["config"]["mixup"] == 0.2 and mixed["config"]["average_last"] == 2


# ------------------------------------------------------------------------------------------ weight averaging

def test_batch_norm_reestimation_gives_the_mean_over_the_rows_and_restores_the_layers():
    from fer_workbench.training import reestimate_batch_norm

    net = build_model("vgg", **{**TINY_VGG, "batch_norm": True, "dropout": 0.3})
    x = to_model_input(toy_dataset(50).images)
    norm = next(layer for layer in net.layers if isinstance(layer, keras.layers.BatchNormalization))
    drop = next(layer for layer in net.layers if isinstance(layer, keras.layers.Dropout))
    inputs_to_norm = keras.Model(net.input, norm.input).predict(x, verbose=0)
    assert reestimate_batch_norm(net, x, batch_size=16) == 50  # batches of 16, 16, 16 and 2
    assert np.allclose(norm.moving_mean.numpy(), inputs_to_norm.mean(axis=(0, 1, 2)), atol=1e-4)
    assert norm.momentum == 0.9 and drop.rate == 0.3


def test_averaged_model_is_the_mean_of_the_last_snapshots(tmp_path):
    """average_last 2 of 3 epochs: the kept snapshots are epochs 2 and 3, their average is the element-wise mean
    of the weights at those epochs' ends (before batch-norm re-estimation), and the card records the comparison."""
    from fer_workbench.model_card import card_markdown
    from fer_workbench.training import average_snapshots

    class Snapshots(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.weights = {}

        def on_epoch_end(self, epoch, logs=None):
            self.weights[epoch + 1] = self.model.get_weights()

    recorder = Snapshots()
    config = {"model": "vgg", "model_kwargs": {**TINY_VGG, "batch_norm": True}, "optimizer": "adam",
              "schedule": "cosine", "epochs": 3, "average_last": 2}
    result = train(toy_dataset(), config, tmp_path / "run", "smoke", seed=0, verbose=0, callbacks=[recorder])
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["snapshots"] == [2, 3]
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints" / "snapshots").iterdir()) == \
        ["epoch-0002.npz", "epoch-0003.npz"]
    averaged = average_snapshots(tmp_path / "run", [2, 3])
    for mine, second, third in zip(averaged, recorder.weights[2], recorder.weights[3], strict=True):
        assert np.allclose(mine, (second.astype(np.float64) + third) / 2, rtol=1e-6, atol=1e-7)
    averaging = result.metrics["averaging"]
    assert averaging["epochs"] == [2, 3] and averaging["batch_norm_rows"] > 0
    assert set(averaging["publictest_accuracy"]) == {"averaged", "best_epoch"}
    assert averaging["kept"] == ("averaged" if averaging["publictest_accuracy"]["averaged"]
                                 >= averaging["publictest_accuracy"]["best_epoch"] else "best_epoch")
    card = json.loads(result.card_path.read_text())
    assert card["metrics"]["averaging"] == averaging and card["train_config"]["average_last"] == 2
    page = card_markdown(card, card["metrics"]["PrivateTest"], None, {"n": 0, "accuracy": None})
    assert f"- Weight averaging: epochs 2–3 averaged, batch norm re-estimated on {averaging['batch_norm_rows']:,}" \
        in page and f"the {averaging['kept'].replace('_', ' ')} model is kept" in page
    if averaging["kept"] == "averaged":  # re-estimation changes only the batch-norm statistics
        trainable = {id(v) for v in result.model.trainable_weights}
        for variable, mean in zip(result.model.weights, averaged, strict=True):
            if id(variable) in trainable:
                assert np.allclose(variable.numpy(), mean, atol=1e-7)


def test_averaging_resumes_exactly_after_an_interruption(tmp_path):
    """A run stopped after epoch 2 of 3 and re-run keeps its snapshots (state.json lists them), so its average is
    the uninterrupted run's."""
    from fer_workbench.training import average_snapshots

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    config = {"model": "vgg", "model_kwargs": {**TINY_VGG, "batch_norm": True, "dropout": 0.0}, "optimizer": "adam",
              "schedule": "cosine", "augment": 0.5, "mixup": 0.2, "epochs": 3, "average_last": 2}
    whole = train(toy_dataset(), config, tmp_path / "whole", "smoke", seed=1, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        train(toy_dataset(), config, tmp_path / "pieces", "smoke", seed=1, verbose=0, callbacks=[Interrupt()])
    assert json.loads((tmp_path / "pieces" / "state.json").read_text())["snapshots"] == [1, 2]
    pieces = train(toy_dataset(), config, tmp_path / "pieces", "smoke", seed=1, verbose=0)
    assert pieces.resumed_from_epoch == 2 and pieces.metrics["averaging"] == whole.metrics["averaging"]
    for a, b in zip(average_snapshots(tmp_path / "whole", [2, 3]), average_snapshots(tmp_path / "pieces", [2, 3]),
                    strict=True):
        assert np.array_equal(a, b)
