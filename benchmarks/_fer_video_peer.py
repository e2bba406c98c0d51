"""Times the `fer` package's `Video(...).analyze(FER(mtcnn=False))` on a clip, on request, answering in JSON lines.

Run by bench_video.py with the PEER environment's Python (never the project's: `fer` is not a dependency; the
environment recipe is in benchmarks/bench_photo_predict.py's docstring):

    PEER_PYTHON benchmarks/_fer_video_peer.py --clip CLIP.mp4 [--warmup-frames 10]

It imports fer, builds the detector, analyses the clip's first --warmup-frames frames once (model loading), prints
one JSON line (version, import time) and then answers commands read from stdin, one JSON line each:

    analyze     one timed pass over the whole clip, every frame: {"seconds", "frames_with_faces", "faces", "labels"}
    quit

Each pass is `Video(clip).analyze(detector, frequency=1, display=False, save_frames=False, save_video=False,
annotate_frames=False, zip_images=False)`: fer decodes the clip itself (OpenCV), detects (Haar), crops and classifies
every frame, and writes no frames or video (only its default result file, a small data.csv in the working folder,
which bench_video.py sets to a scratch folder). OpenCV's headless wheel has no GUI, so `cv2.waitKey` (which `analyze`
calls once per frame) and `cv2.destroyAllWindows` (called on cleanup) are replaced by no-ops, which can only make the
peer faster.
Imports only fer, OpenCV and the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", required=True)
    parser.add_argument("--warmup-frames", type=int, default=10)
    args = parser.parse_args()

    start = time.perf_counter()
    import cv2

    cv2.waitKey = lambda *_: -1  # headless OpenCV: "The function is not implemented"
    cv2.destroyAllWindows = lambda: None
    try:
        from fer import FER
    except ImportError:  # fer 25.10.x's __init__ no longer re-exports FER
        from fer.fer import FER
    import fer
    from fer.classes import Video

    import_s = time.perf_counter() - start
    detector = FER(mtcnn=False)
    scratch = tempfile.mkdtemp(prefix="fer-video-peer-")  # Video() makes its output folder even if nothing is saved
    options = {"display": False, "save_frames": False, "save_video": False, "annotate_frames": False,
               "zip_images": False, "frequency": 1}
    start = time.perf_counter()
    Video(args.clip, outdir=scratch).analyze(detector, max_results=args.warmup_frames, **options)
    say({"fer_version": getattr(fer, "__version__", "?"), "python": sys.executable, "opencv": cv2.__version__,
         "import_s": import_s, "warmup_s": time.perf_counter() - start})

    for line in sys.stdin:
        command = line.strip()
        if command == "analyze":
            start = time.perf_counter()
            rows = Video(args.clip, outdir=scratch).analyze(detector, **options)  # one dict per frame with faces
            seconds = time.perf_counter() - start
            faces = sum(key.startswith("box") for row in rows for key in row)
            emotions = [key[:-1] for key in (rows[0] if rows else {}) if key.endswith("0") and key != "box0"]
            labels = [max(emotions, key=lambda e, row=row: row[f"{e}0"]) for row in rows[:3]] if emotions else []
            say({"seconds": seconds, "frames_with_faces": len(rows), "faces": faces, "labels": labels})
        elif command == "quit":
            break
        else:
            say({"error": f"unknown command {command!r}"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
