"""faces.py: geometry with injected fake detectors, real Haar/MTCNN on skimage's bundled real photos."""

import socket

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_workbench import faces as faces_module
from fer_workbench.data.folders import read_gray48
from fer_workbench.errors import WorkbenchError
from fer_workbench.faces import (
    KEYPOINT_NAMES,
    Face,
    crop_face,
    crop_faces,
    crop_window,
    detect_faces,
    eye_angle,
    face_region,
    find_faces,
    non_max_suppression,
)
from fer_workbench.photos import load_photo, photo_from_array

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()  # bundled with the scikit-image wheel: a real 512×512 portrait, one face


def inside(point, box, slack=0):
    x, y, w, h = box
    return x - slack <= point[0] <= x + w + slack and y - slack <= point[1] <= y + h + slack


ASTRONAUT_FACE_CENTRE = (223, 118)  # between the eyes and the mouth (MTCNN keypoints: eyes y≈100, mouth y≈138)


# ------------------------------------------------------------------------------- geometry with a fake detector


class FakeDetector:
    """Returns fixed boxes (in the coordinates of the image it receives) and records what it saw."""

    def __init__(self, faces):
        self.faces, self.seen = faces, []

    def __call__(self, rgb):
        self.seen.append(rgb.shape)
        return self.faces


def test_downscaled_detection_maps_back_to_original_pixels():
    photo = photo_from_array(np.zeros((1000, 2000, 3), np.uint8))
    fake = FakeDetector([Face((10, 20, 30, 40), 0.9, "fake", {"left_eye": (15.0, 30.0), "right_eye": (35.0, 30.0)})])
    found = detect_faces(photo, fake, max_side=500, min_face=20)
    assert fake.seen == [(250, 500, 3)]  # longest side 2000 → 500: scale 0.25
    assert len(found) == 1
    assert found[0].box == (40, 80, 120, 160)
    assert found[0].keypoints == {"left_eye": (60.0, 120.0), "right_eye": (140.0, 120.0)}
    assert found[0].detector == "fake" and found[0].score == pytest.approx(0.9)

    small = photo_from_array(np.zeros((300, 400), np.uint8))
    fake = FakeDetector([Face((10, 20, 60, 60), 1.0, "fake")])
    assert detect_faces(small, fake, max_side=1024)[0].box == (10, 20, 60, 60)  # no upscaling
    assert fake.seen == [(300, 400, 3)]


def test_boxes_clipped_sorted_filtered_and_merged():
    photo = photo_from_array(np.zeros((200, 300), np.uint8))
    fake = FakeDetector([
        Face((250, 10, 80, 80), 5.0, "fake"),  # runs off the right edge: clipped
        Face((100, 50, 60, 60), 9.0, "fake"),
        Face((104, 52, 58, 58), 3.0, "fake"),  # duplicate of the previous one: suppressed
        Face((5, 120, 50, 50), 4.0, "fake"),
        Face((200, 150, 10, 10), 8.0, "fake"),  # smaller than min_face: dropped
    ])
    found = detect_faces(photo, fake, min_face=20)
    assert [f.box for f in found] == [(5, 120, 50, 50), (100, 50, 60, 60), (250, 10, 50, 80)]  # left to right
    assert found[1].score == 9.0


def test_non_max_suppression():
    a = Face((0, 0, 100, 100), 10.0, "haar")
    b = Face((10, 10, 100, 100), 5.0, "haar")  # IoU ≈ 0.68 with a
    c = Face((30, 30, 40, 40), 20.0, "haar")  # inside a and better scored: kept, and a (around it) is dropped
    d = Face((300, 0, 50, 50), 1.0, "haar")
    assert non_max_suppression([a, b, d]) == [a, d]
    assert non_max_suppression([a, c, d]) == [c, d]
    assert non_max_suppression([a, Face((60, 60, 100, 100), 1.0, "haar")], iou=0.3) == [
        a, Face((60, 60, 100, 100), 1.0, "haar")]  # IoU 0.09: two faces
    assert non_max_suppression([]) == [] and non_max_suppression([d]) == [d]


def test_invalid_arguments():
    photo = photo_from_array(np.zeros((64, 64), np.uint8))
    with pytest.raises(WorkbenchError, match="unknown face detector"):
        detect_faces(photo, "dlib")
    with pytest.raises(WorkbenchError, match="min_face"):
        detect_faces(photo, "haar", min_face=0)
    with pytest.raises(WorkbenchError, match="max_side"):
        detect_faces(photo, "haar", max_side=8)
    with pytest.raises(WorkbenchError, match="margin"):
        crop_face(photo, Face((0, 0, 10, 10), 1.0, "x"), margin=-0.1)
    with pytest.raises(WorkbenchError, match="outside"):
        crop_face(photo, Face((500, 500, 10, 10), 1.0, "x"))


# ---------------------------------------------------------------------------------------------------- crops


def test_crop_window_margin_and_square():
    face = Face((100, 50, 40, 60), 1.0, "x")
    assert crop_window(face, margin=0.0) == (120.0, 80.0, 60, 60)  # squared on the longer side
    assert crop_window(face, margin=0.2) == (120.0, 80.0, 84, 84)  # + 20 % of 60 on each side
    assert crop_window(face, margin=0.5, square=False) == (120.0, 80.0, 80, 120)


