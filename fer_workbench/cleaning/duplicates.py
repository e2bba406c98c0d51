"""Exact and near-duplicate images, and the train/test leakage they cause.

Leakage is computed once, by ``split_membership`` (which splits each row's duplicate group reaches): explore's
leakage matrix, the cleaning manifest's ``cross_split_leak`` and the leakage-free test subsets that evaluation
reports all read it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fer_workbench.data.dataset import Dataset


def exact_duplicate_groups(images: np.ndarray) -> np.ndarray:
    """Group id per image (-1 for unique images); byte-identical images share an id."""
    flat = np.ascontiguousarray(images).reshape(len(images), -1)
    # A void view makes each row one hashable scalar, so np.unique compares whole images at C speed.
    rows = flat.view(np.dtype((np.void, flat.shape[1])))[:, 0]
    _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
    duplicated = counts[inverse] > 1
    group = np.full(len(images), -1, dtype=np.int64)
    # Renumber groups 0..G-1 in order of first appearance so ids are stable across loads.
    first_seen = {}
    for i in np.flatnonzero(duplicated):
        group[i] = first_seen.setdefault(int(inverse[i]), len(first_seen))
    return group


def exact_duplicate_table(dataset: Dataset) -> pd.DataFrame:
    """One row per exact-duplicate group: size, splits spanned, labels, and whether it leaks across splits."""
    return group_table(dataset, exact_duplicate_groups(dataset.images))


# --- near duplicates -------------------------------------------------------------------------------------

NEAR_CROP = 4  # border ignored by the descriptor (shifts and crops mostly change the border)
NEAR_GRID = 8  # descriptor side: blurred, area-downsampled centre
NEAR_BLUR = 3.0  # Gaussian sigma in pixels: tolerates shifts of a few pixels
NEAR_CANDIDATE = 0.8  # descriptor cosine similarity to become a candidate pair
NEAR_PREFILTER = 0.88  # half-resolution aligned correlation a candidate needs before the full-resolution check
NEAR_ACCEPT = 0.92  # full-resolution aligned normalised cross-correlation to accept a pair
MAX_SHIFT = 4
NEAR_NEIGHBOURS = 4
IMAGE_HALF = 24  # verification works at half resolution
HALF_SHIFT = 2  # ±2 px at half resolution = ±4 px
SCALES = (1 / 1.2, 1 / 1.1, 1.0, 1.1, 1.2)


def near_duplicate_descriptors(images: np.ndarray) -> np.ndarray:
    """Float32 N×64 unit vectors: the blurred 8×8 centre of each image, zero-mean (brightness-invariant)."""
    import cv2

    out = np.empty((len(images), NEAR_GRID * NEAR_GRID), np.float32)
    c = NEAR_CROP
    for i, image in enumerate(images):
        centre = cv2.GaussianBlur(image[c:-c, c:-c], (0, 0), NEAR_BLUR)
        out[i] = cv2.resize(centre, (NEAR_GRID, NEAR_GRID), interpolation=cv2.INTER_AREA).ravel()
    out -= out.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    # Flat images have no structure to match on; give them a zero vector so they never become candidates.
    return np.divide(out, norm, out=np.zeros_like(out), where=norm > 1e-3)


def candidate_pairs(descriptors: np.ndarray, threshold: float = NEAR_CANDIDATE, k: int = NEAR_NEIGHBOURS,
                    chunk: int = 2048) -> np.ndarray:
    """(i, j, similarity) rows, i < j, for each image's k most similar others above ``threshold`` (brute force)."""
    n = len(descriptors)
    rows = []
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((0, 3))
    for start in range(0, n, chunk):
        block = descriptors[start:start + chunk] @ descriptors.T
        idx = np.arange(start, min(start + chunk, n))
        block[idx - start, idx] = -1.0
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        sim = np.take_along_axis(block, top, axis=1)
        keep = sim >= threshold
        i = np.repeat(idx, k)[keep.ravel()]
        rows.append(np.column_stack([i, top[keep], sim[keep]]))
    pairs = np.concatenate(rows) if rows else np.zeros((0, 3))
    lo, hi = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0], pairs[:, 1])
    pairs = np.column_stack([lo, hi, pairs[:, 2]])
    _, first = np.unique(pairs[:, :2], axis=0, return_index=True)
    return pairs[np.sort(first)]


