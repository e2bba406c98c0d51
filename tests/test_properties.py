"""Property tests (hypothesis): random corruptions and truncations of valid files never give a traceback.

The FER2013 CSV loader (plain and gzipped) and the photo reader either return a valid result or raise one
WorkbenchError whose message is one printable line; nothing else. Examples are few and small (a 6-row CSV,
40×30 images) so that the module runs in seconds.
"""

import gzip
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import csv_text, make_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fer_workbench import IMAGE_SIZE, WorkbenchError
from fer_workbench.data.fer_csv import load_fer_csv, parse_fer_csv_bytes
from fer_workbench.errors import MAX_MESSAGE
from fer_workbench.photos import PhotoError, load_photo

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

CSV = csv_text(*make_rows(6)).encode()
# a few characters that matter to the parser, so corruptions hit its branches more often than random bytes would
INTERESTING = st.sampled_from([b",", b"\n", b"\r", b"\r\n", b" ", b'"', b"-", b"256", b"99999", b"\x00",
                               b"\xef\xbb\xbf", b"\x1b[2J", b"\xff\xfe", b"Training", b"PublicTest", b"7", b"emotion",
                               b"\t", b"\xc3"])


@st.composite
def corrupted(draw, original: bytes):
    """``original`` after 1-4 random edits: truncate, delete a span, overwrite a span, insert bytes."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "delete", "overwrite", "insert", "insert_interesting"]))
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            del data[at:]
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at:at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[at:at] = draw(INTERESTING)
    return bytes(data)


def assert_one_line(error: Exception) -> None:
    message = str(error)
    assert message and "\n" not in message and "\r" not in message and "\x00" not in message
    assert "\x1b" not in message and len(message) <= MAX_MESSAGE + 40


@SETTINGS
@given(data=corrupted(CSV), skip=st.booleans())
def test_corrupted_csv_loads_or_fails_in_one_line(data, skip):
    try:
        dataset = parse_fer_csv_bytes(data, "corrupt.csv", skip_bad_rows=skip)
    except WorkbenchError as error:
        assert_one_line(error)
        return
    n = len(dataset)
    assert 1 <= n <= 6 + data.count(b"\n")
    assert dataset.images.shape == (n, IMAGE_SIZE, IMAGE_SIZE) and dataset.images.dtype == np.uint8
    assert dataset.labels.min() >= 0 and dataset.labels.max() <= 6
    assert set(dataset.splits) <= {"Training", "PublicTest", "PrivateTest"}
    for _, detail in dataset.skipped_rows:
        assert "\n" not in detail and "\x1b" not in detail


GZIPPED = gzip.compress(CSV, mtime=0)


@SETTINGS
@given(data=corrupted(GZIPPED))
def test_corrupted_gzip_loads_or_fails_in_one_line(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corrupt.csv.gz"
        path.write_bytes(data)
        try:
            dataset = load_fer_csv(path)
        except WorkbenchError as error:
            assert_one_line(error)
            return
    assert 1 <= len(dataset) <= 6 and dataset.images.dtype == np.uint8


def _encoded(fmt: str, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


PHOTOS = {name: _encoded(*spec) for name, spec in {
    "png": ("PNG",), "jpeg": ("JPEG",), "gif": ("GIF", "P"), "bmp": ("BMP",), "tiff": ("TIFF",),
    "webp": ("WEBP",), "ppm": ("PPM",), "png16": ("PNG", "I;16"), "rgba": ("PNG", "RGBA"),
}.items()}


@pytest.mark.parametrize("fmt", sorted(PHOTOS))
def test_property_originals_decode(fmt):
    assert load_photo(PHOTOS[fmt], name=f"x.{fmt}").size == (40, 30)


@SETTINGS
@given(fmt=st.sampled_from(sorted(PHOTOS)), data=st.data())
def test_corrupted_photo_decodes_or_fails_in_one_line(fmt, data):
    damaged = data.draw(corrupted(PHOTOS[fmt]))
    try:
        photo = load_photo(damaged, name=f"upload.{fmt}")
    except PhotoError as error:
        assert_one_line(error)
        assert str(error).startswith(f"upload.{fmt}: ")
        return
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == (photo.height, photo.width, 3)
    assert photo.gray.shape == (photo.height, photo.width) and photo.width * photo.height <= 50_000_000
