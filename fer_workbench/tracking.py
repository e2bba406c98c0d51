"""Keeping face identities through a clip: box association, tracks, scene cuts and per-track score smoothing.

Pure bookkeeping on boxes and small frame thumbnails (no model, no detector), used by ``fer_workbench.video``:

* ``associate`` pairs predicted track boxes with detected boxes by the Hungarian algorithm (SciPy's
  ``linear_sum_assignment``) on a cost of overlap and centre distance; pairs that overlap too little, lie too far
  apart or differ too much in size are never made.
* ``FaceTracker`` holds the live tracks: each predicts where its face is now from its last box and velocity,
  takes the detection it is paired with, and ends when unseen for longer than ``max_gap`` seconds (the face left,
  or turned away); an unpaired detection starts a new track with the next id (1, 2, ...). Ids are never reused:
  a person who leaves and comes back gets a new one (there is no re-identification by appearance).
* ``SceneCutDetector`` compares each frame's colour histogram and coarse layout with the previous frame's: a jump
  means a cut, and
  the caller ends every track, so no id is carried from one shot to another (different people standing where the
  last shot's people stood would otherwise inherit their ids).
* ``ScoreSmoother`` smooths each track's class probabilities over time (exponential, time constant in seconds,
  so it means the same whatever the sampling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

MIN_IOU = 0.1  # a detection overlapping a track's predicted box at least this much may continue it...
MAX_DISTANCE = 0.8  # ...or one whose centre lies within this many box sides of the predicted centre
MAX_SCALE = 1.8  # ...and never one whose side differs from the track's by more than this factor
MAX_GAP_SECONDS = 0.5  # a track unseen for longer than this (and for at least MIN_MISSED analysed frames) ends
MIN_MISSED = 2
CUT_DISTANCE = 0.5  # Bhattacharyya distance between consecutive frames' colour histograms that means a cut...
CUT_CORRELATION = 0.3  # ...as does half that distance with grey thumbnails correlating less than this
_NEVER = 1e6  # cost of a forbidden pair


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (n×4, x y w h) with every box in ``b`` (m×4): n×m."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    ax1, ay1, bx1, by1 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1[:, None], bx1[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay1[:, None], by1[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return inter / np.maximum(union, 1e-9)


def association_costs(predicted: np.ndarray, detected: np.ndarray, min_iou: float = MIN_IOU,
                      max_distance: float = MAX_DISTANCE, max_scale: float = MAX_SCALE) -> np.ndarray:
    """n×m costs of continuing track i with detection j: (1 − IoU) + centre distance in box sides; ``_NEVER``
    where the pair is not allowed (see the module doc)."""
    predicted = np.asarray(predicted, np.float64).reshape(-1, 4)
    detected = np.asarray(detected, np.float64).reshape(-1, 4)
    iou = iou_matrix(predicted, detected)
    side_p = np.maximum(predicted[:, 2:].max(axis=1), 1.0)
    side_d = np.maximum(detected[:, 2:].max(axis=1), 1.0)
    centre_p = predicted[:, :2] + predicted[:, 2:] / 2
    centre_d = detected[:, :2] + detected[:, 2:] / 2
    distance = np.linalg.norm(centre_p[:, None] - centre_d[None], axis=2) / ((side_p[:, None] + side_d[None]) / 2)
    scale = np.maximum(side_p[:, None] / side_d[None], side_d[None] / side_p[:, None])
    allowed = ((iou >= min_iou) | (distance <= max_distance)) & (scale <= max_scale)
    return np.where(allowed, (1.0 - iou) + distance, _NEVER)


def associate(predicted: np.ndarray, detected: np.ndarray, **gates) -> list[tuple[int, int]]:
    """(track index, detection index) pairs of least total cost, forbidden pairs left out (Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment

    costs = association_costs(predicted, detected, **gates)
    if costs.size == 0:
        return []
    rows, cols = linear_sum_assignment(costs)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if costs[r, c] < _NEVER]


@dataclass
class Track:
    """One face followed through a clip: its last box (x, y, w, h, float), velocity (box units per second)."""

    id: int
    box: np.ndarray
    time: float  # when last seen
    detector: str
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    missed: int = 0  # analysed frames since last seen

    def predicted(self, time: float) -> np.ndarray:
        """Where the face should be at ``time``: constant velocity, extrapolated at most half a second."""
        box = self.box + self.velocity * min(max(time - self.time, 0.0), 0.5)
        box[2:] = np.maximum(box[2:], 1.0)
        return box

    def moved_to(self, box: np.ndarray, time: float, detector: str) -> None:
        dt = time - self.time
        if dt > 0:
            self.velocity = 0.5 * self.velocity + 0.5 * (box - self.box) / dt
        self.box, self.time, self.detector, self.missed = box, time, detector, 0


