import hashlib
import json

import numpy as np
import pytest
from conftest import csv_text, make_rows
from PIL import Image

from fer_workbench import CLASS_NAMES, WorkbenchError
from fer_workbench.data import load_dataset, load_fer_csv, load_ferplus, load_image_folder
from fer_workbench.data.cache import clear_cache
from fer_workbench.data.folders import class_index


def test_csv_round_trip(small_csv):
    path, images, labels, splits = small_csv
    ds = load_fer_csv(path)
    assert ds.images.dtype == np.uint8 and ds.images.shape == (30, 48, 48)
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    np.testing.assert_array_equal(ds.splits, splits)
    np.testing.assert_array_equal(ds.row_ids, np.arange(30))
    assert ds.checksum == hashlib.sha256(path.read_bytes()).hexdigest()


def test_gzip_and_plain_give_same_images(small_csv, small_csv_gz):
    np.testing.assert_array_equal(load_fer_csv(small_csv[0]).images, load_fer_csv(small_csv_gz[0]).images)


def test_icml_variant_with_spaced_headers(tmp_path):
    images, labels, splits = make_rows(5)
    path = tmp_path / "icml_face_data.csv"
    path.write_text(csv_text(images, labels, splits, header=("emotion", " Usage", " pixels")))
    ds = load_fer_csv(path)
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.splits, splits)


def test_windows_line_endings(tmp_path):
    images, labels, splits = make_rows(4)
    path = tmp_path / "crlf.csv"
    path.write_bytes(csv_text(images, labels, splits).replace("\n", "\r\n").encode())
    np.testing.assert_array_equal(load_fer_csv(path).images, images)


