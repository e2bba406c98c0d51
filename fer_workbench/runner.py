"""Run the numbered notebooks with papermill, export each to HTML, and write an index of the run.

Layout of a run directory ``out_dir``::

    out_dir/
        index.html              the results summary, every notebook, the run's metadata (self-contained)
        run.json                the same metadata, one record per notebook, and the results under "results"
        01_explore.html         nbconvert "lab" export of the executed notebook
        02_clean.html
        executed/01_explore.ipynb
        executed/02_clean.ipynb
        results/01_explore.json what the notebook found (:func:`record_results`), gathered into run.json
        results/01_explore.png  its optional thumbnail, shown in index.html

Decisions worth knowing:

* **Working directory.** Each notebook runs with ``cwd = out_dir``, so anything a notebook writes to a
  relative path lands in the run directory and never in the source checkout. Notebooks therefore must
  not rely on relative paths to find inputs: they get absolute paths through their parameters
  (``output_dir`` is always injected, as an absolute path).
* **Kernel.** ``kernel_name`` ("python3" by default) is resolved with jupyter_client's kernelspec
  machinery. Inside a virtual environment jupyter_core prefers the environment's own data directory
  (``sys.prefix/share/jupyter/kernels``, where ipykernel installs its spec) over the user's, and that
  spec's ``argv[0]`` is the bare word ``python``, which jupyter_client replaces with ``sys.executable``;
  with no spec at all, jupyter_client falls back to ipykernel's built-in one (also ``sys.executable``).
  So "python3" runs the notebooks with the interpreter that runs the pipeline. :func:`check_kernel`
  verifies this before the run: when the default "python3" would start a different interpreter the run
  refuses with a WorkbenchError rather than silently using another environment.
* **Atomicity.** Papermill saves the executed notebook as it goes; it writes to a hidden temporary file
  (``executed/.NN_name.XXXX.tmp.ipynb``) which replaces ``executed/NN_name.ipynb`` when the notebook stops (finished or
  failed). HTML, ``index.html`` and ``run.json`` are written with :mod:`fer_workbench.files`.
  ``index.html``/``run.json`` are rewritten after every notebook, so a killed run still leaves an index.
* **Failures.** The first failing notebook stops the run. Its executed copy (with papermill's red error
  banner) and its HTML are kept, its record says where it failed, later notebooks are "not run" (and
  any stale outputs of theirs from an earlier run in the same directory are removed). Ctrl-C stops the
  kernel, records the notebook as failed ("KeyboardInterrupt"), writes the index and re-raises.
* **Results.** Each notebook ends by calling :func:`record_results` with a small JSON-ready dict of its key
  results (and optionally a figure for a thumbnail). Before a notebook runs, its results from an earlier run in
  the same directory are removed, so run.json and index.html only ever show what this run found.
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
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from fer_workbench import tf_setup
from fer_workbench.config import notebooks_dir, project_root
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import atomic_write_bytes, atomic_write_text, sha256_file
from fer_workbench.provenance import run_metadata

NOTEBOOK_PATTERN = re.compile(r"^(?P<number>\d{2,})_(?P<name>[^.].*)\.ipynb$")
RESULTS_DIR = "results"  # inside a run directory: NN_name.json (+ NN_name.png) per notebook
THUMBNAIL_SIZE = (480, 360)  # largest thumbnail, pixels (width, height)

OK = "ok"
FAILED = "failed"
NOT_RUN = "not run"
PENDING = "pending"
RUNNING = "running"

# papermill's tag on the injected parameters cell and on the error-banner cells it adds on failure
_INJECTED_TAG = "injected-parameters"
_ERROR_MARKER_TAG = "papermill-error-cell-tag"

# parameter / metadata keys shown prominently in index.html when present
_DATA_PATH_KEYS = ("data_path", "data_dir", "data", "dataset", "csv_path")
_DATA_CHECKSUM_KEYS = ("data_checksum", "data_sha256", "checksum", "sha256")


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


# --------------------------------------------------------------------------------------------- output directory


def source_checkout() -> Path | None:
    """The source checkout the package runs from (it has pyproject.toml and notebooks/), or None when installed."""
    root = project_root()
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def default_reports_dir() -> Path:
    """Where runs and interactive notebooks write by default: the checkout's ``reports/`` (git-ignored), or
    ``~/fer-workbench/reports`` for an installed package."""
    checkout = source_checkout()
    return checkout / "reports" if checkout is not None else Path.home() / "fer-workbench" / "reports"


def resolve_output_dir(output_dir: str | os.PathLike | None) -> Path:
    """A notebook's ``output_dir`` parameter as an absolute, existing directory, printing where outputs go.

    None (the notebooks' interactive default) means :func:`default_reports_dir`, so running a notebook in
    JupyterLab never writes beside the source notebooks; ``fer-workbench run`` always passes its ``--out``.
    """
    directory = Path(default_reports_dir() if output_dir is None else output_dir).expanduser().absolute()
    directory.mkdir(parents=True, exist_ok=True)
    print(f"outputs go to {directory}")
    return directory


# --------------------------------------------------------------------------------------------- results documents


def _notebook_stem(notebook_name: str | os.PathLike) -> str:
    stem = Path(str(notebook_name)).name.removesuffix(".ipynb")
    if not NOTEBOOK_PATTERN.match(f"{stem}.ipynb"):
        raise WorkbenchError(f"notebook name must look like NN_name (e.g. 05_metrics), got {str(notebook_name)!r}")
    return stem


def results_path(output_dir: str | os.PathLike, notebook_name: str) -> Path:
    """``<output_dir>/results/NN_name.json``."""
    return Path(output_dir) / RESULTS_DIR / f"{_notebook_stem(notebook_name)}.json"


def thumbnail_path(output_dir: str | os.PathLike, notebook_name: str) -> Path:
    """``<output_dir>/results/NN_name.png``."""
    return results_path(output_dir, notebook_name).with_suffix(".png")


def json_ready(value):
    """``value`` as plain JSON values: numpy scalars and arrays, pandas Series / DataFrames (records), paths and
    tuples converted; NaN and infinities become None (strict JSON has no NaN)."""
    import math

    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # DataFrame: one record per row, index kept
        if type(value.index).__name__ != "RangeIndex":
            value = value.reset_index()
        return json_ready(value.to_dict(orient="records"))
    if hasattr(value, "to_dict") and hasattr(value, "index"):  # Series
        return json_ready(value.to_dict())
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy array or scalar
        return json_ready(value.tolist())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_ready(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def thumbnail_png(figure, size: tuple[int, int] = THUMBNAIL_SIZE) -> bytes:
    """PNG bytes of a small thumbnail of a matplotlib figure, a PIL image or an image array (grey or RGB)."""
    import io

    import numpy as np
    from PIL import Image

    if hasattr(figure, "savefig"):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight", facecolor="white")
        image = Image.open(io.BytesIO(buffer.getvalue()))
    elif isinstance(figure, Image.Image):
        image = figure
    elif isinstance(figure, np.ndarray) and figure.ndim in (2, 3) and figure.size:
        image = Image.fromarray(np.clip(figure, 0, 255).astype(np.uint8))
    else:
        raise WorkbenchError(f"a thumbnail needs a matplotlib figure, a PIL image or an image array, "
                             f"not {type(figure).__name__}")
    image = image.convert("RGB")
    image.thumbnail(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def record_results(output_dir: str | os.PathLike, notebook_name: str, results: dict, figure=None) -> Path:
    """Write a notebook's key results to ``<output_dir>/results/NN_name.json`` (atomically) and, given a figure
    (matplotlib figure, PIL image or image array), a small PNG thumbnail beside it.

    ``fer-workbench run`` gathers these into run.json (under ``"results"``, keyed by notebook name) and shows them
    at the top of index.html: a ``"headline"`` list of short sentences is shown as is, otherwise the top-level
    numbers and strings. Returns the JSON path.
    """
    if not isinstance(results, dict):
        raise WorkbenchError(f"results must be a dict, got {type(results).__name__}")
    target = results_path(output_dir, notebook_name)
    document = json_ready(results)
    atomic_write_text(target, json.dumps(document, indent=2, allow_nan=False) + "\n")
    thumbnail = thumbnail_path(output_dir, notebook_name)
    if figure is None:
        thumbnail.unlink(missing_ok=True)
    else:
        atomic_write_bytes(thumbnail, thumbnail_png(figure))
    print(f"results recorded in {target}")
    return target


def read_results(output_dir: str | os.PathLike, notebook_name: str) -> dict | None:
    """A notebook's recorded results, or None when it recorded none (or the file is not a JSON object)."""
    path = results_path(output_dir, notebook_name)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _remove_results(output_dir: Path, notebook_name: str) -> None:
    results_path(output_dir, notebook_name).unlink(missing_ok=True)
    thumbnail_path(output_dir, notebook_name).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------- records


@dataclass
class NotebookRecord:
    """What happened to one notebook of a run."""

    name: str  # file name, e.g. "02_clean.ipynb"
    source: Path
    status: str = PENDING  # "ok", "failed", "not run" (transiently "pending" / "running")
    seconds: float | None = None  # execution wall time (kernel start included, HTML export excluded)
    html: Path | None = None
    executed: Path | None = None
    error: str | None = None  # one line, e.g. "ValueError: bad row"
    failed_cell: int | None = None  # 0-based index into the *source* notebook's cells
    failed_execution_count: int | None = None  # the "In [n]" shown in the executed notebook / HTML
    results: Path | None = None  # results/NN_name.json when the notebook recorded results
    thumbnail: Path | None = None  # results/NN_name.png when it recorded a figure with them

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    def to_dict(self, relative_to: Path | None = None) -> dict:
        def rel(path: Path | None) -> str | None:
            if path is None:
                return None
            if relative_to is not None:
                with contextlib.suppress(ValueError):
                    return Path(path).relative_to(relative_to).as_posix()
            return str(path)

        return {
            "name": self.name, "source": str(self.source), "status": self.status,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "html": rel(self.html), "executed": rel(self.executed), "error": self.error,
            "failed_cell": self.failed_cell, "failed_execution_count": self.failed_execution_count,
            "results": rel(self.results), "thumbnail": rel(self.thumbnail),
        }

    def failure_message(self) -> str | None:
        if self.status != FAILED:
            return None
        where = ""
        if self.failed_cell is not None:
            where = f" at cell {self.failed_cell}"
            if self.failed_execution_count is not None:
                where += f" (In [{self.failed_execution_count}])"
        return f"notebook {self.name} failed{where}: {self.error or 'unknown error'}"


@dataclass
class PipelineResult:
    out_dir: Path
    index_path: Path
    records: list[NotebookRecord]
    metadata: dict = field(default_factory=dict)
    run_json: Path | None = None
    results: dict = field(default_factory=dict)  # notebook stem -> its recorded results, in run order

    @property
    def ok(self) -> bool:
        return all(record.status == OK for record in self.records)

    @property
    def failed(self) -> NotebookRecord | None:
        return next((record for record in self.records if record.status == FAILED), None)

    def failure_message(self) -> str | None:
        """One line, e.g. ``notebook 02_clean.ipynb failed at cell 7 (In [5]): ValueError: ...``; None if ok.

        The cell number is the 0-based index into the source notebook's cells (``nb.cells[7]``).
        """
        record = self.failed
        if record is not None:
            return record.failure_message()
        if not self.ok:
            return "run did not finish: " + ", ".join(f"{r.name} {r.status}" for r in self.records if r.status != OK)
        return None


# --------------------------------------------------------------------------------------------- kernel


def _kernel_spec(kernel_name: str):
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        available = ", ".join(sorted(KernelSpecManager().find_kernel_specs())) or "none"
        raise WorkbenchError(f"no Jupyter kernel named {kernel_name!r}; available: {available}") from None


def _spec_python(spec) -> str | None:
    if not spec.argv:
        return None
    command = spec.argv[0]
    # jupyter_client.manager.KernelManager.format_kernel_cmd makes the same substitution
    if command in {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}:
        return sys.executable
    if os.path.isabs(command) and "python" in os.path.basename(command):
        return command
    return None


def kernel_python(kernel_name: str) -> str | None:
    """The interpreter a Jupyter kernel would start, or None for a non-Python / unusual kernelspec.

    Raises WorkbenchError when no kernel of that name exists.
    """
    return _spec_python(_kernel_spec(kernel_name))


def _same_environment(python: str) -> bool:
    # a venv's bin/python is a symlink to the base interpreter: compare the bin directories, unresolved
    return Path(python).absolute().parent == Path(sys.executable).absolute().parent


def check_kernel(kernel_name: str) -> dict:
    """Resolve ``kernel_name`` to ``{"name", "python", "language"}``.

    For the default "python3" insist that it is this environment's python (WorkbenchError otherwise).
    """
    spec = _kernel_spec(kernel_name)
    python = _spec_python(spec)
    if kernel_name == "python3" and python is not None and not _same_environment(python):
        raise WorkbenchError(
            f"Jupyter kernel 'python3' would run {python}, not this environment's {sys.executable}; "
            f"run `{sys.executable} -m ipykernel install --sys-prefix` or choose another kernel")
    return {"name": kernel_name, "python": python, "language": spec.language or None}


# --------------------------------------------------------------------------------------------- helpers


def _plain(value):
    """Parameters as JSON/papermill-friendly values (paths to str, tuples to lists)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        return value.item()  # numpy scalar
    return value


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
                 timeout_per_cell: float | None = None, metadata: dict | None = None) -> PipelineResult:
    """Execute the numbered notebooks in order, export each to HTML, and write index.html and run.json.

    ``notebooks`` is a directory (default: the checkout's notebooks/), one notebook, or a list of
    notebook paths (run in the order given); ``only`` selects among them (see :func:`discover_notebooks`).
    Every notebook receives ``parameters`` plus ``output_dir`` (absolute ``out_dir``) and runs with ``out_dir`` as its working
    directory. ``metadata`` adds caller fields to the recorded run metadata (e.g. ``data_checksum``).
    ``timeout_per_cell`` (seconds) fails a cell that runs longer. A failing notebook stops the run but
    the result is still returned (check ``result.ok``); WorkbenchError is raised only for bad arguments
    (unknown selection, missing kernel) before anything runs.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir).absolute()
    if notebooks is None or isinstance(notebooks, (str, os.PathLike)) and not Path(notebooks).is_file():
        paths = discover_notebooks(notebooks, only)
    else:
        paths = [Path(notebooks)] if isinstance(notebooks, (str, os.PathLike)) else [Path(p) for p in notebooks]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise WorkbenchError(f"notebook not found: {', '.join(missing)}")
        paths = _select(paths, only)
    kernel = check_kernel(kernel_name)
    tf_setup.configure_environment()  # inherited by the kernels: no TensorFlow start-up lines in the pages

    parameters = _plain(dict(parameters or {}))
    parameters["output_dir"] = str(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    executed_dir = out_dir / "executed"

    records = [NotebookRecord(name=p.name, source=p.absolute(), html=out_dir / f"{p.stem}.html",
                              executed=executed_dir / p.name) for p in paths]
    meta = _run_metadata(parameters, metadata, kernel, paths)
    result = PipelineResult(out_dir=out_dir, index_path=out_dir / "index.html", records=records, metadata=meta,
                            run_json=out_dir / "run.json")
    _write_index(result)

    bar = tqdm(total=len(records), unit="notebook", desc="notebooks", disable=not progress, leave=True)
    stopped = False
    try:
        for record in records:
            if stopped:
                record.status = NOT_RUN
                _remove_results(out_dir, record.stem)
                record.html.unlink(missing_ok=True)
                record.executed.unlink(missing_ok=True)
                record.html = record.executed = None
                continue
            bar.set_description(record.stem)
            record.status = RUNNING
            _remove_results(out_dir, record.stem)
            _write_index(result)
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
        _write_index(result)
    return result


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


# --------------------------------------------------------------------------------------------- index


def _first(mapping: dict, keys: Sequence[str]):
    for key in keys:
        if mapping.get(key) not in (None, ""):
            return mapping[key]
    return None


def _run_metadata(parameters: dict, extra: dict | None, kernel: dict, paths: Sequence[Path]) -> dict:
    extra = _plain(dict(extra or {}))
    merged = {**parameters, **extra}
    fields = {
        "profile": _first(merged, ("profile",)),
        "seed": _first(merged, ("seed",)),
        "data_path": _first(merged, _DATA_PATH_KEYS),
        "data_checksum": _first(merged, _DATA_CHECKSUM_KEYS),
        "kernel": kernel,
        "notebooks": [p.name for p in paths],
        "parameters": parameters,
    }
    fields.update({k: v for k, v in extra.items() if k not in fields or v is not None})
    if fields["data_checksum"] is None and fields["data_path"] and Path(fields["data_path"]).is_file():
        fields["data_checksum"] = sha256_file(fields["data_path"])  # ~1 s for FER2013's 300 MB CSV
    return run_metadata(**fields)


def _run_document(result: PipelineResult) -> dict:
    return {
        "metadata": result.metadata,
        "ok": result.ok,
        "failure": result.failure_message(),
        "notebooks": [record.to_dict(relative_to=result.out_dir) for record in result.records],
        "results": {record.stem: result.results[record.stem] for record in result.records
                    if record.stem in result.results},
    }


def _thumbnail_uris(result: PipelineResult) -> dict[str, str]:
    """Thumbnails as data URIs, so index.html stays one self-contained file."""
    import base64

    uris = {}
    for record in result.records:
        if record.thumbnail is not None and record.thumbnail.is_file():
            uris[record.stem] = "data:image/png;base64," + base64.b64encode(record.thumbnail.read_bytes()).decode()
    return uris


def _write_index(result: PipelineResult) -> None:
    document = _run_document(result)
    atomic_write_text(result.run_json, json.dumps(document, indent=2, default=str) + "\n")
    atomic_write_text(result.index_path, render_index(document, thumbnails=_thumbnail_uris(result)))


HEADLINE_KEY = "headline"  # a results document's list of short sentences for the index
_SUMMARY_ITEMS = 8  # top-level values shown for a results document without a headline


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def summary_lines(results: dict) -> list[str]:
    """What index.html shows of one notebook's results: its ``headline`` sentences, else its top-level numbers
    and strings as ``key: value``."""
    headline = results.get(HEADLINE_KEY)
    if isinstance(headline, list) and headline:
        return [str(line) for line in headline]
    scalars = [(k, v) for k, v in results.items() if isinstance(v, (str, int, float, bool)) and v is not None]
    return [f"{k}: {_format_value(v)}" for k, v in scalars[:_SUMMARY_ITEMS]]


def _template_environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(loader=PackageLoader("fer_workbench", "templates"), autoescape=select_autoescape(["html", "j2"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_index(document: dict, thumbnails: dict[str, str] | None = None) -> str:
    """The run's index page from ``templates/index.html.j2``: a results summary (one card per notebook that
    recorded results, with its thumbnail), the notebooks, the run metadata and parameters. Self-contained HTML
    (inline CSS and images, no scripts). ``thumbnails`` maps notebook stems to image URIs."""
    meta = document["metadata"]
    records = document["notebooks"]
    results = document.get("results") or {}
    thumbnails = thumbnails or {}
    statuses = {r["status"] for r in records}
    if document["ok"]:
        banner = ("ok", "All notebooks ran successfully.")
    elif FAILED in statuses:
        banner = ("failed", document["failure"])
    else:
        banner = ("", "Run in progress or interrupted.")

    packages = meta.get("packages") or {}
    kernel = meta.get("kernel") or {}
    meta_rows = [
        ("Created", meta.get("created")),
        ("Git commit", meta.get("git_commit") or "unknown (not a git checkout)"),
        ("Profile", meta.get("profile")),
        ("Seed", meta.get("seed")),
        ("Data", meta.get("data_path")),
        ("Data checksum (sha256)", meta.get("data_checksum")),
        ("Python", f'{meta.get("python", "")} — {meta.get("platform", "")}'),
        ("Kernel", f'{kernel.get("name", "")} ({kernel.get("python") or "?"})'),
        ("Packages", ", ".join(f"{name} {version}" for name, version in packages.items() if version) or None),
    ]
    notebooks = []
    for number, r in enumerate(records, 1):
        where = ""
        if r["status"] == FAILED and r["failed_cell"] is not None:
            where = f'cell {r["failed_cell"]}'
            if r["failed_execution_count"] is not None:
                where += f' (In [{r["failed_execution_count"]}])'
            where += ": "
        notebooks.append({
            "number": number, "name": r["name"], "stem": Path(r["name"]).stem, "status": r["status"],
            "css": r["status"].replace(" ", "-"),
            "seconds": "" if r["seconds"] is None else f'{r["seconds"]:.1f} s',
            "error": f'{where}{r["error"]}' if r["status"] == FAILED else None,
            "html": quote(r["html"]) if r["html"] else None,
            "executed": quote(r["executed"]) if r["executed"] else None,
        })
    cards = [{**nb, "lines": summary_lines(results[nb["stem"]]), "thumbnail": thumbnails.get(nb["stem"])}
             for nb in notebooks if nb["stem"] in results]
    parameters = [(k, json.dumps(v, default=str)) for k, v in (meta.get("parameters") or {}).items()]
    return _template_environment().get_template("index.html.j2").render(
        title=f'FER Workbench run — {meta.get("created", "")}', created=meta.get("created"), banner=banner,
        cards=cards, notebooks=notebooks, meta_rows=meta_rows, parameters=parameters)


__all__ = [
    "FAILED", "NOT_RUN", "OK", "NotebookRecord", "PipelineResult", "check_kernel", "default_reports_dir",
    "discover_notebooks", "export_html", "json_ready", "kernel_python", "read_results", "record_results",
    "render_index", "resolve_output_dir", "results_path", "run_pipeline", "source_checkout", "summary_lines",
    "thumbnail_path", "thumbnail_png",
]
