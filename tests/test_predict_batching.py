"""FacePredictor.predict_paths sends the faces of several photos through the model in one call: same results."""

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from fer_workbench.predict import FacePredictor


class CountingModelCalls:
    """Wraps the predictor's crop classifier, recording the batch size of every call."""

    def __init__(self, classify):
        self.classify, self.batches = classify, []

    def __call__(self, crops):
        self.batches.append(len(crops))
        return self.classify(crops)


def test_folder_faces_go_through_the_model_together_with_the_same_results(tiny_model_file, tmp_path):
    astronaut = skdata.astronaut()
    Image.fromarray(astronaut).save(tmp_path / "a_one.jpg")
    Image.fromarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)).save(tmp_path / "b_two.jpg")
    Image.fromarray(np.full((96, 96, 3), 128, np.uint8)).save(tmp_path / "c_none.png")
    (tmp_path / "d_broken.jpg").write_bytes(b"not a jpeg")
    Image.fromarray(astronaut[:, ::-1]).save(tmp_path / "e_mirror.jpg")

    predictor = FacePredictor(tiny_model_file, detector="haar")
    one_by_one = [predictor.predict_photo(path) for path in sorted(tmp_path.iterdir())]
    predictor._predict = counter = CountingModelCalls(predictor._predict)
    together = predictor.predict_paths([tmp_path])
    assert counter.batches == [4]  # 1 + 2 + 0 + 0 + 1 faces, one call
    assert [r.file for r in together] == [r.file for r in one_by_one]
    for batched, single in zip(together, one_by_one, strict=True):
        assert (batched.error, batched.readable) == (single.error, single.readable)
        assert [f.box for f in batched.faces] == [f.box for f in single.faces]
        assert [f.label for f in batched.faces] == [f.label for f in single.faces]
        for a, b in zip(batched.faces, single.faces, strict=True):
            assert a.scores == pytest.approx(b.scores, abs=1e-5)
            np.testing.assert_array_equal(a.crop, b.crop)

    counter.batches.clear()
    assert [len(r.faces) for r in predictor.predict_paths([tmp_path], batch=2)] == [1, 2, 0, 0, 1]
    assert counter.batches == [3, 1]  # photos 1-2, then 3-4 (no face: no call), then 5
