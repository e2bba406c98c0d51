"""FER2013 challenge CSV (`emotion,pixels,Usage`, optionally gzipped, or the `icml_face_data.csv` variant).

Parsing reads the file once, splits rows with bytes methods and parses each pixel field with one C call into
a preallocated array (see benchmarks/bench_csv_parse.py for the ratio against the usual pandas recipe).

Text as spreadsheets and editors save it is accepted: a UTF-8 byte-order mark, Windows (CRLF) or classic Mac
(CR) line endings, blank lines at the end. UTF-16/UTF-32 text and binary files are refused with one line saying
what the file is. Reads are bounded (MAX_CSV_BYTES on disk and decompressed), and text quoted from the file in
messages is escaped and cut (`errors.quote`).
"""

from __future__ import annotations

import gzip
import io
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
from fer_workbench.errors import WorkbenchError, quote
from fer_workbench.files import atomic_write_bytes, read_bounded, sha256_bytes

try:  # ISA-L decompresses gzip about 3x faster than zlib; optional, same output
    from isal import igzip as _gzip
except ImportError:  # pragma: no cover - depends on the environment
    _gzip = gzip

PIXELS = IMAGE_SIZE * IMAGE_SIZE
REQUIRED_COLUMNS = ("emotion", "pixels", "Usage")
MAX_LISTED = 10
PARALLEL_MIN_ROWS = 4_000  # below this, starting worker processes costs more than it saves
MAX_CSV_BYTES = 2_000_000_000  # on disk and decompressed: FER2013 is 0.3 GB; a gzip bomb stops here
_LIMIT_HINT = " (MAX_CSV_BYTES in fer_workbench/data/fer_csv.py)"

_BOM_UTF8 = b"\xef\xbb\xbf"
_BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}
_SIGNATURES = {b"PK\x03\x04": "a ZIP archive (an Excel .xlsx workbook?)", b"\x89PNG": "a PNG image",
               b"\xff\xd8\xff": "a JPEG image", b"%PDF": "a PDF document", b"BZh": "a bzip2 archive",
               b"\xfd7zXZ": "an xz archive", b"\x28\xb5\x2f\xfd": "a zstd archive"}


def read_source_bytes(path: Path) -> tuple[bytes, str]:
    """The file's decompressed contents and the checksum of the bytes on disk (both at most MAX_CSV_BYTES)."""
    raw = read_bounded(path, MAX_CSV_BYTES, hint=_LIMIT_HINT)
    checksum = sha256_bytes(raw)
    if raw[:2] == b"\x1f\x8b":
        try:
            with _gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
                raw = stream.read(MAX_CSV_BYTES + 1)
        except MemoryError:
            raise WorkbenchError(f"{path}: not enough memory to decompress it") from None
        except Exception as exc:  # noqa: BLE001 -- gzip, zlib and ISA-L errors: truncated or corrupt data
            raise WorkbenchError(f"{path}: not a readable gzip file ({type(exc).__name__}: {exc})") from None
        if len(raw) > MAX_CSV_BYTES:
            raise WorkbenchError(f"{path}: decompresses to more than {MAX_CSV_BYTES / 1e9:g} GB, over the "
                                 f"limit{_LIMIT_HINT}")
    return raw, checksum


def _as_text(data: bytes, source: str) -> bytes:
    """CSV bytes with a UTF-8 byte-order mark removed and line endings made ``\\n``; one clear line for files that
    are not UTF-8/ASCII text (UTF-16/32 as Windows "Unicode text" exports write, archives, images, binaries)."""
    data = data.removeprefix(_BOM_UTF8)
    for bom, encoding in _BOMS.items():
        if data.startswith(bom):
            raise WorkbenchError(f"{source}: {encoding} text (byte-order mark {bom.hex(' ')}); save it as UTF-8 "
                                 f"or plain CSV")
    for signature, kind in _SIGNATURES.items():
        if data.startswith(signature):
            raise WorkbenchError(f"{source}: {kind}, not CSV text")
    head = data[:4096]
    if b"\x00" in head:
        if head[1::2].count(0) > len(head) // 4 or head[0::2].count(0) > len(head) // 4:
            raise WorkbenchError(f"{source}: looks like UTF-16 text without a byte-order mark; save it as UTF-8 "
                                 f"or plain CSV")
        raise WorkbenchError(f"{source}: holds NUL bytes: a binary file, not CSV text")
    if not data.strip():
        raise WorkbenchError(f"{source}: empty file")
    first_newline = data.find(b"\n")
    if b"\r" in (data[:first_newline] if first_newline >= 0 else data):
        data = data.replace(b"\r\n", b"\n")  # Windows line endings: the copy is only paid when needed
        if b"\r" in data[: data.find(b"\n") if b"\n" in data else len(data)]:
            data = data.replace(b"\r", b"\n")  # classic Mac: CR alone ends each line
    return data


def _describe(lines: list[int], reason: str) -> str:
    shown = ", ".join(str(n) for n in lines[:MAX_LISTED])
    more = f" and {len(lines) - MAX_LISTED} more" if len(lines) > MAX_LISTED else ""
    return f"{reason} on line{'s' if len(lines) > 1 else ''} {shown}{more}"


