"""``~`` in the paths a notebook's parameters take (``ferplus_path``, ``photos_dir``) is the home folder, as it
already is for ``data_path`` and ``output_dir``."""

from pathlib import Path

from PIL import Image

from fer_workbench import SPLITS
from fer_workbench.data import load_ferplus
from fer_workbench.predict import expand_inputs

FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"


def test_ferplus_path_under_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    rows = [f"{split},fer{i:07d}.png," + ",".join("10" if j == i else "0" for j in range(10))
            for i, split in enumerate(SPLITS)]
    (tmp_path / "fer2013new.csv").write_text("\n".join([FERPLUS_HEADER, *rows]) + "\n")
    votes = load_ferplus("~/fer2013new.csv")
    assert votes.source == str(tmp_path / "fer2013new.csv")
    assert list(votes.usage) == list(SPLITS) and votes.votes[1, 1] == 10


def test_photos_dir_under_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (8, 8)).save(photos / "face.jpg")
    (photos / "notes.txt").write_text("not an image")
    assert expand_inputs(["~/photos"]) == [photos / "face.jpg"]
    assert expand_inputs([Path("~/photos/missing.jpg")]) == [photos / "missing.jpg"]
