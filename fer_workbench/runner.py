"""Run the numbered notebooks with papermill, export each to HTML, and write an index of the run.

Layout of a run directory ``out_dir``::

    out_dir/
        index.html              the results summary, every notebook, the run's metadata (self-contained)
        run.json                the same metadata, one record per notebook, and the results under "results"
        01_explore.html         nbconvert "lab" export of the executed notebook
        02_clean.html
        executed/01_explore.ipynb
        executed/02_clean.ipynb
        results/01_explore.json what the notebook found (:func:`fer_workbench.records.record_results`), in run.json
        results/01_explore.png  its optional thumbnail, shown in index.html

This module finds the notebooks, runs and exports them; the rest of a run lives beside it:
:mod:`fer_workbench.kernels` (which interpreter a kernel runs), :mod:`fer_workbench.records` (output directories
and each notebook's recorded results), :mod:`fer_workbench.run_document` (the records behind run.json) and
:mod:`fer_workbench.report_index` (run.json and index.html).

Decisions worth knowing:

* **Working directory.** Each notebook runs with ``cwd = out_dir``, so anything a notebook writes to a
  relative path lands in the run directory and never in the source checkout. Notebooks therefore must
  not rely on relative paths to find inputs: they get absolute paths through their parameters
  (``output_dir`` is always injected, as an absolute path).
* **Kernel.** ``kernel_name`` ("python3" by default) must resolve to this environment's interpreter:
  :func:`fer_workbench.kernels.check_kernel` refuses the run with a WorkbenchError before anything runs when the
  default "python3" would start a different one, rather than silently using another environment.
* **Atomicity.** Papermill saves the executed notebook as it goes; it writes to a hidden temporary file
  (``executed/.NN_name.XXXX.tmp.ipynb``) which replaces ``executed/NN_name.ipynb`` when the notebook stops
  (finished or failed). HTML, ``index.html`` and ``run.json`` are written with :mod:`fer_workbench.files`.
  ``index.html``/``run.json`` are rewritten after every notebook, so a killed run still leaves an index.
* **Failures.** The first failing notebook stops the run. Its executed copy (with papermill's red error
  banner) and its HTML are kept, its record says where it failed, later notebooks are "not run" (and
  any stale outputs of theirs from an earlier run in the same directory are removed). Ctrl-C stops the
  kernel, records the notebook as failed ("KeyboardInterrupt"), writes the index and re-raises.
* **Results.** Each notebook ends by calling :func:`fer_workbench.records.record_results` with a small JSON-ready
  dict of its key results (and optionally a figure for a thumbnail). Before a notebook runs, its results from an
  earlier run in the same directory are removed, so run.json and index.html only ever show what this run found.
* **Quiet kernels.** The run sets TensorFlow's logging environment (:mod:`fer_workbench.tf_setup`) before it
  starts kernels, and the kernels import TensorFlow through the package's quiet import: no C++ start-up lines
  in the exported pages.
* **Plotly.** The HTML is exported with ``HTMLExporter(template_name="lab")`` keeping all outputs. Figures
  shown with plotly's ``"notebook"`` renderer carry plotly.js inline (once per notebook, in the first
  figure's cell) and render without network access. ipywidgets' live state is not exported.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from fer_workbench import tf_setup
from fer_workbench.config import notebooks_dir
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import atomic_write_text
from fer_workbench.kernels import check_kernel
from fer_workbench.records import (
    NOTEBOOK_PATTERN,
    clear_run_state,
    previous_settings_differ,
    read_results,
    remove_results,
    results_path,
    run_settings,
    thumbnail_path,
)
from fer_workbench.report_index import write_index
from fer_workbench.run_document import (
    FAILED,
    NOT_RUN,
    OK,
    PENDING,
    RUNNING,
    NotebookRecord,
    PipelineResult,
    describe_run,
    plain_values,
)

# papermill's tag on the injected parameters cell and on the error-banner cells it adds on failure
_INJECTED_TAG = "injected-parameters"
_ERROR_MARKER_TAG = "papermill-error-cell-tag"


# --------------------------------------------------------------------------------------------- discovery


def _number(path: Path) -> int:
    return int(NOTEBOOK_PATTERN.match(path.name).group("number"))


def _select(paths: Sequence[Path], only: str | Iterable[str] | None) -> list[Path]:
    """The notebooks among ``paths`` named by ``only`` (numbers, stems, file names or name parts), in order."""
    if only is None:
        return list(paths)
    if isinstance(only, str):
        only = only.split(",")
    selectors = [str(item).strip() for item in only if str(item).strip()]
    if not selectors:
        raise WorkbenchError("empty notebook selection")
    chosen: set[Path] = set()
    unknown = []
    for selector in selectors:
        key = selector.removesuffix(".ipynb")
        matches = []
        for path in paths:
            match = NOTEBOOK_PATTERN.match(path.name)  # None for an explicitly listed unnumbered notebook
            if key.isdigit():
                hit = match is not None and int(key) == int(match.group("number"))
            else:
                hit = key == path.stem or (match is not None and key == match.group("name"))
            if hit:
                matches.append(path)
        if matches:
            chosen.update(matches)
        else:
            unknown.append(selector)
    if unknown:
        available = ", ".join(path.stem for path in paths) or "none"
        raise WorkbenchError(f"unknown notebook selection {', '.join(map(repr, unknown))}; available: {available}")
    return [path for path in paths if path in chosen]


def discover_notebooks(directory: str | os.PathLike | None = None,
                       only: str | Iterable[str] | None = None) -> list[Path]:
    """The ``NN_name.ipynb`` notebooks in ``directory`` (default: the checkout's notebooks/), in run order.

    ``only`` picks some of them: each item is a number ("01", "2"), a stem ("02_clean"), a file name
    ("02_clean.ipynb") or the name part ("clean"); a comma-separated string works too. Order is always
    the pipeline's, whatever the order of ``only``. An item matching nothing raises WorkbenchError.
    """
    directory = Path(directory) if directory is not None else notebooks_dir()
    if not directory.is_dir():
        raise WorkbenchError(f"notebook directory {directory} does not exist")
    paths = sorted((p for p in directory.iterdir() if p.is_file() and NOTEBOOK_PATTERN.match(p.name)),
                   key=lambda p: (_number(p), p.name))
    if not paths:
        raise WorkbenchError(f"no numbered notebooks (NN_name.ipynb) in {directory}")
    return _select(paths, only)


# --------------------------------------------------------------------------------------------- helpers


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _escape_format(path: Path) -> str:
    # papermill runs str.format(**parameters) over input and output paths; keep braces literal
    return str(path).replace("{", "{{").replace("}", "}}")


class _DropUnknownParameterWarnings(logging.Filter):
    """The run passes the same parameters to every notebook; papermill's per-notebook warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Passed unknown parameter")


@contextlib.contextmanager
def _quiet_papermill() -> Iterator[None]:
    logger = logging.getLogger("papermill")
    quiet = _DropUnknownParameterWarnings()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _temporary_sibling(target: Path) -> Path:
    """A hidden ``.NAME.XXXX.tmp.ipynb`` beside ``target`` (papermill warns unless it ends in .ipynb)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    return Path(tmp)


def _client_config():
    """nbclient config: let jupyter_client give the kernel CurveZMQ keys where both sides support it.

    Besides encrypting the local kernel connection, this stops ipykernel >= 7 printing "Kernel is
    running over TCP without encryption" to the terminal for every notebook. Older jupyter_client
    versions (no ``transport_encryption`` trait) or a pyzmq without curve get no config at all.
    """
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    try:
        import zmq

        supported = zmq.has("curve") and "transport_encryption" in KernelManager.class_trait_names()
    except Exception:  # noqa: BLE001 -- any doubt: leave the defaults alone
        supported = False
    return Config({"KernelManager": {"transport_encryption": "auto"}}) if supported else None


def _read_notebook(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def _locate_papermill_failure(executed_nb, exec_cell_index: int) -> int:
    """Map papermill's cell index (executed notebook, injected parameters cell included) to the source's."""
    cells = [c for c in executed_nb.cells if _ERROR_MARKER_TAG not in c.get("metadata", {}).get("tags", [])]
    injected = sum(1 for c in cells[:exec_cell_index] if _INJECTED_TAG in c.get("metadata", {}).get("tags", []))
    return exec_cell_index - injected


def _locate_last_started(executed_nb) -> tuple[int | None, int | None]:
    """For failures papermill doesn't mark (timeouts, dead kernels): the last cell that started running."""
    index = count = None
    source_index = 0
    for cell in executed_nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if _INJECTED_TAG in tags or _ERROR_MARKER_TAG in tags:
            continue
        if cell.get("metadata", {}).get("papermill", {}).get("start_time"):
            index, count = source_index, cell.get("execution_count")
        source_index += 1
    return index, count


def export_html(executed: Path, target: Path, banner: str | None = None) -> Path:
    """Export an executed notebook to a standalone HTML page (nbconvert "lab" template, outputs kept)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = _read_notebook(executed)
    if banner:
        cell = nbformat.v4.new_markdown_cell(banner)
        cell.metadata["tags"] = [_ERROR_MARKER_TAG]
        nb.cells.insert(0, cell)
    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": Path(executed).stem}})
    return atomic_write_text(target, body)


# --------------------------------------------------------------------------------------------- running


def _execute(record: NotebookRecord, out_dir: Path, parameters: dict, kernel: dict, progress: bool,
             timeout_per_cell: float | None) -> None:
    """Run one notebook with papermill into ``record.executed`` (atomically) and fill in the record."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    target = record.executed
    tmp = _temporary_sibling(target)
    engine_kwargs = {"execution_timeout": timeout_per_cell} if timeout_per_cell else {}
    config = _client_config()
    if config is not None:
        engine_kwargs["config"] = config
    papermill_cell = None
    started = time.perf_counter()
    try:
        try:
            with _quiet_papermill():
                papermill.execute_notebook(
                    _escape_format(record.source), _escape_format(tmp),
                    parameters=parameters,
                    kernel_name=kernel["name"],
                    # a notebook without kernelspec metadata still gets its parameters translated
                    language=kernel["language"],
                    cwd=str(out_dir),
                    progress_bar={"desc": f"  {record.stem}", "leave": False} if progress else False,
                    log_output=False,
                    **engine_kwargs,
                )
            record.status = OK
        except PapermillExecutionError as error:  # an exception raised inside a cell
            record.status = FAILED
            record.error = _one_line(f"{error.ename}: {error.evalue}" if error.evalue else error.ename)
            record.failed_execution_count = error.exec_count
            papermill_cell = error.cell_index
        except Exception as error:  # noqa: BLE001 -- kernel died, cell timeout, bad notebook: all stop the run
            record.status = FAILED
            lines = str(error).strip().splitlines()
            record.error = _one_line(f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__)
        except KeyboardInterrupt:
            record.status = FAILED
            record.error = "KeyboardInterrupt: run interrupted"
            raise
        finally:
            record.seconds = time.perf_counter() - started
            nb = None
            if tmp.exists() and tmp.stat().st_size > 0:
                with contextlib.suppress(Exception):
                    nb = _read_notebook(tmp)
            if nb is None:
                target.unlink(missing_ok=True)
                record.executed = None
            else:
                # papermill recorded the temporary name as the output path: record the real one
                nb.metadata.setdefault("papermill", {})["output_path"] = str(target)
                atomic_write_text(target, nbformat.writes(nb))
                if record.status == FAILED:
                    if papermill_cell is not None:
                        record.failed_cell = _locate_papermill_failure(nb, papermill_cell)
                    else:
                        record.failed_cell, record.failed_execution_count = _locate_last_started(nb)
    finally:
        tmp.unlink(missing_ok=True)


def _export(record: NotebookRecord) -> None:
    if record.executed is None:
        record.html = None
        return
    banner = None
    if record.status == FAILED:
        nb = _read_notebook(record.executed)
        marked = any(_ERROR_MARKER_TAG in c.get("metadata", {}).get("tags", []) for c in nb.cells)
        if not marked:  # papermill adds its own red banner only for errors raised inside a cell
            banner = (f'<span style="color:red; font-size:1.5em;">Execution stopped: '
                      f'{html.escape(record.failure_message() or "")}</span>')
    try:
        export_html(record.executed, record.html, banner=banner)
    except Exception as error:  # noqa: BLE001 -- recorded as the notebook's failure
        record.html.unlink(missing_ok=True)
        record.html = None
        if record.status == OK:
            record.status = FAILED
            record.error = _one_line(f"HTML export failed: {type(error).__name__}: {error}")


def run_pipeline(out_dir: str | os.PathLike, parameters: dict | None = None,
                 notebooks: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                 only: str | Iterable[str] | None = None, kernel_name: str = "python3", progress: bool = True,
                 timeout_per_cell: float | None = None, metadata: dict | None = None,
                 fresh: bool = False) -> PipelineResult:
    """Execute the numbered notebooks in order, export each to HTML, and write index.html and run.json.

    ``notebooks`` is a directory (default: the checkout's notebooks/), one notebook, or a list of
    notebook paths (run in the order given); ``only`` selects among them (see :func:`discover_notebooks`).
    Every notebook receives ``parameters`` plus ``output_dir`` (absolute ``out_dir``) and runs with ``out_dir`` as
    its working directory. ``metadata`` adds caller fields to the recorded run metadata (e.g. ``data_checksum``).
    ``timeout_per_cell`` (seconds) fails a cell that runs longer. A failing notebook stops the run but
    the result is still returned (check ``result.ok``); WorkbenchError is raised only for bad arguments
    (unknown selection, missing kernel) before anything runs.

    An output directory holding an earlier run's search, models or cleaning made with other settings (parameters,
    data, profile settings: ``records.run_settings``) is refused before anything runs, unless ``fresh`` clears that
    state first (``records.clear_run_state``: review decisions are kept). With the same settings a run reuses it.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir).absolute()
    if notebooks is None or (isinstance(notebooks, (str, os.PathLike)) and not Path(notebooks).is_file()):
        paths = discover_notebooks(notebooks, only)
    else:
        paths = [Path(notebooks)] if isinstance(notebooks, (str, os.PathLike)) else [Path(p) for p in notebooks]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise WorkbenchError(f"notebook not found: {', '.join(missing)}")
        paths = _select(paths, only)
    kernel = check_kernel(kernel_name)
    tf_setup.configure_environment()  # inherited by the kernels: no TensorFlow start-up lines in the pages

    parameters = plain_values(dict(parameters or {}))
    parameters["output_dir"] = str(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    executed_dir = out_dir / "executed"

    records = [NotebookRecord(name=p.name, source=p.absolute(), html=out_dir / f"{p.stem}.html",
                              executed=executed_dir / p.name) for p in paths]
    meta = describe_run(parameters, metadata, kernel, paths)
    meta["settings"] = run_settings(parameters, meta.get("data_checksum"))
    stale = previous_settings_differ(out_dir, meta["settings"])
    if stale and not fresh:
        raise WorkbenchError(f"{out_dir} holds an earlier run made with other settings (differs in: "
                             f"{', '.join(stale)}); pass --fresh to replace its search, models and cleaning (review "
                             "decisions are kept), or choose another --out")
    if fresh:
        clear_run_state(out_dir, meta.get("data_checksum"))
    earlier = [] if fresh or only is None else _earlier_records(out_dir, {r.name for r in records})
    result = PipelineResult(out_dir=out_dir, index_path=out_dir / "index.html",
                            records=sorted(records + earlier, key=lambda r: r.name), metadata=meta,
                            run_json=out_dir / "run.json")
    for record in earlier:
        _gather_results(result, record)
    write_index(result)

    bar = tqdm(total=len(records), unit="notebook", desc="notebooks", disable=not progress, leave=True)
    stopped = False
    try:
        for record in records:
            if stopped:
                record.status = NOT_RUN
                remove_results(out_dir, record.stem)
                record.html.unlink(missing_ok=True)
                record.executed.unlink(missing_ok=True)
                record.html = record.executed = None
                continue
            bar.set_description(record.stem)
            record.status = RUNNING
            remove_results(out_dir, record.stem)
            write_index(result)
            try:
                _execute(record, out_dir, parameters, kernel, progress, timeout_per_cell)
            finally:
                _export(record)
                _gather_results(result, record)
            if record.status != OK:
                stopped = True
            bar.update(1)
    except KeyboardInterrupt:
        for record in records:
            if record.status in (PENDING, RUNNING):
                record.status = NOT_RUN
                record.html = record.executed = None
        raise
    finally:
        bar.close()
        write_index(result)
    return result


def _earlier_records(out_dir: Path, running: set[str]) -> list[NotebookRecord]:
    """The notebooks of the earlier run in ``out_dir`` that this (``--only``) run leaves alone and that finished
    there, with their pages still present: the index keeps showing them, marked with the earlier run's date. The
    caller has checked that the earlier run had the same settings."""
    try:
        document = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    created = (document.get("metadata") or {}).get("created")
    kept = []
    for entry in document.get("notebooks") or []:
        html = out_dir / entry["html"] if entry.get("html") else None
        if entry.get("name") in running or entry.get("status") != OK or html is None or not html.is_file():
            continue
        executed = out_dir / entry["executed"] if entry.get("executed") else None
        kept.append(NotebookRecord(name=entry["name"], source=Path(entry["source"]), status=OK,
                                   seconds=entry.get("seconds"), html=html,
                                   executed=executed if executed and executed.is_file() else None,
                                   earlier=entry.get("earlier") or created))
    return kept


def _gather_results(result: PipelineResult, record: NotebookRecord) -> None:
    document = read_results(result.out_dir, record.stem)
    if document is None:
        record.results = record.thumbnail = None
        result.results.pop(record.stem, None)
        return
    record.results = results_path(result.out_dir, record.stem)
    thumbnail = thumbnail_path(result.out_dir, record.stem)
    record.thumbnail = thumbnail if thumbnail.is_file() else None
    result.results[record.stem] = document


__all__ = ["discover_notebooks", "export_html", "run_pipeline"]
