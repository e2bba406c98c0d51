"""What the notebooks find at smoke scale on the embedded synthetic default, read from their results documents.

One `fer-workbench run --profile smoke --ferplus VOTES` (a subprocess, as a user runs it; the votes are FER+-style
votes written from the synthetic default's planted truth) is shared by every test here; each
notebook then has its own test that reads ``results/NN_name.json`` and checks what the notebook found, not only
that it ran. The synthetic default knows its truth (planted non-faces, the region each expression is drawn in),
so the thresholds are about the data: a model that learned scores well above chance (1/7) on it.
"""

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fer_workbench.config import project_root
from fer_workbench.video import DEMO_CUT_FRAME, DEMO_FPS, DEMO_FRAMES, DEMO_TRACKS

NOTEBOOKS = sorted(p.stem for p in (project_root() / "notebooks").glob("[0-9]*.ipynb"))
SMOKE_ROWS, SMOKE_TEST_ROWS = 2000, 200  # the smoke default: 2,000 images, 10 % each in PublicTest / PrivateTest
RUN_MODEL = "this run's notebook-03 model"

# Issue 12: at smoke scale on the synthetic default the run's best model reaches >= 0.80 PrivateTest accuracy
# (0.845 / 0.87 measured with seeds 0 / 1; 0.25 was the constant "happy" model), every Keras model of the comparison
# >= 0.50, Grad-CAM's planted-region check passes for most classes (7 of 7 measured), and cleaning catches the
# planted non-faces.
BEST_MODEL_MIN_ACCURACY = 0.80
COMPARED_KERAS_MIN_ACCURACY = 0.50
PLANTED_NONFACE_MIN_RECALL = 0.9

# TensorFlow / absl / CUDA start-up lines that must never reach an exported page
STARTUP_NOISE = re.compile(r"cuInit|absl::InitializeLog|oneDNN custom operations|Could not find cuda drivers|"
                           r"cpu_feature_guard|This TensorFlow binary is optimized")


@dataclass
class SmokeRun:
    out: Path
    process: subprocess.CompletedProcess
    run: dict

    def results(self, notebook: str) -> dict:
        record = next(nb for nb in self.run["notebooks"] if Path(nb["name"]).stem == notebook)
        assert record["status"] == "ok", f"{notebook}: {record['status']} {record['error'] or ''}"
        assert record["results"] == f"results/{notebook}.json", f"{notebook} recorded no results"
        document = json.loads((self.out / record["results"]).read_text())
        assert self.run["results"][notebook] == document  # run.json gathers exactly what the notebook wrote
        assert document["headline"], f"{notebook}: no headline for the index"
        return document


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> SmokeRun:
    from fer_workbench.data.synthetic import ensure_default_dataset, write_synthetic_ferplus_votes

    out = tmp_path_factory.mktemp("smoke") / "reports"
    votes = write_synthetic_ferplus_votes(ensure_default_dataset("smoke", 0), out.parent / "votes.csv")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the package must quieten TensorFlow by itself
    process = subprocess.run([sys.executable, "-m", "fer_workbench.cli", "run", "--profile", "smoke", "--out",
                              str(out), "--ferplus", str(votes), "--quiet"], capture_output=True, text=True,
                             timeout=2400, env=env, check=False)
    run_json = out / "run.json"
    assert run_json.exists(), process.stderr[-3000:]
    return SmokeRun(out, process, json.loads(run_json.read_text()))


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_the_run_finishes_quietly_with_a_results_summary(smoke_run):
    """`fer-workbench run --profile smoke`: every notebook runs and exports, no start-up noise anywhere, and the
    index opens with the results of every notebook."""
    out, process, run = smoke_run.out, smoke_run.process, smoke_run.run
    assert process.returncode == 0, process.stderr[-3000:]
    assert f"report: {out / 'index.html'}" in process.stdout
    assert not STARTUP_NOISE.search(process.stderr), process.stderr[-3000:]
    assert [Path(nb["name"]).stem for nb in run["notebooks"]] == NOTEBOOKS
    assert all(nb["status"] == "ok" for nb in run["notebooks"])
    for notebook in NOTEBOOKS:
        page = (out / f"{notebook}.html").read_text()
        assert "Traceback" not in page, notebook
        assert not STARTUP_NOISE.search(page), f"{notebook}.html shows TensorFlow start-up lines"
    explore = (out / "01_explore.html").read_text()
    assert "Images per split and class" in explore and "plotly.js v" in explore  # figures render offline
    summary = json.loads((out / "explore_summary.json").read_text())
    assert summary["summary"]["rows"] == SMOKE_ROWS and summary["metadata"]["profile"] == "smoke"

    index = (out / "index.html").read_text()
    assert run["metadata"]["data_checksum"] in index
    assert set(run["results"]) == set(NOTEBOOKS)
    results_part = index[index.index("<h2>Results</h2>"):index.index("<h2>Notebooks</h2>")]
    for notebook in NOTEBOOKS:
        assert f'href="{notebook}.html"' in results_part
        assert run["results"][notebook]["headline"][0].split(":")[0] in results_part
    assert results_part.count('src="data:image/png;base64,') == sum(
        1 for nb in run["notebooks"] if nb["thumbnail"])
    assert (out / "results" / "05_metrics.png").exists()


