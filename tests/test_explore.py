import json

import numpy as np
import pytest
from conftest import make_rows

from fer_workbench.cleaning.duplicates import (
    exact_duplicate_groups,
    leakage_free_indices,
    leakage_free_mask,
    leaks_across_splits,
    split_membership,
)
from fer_workbench.data import load_dataset
from fer_workbench.data.dataset import Dataset
from fer_workbench.explore import (
    blank_images,
    class_balance,
    class_samples,
    dataset_summary,
    duplicate_summary,
    image_statistics,
    leakage_matrix,
    mean_faces,
    select_page,
    write_summary,
)


@pytest.fixture
def planted():
    """12 rows: rows 1 and 7 are copies of row 0 (7 in another split, with another label); row 5 is blank."""
    images, labels, splits = make_rows(12, seed=3)
    images[1] = images[0]
    images[7] = images[0]
    labels[1] = labels[0]
    images[5] = 128
    splits = np.array(["Training"] * 6 + ["PrivateTest"] * 6)
    labels[7] = (labels[0] + 1) % 7
    return Dataset(images=images, labels=labels, splits=splits, row_ids=np.arange(12), source="planted")


def test_duplicates_and_leakage(planted):
    summary = duplicate_summary(planted)
    assert summary == {"groups": 1, "rows_in_groups": 3, "redundant_rows": 2, "cross_split_groups": 1,
                       "cross_split_rows": 3, "label_conflict_groups": 1}
    leakage = leakage_matrix(planted)
    assert leakage.loc["Training", "PrivateTest"] == 2 and leakage.loc["PrivateTest", "Training"] == 1


def test_leakage_has_one_computation(planted):
    """Rows 0, 1 (Training) and 7 (PrivateTest) are one exact group: only row 7 leaks into PrivateTest."""
    group = exact_duplicate_groups(planted.images)
    reached = split_membership(group, planted.splits)
    assert reached.columns.tolist() == ["Training", "PrivateTest"]
    assert reached.loc[[0, 1, 7]].all(axis=None) and not reached.drop(index=[0, 1, 7]).any(axis=None)
    assert np.flatnonzero(leaks_across_splits(group, planted.splits)).tolist() == [0, 1, 7]
    assert leakage_free_mask(planted).tolist() == [True, False, True, True, True, True]
    assert leakage_free_indices(planted).tolist() == [6, 8, 9, 10, 11]
    assert leakage_free_mask(planted, train_split="PublicTest").all()  # no such split: nothing leaks from it


def test_blank_and_statistics(planted):
    assert blank_images(planted).row_ids.tolist() == [5]
    stats = image_statistics(planted)
    assert stats.loc[5, "contrast"] == 0 and stats.loc[5, "brightness"] == 128
    assert stats["blank"].sum() == 1


def test_class_balance_ratios():
    images, _, splits = make_rows(30)
    labels = np.array([3] * 20 + [1] * 2 + [0] * 8)
    table = class_balance(Dataset(images=images, labels=labels, splits=splits, row_ids=np.arange(30)))
    assert table.loc["happy", "imbalance_ratio"] == 1 and table.loc["disgust", "imbalance_ratio"] == 10
    assert table.loc["fear", "count"] == 0
    assert table["effective_samples"].between(0, table["count"] + 1e-9).all()


def test_mean_faces_and_samples(planted):
    means = mean_faces(planted)
    k = planted.labels[5]
    members = planted.images[planted.labels == k]
    np.testing.assert_allclose(means[k], members.mean(axis=0), rtol=1e-5)
    samples = class_samples(planted, 1, seed=0)
    assert set(samples) == set(planted.class_names)
    assert all(len(v) <= 1 for v in samples.values())


def test_select_page(planted):
    positions, pages = select_page(planted, split="PrivateTest", per_page=4)
    assert pages == 2 and positions.tolist() == [6, 7, 8, 9]
    positions, _ = select_page(planted, split="PrivateTest", page=5, per_page=4)
    assert positions.tolist() == [10, 11]


def test_summary_json_records_provenance(planted, tmp_path):
    path = write_summary(planted, tmp_path, profile="smoke", seed=3)
    record = json.loads(path.read_text())
    assert record["metadata"]["seed"] == 3 and "packages" in record["metadata"]
    assert record["summary"]["blank_images"] == 1


@pytest.mark.real_data
def test_real_duplicate_facts(real_csv):
    summary = dataset_summary(load_dataset(real_csv))
    assert summary["blank_images"] == 13
    assert summary["duplicates"]["groups"] == 1516
    assert summary["duplicates"]["rows_in_groups"] == 3369
    assert summary["duplicates"]["cross_split_groups"] == 557
