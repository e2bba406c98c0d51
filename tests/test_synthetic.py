"""The synthetic FER-like dataset: format, determinism, shares, planted problems, masks and learnability."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_workbench import CLASS_NAMES, IMAGE_SIZE, SPLITS, config
from fer_workbench.data import synthetic
from fer_workbench.data.fer_csv import load_fer_csv
from fer_workbench.data.synthetic import (
    SyntheticTruth,
    ensure_default_dataset,
    load_truth_for,
    make_synthetic,
    truth_path_for,
    write_synthetic_dataset,
)
from fer_workbench.errors import WorkbenchError

N = 2000
FER_CLASS_SHARES = np.array([4953, 547, 5121, 8989, 6077, 4002, 6198]) / 35887
FER_SPLIT_SHARES = np.array([28709, 3589, 3589]) / 35887


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    data, truth = make_synthetic(N, seed=0)
    path = tmp_path_factory.mktemp("synthetic") / "synthetic.csv"
    path.write_bytes(data)
    return data, truth, load_fer_csv(path)


def clean_faces(truth: SyntheticTruth) -> np.ndarray:
    return ~truth.nonface & ~truth.occluded & ~truth.label_flipped & (truth.duplicate_of < 0)


def test_same_seed_same_bytes_other_seed_other_bytes():
    first, truth1 = make_synthetic(150, seed=3)
    second, truth2 = make_synthetic(150, seed=3)
    assert first == second
    assert np.array_equal(truth1.clean_labels, truth2.clean_labels)
    assert np.array_equal(truth1.image_region_masks, truth2.image_region_masks)
    assert make_synthetic(150, seed=4)[0] != first


def test_loads_as_fer2013_csv(generated):
    data, truth, ds = generated
    assert data.startswith(b"emotion,pixels,Usage\n") and data.endswith(b"\n") and b"\r" not in data
    assert ds.images.shape == (N, IMAGE_SIZE, IMAGE_SIZE) and ds.images.dtype == np.uint8
    assert np.array_equal(ds.row_ids, np.arange(N))
    assert set(np.unique(ds.labels)) == set(range(len(CLASS_NAMES)))
    assert ds.split_names() == list(SPLITS)
    # rows are grouped by split, in FER2013's order
    assert (np.diff([SPLITS.index(s) for s in ds.splits]) >= 0).all()
    assert truth.n_rows == N and truth.seed == 0
    nonflipped = ~truth.label_flipped & ~truth.nonface
    assert np.array_equal(ds.labels[nonflipped], truth.clean_labels[nonflipped])


def test_csv_text_is_the_plain_fer2013_form(generated):
    """The shared writer (``fer_csv.fer_csv_bytes``) prints each pixel's decimal digits, one space apart."""
    data, _, ds = generated
    plain = "emotion,pixels,Usage\n" + "".join(f"{y},{' '.join(map(str, im.ravel()))},{s}\n"
                                             for y, im, s in zip(ds.labels, ds.images, ds.splits, strict=True))
    assert data == plain.encode()


def test_class_and_split_shares_follow_fer2013(generated):
    _, _, ds = generated
    class_shares = np.bincount(ds.labels, minlength=7) / N
    assert np.abs(class_shares - FER_CLASS_SHARES).max() < 0.01
    assert 0.008 < class_shares[CLASS_NAMES.index("disgust")] < 0.025
    split_shares = np.array([(ds.splits == s).sum() for s in SPLITS]) / N
    assert np.abs(split_shares - FER_SPLIT_SHARES).max() < 0.002
    training = ds.labels[ds.splits == "Training"]
    assert np.abs(np.bincount(training, minlength=7) / len(training) - FER_CLASS_SHARES).max() < 0.01


