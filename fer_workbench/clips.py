"""Clip files: which inputs are videos, opening one with its limits checked, and decoding it as a stream.

``open_clip`` opens anything the FFmpeg inside OpenCV's PyPI wheels decodes (mp4, mov, avi, mkv, webm, animated
gif, ...) and checks it before any frame is decoded: a missing, empty or non-regular file, no decodable video
stream (an audio file, a damaged index), a frame size over ``MAX_FRAME_PIXELS`` or a header claiming more than
``MAX_FRAMES`` frames is a ``VideoError`` naming the file. ``FrameReader`` then decodes one frame at a time and
yields the frames to analyse (``every`` N-th, or about ``fps`` per second by timestamp, at most ``max_frames``);
skipped frames are only grabbed, never converted. Nothing holds more than a handful of frames, so a long 1080p
clip runs in constant memory (what is kept per analysed frame is its boxes and scores, a few hundred bytes, and
``key_frames`` small thumbnails). A clip that stops decoding early keeps the results of the frames it gave.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# FFmpeg's own log lines ("moov atom not found", "overread 8") would reach the terminal beside our one-line
# messages; OpenCV reads this once, when it first opens a clip.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2
import numpy as np

from fer_workbench.errors import WorkbenchError

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
                            ".3gp", ".ts", ".mts", ".ogv"})
ANIMATION_SUFFIXES = frozenset({".gif"})  # a video when it has more than one frame, else a photo
MAX_FRAME_PIXELS = 50_000_000  # the photo limit: 8K UHD (33 MP) passes, a header claiming 100k × 100k does not
MAX_FRAMES = 10_000_000  # about four days at 30 fps: a header claiming more is damaged or hostile
MAX_FPS = 1000.0  # a frame rate above this (or ≤ 0) is not believed; timestamps or 25 fps stand in
FALLBACK_FPS = 25.0


class VideoError(WorkbenchError):
    """A clip that cannot be used: missing, empty, not a decodable video, or over a limit."""


# ------------------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class ClipInfo:
    """What the container says: frame size, frame rate (None when not believable) and frame count (None when
    unknown)."""

    file: str
    width: int
    height: int
    fps: float | None
    frames_declared: int | None


def is_video_file(path: str | os.PathLike) -> bool:
    """A video by its name (``VIDEO_SUFFIXES``), or a ``.gif`` with more than one frame."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return True
    if suffix in ANIMATION_SUFFIXES and path.is_file():
        from PIL import Image

        try:
            with Image.open(path) as image:
                return int(getattr(image, "n_frames", 1) or 1) > 1
        except Exception:  # noqa: BLE001 -- unreadable: the photo path reports it
            return False
    return False