def test_region_inside_is_an_exact_slice_and_edges_are_replicated():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    photo = photo_from_array(rgb)
    region = face_region(photo, Face((50, 40, 40, 40), 1.0, "x"), margin=0.25)
    np.testing.assert_array_equal(region, rgb[30:90, 40:100])

    corner = face_region(photo, Face((0, 0, 40, 40), 1.0, "x"), margin=0.25)  # window (-10,-10)..(50,50)
    assert corner.shape == (60, 60, 3)
    np.testing.assert_array_equal(corner[10:, 10:], rgb[:50, :50])
    np.testing.assert_array_equal(corner[:10, 10:], np.broadcast_to(rgb[0, :50], (10, 50, 3)))  # top row repeated
    np.testing.assert_array_equal(corner[10:, :10], np.broadcast_to(rgb[:50, :1], (50, 10, 3)))  # left column
    assert (corner[:10, :10] == rgb[0, 0]).all()  # corner pixel

    crops = crop_faces(photo, [Face((0, 0, 40, 40), 1.0, "x"), Face((100, 60, 50, 50), 1.0, "x")])
    assert crops.shape == (2, 48, 48) and crops.dtype == np.uint8
    assert crop_faces(photo, []).shape == (0, 48, 48)


def test_crop_is_converted_exactly_like_training_images(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "face.jpg"
    Image.fromarray(rng.integers(0, 256, (90, 90, 3), dtype=np.uint8)).save(path, quality=90)
    photo = load_photo(path)
    crop = crop_face(photo, Face((0, 0, 90, 90), 1.0, "x"), margin=0.0)
    np.testing.assert_array_equal(crop, read_gray48(path))  # same gray, same Lanczos resize


def test_alignment_levels_the_eyes():
    image = np.full((400, 400, 3), 255, np.uint8)
    centre, half_gap, tilt = np.array([200.0, 190.0]), 40.0, np.radians(20)
    left = centre - half_gap * np.array([np.cos(tilt), np.sin(tilt)])
    right = centre + half_gap * np.array([np.cos(tilt), np.sin(tilt)])  # right eye lower: tilted clockwise
    for x, y in (left, right):
        cv2.circle(image, (round(x), round(y)), 6, (0, 0, 0), -1)
    face = Face((140, 140, 120, 120), 0.99, "mtcnn",
                {"left_eye": tuple(left), "right_eye": tuple(right), "nose": (200.0, 215.0)})
    assert eye_angle(face) == pytest.approx(20.0)

    def blob_centres(region):
        dark = (region[:, :, 0] < 128).astype(np.uint8)
        _, _, _, centres = cv2.connectedComponentsWithStats(dark)
        return sorted(centres[1:].tolist())

    tilted = blob_centres(face_region(image, face, margin=0.2, align=False))
    assert abs(tilted[0][1] - tilted[1][1]) > 20
    (lx, ly), (rx, ry) = blob_centres(face_region(image, face, margin=0.2, align=True))
    assert abs(ly - ry) < 1.0  # level
    assert rx - lx == pytest.approx(80.0, abs=1.5)  # distance kept (rotation, no scaling)

    aligned = crop_face(image, face, align=True)
    assert aligned.shape == (48, 48) and aligned.dtype == np.uint8
    no_eyes = Face(face.box, 1.0, "haar")
    assert eye_angle(no_eyes) is None
    np.testing.assert_array_equal(crop_face(image, no_eyes, align=True), crop_face(image, no_eyes))


# ------------------------------------------------------------------------------------ real detectors, real faces


def test_haar_finds_the_astronaut(astronaut):
    found = detect_faces(astronaut, "haar")
    assert len(found) == 1
    face = found[0]
    assert face.detector == "haar" and face.keypoints is None and face.score >= 5
    assert inside(ASTRONAUT_FACE_CENTRE, face.box)
    assert 70 <= face.box[2] <= 140
    crop = crop_face(astronaut, face)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8 and crop.std() > 20


def test_haar_on_a_big_photo_and_two_people(astronaut):
    big = cv2.resize(astronaut, (1536, 1536), interpolation=cv2.INTER_LINEAR)  # detection runs at ≤ 1024 px
    found = detect_faces(big, "haar", min_face=96)
    assert len(found) == 1
    assert inside((ASTRONAUT_FACE_CENTRE[0] * 3, ASTRONAUT_FACE_CENTRE[1] * 3), found[0].box)
    assert 210 <= found[0].box[2] <= 420  # original pixels, not detection pixels

    pair = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)  # 1024 wide: her and her mirror image
    _, found, crops = find_faces(pair, "haar")
    assert len(found) == 2 and crops.shape == (2, 48, 48)
    assert found[0].box[0] < 512 <= found[1].box[0]  # left to right
    mirrored_centre = (1023 - ASTRONAUT_FACE_CENTRE[0], ASTRONAUT_FACE_CENTRE[1])
    assert inside(ASTRONAUT_FACE_CENTRE, found[0].box) and inside(mirrored_centre, found[1].box)
    # the two crops are mirror images of each other (up to the detector's slightly different boxes)
    assert np.abs(crops[0].astype(int) - crops[1][:, ::-1].astype(int)).mean() < 25


