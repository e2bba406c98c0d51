"""Cleaning: scores on planted problems, manifest round trip, decisions, checksum checks, export."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_workbench.cleaning import (
    apply_decisions,
    load_decisions,
    read_manifest,
    run_cleaning,
    score_images,
    write_cleaning,
)
from fer_workbench.cleaning.duplicates import duplicate_groups
from fer_workbench.cleaning.imbalance import balancing_plan, imbalance_report
from fer_workbench.cleaning.label_issues import label_issue_scores, out_of_fold_probabilities
from fer_workbench.cleaning.manifest import CLEANING_FILES
from fer_workbench.cleaning.nonface import image_statistics, nonface_scores
from fer_workbench.data.dataset import Dataset
from fer_workbench.data.fer_csv import load_fer_csv
from fer_workbench.errors import WorkbenchError


def smooth_faces(n: int, seed: int = 0) -> np.ndarray:
    """Blob 'faces': smooth random structure, so each image is distinct and photo-like (not noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(n, 8, 8)).astype(np.float32)
    return np.stack([np.clip(cv2.GaussianBlur(cv2.resize(s, (48, 48), interpolation=cv2.INTER_CUBIC), (0, 0), 2)
                             + rng.normal(0, 4, (48, 48)), 0, 255) for s in small]).astype(np.uint8)


def make_dataset(images, labels, checksum="abc", splits=None) -> Dataset:
    n = len(images)
    splits = np.array(["Training"] * n) if splits is None else np.asarray(splits)
    return Dataset(images=images, labels=np.asarray(labels), splits=splits, row_ids=np.arange(n),
                   source="test", checksum=checksum)


def test_blank_and_flat_images_rank_first():
    images = smooth_faces(300)
    images[17] = 128
    images[42] = 0
    images[42, 20:28, 10:38] = 255  # a bar on black: an icon
    scores = nonface_scores(images, haar_top=50)
    top = set(np.argsort(-scores["nonface"])[:2])
    assert top == {17, 42}
    assert image_statistics(images)["pixel_std"][17] == 0


def test_pixel_noise_is_a_nonface():
    images = smooth_faces(300)
    images[5] = np.random.default_rng(1).integers(0, 256, (48, 48), dtype=np.uint8)
    assert np.argmax(nonface_scores(images, haar_top=0)["noise"]) == 5


def test_shifted_and_brightened_copies_are_near_duplicates():
    images = smooth_faces(200)
    shifted = cv2.warpAffine(images[3], np.float32([[1, 0, 2], [0, 1, -2]]), (48, 48),
                             borderMode=cv2.BORDER_REPLICATE)
    brighter = np.clip(images[9].astype(int) + 25, 0, 255).astype(np.uint8)
    all_images = np.concatenate([images, shifted[None], brighter[None], images[11][None]])
    groups = duplicate_groups(all_images)
    near, exact = groups["near_group"].to_numpy(), groups["exact_group"].to_numpy()
    assert near[3] >= 0 and near[3] == near[200]
    assert near[9] >= 0 and near[9] == near[201]
    assert exact[11] >= 0 and exact[11] == exact[202] and near[11] == near[202]
    others = np.setdiff1d(np.arange(200), [3, 9, 11])
    assert (near[others] < 0).all()


