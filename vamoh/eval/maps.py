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