def _zoomed_templates(images: np.ndarray) -> np.ndarray:
    """N×S×400 unit vectors: the centre 20×20 (at half resolution) of each image zoomed by each of SCALES."""
    import cv2

    half = IMAGE_HALF
    inner = half - 2 * HALF_SHIFT
    out = np.empty((len(images), len(SCALES), inner * inner), np.float32)
    for i, image in enumerate(images):
        small = cv2.resize(image, (half, half), interpolation=cv2.INTER_AREA).astype(np.float32)
        for k, scale in enumerate(SCALES):
            zoom = cv2.getRotationMatrix2D(((half - 1) / 2, (half - 1) / 2), 0.0, scale)
            warped = cv2.warpAffine(small, zoom, (half, half), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
            out[i, k] = warped[HALF_SHIFT:half - HALF_SHIFT, HALF_SHIFT:half - HALF_SHIFT].ravel()
    return _unit_rows(out)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 1e-3)


def _shifted_windows(images: np.ndarray) -> np.ndarray:
    """N×W×400 unit vectors: every 20×20 window (shifts 0..4 at half resolution) of each half-size image."""
    import cv2

    half, inner = IMAGE_HALF, IMAGE_HALF - 2 * HALF_SHIFT
    small = np.stack([cv2.resize(im, (half, half), interpolation=cv2.INTER_AREA) for im in images])
    small = small.astype(np.float32)
    steps = range(2 * HALF_SHIFT + 1)
    windows = np.stack([small[:, dy:dy + inner, dx:dx + inner].reshape(len(images), -1)
                        for dy in steps for dx in steps], axis=1)
    return _unit_rows(windows)


def aligned_similarities(images: np.ndarray, i: np.ndarray, j: np.ndarray, batch: int = 2048) -> np.ndarray:
    """Per pair, the best normalised cross-correlation of image i's zoomed centre with any window of image j.

    Zero-mean normalised cross-correlation at half resolution over shifts up to ±4 px and zooms 0.83-1.2,
    both directions: invariant to brightness/contrast, tolerant of small shifts, crops, resizes and JPEG.
    """
    out = np.full(len(i), -1.0, np.float32)
    if len(i) == 0:
        return out
    nodes = np.unique(np.concatenate([i, j]))
    position = np.full(len(images), -1, np.int64)
    position[nodes] = np.arange(len(nodes))
    templates = _zoomed_templates(images[nodes])
    windows = _shifted_windows(images[nodes])
    a, b = position[i], position[j]
    for start in range(0, len(i), batch):
        sl = slice(start, start + batch)
        one = np.matmul(templates[a[sl]], windows[b[sl]].transpose(0, 2, 1)).reshape(len(a[sl]), -1).max(axis=1)
        two = np.matmul(templates[b[sl]], windows[a[sl]].transpose(0, 2, 1)).reshape(len(a[sl]), -1).max(axis=1)
        out[sl] = np.maximum(one, two)
    return out


