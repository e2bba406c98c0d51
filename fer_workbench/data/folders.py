"""Image-folder datasets: the Kaggle FER2013 image release (`train/<class>/*.jpg`, `test/<class>/*.jpg`)
and any folder of `<class>/` images, converted to 48×48 grayscale."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from tqdm.auto import tqdm

from fer_workbench import CLASS_NAMES
from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError
from fer_workbench.photos import MAX_PHOTO_PIXELS, to_gray48

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}

# Folder names seen in FER datasets (FER2013, FER+, AffectNet, RAF-DB, CK+, JAFFE exports) → FER2013 class.
CLASS_ALIASES: dict[str, str] = {
    **{name: name for name in CLASS_NAMES},
    "anger": "angry", "angry": "angry", "mad": "angry",
    "disgusted": "disgust", "disgust": "disgust",
    "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happiness": "happy", "joy": "happy", "happy": "happy",
    "sadness": "sad", "sad": "sad",
    "surprised": "surprise", "surprise": "surprise",
    "neutrality": "neutral", "calm": "neutral",
}
SPLIT_FOLDERS = {
    "train": "Training", "training": "Training",
    "val": "PublicTest", "valid": "PublicTest", "validation": "PublicTest", "publictest": "PublicTest",
    "test": "PrivateTest", "testing": "PrivateTest", "privatetest": "PrivateTest",
}
FILE_PREFIX_SPLITS = {"publictest_": "PublicTest", "privatetest_": "PrivateTest", "training_": "Training"}
# A flat folder of `<class>/` images is treated as held-out data (the usual use: cross-dataset evaluation).
FLAT_SPLIT = "PrivateTest"


def class_index(folder_name: str) -> int | None:
    """FER2013 class index for a folder name (case-insensitive, aliases allowed), None if unknown."""
    canonical = CLASS_ALIASES.get(folder_name.strip().lower())
    return None if canonical is None else CLASS_NAMES.index(canonical)


def _class_dirs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def scan_image_folder(root: Path) -> tuple[list[tuple[Path, int, str]], list[str]]:
    """(path, class index, split) for every image file, and the class folders that were skipped."""
    top = _class_dirs(root)
    split_dirs = [d for d in top if d.name.lower() in SPLIT_FOLDERS]
    layout = [(d, SPLIT_FOLDERS[d.name.lower()]) for d in split_dirs] if split_dirs else [(root, FLAT_SPLIT)]
    entries, skipped = [], []
    for split_root, split in layout:
        for class_dir in _class_dirs(split_root):
            label = class_index(class_dir.name)
            if label is None:
                skipped.append(str(class_dir.relative_to(root)))
                continue
            for path in _images_in(class_dir):
                prefix_split = next((s for p, s in FILE_PREFIX_SPLITS.items() if path.name.lower().startswith(p)),
                                    None)
                entries.append((path, label, prefix_split or split))
    return entries, skipped


def read_gray48(path: Path, max_pixels: int | None = MAX_PHOTO_PIXELS) -> np.ndarray:
    """One image file as 48×48 uint8 grayscale (EXIF orientation applied, first frame of animations).

    An image over ``max_pixels`` (the photo limit, 50 megapixels) is refused from its header, before decoding.
    """
    with Image.open(path) as image:
        width, height = image.size
        if max_pixels is not None and width * height > max_pixels:
            raise ValueError(f"{width}×{height} = {width * height / 1e6:.1f} megapixels is over the "
                             f"{max_pixels / 1e6:g}-megapixel limit (a decompression bomb?)")
        image.seek(0)
        return to_gray48(ImageOps.exif_transpose(image))


def folder_fingerprint(root: Path, entries: list[tuple[Path, int, str]]) -> str:
    """Checksum over relative paths and file contents: identifies the folder's data, not its location."""
    digest = hashlib.sha256()
    for path, _, _ in entries:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load_image_folder(path: str | os.PathLike, skip_unreadable: bool = False, progress: bool = True) -> Dataset:
    """Load a folder of `<class>/` images, or `<split>/<class>/` images, into a Dataset."""
    root = Path(path)
    if not root.is_dir():
        raise WorkbenchError(f"{root}: not a directory")
    entries, skipped_classes = scan_image_folder(root)
    if skipped_classes:
        warnings.warn(f"{root}: skipped folders of classes FER2013 does not have: {', '.join(skipped_classes)}",
                      stacklevel=2)
    if not entries:
        raise WorkbenchError(f"{root}: no images in folders named after FER2013 classes "
                             f"({', '.join(CLASS_NAMES)} or aliases such as anger, happiness, sadness)")
    images, keep, unreadable = [], [], []
    for i, (file, _, _) in enumerate(tqdm(entries, desc=f"reading {root.name}", disable=not progress,
                                          unit="img", leave=False)):
        try:
            images.append(read_gray48(file))
            keep.append(i)
        except MemoryError:
            unreadable.append((str(file), "not enough memory to decode it"))
        except Exception as exc:  # noqa: BLE001 -- decoders raise OSError, ValueError, SyntaxError, struct.error...
            unreadable.append((str(file), str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__))
    if unreadable and not skip_unreadable:
        shown = "; ".join(f"{p} ({why})" for p, why in unreadable[:5])
        more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
        raise WorkbenchError(f"{root}: {len(unreadable)} unreadable image{'s' if len(unreadable) > 1 else ''}: "
                             f"{shown}{more} (skip_unreadable=True / --skip-bad-rows drops them)")
    if not keep:
        raise WorkbenchError(f"{root}: none of the {len(entries)} images could be read")
    keep = np.asarray(keep)
    return Dataset(
        images=np.stack(images),
        labels=np.array([entries[i][1] for i in keep], dtype=np.int64),
        splits=np.array([entries[i][2] for i in keep]),
        row_ids=keep.astype(np.int64),
        source=str(root),
        checksum=folder_fingerprint(root, entries),
        paths=np.array([str(entries[i][0].relative_to(root)) for i in keep]),
        skipped_rows=tuple(unreadable),
        skipped_classes=tuple(sorted({Path(c).name for c in skipped_classes})),
    )
