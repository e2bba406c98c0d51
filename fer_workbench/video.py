"""Video: a clip decoded as a stream (``clips``), faces found and tracked through it, an emotion timeline per
person.

Analysing
---------
``predict_video`` runs the photo predictor's detector and model on the frames, with tracking in between:

* a full-frame detection (``faces.detect_faces``, the predictor's detector) at the first frame, after every scene
  cut and whenever ``redetect`` seconds have passed since the last one;
* on the frames in between, each live track is looked for only in a window around where it should be (its box
  widened half a box side each way, faces of at least 0.7 of its side), which costs a fraction of a full scan; a
  track the full scan missed is looked for the same way;
* a box that would start a new track is confirmed first by a second look at its window at that finer scale (with
  Haar; MTCNN's boxes already passed its 0.9 probability): a coarse full scan's stray boxes on background texture
  seldom survive it, so they do not become one-frame "people";
* ``tracking.FaceTracker`` pairs the boxes with tracks (Hungarian assignment on overlap and centre distance),
  new faces get new ids, tracks unseen for ``MAX_GAP_SECONDS`` end, and a scene cut
  (``tracking.SceneCutDetector``) ends them all;
* face crops are cut exactly as for photos (``faces.crop_faces``) and classified in batches of several frames
  (one model call per batch), then ``smooth`` seconds of per-track exponential smoothing may be applied.

A face's ``detector`` says which detector found its box in that frame ("haar" or "mtcnn"). With the "auto"
detector, full scans fall back to MTCNN when Haar finds nothing (as for photos), and a track found by MTCNN is
followed with MTCNN in its window; everything else is Haar's.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer_workbench import faces
from fer_workbench.clips import (
    VIDEO_SUFFIXES,
    ClipInfo,
    FrameReader,
    VideoError,
    is_video_file,
    open_clip,
)
from fer_workbench.errors import WorkbenchError
from fer_workbench.photos import Photo
from fer_workbench.tracking import CUT_DISTANCE, FaceTracker, SceneCutDetector, ScoreSmoother, iou_matrix

REDETECT_SECONDS = 0.2  # full-frame detection at least this often (every 5th frame at 25 fps)
ROI_MARGIN = 0.5  # a track is looked for within this many box sides around its predicted box...
ROI_MIN_FACE = 0.7  # ...for faces at least this share of its side (a face does not shrink faster between frames)
BATCH_FRAMES = 8  # analysed frames whose crops go through the model in one call...
BATCH_CROPS = 32  # ...or fewer, once this many crops are waiting
KEY_FRAMES = 8  # at most this many thumbnails are kept, spread evenly over the clip
KEY_FRAME_SIDE = 480  # thumbnails' longest side, pixels


# ------------------------------------------------------------------------------------------------------ results


@dataclass
class VideoFace:
    """One face in one analysed frame."""

    track: int
    box: tuple[int, int, int, int]  # x, y, w, h in the frame's pixels
    label: str
    scores: np.ndarray = field(repr=False)  # the model's class probabilities (smoothed when asked), float32
    detector: str

    def to_dict(self, class_names) -> dict:
        return {"track": self.track, "box": [int(v) for v in self.box], "label": self.label,
                "scores": {k: round(float(v), 6) for k, v in zip(class_names, self.scores, strict=True)},
                "detector": self.detector}


@dataclass
class VideoFrame:
    index: int  # position in the clip, counting from 0 (every frame counts, analysed or not)
    time: float  # seconds from the start
    faces: list[VideoFace]


@dataclass
class TrackSummary:
    """One person followed through the clip: when first and last seen, in how many analysed frames, and the sum
    of the scores reported for them (so ``mean_scores`` and ``dominant_label``)."""

    track: int
    first_time: float
    last_time: float
    first_frame: int
    last_frame: int
    frames: int
    score_sum: np.ndarray = field(repr=False)

    @property
    def mean_scores(self) -> np.ndarray:
        return self.score_sum / max(self.frames, 1)


@dataclass
class KeyFrame:
    """A small copy of one analysed frame (``rgb``, ``scale`` × the original size) with its faces."""

    index: int
    time: float
    rgb: np.ndarray = field(repr=False)
    scale: float
    faces: list[VideoFace]


@dataclass
class VideoPrediction:
    """Everything ``predict_video`` found in one clip. ``error`` says what went wrong (unreadable clip, decoding
    stopped early, no face found); ``readable`` is False when not one frame could be decoded."""

    file: str
    class_names: list[str] = field(default_factory=list)
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    frames_total: int | None = None  # frames in the clip (counted when read to the end, else the header's)
    frames_analysed: int = 0
    frames: list[VideoFrame] = field(default_factory=list, repr=False)
    tracks: list[TrackSummary] = field(default_factory=list)
    key_frames: list[KeyFrame] = field(default_factory=list, repr=False)
    cuts: list[int] = field(default_factory=list)  # frame indexes where a new shot starts
    error: str | None = None
    readable: bool = True

    @property
    def message(self) -> str | None:
        """The problem as one line naming the file once."""
        if self.error is None:
            return None
        return self.error if self.error.startswith(f"{self.file}: ") else f"{self.file}: {self.error}"

    @property
    def faces_found(self) -> int:
        return sum(len(frame.faces) for frame in self.frames)

    def dominant_label(self, track: TrackSummary) -> str:
        """The class with the highest mean probability over the track's frames."""
        return self.class_names[int(np.argmax(track.mean_scores))]

    def tracks_dicts(self) -> list[dict]:
        return [{"track": t.track, "first_time": round(t.first_time, 3), "last_time": round(t.last_time, 3),
                 "dominant_label": self.dominant_label(t)} for t in self.tracks]

    def to_dict(self) -> dict:
        """The ``predict --json`` document of a clip."""
        return {"file": self.file, "fps": None if self.fps is None else round(self.fps, 3),
                "width": self.width, "height": self.height, "frames_total": self.frames_total,
                "frames_analysed": self.frames_analysed, "cuts": list(self.cuts), "tracks": self.tracks_dicts(),
                "frames": [{"index": f.index, "time": round(f.time, 3),
                            "faces": [face.to_dict(self.class_names) for face in f.faces]} for f in self.frames],
                "error": self.error}

    def to_rows(self) -> list[dict]:
        """One row per frame × face: file, frame, time, track, x, y, w, h, label, detector, one column per class."""
        rows = []
        for frame in self.frames:
            for face in frame.faces:
                x, y, w, h = face.box
                row = {"file": self.file, "frame": frame.index, "time": round(frame.time, 3), "track": face.track,
                       "x": x, "y": y, "w": w, "h": h, "label": face.label, "detector": face.detector}
                row.update({k: round(float(v), 6) for k, v in zip(self.class_names, face.scores, strict=True)})
                rows.append(row)
        return rows

    def faces_table(self) -> pd.DataFrame:
        """``to_rows`` as a table, without the file column."""
        columns = ["frame", "time", "track", "x", "y", "w", "h", "label", "detector", *self.class_names]
        return pd.DataFrame(self.to_rows(), columns=["file", *columns])[columns]

    def tracks_table(self) -> pd.DataFrame:
        """One row per track: when it was seen, in how many analysed frames, its dominant label and mean score."""
        rows = [{"track": t.track, "first (s)": round(t.first_time, 2), "last (s)": round(t.last_time, 2),
                 "frames": t.frames, "dominant label": self.dominant_label(t),
                 "mean score": round(float(t.mean_scores.max()), 3)} for t in self.tracks]
        return pd.DataFrame(rows, columns=["track", "first (s)", "last (s)", "frames", "dominant label",
                                           "mean score"])

    def track_series(self, track: int) -> pd.DataFrame:
        """The frames a track was seen in: time, frame, label and one column per class."""
        rows = [{"time": frame.time, "frame": frame.index, "label": face.label,
                 **dict(zip(self.class_names, face.scores.tolist(), strict=True))}
                for frame in self.frames for face in frame.faces if face.track == track]
        return pd.DataFrame(rows, columns=["time", "frame", "label", *self.class_names])

    def summary(self) -> str:
        """One line: frames, rate, tracks and what each mostly showed."""
        rate = f" at {self.fps:.3g} fps" if self.fps else ""
        total = f"{self.frames_total} frames" if self.frames_total is not None else "frames"
        tracks = ", ".join(f"#{t.track} {t.first_time:.2f}–{t.last_time:.2f} s {self.dominant_label(t)}"
                           for t in self.tracks)
        cuts = f", {len(self.cuts)} cut(s)" if self.cuts else ""
        return (f"{self.file}: {total}{rate}, {self.frames_analysed} analysed{cuts}; {len(self.tracks)} track(s)"
                + (f": {tracks}" if tracks else ""))


