"""Occlusion score: separates occluded synthetic faces from clean ones; deterministic; validates its input."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fer_workbench.cleaning.occluders import OCCLUDER_KINDS, paste_occluder
from fer_workbench.cleaning.occlusion import occlusion_scores
from fer_workbench.data.fer_csv import parse_fer_csv_bytes
from fer_workbench.data.synthetic import make_synthetic
from fer_workbench.errors import WorkbenchError


@pytest.fixture(scope="module")
def synthetic():
    raw, truth = make_synthetic(1200, seed=5)
    return parse_fer_csv_bytes(raw, "synthetic").images, truth


def test_paste_occluder_changes_the_face_where_its_mask_is(synthetic):
    images, truth = synthetic
    face = images[np.flatnonzero(~truth.occluded & ~truth.nonface)[0]]
    for kind in OCCLUDER_KINDS:
        out, mask = paste_occluder(face, kind, np.random.default_rng(1), return_mask=True)
        again = paste_occluder(face, kind, np.random.default_rng(1))
        assert out.dtype == np.uint8 and out.shape == (48, 48) and np.array_equal(out, again)
        assert mask.min() >= 0 and mask.max() <= 1 and (mask > 0.5).sum() >= 10, kind
        assert np.array_equal(out[mask == 0], face[mask == 0])
    with pytest.raises(WorkbenchError):
        paste_occluder(face, "scarf-of-doom", np.random.default_rng(0))


def test_scores_rank_occluded_faces_first(synthetic):
    """The planted occluders come from the synthetic generator, never from the detector's own drawing code, and
    the detector never sees the truth: they are held out by construction."""
    images, truth = synthetic
    scores = occlusion_scores(images, seed=0, epochs=6, threads=1, progress=False)
    faces = ~truth.nonface
    assert truth.occluded[faces].sum() >= 30
    assert roc_auc_score(truth.occluded[faces], scores[faces]) > 0.85  # 0.90–0.92 over detector seeds 0–2


def test_scores_shape_dtype_and_determinism(synthetic):
    images = synthetic[0][:80]
    a = occlusion_scores(images, seed=3, epochs=1, threads=1, progress=False)
    b = occlusion_scores(images, seed=3, epochs=1, threads=1, progress=False)
    assert a.shape == (80,) and a.dtype == np.float64
    assert np.all((a >= 0) & (a <= 1))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad", [np.zeros((0, 48, 48), np.uint8), np.zeros((10, 48, 40), np.uint8),
                                 np.zeros((48, 48), np.uint8), np.full((10, 48, 48), 300.0),
                                 np.full((10, 48, 48), np.nan)])
def test_bad_input_is_a_workbench_error(bad):
    with pytest.raises(WorkbenchError):
        occlusion_scores(bad, progress=False)


def test_bad_parameters_are_workbench_errors(synthetic):
    with pytest.raises(WorkbenchError):
        occlusion_scores(synthetic[0][:20], epochs=0, progress=False)