def test_planted_problem_rates(generated):
    _, truth, _ = generated
    assert 0.003 <= truth.nonface.mean() <= 0.008
    assert 0.02 <= truth.occluded.mean() <= 0.04
    assert 0.04 <= truth.label_flipped.mean() <= 0.065
    assert 0.01 <= (truth.duplicate_of >= 0).mean() <= 0.02
    assert set(truth.nonface_kind[truth.nonface]) == set(synthetic.NONFACE_KINDS)
    assert set(truth.occluder_kind[truth.occluded]) == set(synthetic.OCCLUDER_KINDS)
    assert (truth.nonface_kind[~truth.nonface] == "").all() and (truth.occluder_kind[~truth.occluded] == "").all()
    assert not (truth.nonface & truth.occluded).any() and not (truth.nonface & truth.label_flipped).any()


def test_duplicates_are_byte_identical_copies(generated):
    data, truth, ds = generated
    lines = data.split(b"\n")[1:]
    copies = np.flatnonzero(truth.duplicate_of >= 0)
    sources = truth.duplicate_of[copies]
    assert (truth.duplicate_of[sources] == -1).all()  # originals are not copies themselves
    for row, source in zip(copies, sources, strict=True):
        assert lines[row].split(b",")[1] == lines[source].split(b",")[1]
        assert np.array_equal(ds.images[row], ds.images[source])
        assert np.array_equal(truth.image_region_masks[row], truth.image_region_masks[source])
    assert (ds.splits[copies] != ds.splits[sources]).any()  # some leak across splits
    assert (ds.splits[copies] == ds.splits[sources]).any()
    assert (ds.labels[copies] != ds.labels[sources]).any()  # some carry a conflicting label
    # apart from planted copies, no two images are identical (blank non-faces aside)
    unique = ds.images[(truth.duplicate_of < 0) & (truth.nonface_kind != "blank")].reshape(-1, IMAGE_SIZE ** 2)
    assert len(np.unique(unique, axis=0)) == len(unique)


def test_flipped_labels_differ_from_clean_labels(generated):
    _, truth, ds = generated
    assert (ds.labels[truth.label_flipped] != truth.clean_labels[truth.label_flipped]).all()
    assert (ds.labels[~truth.label_flipped] == truth.clean_labels[~truth.label_flipped]).all()


def test_nonfaces_look_unlike_faces(generated):
    _, truth, ds = generated
    std = ds.images.reshape(N, -1).astype(float).std(axis=1)
    assert (std[truth.nonface_kind == "blank"] < 1).all()
    assert (std[truth.nonface_kind == "noise"] > 15).all()
    assert np.median(std[clean_faces(truth)]) > 15
    assert (std[clean_faces(truth)] > 3).all()
    assert not truth.image_region_masks[truth.nonface].any()


def test_region_masks(generated):
    _, truth, _ = generated
    assert truth.class_region_masks.shape == (7, IMAGE_SIZE, IMAGE_SIZE) and truth.class_region_masks.dtype == bool
    assert truth.image_region_masks.shape == (N, IMAGE_SIZE, IMAGE_SIZE) and truth.image_region_masks.dtype == bool
    sizes = truth.class_region_masks.sum(axis=(1, 2))
    assert (sizes > 100).all() and (sizes < 0.6 * IMAGE_SIZE * IMAGE_SIZE).all()
    assert sizes[CLASS_NAMES.index("happy")] < sizes[CLASS_NAMES.index("neutral")]
    # per-image masks are the clean class's canonical mask moved by a small pose jitter
    faces = clean_faces(truth)
    canonical = truth.class_region_masks[truth.clean_labels[faces]]
    posed = truth.image_region_masks[faces]
    iou = (canonical & posed).sum(axis=(1, 2)) / (canonical | posed).sum(axis=(1, 2))
    assert iou.min() > 0.3 and np.median(iou) > 0.6
    # occluders hide part of the signal region
    occluded = truth.occluded & ~truth.nonface
    canonical_occ = truth.class_region_masks[truth.clean_labels[occluded]].sum(axis=(1, 2))
    assert np.median(truth.image_region_masks[occluded].sum(axis=(1, 2)) / canonical_occ) < 0.9


