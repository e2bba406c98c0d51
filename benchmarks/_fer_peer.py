"""Times the `fer` package's `FER(mtcnn=False).detect_emotions` on photo files, on request, answering in JSON lines.

Run by bench_photo_predict.py with the PEER environment's Python (never the project's: `fer` is not a dependency):

    PEER_PYTHON benchmarks/_fer_peer.py --photo PHOTO.jpg [--warmup 3]

It imports fer, builds the detector, makes the first and --warmup more calls, prints one JSON line (version,
import/first-call times) and then answers commands read from stdin, one JSON line each:

    time N        N timed calls on PHOTO: {"walls": [ms...], "cpus": [ms...], "faces": ..., "boxes": ..., "labels": ...}
    folder DIR    one pass over the files in DIR (sorted): {"files", "faces", "seconds", "per_file"}
    quit

so the benchmark can interleave blocks of our calls and the peer's and both see the same machine load. Each timed
call is `detector.detect_emotions(path)`: fer decodes the file itself (cv2.imread), so the figure is end-to-end
like ours (decode, Haar detection, crop, emotion model). Imports only fer, OpenCV and the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", required=True)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    start = time.perf_counter()
    try:
        from fer import FER
    except ImportError:  # fer 25.10.x's __init__ no longer re-exports FER
        from fer.fer import FER
    import cv2
    import fer

    import_s = time.perf_counter() - start
    detector = FER(mtcnn=False)
    photo = str(Path(args.photo).resolve())
    start = time.perf_counter()
    detector.detect_emotions(photo)
    first_ms = (time.perf_counter() - start) * 1000
    for _ in range(args.warmup):
        detector.detect_emotions(photo)
    say({"fer_version": getattr(fer, "__version__", "?"), "python": sys.executable, "opencv": cv2.__version__,
         "emotion_model": "TensorFlow Lite" if getattr(detector, "use_tflite", False) else "Keras",
         "opencv_threads": cv2.getNumThreads(), "import_s": import_s, "first_call_ms": first_ms})

    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "time":
            walls, cpus, result = [], [], []
            for _ in range(int(argument)):
                wall, cpu = time.perf_counter(), time.process_time()
                result = detector.detect_emotions(photo)
                walls.append((time.perf_counter() - wall) * 1000)
                cpus.append((time.process_time() - cpu) * 1000)
            say({"walls": walls, "cpus": cpus, "faces": len(result),
                 "boxes": [[int(v) for v in f["box"]] for f in result],
                 "labels": [max(f["emotions"], key=f["emotions"].get) for f in result]})
        elif command == "folder":
            files = sorted(str(p) for p in Path(argument).iterdir() if p.is_file())
            start, faces, per_file = time.perf_counter(), 0, {}
            for path in files:
                found = len(detector.detect_emotions(path))
                per_file[Path(path).name] = found
                faces += found
            say({"files": len(files), "faces": faces, "seconds": time.perf_counter() - start,
                 "per_file": per_file})
        elif command == "quit":
            break
        else:
            say({"error": f"unknown command {line.strip()!r}"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
