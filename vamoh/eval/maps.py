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