# ---------------------------------------------------------------------------------------------------- analysing


def _offset(face: faces.Face, x0: int, y0: int) -> faces.Face:
    x, y, w, h = face.box
    keypoints = {k: (p[0] + x0, p[1] + y0) for k, p in face.keypoints.items()} if face.keypoints else None
    return faces.Face(box=(x + x0, y + y0, w, h), score=face.score, detector=face.detector, keypoints=keypoints)


@dataclass
class _Pending:
    index: int
    time: float
    ids: list[int]
    found: list[faces.Face]
    crops: np.ndarray
    ordinal: int = 0  # how many frames were analysed before this one
    thumbnail: np.ndarray | None = None
    scale: float = 1.0


class _ClipAnalysis:
    """The per-frame work of ``predict_video``: detect / track, crop, and classify in batches."""

    def __init__(self, predictor, info: ClipInfo, smooth: float, redetect: float, key_frames: int,
                 min_face: int, cut_threshold: float):
        self.predictor, self.info = predictor, info
        self.detector = predictor.detector
        self.align = getattr(predictor, "align", False)
        self.min_face, self.redetect = min_face, redetect
        self.tracker = FaceTracker()
        self.cut_detector = SceneCutDetector(cut_threshold)
        self.smoother = ScoreSmoother(smooth)
        self.last_full: float | None = None
        self.pending: list[_Pending] = []
        self.frames: list[VideoFrame] = []
        self.tracks: dict[int, TrackSummary] = {}  # by reported id
        self.public: dict[int, int] = {}  # tracker id → reported id
        self.cuts: list[int] = []
        self.key_frames: list[KeyFrame] = []
        self.max_key_frames, self.key_stride, self.analysed = key_frames, 1, 0

    # detection ------------------------------------------------------------------------------------------------

    def _window_detector(self, track_detector: str):
        if callable(self.detector):
            return self.detector
        return "mtcnn" if "mtcnn" in (self.detector, track_detector) else "haar"

    def _look_around(self, photo: Photo, box: np.ndarray, track_detector: str) -> list[faces.Face]:
        """Faces in the window around one track's predicted box, in frame coordinates."""
        x, y, w, h = box
        side = max(w, h)
        cx, cy = x + w / 2, y + h / 2
        reach = side * (0.5 + ROI_MARGIN)
        x0, y0 = max(0, int(cx - reach)), max(0, int(cy - reach))
        x1, y1 = min(photo.width, math.ceil(cx + reach)), min(photo.height, math.ceil(cy + reach))
        if x1 - x0 < 24 or y1 - y0 < 24:
            return []
        window = Photo(rgb=photo.rgb[y0:y1, x0:x1], gray=np.ascontiguousarray(photo.gray[y0:y1, x0:x1]),
                       name=photo.name, size=(x1 - x0, y1 - y0), mode="video")
        found = faces.detect_faces(window, detector=self._window_detector(track_detector),
                                   min_face=max(20, round(ROI_MIN_FACE * side)))
        return [_offset(f, x0, y0) for f in found]

    def _detect(self, photo: Photo, time: float, full: bool) -> list[faces.Face]:
        found = faces.detect_faces(photo, detector=self.detector, min_face=self.min_face) if full else []
        boxes = np.array([f.box for f in found], np.float64).reshape(-1, 4)
        for track, predicted in self.tracker.predicted(time):
            if len(boxes) and iou_matrix(predicted[None], boxes).max() >= 0.3:
                continue  # the full scan already has this face
            found += self._look_around(photo, predicted, track.detector)
        return faces.non_max_suppression(found) if len(found) > 1 else found

    def _confirm_new(self, photo: Photo, found: list, ids: list[int], first_new: int) -> tuple[list, list[int]]:
        """Drop the boxes that started a track (id ≥ ``first_new``) unless a second, finer look confirms them."""
        kept_faces, kept_ids = [], []
        for face, track in zip(found, ids, strict=True):
            if track >= first_new and face.detector != "mtcnn":
                box = np.asarray(face.box, np.float64)
                again = np.array([f.box for f in self._look_around(photo, box, face.detector)]).reshape(-1, 4)
                if not len(again) or iou_matrix(box[None], again).max() < 0.3:
                    self.tracker.discard(track)
                    continue
            kept_faces.append(face)
            kept_ids.append(track)
        return kept_faces, kept_ids

    # per frame ------------------------------------------------------------------------------------------------

    def add(self, index: int, time: float, bgr: np.ndarray) -> None:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        photo = Photo(rgb=rgb, gray=cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), name=self.info.file,
                      size=(bgr.shape[1], bgr.shape[0]), mode="video")
        cut = self.cut_detector(bgr)
        if cut:
            self.tracker.end_all()
            self.cuts.append(index)
        full = cut or self.last_full is None or time - self.last_full >= self.redetect - 1e-9
        if full:
            self.last_full = time
        found = self._detect(photo, time, full)
        first_new = self.tracker.next_id
        ids = self.tracker.update(time, [f.box for f in found], [f.detector for f in found])
        if first_new < self.tracker.next_id:
            found, ids = self._confirm_new(photo, found, ids, first_new)
        crops = faces.crop_faces(photo, found, align=self.align)
        entry = _Pending(index=index, time=time, ids=ids, found=found, crops=crops, ordinal=self.analysed)
        if self.max_key_frames and self.analysed % self.key_stride == 0:
            entry.scale = min(1.0, KEY_FRAME_SIDE / max(rgb.shape[:2]))
            entry.thumbnail = rgb if entry.scale == 1.0 else cv2.resize(
                rgb, (max(1, round(rgb.shape[1] * entry.scale)), max(1, round(rgb.shape[0] * entry.scale))),
                interpolation=cv2.INTER_AREA)
            entry.thumbnail = np.ascontiguousarray(entry.thumbnail)
        self.analysed += 1
        self.pending.append(entry)
        if len(self.pending) >= BATCH_FRAMES or sum(len(p.crops) for p in self.pending) >= BATCH_CROPS:
            self.flush()

    def flush(self) -> None:
        """Classify the waiting frames' crops in one model call and turn them into results."""
        if not self.pending:
            return
        crops = [p.crops for p in self.pending if len(p.crops)]
        probs = self.predictor.classify_crops(np.concatenate(crops)) if crops else np.zeros((0, 1))
        names = self.predictor.class_names
        start = 0
        for entry in self.pending:
            frame_faces = []
            for internal, face in zip(entry.ids, entry.found, strict=True):
                scores = self.smoother(internal, entry.time, probs[start]).astype(np.float32)
                start += 1
                # Reported ids count 1, 2, ... in order of first appearance (discarded tentative tracks leave no gap)
                track = self.public.setdefault(internal, len(self.public) + 1)
                frame_faces.append(VideoFace(track=track, box=tuple(int(v) for v in face.box),
                                             label=names[int(np.argmax(scores))], scores=scores,
                                             detector=face.detector))
                summary = self.tracks.get(track)
                if summary is None:
                    self.tracks[track] = TrackSummary(track, entry.time, entry.time, entry.index, entry.index, 1,
                                                      scores.astype(np.float64))
                else:
                    summary.last_time, summary.last_frame = entry.time, entry.index
                    summary.frames += 1
                    summary.score_sum += scores
            self.frames.append(VideoFrame(entry.index, entry.time, frame_faces))
            if entry.thumbnail is not None and entry.ordinal % self.key_stride == 0:
                self._keep(KeyFrame(entry.index, entry.time, entry.thumbnail, entry.scale, frame_faces))
        self.pending = []

    def _keep(self, key: KeyFrame) -> None:
        self.key_frames.append(key)
        if len(self.key_frames) > self.max_key_frames:  # thin to every other one and keep half as many from now
            self.key_stride *= 2
            self.key_frames = self.key_frames[::2]


