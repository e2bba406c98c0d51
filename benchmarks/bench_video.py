"""Video speed: analysed frames per second at 640×480 with every frame analysed, vs the `fer` package's `Video`;
and memory on long 1080p clips.

Usage: python benchmarks/bench_video.py [--model PATH] [--seconds 10] [--rounds 2] [--detector auto]
                                        [--peer-python /tmp/peer-venv/bin/python ...] [--memory-seconds 8,32]

Clip: 640×480 at 30 fps, --seconds long, MPEG-4 part 2 in .mp4 (what OpenCV's wheels write), built from scikit-image's
photos: the astronaut (a 300-pixel tile, her face about 90 pixels) gliding back and forth over a dimmed coffee-cup
photo, one face in every frame.

Ours: `FacePredictor(model, detector).predict_video(clip)` with every frame analysed, as `fer-workbench predict CLIP`
runs it (full-frame detection five times a second, each face followed in a window around it in between, crops
classified in batches), and, to show where the speed comes from, the same with a full-frame detection on every
frame (`redetect=0`). Model: --model, else the shipped one, else an untrained model of its architecture.

Peer: `fer`'s `Video(clip).analyze(FER(mtcnn=False), frequency=1)` with nothing saved, timed by
benchmarks/_fer_video_peer.py in its own environment (--peer-python; the recipe is in bench_photo_predict.py's
docstring: use the newest fer, 25.10.x). Our runs and the peer's alternate for --rounds rounds, so a busy machine
slows both alike; the figures are medians. Targets: ≥ 25 analysed frames per second, and ≥ 3 × the peer's.

Memory: 1080p clips of the --memory-seconds lengths, analysed at 5 frames per second: the peak resident memory of
this process during each analysis, above its level before. Frames are decoded and analysed as a stream, so the
peak does not grow with the clip (results add a few hundred bytes per analysed frame). `--memory-seconds 0` skips it.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import PeerWorker

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TARGET_FPS = 25.0
TARGET_RATIO = 3.0
PEER_SCRIPT = Path(__file__).resolve().parent / "_fer_video_peer.py"


def write_moving_face_clip(path: Path, seconds: float, size=(640, 480), fps: float = 30.0) -> Path:
    """The benchmark clip: the astronaut gliding back and forth over a dimmed photo (one face per frame)."""
    import cv2
    import numpy as np
    from skimage import data

    width, height = size
    side = round(300 * height / 480)
    tile = cv2.resize(np.ascontiguousarray(data.astronaut()[20:380, 80:440, ::-1]), (side, side),
                      interpolation=cv2.INTER_AREA)
    background = (cv2.resize(data.coffee()[:, :, ::-1], size, interpolation=cv2.INTER_AREA) * 0.55).astype(np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    travel = width - side
    for k in range(round(seconds * fps)):
        x = round(travel * (0.5 - 0.5 * math.cos(2 * math.pi * k / (4 * fps))))  # there and back in 4 s
        y = round((height - side) * (0.5 + 0.3 * math.sin(k / fps)))
        frame = background.copy()
        frame[y:y + side, x:x + side] = tile
        writer.write(frame)
    writer.release()
    return path


class Peer(PeerWorker):
    """benchmarks/_fer_video_peer.py under another environment's Python, answering one JSON line per command."""

    def __init__(self, python: str, clip: Path, workdir: Path, timeout: float = 600):
        super().__init__(python, [str(PEER_SCRIPT), "--clip", str(clip)], timeout, cwd=workdir)


