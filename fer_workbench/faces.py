"""Finding faces in ordinary photos and cropping them exactly like training data (48×48 uint8 grayscale).

Detectors
---------
* ``"haar"`` — OpenCV's Haar cascades, the fast path (tens of ms on CPU, no TensorFlow). The frontal cascade
  runs first; only when it finds nothing do the alt2 frontal cascade and the profile cascade (on the image and on
  its mirror image, since that cascade knows only one side) run, their boxes merged by non-maximum suppression.
  No keypoints, so no alignment.
* ``"mtcnn"`` — the `mtcnn` package's three-stage CNN (TensorFlow): slower (somewhat more than Haar's tens of ms
  on a 512-px photo on CPU, seconds for the first call while TensorFlow loads) but much better on tilted, partly turned,
  small or badly lit faces, and it gives five keypoints (eyes, nose, mouth corners) that `crop_face(...,
  align=True)` uses to level the eyes. The detector is built once per process and cached, its three networks
  traced as graphs (`_trace_stage`); its weights ship inside the package (no network).
* ``"auto"`` (default) — the frontal Haar cascade first; MTCNN only when it finds nothing (the Haar fallback
  cascades are skipped: MTCNN is both better and, on the downscaled image, not slower than running three more
  cascades). Caveat: if Haar finds some faces of a group photo, the others are not looked for by MTCNN — pass
  ``"mtcnn"`` for group photos or when alignment matters, ``"haar"`` to never load TensorFlow.
* a callable ``f(rgb) -> iterable of Face`` — any other detector (tests inject fakes); it receives the downscaled
  RGB array and returns boxes in that array's coordinates.

Large photos are downscaled for detection (longest side ≤ ``max_side``; Haar additionally scans no finer than
needed to see a face of ``min_face`` pixels), boxes are mapped back to original pixel coordinates and crops are
always taken from the original resolution.
"""

from __future__ import annotations

import importlib.resources
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from fer_workbench import IMAGE_SIZE
from fer_workbench.errors import WorkbenchError
from fer_workbench.photos import Photo, PhotoSource, as_photo, to_gray48

DETECTORS = ("auto", "haar", "mtcnn")
MIN_FACE = 48  # pixels (original photo): smaller faces hold less detail than a 48×48 training image anyway
MAX_SIDE = 1024  # detection runs on a copy whose longest side is at most this
CROP_MARGIN = 0.2  # added on each side of the (squared) box, as a fraction of its side

# Haar settings, tuned for speed vs recall (benchmarks/bench_face_detection.py --tune). Most of the speed comes from
# scanning the photo at the resolution where a min_face-pixel face just fills the cascade's 24-pixel window (a
# 512×512 photo at 256×256 with the defaults). Pyramid steps of 20% with 3 votes then cost ~60% of the classic
# 1.1 / 5 votes (fewer levels, so fewer votes per face: 3 at 1.2 is about as strict as 5 at 1.1) with the same
# recall and false positives in our checks: 45/60 of skimage's astronaut scaled ×0.5-1.5, rotated ±15°,
# gamma 0.6-1.6, and 9 boxes on 132 face-free images (22 skimage photos × 3 scales × mirror) for both.
# The frontal cascade is about two thirds of a one-face photo's CPU time (bench_photo_predict.py), half of it in the
# pyramid levels ≥ 2× the window, which OpenCV scans at every pixel rather than every other one. Scanning less was
# measured and rejected (issue 17): those levels at every other pixel or every other level, region-of-interest passes
# seeded by skimage's LBP cascade or by a sparse pre-scan, or detection below min_face with the box refined later
# each lost faces on scaled/rotated/gamma astronauts or LFW mosaics, or got slower on group photos.
HAAR_WINDOW = 24  # the frontal cascade's training window; Haar cannot see faces smaller than this
HAAR_SCALE_FACTOR = 1.2
HAAR_MIN_NEIGHBORS = 3
HAAR_FRONTAL = "haarcascade_frontalface_default.xml"
HAAR_FALLBACKS = ("haarcascade_frontalface_alt2.xml", "haarcascade_profileface.xml")
MTCNN_MIN_SCORE = 0.9  # ONet probability below which MTCNN boxes are dropped
MTCNN_MIN_FACE = 20  # face size (pixels of the image MTCNN sees) its pyramid starts at; see detect_faces
NMS_IOU = 0.3  # boxes overlapping more than this (intersection over union) are one face
NMS_CONTAINED = 0.7  # ...and so is a box lying mostly (this share of its area) inside a better one

