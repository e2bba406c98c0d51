"""Latency of decode + face detection + 48×48 crop for an ordinary 512×512 photo: Haar vs MTCNN vs auto.

Usage: python benchmarks/bench_face_detection.py [--runs 15] [--copies 20] [--tune] [--skip-mtcnn]

The photo is skimage's astronaut portrait (a real face, bundled with scikit-image) as a 512×512 JPEG. Prints the
median wall and CPU milliseconds per photo over --runs runs, their ratios to a `fer`-package-equivalent Haar step
(cv2 decode + default cascade at full resolution, scaleFactor 1.1, minNeighbors 5, minSize 50 — what
`FER(mtcnn=False).detect_emotions` does before its emotion model; the real `fer` package is timed too when it is
installed), and faces/second over a folder of --copies files. --tune adds a table of Haar settings: CPU ms, recall on
skimage's 100 LFW faces (25×25, upscaled into a mosaic) and false positives on 16 face-free skimage photos.
Target: the Haar path well under half of the `fer` reference (end-to-end latency ≤ half of `fer`'s later).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np
from _common import astronaut_jpeg, timed  # benchmarks/_common.py (shared with bench_photo_predict)
from skimage import data as skimage_data

from fer_workbench import faces
from fer_workbench.photos import load_photo


def pipeline(data: bytes, detector: str, **kwargs):
    photo = load_photo(data, name="astronaut.jpg")
    found = faces.detect_faces(photo, detector, **kwargs)
    return faces.crop_faces(photo, found)


_fer_cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def fer_reference(data: bytes):
    """What `fer` does to find faces: decode to BGR, gray, default cascade on the full image."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    return _fer_cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE,
                                         minSize=(50, 50))


