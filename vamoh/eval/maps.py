"""Entropy and segmentation maps of VAMoH's mixture, as arrays for figures.

``model.mixture_maps(observed, query_coords)`` returns ``{"entropy": (B, Q) float, "segmentation":
(B, Q) long}`` (the categorical posterior's entropy and its argmax component per query point). Here
they are folded back onto the query grid so that a figure can ``imshow`` them directly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..checks import DataError, check

# Tableau-like colours for up to 10 mixture components (CelebA's K = 10); longer K cycles.
_PALETTE = np.array(
    [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
     [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]],
    dtype=np.uint8,
)  # fmt: skip


def mixture_maps_to_arrays(maps: dict[str, Any], grid_shape: tuple[int, ...], num_components: int | None = None) -> dict[str, np.ndarray]:
    """Fold ``{"entropy": (B, Q), "segmentation": (B, Q)}`` onto ``grid_shape`` (Q = prod(grid_shape)).

    Returns ``entropy`` float32 (B, *grid), ``segmentation`` int64 (B, *grid) and, when
    ``num_components`` (K) is given, ``entropy_normalised`` = entropy / log K in [0, 1].
    """
    for name in ("entropy", "segmentation"):
        check(name in maps, f"mixture maps lack {name!r}; got keys {sorted(maps)}", DataError)
    entropy = torch.as_tensor(maps["entropy"]).detach().cpu()
    seg = torch.as_tensor(maps["segmentation"]).detach().cpu()
    Q = math.prod(grid_shape)
    check(entropy.dim() == 2 and entropy.shape[1] == Q, f"entropy shape {tuple(entropy.shape)}, expected (B, {Q}) for grid {grid_shape}", DataError)
    check(seg.shape == entropy.shape, f"segmentation shape {tuple(seg.shape)}, expected {tuple(entropy.shape)}", DataError)
    B = entropy.shape[0]
    out = {
        "entropy": entropy.float().reshape(B, *grid_shape).numpy(),  # (B, *grid), row-major like the coords
        "segmentation": seg.long().reshape(B, *grid_shape).numpy(),
    }
    if num_components is not None:
        check(num_components >= 2, f"num_components={num_components}: expected K >= 2", DataError)
        out["entropy_normalised"] = out["entropy"] / math.log(num_components)
    return out


def segmentation_to_rgb(segmentation: np.ndarray) -> np.ndarray:
    """Component indices (..., ) -> uint8 colours (..., 3) with a fixed palette."""
    seg = np.asarray(segmentation)
    check(np.issubdtype(seg.dtype, np.integer) and (seg >= 0).all(), "segmentation: expected non-negative integer component indices", DataError)
    return _PALETTE[seg % len(_PALETTE)]


def segment_coherence(segmentation: np.ndarray, wrap_last: bool = False, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (B,) share of neighbouring grid points whose most probable component agrees, and its chance level.

    ``segmentation`` (B, *grid) int: the argmax component per point. Neighbours are the pairs of points
    one step apart along each axis (4 per pixel, 6 per voxel); ``wrap_last`` also pairs the last axis's
    ends (longitude on a lat/lon grid). ``valid`` (B, *grid) bool keeps only pairs of valid points (the
    occupied voxels of a shape: empty space is not segmented). The chance level is sum_k p_k^2 with p_k
    the share of valid points labelled k: what a segmentation with the same proportions but no spatial
    structure (speckle) would score. A coherence near 1 means contiguous segments.
    """
    seg = np.asarray(segmentation)
    check(seg.ndim >= 2, f"segmentation shape {seg.shape}: expected (B, *grid)", DataError)
    ok = np.ones(seg.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    check(ok.shape == seg.shape, f"valid shape {ok.shape} does not match segmentation {seg.shape}", DataError)
    B = seg.shape[0]
    agree = np.zeros(B)
    pairs = np.zeros(B)
    for axis in range(1, seg.ndim):
        shifts = [(np.take(seg, range(1, seg.shape[axis]), axis=axis), np.take(seg, range(seg.shape[axis] - 1), axis=axis),
                   np.take(ok, range(1, seg.shape[axis]), axis=axis) & np.take(ok, range(seg.shape[axis] - 1), axis=axis))]
        if wrap_last and axis == seg.ndim - 1 and seg.shape[axis] > 2:
            first, last = np.take(seg, [0], axis=axis), np.take(seg, [-1], axis=axis)
            shifts.append((first, last, np.take(ok, [0], axis=axis) & np.take(ok, [-1], axis=axis)))
        for a, b, m in shifts:
            agree += ((a == b) & m).reshape(B, -1).sum(axis=1)
            pairs += m.reshape(B, -1).sum(axis=1)
    coherence = np.where(pairs > 0, agree / np.maximum(pairs, 1), np.nan)
    chance = np.empty(B)
    for i in range(B):
        labels = seg[i][ok[i]]
        if labels.size == 0:
            chance[i] = np.nan
            continue
        p = np.bincount(labels.reshape(-1)) / labels.size
        chance[i] = float((p**2).sum())
    return coherence, chance


# ---------------------------------------------------------------------------------------------- segmentation scores
# What the paper's "segmentation-like maps" (Figures 10, 25) would have to be, scored per test sample:
# contiguous (segment_kappa), a function of the input rather than of the position alone (position_ari),
# and, where the data has true parts, those parts (parts_ari, against a k-means baseline: kmeans_parts_ari).

_UNDEFINED_CHANCE = 1e-12  # chance within this of 1: one component covers every valid point


def segment_kappa(coherence: np.ndarray, chance: np.ndarray) -> np.ndarray:
    """Per-sample contiguity normalised for the components' balance: Cohen's kappa of a point's component and its neighbour's.

    kappa = (coherence - chance) / (1 - chance), with ``coherence`` and ``chance`` = sum_k p_k^2 from
    ``segment_coherence``. 0 = what a structureless map with the same component shares scores (speckle),
    < 0 = neighbours disagree more often than chance (a checkerboard: -1), 1 = no neighbouring pair disagrees.
    Two segments always share a border, so a contiguous map scores 1 minus its border pairs over the border pairs
    speckle would have: (1 - chance) * pairs; a 2x2 blob in a 16x16 map (8 of 480 pairs on its border)
    scores 1 - 8 / (480 * 2 * (4/256) * (252/256)) = 0.458, two halves 0.933, where coherence - chance gave
    0.014 and 0.467. Undefined (NaN) where one component covers every valid point (chance = 1: nothing is
    segmented) or where coherence is NaN (no neighbouring valid pairs).
    """
    coh = np.asarray(coherence, dtype=np.float64)
    ch = np.asarray(chance, dtype=np.float64)
    check(coh.shape == ch.shape, f"coherence shape {coh.shape} does not match chance {ch.shape}", DataError)
    undefined = ~np.isfinite(coh) | ~np.isfinite(ch) | (ch >= 1.0 - _UNDEFINED_CHANCE)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (coh - ch) / (1.0 - ch)
    return np.where(undefined, np.nan, kappa)


def _flat(segmentation: np.ndarray, valid: np.ndarray | None, name: str = "segmentation") -> tuple[np.ndarray, np.ndarray]:
    seg = np.asarray(segmentation)
    check(seg.ndim >= 2, f"{name} shape {seg.shape}: expected (B, *grid)", DataError)
    check(np.issubdtype(seg.dtype, np.integer), f"{name}: expected integer labels, got {seg.dtype}", DataError)
    ok = np.ones(seg.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    check(ok.shape == seg.shape, f"valid shape {ok.shape} does not match {name} {seg.shape}", DataError)
    B = seg.shape[0]
    return seg.reshape(B, -1).astype(np.int64), ok.reshape(B, -1)


POSITION_PARTNERS = 32  # other samples each map is compared with (all of them in a smaller test set)


def _ari(x: np.ndarray, y: np.ndarray) -> float:
    """``sklearn.metrics.adjusted_rand_score(x, y)`` for two non-negative integer labelings, by the same pair counts
    and the same final expression (so the same float), from one ``bincount`` instead of sklearn's sparse
    contingency matrix: ~50x faster, which the many pairs of ``position_ari`` need."""
    x, y = np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64)
    n = int(x.size)
    if n == 0:
        return 1.0
    width = int(y.max()) + 1
    nij = np.bincount(x * width + y).astype(np.int64)
    squares = int((nij * nij).sum())
    rows, cols = np.bincount(x).astype(np.int64), np.bincount(y).astype(np.int64)
    tp = squares - n
    fp = int((cols * cols).sum()) - squares
    fn = int((rows * rows).sum()) - squares
    tn = n * n - fp - fn - squares
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def position_ari(segmentation: np.ndarray, valid: np.ndarray | None = None, partners: int = POSITION_PARTNERS) -> np.ndarray:
    """Per-sample (B,) agreement of a sample's map with the maps of other inputs on the same grid: 1 = the same
    partition of the grid whatever the input (a partition by position, not a segmentation of the input); lower =
    the map follows the input.

    For sample i the score is the mean over its partners j of the adjusted Rand index
    ``sklearn.metrics.adjusted_rand_score(s_i, s_j)`` over the grid points valid in both samples; the partners are
    the ``min(partners, B - 1)`` samples after i in test order, wrapping round (every other sample in a test set of
    at most ``partners`` + 1). ARI compares partitions, not component names: a fixed partition repeated over the
    samples scores exactly 1 even where the components swap names between inputs. A pair without a common valid
    point is skipped; NaN with fewer than 2 samples or no partner left. (The ARI is sklearn's, computed by ``_ari``.)
    """
    seg, ok = _flat(segmentation, valid)
    check(not ok.any() or int(seg[ok].min()) >= 0, "segmentation: expected non-negative component indices", DataError)
    B = seg.shape[0]
    out = np.full(B, np.nan)
    m = min(int(partners), B - 1)
    for i in range(B):
        scores = []
        for step in range(1, m + 1):
            j = (i + step) % B
            both = ok[i] & ok[j]
            if both.any():
                scores.append(_ari(seg[i][both], seg[j][both]))
        if scores:
            out[i] = float(np.mean(scores))
    return out


def parts_ari(segmentation: np.ndarray, parts: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-sample (B,) adjusted Rand index between the argmax map and the true part labels (B, *grid) int, over the
    valid points whose part label is >= 0 (a negative part is "no part", e.g. an empty voxel). 1 = the map's
    segments are the parts, ~0 = unrelated, NaN where no point is left."""
    from sklearn.metrics import adjusted_rand_score

    seg, ok = _flat(segmentation, valid)
    part, _ = _flat(parts, None, "parts")
    check(part.shape == seg.shape, f"parts shape {np.shape(parts)} does not match segmentation {np.shape(segmentation)}", DataError)
    out = np.full(seg.shape[0], np.nan)
    for i in range(seg.shape[0]):
        keep = ok[i] & (part[i] >= 0)
        if keep.any():
            out[i] = adjusted_rand_score(part[i][keep], seg[i][keep])
    return out


KMEANS_SEED = 0  # random_state of the k-means baseline


def kmeans_parts_ari(points: np.ndarray, parts: np.ndarray, valid: np.ndarray | None = None, seed: int = KMEANS_SEED) -> np.ndarray:
    """Per-sample (B,) baseline for ``parts_ari``: k-means on each sample's own points, scored by the same ARI.

    ``points`` (B, *grid, F): what is clustered per point (the colours of an image; for voxels, whose occupancy is
    the same 1 everywhere on the shape, the voxel coordinates). k = the number of distinct true parts in the sample,
    ``sklearn.cluster.KMeans(k, n_init=4, random_state=seed)`` on the valid points with a part >= 0."""
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import adjusted_rand_score

    part, ok = _flat(parts, valid, "parts")
    x = np.asarray(points, dtype=np.float64)
    B, Q = part.shape
    check(x.shape[:-1] == np.shape(parts) and x.ndim == np.ndim(parts) + 1, f"points shape {x.shape}: expected {np.shape(parts)} + (F,)", DataError)
    x = x.reshape(B, Q, -1)
    out = np.full(B, np.nan)
    for i in range(B):
        keep = ok[i] & (part[i] >= 0)
        if not keep.any():
            continue
        k = len(np.unique(part[i][keep]))
        if k == 1:
            out[i] = 1.0  # one part: one cluster is the answer (the ARI of two constant labelings)
            continue
        with warnings.catch_warnings():  # fewer distinct colours than parts: k-means says so and still answers
            warnings.simplefilter("ignore", ConvergenceWarning)
            pred = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x[i][keep])
        out[i] = adjusted_rand_score(part[i][keep], pred)
    return out