KEYPOINT_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # left/right as seen in the image


@dataclass(frozen=True)
class Face:
    """One detected face. `box` is (x, y, w, h) in the original photo's pixels, top-left origin.

    `score` is detector-specific: MTCNN's face probability in [0, 1]; for Haar, the number of overlapping detection
    windows that voted for the box (≥ minNeighbors; higher is surer). `keypoints` maps KEYPOINT_NAMES to (x, y)
    in original pixels (MTCNN only; None for Haar).
    """

    box: tuple[int, int, int, int]
    score: float
    detector: str
    keypoints: dict[str, tuple[float, float]] | None = field(default=None, compare=False)

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2.0, y + h / 2.0

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]


# ------------------------------------------------------------------------------------------------ box geometry


def _iou_matrix(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise intersection over union, and intersection over the smaller box's area, for (n, 4) xywh boxes."""
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    area = boxes[:, 2] * boxes[:, 3]
    iw = np.clip(np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None]), 0, None)
    ih = np.clip(np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None]), 0, None)
    inter = iw * ih
    union = area[:, None] + area[None] - inter
    return inter / np.maximum(union, 1e-9), inter / np.maximum(np.minimum(area[:, None], area[None]), 1e-9)


def non_max_suppression(faces: Sequence[Face], iou: float = NMS_IOU, contained: float = NMS_CONTAINED) -> list[Face]:
    """Keep the best-scoring face of every group of overlapping ones (ties: the larger box wins).

    A face is dropped when its IoU with a kept face exceeds `iou`, or when more than `contained` of the smaller
    box's area lies inside the other (a profile box inside a frontal box, a box around a face and its hair).
    """
    if len(faces) < 2:
        return list(faces)
    boxes = np.array([f.box for f in faces], dtype=np.float64)
    order = sorted(range(len(faces)), key=lambda i: (-faces[i].score, -faces[i].area, i))
    overlap, inside = _iou_matrix(boxes)
    kept: list[int] = []
    for i in order:
        if all(overlap[k, i] <= iou and inside[k, i] <= contained for k in kept):
            kept.append(i)
    return [faces[i] for i in kept]


def _sort_left_to_right(faces: Iterable[Face]) -> list[Face]:
    return sorted(faces, key=lambda f: (f.box[0], f.box[1], -f.score))


def _scale_face(face: Face, scale: float, width: int, height: int) -> Face | None:
    """A face found on an image resized by `scale`, in original coordinates (clipped to the image)."""
    x, y, w, h = (float(v) for v in face.box)
    x0, y0 = max(0, round(x / scale)), max(0, round(y / scale))
    x1, y1 = min(width, round((x + w) / scale)), min(height, round((y + h) / scale))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    keypoints = None
    if face.keypoints:
        keypoints = {k: (float(p[0]) / scale, float(p[1]) / scale) for k, p in face.keypoints.items()}
    return Face(box=(int(x0), int(y0), int(x1 - x0), int(y1 - y0)), score=float(face.score),
                detector=face.detector, keypoints=keypoints)


def _resized(array: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return array
    height, width = array.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(array, size, interpolation=cv2.INTER_AREA)


# ---------------------------------------------------------------------------------------------------- Haar path

_haar_local = threading.local()  # CascadeClassifier is not safe to share between threads: one set per thread


def _cascade(filename: str) -> cv2.CascadeClassifier:
    cache = getattr(_haar_local, "cascades", None)
    if cache is None:
        cache = _haar_local.cascades = {}
    if filename not in cache:
        classifier = cv2.CascadeClassifier(cv2.data.haarcascades + filename)
        if classifier.empty():
            raise WorkbenchError(f"OpenCV's {filename} could not be loaded from {cv2.data.haarcascades} "
                                 "(reinstall opencv-python-headless)")
        cache[filename] = classifier
    return cache[filename]


def _run_cascade(gray: np.ndarray, filename: str, min_size: int, mirrored: bool = False,
                 scale_factor: float = HAAR_SCALE_FACTOR, min_neighbors: int = HAAR_MIN_NEIGHBORS) -> list[Face]:
    image = np.ascontiguousarray(gray[:, ::-1]) if mirrored else gray
    boxes, votes = _cascade(filename).detectMultiScale2(image, scaleFactor=scale_factor, minNeighbors=min_neighbors,
                                                        minSize=(min_size, min_size))
    faces = []
    width = gray.shape[1]
    for (x, y, w, h), n in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(votes).reshape(-1), strict=True):
        if mirrored:
            x = width - x - w
        faces.append(Face(box=(int(x), int(y), int(w), int(h)), score=float(n), detector="haar"))
    return faces


