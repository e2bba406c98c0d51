"""photos.py: robust decoding of ordinary photos, and the training-format conversion (to_gray48)."""

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from fer_workbench.data.folders import read_gray48
from fer_workbench.photos import (
    MAX_PHOTO_BYTES,
    MAX_PHOTO_PIXELS,
    Photo,
    PhotoError,
    _scale_to_uint8,
    as_photo,
    load_photo,
    photo_from_array,
    to_gray48,
)


def gradient_rgb(width=40, height=30) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) % 256], axis=2).astype(np.uint8)


def encode(image: Image.Image, fmt="PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def pil_gray(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb, "RGB").convert("L"))


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------------------ good inputs


def test_png_roundtrip_from_path_bytes_and_stream(tmp_path):
    rgb = gradient_rgb()
    path = tmp_path / "grad.png"
    Image.fromarray(rgb).save(path)
    photo = load_photo(path)
    assert isinstance(photo, Photo)
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == (30, 40, 3)
    np.testing.assert_array_equal(photo.rgb, rgb)
    np.testing.assert_array_equal(photo.gray, pil_gray(rgb))
    assert photo.size == (40, 30) and (photo.width, photo.height) == (40, 30)
    assert photo.name == str(path) and photo.format == "PNG" and photo.frames == 1 and photo.mode == "RGB"

    from_bytes = load_photo(path.read_bytes(), name="upload.png")
    assert from_bytes.name == "upload.png"
    np.testing.assert_array_equal(from_bytes.rgb, rgb)
    with path.open("rb") as stream:
        np.testing.assert_array_equal(load_photo(stream).rgb, rgb)
    np.testing.assert_array_equal(load_photo(str(path)).gray, photo.gray)


def test_grayscale_and_one_bit():
    gray = gradient_rgb()[:, :, 0]
    photo = load_photo(encode(Image.fromarray(gray, "L")))
    np.testing.assert_array_equal(photo.gray, gray)
    np.testing.assert_array_equal(photo.rgb, np.repeat(gray[:, :, None], 3, axis=2))

    bits = Image.fromarray(gray > 127).convert("1")
    photo = load_photo(encode(bits))
    assert photo.mode == "1"
    assert set(np.unique(photo.gray)) <= {0, 255}
    np.testing.assert_array_equal(photo.gray == 255, np.asarray(bits))


def test_alpha_is_composited_on_white():
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = (200, 0, 0)
    rgba[..., 3] = [[0, 255, 128], [0, 0, 0]]
    photo = load_photo(encode(Image.fromarray(rgba, "RGBA")))
    assert photo.mode == "RGBA"
    assert tuple(photo.rgb[0, 0]) == (255, 255, 255)  # fully transparent → white, not the hidden red
    assert tuple(photo.rgb[0, 1]) == (200, 0, 0)
    assert abs(int(photo.rgb[0, 2, 0]) - 228) <= 1 and abs(int(photo.rgb[0, 2, 1]) - 127) <= 1

    la = Image.fromarray(np.stack([np.full((2, 2), 10, np.uint8), np.array([[0, 255], [255, 0]], np.uint8)], 2), "LA")
    photo = load_photo(encode(la))
    np.testing.assert_array_equal(photo.gray, [[255, 10], [10, 255]])


def test_palette_modes():
    rgb = gradient_rgb()
    palette_image = Image.fromarray(rgb).quantize(colors=16)
    photo = load_photo(encode(palette_image))
    assert photo.mode == "P"
    np.testing.assert_array_equal(photo.rgb, np.asarray(palette_image.convert("RGB")))

    transparent = palette_image.copy()
    index = int(np.asarray(transparent)[0, 0])
    transparent.info["transparency"] = index
    photo = load_photo(encode(transparent, transparency=index))
    assert tuple(photo.rgb[0, 0]) == (255, 255, 255)

    pa = palette_image.convert("PA")  # PA exists only in memory (PNG cannot store it)
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, :10] = 0
    pa.putalpha(Image.fromarray(alpha))
    photo = as_photo(pa)
    assert (photo.rgb[:, :10] == 255).all()
    np.testing.assert_array_equal(photo.rgb[:, 10:], np.asarray(palette_image.convert("RGB"))[:, 10:])


@pytest.mark.parametrize("mode", ["LAB", "HSV", "YCbCr", "RGBX", "I;16B", "I;16L", "I", "F", "La", "RGBa", "PA"])
def test_every_pillow_mode_normalises(mode):
    photo = as_photo(Image.new(mode, (4, 3)))
    assert photo.rgb.shape == (3, 4, 3) and photo.rgb.dtype == np.uint8 and photo.gray.shape == (3, 4)


