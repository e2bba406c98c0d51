"""The notebook runner and what a run writes: papermill execution, HTML export, recorded results, index.html
and run.json.

The tests marked ``slow`` start real kernels (about 2 s each). The real notebooks are tested in test_notebooks.py.
"""

import json
import math
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fer_workbench.cli import build_parser
from fer_workbench.config import project_root
from fer_workbench.errors import WorkbenchError
from fer_workbench.kernels import check_kernel, kernel_python
from fer_workbench.records import (
    default_reports_dir,
    previous_settings_differ,
    read_results,
    record_results,
    resolve_output_dir,
    results_path,
    run_settings,
    source_checkout,
    thumbnail_path,
)
from fer_workbench.report_index import render_index, summary_lines
from fer_workbench.run_document import FAILED, NOT_RUN, OK, NotebookRecord, PipelineResult
from fer_workbench.runner import discover_notebooks, run_pipeline

PLOTLY_JS_MARK = "plotly.js v"  # the banner at the top of the embedded plotly.js bundle


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = list(cells)
    return nb


def _parameters(source):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    return cell


code = nbformat.v4.new_code_cell


def _write(directory: Path, name: str, nb) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, directory / name)
    return directory / name


@pytest.fixture
def ok_notebooks(tmp_path):
    directory = tmp_path / "notebooks"
    _write(directory, "01_explore.ipynb", _notebook(
        _parameters("greeting = 'default'\noutput_dir = None"),
        code("print('greeting is', greeting)"),
        code("import plotly.io as pio\npio.renderers.default = 'notebook'\n"
             "import plotly.graph_objects as go\n"
             "go.Figure(go.Bar(x=['a', 'b'], y=[3, 4], name='bars-xyz')).show()"),
    ))
    _write(directory, "02_clean.ipynb", _notebook(
        _parameters("greeting = 'default'\noutput_dir = None"),
        code("import os, pathlib\n"
             "pathlib.Path(output_dir, 'clean.txt').write_text(greeting)\n"
             "print('cwd', os.getcwd())"),
    ))
    (directory / "notes.ipynb").write_text("{}")  # not numbered: ignored
    (directory / "README.md").write_text("not a notebook")
    return directory


@pytest.fixture
def failing_notebooks(tmp_path):
    directory = tmp_path / "notebooks"
    _write(directory, "01_load.ipynb", _notebook(_parameters("seed = 0"), code("print('seed', seed)")))
    _write(directory, "02_clean.ipynb", _notebook(
        _parameters("seed = 0"),
        code("x = 1"),
        nbformat.v4.new_markdown_cell("a note"),
        code("raise ValueError(f'bad row {seed}')"),
        code("print('never')"),
    ))
    _write(directory, "03_model.ipynb", _notebook(_parameters("seed = 0"), code("print('model')")))
    return directory