def aligned_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Best full-resolution normalised cross-correlation of a's zoomed centre inside b (shifts ±4 px)."""
    import cv2

    fb = b.astype(np.float32)
    best = -1.0
    inner = a.shape[0] - 2 * MAX_SHIFT
    for scale in SCALES:
        zoom = cv2.getRotationMatrix2D(((a.shape[1] - 1) / 2, (a.shape[0] - 1) / 2), 0.0, scale)
        warped = cv2.warpAffine(a.astype(np.float32), zoom, a.shape[::-1], flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        template = np.ascontiguousarray(warped[MAX_SHIFT:MAX_SHIFT + inner, MAX_SHIFT:MAX_SHIFT + inner])
        if template.std() < 1e-3:
            continue
        # Zero-mean normalised cross-correlation: invariant to brightness and contrast changes.
        best = max(best, float(cv2.matchTemplate(fb, template, cv2.TM_CCOEFF_NORMED).max()))
    return best


def near_duplicate_pairs(images: np.ndarray, accept: float = NEAR_ACCEPT) -> pd.DataFrame:
    """Pairs of images that show the same picture after a small shift, crop, resize, brightness or JPEG change.

    Candidates come from a brute-force nearest-neighbour search on blurred low-resolution descriptors; each is
    verified by aligned normalised cross-correlation. Exact duplicates are included (similarity 1).
    """
    pairs = candidate_pairs(near_duplicate_descriptors(images))
    i, j = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    coarse = aligned_similarities(images, i, j)
    keep = coarse >= NEAR_PREFILTER
    pairs, coarse = pairs[keep], coarse[keep]
    scores = np.array([max(aligned_similarity(images[a], images[b]), aligned_similarity(images[b], images[a]))
                       for a, b in zip(i[keep], j[keep], strict=True)])
    frame = pd.DataFrame({"i": pairs[:, 0].astype(np.int64), "j": pairs[:, 1].astype(np.int64),
                          "descriptor_similarity": pairs[:, 2], "coarse_similarity": coarse,
                          "aligned_similarity": scores})
    return frame[frame["aligned_similarity"] >= accept].reset_index(drop=True)


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected-component id per node (-1 for nodes without edges), numbered by first member."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    linked = np.zeros(n, bool)
    linked[i] = linked[j] = True
    group = np.full(n, -1, np.int64)
    first_seen = {}
    for node in np.flatnonzero(linked):
        group[node] = first_seen.setdefault(int(comp[node]), len(first_seen))
    return group


def duplicate_groups(images: np.ndarray, near: bool = True) -> pd.DataFrame:
    """Per image: exact group, near group (exact ∪ verified near pairs), best near similarity (-1 for none)."""
    exact = exact_duplicate_groups(images)
    n = len(images)
    ii, jj, sims = [], [], []
    # Chain exact-duplicate members so every exact group is also one near group.
    for members in pd.Series(np.arange(n)[exact >= 0]).groupby(exact[exact >= 0]):
        m = members[1].to_numpy()
        ii.append(m[:-1])
        jj.append(m[1:])
        sims.append(np.ones(len(m) - 1))
    if near and n > 1:
        pairs = near_duplicate_pairs(images)
        ii.append(pairs["i"].to_numpy())
        jj.append(pairs["j"].to_numpy())
        sims.append(pairs["aligned_similarity"].to_numpy())
    i = np.concatenate(ii) if ii else np.zeros(0, np.int64)
    j = np.concatenate(jj) if jj else np.zeros(0, np.int64)
    s = np.concatenate(sims) if sims else np.zeros(0)
    best = np.full(n, -1.0)
    np.maximum.at(best, i, s)
    np.maximum.at(best, j, s)
    return pd.DataFrame({"exact_group": exact, "near_group": _components(n, i, j), "near_similarity": best})


def group_table(dataset: Dataset, group: np.ndarray) -> pd.DataFrame:
    """One row per group id (>= 0): size, row ids, splits, labels, cross-split leakage, label conflict."""
    member = group >= 0
    frame = pd.DataFrame({"group": group[member], "row_id": dataset.row_ids[member],
                          "split": dataset.splits[member], "label": dataset.labels[member],
                          "cross_split": leaks_across_splits(group, dataset.splits)[member]})
    if frame.empty:
        return pd.DataFrame(columns=["group", "size", "row_ids", "splits", "labels", "cross_split",
                                     "label_conflict"])
    names = np.asarray(dataset.class_names)
    table = frame.groupby("group").agg(
        size=("row_id", "size"),
        row_ids=("row_id", lambda s: " ".join(map(str, s))),
        splits=("split", lambda s: ",".join(sorted(set(s)))),
        labels=("label", lambda s: ",".join(names[sorted(set(s))])),
        cross_split=("cross_split", "any"),
        n_labels=("label", "nunique"),
    )
    table["label_conflict"] = table["n_labels"] > 1
    return table.drop(columns=["n_labels"]).reset_index()


# --- leakage ---------------------------------------------------------------------------------------------


def split_membership(group: np.ndarray, splits: np.ndarray, split_names=None) -> pd.DataFrame:
    """Per row (index: position) and split (columns: ``split_names``, default every split present): whether the
    row's duplicate group has a member in that split, its own row included; all False for rows in no group."""
    group, splits = np.asarray(group), np.asarray(splits)
    names = list(pd.unique(splits) if split_names is None else split_names)
    column = pd.Index(names).get_indexer(splits)
    grouped = group >= 0
    listed = grouped & (column >= 0)
    reached = np.zeros((int(np.max(group, initial=-1)) + 1, len(names)), bool)
    reached[group[listed], column[listed]] = True
    member = np.zeros((len(group), len(names)), bool)
    member[grouped] = reached[group[grouped]]
    return pd.DataFrame(member, columns=names)


def leaks_across_splits(group: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """Per row: True when its duplicate group spans more than one split (a copy of it is in another split)."""
    return split_membership(group, splits).to_numpy().sum(axis=1) > 1


def leakage_free_mask(dataset: Dataset, split: str = "PrivateTest", train_split: str = "Training") -> np.ndarray:
    """Per row of ``dataset.split(split)``, in order: True when no byte-identical copy of it is in ``train_split``
    (the rows a leakage-free accuracy is computed on)."""
    reached = split_membership(exact_duplicate_groups(dataset.images), dataset.splits, [train_split])
    return ~reached[train_split].to_numpy()[dataset.splits == split]


def leakage_free_indices(dataset: Dataset, test_split: str = "PrivateTest", train_split: str = "Training"
                         ) -> np.ndarray:
    """Dataset positions of ``test_split`` images with no byte-identical copy in ``train_split``."""
    return np.flatnonzero(dataset.splits == test_split)[leakage_free_mask(dataset, test_split, train_split)]
