"""The cleaning ablation on the synthetic default at smoke scale, where the planted problems are known."""

import itertools
import json

import numpy as np
import pytest
from conftest import limit_tf_threads

from fer_workbench.cleaning import score_images
from fer_workbench.cleaning.ablation import (
    ABLATION_VARIANTS,
    REPORT_FILE,
    RESULTS_FILE,
    ablation_summary,
    paired_bootstrap,
    removal_masks,
    run_cleaning_ablation,
    variant_training_rows,
    verdict,
    write_report,
)
from fer_workbench.data import load_dataset
from fer_workbench.data.ferplus import EMOTION_COLUMNS, FERPLUS_TO_FER, VOTE_COLUMNS, FerPlusVotes
from fer_workbench.data.synthetic import ensure_default_dataset, load_truth_for
from fer_workbench.errors import WorkbenchError

limit_tf_threads()


def votes_from_truth(dataset, truth, usage=None) -> FerPlusVotes:
    """FER+-shaped votes whose majority is the synthetic truth's clean label; planted non-faces are dropped."""
    votes = np.zeros((len(dataset), len(VOTE_COLUMNS)), np.int64)
    column = {fer: EMOTION_COLUMNS.index(name) for name, fer in FERPLUS_TO_FER.items()}
    clean = truth.clean_labels[dataset.row_ids]
    votes[np.arange(len(dataset)), [column[int(k)] for k in clean]] = 10
    nonface = truth.nonface[dataset.row_ids]
    votes[nonface] = 0
    votes[nonface, VOTE_COLUMNS.index("NF")] = 10
    names = np.where(nonface, "", np.char.add("fer", dataset.row_ids.astype(str)))
    return FerPlusVotes(votes=votes, usage=dataset.splits.copy() if usage is None else usage, image_names=names,
                        row_ids=dataset.row_ids.copy(), source="synthetic votes", checksum="synthetic")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    path = ensure_default_dataset("smoke")
    dataset = load_dataset(path, progress=False)
    truth = load_truth_for(path)
    manifest = score_images(dataset, "smoke", progress=False)
    return dataset, truth, manifest, votes_from_truth(dataset, truth)


def test_variants_shrink_training_and_drop_the_planted_problems(study):
    dataset, truth, manifest, votes = study
    training = dataset.splits == "Training"
    rows = {v.name: variant_training_rows(manifest, dataset, v, votes) for v in ABLATION_VARIANTS}
    assert len(rows["raw"][0]) == training.sum()
    chain = ["raw", "minus_nonface", "minus_exact_dups", "minus_near_dups", "minus_label_issues"]
    for bigger, smaller in itertools.pairwise(chain):
        assert set(rows[smaller][0]) < set(rows[bigger][0]), (bigger, smaller)
    for name, (positions, _) in rows.items():
        assert (dataset.splits[positions] == "Training").all(), name
    planted_nonfaces = np.flatnonzero(training & truth.nonface[dataset.row_ids])
    assert len(planted_nonfaces) and np.isin(planted_nonfaces, rows["raw"][0]).all()
    for name in chain[1:]:
        assert not np.isin(planted_nonfaces, rows[name][0]).any(), name
    # exact copies: of every byte-identical Training group only one member is left
    kept = rows["minus_exact_dups"][0]
    groups = manifest["exact_group"].to_numpy()[kept]
    assert len(np.unique(groups[groups >= 0])) == (groups >= 0).sum()
    # relabelling and weighting change labels / weights, not rows
    for name in ("relabel_label_issues", "class_weighted"):
        assert np.array_equal(rows[name][0], rows["minus_near_dups"][0])
    positions, labels = rows["relabel_label_issues"]
    changed = labels != dataset.labels[positions]
    masks = removal_masks(manifest, dataset)
    assert changed.any() and masks["label_issue"][positions[changed]].all()
    clean = truth.clean_labels[dataset.row_ids[positions]]
    assert (labels[changed] == clean[changed]).all()
    assert (labels == clean).mean() > (dataset.labels[positions] == clean).mean()