def _leftovers(directory: Path) -> list[str]:
    """Temporary or hidden files anywhere under ``directory``."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                  if p.name.startswith(".") or ".tmp" in p.name)


# ------------------------------------------------------------------------------------------ no kernels


def test_discover_orders_numbered_notebooks_only(tmp_path):
    for name in ("10_report.ipynb", "02_clean.ipynb", "01_explore.ipynb", "notes.ipynb", "1_x.txt"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in discover_notebooks(tmp_path)] == ["01_explore.ipynb", "02_clean.ipynb",
                                                              "10_report.ipynb"]


@pytest.mark.parametrize("only, expected", [
    (["01", "10"], ["01_explore", "10_report"]),
    (["2"], ["02_clean"]),
    (["report", "01_explore.ipynb"], ["01_explore", "10_report"]),  # pipeline order, not selection order
    ("02_clean, 01", ["01_explore", "02_clean"]),
])
def test_only_selects_by_number_or_name(tmp_path, only, expected):
    for name in ("01_explore.ipynb", "02_clean.ipynb", "10_report.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.stem for p in discover_notebooks(tmp_path, only=only)] == expected


def test_unknown_selection_names_it(tmp_path, ok_notebooks):
    with pytest.raises(WorkbenchError, match=r"'07'.*'nope'.*available: 01_explore, 02_clean"):
        discover_notebooks(ok_notebooks, only=["01", "07", "nope"])
    out = tmp_path / "run"
    with pytest.raises(WorkbenchError, match="'99'"):
        run_pipeline(out, {}, notebooks=ok_notebooks, only=["99"], progress=False)
    assert not out.exists()  # nothing ran, nothing written


def test_missing_or_empty_directory(tmp_path):
    with pytest.raises(WorkbenchError, match="does not exist"):
        discover_notebooks(tmp_path / "absent")
    with pytest.raises(WorkbenchError, match="no numbered notebooks"):
        discover_notebooks(tmp_path)


def test_default_kernel_is_this_environment():
    # jupyter_client swaps the kernelspec's bare "python" for sys.executable; ipykernel's spec lives in the venv
    assert Path(kernel_python("python3")).parent == Path(sys.executable).absolute().parent
    assert check_kernel("python3")["language"] == "python"
    with pytest.raises(WorkbenchError, match="no Jupyter kernel named 'no-such-kernel'"):
        check_kernel("no-such-kernel")


def test_failure_message_and_index_escape_html(tmp_path):
    record = NotebookRecord(name="02_clean.ipynb", source=tmp_path / "02_clean.ipynb", status=FAILED,
                            seconds=1.0, html=tmp_path / "02_clean.html", executed=None,
                            error="ValueError: <b>bad</b>", failed_cell=7, failed_execution_count=5)
    result = PipelineResult(out_dir=tmp_path, index_path=tmp_path / "index.html", records=[record],
                            metadata={"created": "now", "parameters": {"seed": 1}})
    assert not result.ok
    assert result.failure_message() == "notebook 02_clean.ipynb failed at cell 7 (In [5]): ValueError: <b>bad</b>"
    page = render_index({"metadata": result.metadata, "ok": False, "failure": result.failure_message(),
                         "notebooks": [record.to_dict(relative_to=tmp_path)]})
    assert "&lt;b&gt;bad&lt;/b&gt;" in page and "<b>bad</b>" not in page
    assert 'href="02_clean.html"' in page


# ------------------------------------------------------------------------------------------ with kernels


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_run_success(tmp_path, ok_notebooks):
    out = tmp_path / "run {1}"  # braces: papermill formats paths with the parameters
    data = tmp_path / "data.csv"
    data.write_text("emotion,pixels,Usage\n")
    result = run_pipeline(out, {"greeting": "hello-param-42", "seed": 3, "profile": "smoke",
                                "data_path": data}, notebooks=ok_notebooks, progress=False)

    assert result.ok and result.failure_message() is None
    assert [(r.name, r.status) for r in result.records] == [("01_explore.ipynb", OK), ("02_clean.ipynb", OK)]
    assert all(r.seconds > 0 for r in result.records)

    explore = (out / "01_explore.html").read_text()
    assert "greeting is hello-param-42" in explore  # injected parameter reached the notebook
    assert "bars-xyz" in explore and "Plotly.newPlot" in explore  # the figure
    assert explore.count(PLOTLY_JS_MARK) == 1  # plotly.js embedded once: renders offline
    assert explore.index(PLOTLY_JS_MARK) < explore.index("Plotly.newPlot")

    # cwd is the run directory and output_dir is injected (absolute)
    assert (out / "clean.txt").read_text() == "hello-param-42"
    assert f"cwd {out}" in (out / "02_clean.html").read_text()

    executed = nbformat.read(out / "executed" / "01_explore.ipynb", as_version=4)
    assert executed.metadata.papermill["output_path"] == str(out / "executed" / "01_explore.ipynb")
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)

    index = result.index_path.read_text()
    for name in ("01_explore", "02_clean"):
        assert f'href="{name}.html"' in index and f'href="executed/{name}.ipynb"' in index
    assert "hello-param-42" in index and "smoke" in index and str(data) in index

    run = json.loads((out / "run.json").read_text())
    meta = run["metadata"]
    assert {"git_commit", "packages", "created", "seed", "profile", "parameters", "kernel"} <= set(meta)
    assert meta["packages"]["papermill"] and meta["seed"] == 3
    assert meta["parameters"]["output_dir"] == str(out) and meta["data_path"] == str(data)
    assert len(meta["data_checksum"]) == 64
    assert run["ok"] is True and [n["status"] for n in run["notebooks"]] == [OK, OK]
    assert run["notebooks"][0]["html"] == "01_explore.html"

    assert _leftovers(out) == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_run_failure_stops_and_reports(tmp_path, failing_notebooks):
    out = tmp_path / "run"
    # a stale report of the third notebook from an earlier run must not survive
    out.mkdir()
    (out / "03_model.html").write_text("stale")

    result = run_pipeline(out, {"seed": 13}, notebooks=failing_notebooks, progress=False)

    assert not result.ok
    assert [r.status for r in result.records] == [OK, FAILED, NOT_RUN]
    failed = result.records[1]
    assert failed.failed_cell == 3  # index into the source notebook (the injected cell is not counted)
    assert failed.failed_execution_count == 4  # In [4]: parameters, injected, x = 1, raise
    assert failed.error == "ValueError: bad row 13"
    assert result.failure_message() == "notebook 02_clean.ipynb failed at cell 3 (In [4]): ValueError: bad row 13"

    page = (out / "02_clean.html").read_text()
    assert "bad row 13" in page and "ValueError" in page
    assert "papermill-error-cell" in page  # papermill's red banner and anchor
    assert (out / "executed" / "02_clean.ipynb").exists()
    assert not (out / "03_model.html").exists() and not (out / "executed" / "03_model.ipynb").exists()
    assert result.records[2].html is None and result.records[2].seconds is None

    index = result.index_path.read_text()
    assert "not run" in index and "cell 3 (In [4]): ValueError: bad row 13" in index
    assert 'href="02_clean.html"' in index and 'href="03_model.html"' not in index
    run = json.loads((out / "run.json").read_text())
    assert run["failure"] == result.failure_message()
    assert [n["status"] for n in run["notebooks"]] == [OK, FAILED, NOT_RUN]

    assert _leftovers(out) == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_run_only_selection(tmp_path, failing_notebooks):
    out = tmp_path / "run"
    result = run_pipeline(out, {}, notebooks=failing_notebooks, only=["03"], progress=True)  # tqdm path too
    assert result.ok and [r.name for r in result.records] == ["03_model.ipynb"]
    assert sorted(p.name for p in out.iterdir()) == ["03_model.html", "executed", "index.html", "run.json"]


# ------------------------------------------------------------------------------------------ results documents


def test_record_results_writes_plain_json_and_a_small_thumbnail(tmp_path, capsys):
    table = pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="k"))
    results = {"PrivateTest": {"n": np.int64(200), "accuracy": np.float32(0.5)}, "nan": math.nan,
               "mask": np.array([True, False]), "table": table, "path": tmp_path, "headline": ["one line"]}
    image = np.zeros((900, 1200, 3), np.uint8)
    path = record_results(tmp_path, "05_metrics", results, figure=image)
    assert path == results_path(tmp_path, "05_metrics") == tmp_path / "results" / "05_metrics.json"
    assert f"results recorded in {path}" in capsys.readouterr().out
    document = json.loads(path.read_text())  # strict JSON: NaN became null
    assert document == read_results(tmp_path, "05_metrics.ipynb")
    assert document["PrivateTest"] == {"n": 200, "accuracy": 0.5} and document["nan"] is None
    assert document["mask"] == [True, False] and document["path"] == str(tmp_path)
    assert document["table"] == [{"k": "x", "a": 1}, {"k": "y", "a": 2}]
    with Image.open(thumbnail_path(tmp_path, "05_metrics")) as thumbnail:
        assert thumbnail.size[0] <= 480 and thumbnail.size[1] <= 360
    record_results(tmp_path, "05_metrics", {"again": 1})  # no figure this time: the old thumbnail goes
    assert not thumbnail_path(tmp_path, "05_metrics").exists()
    assert _leftovers(tmp_path) == []


def test_record_results_rejects_bad_names_and_figures(tmp_path):
    with pytest.raises(WorkbenchError, match="NN_name"):
        record_results(tmp_path, "../metrics", {})
    with pytest.raises(WorkbenchError, match="must be a dict"):
        record_results(tmp_path, "05_metrics", [1, 2])
    with pytest.raises(WorkbenchError, match="thumbnail needs"):
        record_results(tmp_path, "05_metrics", {}, figure="not a figure")
    assert read_results(tmp_path, "01_explore") is None


def test_index_summarises_results_first_and_escapes_them(tmp_path):
    records = [NotebookRecord(name="01_explore.ipynb", source=tmp_path / "01_explore.ipynb", status=OK, seconds=2.0,
                              html=tmp_path / "01_explore.html", executed=None),
               NotebookRecord(name="02_clean.ipynb", source=tmp_path / "02_clean.ipynb", status=OK, seconds=1.0,
                              html=tmp_path / "02_clean.html", executed=None)]
    document = {"metadata": {"created": "now", "parameters": {}}, "ok": True, "failure": None,
                "notebooks": [r.to_dict(relative_to=tmp_path) for r in records],
                "results": {"01_explore": {"headline": ["2,000 images <b>bold</b>"]},
                            "02_clean": {"rows": 10, "kept": 9, "share": 0.12345, "nested": {"x": 1}}}}
    page = render_index(document, thumbnails={"01_explore": "data:image/png;base64,AAAA"})
    assert page.index("Results") < page.index("2,000 images") < page.index("<h2>Notebooks</h2>")
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page
    assert 'src="data:image/png;base64,AAAA"' in page and page.count("<img") == 1
    assert summary_lines(document["results"]["02_clean"]) == ["rows: 10", "kept: 9", "share: 0.123"]
    assert "share: 0.123" in page


def test_default_output_dir_is_the_checkout_reports_folder(tmp_path, capsys):
    assert source_checkout() == project_root()
    assert default_reports_dir() == project_root() / "reports"
    chosen = resolve_output_dir(tmp_path / "run")
    assert chosen == tmp_path / "run" and chosen.is_dir()
    assert f"outputs go to {chosen}" in capsys.readouterr().out
    assert build_parser().parse_args(["run"]).out == str(default_reports_dir())  # `run` without --out: the same


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_run_gathers_results_and_drops_stale_ones(tmp_path):
    directory = tmp_path / "notebooks"
    _write(directory, "01_explore.ipynb", _notebook(
        _parameters("output_dir = None"),
        code("import numpy as np\nfrom fer_workbench.records import record_results\n"
             "record_results(output_dir, '01_explore', {'rows': np.int64(7), 'headline': ['seven rows found']},\n"
             "               figure=np.full((40, 60), 128, np.uint8))"),
    ))
    _write(directory, "02_clean.ipynb", _notebook(_parameters("output_dir = None"), code("print('records nothing')")))
    out = tmp_path / "run"
    (out / "results").mkdir(parents=True)
    (out / "results" / "02_clean.json").write_text('{"rows": "stale"}')  # from an earlier run: must go

    result = run_pipeline(out, {}, notebooks=directory, progress=False)

    assert result.ok and result.results == {"01_explore": {"rows": 7, "headline": ["seven rows found"]}}
    run = json.loads((out / "run.json").read_text())
    assert run["results"] == result.results
    assert run["notebooks"][0]["results"] == "results/01_explore.json"
    assert run["notebooks"][0]["thumbnail"] == "results/01_explore.png"
    assert run["notebooks"][1]["results"] is None and not (out / "results" / "02_clean.json").exists()
    index = result.index_path.read_text()
    assert "seven rows found" in index and "data:image/png;base64," in index and "stale" not in index
    assert _leftovers(out) == []


def test_an_earlier_run_with_other_settings_is_refused_unless_fresh(tmp_path, ok_notebooks):
    """A finished search or model made with other settings is never silently reused; --fresh replaces it and keeps
    the review decisions (under their data's name when they were made on other data)."""
    out = tmp_path / "out"
    first = run_pipeline(out, {"greeting": "hi", "profile": "smoke"}, notebooks=ok_notebooks, progress=False)
    assert first.ok
    settings = json.loads((out / "run.json").read_text())["metadata"]["settings"]
    assert settings["parameters"] == {"greeting": "hi", "profile": "smoke"}
    assert settings["profile_settings"]["tune"]["max_trials"] == 2
    (out / "models" / "best").mkdir(parents=True)  # what notebook 03 leaves
    (out / "models" / "best" / "model.keras").write_text("a trained model")
    (out / "clean").mkdir()
    (out / "clean" / "decisions.json").write_text(json.dumps({"data_checksum": "abc", "decisions": []}))
    (out / "keep-me.txt").write_text("not run state")
    again = run_pipeline(out, {"greeting": "hi", "profile": "smoke"}, notebooks=ok_notebooks, progress=False)
    assert again.ok and (out / "models" / "best" / "model.keras").exists()  # same settings: reused
    with pytest.raises(WorkbenchError, match=r"other settings \(differs in: greeting\); pass --fresh"):
        run_pipeline(out, {"greeting": "hello", "profile": "smoke"}, notebooks=ok_notebooks, progress=False)
    assert (out / "models" / "best" / "model.keras").exists()  # refused before anything was touched
    fresh = run_pipeline(out, {"greeting": "hello", "profile": "smoke"}, notebooks=ok_notebooks, progress=False,
                         fresh=True)
    assert fresh.ok and not (out / "models").exists() and (out / "keep-me.txt").exists()
    assert sorted(p.name for p in (out / "clean").iterdir()) == ["decisions.abc.json"]
    assert json.loads((out / "clean" / "decisions.abc.json").read_text())["data_checksum"] == "abc"


def test_run_state_without_a_record_of_its_settings_counts_as_other_settings(tmp_path):
    (tmp_path / "tuning").mkdir()
    settings = run_settings({"profile": "smoke", "output_dir": "/x"}, "abc")
    assert settings["parameters"] == {"profile": "smoke"}
    assert previous_settings_differ(tmp_path, settings) == ["settings (no record of them)"]
    assert previous_settings_differ(tmp_path / "empty", settings) == []


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_partial_rerun_keeps_the_earlier_notebooks_in_the_index(tmp_path):
    directory = tmp_path / "notebooks"
    for name in ("01_explore", "02_clean"):
        _write(directory, f"{name}.ipynb", _notebook(
            _parameters("output_dir = None\nrun = 'first'"),
            code("from fer_workbench.records import record_results\n"
                 f"record_results(output_dir, '{name}', {{'headline': [f'{name} from the {{run}} run']}})")))
    out = tmp_path / "run"
    first = run_pipeline(out, {"run": "first"}, notebooks=directory, progress=False)
    assert first.ok

    again = run_pipeline(out, {"run": "first"}, notebooks=directory, only="02", progress=False)

    assert again.ok and [r.name for r in again.records] == ["01_explore.ipynb", "02_clean.ipynb"]
    kept, rerun = again.records
    assert kept.earlier == first.metadata["created"] and rerun.earlier is None
    assert kept.html == out / "01_explore.html" and kept.html.is_file()
    run = json.loads((out / "run.json").read_text())
    assert run["results"]["01_explore"]["headline"] == ["01_explore from the first run"]
    assert [nb["earlier"] for nb in run["notebooks"]] == [first.metadata["created"], None]
    index = again.index_path.read_text()
    assert "01_explore from the first run" in index and f"earlier run, {first.metadata['created']}" in index
    # a fresh partial run starts over: nothing is carried
    fresh = run_pipeline(out, {"run": "first"}, notebooks=directory, only="02", progress=False, fresh=True)
    assert [r.name for r in fresh.records] == ["02_clean.ipynb"]
