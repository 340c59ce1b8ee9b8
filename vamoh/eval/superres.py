"""Super-resolution against ground truth: a model's 2x reconstruction scored against the stand-in's own 2x render.

The procedural stand-ins (faces, Shapes3D scenes, voxel chairs) can draw the same test sample at twice the
resolution (``vamoh.data.registry.superres_truth``); real files, the MNIST digits of PolyMNIST and the GloSea4 fields
of ERA5 cannot, and for them there is no score, only the reason.

Alignment. A 1x grid of n points per axis has its points at the centres of n cells (index j at 2 j / (n - 1) - 1).
The 2x render has 2n cells per axis, each covering half of a 1x cell, so its cell k is centred at 1x index
u = (k + 0.5) / 2 - 0.5 and coordinate 2 u / (n - 1) - 1: a quarter of a 1x cell inside and outside the 1x points
(the first cell lies just beyond -1). These points are never 1x points, so no model reads an observed value at them:
VAMoH's mixture weights are its prior p(c | x, z) at every one (the leak-free rule), Functa's modulations and VAMoH's
z are fitted to every observed 1x point. This is not the 127-point grid of the paper's Figure 6 (``query_grid``),
whose every other point is a 1x point.

Baseline: the 1x sample upsampled without a model, bicubic for images (Pillow's ``Image.resize`` with ``BICUBIC``,
half-pixel centres like the render) and nearest for voxels (each voxel repeated 2x2x2). Scores: images PSNR in the
paper's convention (eq. 19, ``vamoh.eval.recon.psnr``) on 0..255; voxels IoU of occupancy at threshold 0.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..checks import DataError, check
from ..interface import leak_free_kwargs
from ..pointcloud import PointCloudBatch
from . import keys
from .recon import DATA_RANGE, channels_of, psnr, to_metric_arrays, voxel_iou_accuracy

SUPERRES_KINDS = ("image", "voxels")
BASELINE = {"image": "bicubic (Pillow BICUBIC, half-pixel centres)", "voxels": "nearest (each voxel repeated per axis)"}
SCORE_KEY = {"image": keys.PSNR_SUPERRES, "voxels": keys.VOXEL_IOU_SUPERRES}


def cell_centre_coordinates(grid_shape: tuple[int, ...], factor: int = 2) -> Tensor:
    """Coordinates (prod(factor * n_i), d) of the centres of a ``factor`` x finer cell grid, row-major, in the 1x grid's
    coordinate system (1x index j at 2 j / (n - 1) - 1)."""
    check(factor >= 2, f"super-resolution factor={factor}: expected an integer >= 2", DataError)
    check(all(n >= 2 for n in grid_shape), f"grid_shape {grid_shape}: expected every axis >= 2", DataError)
    axes = []
    for n in grid_shape:
        u = (torch.arange(factor * n, dtype=torch.float64) + 0.5) / factor - 0.5  # position in 1x index units
        axes.append((2.0 * u / (n - 1) - 1.0).float())
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([g.reshape(-1) for g in mesh], dim=-1)


def fine_shape(grid_shape: tuple[int, ...], factor: int = 2) -> tuple[int, ...]:
    return tuple(factor * n for n in grid_shape)


def upsample_baseline(arrays: np.ndarray, kind: str, factor: int = 2) -> np.ndarray:
    """The model-free baseline: (N, *grid[, C]) 1x metric arrays (``to_metric_arrays``) -> (N, *factor*grid[, C])."""
    check(kind in SUPERRES_KINDS, f"super-resolution of {kind!r} data: expected one of {SUPERRES_KINDS}", DataError)
    if kind == "voxels":
        out = np.asarray(arrays)
        for axis in range(1, out.ndim):
            out = np.repeat(out, factor, axis=axis)
        return out
    from PIL import Image

    arrays = np.asarray(arrays)
    check(arrays.dtype == np.uint8 and arrays.ndim == 4, f"bicubic baseline: expected uint8 images (N, H, W, C), got {arrays.dtype} {arrays.shape}", DataError)
    n, h, w, c = arrays.shape
    out = np.empty((n, factor * h, factor * w, c), dtype=np.uint8)
    for i in range(n):
        for ch in range(c):  # Pillow's "L" mode per channel: any channel count, exact 8-bit rounding
            out[i, :, :, ch] = np.asarray(Image.fromarray(arrays[i, :, :, ch]).resize((factor * w, factor * h), Image.BICUBIC))
    return out


def truth_arrays(values: np.ndarray, kind: str) -> np.ndarray:
    """The stored 2x render as metric arrays: images uint8 (N, H, W, C), voxels float (N, *grid) occupancy."""
    values = np.asarray(values)
    if kind == "image":
        check(values.dtype == np.uint8 and values.ndim == 4, f"2x image truth: expected uint8 (N, H, W, C), got {values.dtype} {values.shape}", DataError)
        return values
    v = values.astype(np.float64)
    if v.ndim == 5 and v.shape[-1] == 1:
        v = v[..., 0]
    if values.dtype == np.uint8 and v.max(initial=0) > 1:
        v = v / 255.0
    return v


def score(prediction: np.ndarray, truth: np.ndarray, kind: str) -> np.ndarray:
    """Per-sample score (N,): PSNR (images, eq. 19) or occupancy IoU (voxels)."""
    check(prediction.shape == truth.shape, f"super-resolution: prediction {prediction.shape} and 2x truth {truth.shape} differ", DataError)
    if kind == "image":
        return psnr(prediction, truth, DATA_RANGE[kind], channels_of(truth, kind))
    return voxel_iou_accuracy(prediction, truth)[0]


def superres_predictions(model: Any, batches: list[PointCloudBatch], kind: str, factor: int = 2) -> np.ndarray:
    """Every sample of ``batches`` reconstructed from all its 1x points at the 2x cell centres, as metric arrays."""
    out = []
    grid = tuple(batches[0].grid_shape)
    query = cell_centre_coordinates(grid, factor)
    kwargs = leak_free_kwargs(model)
    for batch in batches:
        on_model = batch.to(model.device)
        pred = model.reconstruct(on_model, query.to(model.device), **kwargs).detach().cpu()  # (B, Q, f)
        out.append(to_metric_arrays(pred, fine_shape(grid, factor), kind))
    return np.concatenate(out)


def superres_scores(model: Any, batches: list[PointCloudBatch], truth: np.ndarray, kind: str, factor: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(per-sample scores (N,), predictions) of ``model`` on the first N = len(truth) samples of ``batches``."""
    pred = superres_predictions(model, batches, kind, factor)
    truth = truth_arrays(truth, kind)
    check(len(pred) == len(truth), f"super-resolution: {len(pred)} reconstructed samples for {len(truth)} 2x renders", DataError)
    return score(pred, truth, kind), pred
