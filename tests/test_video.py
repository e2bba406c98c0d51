"""Video: clips decoded as a stream, faces tracked through them (ids, scene cuts), bad clips as messages, and the
`predict` JSON / CSV documents. Most clips are built here: coloured squares that a fake detector finds exactly
(so the tracking assertions are about the tracker, not about Haar), and the demo clip of real photos."""

import json
import struct
import tracemalloc
import wave

import cv2
import numpy as np
import pandas as pd
import pytest
from test_cli import run_cli

from fer_workbench import CLASS_NAMES, WorkbenchError, clips, plots, video, widgets
from fer_workbench.faces import Face
from fer_workbench.predict import FacePredictor
from fer_workbench.tracking import FaceTracker, SceneCutDetector, ScoreSmoother, associate

SIZE = (320, 240)
MAGENTA = (255, 0, 255)


def magenta_squares(rgb: np.ndarray) -> list[Face]:
    """The fake detector: every magenta blob is a face."""
    mask = ((rgb[:, :, 0] > 170) & (rgb[:, :, 1] < 100) & (rgb[:, :, 2] > 170)).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    return [Face(box=tuple(int(v) for v in stats[k, :4]), score=1.0, detector="squares")
            for k in range(1, count) if stats[k, 4] > 400]


def frame(background, squares=()) -> np.ndarray:
    """An RGB frame: a textured background of one colour and magenta squares (x, y, side)."""
    rng = np.random.default_rng(sum(background))
    image = np.clip(np.array(background)[None, None] + rng.integers(-25, 25, (SIZE[1], SIZE[0], 1)), 0, 255)
    image = image.astype(np.uint8)
    for x, y, side in squares:
        image[max(y, 0):y + side, max(x, 0):x + side] = MAGENTA
    return image


def write_clip(path, frames, fps=10.0, codec="MJPG"):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec) if codec else 0, fps, SIZE)
    assert writer.isOpened()
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def two_shots(cut_at=15, frames=30):
    """Shot 1: a square moving right on blue; shot 2 (from ``cut_at``): another square exactly where the first one
    was, on orange, and a second square entering from the right edge at frame 22."""
    out = []
    for i in range(frames):
        if i < cut_at:
            out.append(frame((60, 80, 140), [(60 + 3 * i, 70, 80)]))
        else:
            squares = [(60 + 3 * cut_at, 70, 80)]
            if i >= 22:
                squares.append((SIZE[0] - 10 * (i - 21), 40, 70))
            out.append(frame((200, 140, 60), squares))
    return out


@pytest.fixture(scope="module")
def model_file(tiny_model_file):
    return tiny_model_file


@pytest.fixture(scope="module")
def squares_predictor(model_file):
    return FacePredictor(model_file, detector=magenta_squares)


@pytest.fixture(scope="module")
def shots_clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "shots.avi", two_shots())


@pytest.fixture(scope="module")
def demo_clip(tmp_path_factory):
    return video.write_demo_clip(tmp_path_factory.mktemp("demo") / "demo_clip.mp4")


# ------------------------------------------------------------------------------------------------------ tracking


def test_association_pairs_nearby_boxes_and_refuses_far_or_rescaled_ones():
    tracks = np.array([[0, 0, 50, 50], [200, 0, 50, 50]])
    boxes = np.array([[205, 4, 50, 50], [6, 2, 50, 50], [600, 0, 50, 50], [0, 0, 200, 200]])
    assert sorted(associate(tracks, boxes)) == [(0, 1), (1, 0)]
    assert associate(tracks[:1], boxes[2:]) == []  # too far, and four times the size
    assert associate(np.zeros((0, 4)), boxes) == []


