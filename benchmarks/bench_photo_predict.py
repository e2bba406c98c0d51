"""End-to-end latency for one 512×512 photo (decode, detect, crop, predict) vs the `fer` package, and faces/s.

Usage: python benchmarks/bench_photo_predict.py [--model PATH] [--runs 30] [--block 5] [--copies 20] [--detector auto]
                                                [--tta] [--peer-python /tmp/peer-venv/bin/python ...]

Our side: `FacePredictor(model).predict_photo(path)` on skimage's astronaut as a 512×512 JPEG file (the photo
bench_face_detection.py times), median wall and CPU ms over --runs calls after warm-up, with a breakdown (decode,
detect, crop, model, rest) from the same functions, called in turn. Model: --model, else the shipped FER2013
model, else an untrained model of its architecture (configs/fer2013-cpu.yaml; timings do not depend on the weights).

Peer side: `FER(mtcnn=False).detect_emotions(path)` of the `fer` package, timed by benchmarks/_fer_peer.py inside a
SEPARATE Python environment (--peer-python, repeatable: one line per environment) on the same file, the same number
of runs and the same warm-up. The peer process stays up and the two sides take turns (--block calls each, order
alternating), so a busy machine slows both alike; medians are over all calls. `fer` never goes into the project's
dependencies. Without --peer-python, or if the peer fails, the peer is reported as not measured.

Peer environment recipe, for the newest `fer` (25.10.x: Haar cascade + a quantised TensorFlow Lite emotion model
by default), with no TensorFlow download (the peer borrows this project's venv for everything but `fer`):

    python3 -m venv /tmp/peer-venv
    /tmp/peer-venv/bin/pip install --no-deps fer
    echo /work/main/.venv/lib/python3.11/site-packages \
        > /tmp/peer-venv/lib/python3.11/site-packages/zz_workbench_venv.pth

(the .pth line: TensorFlow (whose tf.lite.Interpreter runs fer's .tflite model), OpenCV (headless: has
CascadeClassifier and cv2.data), NumPy, Pillow and requests come from the project's venv; fer's declared
opencv-contrib-python, facenet-pytorch (torch; MTCNN only) and ffmpeg/moviepy (video only) are not needed for
FER(mtcnn=False). fer 25.10.x's `from fer import FER` is broken; the worker falls back to `from fer.fer import FER`.)
The older fer 22.5.1 (Keras emotion model) installs the same way plus the moviepy it imports:
`pip install --no-deps fer==22.5.1 "moviepy<2" proglog decorator imageio-ffmpeg`; pass both Pythons to compare.

Then faces/s (and photos/s) over a folder of --copies copies of the photo and over a small mixed folder (one-, two-,
four- and six-face composites of the astronaut, skimage's cameraman, a face-free photo) through
`FacePredictor.predict_paths([folder])`, and the same folders through the peer(s).
Target: end-to-end latency ≤ 0.5 × the `fer` package's, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import PeerWorker

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TARGET_RATIO = 0.5
PEER_SCRIPT = Path(__file__).resolve().parent / "_fer_peer.py"


def mixed_photos(directory: Path) -> Path:
    """A few photos with 0–6 faces, written as JPEGs (what a real folder of snapshots looks like)."""
    import numpy as np
    from PIL import Image
    from skimage import data as samples

    directory.mkdir(parents=True, exist_ok=True)
    face = samples.astronaut()
    mirror = face[:, ::-1]
    small = np.asarray(Image.fromarray(face).resize((256, 256), Image.BILINEAR))
    photos = {
        "1_astronaut.jpg": face,
        "2_two_faces.jpg": np.concatenate([face, mirror], axis=1),  # 1024×512
        "4_four_faces.jpg": np.concatenate([np.concatenate([face, mirror], 1), np.concatenate([mirror, face], 1)]),
        "6_six_small_faces.jpg": np.concatenate([np.concatenate([small, small[:, ::-1], small], 1)] * 2),  # 768×512
        "cameraman.jpg": samples.camera(),
        "no_face_coffee.jpg": samples.coffee(),
    }
    for name, pixels in photos.items():
        Image.fromarray(pixels).save(directory / name, quality=90)
    return directory


class Peer(PeerWorker):
    """benchmarks/_fer_peer.py running under another environment's Python, answering one JSON line per command."""

    def __init__(self, python: str, photo: Path, timeout: float = 300):
        super().__init__(python, [str(PEER_SCRIPT), "--photo", str(photo)], timeout, env={"TF_CPP_MIN_LOG_LEVEL": "2"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a .keras file (default: the shipped model)")
    parser.add_argument("--runs", type=int, default=30, help="timed calls on the single photo (each side)")
    parser.add_argument("--block", type=int, default=5, help="calls per side per turn when interleaving with peers")
    parser.add_argument("--copies", type=int, default=20, help="photos in the folder of copies")
    parser.add_argument("--detector", default="auto", choices=["auto", "haar", "mtcnn"])
    parser.add_argument("--tta", action="store_true", help="our side with ten-crop TTA (the peer has none)")
    parser.add_argument("--peer-python", action="append", default=[], metavar="PATH",
                        help="Python of an environment with the `fer` package (repeatable)")
    args = parser.parse_args()

    import cv2
    from _common import astronaut_jpeg, machine_line, model_for_benchmark, samples

    from fer_workbench import faces
    from fer_workbench.inference import CropPredictor
    from fer_workbench.photos import load_photo
    from fer_workbench.predict import FacePredictor

    work = Path(tempfile.mkdtemp(prefix="bench-photo-"))
    photo_path = work / "astronaut.jpg"
    photo_path.write_bytes(astronaut_jpeg())
    copies = work / "copies"
    copies.mkdir()
    for i in range(args.copies):
        (copies / f"photo_{i:03d}.jpg").write_bytes(photo_path.read_bytes())
    mixed = mixed_photos(work / "mixed")

    peers: list[Peer] = []
    for python in args.peer_python:  # started first: their imports overlap our model loading
        try:
            peers.append(Peer(python, photo_path))
        except (OSError, RuntimeError) as exc:
            print(f"peer {python}: not measured ({exc})")

    model, described = model_for_benchmark(args.model)
    predictor = FacePredictor(model, detector=args.detector, tta=args.tta)
    print(f"model: {described}; detector {args.detector!r}{', TTA' if args.tta else ''}\n"
          f"photo: skimage astronaut, 512×512 JPEG file, {photo_path.stat().st_size / 1e3:.0f} kB; {args.runs} runs "
          f"per side{f', interleaved with the peers in turns of {args.block}' if peers else ''}; "
          f"OpenCV threads {cv2.getNumThreads()}; {machine_line()}")
    for _ in range(3):
        predictor.predict_photo(photo_path)  # warm-up: cascades, traced model, caches
    if args.detector != "haar":
        predictor.predict_paths([mixed])  # "auto" falls back to MTCNN on a face-free photo: load it untimed

    ours = {"walls": [], "cpus": []}
    theirs: dict[int, dict] = {i: {"walls": [], "cpus": []} for i in range(len(peers))}
    done, turn = 0, 0
    while done < args.runs:
        n = min(args.block, args.runs - done)
        order = ["ours", *range(len(peers))]
        for side in (order if turn % 2 == 0 else order[::-1]):
            if side == "ours":
                walls, cpus, result = samples(lambda: predictor.predict_photo(photo_path), n)
                ours["walls"] += walls
                ours["cpus"] += cpus
            elif side in theirs:
                try:
                    answer = peers[side].ask(f"time {n}")
                except (OSError, RuntimeError) as exc:
                    print(f"peer {peers[side].python}: not measured ({exc})")
                    del theirs[side]
                    continue
                theirs[side]["walls"] += answer["walls"]
                theirs[side]["cpus"] += answer["cpus"]
                theirs[side]["last"] = answer
        done, turn = done + n, turn + 1
    wall, cpu = statistics.median(ours["walls"]), statistics.median(ours["cpus"])
    print(f"\nours: FacePredictor.predict_photo(path): {wall:.1f} ms wall, {cpu:.1f} ms CPU (median); "
          f"{len(result.faces)} face(s) {[f.box for f in result.faces]} {[f.label for f in result.faces]}")
    if not theirs:
        why = "no --peer-python" if not args.peer_python else "every --peer-python failed, see above"
        print(f"peer: not measured ({why}; see the docstring for the peer-environment recipe)")
    for i, times in theirs.items():
        info, last = peers[i].info, times["last"]
        peer_wall, peer_cpu = statistics.median(times["walls"]), statistics.median(times["cpus"])
        ratio = wall / peer_wall
        print(f"peer: fer {info['fer_version']} FER(mtcnn=False).detect_emotions(path), "
              f"{info.get('emotion_model', '?')} emotion model, in {peers[i].python} "
              f"(import {info['import_s']:.1f} s, first call {info['first_call_ms']:.0f} ms): {peer_wall:.1f} ms "
              f"wall, {peer_cpu:.1f} ms CPU (median); {last['faces']} face(s) {last['boxes']} {last['labels']}")
        print(f"  ours / fer {info['fer_version']}: wall {wall:.1f} / {peer_wall:.1f} ms = {ratio:.2f}, CPU "
              f"{cpu:.1f} / {peer_cpu:.1f} ms = {cpu / peer_cpu:.2f}; target ≤ {TARGET_RATIO} (wall): "
              f"{'PASS' if ratio <= TARGET_RATIO else 'FAIL'}")

    # Where our time goes: the steps predict_photo takes, timed one by one.
    photo = load_photo(photo_path)
    found = faces.detect_faces(photo, args.detector)
    crops = faces.crop_faces(photo, found)
    classify = CropPredictor(model, tta=args.tta)
    steps = {"decode (load_photo)": lambda: load_photo(photo_path),
             f"detect ({args.detector}, {len(found)} face)": lambda: faces.detect_faces(photo, args.detector),
             "crop to 48×48 (crop_faces)": lambda: faces.crop_faces(photo, found),
             f"model ({len(crops)} crop{', TTA' if args.tta else ''})": lambda: classify(crops)}
    timings: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label in steps}
    for _ in range(args.runs):  # the steps in turn, one call each, so that a load change hits them alike
        for label, fn in steps.items():
            walls, cpus, _ = samples(fn, 1)
            timings[label][0].extend(walls)
            timings[label][1].extend(cpus)
    parts = {label: (statistics.median(w), statistics.median(c)) for label, (w, c) in timings.items()}
    print(f"\n{'ours, step by step':32} {'wall ms':>8} {'CPU ms':>7} {'wall %':>6} {'CPU %':>6}")
    for label, (part_wall, part_cpu) in parts.items():
        print(f"  {label:30} {part_wall:8.1f} {part_cpu:7.1f} {part_wall / wall:6.0%} {part_cpu / cpu:6.0%}")
    rest_wall, rest_cpu = wall - sum(w for w, _ in parts.values()), cpu - sum(c for _, c in parts.values())
    print(f"  {'rest (bookkeeping, variance)':30} {rest_wall:8.1f} {rest_cpu:7.1f} {rest_wall / wall:6.0%} "
          f"{rest_cpu / cpu:6.0%}")

    print("\nfolders (one pass each, after warm-up):")
    for folder in (copies, mixed):
        start = time.perf_counter()
        results = predictor.predict_paths([folder])
        seconds = time.perf_counter() - start
        found_total = sum(len(r.faces) for r in results)
        print(f"  {'ours':11} {folder.name:7} {found_total / seconds:6.1f} faces/s {len(results) / seconds:6.1f} "
              f"photos/s ({found_total} faces in {len(results)} photos, {seconds:.2f} s)")
        if folder is mixed:
            print("    faces per file (detector when not Haar): " + ", ".join(
                f"{Path(r.file).name} {len(r.faces)}"
                + "".join(sorted({f' {f.detector}' for f in r.faces if f.detector != 'haar'})) for r in results))
        for i in theirs:
            try:
                entry = peers[i].ask(f"folder {folder}")
            except (OSError, RuntimeError) as exc:
                print(f"  fer: not measured ({exc})")
                continue
            label = f"fer {peers[i].info['fer_version']}"
            print(f"  {label:11} {folder.name:7} {entry['faces'] / entry['seconds']:6.1f} faces/s "
                  f"{entry['files'] / entry['seconds']:6.1f} photos/s ({entry['faces']} faces in {entry['files']} "
                  f"photos, {entry['seconds']:.2f} s)")
            if folder is mixed:
                print("    faces per file: " + ", ".join(f"{k} {v}" for k, v in entry["per_file"].items()))

    for peer in peers:
        peer.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
