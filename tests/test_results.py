"""The notebooks' results documents: full test splits first, subsets beside them; planted truth; index headlines."""

import json

import numpy as np
import pandas as pd
from conftest import make_rows

from fer_workbench.data.dataset import Dataset
from fer_workbench.records import json_ready
from fer_workbench.results import (
    SUBSET_CLEANED,
    SUBSET_LEAKAGE_FREE,
    cleaning_results,
    headline_metrics,
    metrics_results,
    planted_truth_scores,
)


class _Choice:
    label, path, rule = "this run's notebook-03 model", "model.keras", "best PublicTest accuracy"

    def summary(self):
        return f"Analysing {self.label}."

    def to_dict(self):
        return {"model": self.label, "path": self.path, "rule": self.rule, "split": "PublicTest", "candidates": []}


def _dataset(n=60):
    images, labels, splits = make_rows(n)
    images[0] = images[2]  # row 0 (Training) is a copy of row 2 (PrivateTest): row 2 is not leakage-free
    return Dataset(images=images, labels=labels, splits=splits, row_ids=np.arange(n), source="rows.csv",
                   checksum="abc123")


def _perfect(dataset, name):
    part = dataset.split(name)
    return np.eye(7)[part.labels] * 0.9 + 0.1 / 7


def test_headline_reports_the_full_split_then_the_subsets_beside_it(tmp_path):
    dataset = _dataset()
    proba = {name: _perfect(dataset, name) for name in ("PublicTest", "PrivateTest")}
    assert list(headline_metrics(dataset, proba, tmp_path).index) == ["PublicTest", "PrivateTest", SUBSET_LEAKAGE_FREE]

    # this run's cleaning kept every row but PrivateTest row 5
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "summary.json").write_text(json.dumps({"data_checksum": "abc123"}))
    kept = [r for r in range(60) if r != 5]
    (clean / "cleaned.csv").write_text("emotion,pixels,Usage,row_id\n" + "".join(f"0,0,Training,{r}\n" for r in kept))
    table = headline_metrics(dataset, proba, tmp_path)
    assert list(table.index) == ["PublicTest", "PrivateTest", SUBSET_CLEANED, SUBSET_LEAKAGE_FREE]
    assert table.loc["PrivateTest", "n"] == 20  # in full, whatever cleaning removed
    assert table.loc[SUBSET_CLEANED, "n"] == 19 and table.loc[SUBSET_LEAKAGE_FREE, "n"] == 19

    found = json_ready(metrics_results(_Choice(), table, temperature=1.5))
    assert found["PrivateTest"]["n"] == 20 and found["PrivateTest"]["accuracy"] == 1.0
    assert found["PrivateTest_cleaned"]["n"] == 19 and found["model"] == found["model_choice"]["model"]
    assert found["headline"][0].startswith("PrivateTest accuracy 1.000 (n = 20)")
    assert "cleaned subset 1.000 (n = 19)" in found["headline"][0]


def test_planted_truth_scores_count_what_the_flags_caught(tmp_path):
    from fer_workbench.data.synthetic import load_truth_for, write_synthetic_dataset

    csv = write_synthetic_dataset(tmp_path, 400, seed=1)
    truth = load_truth_for(csv)
    planted = np.flatnonzero(truth.nonface)
    manifest = pd.DataFrame({"row_id": np.arange(400), "flag_nonface": False, "flag_blank": False,
                             "flag_occlusion": truth.occluded})
    manifest.loc[planted[:1], "flag_blank"] = True
    manifest.loc[planted[1:], "flag_nonface"] = True
    manifest.loc[~truth.nonface & ~truth.occluded, "flag_nonface"] = [True] + [False] * (
        int((~truth.nonface & ~truth.occluded).sum()) - 1)  # one false alarm
    scores = planted_truth_scores(manifest, csv)
    assert scores["nonface"] == {"planted": len(planted), "flagged": len(planted) + 1, "caught": len(planted),
                                 "recall": 1.0, "precision": len(planted) / (len(planted) + 1)}
    assert scores["occlusion"]["recall"] == 1.0 and "label_issue" not in scores
    assert planted_truth_scores(manifest, tmp_path / "real.csv") is None  # no truth file: real data

    summary = {"rows": 400, "kept": 390, "excluded": 10, "flagged": {"nonface": len(planted) + 1}}
    found = cleaning_results(summary, manifest, csv)
    assert found["planted"]["nonface"]["recall"] == 1.0
    assert found["headline"][-1] == f"planted non-faces caught: {len(planted)} of {len(planted)} (recall 1.00)"