def test_bootstrap_interval_on_constructed_cases():
    rng = np.random.default_rng(1)
    n = 4000
    a = rng.random(n) < 0.60
    # b = a with 10 % of the images a got wrong turned right: the true paired difference is known exactly
    wrong = np.flatnonzero(~a)
    b = a.copy()
    b[rng.choice(wrong, len(wrong) // 10, replace=False)] = True
    true_diff = b.mean() - a.mean()
    diff, low, high = paired_bootstrap(a, b, n_boot=2000, seed=0)
    assert diff == pytest.approx(true_diff)
    assert low < true_diff < high and low > 0 and verdict(low, high) == "better"
    # an independent pair with equal rates: the interval contains the true difference, 0
    c = rng.random(n) < 0.60
    d = rng.random(n) < 0.60
    diff, low, high = paired_bootstrap(c, d, n_boot=2000, seed=0)
    assert low < 0 < high and verdict(low, high) == "no difference"
    assert verdict(*paired_bootstrap(b, a, seed=0)[1:]) == "worse"
    with pytest.raises(WorkbenchError):
        paired_bootstrap(a, b[:-1])


def test_bad_input_is_one_line(study, tmp_path):
    dataset, truth, manifest, _ = study

    def refused(**kwargs) -> str:
        options = {"dataset": dataset, "manifest": manifest, "out_dir": tmp_path / "never", "profile": "smoke",
                   "progress": False, **kwargs}
        with pytest.raises(WorkbenchError) as caught:
            run_cleaning_ablation(**options)
        message = str(caught.value)
        assert "\n" not in message
        return message

    assert "unknown cleaning-ablation variant 'bogus'" in refused(variants=["raw", "bogus"])
    assert "include the raw variant" in refused(variants=["minus_nonface"])
    assert "pass the FER+ votes" in refused(variants=["raw", "relabel_label_issues"])
    misaligned = votes_from_truth(dataset, truth, usage=np.roll(dataset.splits, 1))
    assert "not aligned" in refused(ferplus=misaligned)
    assert "does not describe" in refused(manifest=manifest.iloc[:-1])
    assert "needs label issues" in refused(manifest=manifest.drop(columns=["flag_label_issue",
                                                                          "decision_label_issue"]))
    assert "distinct seeds" in refused(seeds=[0, 0])
    assert not (tmp_path / "never").exists()


@pytest.mark.slow
def test_study_scores_untouched_test_splits_and_resumes(study, tmp_path):
    dataset, _, manifest, votes = study
    out = tmp_path / "ablation"
    variants = ["raw", "minus_nonface", "relabel_label_issues", "class_weighted"]
    first = run_cleaning_ablation(dataset, manifest, out, variants=variants, seeds=[0, 1], epochs=1, ferplus=votes,
                                  profile="smoke", progress=False)
    assert sorted(first.trained_now) == sorted((v, s) for v in variants for s in (0, 1))
    table = first.table()
    assert len(table) == len(variants) * 2 * 2 * 2 * 2  # cells × splits × label sources × subsets
    for split in ("PublicTest", "PrivateTest"):
        whole = table[(table.split == split) & (table.subset == "all")]
        size = int((dataset.splits == split).sum())
        assert (whole[whole.label_source == "original"]["n"] == size).all()
        has_majority = int((votes.majority_label[dataset.splits == split] >= 0).sum())
        assert (whole[whole.label_source == "ferplus"]["n"] == has_majority).all()
        free = table[(table.split == split) & (table.subset == "leakage_free") & (table.label_source == "original")]
        assert (free["n"] < size).all() and (free["n"] > 0).all()
    rows = table.groupby("variant")["rows_trained"].first()
    assert rows["raw"] == (dataset.splits == "Training").sum() > rows["minus_nonface"]
    cells = {(c["variant"], c["seed"]): c for c in first.cells}
    assert cells["relabel_label_issues", 0]["relabelled"] > 0 and cells["raw", 0]["relabelled"] == 0
    assert cells["class_weighted", 0]["class_weights"] is not None

    results = out / RESULTS_FILE
    written = results.stat().st_mtime_ns
    again = run_cleaning_ablation(dataset, manifest, out, variants=variants, seeds=[0, 1], epochs=1, ferplus=votes,
                                  profile="smoke", progress=False)
    assert again.trained_now == [] and results.stat().st_mtime_ns == written
    assert again.table().equals(table)
    # a study killed after some cells: the lost cell is redone from its finished run directory, nothing else
    saved = json.loads(results.read_text())
    saved["cells"] = [c for c in saved["cells"] if (c["variant"], c["seed"]) != ("minus_nonface", 1)]
    results.write_text(json.dumps(saved))
    resumed = run_cleaning_ablation(dataset, manifest, out, variants=variants, seeds=[0, 1], epochs=1,
                                    ferplus=votes, profile="smoke", progress=False)
    assert resumed.trained_now == [("minus_nonface", 1)]
    assert resumed.table().sort_values(list(table.columns[:6])).reset_index(drop=True).equals(
        table.sort_values(list(table.columns[:6])).reset_index(drop=True))
    with pytest.raises(WorkbenchError, match="different cleaning ablation"):
        run_cleaning_ablation(dataset, manifest, out, variants=variants, seeds=[0, 1], epochs=2, ferplus=votes,
                              profile="smoke", progress=False)

    summary = ablation_summary(first, n_boot=200)
    assert len(summary) == len(variants) * 8
    assert set(summary["verdict_vs_raw"]) <= {"", "better", "worse", "no difference"}
    raw = summary[summary.variant == "raw"]
    assert raw["diff_vs_raw"].isna().all()
    weighted = summary[summary.variant == "class_weighted"]
    assert (weighted["vs_parent"] == "minus_near_dups").all() and weighted["diff_vs_parent"].isna().all()
    assert (weighted["low_vs_raw"] <= weighted["diff_vs_raw"]).all()
    paths = write_report(first, summary, tmp_path / "report")
    document = json.loads((tmp_path / "report" / REPORT_FILE).read_text())
    assert len(document["cells"]) == len(variants) * 2
    assert all("predictions" not in c for c in document["cells"])
    assert paths["figure"].read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_cli_runs_the_study_from_a_manifest(study, tmp_path, capsys):
    from fer_workbench import cli

    manifest = study[2]
    manifest_path = tmp_path / "manifest.csv"
    manifest.to_csv(manifest_path, index=False)
    argv = ["ablate-cleaning", "--manifest", str(manifest_path), "--variants", "raw,minus_near_dups", "--seeds", "3",
            "--epochs", "1", "--profile", "smoke", "--out", str(tmp_path / "out"), "--report",
            str(tmp_path / "report")]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "minus_near_dups" in printed and "PrivateTest, original labels" in printed
    assert (tmp_path / "out" / RESULTS_FILE).is_file() and (tmp_path / "report" / REPORT_FILE).is_file()
    assert cli.main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trained_now"] == []