def check_01_explore(found: dict) -> None:
    assert found["rows"] == SMOKE_ROWS and sum(found["splits"].values()) == SMOKE_ROWS
    assert found["splits"]["PrivateTest"] == found["splits"]["PublicTest"] == SMOKE_TEST_ROWS
    assert len(found["classes"]) == 7 and sum(found["classes"].values()) == SMOKE_ROWS
    assert found["blank_images"] >= 1  # the synthetic default plants blank frames


def check_02_clean(found: dict) -> None:
    assert found["kept"] + found["excluded"] == found["rows"] == SMOKE_ROWS
    assert set(found["flagged"]) >= {"blank", "nonface", "duplicate", "occlusion", "label_issue"}
    nonface = found["planted"]["nonface"]
    assert nonface["planted"] > 0
    assert nonface["recall"] >= PLANTED_NONFACE_MIN_RECALL, nonface


def check_03_tune(found: dict) -> None:
    assert found["trials"] >= 1 and found["best_trial"]["score"] is not None
    private = found["run_model"]["PrivateTest"]
    assert private["n"] == SMOKE_TEST_ROWS
    assert private["accuracy"] >= BEST_MODEL_MIN_ACCURACY, private
    keras_models = {row["model"]: row["accuracy"] for row in found["comparison"] if row["kind"] == "keras"}
    assert keras_models
    assert min(keras_models.values()) >= COMPARED_KERAS_MIN_ACCURACY, keras_models
    sources = {row["labels"]: row for row in found["label_sources"]}  # the same network on each label source
    assert list(sources) == ["fer2013", "ferplus-majority", "ferplus-soft"]
    assert [row["classes"] for row in sources.values()] == [7, 8, 8]
    # the crowd votes the planted clean label, so FER+ labels are no harder to learn than the flipped originals
    assert sources["ferplus-majority"]["PrivateTest accuracy"] >= COMPARED_KERAS_MIN_ACCURACY, sources


def _check_model_choice(found: dict) -> None:
    choice = found["model_choice"]
    assert choice["model"] == found["model"] and choice["rule"] == "best PublicTest accuracy"
    scored = [c for c in choice["candidates"] if c["accuracy"] is not None]
    assert {c["label"] for c in scored} >= {RUN_MODEL}
    assert max(scored, key=lambda c: c["accuracy"])["label"] == found["model"]
    assert found["model"] == RUN_MODEL  # on the synthetic default the run's own model beats the shipped one