def test_flipped_label_in_separable_set_is_flagged():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 60)
    stripes = (np.arange(48) // 4) % 2 * 120.0
    pattern = np.stack([np.tile(stripes[:, None], (1, 48)), np.tile(stripes[None, :], (48, 1))])  # horiz / vert
    images = np.clip(pattern[labels] + 60 + rng.normal(0, 20, (120, 48, 48)), 0, 255).astype(np.uint8)
    noisy = labels.copy()
    noisy[7] = 1
    probs = out_of_fold_probabilities(images, noisy, 2, folds=3, model="hog-logreg", progress=False)
    quality, issues = label_issue_scores(noisy, probs)
    assert np.argmin(quality) == 7
    assert issues[7] and issues.sum() <= 3


def test_imbalance_strategies():
    labels = np.array([0] * 30 + [1] * 10 + [2] * 5)
    report = imbalance_report(labels, ("a", "b", "c"))
    assert report["count"].tolist() == [30, 10, 5]
    plan = balancing_plan(labels, 3, "oversample")
    assert np.bincount(labels[plan["indices"]]).tolist() == [30, 30, 30]
    weights = balancing_plan(labels, 3, "class_weights")["class_weights"]
    assert weights[2] > weights[1] > weights[0]
    assert balancing_plan(labels, 3, "augment_oversample")["augment"].sum() == 45
    with pytest.raises(WorkbenchError):
        balancing_plan(labels, 3, "smote")


def test_empty_and_single_class_datasets_are_refused(tmp_path):
    with pytest.raises(WorkbenchError, match="one class"):
        run_cleaning(make_dataset(smooth_faces(10), np.zeros(10, int)), tmp_path)
    with pytest.raises(WorkbenchError, match="no images"):
        run_cleaning(make_dataset(np.zeros((0, 48, 48), np.uint8), np.zeros(0, int)), tmp_path)


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory):
    """One cleaning run on a small file with a planted blank and a cross-split copy."""
    images = smooth_faces(120)
    images[4] = 200
    images[50] = images[10]
    labels = np.arange(120) % 3
    splits = np.array(["Training"] * 100 + ["PublicTest"] * 20)
    splits[50] = "PublicTest"
    tmp = tmp_path_factory.mktemp("clean")
    src = tmp / "src.csv"
    src.write_text("emotion,pixels,Usage\n" + "".join(
        f"{y},{' '.join(map(str, im.ravel()))},{s}\n" for y, im, s in zip(labels, images, splits, strict=True)))
    before = src.read_bytes()
    data = load_fer_csv(src)
    result = run_cleaning(data, tmp / "out", profile="smoke", label_issues=False, progress=False)
    return data, result, src, before, tmp


def test_manifest_flags_and_round_trip(cleaned):
    data, result, src, before, _ = cleaned
    m = result.manifest
    assert m.loc[m.row_id == 4, "flag_blank"].item()
    assert m.loc[m.row_id == 4, "excluded"].item()
    assert m.loc[m.row_id == 10, "flag_duplicate"].item()  # the training copy goes, the test copy stays
    assert not m.loc[m.row_id == 50, "flag_duplicate"].item()
    assert m.loc[m.row_id == 50, "cross_split_leak"].item()
    back = read_manifest(result.paths["manifest"])
    pd.testing.assert_frame_equal(back[["row_id", "split", "label", "flags", "reason", "excluded"]],
                                  m[["row_id", "split", "label", "flags", "reason", "excluded"]],
                                  check_dtype=False)
    summary = json.loads(Path(result.paths["summary"]).read_text())
    assert summary["data_checksum"] == data.checksum and summary["seed"] == 0
    assert src.read_bytes() == before  # the source is never changed


def test_cleaned_export_reads_back_with_the_same_loader(cleaned):
    data, result, *_ = cleaned
    again = load_fer_csv(result.paths["cleaned"])
    kept = ~result.manifest["excluded"].to_numpy()
    assert len(again) == kept.sum()
    assert np.array_equal(again.images, data.images[kept])
    assert np.array_equal(again.row_ids, data.row_ids[kept])  # source rows survive, so FER+ still aligns
    excluded = pd.read_csv(result.paths["excluded"])
    assert set(excluded.row_id) == set(data.row_ids[~kept])
    assert (excluded.reason.str.len() > 0).all()


def test_scoring_deciding_and_writing_are_separate_steps(cleaned, tmp_path, monkeypatch):
    data, result, *_ = cleaned
    monkeypatch.chdir(tmp_path)
    scored = score_images(data, "smoke", label_issues=False, progress=False)
    assert list(tmp_path.iterdir()) == []  # scoring writes nothing
    assert "excluded" not in scored and (scored["decision_blank"] == "").all()
    pd.testing.assert_frame_equal(scored, result.manifest.drop(columns=["reason", "excluded"]))
    # Deciding needs no rescoring: rejecting its flags keeps the blank row 4; so does a policy that excludes
    # nothing unreviewed; the scored frame itself is left as it was.
    flags = scored.loc[scored.row_id == 4, "flags"].item().split(";")
    decisions = pd.DataFrame({"row_id": [4] * len(flags), "flag": flags, "decision": ["reject"] * len(flags)})
    decisions.attrs["data_checksum"] = data.checksum
    kept = apply_decisions(scored, data, decisions)
    row = kept.loc[kept.row_id == 4].iloc[0]
    assert (row["decision_blank"], row["reason"], row["excluded"]) == ("reject", "", False)
    assert not apply_decisions(scored, data, exclude_flags=())["excluded"].any()
    assert "excluded" not in scored and (scored["decision_blank"] == "").all()
    pd.testing.assert_frame_equal(apply_decisions(scored, data), result.manifest)
    paths = write_cleaning(tmp_path / "out", kept, data, {"note": "test"})
    assert sorted(Path(p).name for p in paths.values()) == sorted(CLEANING_FILES.values())
    assert len(load_fer_csv(paths["cleaned"])) == len(data) - int(kept["excluded"].sum())
    written = load_decisions(paths["decisions"], data)
    assert written["row_id"].tolist() == [4] * len(flags) and set(written["decision"]) == {"reject"}