def test_no_face_is_an_empty_list_not_an_error():
    cat = skimage_data.chelsea()
    assert detect_faces(cat, "haar") == []
    assert detect_faces(np.full((64, 64), 128, np.uint8), "haar") == []
    assert detect_faces(np.zeros((10, 10, 3), np.uint8), "haar") == []
    assert find_faces(np.full((64, 64), 128, np.uint8), "haar")[2].shape == (0, 48, 48)


@pytest.fixture(scope="module")
def offline_mtcnn():
    """MTCNN built and run once with the network unreachable: its weights must come from the installed package."""
    real_connect = socket.socket.connect

    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    socket.socket.connect = refuse
    try:
        detector = faces_module.mtcnn_detector()
        faces_module.mtcnn_faces(np.zeros((48, 48, 3), np.uint8))
    finally:
        socket.socket.connect = real_connect
    return detector


def test_mtcnn_gives_keypoints_and_aligned_crops(offline_mtcnn, astronaut):
    assert faces_module.mtcnn_detector() is offline_mtcnn  # built once, cached
    found = detect_faces(astronaut, "mtcnn")
    assert len(found) == 1
    face = found[0]
    assert face.detector == "mtcnn" and 0.9 <= face.score <= 1.0
    assert inside(ASTRONAUT_FACE_CENTRE, face.box)
    points = face.keypoints
    assert set(points) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    assert points["left_eye"][0] < points["right_eye"][0]  # left as seen in the image
    assert all(inside(p, face.box, slack=2) for p in points.values())
    assert abs(eye_angle(face)) < 15
    aligned = crop_face(astronaut, face, align=True)
    assert aligned.shape == (48, 48) and aligned.dtype == np.uint8

    # a tilted photo: alignment turns her back upright, so the aligned crop resembles the upright one
    rotated = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((223, 118), -25, 1.0), (512, 512),
                             borderMode=cv2.BORDER_REFLECT)
    tilted = detect_faces(rotated, "mtcnn")
    assert len(tilted) == 1 and eye_angle(tilted[0]) == pytest.approx(25 + eye_angle(face), abs=8)
    upright = crop_face(astronaut, face, align=True).astype(int)
    assert np.abs(crop_face(rotated, tilted[0], align=True).astype(int) - upright).mean() < \
        np.abs(crop_face(rotated, tilted[0], align=False).astype(int) - upright).mean()


def test_auto_falls_back_to_mtcnn_only_when_haar_finds_nothing(offline_mtcnn, astronaut, monkeypatch):
    assert [f.detector for f in detect_faces(astronaut)] == ["haar"]  # fast path found her: no MTCNN
    monkeypatch.setattr(faces_module, "haar_faces", lambda *args, **kwargs: [])  # Haar misses
    found = detect_faces(astronaut, "auto")
    assert [f.detector for f in found] == ["mtcnn"] and inside(ASTRONAUT_FACE_CENTRE, found[0].box)
    assert detect_faces(skimage_data.chelsea(), "auto") == []  # a cat: nobody, by either detector


def test_mtcnn_networks_run_as_traced_graphs_with_unchanged_results(offline_mtcnn, astronaut):
    """The cached detector runs mtcnn's three networks as traced tf.functions (speed); an eager detector built the
    package's plain way finds the same box, score and keypoints."""
    import importlib.resources

    import tensorflow as tf
    from mtcnn import MTCNN
    from mtcnn.stages import StageONet, StagePNet, StageRNet

    assert all(isinstance(stage._model, tf.types.experimental.GenericFunction) for stage in offline_mtcnn.stages)
    weights = importlib.resources.files("mtcnn.assets.weights")
    eager = MTCNN(stages=[StagePNet(weights=str(weights / "pnet.lz4")), StageRNet(weights=str(weights / "rnet.lz4")),
                          StageONet(weights=str(weights / "onet.lz4"))], device="CPU:0")
    assert not isinstance(eager.stages[0]._model, tf.types.experimental.GenericFunction)
    tilted = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((223, 118), -25, 1.0), (512, 512),
                            borderMode=cv2.BORDER_REFLECT)
    for rgb in (astronaut, tilted, skimage_data.coffee()):
        small = cv2.resize(rgb, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
        traced, plain = offline_mtcnn.detect_faces(small), eager.detect_faces(small)
        assert len(traced) == len(plain)
        for a, b in zip(traced, plain, strict=True):
            assert np.abs(np.subtract(a["box"], b["box"])).max() <= 1
            assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-4)
            for name in KEYPOINT_NAMES:
                assert a["keypoints"][name] == pytest.approx(b["keypoints"][name], abs=0.5)
    assert len(offline_mtcnn.detect_faces(cv2.resize(astronaut, None, fx=0.4, fy=0.4))) == 1  # the test saw a face