def haar_faces(gray: np.ndarray, min_size: int = HAAR_WINDOW, scale_factor: float = HAAR_SCALE_FACTOR,
               min_neighbors: int = HAAR_MIN_NEIGHBORS, fallbacks: bool = True) -> list[Face]:
    """Haar detections on a uint8 gray array, in its coordinates: the frontal cascade, then (if it finds nothing
    and `fallbacks`) alt2 frontal + profile + mirrored profile, merged by NMS."""
    min_size = max(int(min_size), 20)
    settings = {"scale_factor": scale_factor, "min_neighbors": min_neighbors}
    faces = _run_cascade(gray, HAAR_FRONTAL, max(min_size, HAAR_WINDOW), **settings)
    if not faces and fallbacks:
        alt2, profile = HAAR_FALLBACKS
        faces = (_run_cascade(gray, alt2, min_size, **settings) + _run_cascade(gray, profile, min_size, **settings)
                 + _run_cascade(gray, profile, min_size, mirrored=True, **settings))
    return non_max_suppression(faces)


# --------------------------------------------------------------------------------------------------- MTCNN path

_mtcnn_lock = threading.Lock()
_mtcnn_detector = None


def mtcnn_detector():
    """The process-wide MTCNN (built on first use: imports TensorFlow, loads the weights shipped in the package)."""
    global _mtcnn_detector
    with _mtcnn_lock:
        if _mtcnn_detector is None:
            try:
                import tensorflow as tf
                from mtcnn import MTCNN
                from mtcnn.stages import StageONet, StagePNet, StageRNet
            except ImportError as exc:
                raise WorkbenchError(f"MTCNN face detection needs the mtcnn and tensorflow packages ({exc})") \
                    from None
            # Absolute paths: mtcnn would otherwise first look for pnet.lz4 etc. in the working directory.
            weights = importlib.resources.files("mtcnn.assets.weights")
            device = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"
            stages = [StagePNet(weights=str(weights / "pnet.lz4")), StageRNet(weights=str(weights / "rnet.lz4")),
                      StageONet(weights=str(weights / "onet.lz4"))]
            for stage, input_shape in zip(stages, MTCNN_STAGE_INPUTS, strict=True):
                _trace_stage(stage, input_shape)
            _mtcnn_detector = MTCNN(stages=stages, device=device)
        return _mtcnn_detector


MTCNN_STAGE_INPUTS = ((None, None, None, 3), (None, 24, 24, 3), (None, 48, 48, 3))  # PNet (any size), RNet, ONet


def _trace_stage(stage, input_shape: tuple) -> None:
    """Run an mtcnn stage's Keras network as one traced graph instead of layer by layer in eager mode.

    mtcnn 1.0 calls its three small networks eagerly (``self._model(x)`` once per pyramid level and per batch of
    patches), where Keras's per-layer Python overhead is most of the cost: a `tf.function` with a fixed signature is
    traced once per process and computes the same numbers 3-4× faster (same boxes, scores and keypoints; tested).
    A stage without that attribute (another mtcnn version) is left as it is.
    """
    import tensorflow as tf

    network = getattr(stage, "_model", None)
    if callable(network) and not isinstance(network, tf.types.experimental.GenericFunction):
        stage._model = tf.function(network, input_signature=[tf.TensorSpec(input_shape, tf.float32)])


def mtcnn_faces(rgb: np.ndarray, min_size: int = MTCNN_MIN_FACE, min_score: float = MTCNN_MIN_SCORE) -> list[Face]:
    """MTCNN detections (with keypoints) on a uint8 RGB array, in its coordinates (min_size: 12 to 20 pixels)."""
    if min(rgb.shape[:2]) < 12:  # below PNet's input size: nothing can be found
        return []
    min_size = int(min(max(12, min_size), MTCNN_MIN_FACE))
    results = mtcnn_detector().detect_faces(np.ascontiguousarray(rgb), min_face_size=min_size)
    faces = []
    for result in results or []:
        score = float(result.get("confidence", 0.0))
        x, y, w, h = (round(float(v)) for v in result["box"])
        if score < min_score or w < 1 or h < 1:
            continue
        points = result.get("keypoints") or {}
        keypoints = {k: (float(points[k][0]), float(points[k][1])) for k in KEYPOINT_NAMES if k in points} or None
        faces.append(Face(box=(x, y, w, h), score=score, detector="mtcnn", keypoints=keypoints))
    return faces


