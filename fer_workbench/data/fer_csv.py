"""FER2013 challenge CSV (`emotion,pixels,Usage`, optionally gzipped, or the `icml_face_data.csv` variant).

Parsing is vectorised: the pixel fields are joined into one buffer and split on its space positions with
numpy, instead of a per-row ``np.fromstring`` loop (see benchmarks/bench_csv_parse.py for the ratio).
"""

from __future__ import annotations

import gzip
import os
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


def _row_problem(field: bytes) -> tuple[str, str] | None:
    """Why one pixel field is invalid (slow path, only run when the fast checks fail)."""
    tokens = field.split()
    if not all(t.isdigit() for t in tokens):
        return "non-numeric pixel value", ""
    if len(tokens) != PIXELS:
        return "wrong pixel count", f"{len(tokens)} pixel values instead of {PIXELS}"
    if max(int(t) for t in tokens) > 255:
        return "pixel value above 255", ""
    return None


def _parse_pixels(fields: list[bytes]) -> tuple[np.ndarray, dict[int, tuple[str, str]]]:
    """Parse space-separated pixel fields into (rows, 48, 48) uint8; returns problems by row index."""
    joined = b" ".join(fields)
    fast_ok = (not joined.translate(None, b"0123456789 ")
               and all(f.count(b" ") == PIXELS - 1 for f in fields))
    values = np.fromstring(joined, dtype=np.uint16, sep=" ") if fast_ok else None
    if fast_ok and values.size == len(fields) * PIXELS and values.max(initial=0) <= 255:
        return values.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE), {}
    problems = {i: why for i, f in enumerate(fields) if (why := _row_problem(f)) is not None}
    kept = [f for i, f in enumerate(fields) if i not in problems]
    values = np.fromstring(b" ".join(kept), dtype=np.uint16, sep=" ") if kept else np.zeros(0, np.uint16)
    return values.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE), problems


def parse_fer_csv_bytes(data: bytes, source: str, checksum: str = "", skip_bad_rows: bool = False) -> Dataset:
    """Parse FER2013 CSV text. Line numbers in messages are 1-based file lines (the header is line 1)."""
    if b"\r" in data[: data.find(b"\n")]:  # Windows line endings: the copy is only paid when needed
        data = data.replace(b"\r\n", b"\n")
    lines = data.split(b"\n")
    header = lines[0]
    columns = [c.strip().strip(b'"').decode("utf-8", "replace") for c in header.split(b",")]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise WorkbenchError(f"{source}: missing column{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)} (header has: {', '.join(columns)})")
    i_label, i_pixels, i_usage = (columns.index(name) for name in REQUIRED_COLUMNS)
    del lines[0]
    if lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise WorkbenchError(f"{source}: no data rows")
    problems: dict[int, tuple[str, str]] = {}  # data-row index → (kind, detail)
    labels = np.zeros(len(lines), np.int64)
    usage = np.empty(len(lines), dtype=object)
    pixel_fields: list[bytes] = []
    parsed_rows: list[int] = []
    split_names = {s.encode(): s for s in SPLITS}
    for i, line in enumerate(lines):
        parts = line.split(b",")
        if len(parts) != len(columns):
            problems[i] = ("wrong field count", f"{len(parts)} fields instead of {len(columns)}")
            continue
        label = parts[i_label].strip().strip(b'"')
        if not label.isdigit() or int(label) >= len(CLASS_NAMES):
            problems[i] = ("emotion label out of range",
                           f"emotion {label.decode('utf-8', 'replace')!r} not in 0..{len(CLASS_NAMES) - 1}")
            continue
        split = split_names.get(parts[i_usage].strip().strip(b'"'))
        if split is None:
            problems[i] = ("unknown Usage", f"Usage {parts[i_usage].strip().decode('utf-8', 'replace')!r}")
            continue
        labels[i] = int(label)
        usage[i] = split
        pixel_fields.append(parts[i_pixels].strip().strip(b'"'))
        parsed_rows.append(i)
    images, pixel_problems = _parse_pixels(pixel_fields)
    for k, why in pixel_problems.items():
        problems[parsed_rows[k]] = why
    good = np.asarray([r for k, r in enumerate(parsed_rows) if k not in pixel_problems], dtype=np.int64)
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
    if len(good) == 0:
        raise WorkbenchError(f"{source}: no valid data rows")
    return Dataset(images=images, labels=labels[good], splits=np.asarray(usage[good].tolist()), row_ids=good,
                   source=source, checksum=checksum, skipped_rows=skipped)


def load_fer_csv(path: str | os.PathLike, skip_bad_rows: bool = False) -> Dataset:
    """Load a FER2013-format CSV (plain or gzipped) into a Dataset."""
    path = Path(path)
    data, checksum = read_source_bytes(path)
    return parse_fer_csv_bytes(data, source=str(path), checksum=checksum, skip_bad_rows=skip_bad_rows)