def _check_options(every, fps, max_frames, smooth, redetect) -> None:
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise WorkbenchError(f"every must be a whole number ≥ 1 (analyse every N-th frame), got {every!r}")
    if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise WorkbenchError(f"fps must be a number of frames per second > 0, got {fps!r}")
    if fps is not None and every != 1:
        raise WorkbenchError("give every (every N-th frame) or fps (frames per second), not both")
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer))
                                   or max_frames < 1):
        raise WorkbenchError(f"max_frames must be a whole number ≥ 1, got {max_frames!r}")
    if not (isinstance(smooth, (int, float)) and math.isfinite(smooth) and smooth >= 0):
        raise WorkbenchError(f"smooth must be a number of seconds ≥ 0, got {smooth!r}")
    if not (isinstance(redetect, (int, float)) and math.isfinite(redetect) and redetect >= 0):
        raise WorkbenchError(f"redetect must be a number of seconds ≥ 0, got {redetect!r}")


def predict_video(predictor, source: str | os.PathLike, *, name: str | None = None, every: int = 1,
                  fps: float | None = None, max_frames: int | None = None, smooth: float = 0.0,
                  redetect: float = REDETECT_SECONDS, key_frames: int = KEY_FRAMES, min_face: int = faces.MIN_FACE,
                  cut_threshold: float | None = None, progress: bool = True) -> VideoPrediction:
    """Faces tracked through a clip with class probabilities per analysed frame (see the module doc).

    ``predictor``: a ``predict.FacePredictor`` (its detector, alignment and model are used). ``every`` / ``fps`` /
    ``max_frames``: which frames to analyse (``FrameReader``); ``smooth``: seconds of per-track smoothing of the
    scores (0: none); ``redetect``: seconds between full-frame detections (0: every analysed frame);
    ``key_frames``: thumbnails kept for a strip. A bad clip is a result with ``error`` set, never an exception
    (invalid options raise ``WorkbenchError``); progress (with an ETA when the frame count is known) goes to a
    tqdm bar."""
    from tqdm.auto import tqdm

    _check_options(every, fps, max_frames, smooth, redetect)
    label = name or str(source)
    names = list(predictor.class_names)
    try:
        capture, info = open_clip(source, name=label)
    except VideoError as exc:
        return VideoPrediction(file=label, class_names=names, error=str(exc), readable=False)
    analysis = _ClipAnalysis(predictor, info, float(smooth), float(redetect), int(key_frames), int(min_face),
                             CUT_DISTANCE if cut_threshold is None else float(cut_threshold))
    reader = FrameReader(capture, info, every=int(every), fps=fps, max_frames=max_frames)
    try:
        with tqdm(total=reader.expected(), unit="frame", desc=Path(label).name[:40], disable=not progress,
                  leave=False) as bar:
            for index, time, frame in reader:
                analysis.add(index, time, frame)
                bar.update()
        analysis.flush()
    finally:
        capture.release()
    decoded = reader.decoded
    total = decoded if reader.ended else info.frames_declared
    problems = []
    if decoded == 0:
        problems.append("no frame could be decoded: " + ("the clip is empty (its header declares no frames)"
                                                         if info.frames_declared is None else "corrupt video data"))
    elif reader.problem:
        problems.append(f"decoding stopped early: {reader.problem}; the {decoded} frame(s) read are kept")
    elif reader.ended and info.frames_declared and decoded < 0.98 * info.frames_declared - 1:
        problems.append(f"decoding stopped after {decoded} of the {info.frames_declared} frames the header "
                        f"declares (truncated or corrupt); the frames read are kept")
    if decoded and not analysis.tracks:
        problems.append("no face found")
    tracks = sorted(analysis.tracks.values(), key=lambda t: t.track)
    return VideoPrediction(file=label, class_names=names, fps=info.fps, width=info.width, height=info.height,
                           frames_total=total, frames_analysed=reader.analysed, frames=analysis.frames,
                           tracks=tracks, key_frames=analysis.key_frames, cuts=analysis.cuts,
                           error="; ".join(problems) or None, readable=decoded > 0)


