"""Decoding ordinary photos (phone pictures, screenshots, scans) robustly, and the one conversion to training format.

`load_photo` turns a path or raw bytes into a `Photo`: 8-bit RGB and grayscale arrays at the original resolution,
EXIF orientation applied, first frame of animations, every Pillow colour mode normalised (alpha composited on white,
16-bit and 32-bit data scaled to 8 bits rather than clipped). Anything that cannot be decoded raises `PhotoError`
with a one-line message naming the file.

`to_gray48` is the conversion training images go through (`data.folders.read_gray48`): Pillow's "L" luma
(ITU-R 601-2) then a Lanczos resize to 48×48 — face crops must end in exactly this step to look like training data.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fer_workbench import IMAGE_SIZE
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import read_bounded

MAX_PHOTO_BYTES = 30_000_000  # 30 MB: well above any phone JPEG/HEIC-converted PNG, far below memory trouble
MAX_PHOTO_PIXELS = 50_000_000  # 50 megapixels: a 200-MP bomb is refused from its header, before decoding
RESAMPLE = Image.Resampling.LANCZOS  # the filter data.folders.read_gray48 uses for training images

PhotoSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

_ORIENTATION_TAG = 0x0112
_PIL_LIMIT_LOCK = threading.Lock()


class PhotoError(WorkbenchError):
    """A photo that cannot be used: missing, not an image, corrupt, or over a size limit."""


@dataclass(frozen=True, eq=False)
class Photo:
    """One decoded photo. `rgb` (H×W×3) and `gray` (H×W) are uint8 at the original resolution, upright."""

    rgb: np.ndarray
    gray: np.ndarray
    name: str
    size: tuple[int, int]  # (width, height) after EXIF orientation, Pillow's order
    frames: int = 1  # frames in the file; only the first is decoded
    mode: str = "RGB"  # the file's Pillow mode before normalisation (e.g. "P", "I;16", "CMYK")
    format: str | None = None  # Pillow's format name ("JPEG", "PNG", ...); None for arrays
    exif_orientation: int = 1  # the EXIF Orientation tag that was applied (1: none)

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]


# --------------------------------------------------------------------------------------------------- conversion


def _scale_to_uint8(array: np.ndarray, sixteen_bit: bool) -> np.ndarray:
    """High-bit-depth or float pixel data → uint8, scaling (never clipping, which Pillow's convert("L") does)."""
    if sixteen_bit:  # the container says 16 bits: 0..65535 → 0..255 (65535/257 = 255)
        return np.round(array.astype(np.float64) / 257.0).astype(np.uint8)
    values = array.astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(array.shape, np.uint8)
    low, high = float(finite.min()), float(finite.max())
    values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
    if np.issubdtype(array.dtype, np.floating) and low >= 0.0 and high <= 1.0:
        scaled = values * 255.0  # float images in [0, 1]
    elif low >= 0.0 and high <= 255.0:
        scaled = values  # already 8-bit range
    elif low >= 0.0 and high <= 65535.0:
        scaled = values / 257.0  # 16-bit data in a 32-bit container (mode "I" from PGM/TIFF/PNG)
    elif high > low:
        scaled = (values - low) * (255.0 / (high - low))  # arbitrary range (signed, 32-bit): stretch
    else:
        scaled = np.zeros_like(values)  # a constant image outside every known range
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


class UnsupportedModeError(ValueError):
    """Pillow decoded the file but cannot convert its colour mode to RGB."""


def _composite_on_white(image: Image.Image) -> Image.Image:
    if image.mode == "La":  # premultiplied alpha: Pillow converts it only to LA
        image = image.convert("LA")
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _normalise_image(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """(rgb H×W×3, gray H×W), both uint8, for a Pillow image of any mode."""
    mode = image.mode
    if mode in ("1", "L"):
        gray = np.asarray(image.convert("L"), dtype=np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2), gray
    if mode.startswith("I;16") or mode in ("I", "F"):
        gray = _scale_to_uint8(np.asarray(image), sixteen_bit=mode.startswith("I;16"))
        return np.repeat(gray[:, :, None], 3, axis=2), gray
    has_alpha = mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode in ("P", "L", "RGB")
                                                                  and "transparency" in image.info)
    try:
        rgb_image = _composite_on_white(image) if has_alpha else image.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV
    except ValueError as exc:
        raise UnsupportedModeError(f"colour mode {mode} is not supported ({_first_line(exc)})") from None
    rgb = np.asarray(rgb_image, dtype=np.uint8)
    return rgb, np.asarray(rgb_image.convert("L"), dtype=np.uint8)


def _normalise_pil(image: Image.Image, label: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return _normalise_image(image)
    except UnsupportedModeError as exc:
        raise PhotoError(f"{label}: {exc}") from None


def _array_to_rgb_gray(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An H×W, H×W×1, H×W×3 (RGB) or H×W×4 (RGBA) array of any numeric dtype → (rgb, gray) uint8."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or 0 in array.shape[:2]:
        raise PhotoError(f"expected an H×W gray, H×W×3 RGB or H×W×4 RGBA image array, got shape {array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise PhotoError(f"image arrays must be numeric, got dtype {array.dtype}")
        array = _scale_to_uint8(array, sixteen_bit=array.dtype == np.uint16)
    array = np.ascontiguousarray(array)
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2), array
    image = Image.fromarray(array, "RGBA" if array.shape[2] == 4 else "RGB")
    return _normalise_image(image)


def to_gray48(image: np.ndarray | Image.Image) -> np.ndarray:
    """A face image (Pillow image of any mode, or an RGB/gray array) → 48×48 uint8 grayscale, training's way.

    Same steps as `data.folders.read_gray48`: Pillow's "L" conversion, then a Lanczos resize to 48×48 unless the
    image already has that size (non-square inputs are stretched, as they are for training folders). Unlike a bare
    `convert("L")`, alpha is composited on white and 16-bit data is scaled, not clipped at 255.
    """
    if isinstance(image, Image.Image):
        gray = _normalise_pil(image, "<PIL image>")[1]
    else:
        gray = _array_to_rgb_gray(image)[1]
    picture = Image.fromarray(gray, "L")
    if picture.size != (IMAGE_SIZE, IMAGE_SIZE):
        picture = picture.resize((IMAGE_SIZE, IMAGE_SIZE), RESAMPLE)
    return np.asarray(picture, dtype=np.uint8)


def photo_from_array(array: np.ndarray, name: str = "<array>") -> Photo:
    """Wrap an image array (H×W gray or H×W×3 RGB — not BGR — or RGBA; any numeric dtype) as a Photo."""
    rgb, gray = _array_to_rgb_gray(array)
    return Photo(rgb=rgb, gray=gray, name=name, size=(rgb.shape[1], rgb.shape[0]), mode="array")


# ------------------------------------------------------------------------------------------------------ decoding


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 1e8 else f"{n / 1e6:.0f} MB"


def _read_source(source: PhotoSource, name: str | None, max_bytes: int | None) -> tuple[bytes, str]:
    """The file's bytes and the label messages use, enforcing existence and the byte limit before reading."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<image bytes>"
        data = bytes(source)
        if max_bytes is not None and len(data) > max_bytes:
            raise PhotoError(f"{label}: {_megabytes(len(data))} is over the {_megabytes(max_bytes)} limit "
                             f"(max_bytes={max_bytes})")
        return data, label
    if hasattr(source, "read"):
        label = name or str(getattr(source, "name", "<image stream>"))
        try:
            data = source.read() if max_bytes is None else source.read(max_bytes + 1)
        except OSError as exc:
            raise PhotoError(f"{label}: cannot read ({exc.strerror or exc})") from None
        if not isinstance(data, (bytes, bytearray)):
            raise PhotoError(f"{label}: open the file in binary mode ('rb')")
        if max_bytes is not None and len(data) > max_bytes:
            raise PhotoError(f"{label}: over the {_megabytes(max_bytes)} limit (max_bytes={max_bytes})")
        return bytes(data), label
    if not isinstance(source, (str, os.PathLike)):
        raise PhotoError(f"expected a path, bytes or a binary file object, got {type(source).__name__}")
    path = Path(source)
    label = name or str(path)
    if path.is_dir():
        raise PhotoError(f"{label}: is a directory, not an image file")
    # Bounded: a device such as /dev/zero reports size 0 and never ends; it is refused, a pipe is read to the limit.
    return read_bounded(path, max_bytes, label=label, error=PhotoError, hint=f" (max_bytes={max_bytes})"), label


class _PilPixelLimit:
    """Lets Pillow open images up to `max_pixels` even above its own global bomb limit, restoring it afterwards.

    Pillow's `Image.MAX_IMAGE_PIXELS` is only raised (under a lock, for the duration of the decode) when the caller
    allows more pixels than Pillow would; otherwise the global is left untouched and our own, stricter check
    on the header size does the refusing. DecompressionBombWarning and Pillow's metadata warnings are silenced
    locally (we decide ourselves).
    """

    def __init__(self, max_pixels: int | None):
        pil_limit = Image.MAX_IMAGE_PIXELS
        self.raise_limit = pil_limit is not None and (max_pixels is None or max_pixels > pil_limit)
        self.max_pixels = max_pixels
        self.saved = pil_limit
        self.warnings = warnings.catch_warnings()

    def __enter__(self):
        if self.raise_limit:
            _PIL_LIMIT_LOCK.acquire()
            self.saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = self.max_pixels
        self.warnings.__enter__()
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        # Pillow's notes on damaged metadata ("Corrupt EXIF data", "Tag data larger than file") are noise once the
        # pixels decode; damage that matters raises, and becomes the PhotoError.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        return self

    def __exit__(self, *exc_info):
        self.warnings.__exit__(*exc_info)
        if self.raise_limit:
            Image.MAX_IMAGE_PIXELS = self.saved
            _PIL_LIMIT_LOCK.release()
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_photo(source: PhotoSource, name: str | None = None, max_bytes: int | None = MAX_PHOTO_BYTES,
               max_pixels: int | None = MAX_PHOTO_PIXELS) -> Photo:
    """Decode a photo (path, bytes or binary file object) into an upright 8-bit RGB + gray `Photo`.

    Applies the EXIF orientation, keeps the first frame of animated/multi-page files (`frames` says how many there
    were), composites transparency on white and scales 16-bit data to 8 bits. Raises `PhotoError` (one line, naming
    the file) for a missing path, a directory, an empty file, a file over `max_bytes`, an image over `max_pixels`
    (checked from the header, before any pixel is decoded), data that is not an image, and truncated or corrupt
    data (the whole image is decoded here, so damage anywhere is found). `None` disables a limit.
    """
    data, label = _read_source(source, name, max_bytes)
    if not data:
        raise PhotoError(f"{label}: empty file (0 bytes)")
    try:
        with _PilPixelLimit(max_pixels), Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if max_pixels is not None and width * height > max_pixels:
                raise PhotoError(f"{label}: {width}×{height} = {width * height / 1e6:.1f} megapixels is over the "
                                 f"{max_pixels / 1e6:g}-megapixel limit (max_pixels; a decompression bomb?)")
            if width < 1 or height < 1:
                raise PhotoError(f"{label}: image has no pixels ({width}×{height})")
            frames = int(getattr(image, "n_frames", 1) or 1)
            if frames > 1:
                image.seek(0)
            image.load()
            file_format, source_mode = image.format, image.mode
            orientation = image.getexif().get(_ORIENTATION_TAG, 1)
            if orientation not in (2, 3, 4, 5, 6, 7, 8):
                orientation = 1
            upright = ImageOps.exif_transpose(image) if orientation != 1 else image
            rgb, gray = _normalise_image(upright)
    except PhotoError:
        raise
    except Image.DecompressionBombError as exc:
        raise PhotoError(f"{label}: over the pixel limit (max_pixels; a decompression bomb?): {_first_line(exc)}") \
            from None
    except UnidentifiedImageError:
        raise PhotoError(f"{label}: not an image file (Pillow cannot identify its format)") from None
    except UnsupportedModeError as exc:
        raise PhotoError(f"{label}: {exc}") from None
    except MemoryError:
        raise PhotoError(f"{label}: not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001 - decoders raise OSError, SyntaxError, ValueError, EOFError, struct.error...
        raise PhotoError(f"{label}: truncated or corrupt image ({_first_line(exc)})") from None
    return Photo(rgb=rgb, gray=gray, name=label, size=(rgb.shape[1], rgb.shape[0]), frames=frames,
                 mode=source_mode, format=file_format, exif_orientation=orientation)


def as_photo(source: Photo | np.ndarray | PhotoSource, name: str | None = None) -> Photo:
    """A Photo as is, an array wrapped, anything else decoded with `load_photo`."""
    if isinstance(source, Photo):
        return source
    if isinstance(source, np.ndarray):
        return photo_from_array(source, name or "<array>")
    if isinstance(source, Image.Image):
        rgb, gray = _normalise_pil(source, name or "<PIL image>")
        return Photo(rgb=rgb, gray=gray, name=name or "<PIL image>", size=(rgb.shape[1], rgb.shape[0]),
                     mode=source.mode, format=source.format)
    return load_photo(source, name=name)
