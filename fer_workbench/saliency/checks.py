"""The checks that say whether to trust saliency maps: parameter randomisation (Adebayo et al. 2018), deletion /
insertion against a random order (Petsiuk et al. 2018), mass inside the synthetic data's planted regions, and the
pass/fail verdicts and tables notebook 04 shows."""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pandas as pd

from fer_workbench import CLASS_NAMES, IMAGE_SIZE
from fer_workbench.errors import WorkbenchError
from fer_workbench.models.common import tag_model
from fer_workbench.models.io import model_class_names
from fer_workbench.saliency.maps import _check_model, _classes, _images, last_conv_layer, saliency_maps

# ----------------------------------------------------------------------------------- randomisation (Adebayo)


def _block_key(name: str) -> str:
    """block3_conv1 → block3, m4_sep2 → m4, stem_bn1 → stem, fc1 → fc1, logits → logits."""
    return name.split("_", 1)[0]


def randomisation_steps(model: keras.Model, granularity: str = "block") -> list[list[str]]:
    """Layers with weights grouped into steps from the output backwards: one block (name prefix before '_',
    e.g. ``block4``, ``m3``, ``fc1``, ``logits``) or one layer per step."""
    if granularity not in ("block", "layer"):
        raise WorkbenchError(f"granularity must be 'block' or 'layer', got {granularity!r}")
    weighted = [layer for layer in model.layers if layer.weights]
    if granularity == "layer":
        return [[layer.name] for layer in reversed(weighted)]
    groups: dict[str, list[str]] = {}
    last: dict[str, int] = {}
    for i, layer in enumerate(weighted):
        key = _block_key(layer.name)
        groups.setdefault(key, []).append(layer.name)
        last[key] = i
    return [groups[key] for key in sorted(groups, key=lambda k: -last[k])]


def _initializer_for(layer, var, seed: int):
    name = var.name.split("/")[-1].split(":")[0]
    candidates = [f"{name}_initializer"]
    if name.endswith("_kernel"):
        candidates.append(f"{name[:-len('_kernel')]}_initializer")  # depthwise_kernel → depthwise_initializer
    init = next((getattr(layer, c) for c in candidates if getattr(layer, c, None) is not None), None)
    if init is None:
        init = keras.initializers.GlorotUniform() if len(var.shape) >= 2 else keras.initializers.Zeros()
    config = init.get_config()
    if "seed" in config:
        init = type(init).from_config({**config, "seed": seed})
    return init


def _reinitialise(layer, seed: int) -> None:
    if isinstance(layer, keras.Model):  # a nested model: each inner layer with its own initialisers
        for j, inner in enumerate(layer.layers):
            _reinitialise(inner, seed * 7919 + j)
        return
    for j, var in enumerate(layer.weights):
        init = _initializer_for(layer, var, seed * 1000 + j)
        var.assign(keras.ops.cast(init(var.shape, dtype=var.dtype), var.dtype))