def _what_it_is(head: bytes) -> str:
    """Why FFmpeg could not open a file, guessed from its first bytes."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "a WAV audio file: no video stream"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "an MP3 audio file: no video stream"
    if head[:4] == b"fLaC":
        return "a FLAC audio file: no video stream"
    if head[4:8] == b"ftyp" and head[8:11] in (b"M4A", b"M4B"):
        return "an M4A audio file: no video stream"
    containers = {b"ftyp": "MP4/MOV", b"moov": "MP4/MOV", b"mdat": "MP4/MOV", b"free": "MP4/MOV"}
    kind = containers.get(head[4:8])
    if kind is None and head[:4] == b"RIFF":
        kind = "AVI" if head[8:12] == b"AVI " else "RIFF"
    if kind is None and head[:4] == b"\x1a\x45\xdf\xa3":
        kind = "Matroska/WebM"
    if kind is None and head[:4] == b"OggS":
        kind = "Ogg"
    if kind is None and head[:6] in (b"GIF87a", b"GIF89a"):
        kind = "GIF"
    if kind:
        return (f"a {kind} file FFmpeg cannot open: no video stream, or truncated or corrupt (e.g. the index at "
                "the end of an MP4 is missing)")
    return "not a video file FFmpeg can decode"


def open_clip(source: str | os.PathLike, name: str | None = None, max_pixels: int | None = MAX_FRAME_PIXELS,
              max_frames: int | None = MAX_FRAMES) -> tuple[cv2.VideoCapture, ClipInfo]:
    """An open ``cv2.VideoCapture`` (FFmpeg) on a clip and what its container says, after the checks of the module
    doc; raises ``VideoError`` naming the file. The caller releases the capture."""
    path = Path(source).expanduser()
    label = name or str(source)
    if not path.exists():
        raise VideoError(f"{label}: no such file")
    if not path.is_file():
        raise VideoError(f"{label}: {'is a directory' if path.is_dir() else 'not a regular file'}, not a video")
    size = path.stat().st_size
    if size == 0:
        raise VideoError(f"{label}: empty file (0 bytes)")
    # OpenCV's own "[ WARN ] ... can't be used to capture by name" would repeat what our message says
    quiet = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    finally:
        cv2.utils.logging.setLogLevel(quiet)
    if not capture.isOpened():
        with open(path, "rb") as handle:
            head = handle.read(16)
        raise VideoError(f"{label}: {_what_it_is(head)}")
    try:
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width < 1 or height < 1:
            raise VideoError(f"{label}: the video stream has no frame size ({width}×{height})")
        if max_pixels is not None and width * height > max_pixels:
            raise VideoError(f"{label}: frames of {width}×{height} = {width * height / 1e6:.1f} megapixels are over "
                             f"the {max_pixels / 1e6:g}-megapixel limit (MAX_FRAME_PIXELS)")
        declared = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        declared = int(declared) if math.isfinite(declared) and declared >= 1 else None
        if max_frames is not None and declared is not None and declared > max_frames:
            raise VideoError(f"{label}: the header claims {declared:,} frames, over the {max_frames:,}-frame limit "
                             "(MAX_FRAMES; a damaged header?)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = float(fps) if math.isfinite(fps) and 0 < fps <= MAX_FPS else None
    except BaseException:
        capture.release()
        raise
    return capture, ClipInfo(file=label, width=width, height=height, fps=fps, frames_declared=declared)


class FrameReader:
    """The frames of an open clip to analyse, one at a time: ``(index, time in seconds, BGR array)``.

    ``every``: analyse every N-th frame; ``fps``: instead, about this many frames per second of video (by the
    frames' timestamps, so variable-rate clips and GIFs with uneven delays sample evenly in time); ``max_frames``:
    stop after this many analysed frames. After iterating, ``decoded`` counts the frames read, ``ended`` says
    whether the stream was read to its end, and ``problem`` holds why decoding stopped early, if it did.
    """

    def __init__(self, capture: cv2.VideoCapture, info: ClipInfo, every: int = 1, fps: float | None = None,
                 max_frames: int | None = None):
        self.capture, self.info = capture, info
        self.every, self.fps, self.max_frames = every, fps, max_frames
        self.decoded = self.analysed = 0
        self.ended = False
        self.problem: str | None = None

    def expected(self) -> int | None:
        """How many frames will be analysed, when the container says how many it holds (for the progress bar)."""
        declared = self.info.frames_declared
        if declared is None:
            return self.max_frames
        if self.fps is not None:
            native = self.info.fps or FALLBACK_FPS
            count = math.ceil(declared * min(1.0, self.fps / native))
        else:
            count = math.ceil(declared / self.every)
        return min(count, self.max_frames) if self.max_frames else count

    def _time(self, previous: float | None) -> float:
        step = 1.0 / (self.info.fps or FALLBACK_FPS)
        msec = self.capture.get(cv2.CAP_PROP_POS_MSEC)
        if math.isfinite(msec) and msec >= 0 and (previous is None or msec / 1000.0 > previous):
            return msec / 1000.0
        return 0.0 if previous is None else previous + step

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        next_time, previous = None, None
        while self.max_frames is None or self.analysed < self.max_frames:
            try:
                grabbed = self.capture.grab()
            except cv2.error as exc:
                self.problem = f"the decoder failed at frame {self.decoded} ({str(exc).strip().splitlines()[-1]})"
                return
            if not grabbed:
                self.ended = True
                return
            index = self.decoded
            self.decoded += 1
            time = previous = self._time(previous)
            if self.fps is not None:
                if next_time is not None and time + 1e-6 < next_time:
                    continue
                next_time = (time if next_time is None else next_time) + 1.0 / self.fps
                while next_time <= time + 1e-6:
                    next_time += 1.0 / self.fps
            elif index % self.every:
                continue
            ok, frame = self.capture.retrieve()
            if not ok or frame is None:
                self.problem = f"frame {index} could not be decoded"
                return
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            self.analysed += 1
            yield index, time, frame


__all__ = ["ANIMATION_SUFFIXES", "MAX_FRAMES", "MAX_FRAME_PIXELS", "VIDEO_SUFFIXES", "ClipInfo", "FrameReader",
           "VideoError", "is_video_file", "open_clip"]