def predict_files(predictor, paths, progress: bool = True, **video_options) -> list:
    """Photos, clips and folders of either, in the order given (folders sorted): a ``PhotoPrediction`` per photo,
    a ``VideoPrediction`` per clip (``video_options`` go to ``predict_video``)."""
    from fer_workbench.data.folders import IMAGE_SUFFIXES
    from fer_workbench.predict import expand_inputs

    results = []
    for path in expand_inputs(paths, suffixes=IMAGE_SUFFIXES | VIDEO_SUFFIXES):
        if is_video_file(path):
            results.append(predict_video(predictor, path, progress=progress, **video_options))
        else:
            results.append(predictor.predict_photo(path))
    return results


def prediction_rows(results, class_names) -> pd.DataFrame:
    """The ``predict --csv`` table: one row per frame × face of every clip and per face of every photo (whose
    frame, time and track are empty)."""
    rows = []
    for result in results:
        if isinstance(result, VideoPrediction):
            rows.extend(result.to_rows())
            continue
        for face in result.faces:
            x, y, w, h = face.box
            rows.append({"file": result.file, "x": x, "y": y, "w": w, "h": h, "label": face.label,
                         "detector": face.detector, **{k: round(float(face.scores[k]), 6) for k in class_names}})
    columns = ["file", "frame", "time", "track", "x", "y", "w", "h", "label", "detector", *class_names]
    table = pd.DataFrame(rows, columns=columns)
    for column in ("frame", "track"):
        table[column] = table[column].astype("Int64")
    return table