def test_truth_round_trip_and_corrupt_file(generated, tmp_path):
    _, truth, _ = generated
    path = truth.save(tmp_path / "t.truth.npz")
    loaded = SyntheticTruth.load(path)
    for name in ("clean_labels", "label_flipped", "nonface", "nonface_kind", "occluded", "occluder_kind",
                 "duplicate_of", "class_region_masks", "image_region_masks"):
        assert np.array_equal(getattr(loaded, name), getattr(truth, name)), name
    assert (loaded.seed, loaded.n_rows) == (truth.seed, truth.n_rows)
    assert loaded.clean_labels.dtype == np.int64 and loaded.image_region_masks.dtype == bool
    assert path.stat().st_size < 200_000  # the masks are bit-packed
    bad = tmp_path / "bad.truth.npz"
    bad.write_bytes(b"not an npz file")
    with pytest.raises(WorkbenchError, match=r"bad.truth.npz"):
        SyntheticTruth.load(bad)
    with pytest.raises(WorkbenchError, match=r"missing.truth.npz"):
        SyntheticTruth.load(tmp_path / "missing.truth.npz")
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WorkbenchError, match=r"bad.truth.npz"):
        SyntheticTruth.load(bad)


def test_write_dataset_and_default(tmp_path, monkeypatch):
    csv_path = write_synthetic_dataset(tmp_path / "data", 120, seed=5)
    assert csv_path == tmp_path / "data" / "fer-synthetic-120-seed5.csv"
    assert truth_path_for(csv_path) == tmp_path / "data" / "fer-synthetic-120-seed5.truth.npz"
    assert csv_path.read_bytes() == make_synthetic(120, seed=5)[0]
    assert load_truth_for(csv_path).n_rows == 120
    assert len(load_fer_csv(csv_path)) == 120
    assert sorted(p.name for p in csv_path.parent.iterdir()) == [csv_path.name, truth_path_for(csv_path).name]

    def fail(*args, **kwargs):
        raise AssertionError("regenerated although both files exist")

    monkeypatch.setattr(synthetic, "make_synthetic", fail)
    assert write_synthetic_dataset(tmp_path / "data", 120, seed=5) == csv_path
    monkeypatch.undo()

    monkeypatch.setenv("FER_WORKBENCH_HOME", str(tmp_path / "home"))
    default = ensure_default_dataset(config.get_profile("smoke", data={"synthetic_rows": 60}))
    assert default == config.default_data_dir() / "fer-synthetic-60-seed0.csv" and default.is_file()
    with pytest.raises(WorkbenchError):
        make_synthetic(0)


def test_classes_are_learnable_but_not_trivial(generated):
    from skimage.feature import hog
    from sklearn.linear_model import RidgeClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, truth, ds = generated
    rows = np.random.default_rng(0).permutation(np.flatnonzero(clean_faces(truth)))
    features = np.stack([hog(image, orientations=9, pixels_per_cell=(6, 6), cells_per_block=(2, 2))
                         for image in ds.images[rows]])
    labels = truth.clean_labels[rows]
    train, test = slice(0, 1500), slice(1500, None)
    model = make_pipeline(StandardScaler(), RidgeClassifier(alpha=1000.0)).fit(features[train], labels[train])
    accuracy = (model.predict(features[test]) == labels[test]).mean()
    assert len(labels[test]) > 200
    assert 0.5 < accuracy < 0.97, accuracy


def test_class_signal_lies_inside_its_region_mask(generated):
    _, truth, ds = generated
    faces = clean_faces(truth)
    # high-pass and standardise each image first: background, skin tone and lighting vary far more than
    # the expression features and would otherwise swamp a 2,000-row class mean
    images = ds.images[faces].astype(np.float32)
    images = np.stack([image - cv2.GaussianBlur(image, (0, 0), 3) for image in images])
    images /= images.std(axis=(1, 2), keepdims=True)
    labels = truth.clean_labels[faces]
    neutral = CLASS_NAMES.index("neutral")
    for k, name in enumerate(CLASS_NAMES):
        # a class's region is where it departs from neutral; neutral's is where it departs from the rest
        reference = images[labels != k if k == neutral else labels == neutral].mean(axis=0)
        difference = np.abs(images[labels == k].mean(axis=0) - reference)
        mask = truth.class_region_masks[k]
        assert difference[mask].mean() > 1.2 * difference[~mask].mean(), name
