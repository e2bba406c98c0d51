"""FER2013 challenge CSV (`emotion,pixels,Usage`, optionally gzipped, or the `icml_face_data.csv` variant).

Parsing reads the file once, splits rows with bytes methods and parses each pixel field with one C call into
a preallocated array (see benchmarks/bench_csv_parse.py for the ratio against the usual pandas recipe).
"""

from __future__ import annotations

import gzip
import itertools
import multiprocessing
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_workbench import CLASS_NAMES, IMAGE_SIZE, SPLITS
from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import sha256_bytes

try:  # ISA-L decompresses gzip about 3x faster than zlib; optional, same output
    from isal import igzip as _gzip
except ImportError:  # pragma: no cover - depends on the environment
    _gzip = gzip

PIXELS = IMAGE_SIZE * IMAGE_SIZE
REQUIRED_COLUMNS = ("emotion", "pixels", "Usage")
MAX_LISTED = 10
PARALLEL_MIN_ROWS = 4_000  # below this, starting worker processes costs more than it saves


def read_source_bytes(path: Path) -> tuple[bytes, str]:
    """The file's decompressed contents and the checksum of the bytes on disk."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise WorkbenchError(f"{path}: cannot read ({exc.strerror or exc})") from None
    checksum = sha256_bytes(raw)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = _gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as exc:
            raise WorkbenchError(f"{path}: not a readable gzip file ({exc})") from None
    return raw, checksum


def _describe(lines: list[int], reason: str) -> str:
    shown = ", ".join(str(n) for n in lines[:MAX_LISTED])
    more = f" and {len(lines) - MAX_LISTED} more" if len(lines) > MAX_LISTED else ""
    return f"{reason} on line{'s' if len(lines) > 1 else ''} {shown}{more}"


def _pixel_problem(field: bytes) -> tuple[str, str]:
    """Why a pixel field failed to parse (only called for rows the fast path rejected)."""
    tokens = field.split()
    if not all(t.isdigit() for t in tokens):
        return "non-numeric pixel value", ""
    if len(tokens) != PIXELS:
        return "wrong pixel count", f"{len(tokens)} pixel values instead of {PIXELS}"
    return "pixel value above 255", ""


@dataclass
class _Layout:
    n_columns: int
    i_label: int
    i_pixels: int
    i_usage: int
    i_row_id: int = -1  # optional `row_id` column: the source row a derived file (e.g. a cleaned export) came from


def _parse_rows(lines: list[bytes], start: int, stop: int, layout: _Layout):
    """Parse data rows [start, stop): uint8 pixels, labels, split names and problems keyed by row index."""
    n = stop - start
    pixels = np.zeros((n, PIXELS), np.uint16)  # wider than uint8 so values above 255 are caught, not wrapped
    labels = np.zeros(n, np.int64)
    row_ids = np.arange(start, stop, dtype=np.int64)
    usage = [""] * n
    problems: dict[int, tuple[str, str]] = {}
    split_names = {s.encode(): s for s in SPLITS}
    n_classes = len(CLASS_NAMES)
    fromstring = np.fromstring
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # older numpy warns where newer raises ValueError
        for k in range(n):
            i = start + k
            parts = lines[i].split(b",")
            if len(parts) != layout.n_columns:
                problems[i] = ("wrong field count", f"{len(parts)} fields instead of {layout.n_columns}")
                continue
            label = parts[layout.i_label].strip().strip(b'"')
            if not label.isdigit() or int(label) >= n_classes:
                problems[i] = ("emotion label out of range",
                               f"emotion {label.decode('utf-8', 'replace')!r} not in 0..{n_classes - 1}")
                continue
            split = split_names.get(parts[layout.i_usage].strip().strip(b'"'))
            if split is None:
                problems[i] = ("unknown Usage",
                               f"Usage {parts[layout.i_usage].strip().decode('utf-8', 'replace')!r}")
                continue
            if layout.i_row_id >= 0:
                source_row = parts[layout.i_row_id].strip().strip(b'"')
                if not source_row.isdigit():
                    problems[i] = ("bad row_id", f"row_id {source_row.decode('utf-8', 'replace')!r}")
                    continue
                row_ids[k] = int(source_row)
            field = parts[layout.i_pixels].strip().strip(b'"')
            try:
                values = fromstring(field, dtype=np.uint16, sep=" ")
            except ValueError:  # numpy ≥ 2.3 raises on a token that is not a number
                values = None
            if values is None or values.size != PIXELS or not field[-1:].isdigit():
                problems[i] = _pixel_problem(field)
                continue
            pixels[k] = values
            labels[k] = int(label)
            usage[k] = split
    for k in np.flatnonzero(pixels.max(axis=1) > 255):
        problems[start + int(k)] = ("pixel value above 255", "")
    return pixels.astype(np.uint8), labels, usage, problems, row_ids


_FORK_LINES: list[bytes] = []  # rows handed to forked workers by inheritance instead of pickling 300 MB


def _parse_chunk(bounds: tuple[int, int, _Layout]):
    return _parse_rows(_FORK_LINES, *bounds)


def _parse_all_rows(lines: list[bytes], layout: _Layout):
    """Split the rows over the cores when that pays (large file, Linux fork); else parse in this process."""
    workers = min(os.cpu_count() or 1, 8)
    if len(lines) < PARALLEL_MIN_ROWS or workers < 2 or sys.platform != "linux":
        return [_parse_rows(lines, 0, len(lines), layout)]
    global _FORK_LINES
    edges = np.linspace(0, len(lines), workers + 1).astype(int)
    _FORK_LINES = lines
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(workers) as pool:
            return pool.map(_parse_chunk, [(a, b, layout) for a, b in itertools.pairwise(edges)])
    except OSError:  # no fork allowed here: one process it is
        return [_parse_rows(lines, 0, len(lines), layout)]
    finally:
        _FORK_LINES = []


def parse_fer_csv_bytes(data: bytes, source: str, checksum: str = "", skip_bad_rows: bool = False) -> Dataset:
    """Parse FER2013 CSV text. Line numbers in messages are 1-based file lines (the header is line 1).

    Each row's pixel field is parsed by one C-level ``np.fromstring`` call; that call rejects a bad token,
    so only rejected rows get a closer look. Large files are parsed by one forked process per core.
    """
    if b"\r" in data[: data.find(b"\n")]:  # Windows line endings: the copy is only paid when needed
        data = data.replace(b"\r\n", b"\n")
    lines = data.split(b"\n")
    columns = [c.strip().strip(b'"').decode("utf-8", "replace") for c in lines[0].split(b",")]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise WorkbenchError(f"{source}: missing column{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)} (header has: {', '.join(columns)})")
    layout = _Layout(len(columns), *(columns.index(name) for name in REQUIRED_COLUMNS),
                     i_row_id=columns.index("row_id") if "row_id" in columns else -1)
    del lines[0]
    if lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise WorkbenchError(f"{source}: no data rows")
    chunks = _parse_all_rows(lines, layout)
    problems = {row: why for chunk in chunks for row, why in chunk[3].items()}
    good = np.ones(len(lines), bool)
    good[list(problems)] = False
    skipped = ()
    if problems:
        by_kind: dict[str, list[int]] = {}
        for row, (kind, _) in sorted(problems.items()):
            by_kind.setdefault(kind, []).append(row + 2)
        summary = "; ".join(_describe(rows, kind) for kind, rows in by_kind.items())
        if not skip_bad_rows:
            raise WorkbenchError(f"{source}: {len(problems)} bad row{'s' if len(problems) > 1 else ''}: "
                                 f"{summary} (skip_bad_rows=True / --skip-bad-rows drops them)")
        skipped = tuple((row + 2, detail or kind) for row, (kind, detail) in sorted(problems.items()))
    if not good.any():
        raise WorkbenchError(f"{source}: no valid data rows")
    pixels = np.concatenate([c[0] for c in chunks]) if len(chunks) > 1 else chunks[0][0]
    labels = np.concatenate([c[1] for c in chunks])
    usage = np.asarray([u for c in chunks for u in c[2]])
    row_ids = np.concatenate([c[4] for c in chunks])
    if not good.all():
        pixels, labels, usage, row_ids = pixels[good], labels[good], usage[good], row_ids[good]
    return Dataset(images=pixels.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), labels=labels, splits=usage,
                   row_ids=row_ids, source=source, checksum=checksum,
                   skipped_rows=skipped)


def load_fer_csv(path: str | os.PathLike, skip_bad_rows: bool = False) -> Dataset:
    """Load a FER2013-format CSV (plain or gzipped) into a Dataset."""
    path = Path(path)
    data, checksum = read_source_bytes(path)
    return parse_fer_csv_bytes(data, source=str(path), checksum=checksum, skip_bad_rows=skip_bad_rows)