def test_tracker_keeps_ids_while_seen_and_ends_tracks_after_the_gap():
    tracker = FaceTracker(max_gap=0.3)
    assert tracker.update(0.0, [[0, 0, 50, 50], [200, 0, 50, 50]]) == [1, 2]
    assert tracker.update(0.1, [[208, 0, 50, 50], [8, 0, 50, 50]]) == [2, 1]  # order of detections does not matter
    assert tracker.update(0.2, [[16, 0, 50, 50]]) == [1]  # 2 unseen for a moment: still alive
    assert [t.id for t in tracker.tracks] == [1, 2]
    assert tracker.update(0.6, [[24, 0, 50, 50]]) == [1]  # 2 unseen for 0.4 s > max_gap: ended
    assert [t.id for t in tracker.tracks] == [1]
    assert tracker.update(0.7, [[222, 0, 50, 50]]) == [3]  # whoever appears there now is someone new
    tracker.end_all()
    assert tracker.update(0.8, [[40, 0, 50, 50]]) == [4]  # a cut: no id is carried over


def test_tracker_follows_motion_with_its_velocity():
    tracker = FaceTracker()
    ids = [tracker.update(k * 0.1, [[30 * k, 0, 40, 40]])[0] for k in range(6)]  # 30 px per step, 40-px box
    assert ids == [1] * 6


def test_scene_cuts_are_found_and_motion_or_light_changes_are_not():
    detector = SceneCutDetector()
    cuts = [k for k, (rgb, _) in enumerate(video.demo_clip_frames()) if detector(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))]
    assert cuts == [video.DEMO_CUT_FRAME]
    from skimage import data

    scene = cv2.resize(data.coffee()[:, :, ::-1], (1000, 667))
    detector = SceneCutDetector()
    assert not any(detector(scene[100:580, x:x + 640]) for x in range(0, 360, 40))  # a slow pan
    assert not detector(cv2.convertScaleAbs(scene[100:580, 320:960], alpha=0.85))  # exposure dips 15 %


def test_score_smoothing_is_exponential_in_time_and_per_track():
    smoother = ScoreSmoother(seconds=1.0)
    first, second = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert np.allclose(smoother(1, 0.0, first), first)
    weight = 1 - np.exp(-0.5)
    assert np.allclose(smoother(1, 0.5, second), first + weight * (second - first))
    assert np.allclose(smoother(2, 0.5, second), second)  # another track starts fresh
    assert np.allclose(ScoreSmoother(0)(1, 0.0, second), second)
    with pytest.raises(ValueError):
        ScoreSmoother(-1)


# ------------------------------------------------------------------------------------------------ through clips


def test_a_cut_starts_new_ids_even_where_the_last_face_stood(squares_predictor, shots_clip):
    clip = squares_predictor.predict_video(shots_clip, progress=False)
    assert clip.error is None and clip.cuts == [15] and clip.frames_analysed == 30
    ids = {frame.index: [face.track for face in frame.faces] for frame in clip.frames}
    assert all(ids[k] == [1] for k in range(15))
    assert all(ids[k] == [2] for k in range(15, 22))
    assert all(sorted(ids[k]) == [2, 3] for k in range(23, 30))  # the square entering got a new id
    # The square entering at frame 22 is found by the next full-frame scan (every 0.2 s: frames 15, 17, ... 23).
    assert [(t.track, t.first_frame, t.last_frame) for t in clip.tracks] == [(1, 0, 14), (2, 15, 29), (3, 23, 29)]
    # Without the cut detector the box standing in the same place would have inherited id 1.
    uncut = squares_predictor.predict_video(shots_clip, progress=False, cut_threshold=2.0)
    assert uncut.cuts == [] and {f.faces[0].track for f in uncut.frames[:20]} == {1}


def test_every_fps_and_max_frames_choose_the_frames(squares_predictor, shots_clip):
    every = squares_predictor.predict_video(shots_clip, every=4, progress=False)
    assert [f.index for f in every.frames] == list(range(0, 30, 4))
    assert every.frames_analysed == 8 and every.frames_total == 30
    assert np.allclose([f.time for f in every.frames], [k / 10 for k in range(0, 30, 4)])
    assert {f.faces[0].track for f in every.frames if f.index < 15} == {1}  # ids hold across skipped frames
    by_rate = squares_predictor.predict_video(shots_clip, fps=2.5, progress=False)  # clip runs at 10 fps
    assert [f.index for f in by_rate.frames] == list(range(0, 30, 4))
    capped = squares_predictor.predict_video(shots_clip, every=2, max_frames=3, progress=False)
    assert [f.index for f in capped.frames] == [0, 2, 4] and capped.frames_total == 30  # the header's count
    for bad in ({"every": 0}, {"fps": -1.0}, {"every": 2, "fps": 5.0}, {"max_frames": 0}, {"smooth": -1}):
        with pytest.raises(WorkbenchError):
            squares_predictor.predict_video(shots_clip, progress=False, **bad)