class PeakMemory:
    """The highest resident memory of this process (sampled every 20 ms) while the block runs, in bytes."""

    def __enter__(self):
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.before = self.peak = self._resident()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _resident(self) -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * self.page

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self._resident())
            time.sleep(0.02)

    def __exit__(self, *exc_info):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self._resident())
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a .keras file (default: the shipped model)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the 640×480 clip")
    parser.add_argument("--rounds", type=int, default=2, help="timed passes per side, alternating with the peers")
    parser.add_argument("--detector", default="auto", choices=["auto", "haar", "mtcnn"])
    parser.add_argument("--peer-python", action="append", default=[], metavar="PATH",
                        help="Python of an environment with the `fer` package (repeatable)")
    parser.add_argument("--memory-seconds", default="8,32", help="lengths of the 1080p clips (0: skip)")
    args = parser.parse_args()

    import cv2
    from _common import machine_line, model_for_benchmark

    from fer_workbench.predict import FacePredictor

    work = Path(tempfile.mkdtemp(prefix="bench-video-"))
    clip = write_moving_face_clip(work / "moving_face.mp4", args.seconds)
    frames = round(args.seconds * 30)

    peers: list[Peer] = []
    for python in args.peer_python:  # started first: their imports overlap our model loading
        try:
            peers.append(Peer(python, clip, work))
        except (OSError, RuntimeError) as exc:
            print(f"peer {python}: not measured ({exc})")

    model, described = model_for_benchmark(args.model)
    predictor = FacePredictor(model, detector=args.detector)
    print(f"model: {described}; detector {args.detector!r}\nclip: 640×480, 30 fps, {frames} frames "
          f"({clip.stat().st_size / 1e6:.1f} MB, mp4v), one face per frame; every frame analysed; {args.rounds} "
          f"round(s) per side; OpenCV threads {cv2.getNumThreads()}; {machine_line()}")
    predictor.predict_video(clip, max_frames=30, progress=False)  # warm-up: cascades, traced model

    variants = {"ours": {}, "ours, full-frame detection on every frame": {"redetect": 0.0}}
    ours: dict[str, list[float]] = {name: [] for name in variants}
    theirs: dict[int, list[dict]] = {i: [] for i in range(len(peers))}
    results = {}
    for turn in range(args.rounds):
        order = [*variants, *range(len(peers))]
        for side in order if turn % 2 == 0 else order[::-1]:
            if side in variants:
                start = time.perf_counter()
                results[side] = predictor.predict_video(clip, progress=False, **variants[side])
                ours[side].append(results[side].frames_analysed / (time.perf_counter() - start))
            elif side in theirs:
                try:
                    answer = peers[side].ask("analyze")
                except (OSError, RuntimeError) as exc:
                    print(f"peer {peers[side].python}: not measured ({exc})")
                    del theirs[side]
                    continue
                theirs[side].append({**answer, "fps": frames / answer["seconds"]})

    print()
    for name, rates in ours.items():
        result = results[name]
        labels = [face.label for frame in result.frames[:3] for face in frame.faces]
        print(f"{name}: {statistics.median(rates):.1f} analysed frames/s (median of {len(rates)}: "
              f"{', '.join(f'{r:.1f}' for r in rates)}); {result.frames_analysed} frames, {result.faces_found} faces, "
              f"{len(result.tracks)} track(s); first labels {labels}")
    fps = statistics.median(ours["ours"])
    print(f"  target ≥ {TARGET_FPS:g} analysed frames/s at 640×480: {'PASS' if fps >= TARGET_FPS else 'FAIL'}")
    print(f"  tracking between full-frame detections: × {fps / statistics.median(ours[list(variants)[1]]):.2f} "
          "the frames/s of detecting on every frame")
    if not theirs:
        why = "no --peer-python" if not args.peer_python else "every --peer-python failed, see above"
        print(f"peer: not measured ({why}; see bench_photo_predict.py's docstring for the peer-environment recipe)")
    for i, runs in theirs.items():
        if not runs:
            continue
        info = peers[i].info
        peer_fps = statistics.median(r["fps"] for r in runs)
        last = runs[-1]
        each = ", ".join(f"{r['fps']:.1f}" for r in runs)
        print(f"peer: fer {info['fer_version']} Video.analyze(FER(mtcnn=False)) in {peers[i].python} (import "
              f"{info['import_s']:.1f} s): {peer_fps:.1f} frames/s (median of {len(runs)}: {each}); "
              f"{last['frames_with_faces']} frames with faces, {last['faces']} faces; first labels {last['labels']}")
        ratio = fps / peer_fps
        print(f"  ours / fer {info['fer_version']}: {fps:.1f} / {peer_fps:.1f} frames/s = × {ratio:.2f}; "
              f"target ≥ × {TARGET_RATIO:g}: {'PASS' if ratio >= TARGET_RATIO else 'FAIL'}")
    for peer in peers:
        peer.close()

    lengths = [float(v) for v in args.memory_seconds.split(",") if float(v) > 0]
    if lengths:
        print("\nmemory, 1080p clips analysed at 5 frames/s (peak resident memory above the level before):")
        for seconds in lengths:
            long_clip = write_moving_face_clip(work / f"hd_{seconds:g}s.mp4", seconds, size=(1920, 1080))
            with PeakMemory() as memory:
                start = time.perf_counter()
                result = predictor.predict_video(long_clip, fps=5.0, progress=False)
                took = time.perf_counter() - start
            grew = (memory.peak - memory.before) / 1e6
            print(f"  {seconds:5g} s ({result.frames_total} frames, {result.frames_analysed} analysed, "
                  f"{result.frames_total / took:.0f} frames decoded/s): peak +{grew:.1f} MB "
                  f"({memory.peak / 1e6:.0f} MB resident)")
            long_clip.unlink()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