def _spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman ρ between each pair of maps (average ranks for ties); 0 where either map is constant."""
    from scipy.stats import rankdata

    ra = rankdata(a.reshape(len(a), -1), axis=1)
    rb = rankdata(b.reshape(len(b), -1), axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra**2).sum(1) * (rb**2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra * rb).sum(1) / denom
    return np.where(denom > 0, rho, 0.0)


def randomisation_check(model: keras.Model, images, classes, method: str = "gradcam", steps=None, *,
                        granularity: str = "block", seed: int = 0, batch_size: int = 64, **kwargs) -> pd.DataFrame:
    """Cascading model-parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps").

    A clone of ``model`` is re-initialised step by step from the output backwards (``randomisation_steps``:
    one block or layer per step; ``steps`` an int keeps the first that many, a list of lists of layer names
    sets them). After each step the maps are recomputed and compared with the trained model's by Spearman
    rank correlation. Rows: step 0 (nothing randomised, ρ = 1) then one per step, with the layers randomised
    at that step, the cumulative count, mean / std ρ and the share of maps that came out constant (counted as
    ρ = 0). A method that explains the model should fall towards 0; one that stays high is an edge detector.
    """
    class_names = _check_model(model)
    batch, _ = _images(images)
    cls = _classes(classes, len(batch), class_names)
    if steps is None or isinstance(steps, (int, np.integer)):
        plan = randomisation_steps(model, granularity)
        if steps is not None:
            if steps < 1:
                raise WorkbenchError(f"steps must be ≥ 1, got {steps}")
            plan = plan[:int(steps)]
    else:
        plan = [[s] if isinstance(s, str) else list(s) for s in steps]
        known = {layer.name for layer in model.layers}
        unknown = sorted({name for group in plan for name in group} - known)
        if unknown:
            raise WorkbenchError(f"model {model.name!r} has no layer(s) {', '.join(unknown)}")
    reference = saliency_maps(model, batch, cls, method, batch_size, **kwargs)
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    tag_model(clone, fer_preprocessing=getattr(model, "fer_preprocessing", "none"),
              fer_class_names=list(model_class_names(model)))  # a clone keeps no card: an 8-class model stays 8
    layer = kwargs.pop("layer", None)
    if layer is None and method in ("gradcam", "gradcam++", "scorecam"):
        layer = last_conv_layer(model).name
    rows = [{"step": 0, "randomised": "", "layers_randomised": 0, "spearman_mean": 1.0, "spearman_std": 0.0,
             "constant_share": float(np.mean(reference.reshape(len(reference), -1).std(1) == 0))}]
    done = 0
    for k, group in enumerate(plan, start=1):
        for j, name in enumerate(group):
            _reinitialise(clone.get_layer(name), seed * 100_003 + k * 101 + j)
        done += len(group)
        maps = saliency_maps(clone, batch, cls, method, batch_size, layer=layer, **kwargs)
        rho = _spearman_rows(reference, maps)
        rows.append({"step": k, "randomised": ",".join(group), "layers_randomised": done,
                     "spearman_mean": float(rho.mean()), "spearman_std": float(rho.std()),
                     "constant_share": float(np.mean(maps.reshape(len(maps), -1).std(1) == 0))})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ deletion / insertion (RISE)


def _baseline_images(batch: np.ndarray, baseline: str) -> np.ndarray:
    if baseline == "blur":
        # RISE's insertion canvas: a heavy blur keeps the mean brightness and removes the detail.
        return np.stack([cv2.GaussianBlur(image, (0, 0), sigmaX=5.0) for image in batch])
    mean = np.rint(batch.reshape(len(batch), -1).mean(1)).astype(np.uint8)
    return np.broadcast_to(mean[:, None, None], batch.shape).copy()


def _curves(model, batch, base, cls, orders, fractions, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of ``cls`` as the first k pixels of each order are deleted (→ base) / inserted (→ image)."""
    from fer_workbench.inference import predict_proba

    n, npix = len(batch), IMAGE_SIZE * IMAGE_SIZE
    counts = np.rint(fractions * npix).astype(np.int64)
    rank = np.empty_like(orders)
    np.put_along_axis(rank, orders, np.arange(npix)[None, :].repeat(n, 0), axis=1)  # position of each pixel
    deletion = np.empty((n, len(counts)), np.float32)
    insertion = np.empty((n, len(counts)), np.float32)
    flat_img, flat_base = batch.reshape(n, -1), base.reshape(n, -1)
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        taken = rank[sl, None, :] < counts[None, :, None]  # (m, steps, pixels): pixel is among the first k
        deleted = np.where(taken, flat_base[sl, None, :], flat_img[sl, None, :])
        inserted = np.where(taken, flat_img[sl, None, :], flat_base[sl, None, :])
        m = taken.shape[0]
        both = np.concatenate([deleted, inserted]).reshape(-1, IMAGE_SIZE, IMAGE_SIZE).astype(np.uint8)
        probs = predict_proba(model, both)
        target = np.tile(np.repeat(cls[sl], len(counts)), 2)
        p = probs[np.arange(len(both)), target].reshape(2, m, len(counts))
        deletion[sl], insertion[sl] = p[0], p[1]
    return deletion, insertion