def test_frames_are_decoded_as_a_stream(squares_predictor, tmp_path):
    """A clip four times longer costs no more memory at its peak: frames are not kept (numpy's buffers are
    traced by tracemalloc; 120 more 320×240 frames kept would be 27 MB)."""
    short = write_clip(tmp_path / "short.avi", [frame((90, 90, 90), [(40 + k, 60, 80)]) for k in range(40)])
    long = write_clip(tmp_path / "long.avi", [frame((90, 90, 90), [(40 + k % 40, 60, 80)]) for k in range(160)])
    peaks = []
    for path in (short, long):
        squares_predictor.predict_video(path, progress=False, max_frames=2)  # warm caches
        tracemalloc.start()
        clip = squares_predictor.predict_video(path, progress=False)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert len(clip.key_frames) <= video.KEY_FRAMES
    assert peaks[1] - peaks[0] < 3_000_000, peaks


def test_key_frames_spread_over_the_clip(squares_predictor, tmp_path):
    path = write_clip(tmp_path / "spread.avi", [frame((90, 90, 90), [(40 + k % 50, 60, 80)]) for k in range(100)])
    clip = squares_predictor.predict_video(path, progress=False, key_frames=6)
    indexes = [k.index for k in clip.key_frames]
    assert 3 <= len(indexes) <= 6 and indexes[0] == 0 and indexes[-1] >= 60
    assert len(set(np.diff(indexes))) == 1  # evenly spaced
    assert all(k.faces and k.rgb.shape[2] == 3 for k in clip.key_frames)


def test_demo_clip_of_real_photos_keeps_one_id_per_person(model_file, demo_clip):
    clip = FacePredictor(model_file, detector="auto").predict_video(demo_clip, every=2, progress=False)
    assert clip.cuts == [video.DEMO_CUT_FRAME] and len(clip.tracks) == video.DEMO_TRACKS, clip.summary()
    truth = {k: placed for k, (_, placed) in enumerate(video.demo_clip_frames())}
    people = {}
    for f in clip.frames:
        for face in f.faces:
            x, y, w, h = face.box
            cx, cy = x + w / 2, y + h / 2
            inside = [p for p, px, py, side in truth[f.index] if px <= cx <= px + side and py <= cy <= py + side]
            assert len(inside) == 1, (f.index, face.box)
            people.setdefault(face.track, set()).add(inside[0])
    assert people == {1: {"astronaut"}, 2: {"cameraman"}, 3: {"astronaut_mirrored"}}
    seen = {t.track: t.frames for t in clip.tracks}
    assert seen[1] >= 25 and seen[2] >= 40 and seen[3] >= 10  # of 30, 45 and 25 analysed frames in view


def test_a_clip_without_faces_says_so(squares_predictor, tmp_path):
    path = write_clip(tmp_path / "empty_room.avi", [frame((90, 120, 90)) for _ in range(8)])
    clip = squares_predictor.predict_video(path, progress=False)
    assert clip.readable and clip.frames_analysed == 8 and clip.error == "no face found" and not clip.tracks


# ---------------------------------------------------------------------------------------------------- bad clips