def test_cmyk_jpeg():
    rgb = gradient_rgb()
    cmyk = Image.fromarray(rgb).convert("CMYK")
    data = encode(cmyk, "JPEG", quality=95)
    photo = load_photo(data)
    assert photo.mode == "CMYK" and photo.rgb.shape == (30, 40, 3)
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    assert np.abs(photo.rgb.astype(int) - expected).max() <= 1


def test_sixteen_bit_is_scaled_not_clipped():
    values = np.array([[0, 257, 32896, 65535]], np.uint16)
    photo = load_photo(encode(Image.fromarray(values)))  # a 16-bit grayscale PNG
    assert photo.mode.startswith("I")
    np.testing.assert_array_equal(photo.gray, [[0, 1, 128, 255]])
    # Pillow's own convert("L") clips 16-bit data at 255 — what read_gray48 would do
    assert np.asarray(Image.fromarray(values).convert("L")).tolist() == [[0, 255, 255, 255]]


def test_scale_to_uint8_rules():
    np.testing.assert_array_equal(_scale_to_uint8(np.array([0, 65535], np.uint16), True), [0, 255])
    np.testing.assert_array_equal(_scale_to_uint8(np.array([0.0, 0.5, 1.0], np.float32), False), [0, 128, 255])
    np.testing.assert_array_equal(_scale_to_uint8(np.array([0, 100, 255], np.int32), False), [0, 100, 255])
    np.testing.assert_array_equal(_scale_to_uint8(np.array([0, 65535], np.int32), False), [0, 255])
    np.testing.assert_array_equal(_scale_to_uint8(np.array([-10, 10], np.int32), False), [0, 255])
    np.testing.assert_array_equal(_scale_to_uint8(np.array([np.nan, 1.0, 0.0]), False), [0, 255, 0])
    np.testing.assert_array_equal(_scale_to_uint8(np.array([-7, -7], np.int32), False), [0, 0])
    float_tiff = encode(Image.fromarray(np.array([[0.0, 0.25, 1.0]], np.float32), "F"), "TIFF")
    np.testing.assert_array_equal(load_photo(float_tiff).gray, [[0, 64, 255]])