def _corrupt(tmp_path, edits):
    images, labels, splits = make_rows(12)
    lines = csv_text(images, labels, splits).splitlines()
    for line_number, text in edits.items():
        lines[line_number - 1] = text
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("line, reason", [
    ("3,1 2 3,Training", "wrong pixel count"),
    ("3," + " ".join(["7"] * 2303 + ["x9"]) + ",Training", "non-numeric pixel value"),
    ("3," + " ".join(["7"] * 2303 + ["256"]) + ",Training", "pixel value above 255"),
    ("9," + " ".join(["7"] * 2304) + ",Training", "emotion label out of range"),
    ("2," + " ".join(["7"] * 2304) + ",Validation", "unknown Usage"),
    ("2," + " ".join(["7"] * 2304), "wrong field count"),
])
def test_bad_row_is_named_by_line(tmp_path, line, reason):
    path = _corrupt(tmp_path, {5: line})
    with pytest.raises(WorkbenchError) as info:
        load_fer_csv(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert reason in message and "line 5" in message


def test_skip_bad_rows_reports_which(tmp_path):
    path = _corrupt(tmp_path, {3: "3,1 2 3,Training", 8: "x,1,Training"})
    ds = load_fer_csv(path, skip_bad_rows=True)
    assert len(ds) == 10
    assert [line for line, _ in ds.skipped_rows] == [3, 8]
    # row ids are the source rows, so they skip the dropped ones rather than renumbering
    assert 1 not in ds.row_ids and 6 not in ds.row_ids and ds.row_ids[-1] == 11


def test_missing_column(tmp_path):
    path = tmp_path / "nousage.csv"
    path.write_text("emotion,pixels\n0," + " ".join(["1"] * 2304) + "\n")
    with pytest.raises(WorkbenchError, match="missing column Usage"):
        load_fer_csv(path)


def test_empty_and_unreadable_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("emotion,pixels,Usage\n")
    with pytest.raises(WorkbenchError, match="no data rows"):
        load_fer_csv(empty)
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(WorkbenchError, match="gzip"):
        load_fer_csv(broken)


def test_dataset_counts_and_subset(small_csv):
    ds = load_fer_csv(small_csv[0])
    counts = ds.counts()
    assert counts.loc["total", "total"] == 30
    assert list(counts.columns[:-1]) == list(CLASS_NAMES)
    public = ds.split("PublicTest")
    assert set(public.splits) == {"PublicTest"} and len(public) == 10
    np.testing.assert_array_equal(public.row_ids, np.arange(1, 30, 3))
    with pytest.raises(WorkbenchError, match="no split"):
        ds.split("Validation")


def _write_image(path, array, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).convert(mode).save(path)


def test_image_folder_kaggle_layout(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "fer_images"
    _write_image(root / "train" / "happy" / "Training_1.jpg", rng.integers(0, 255, (48, 48), np.uint8))
    _write_image(root / "train" / "anger" / "Training_2.png", rng.integers(0, 255, (48, 48), np.uint8))
    _write_image(root / "test" / "sadness" / "PublicTest_3.png", rng.integers(0, 255, (96, 96), np.uint8), "RGB")
    _write_image(root / "test" / "surprised" / "PrivateTest_4.png", rng.integers(0, 255, (48, 48), np.uint8))
    _write_image(root / "test" / "contempt" / "PrivateTest_5.png", rng.integers(0, 255, (48, 48), np.uint8))
    with pytest.warns(UserWarning, match="contempt"):
        ds = load_image_folder(root, progress=False)
    assert ds.images.shape == (4, 48, 48)
    by_path = dict(zip(ds.paths, zip(ds.labels, ds.splits, strict=True), strict=True))
    assert by_path["train/happy/Training_1.jpg"] == (CLASS_NAMES.index("happy"), "Training")
    assert by_path["train/anger/Training_2.png"] == (CLASS_NAMES.index("angry"), "Training")
    assert by_path["test/sadness/PublicTest_3.png"] == (CLASS_NAMES.index("sad"), "PublicTest")
    assert by_path["test/surprised/PrivateTest_4.png"] == (CLASS_NAMES.index("surprise"), "PrivateTest")


def test_image_folder_unreadable_is_reported(tmp_path):
    root = tmp_path / "flat"
    _write_image(root / "fear" / "a.png", np.zeros((48, 48), np.uint8))
    (root / "fear" / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(WorkbenchError, match=r"broken.jpg"):
        load_image_folder(root, progress=False)
    ds = load_image_folder(root, skip_unreadable=True, progress=False)
    assert len(ds) == 1 and ds.splits[0] == "PrivateTest"
    assert "broken.jpg" in ds.skipped_rows[0][0]


def test_class_aliases():
    assert class_index("Happiness") == CLASS_NAMES.index("happy")
    assert class_index("surprised") == CLASS_NAMES.index("surprise")
    assert class_index("contempt") is None


def test_cache_hit_and_invalidation(small_csv):
    path = small_csv[0]
    clear_cache()
    first = load_dataset(path)
    again = load_dataset(path)
    np.testing.assert_array_equal(first.images, again.images)
    assert again.checksum == first.checksum
    images, labels, splits = make_rows(30, seed=5)
    path.write_text(csv_text(images, labels, splits))
    changed = load_dataset(path)
    np.testing.assert_array_equal(changed.images, images)
    assert changed.checksum != first.checksum


def test_load_dataset_rejects_unknown_paths(tmp_path):
    with pytest.raises(WorkbenchError, match="no such file"):
        load_dataset(tmp_path / "missing.csv")
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(WorkbenchError, match="not a FER2013 CSV"):
        load_dataset(other)


def test_ferplus_alignment(tmp_path, small_csv):
    ds = load_fer_csv(small_csv[0])
    header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    rows = []
    for i, split in enumerate(ds.splits):
        votes = [0] * 10
        votes[i % 10] = 10
        rows.append(f"{split},{'' if i == 9 else f'fer{i:07d}.png'}," + ",".join(map(str, votes)))
    path = tmp_path / "fer2013new.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    votes = load_ferplus(path).align(ds.split("Training"))
    assert len(votes) == 10
    assert votes.majority_label[0] == CLASS_NAMES.index("neutral")  # row 0 voted neutral
    assert votes.dropped.sum() == 1 and votes.majority_label[votes.dropped][0] == -1
    wrong = path.read_text().replace("Training,", "PublicTest,", 1)
    path.write_text(wrong)
    with pytest.raises(WorkbenchError, match="not aligned"):
        load_ferplus(path).align(ds)


@pytest.mark.real_data
def test_real_fer2013_counts(real_csv):
    ds = load_dataset(real_csv)
    counts = ds.counts()
    assert counts.loc["Training", "total"] == 28709
    assert counts.loc["PublicTest", "total"] == 3589
    assert counts.loc["PrivateTest", "total"] == 3589
    assert counts.loc["total"].tolist()[:-1] == [4953, 547, 5121, 8989, 6077, 4002, 6198]


@pytest.mark.real_data
def test_real_ferplus_facts(real_csv, real_ferplus):
    from fer_workbench.explore import ferplus_summary

    summary = ferplus_summary(load_dataset(real_csv), load_ferplus(real_ferplus))
    assert summary["dropped_by_ferplus"] == 173
    assert 0.36 < summary["disagreement_rate_kept"] < 0.38


def test_parallel_parse_matches_serial(tmp_path, monkeypatch):
    """The forked multi-process path gives the same dataset and the same bad-row report as one process."""
    from fer_workbench.data import fer_csv

    path = _corrupt(tmp_path, {4: "3,1 2 3,Training", 12: "x,1,Training"})
    serial = load_fer_csv(path, skip_bad_rows=True)
    monkeypatch.setattr(fer_csv, "PARALLEL_MIN_ROWS", 1)
    parallel = load_fer_csv(path, skip_bad_rows=True)
    np.testing.assert_array_equal(parallel.images, serial.images)
    np.testing.assert_array_equal(parallel.row_ids, serial.row_ids)
    np.testing.assert_array_equal(parallel.splits, serial.splits)
    assert parallel.skipped_rows == serial.skipped_rows
    with pytest.raises(WorkbenchError, match="wrong pixel count on line 4; emotion label out of range on line 12"):
        load_fer_csv(path)


def test_optional_row_id_column(tmp_path):
    """A derived file (e.g. a cleaned export) carries its source rows in a row_id column."""
    images, labels, splits = make_rows(3)
    text = csv_text(images, labels, splits).splitlines()
    rows = [text[0] + ",row_id"] + [line + f",{r}" for line, r in zip(text[1:], (4, 9, 17), strict=True)]
    path = tmp_path / "derived.csv"
    path.write_text("\n".join(rows) + "\n")
    assert load_fer_csv(path).row_ids.tolist() == [4, 9, 17]
    rows[2] = rows[2].rsplit(",", 1)[0] + ",x"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(WorkbenchError, match="bad row_id on line 3"):
        load_fer_csv(path)


def test_working_dataset_cleans_training_only_and_keeps_test_splits_whole(tmp_path, small_csv):
    from fer_workbench.data import cleaned_data_path, cleaning_kept_rows, load_working_dataset

    path, images, labels, splits = small_csv
    source = load_dataset(path, cache=False)
    out = tmp_path / "run"
    dataset, note = load_working_dataset(path, out)
    assert len(dataset) == len(source) and "no cleaned export" in note
    # a cleaned export that dropped the first two rows of every split
    drop = np.concatenate([np.flatnonzero(splits == s)[:2] for s in ("Training", "PublicTest", "PrivateTest")])
    keep = np.setdiff1d(np.arange(len(images)), drop)
    cleaned = cleaned_data_path(out)
    cleaned.parent.mkdir(parents=True)
    rows = [f"{labels[i]},{' '.join(map(str, images[i].ravel()))},{splits[i]},{i}" for i in keep]
    cleaned.write_text("emotion,pixels,Usage,row_id\n" + "\n".join(rows) + "\n")
    (cleaned.parent / "summary.json").write_text(json.dumps({"data_checksum": source.checksum}))
    dataset, note = load_working_dataset(path, out)
    for split in ("PublicTest", "PrivateTest"):
        assert (dataset.splits == split).sum() == (splits == split).sum()  # test splits whole
    assert (dataset.splits == "Training").sum() == (splits == "Training").sum() - 2
    assert not np.isin(drop[:2], dataset.row_ids).any()
    assert "Training only" in note and "PrivateTest 2 of 10" in note
    kept = cleaning_kept_rows(dataset, out)
    assert kept.sum() == len(dataset) - 4 and not kept[np.isin(dataset.row_ids, drop)].any()
    (cleaned.parent / "summary.json").write_text(json.dumps({"data_checksum": "other"}))
    assert cleaning_kept_rows(dataset, out) is None
    assert "of other data" in load_working_dataset(path, out)[1]


def test_is_synthetic_tells_drawn_faces_from_a_users_file(tmp_path, small_csv):
    """Notebook 06 sends real photos of a synthetic run to the shipped model: it must know which data is drawn."""
    from fer_workbench.data import is_synthetic
    from fer_workbench.data.synthetic import write_synthetic_dataset

    assert is_synthetic(write_synthetic_dataset(tmp_path, 200, seed=0))
    assert not is_synthetic(small_csv[0])