# ---------------------------------------------------------------------------------------------------- detection


def detect_faces(photo: Photo | np.ndarray | PhotoSource, detector: str | Callable = "auto", min_face: int = MIN_FACE,
                 max_side: int = MAX_SIDE, *, min_score: float | None = None, haar_fallbacks: bool | None = None,
                 scale_factor: float = HAAR_SCALE_FACTOR, min_neighbors: int = HAAR_MIN_NEIGHBORS) -> list[Face]:
    """Every face in a photo, sorted left to right; an empty list when there is none.

    `photo`: a `Photo`, an RGB/gray array, or a path/bytes (decoded with `photos.load_photo`).
    `detector`: "auto" (Haar, then MTCNN if Haar finds nothing), "haar", "mtcnn", or a callable (see module doc).
    `min_face`: smallest face side to look for, in original pixels (also bounded by what the detectors can see
    after downscaling: about 24 px for Haar, 12 px for MTCNN, in the downscaled image).
    `max_side`: detection works on a copy whose longest side is at most this; boxes come back in original pixels.
    `min_score`: drop faces scoring below it (default: MTCNN_MIN_SCORE for MTCNN, none for Haar).
    `haar_fallbacks`: let Haar try the alt2 and profile cascades when the frontal one finds nothing (default: yes
    for "haar"; no for "auto", which goes straight to MTCNN then).
    `scale_factor`, `min_neighbors`: the Haar cascades' pyramid step and votes needed (speed vs recall).
    """
    if not (isinstance(detector, str) and detector in DETECTORS) and not callable(detector):
        raise WorkbenchError(f"unknown face detector {detector!r}; choose one of {', '.join(DETECTORS)}")
    if not min_face or min_face < 1:
        raise WorkbenchError(f"min_face must be a positive number of pixels, got {min_face!r}")
    if not max_side or max_side < 32:
        raise WorkbenchError(f"max_side must be at least 32 pixels, got {max_side!r}")
    photo = as_photo(photo)
    height, width = photo.gray.shape
    fit = min(1.0, max_side / max(height, width))

    if callable(detector):
        scale = fit
        found = [_scale_face(f, scale, width, height) for f in detector(_resized(photo.rgb, scale))]
    else:
        found = []
        if detector in ("auto", "haar"):
            # No point scanning finer than needed to see a min_face-pixel face in the cascade's 24-pixel window.
            scale = min(fit, HAAR_WINDOW / min_face)
            found = [_scale_face(f, scale, width, height)
                     for f in haar_faces(_resized(photo.gray, scale), min_size=round(min_face * scale),
                                         scale_factor=scale_factor, min_neighbors=min_neighbors,
                                         fallbacks=detector == "haar" if haar_fallbacks is None
                                         else haar_fallbacks)]
            found = [f for f in found if f is not None]
        if detector == "mtcnn" or (detector == "auto" and not found):
            # mtcnn 1.0 sizes its pyramid as if min_face_size were 20: larger values (> ~24) make its last levels
            # smaller than PNet's 12-pixel input, which it reports as "no face". So: keep it ≤ 20 and downscale.
            scale = min(fit, MTCNN_MIN_FACE / min_face)
            threshold = MTCNN_MIN_SCORE if min_score is None else min_score
            found = [_scale_face(f, scale, width, height)
                     for f in mtcnn_faces(_resized(photo.rgb, scale), min_size=round(min_face * scale),
                                          min_score=threshold)]
    tolerance = math.ceil(1.0 / scale) if scale < 1 else 0  # rounding when boxes are scaled back
    found = [f for f in found if f is not None and max(f.box[2], f.box[3]) + tolerance >= min_face]
    if min_score is not None:
        found = [f for f in found if f.score >= min_score]
    return _sort_left_to_right(non_max_suppression(found))


# -------------------------------------------------------------------------------------------------------- crops