def test_exif_orientation_is_applied():
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)  # left half red
    stored[:, 20:] = (0, 0, 255)  # right half blue
    image = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    photo = load_photo(encode(image, "JPEG", quality=95, exif=exif.tobytes()))
    assert photo.exif_orientation == 6
    assert photo.size == (20, 40) and photo.rgb.shape == (40, 20, 3)  # portrait now
    top, bottom = photo.rgb[:15].reshape(-1, 3).mean(0), photo.rgb[25:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 50  # clockwise: the left (red) side is now on top
    assert bottom[2] > 200 and bottom[0] < 50

    plain = load_photo(encode(image, "JPEG", quality=95))
    assert plain.exif_orientation == 1 and plain.size == (40, 20)


def test_animated_gif_first_frame():
    frames = [Image.new("RGB", (8, 6), color) for color in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    photo = load_photo(buffer.getvalue())
    assert photo.frames == 3 and photo.format == "GIF"
    assert photo.rgb.shape == (6, 8, 3)
    assert tuple(photo.rgb[3, 4]) == (255, 0, 0)


def test_arrays_and_as_photo():
    rgb = gradient_rgb()
    photo = photo_from_array(rgb)
    assert photo.size == (40, 30) and photo.mode == "array"
    np.testing.assert_array_equal(photo.gray, pil_gray(rgb))
    gray = photo_from_array(rgb[:, :, 0])
    np.testing.assert_array_equal(gray.rgb[:, :, 2], rgb[:, :, 0])
    as_float = photo_from_array(rgb.astype(np.float32) / 255.0)
    assert np.abs(as_float.rgb.astype(int) - rgb).max() <= 1
    as16 = photo_from_array(rgb.astype(np.uint16) * 257)
    np.testing.assert_array_equal(as16.rgb, rgb)
    rgba = np.concatenate([rgb, np.zeros((30, 40, 1), np.uint8)], axis=2)
    assert (photo_from_array(rgba).rgb == 255).all()
    assert as_photo(photo) is photo
    assert as_photo(Image.fromarray(rgb)).size == (40, 30)
    for bad in (np.zeros((4, 4, 2), np.uint8), np.zeros((0, 4), np.uint8), np.zeros(5, np.uint8),
                np.array([["a"]])):
        with pytest.raises(PhotoError):
            photo_from_array(bad)


# ---------------------------------------------------------------------------------- same conversion as training


@pytest.mark.parametrize("size,mode", [((100, 80), "RGB"), ((48, 48), "RGB"), ((61, 61), "L"), ((30, 52), "RGB")])
def test_to_gray48_matches_read_gray48(tmp_path, size, mode):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    path = tmp_path / "face.png"
    image.save(path)
    expected = read_gray48(path)
    assert expected.shape == (48, 48)
    np.testing.assert_array_equal(to_gray48(load_photo(path).rgb), expected)
    np.testing.assert_array_equal(to_gray48(load_photo(path).gray), expected)
    np.testing.assert_array_equal(to_gray48(Image.open(path)), expected)


# -------------------------------------------------------------------------------------------------- bad inputs


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(PhotoError, match="no such file") as info:
        load_photo(tmp_path / "nope.jpg")
    assert "nope.jpg" in one_line(info)
    with pytest.raises(PhotoError, match="is a directory") as info:
        load_photo(tmp_path)
    assert str(tmp_path) in one_line(info)


def test_empty_and_not_an_image(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(PhotoError, match=r"empty\.jpg: empty file"):
        load_photo(empty)
    text = tmp_path / "notes.png"
    text.write_text("these are not pixels\n" * 10)
    with pytest.raises(PhotoError, match=r"notes\.png: not an image") as info:
        load_photo(text)
    one_line(info)
    with pytest.raises(PhotoError, match="upload: not an image"):
        load_photo(b"\x00\x01garbage", name="upload")
    with pytest.raises(PhotoError, match="expected a path"):
        load_photo(12345)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF"])
def test_truncated_files(tmp_path, fmt):
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PhotoError, match="truncated or corrupt") as info:
        load_photo(path)
    assert path.name in one_line(info)


def test_corrupt_png_checksum(tmp_path):
    data = bytearray(encode(Image.fromarray(gradient_rgb())))
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF  # flip bits inside the compressed pixels: zlib or CRC error
    with pytest.raises(PhotoError, match="truncated or corrupt"):
        load_photo(bytes(data), name="bad.png")


def test_byte_limit(tmp_path):
    data = encode(Image.fromarray(gradient_rgb()))
    path = tmp_path / "big.png"
    path.write_bytes(data)
    with pytest.raises(PhotoError, match=r"big\.png: .* over the .* limit \(max_bytes=100\)"):
        load_photo(path, max_bytes=100)
    with pytest.raises(PhotoError, match="max_bytes=100"):
        load_photo(data, max_bytes=100)
    with pytest.raises(PhotoError, match="over the"):
        load_photo(io.BytesIO(data), max_bytes=100)
    assert load_photo(data, max_bytes=None).size == (40, 30)
    assert MAX_PHOTO_BYTES == 30_000_000 and MAX_PHOTO_PIXELS == 50_000_000


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height pixels (a decompression bomb's signature)."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def test_pixel_limit_and_bombs_leave_pil_global_alone(monkeypatch):
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(PhotoError, match=r"40×30 = 0.0 megapixels is over the 0.001-megapixel limit"):
        load_photo(encode(Image.fromarray(gradient_rgb())), max_pixels=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not leak out
        with pytest.raises(PhotoError, match="megapixel limit") as info:
            load_photo(png_claiming(10_000, 9_000), name="bomb.png")  # 90 MP: over ours; Pillow only warns
    assert one_line(info).startswith("bomb.png:")
    with pytest.raises(PhotoError, match="pixel limit"):
        load_photo(png_claiming(20_000, 20_000), name="bomb.png")  # 400 MP: Pillow itself refuses to open it
    assert Image.MAX_IMAGE_PIXELS == before


def test_pixel_limit_above_pillows_is_temporary(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # pretend Pillow's limit is tiny
    data = encode(Image.fromarray(np.zeros((100, 100), np.uint8)))  # 10 000 px: Pillow alone would refuse
    assert load_photo(data).size == (100, 100)  # max_pixels decides, not the global
    assert load_photo(data, max_pixels=None).size == (100, 100)
    assert load_photo(data, max_pixels=20_000).size == (100, 100)
    assert Image.MAX_IMAGE_PIXELS == 1000
    with pytest.raises(PhotoError, match="megapixel limit"):
        load_photo(data, max_pixels=5_000)
    assert Image.MAX_IMAGE_PIXELS == 1000