def check_04_saliency(found: dict) -> None:
    _check_model_choice(found)
    assert found["PrivateTest"]["n"] == SMOKE_TEST_ROWS
    assert found["PrivateTest"]["accuracy"] >= BEST_MODEL_MIN_ACCURACY
    methods = {v["method"] for v in found["verdicts"]}
    assert "gradcam" in methods
    # three verdicts per method: randomisation, deletion, insertion
    assert all(sum(v["method"] == m for v in found["verdicts"]) == 3 for m in methods)
    gradcam_randomised = next(v for v in found["verdicts"]
                              if v["method"] == "gradcam" and "randomisation" in v["check"])
    assert gradcam_randomised["passed"], gradcam_randomised  # the maps depend on what the model learned
    regions = found["region_check"]  # the region each expression was drawn in is known on the synthetic default
    assert regions["classes"] == 7 and regions["classes_passing"] > regions["classes"] / 2, regions


def check_05_metrics(found: dict) -> None:
    _check_model_choice(found)
    private = found["PrivateTest"]
    assert private["n"] == SMOKE_TEST_ROWS  # the full split, whatever cleaning removed
    assert private["accuracy"] >= BEST_MODEL_MIN_ACCURACY, private
    assert found["PublicTest"]["n"] == SMOKE_TEST_ROWS
    for subset in ("PrivateTest_cleaned", "PrivateTest_leakage_free"):
        assert 0 < found[subset]["n"] <= SMOKE_TEST_ROWS
    assert found["temperature"] > 0
    compared = {(row["model"], row["split"]) for row in found["models_compared"]}
    assert (RUN_MODEL, "PrivateTest") in compared
    cross = {(row["model"], row["labels"], row["split"]): row for row in found["label_source_cross"]}
    run_on_ferplus = cross[(RUN_MODEL, "ferplus-majority", "PrivateTest")]  # a 7-class model on FER+ labels
    assert run_on_ferplus["classes"] == 7 and 0 < run_on_ferplus["n"] <= SMOKE_TEST_ROWS
    assert run_on_ferplus["accuracy"] >= BEST_MODEL_MIN_ACCURACY - 0.1, run_on_ferplus
    assert cross[(RUN_MODEL, "fer2013", "PrivateTest")]["n"] == SMOKE_TEST_ROWS


def check_06_predict(found: dict) -> None:
    from fer_workbench.models.registry import REAL_FACES_RULE, SHIPPED_LABEL

    # photos are real faces: on the synthetic default the run's model (best on drawn faces) gives way to the shipped
    choice = found["model_choice"]
    assert choice["rule"] == REAL_FACES_RULE and found["model"] == choice["model"] == SHIPPED_LABEL, choice
    scored = {c["label"]: c["accuracy"] for c in choice["candidates"] if c["accuracy"] is not None}
    assert max(scored, key=scored.get) == RUN_MODEL, scored
    assert found["photos"] >= 1 and found["faces_found"] >= 1, found["problems"]
    assert sum(found["labels"].values()) == found["faces_found"]
    face = found["faces"][0]["faces"][0] if found["faces"][0]["faces"] else None
    assert face is None or abs(sum(face["scores"].values()) - 1) < 1e-3
    clip = found["video"]  # the demo clip: one person, a cut, another person, a third entering (fer_workbench.video)
    assert clip["file"] == "demo_clip.mp4" and clip["error"] is None, clip
    assert clip["frames_analysed"] == clip["frames_total"] == DEMO_FRAMES and clip["cuts"] == [DEMO_CUT_FRAME]
    assert [t["track"] for t in clip["tracks"]] == list(range(1, DEMO_TRACKS + 1)), clip["tracks"]
    assert clip["tracks"][0]["last_time"] < DEMO_CUT_FRAME / DEMO_FPS <= clip["tracks"][1]["first_time"]


CHECKS = {name.removeprefix("check_"): check for name, check in globals().items() if name.startswith("check_")}


def test_every_notebook_has_a_check():
    assert sorted(CHECKS) == NOTEBOOKS


@pytest.mark.slow
@pytest.mark.timeout(2400)  # the first test to ask for the shared smoke run waits for it
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_findings(smoke_run, notebook):
    CHECKS[notebook](smoke_run.results(notebook))