# --------------------------------------------------------------------------------------------------- demo clip

DEMO_FPS = 25
DEMO_SIZE = (640, 480)
DEMO_CUT_FRAME = 60  # shot 1: frames 0-59 (one person), shot 2: 60-149 (another person, a third enters)
DEMO_FRAMES = 150
DEMO_TRACKS = 3


def _tile(image: np.ndarray, side: int) -> np.ndarray:
    return cv2.resize(np.ascontiguousarray(image), (side, side), interpolation=cv2.INTER_AREA)


def demo_clip_frames(size: tuple[int, int] = DEMO_SIZE):
    """The demo clip's frames (RGB), one at a time, and where each face tile lies: ``(rgb, [(person, x, y, side)])``.

    Shot 1 (frames 0–59): scikit-image's astronaut moves right across a dimmed coffee-cup photo. Shot 2 (60–149),
    after a hard cut: the cameraman stands where the astronaut stopped (so only the cut keeps his id apart), walks
    left, and a mirrored astronaut enters from the right edge at frame 100. Three tracks, one cut."""
    from skimage import data as samples

    width, height = size
    k = width / DEMO_SIZE[0]
    side = round(300 * k)
    astronaut = _tile(samples.astronaut()[20:380, 80:440], side)
    cameraman = _tile(np.repeat(samples.camera()[0:360, 52:412, None], 3, axis=2), side)
    coffee = (cv2.resize(samples.coffee(), size, interpolation=cv2.INTER_AREA) * 0.55).astype(np.uint8)
    ramp = np.linspace(0, 1, height)[:, None, None]
    studio = (np.array([40, 70, 120]) * (1 - ramp) + np.array([150, 170, 190]) * ramp).astype(np.uint8)
    studio = np.ascontiguousarray(np.broadcast_to(studio, (height, width, 3)))
    for i in range(DEMO_FRAMES):
        if i < DEMO_CUT_FRAME:
            frame = coffee.copy()
            tiles = [("astronaut", round((40 + 4.3 * i) * k), round((90 + 12 * math.sin(i / 9)) * k), astronaut)]
        else:
            j = i - DEMO_CUT_FRAME
            frame = studio.copy()
            tiles = [("cameraman", round((294 - 7 * min(j, 40)) * k), round(90 * k), cameraman)]
            if i >= 100:
                tiles.append(("astronaut_mirrored", round((640 - 10 * min(i - 100, 31)) * k), round(120 * k),
                              astronaut[:, ::-1]))
        placed = []
        for person, x, y, tile in tiles:
            x1, y1 = min(width, x + side), min(height, y + side)
            if x1 > x and y1 > y:
                frame[y:y1, x:x1] = tile[:y1 - y, :x1 - x]
            placed.append((person, x, y, side))
        yield frame, placed