class FaceTracker:
    """The live tracks of one clip; ``update`` once per analysed frame with that frame's detections."""

    def __init__(self, max_gap: float = MAX_GAP_SECONDS, min_missed: int = MIN_MISSED, **gates):
        if max_gap < 0:
            raise ValueError(f"max_gap must be ≥ 0 seconds, got {max_gap!r}")
        self.max_gap, self.min_missed, self.gates = float(max_gap), int(min_missed), gates
        self.tracks: list[Track] = []
        self.next_id = 1

    def predicted(self, time: float) -> list[tuple[Track, np.ndarray]]:
        return [(track, track.predicted(time)) for track in self.tracks]

    def update(self, time: float, boxes, detectors=None) -> list[int]:
        """The track id of each detection (``boxes``: x, y, w, h each) at ``time`` seconds: continued tracks keep
        theirs, the rest start new ones; tracks unseen for too long end here."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        detectors = list(detectors) if detectors is not None else ["?"] * len(boxes)
        predicted = np.array([t.predicted(time) for t in self.tracks]).reshape(-1, 4)
        pairs = dict((d, t) for t, d in associate(predicted, boxes, **self.gates))
        ids = []
        for j, box in enumerate(boxes):
            if j in pairs:
                track = self.tracks[pairs[j]]
                track.moved_to(box.copy(), time, detectors[j])
            else:
                track = Track(id=self.next_id, box=box.copy(), time=time, detector=detectors[j])
                self.next_id += 1
                self.tracks.append(track)
            ids.append(track.id)
        seen = set(ids)
        for track in self.tracks:
            if track.id not in seen:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.id in seen or not self._lost(t, time)]
        return ids

    def _lost(self, track: Track, time: float) -> bool:
        return track.missed >= self.min_missed and time - track.time > self.max_gap

    def discard(self, track_id: int) -> None:
        """Forget a track as if it had never started (its id is not given again)."""
        self.tracks = [t for t in self.tracks if t.id != track_id]

    def end_all(self) -> None:
        """A scene cut: every track ends (ids continue from where they were)."""
        self.tracks = []


class SceneCutDetector:
    """Calls a frame a cut when it differs from the previous frame in colour make-up and in layout at once.

    Colour make-up: the Bhattacharyya distance between the two frames' hue × saturation × value histograms (on
    small thumbnails); people moving and the camera panning hardly change it, a new shot does. A distance above
    ``threshold`` is a cut by itself. Layout: the correlation of the two frames' 32×24 grey thumbnails, each
    normalised to zero mean and unit variance (so brightness and contrast do not count); a distance above half the
    threshold with a correlation below ``min_correlation`` is a cut too (two grey or similarly coloured shots).
    A sudden exposure change keeps the layout (correlation near 1) and is a cut only when it is large enough to
    move the histogram past ``threshold`` (a flash)."""

    BINS = (12, 4, 4)

    def __init__(self, threshold: float = CUT_DISTANCE, min_correlation: float = CUT_CORRELATION,
                 thumbnail: tuple[int, int] = (64, 48)):
        self.threshold, self.min_correlation, self.thumbnail = float(threshold), float(min_correlation), thumbnail
        self.previous: tuple[np.ndarray, np.ndarray] | None = None
        self.last_distance, self.last_correlation = 0.0, 1.0

    def signature(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(normalised colour histogram, normalised 32×24 grey thumbnail) of a BGR frame."""
        small = cv2.resize(bgr, self.thumbnail, interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, list(self.BINS), [0, 180, 0, 256, 0, 256])
        hist = cv2.normalize(hist, None, alpha=1.0, norm_type=cv2.NORM_L1).astype(np.float32)
        grey = cv2.resize(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (32, 24), interpolation=cv2.INTER_AREA)
        grey = grey.astype(np.float32) - grey.mean()
        return hist, grey / max(float(grey.std()), 1.0)

    def __call__(self, bgr: np.ndarray) -> bool:
        """True when ``bgr`` (a BGR frame) starts a new shot; the first frame is no cut."""
        current = self.signature(bgr)
        previous, self.previous = self.previous, current
        if previous is None:
            self.last_distance, self.last_correlation = 0.0, 1.0
            return False
        self.last_distance = float(cv2.compareHist(previous[0], current[0], cv2.HISTCMP_BHATTACHARYYA))
        self.last_correlation = float((previous[1] * current[1]).mean())
        return self.last_distance > self.threshold or (self.last_distance > self.threshold / 2
                                                       and self.last_correlation < self.min_correlation)


class ScoreSmoother:
    """Per-track exponential smoothing of probabilities with a time constant of ``seconds``: a frame ``dt``
    seconds after the last one moves the smoothed scores ``1 − exp(−dt / seconds)`` of the way to its own scores.
    ``seconds = 0`` leaves scores as they are. Causal (uses past frames only), so it works on a live stream."""

    def __init__(self, seconds: float = 0.0):
        if not seconds >= 0 or math.isinf(seconds):
            raise ValueError(f"smoothing must be a finite number of seconds ≥ 0, got {seconds!r}")
        self.seconds = float(seconds)
        self.state: dict[int, tuple[float, np.ndarray]] = {}

    def __call__(self, track: int, time: float, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, np.float64)
        if self.seconds == 0:
            return probs
        if track in self.state:
            last_time, smoothed = self.state[track]
            weight = 1.0 - math.exp(-max(time - last_time, 0.0) / self.seconds)
            probs = smoothed + weight * (probs - smoothed)
        self.state[track] = (time, probs)
        return probs


__all__ = ["CUT_CORRELATION", "CUT_DISTANCE", "MAX_GAP_SECONDS", "FaceTracker", "SceneCutDetector", "ScoreSmoother",
           "Track", "associate", "association_costs", "iou_matrix"]