def _patched_avi(path, source, **fields):
    """A copy of an AVI file with header fields changed: frames (main and stream headers), width and height."""
    data = bytearray(source.read_bytes())
    avih = data.index(b"avih") + 8
    strh = data.index(b"strh") + 8
    strf = data.index(b"strf") + 8
    if "frames" in fields:
        struct.pack_into("<I", data, avih + 16, fields["frames"])
        struct.pack_into("<I", data, strh + 32, fields["frames"])
    if "width" in fields:
        for offset in (avih + 32, strf + 4):
            struct.pack_into("<ii", data, offset, fields["width"], fields["height"])
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def bad_clips(tmp_path_factory, shots_clip):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "random.mp4").write_bytes(np.random.default_rng(0).bytes(20_000))
    (folder / "empty.mp4").write_bytes(b"")
    with wave.open(str(folder / "speech.avi"), "wb") as sound:  # RIFF like an AVI, but only audio inside
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\0\0" * 4000)
    mp4 = write_clip(folder / "whole.mp4", two_shots(), codec="mp4v").read_bytes()
    (folder / "cut_short.mp4").write_bytes(mp4[: len(mp4) // 2])  # the index at the end is missing
    avi = shots_clip.read_bytes()
    (folder / "cut_short.avi").write_bytes(avi[: len(avi) // 2])  # half the frames remain decodable
    writer = cv2.VideoWriter(str(folder / "no_frames.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    writer.release()
    # Uncompressed frames (fourcc 0): FFmpeg takes their size from the header without decoding one (80 megapixels
    # is below FFmpeg's own limit, so only ours refuses it).
    raw = write_clip(folder / "raw.avi", two_shots()[:3], codec=None)
    _patched_avi(folder / "huge_frames.avi", raw, width=10_000, height=8_000)
    _patched_avi(folder / "endless.avi", shots_clip, frames=2_000_000_000)
    return folder


@pytest.mark.parametrize(("name", "readable", "message"), [
    ("random.mp4", False, "not a video file FFmpeg can decode"),
    ("empty.mp4", False, "empty file (0 bytes)"),
    ("missing.mp4", False, "no such file"),
    ("speech.avi", False, "a WAV audio file: no video stream"),
    ("cut_short.mp4", False, "MP4/MOV file FFmpeg cannot open: no video stream, or truncated or corrupt"),
    ("no_frames.avi", False, "no frame could be decoded"),
    ("huge_frames.avi", False, "frames of 10000×8000 = 80.0 megapixels are over the 50-megapixel limit"),
    ("endless.avi", False, "the header claims 2,000,000,000 frames, over the 10,000,000-frame limit"),
    ("cut_short.avi", True, "decoding stopped after"),
])
def test_bad_clips_become_one_line_messages(squares_predictor, bad_clips, name, readable, message):
    clip = squares_predictor.predict_video(bad_clips / name, progress=False)
    assert clip.readable is readable and message in clip.error, clip.error
    assert "\n" not in clip.message and clip.message.startswith(f"{bad_clips / name}: ")
    if readable:  # the frames that decoded keep their results
        assert 0 < clip.frames_analysed < 30 and clip.tracks and clip.frames[-1].faces


def test_limits_are_parameters(shots_clip):
    with pytest.raises(clips.VideoError, match=r"over the 0\.01-megapixel limit"):
        clips.open_clip(shots_clip, max_pixels=10_000)
    with pytest.raises(clips.VideoError, match="over the 10-frame limit"):
        clips.open_clip(shots_clip, max_frames=10)
    capture, info = clips.open_clip(shots_clip)
    capture.release()
    assert (info.width, info.height, info.fps, info.frames_declared) == (*SIZE, 10.0, 30)


@pytest.mark.parametrize(("suffix", "codec"), [(".mp4", "mp4v"), (".mov", "mp4v"), (".mkv", "mp4v"), (".avi", "MJPG"),
                                               (".webm", "VP80"), (".gif", None)])
def test_common_containers_decode(tmp_path, suffix, codec):
    frames = [frame((60, 80, 140), [(10 * k, 70, 80)]) for k in range(12)]
    path = tmp_path / f"clip{suffix}"
    if codec is None:
        from PIL import Image

        Image.fromarray(frames[0]).save(path, save_all=True, append_images=[Image.fromarray(f) for f in frames[1:]],
                                        duration=100, loop=0)
    else:
        write_clip(path, frames, codec=codec)
    assert clips.is_video_file(path)
    capture, info = clips.open_clip(path)
    reader = clips.FrameReader(capture, info)
    read = list(reader)
    capture.release()
    assert len(read) == 12 and reader.ended and read[-1][2].shape == (SIZE[1], SIZE[0], 3)
    assert np.allclose([t for _, t, _ in read], [k / 10 for k in range(12)], atol=0.011)


def test_a_still_gif_is_a_photo(tmp_path):
    from PIL import Image

    Image.fromarray(frame((60, 80, 140))).save(tmp_path / "still.gif")
    assert not clips.is_video_file(tmp_path / "still.gif") and clips.is_video_file(tmp_path / "later.mkv")


# ------------------------------------------------------------------------------------------- documents and CLI


def test_json_and_csv_documents(squares_predictor, shots_clip):
    clip = squares_predictor.predict_video(shots_clip, smooth=0.5, progress=False)
    document = json.loads(json.dumps(clip.to_dict()))
    assert set(document) >= {"file", "fps", "frames_total", "frames_analysed", "tracks", "frames"}
    assert (document["fps"], document["frames_total"], document["frames_analysed"]) == (10.0, 30, 30)
    assert document["tracks"][0] == {"track": 1, "first_time": 0.0, "last_time": 1.4,
                                      "dominant_label": clip.dominant_label(clip.tracks[0])}
    entry = document["frames"][3]
    assert set(entry) == {"index", "time", "faces"} and entry["index"] == 3 and entry["time"] == 0.3
    face = entry["faces"][0]
    assert set(face) == {"track", "box", "label", "scores", "detector"} and face["detector"] == "squares"
    assert face["box"] == [69, 70, 80, 80] and list(face["scores"]) == list(CLASS_NAMES)
    assert abs(sum(face["scores"].values()) - 1) < 1e-4 and face["label"] == max(face["scores"],
                                                                                 key=face["scores"].get)
    rows = video.prediction_rows([clip], clip.class_names)
    assert list(rows.columns) == ["file", "frame", "time", "track", "x", "y", "w", "h", "label", "detector",
                                  *CLASS_NAMES]
    assert len(rows) == clip.faces_found == 15 + 8 + 2 * 7  # frames 0-14, 15-22, then two squares in 23-29
    assert rows.groupby("frame")["track"].nunique().max() == 2


def test_smoothing_changes_the_scores_not_the_tracks(squares_predictor, shots_clip):
    raw = squares_predictor.predict_video(shots_clip, progress=False)
    smooth = squares_predictor.predict_video(shots_clip, smooth=5.0, progress=False)
    assert [t.track for t in raw.tracks] == [t.track for t in smooth.tracks]
    first = [f.faces[0].scores for f in raw.frames[:15]]
    smoothed = [f.faces[0].scores for f in smooth.frames[:15]]
    assert np.allclose(first[0], smoothed[0])  # a track's first frame has nothing to smooth with
    assert np.std(smoothed, axis=0).sum() < np.std(first, axis=0).sum()


def test_cli_mixes_photos_and_clips(model_file, demo_clip, bad_clips, tmp_path):
    from PIL import Image
    from skimage import data

    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.jpg")
    table = tmp_path / "faces.csv"
    result = run_cli("predict", tmp_path / "astronaut.jpg", demo_clip, bad_clips / "random.mp4", "--model", model_file,
                     "--every", "3", "--smooth", "0.4", "--csv", table, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    photo, clip, broken = json.loads(result.stdout)
    assert len(photo["faces"]) == 1 and photo["error"] is None
    assert clip["frames_analysed"] == 50 and [f["index"] for f in clip["frames"][:3]] == [0, 3, 6]
    assert [t["track"] for t in clip["tracks"]] == [1, 2, 3] and clip["cuts"] == [video.DEMO_CUT_FRAME]
    assert broken["frames"] == [] and "not a video file" in broken["error"]
    rows = pd.read_csv(table)
    assert len(rows) == 1 + sum(len(f["faces"]) for f in clip["frames"])
    assert rows["frame"].isna().sum() == 1 and set(rows["track"].dropna()) == {1, 2, 3}

    text = run_cli("predict", demo_clip, bad_clips / "cut_short.avi", "--model", model_file, "--detector", "haar",
                   "--every", "10")
    assert text.returncode == 0, text.stderr[-2000:]
    lines = text.stdout.strip().splitlines()
    assert lines[0].startswith(f"{demo_clip}: 150 frames at 25 fps, 15 analysed, 1 cut(s); ")
    assert lines[1].startswith(f"{bad_clips / 'cut_short.avi'}: ") and "track(s)" in lines[1]
    assert lines[2].startswith(f"{bad_clips / 'cut_short.avi'}: decoding stopped after ") and len(lines) == 3
    capped = run_cli("predict", demo_clip, "--model", model_file, "--detector", "haar", "--max-frames", "5")
    assert capped.stdout.startswith(f"{demo_clip}: 150 frames at 25 fps, 5 analysed; 1 track(s): #1 0.00–0.16 s")

    unreadable = run_cli("predict", bad_clips / "random.mp4", bad_clips / "no_frames.avi", "--model", model_file)
    assert unreadable.returncode == 1 and "none of the inputs could be read" in unreadable.stderr
    assert "random.mp4: not a video file FFmpeg can decode" in unreadable.stdout
    assert "Traceback" not in unreadable.stderr and "moov" not in unreadable.stderr + unreadable.stdout


@pytest.mark.parametrize("options", [["--every", "0"], ["--every", "2", "--fps", "5"], ["--fps", "0"],
                                     ["--smooth", "-1"], ["--max-frames", "x"]])
def test_cli_refuses_bad_video_options(options):
    result = run_cli("predict", "clip.mp4", *options, timeout=60)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr


# --------------------------------------------------------------------------------------------- figures, widget


def test_timeline_and_key_frame_figures(squares_predictor, shots_clip):
    clip = squares_predictor.predict_video(shots_clip, progress=False)
    timeline = plots.video_timeline(clip)
    assert len(timeline.data) == len(clip.tracks) * (len(CLASS_NAMES) + 1)
    stacked = [t for t in timeline.data if t.type == "scatter" and t.stackgroup == "track1-0"]
    assert len(stacked) == len(CLASS_NAMES) and len(stacked[0].x) == 15
    assert len(timeline.layout.shapes) == len(clip.cuts) * 2 * len(clip.tracks)  # a cut line in every panel
    strip = plots.video_key_frames(clip)
    drawn = [ax for ax in strip.axes if ax.images]
    assert len(drawn) == len(clip.key_frames) and sum(len(ax.patches) for ax in drawn) == sum(
        len(k.faces) for k in clip.key_frames)
    empty = video.VideoPrediction(file="nothing.mp4", class_names=list(CLASS_NAMES))
    # a track unseen for a while is stacked in runs: the area breaks there instead of dipping to 0
    from fer_workbench.plots.video import _seen_runs
    times = np.array([0.0, 0.04, 0.08, 0.40, 0.44, 1.0])
    assert _seen_runs(times, 0.04) == [slice(0, 3), slice(3, 5), slice(5, 6)]
    assert _seen_runs(times[:1], 0.04) == [slice(0, 1)]
    assert "no face tracked" in plots.video_timeline(empty).layout.title.text
    assert plots.video_key_frames(empty).axes


def test_video_picker_saves_uploads_and_analyses_them(squares_predictor, shots_clip, tmp_path):
    box = widgets.video_picker(squares_predictor, tmp_path / "clips", progress=False)
    saved = box.receive(({"name": "../shots.avi", "type": "video/avi", "size": shots_clip.stat().st_size,
                          "content": memoryview(shots_clip.read_bytes())},
                         {"name": "notes.txt", "type": "text/plain", "size": 4, "content": memoryview(b"text")}))
    assert saved == [tmp_path / "clips" / "shots.avi"]  # saved under its own name, inside the folder
    assert box.last is not None and len(box.last.tracks) == 3  # choosing it analysed it
    assert "notes.txt: not a video file name" in box.children[1].value
    views = widgets.video_views(box.last)
    assert sum(isinstance(v, pd.DataFrame) for v in views) == 1
    broken = widgets.video_views(video.VideoPrediction(file="x.mp4", error="x.mp4: no such file", readable=False))
    assert any("no such file" in getattr(v, "data", "") for v in broken)


def test_video_path_under_home(squares_predictor, shots_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "shots.avi").write_bytes(shots_clip.read_bytes())
    clip = squares_predictor.predict_video("~/clips/shots.avi", max_frames=2, progress=False)
    assert clip.readable and clip.frames_analysed == 2 and clip.file == "~/clips/shots.avi"
    assert widgets.video_picker(squares_predictor, "~/clips").children[0].children[0].options == ("shots.avi",)