def test_decisions_survive_rerun_and_mismatch_is_refused(cleaned):
    data, result, _, _, tmp = cleaned
    flags = result.manifest.loc[result.manifest.row_id == 4, "flags"].item().split(";")
    assert "blank" in flags
    decisions = pd.DataFrame({"row_id": [4] * len(flags), "flag": flags, "decision": ["reject"] * len(flags)})
    decisions.attrs["data_checksum"] = data.checksum
    first = run_cleaning(data, tmp / "out2", label_issues=False, decisions=decisions, progress=False)
    assert not first.manifest.loc[first.manifest.row_id == 4, "excluded"].item()
    second = run_cleaning(data, tmp / "out3", label_issues=False, decisions=first.paths["decisions"],
                          progress=False)
    assert second.manifest.loc[second.manifest.row_id == 4, "decision_blank"].item() == "reject"
    assert not second.manifest.loc[second.manifest.row_id == 4, "excluded"].item()
    other = data.subset(np.arange(len(data)) != 0)
    from dataclasses import replace
    with pytest.raises(WorkbenchError, match="not applied"):
        load_decisions(first.paths["decisions"], replace(data, checksum="different"))
    bad = pd.DataFrame({"row_id": [0], "flag": ["blank"], "decision": ["reject"]})
    bad.attrs["data_checksum"] = data.checksum
    with pytest.raises(WorkbenchError, match="row ids not in this dataset"):
        load_decisions(bad, other)


def test_label_issue_step_runs_in_the_pipeline(cleaned):
    data, _, _, _, tmp = cleaned
    from fer_workbench.config import get_profile
    profile = get_profile("smoke", clean={"label_issue_model": "hog-logreg"})
    result = run_cleaning(data, tmp / "out4", profile=profile, progress=False)
    m = result.manifest
    assert m["label_quality"].between(0, 1).all()
    assert "label_issue" in result.summary["flagged"]
    # Label issues are for review: unreviewed ones stay in the cleaned data, accepted ones leave it.
    only_label = m["flag_label_issue"] & (m["flags"] == "label_issue")
    assert only_label.any() and not m.loc[only_label, "excluded"].any()
    row = int(m.loc[only_label, "row_id"].iloc[0])
    decisions = pd.DataFrame({"row_id": [row], "flag": ["label_issue"], "decision": ["accept"]})
    decisions.attrs["data_checksum"] = data.checksum
    reviewed = run_cleaning(data, tmp / "out5", profile=profile, decisions=decisions, progress=False)
    assert reviewed.manifest.loc[reviewed.manifest.row_id == row, "excluded"].item()
    assert reviewed.summary["excluded"] == result.summary["excluded"] + 1


@pytest.mark.real_data
def test_real_exact_duplicates(real_csv):
    data = load_fer_csv(real_csv)
    from fer_workbench.cleaning.duplicates import exact_duplicate_table
    table = exact_duplicate_table(data)
    assert len(table) == 1516 and table["size"].sum() == 3369


def test_review_helpers_rank_and_record(tmp_path):
    from fer_workbench.cleaning import review
    from fer_workbench.data.fer_csv import parse_fer_csv_bytes
    from fer_workbench.data.synthetic import make_synthetic

    dataset = parse_fer_csv_bytes(make_synthetic(400, seed=4)[0], "synthetic", checksum="c400")
    manifest = pd.DataFrame({"row_id": dataset.row_ids, "split": dataset.splits, "label": dataset.labels,
                             "label_name": np.asarray(dataset.class_names)[dataset.labels],
                             "nonface": np.arange(400.0), "flag_nonface": np.arange(400) >= 395})
    top = review.ranked(manifest, "nonface", limit=3)
    assert top["row_id"].tolist() == [399, 398, 397] and top["position"].tolist() == [399, 398, 397]
    assert review.captions(top, "nonface", dataset.class_names)[0].startswith("#399 ")
    path = tmp_path / "decisions.json"
    review.record_decision(path, dataset, 399, "nonface", "reject")
    review.record_decision(path, dataset, 399, "nonface", "accept")  # a later decision replaces the earlier
    review.record_decision(path, dataset, 3, "blank", "reject")
    assert review.decisions_count(path) == 2
    with pytest.raises(WorkbenchError, match="unknown decision"):
        review.record_decision(path, dataset, 3, "blank", "maybe")