def _pixel_problem(field: bytes) -> tuple[str, str]:
    """Why a pixel field failed to parse (only called for rows the fast path rejected)."""
    tokens = field.split()
    if not all(t.isdigit() for t in tokens):
        if all(t.lstrip(b"-+").isdigit() for t in tokens):
            return "negative pixel value", ""
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
    pixels = np.zeros((n, PIXELS), np.uint8)
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
                problems[i] = (("blank line", "") if not lines[i].strip() else
                               ("wrong field count", f"{len(parts)} fields instead of {layout.n_columns}"))
                continue
            label = parts[layout.i_label].strip().strip(b'"')
            if not label.isdigit() or len(label) > 3 or int(label) >= n_classes:
                problems[i] = ("emotion label out of range", f"emotion {quote(label)} not in 0..{n_classes - 1}")
                continue
            split = split_names.get(parts[layout.i_usage].strip().strip(b'"'))
            if split is None:
                problems[i] = ("unknown Usage", f"Usage {quote(parts[layout.i_usage].strip())}")
                continue
            if layout.i_row_id >= 0:
                source_row = parts[layout.i_row_id].strip().strip(b'"')
                if not source_row.isdigit() or len(source_row) > 18:  # int64, and Python's int() digit limit
                    problems[i] = ("bad row_id", f"row_id {quote(source_row)}")
                    continue
                row_ids[k] = int(source_row)
            field = parts[layout.i_pixels].strip().strip(b'"')
            try:  # int64, not uint8/uint16: a narrow type wraps 300 → 44 and 65600 → 64 silently
                values = fromstring(field, dtype=np.int64, sep=" ")
            except ValueError:  # numpy ≥ 2.3 raises on a token that is not a number
                values = None
            if values is None or values.size != PIXELS or not field[-1:].isdigit():
                problems[i] = _pixel_problem(field)
                continue
            if values.view(np.uint64).max() > 255:  # negative values become huge as uint64: one check for both
                problems[i] = _pixel_problem(field)
                continue
            pixels[k] = values
            labels[k] = int(label)
            usage[k] = split
    return pixels, labels, usage, problems, row_ids


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
    data = _as_text(data, source)
    lines = data.split(b"\n")
    columns = [c.strip().strip(b'"').decode("utf-8", "replace") for c in lines[0].split(b",")]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise WorkbenchError(f"{source}: missing column{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)} (header has: {quote(lines[0].strip())})")
    layout = _Layout(len(columns), *(columns.index(name) for name in REQUIRED_COLUMNS),
                     i_row_id=columns.index("row_id") if "row_id" in columns else -1)
    del lines[0]
    while lines and not lines[-1].strip():  # blank lines at the end are not rows
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


# --------------------------------------------------------------------------------------------- writing

WRITE_CHUNK = 2048  # rows text-encoded at once, to bound memory


def _digit_table() -> tuple[np.ndarray, np.ndarray]:
    """Per byte value: its decimal digits right-aligned in 3 bytes plus a space, and which of the 4 to keep."""
    chars = np.zeros((256, 4), np.uint8)
    keep = np.zeros((256, 4), bool)
    for v in range(256):
        text = str(v).encode()
        chars[v, 3 - len(text):3] = np.frombuffer(text, np.uint8)
        keep[v, 3 - len(text):3] = True
    chars[:, 3] = ord(" ")
    keep[:, 3] = True
    return chars, keep


_DIGITS, _KEEP = _digit_table()


def _pixel_fields(images: np.ndarray) -> list[bytes]:
    """The space-separated pixel field of each uint8 image, vectorised over a chunk of rows."""
    fields: list[bytes] = []
    for start in range(0, len(images), WRITE_CHUNK):
        values = images[start:start + WRITE_CHUNK].reshape(-1, PIXELS)
        keep = _KEEP[values]
        keep[:, -1, 3] = False  # no trailing space
        flat = _DIGITS[values][keep].tobytes()
        ends = np.cumsum(keep.sum(axis=(1, 2)))
        starts = np.concatenate([[0], ends[:-1]])
        fields.extend(flat[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True))
    return fields


def fer_csv_bytes(images: np.ndarray, labels: np.ndarray, splits, row_ids: np.ndarray | None = None) -> bytes:
    """FER2013 CSV text (``emotion,pixels,Usage``, and ``row_id`` when ``row_ids`` is given) for uint8
    N×48×48 images, one split name per row; ``parse_fer_csv_bytes`` reads it back unchanged."""
    splits = np.asarray(splits).tolist()
    usages = {name: f",{name}".encode() for name in set(splits)}
    ids = [b""] * len(splits) if row_ids is None else [b",%d" % r for r in np.asarray(row_ids).tolist()]
    parts = [b"emotion,pixels,Usage,row_id\n" if row_ids is not None else b"emotion,pixels,Usage\n"]
    labels, fields = np.asarray(labels).tolist(), _pixel_fields(np.asarray(images))
    for label, field, split, row_id in zip(labels, fields, splits, ids, strict=True):
        parts.append(b"%d," % label + field + usages[split] + row_id + b"\n")
    return b"".join(parts)


def write_fer_csv(path: str | os.PathLike, dataset: Dataset, row_ids: bool = True) -> Path:
    """Write ``dataset`` as a FER2013 CSV (atomic); with ``row_ids`` each row keeps its source row id, so FER+
    votes and synthetic truth still line up with a derived file such as a cleaned export."""
    return atomic_write_bytes(path, fer_csv_bytes(dataset.images, dataset.labels, dataset.splits,
                                                  dataset.row_ids if row_ids else None))