def eye_angle(face: Face) -> float | None:
    """Angle in degrees (image coordinates, y down) of the line from the left to the right eye; None without eyes.

    Positive when the right eye (as seen) sits lower than the left one; rotating the image by this angle
    counter-clockwise (as displayed) levels the eyes.
    """
    points = face.keypoints or {}
    if "left_eye" not in points or "right_eye" not in points:
        return None
    (lx, ly), (rx, ry) = points["left_eye"], points["right_eye"]
    if (lx, ly) == (rx, ry):
        return None
    return math.degrees(math.atan2(ry - ly, rx - lx))


def crop_window(face: Face, margin: float = CROP_MARGIN, square: bool = True) -> tuple[float, float, int, int]:
    """(center x, center y, width, height) of the region `crop_face` cuts around a face (may leave the image)."""
    if margin < 0 or margin > 5:
        raise WorkbenchError(f"margin must be between 0 and 5 (a share of the face box), got {margin!r}")
    _, _, w, h = face.box
    if w < 1 or h < 1:
        raise WorkbenchError(f"face box {face.box} is empty")
    cx, cy = face.center
    if square:
        w = h = max(w, h)
    return cx, cy, max(1, round(w * (1 + 2 * margin))), max(1, round(h * (1 + 2 * margin)))


def face_region(photo: Photo | np.ndarray, face: Face, margin: float = CROP_MARGIN, align: bool = False,
                square: bool = True) -> np.ndarray:
    """The RGB pixels (uint8, original resolution) around a face, before conversion to training format.

    The box is made square (`square`) and widened by `margin` × its side on every side; parts outside the photo
    are filled by replicating the edge pixels. With `align` and eye keypoints (MTCNN), the region is rotated about
    the box centre so the eyes are level; without keypoints `align` has no effect.
    """
    photo = as_photo(photo)
    rgb = photo.rgb
    height, width = rgb.shape[:2]
    cx, cy, out_w, out_h = crop_window(face, margin, square)
    angle = eye_angle(face) if align else None
    if angle is not None and abs(angle) > 1e-3:
        matrix = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
        matrix[0, 2] += out_w / 2.0 - cx
        matrix[1, 2] += out_h / 2.0 - cy
        return cv2.warpAffine(rgb, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    x0, y0 = round(cx - out_w / 2.0), round(cy - out_h / 2.0)
    x1, y1 = x0 + out_w, y0 + out_h
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise WorkbenchError(f"face box {face.box} lies outside the {width}×{height} photo {photo.name}")
    inside = rgb[max(y0, 0):min(y1, height), max(x0, 0):min(x1, width)]
    pad = ((max(0, -y0), max(0, y1 - height)), (max(0, -x0), max(0, x1 - width)), (0, 0))
    return np.pad(inside, pad, mode="edge") if any(p for pair in pad[:2] for p in pair) else inside


def crop_face(photo: Photo | np.ndarray, face: Face, margin: float = CROP_MARGIN, align: bool = False,
              square: bool = True) -> np.ndarray:
    """One face as a 48×48 uint8 grayscale image, converted exactly as training images are (`photos.to_gray48`)."""
    return to_gray48(face_region(photo, face, margin=margin, align=align, square=square))


def crop_faces(photo: Photo | np.ndarray, faces: Sequence[Face], margin: float = CROP_MARGIN,
               align: bool = False, square: bool = True) -> np.ndarray:
    """(n, 48, 48) uint8 crops for several faces (n may be 0), in the order given."""
    photo = as_photo(photo)
    crops = [crop_face(photo, f, margin=margin, align=align, square=square) for f in faces]
    return np.stack(crops) if crops else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)


def find_faces(source: Photo | np.ndarray | PhotoSource, detector: str | Callable = "auto",
               min_face: int = MIN_FACE, max_side: int = MAX_SIDE, margin: float = CROP_MARGIN,
               align: bool = False) -> tuple[Photo, list[Face], np.ndarray]:
    """Decode (if needed), detect and crop in one call: (photo, faces left to right, (n, 48, 48) uint8 crops)."""
    photo = as_photo(source)
    faces = detect_faces(photo, detector=detector, min_face=min_face, max_side=max_side)
    return photo, faces, crop_faces(photo, faces, margin=margin, align=align)


__all__ = [
    "CROP_MARGIN",
    "DETECTORS",
    "MAX_SIDE",
    "MIN_FACE",
    "Face",
    "crop_face",
    "crop_faces",
    "crop_window",
    "detect_faces",
    "eye_angle",
    "face_region",
    "find_faces",
    "haar_faces",
    "mtcnn_detector",
    "mtcnn_faces",
    "non_max_suppression",
]