def _auc(curves: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    return np.trapezoid(curves, fractions, axis=-1)


def deletion_insertion(model: keras.Model, images, classes, maps, steps: int = 20, baseline: str = "blur", *,
                       seed: int = 0, chunk: int = 64) -> dict:
    """Deletion and insertion curves (Petsiuk et al. 2018) for saliency ``maps`` and for a random order.

    Pixels are ranked by the map (ties broken at random, seeded) and in ``steps`` equal steps the top ones are
    replaced by the ``baseline`` ("blur": the image Gaussian-blurred with σ = 5 px; "mean": its mean gray)
    for deletion, or put back onto the baseline for insertion; the curve is the model's probability of the
    class (through its own preprocessing). AUCs are over the removed/added fraction 0..1, so in [0, 1]. A
    faithful map has deletion AUC below and insertion AUC above the random order's (``random_*``).

    Returns ``fractions``; mean curves ``deletion``, ``insertion``, ``random_deletion``,
    ``random_insertion``; mean AUCs ``deletion_auc``, ``insertion_auc``, ``random_deletion_auc``,
    ``random_insertion_auc``; and per-image AUC arrays under ``per_image`` (same keys).
    """
    class_names = _check_model(model)
    if baseline not in ("blur", "mean"):
        raise WorkbenchError(f"baseline must be 'blur' or 'mean', got {baseline!r}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise WorkbenchError(f"steps must be a positive integer, got {steps!r}")
    batch, _ = _images(images)
    cls = _classes(classes, len(batch), class_names)
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.shape != batch.shape:
        raise WorkbenchError(f"maps must match the images' shape {batch.shape}, got {maps.shape}")
    if len(batch) == 0:
        raise WorkbenchError("no images")
    rng = np.random.default_rng(seed)
    n, npix = len(batch), IMAGE_SIZE * IMAGE_SIZE
    tiebreak = rng.random((n, npix))
    flat = np.nan_to_num(maps.reshape(n, -1), nan=-np.inf)
    orders = np.lexsort((tiebreak, -flat), axis=1)  # by map descending, then random
    random_orders = np.argsort(rng.random((n, npix)), axis=1)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    base = _baseline_images(batch, baseline)
    d, i = _curves(model, batch, base, cls, orders, fractions, chunk)
    rd, ri = _curves(model, batch, base, cls, random_orders, fractions, chunk)
    curves = {"deletion": d, "insertion": i, "random_deletion": rd, "random_insertion": ri}
    result: dict = {"fractions": fractions, "steps": steps, "baseline": baseline, "n": n, "per_image": {}}
    for key, values in curves.items():
        result[key] = values.mean(axis=0)
        aucs = _auc(values, fractions)
        result[f"{key}_auc"] = float(aucs.mean())
        result["per_image"][f"{key}_auc"] = aucs
    return result


# ----------------------------------------------------------------------------------------- region checks


def region_mass(maps, masks) -> np.ndarray:
    """Share of each map's mass inside its image's mask (N; NaN for a zero map or an empty mask).

    ``masks``: N×48×48 bool (e.g. ``SyntheticTruth.image_region_masks``) or one 48×48 mask for all.
    """
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3 or maps.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise WorkbenchError(f"expected N×48×48 maps, got shape {maps.shape}")
    if masks.shape == (IMAGE_SIZE, IMAGE_SIZE):
        masks = np.broadcast_to(masks, maps.shape)
    if masks.shape != maps.shape:
        raise WorkbenchError(f"masks must be 48×48 or match the maps' shape {maps.shape}, got {masks.shape}")
    if np.any(maps < 0):
        raise WorkbenchError("maps must be non-negative to measure their mass")
    total = maps.sum(axis=(1, 2))
    inside = (maps * masks).sum(axis=(1, 2))
    empty = ~masks.any(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = inside / total
    share[(total <= 0) | empty] = np.nan
    return share


def region_report(maps, masks, labels, class_names=CLASS_NAMES) -> pd.DataFrame:
    """Per class: images, mean share of map mass inside the mask, mean share of the image the mask covers, and
    their ratio (``lift``: > 1 means the maps concentrate on the signal region). Images with an empty mask
    (non-faces) or a zero map are left out; a final ``all`` row pools every image."""
    share = region_mass(maps, masks)
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim == 2:
        masks = np.broadcast_to(masks, (len(share), IMAGE_SIZE, IMAGE_SIZE))
    labels = np.asarray(labels)
    if labels.shape != (len(share),):
        raise WorkbenchError(f"labels must be one per map ({len(share)}), got shape {labels.shape}")
    area = masks.mean(axis=(1, 2))
    valid = np.isfinite(share)
    rows = []
    groups = [(name, labels == k) for k, name in enumerate(class_names)] + [("all", np.ones(len(share), bool))]
    for name, member in groups:
        sel = member & valid
        mass, cover = (float(share[sel].mean()), float(area[sel].mean())) if sel.any() else (np.nan, np.nan)
        rows.append({"class": name, "n": int(sel.sum()), "mass_share": mass, "area_share": cover,
                     "lift": mass / cover if sel.any() and cover > 0 else np.nan})
    return pd.DataFrame(rows).set_index("class")


RANDOMISED_RHO_MAX = 0.3  # |ρ| with every layer randomised: below this the maps depend on the learned weights


def check_verdicts(sanity: pd.DataFrame, faithfulness: pd.DataFrame,
                   rho_max: float = RANDOMISED_RHO_MAX) -> pd.DataFrame:
    """Pass / fail per method and check, from ``randomisation_table`` and ``faithfulness_table``.

    Randomisation passes when the maps of the fully randomised model no longer resemble the trained model's
    (|mean ρ| < ``rho_max``); deletion passes when removing salient pixels first lowers the class probability
    faster than a random order (lower AUC), insertion when adding them first raises it faster (higher AUC).
    """
    rows = []
    for method, table in sanity.groupby("method", sort=False):
        last = table.sort_values("step").iloc[-1]
        rows.append({"method": method, "check": "randomisation: |ρ| with all layers randomised",
                     "value": abs(float(last["spearman_mean"])), "reference": rho_max,
                     "passed": abs(float(last["spearman_mean"])) < rho_max})
    for method, row in faithfulness.iterrows():
        rows.append({"method": method, "check": "deletion AUC vs random order", "value": float(row["deletion"]),
                     "reference": float(row["random_deletion"]),
                     "passed": float(row["deletion"]) < float(row["random_deletion"])})
        rows.append({"method": method, "check": "insertion AUC vs random order", "value": float(row["insertion"]),
                     "reference": float(row["random_insertion"]),
                     "passed": float(row["insertion"]) > float(row["random_insertion"])})
    return pd.DataFrame(rows, columns=["method", "check", "value", "reference", "passed"])


def example_positions(labels: np.ndarray, predicted: np.ndarray, class_names, per_class: int = 4, seed: int = 0
                      ) -> tuple[np.ndarray, list[str]]:
    """Up to ``per_class`` correct then up to ``per_class`` wrong examples of each class (positions), with
    "true → predicted" captions; drawn reproducibly."""
    rng = np.random.default_rng(seed)
    correct = predicted == labels
    chosen = []
    for k in range(len(class_names)):
        for member in (correct, ~correct):
            pool = np.flatnonzero((labels == k) & member)
            chosen.append(rng.choice(pool, min(per_class, len(pool)), replace=False))
    positions = np.concatenate(chosen).astype(int)
    names = np.asarray(class_names)
    return positions, [f"{names[labels[i]]} → {names[predicted[i]]}" for i in positions]


def class_mean_maps(images: np.ndarray, maps: np.ndarray, labels: np.ndarray, predicted: np.ndarray, class_names
                    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per class with correctly classified images: the mean face (uint8), the mean map (rescaled to [0, 1])
    and a caption with the count."""
    correct = predicted == labels
    present = [k for k in range(len(class_names)) if (correct & (labels == k)).any()]
    faces = np.stack([images[correct & (labels == k)].mean(0) for k in present]).astype(np.uint8)
    means = np.stack([maps[correct & (labels == k)].mean(0) for k in present])
    means /= np.maximum(means.max(axis=(1, 2), keepdims=True), 1e-8)
    return faces, means, [f"{class_names[k]} (n={(correct & (labels == k)).sum()})" for k in present]


def randomisation_table(model, images, classes, methods=("gradcam", "saliency"), seed: int = 0) -> pd.DataFrame:
    """``randomisation_check`` for several methods in one long table (column ``method``)."""
    return pd.concat([randomisation_check(model, images, classes, method, seed=seed).assign(method=method)
                      for method in methods], ignore_index=True)


def faithfulness_table(model, images, classes, methods=("gradcam", "saliency"), steps: int = 10, seed: int = 0
                       ) -> tuple[pd.DataFrame, dict]:
    """Deletion / insertion AUCs (and their random-order baselines) per method, plus the full curves."""
    curves, rows = {}, []
    for method in methods:
        maps = saliency_maps(model, images, classes, method)
        curves[method] = deletion_insertion(model, images, classes, maps, steps=steps, seed=seed)
        rows.append({"method": method, **{key: curves[method][f"{key}_auc"] for key in
                                          ("deletion", "random_deletion", "insertion", "random_insertion")}})
    return pd.DataFrame(rows).set_index("method"), curves
