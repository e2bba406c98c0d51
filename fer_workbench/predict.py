"""The predictor: photo → faces → class probabilities, with the training preprocessing and a compiled model."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fer_workbench import IMAGE_SIZE
from fer_workbench.data.folders import IMAGE_SUFFIXES
from fer_workbench.errors import WorkbenchError
from fer_workbench.faces import Face, find_faces
from fer_workbench.photos import Photo, as_photo


@dataclass
class FacePrediction:
    box: tuple[int, int, int, int]  # x, y, w, h in the original photo's pixels
    label: str
    scores: dict[str, float]
    detector: str
    crop: np.ndarray = field(repr=False)  # the 48×48 uint8 image the model saw

    def to_dict(self) -> dict:
        return {"box": [int(v) for v in self.box], "label": self.label,
                "scores": {k: round(float(v), 6) for k, v in self.scores.items()}, "detector": self.detector}


@dataclass
class PhotoPrediction:
    file: str
    faces: list[FacePrediction] = field(default_factory=list)
    error: str | None = None  # why nothing could be said about this input ("no face found" included)
    readable: bool = True
    photo: Photo | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {"file": self.file, "faces": [f.to_dict() for f in self.faces], "error": self.error}

    @property
    def message(self) -> str | None:
        """The problem as one line naming the file once (errors from decoding already start with its name)."""
        if self.error is None:
            return None
        return self.error if self.error.startswith(f"{self.file}: ") else f"{self.file}: {self.error}"


class FacePredictor:
    """Finds faces in photos and classifies each with one model (the shipped one unless a path is given), in the
    model's own classes (``class_names``: seven for FER2013 models, eight with contempt for FER+ ones)."""

    def __init__(self, model=None, detector: str = "auto", tta: bool = False, align: bool = False):
        from fer_workbench.inference import CropPredictor
        from fer_workbench.models.compatibility import check_model
        from fer_workbench.models.io import load_model, model_class_names
        from fer_workbench.models.registry import resolve_model_path

        if model is None or isinstance(model, (str, os.PathLike)):
            self.model_path = resolve_model_path(model)
            model = load_model(self.model_path)
        else:
            self.model_path = None
        check_model(model, self.model_path)  # 48×48×1 in, one probability per class of the model's own out
        self.model = model
        self.class_names = model_class_names(model)
        self.detector = detector
        self.align = align
        self._predict = CropPredictor(model, tta=tta)

    def predict_photo(self, source, name: str | None = None) -> PhotoPrediction:
        """One photo (path, bytes or array); unreadable input becomes an error entry, never an exception."""
        return self._classify([self._find(source, name)])[0]

    def predict_paths(self, paths, batch: int = 32) -> list[PhotoPrediction]:
        """Every photo among ``paths`` (directories are searched for image files, sorted). The faces of up to
        ``batch`` photos go through the model in one call (same results as one photo at a time, fewer calls)."""
        results: list[PhotoPrediction] = []
        pending: list[tuple[PhotoPrediction, list[Face], np.ndarray]] = []
        for path in expand_inputs(paths):
            pending.append(self._find(path))
            if len(pending) >= batch:
                results += self._classify(pending)
                pending = []
        return results + self._classify(pending)

    def _find(self, source, name: str | None = None) -> tuple[PhotoPrediction, list[Face], np.ndarray]:
        """Decode, detect and crop one photo: (its entry without faces yet, the faces, their 48×48 crops)."""
        label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "<photo>")
        try:  # decoded here with the label, so that errors about bytes (uploads) name the file, not "<image bytes>"
            photo, faces, crops = find_faces(as_photo(source, name=label), detector=self.detector, align=self.align)
        except WorkbenchError as exc:
            no_crops = np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
            return PhotoPrediction(file=label, error=str(exc), readable=False), [], no_crops
        entry = PhotoPrediction(file=label, photo=photo, error=None if faces else "no face found")
        return entry, faces, crops

    def _classify(self, found: list[tuple[PhotoPrediction, list[Face], np.ndarray]]) -> list[PhotoPrediction]:
        """Fill in the faces of each entry, with every crop of every entry through the model in one call."""
        crops = [c for _, faces, c in found if faces]
        probs = np.atleast_2d(self._predict(np.concatenate(crops))) if crops else None
        start = 0
        for entry, faces, face_crops in found:
            entry.faces = [self._face(f, p, c) for f, p, c in
                           zip(faces, probs[start:start + len(faces)], face_crops, strict=True)] if faces else []
            start += len(faces)
        return [entry for entry, _, _ in found]

    def predict_video(self, source, **options):
        """One clip: faces tracked through it, scores per analysed frame (``video.predict_video`` takes the
        options: every, fps, max_frames, smooth, progress, ...); a bad clip is a result with ``error`` set."""
        from fer_workbench.video import predict_video

        return predict_video(self, source, **options)

    def classify_crops(self, crops: np.ndarray) -> np.ndarray:
        """(n, 48, 48) uint8 face crops → (n, classes) probabilities in one model call (n may be 0)."""
        if len(crops) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        return np.atleast_2d(self._predict(crops))

    def _face(self, face: Face, probs: np.ndarray, crop: np.ndarray) -> FacePrediction:
        scores = dict(zip(self.class_names, probs.tolist(), strict=True))
        return FacePrediction(box=tuple(int(v) for v in face.box), label=self.class_names[int(np.argmax(probs))],
                              scores=scores, detector=face.detector, crop=crop)


def expand_inputs(paths, suffixes=IMAGE_SUFFIXES) -> list[Path]:
    """Files as given (kept even when missing, so they get their own error entry) and, inside folders, the files
    whose names end in one of ``suffixes`` (images by default); a leading ``~`` is the home folder."""
    out: list[Path] = []
    for path in (Path(p).expanduser() for p in paths):
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes))
        else:
            out.append(path)
    return out


def write_demo_photos(directory: str | os.PathLike) -> Path:
    """A small folder for trying the predictor without your own photos: skimage's bundled astronaut, a
    two-face composite, a photo with no face, and a text file named like an image (to show the error path)."""
    from PIL import Image
    from skimage import data as samples

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    astronaut = samples.astronaut()
    Image.fromarray(astronaut).save(directory / "astronaut.jpg")
    Image.fromarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)).save(directory / "two_faces.jpg")
    Image.fromarray(samples.coffee()).save(directory / "coffee.jpg")
    (directory / "not_a_photo.jpg").write_text("this file is text, not an image")
    return directory


def predictions_table(results: list[PhotoPrediction]) -> pd.DataFrame:
    """One row per face, or one row per photo that had a problem: file, face, box, label, top score, error."""
    rows = []
    for result in results:
        name = Path(result.file).name
        for k, face in enumerate(result.faces, start=1):
            rows.append({"file": name, "face": k, "box": face.box, "label": face.label,
                         "top score": max(face.scores.values()), "error": None})
        if not result.faces:
            rows.append({"file": name, "face": None, "box": None, "label": None, "top score": None,
                         "error": result.error})
    table = pd.DataFrame(rows, columns=["file", "face", "box", "label", "top score", "error"])
    table["face"] = table["face"].astype("Int64")
    return table