def write_demo_clip(path: str | os.PathLike, size: tuple[int, int] = DEMO_SIZE, fps: float = DEMO_FPS) -> Path:
    """A 6-second demo clip (``demo_clip_frames``) written to ``path``; the container follows the suffix (``.mp4``,
    ``.mov``, ``.mkv``: MPEG-4 part 2; ``.avi``: Motion JPEG; ``.webm``: VP8). Written whole or not at all."""
    from fer_workbench.files import atomic_path

    path = Path(path)
    codecs = {".mp4": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".webm": "VP80"}
    codec = codecs.get(path.suffix.lower())
    if codec is None:
        raise WorkbenchError(f"{path}: write the demo clip as one of {', '.join(sorted(codecs))}")
    with atomic_path(path) as tmp:
        target = tmp.with_name(tmp.name + path.suffix)  # FFmpeg picks the container from the name
        writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*codec), float(fps), tuple(size))
        try:
            if not writer.isOpened():
                raise WorkbenchError(f"{path}: OpenCV cannot write {codec} video here")
            for frame, _ in demo_clip_frames(size):
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
        os.replace(target, tmp)
    return path


__all__ = ["DEMO_CUT_FRAME", "DEMO_FRAMES", "DEMO_TRACKS", "KeyFrame", "TrackSummary", "VideoFace", "VideoFrame",
           "VideoPrediction", "demo_clip_frames", "predict_files", "predict_video", "prediction_rows",
           "write_demo_clip"]