def lfw_mosaic(tiles: np.ndarray, face_px: int) -> tuple[np.ndarray, int]:
    """skimage's tight 25×25 LFW crops, upscaled to face_px, given edge-replicated context, in a 10-wide grid
    of square cells (returns the mosaic and the cell side)."""
    cols = 10
    cell = max(112, face_px * 2)
    rows = (len(tiles) + cols - 1) // cols
    out = np.full((rows * cell, cols * cell), 128, np.uint8)
    pad = (face_px * 25 // 18 - face_px) // 2
    for i, tile in enumerate(tiles):
        big = cv2.resize(tile, (face_px, face_px), interpolation=cv2.INTER_CUBIC)
        big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        r, c = divmod(i, cols)
        y, x = r * cell + (cell - big.shape[0]) // 2, c * cell + (cell - big.shape[1]) // 2
        out[y:y + big.shape[0], x:x + big.shape[1]] = big
    return out, cell


def tune_table(photo_bytes: bytes, runs: int) -> None:
    lfw = np.load(Path(skimage_data.__file__).parent / "lfw_subset.npy")
    tiles = (lfw[:100] * 255).round().astype(np.uint8)
    mosaics = {px: lfw_mosaic(tiles, px) for px in (48, 64, 96)}
    negatives = []
    for name in ("chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg",
                 "retina.jpg", "coins.png", "brick.png", "grass.png", "gravel.png", "page.png", "text.png",
                 "clock_motion.png", "color.png", "logo.png", "ihc.png"):
        path = Path(skimage_data.__file__).parent / name
        if path.exists():
            negatives.append(load_photo(path))
    astronaut = load_photo(photo_bytes)
    print(f"\nHaar settings (frontal cascade only; recall: LFW faces found of 100 at tight face sizes "
          f"{'/'.join(map(str, mosaics))} px; FP: boxes on {len(negatives)} face-free photos + extra astronaut boxes)")
    print(f"{'scaleFactor':>11} {'minNeighbors':>12} {'min_face':>8} {'CPU ms':>7} {'recall':>12} {'FP':>3}")
    for scale_factor, min_neighbors, min_face in [(1.1, 5, 48), (1.1, 4, 48), (1.15, 5, 48), (1.15, 3, 48),
                                                  (1.2, 3, 48), (1.1, 5, 40), (1.1, 5, 64), (1.2, 4, 64)]:
        settings = {"min_face": min_face, "scale_factor": scale_factor, "min_neighbors": min_neighbors,
                    "haar_fallbacks": False}
        _, cpu, found = timed(lambda settings=settings: faces.detect_faces(astronaut, "haar", **settings), runs)
        false_positives = len(found) - 1
        recall = []
        for mosaic, cell in mosaics.values():
            cells = {(int((y + h / 2) // cell), int((x + w / 2) // cell))
                     for x, y, w, h in (f.box for f in faces.detect_faces(mosaic, "haar", **settings))}
            recall.append(len(cells))
        false_positives += sum(len(faces.detect_faces(p, "haar", **settings)) for p in negatives)
        print(f"{scale_factor:>11} {min_neighbors:>12} {min_face:>8} {cpu:>7.1f} "
              f"{'/'.join(map(str, recall)):>12} {false_positives:>3}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--tune", action="store_true", help="also print the Haar settings table")
    parser.add_argument("--skip-mtcnn", action="store_true")
    args = parser.parse_args()

    photo_bytes = astronaut_jpeg()
    print(f"photo: skimage astronaut, 512×512 JPEG, {len(photo_bytes) / 1e3:.0f} kB; {args.runs} runs; "
          f"OpenCV threads {cv2.getNumThreads()}, {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")

    rows = {}
    for _ in range(3):
        fer_reference(photo_bytes), pipeline(photo_bytes, "haar")  # warm caches (cascades load on first use)
    rows["fer reference (decode + Haar 1.1/5/50)"] = timed(lambda: fer_reference(photo_bytes), args.runs)
    for label, fn in [("decode only (load_photo)", lambda: load_photo(photo_bytes)),
                      ("haar: decode+detect+crop", lambda: pipeline(photo_bytes, "haar")),
                      ("auto: decode+detect+crop", lambda: pipeline(photo_bytes, "auto"))]:
        rows[label] = timed(fn, args.runs)
    if not args.skip_mtcnn:
        start = time.perf_counter()
        faces.mtcnn_detector()
        pipeline(photo_bytes, "mtcnn")
        print(f"MTCNN first use (TensorFlow import + build + first call): {time.perf_counter() - start:.1f} s")
        rows["mtcnn: decode+detect+crop"] = timed(lambda: pipeline(photo_bytes, "mtcnn"), args.runs)
        rows["mtcnn at full res (min_face=20)"] = timed(lambda: pipeline(photo_bytes, "mtcnn", min_face=20),
                                                        args.runs)
    try:  # the real thing, when installed (it is not a dependency)
        from fer import FER  # type: ignore

        detector = FER(mtcnn=False)
        bgr = cv2.imdecode(np.frombuffer(photo_bytes, np.uint8), cv2.IMREAD_COLOR)
        detector.detect_emotions(bgr)
        rows["fer package FER(mtcnn=False).detect_emotions"] = timed(lambda: detector.detect_emotions(bgr),
                                                                     args.runs)
    except Exception as exc:  # noqa: BLE001
        print(f"(fer package not timed: {type(exc).__name__}: {str(exc)[:80]})")

    reference_wall, reference_cpu, _ = rows["fer reference (decode + Haar 1.1/5/50)"]
    print(f"\n{'':48} {'wall ms':>8} {'CPU ms':>8} {'wall/ref':>9} {'CPU/ref':>8} faces")
    for label, (wall, cpu, result) in rows.items():
        count = "-" if label.startswith("decode only") else len(result)
        print(f"{label:48} {wall:8.1f} {cpu:8.1f} {wall / reference_wall:9.2f} {cpu / reference_cpu:8.2f} {count}")

    folder = Path(tempfile.mkdtemp(prefix="bench-faces-"))
    for i in range(args.copies):
        (folder / f"photo_{i:03d}.jpg").write_bytes(photo_bytes)
    print(f"\nfolder of {args.copies} copies:")
    for detector in ["haar", "auto"] + ([] if args.skip_mtcnn else ["mtcnn"]):
        start, found = time.perf_counter(), 0
        for path in sorted(folder.iterdir()):
            photo = load_photo(path)
            found += len(faces.crop_faces(photo, faces.detect_faces(photo, detector)))
        seconds = time.perf_counter() - start
        print(f"  {detector:6} {found / seconds:7.1f} faces/s  ({args.copies / seconds:.1f} photos/s, "
              f"{found} faces)")
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()

    if args.tune:
        tune_table(photo_bytes, max(3, args.runs // 3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
