"""Completion: reconstruct from a partly observed sample and score PSNR on the missing region only.

Masks on a grid of shape (n_1, ..., n_k) (images (H, W), ERA5 (lat, lon), voxels (S, S, S)):

- ``centre``   missing: the centred box of side n_i // 2 on every axis, starting at (n_i - n_i // 2) // 2
                (64x64: rows/cols 16..47, 1024 of 4096 pixels; 28x28: 7..20, 196 of 784);
- ``half``     missing: the last axis from n_k // 2 on (the right half of an image; 64x64: 2048 pixels);
- ``outpaint`` observed: only that centred box; missing: everything else (64x64: 3072 pixels).

Scores, on the missing region only: PSNR in the paper's convention (every kind), and for voxels the occupancy IoU
there (PSNR over a region that is mostly empty space says little about the chair). Both protocols of
``vamoh.interface.RECONSTRUCTION_PROTOCOLS`` give the same completion at a missing point (no value is observed there),
so completion has one score. Two baselines a completion must beat to have used the observed part (computed by the
reference stage on the same samples): the train mean inside the mask, and the observed part's mean
(``observed_mean_prediction``: every hidden point given the mean of the sample's observed points, per channel).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from ..checks import DataError, check, check_choice
from ..pointcloud import PointCloudBatch
from . import keys
from .recon import DATA_RANGE, channels_of, masked_psnr, to_metric_arrays, voxel_iou_accuracy

COMPLETION_TASKS = {
    "centre": keys.PSNR_COMPLETION_CENTRE,
    "half": keys.PSNR_COMPLETION_HALF,
    "outpaint": keys.PSNR_COMPLETION_OUTPAINT,
}
COMPLETION_IOU = {
    "centre": keys.VOXEL_IOU_COMPLETION_CENTRE,
    "half": keys.VOXEL_IOU_COMPLETION_HALF,
    "outpaint": keys.VOXEL_IOU_COMPLETION_OUTPAINT,
}


def centre_box(grid_shape: tuple[int, ...]) -> tuple[slice, ...]:
    """Slices of the centred box with side n // 2 on every axis."""
    return tuple(slice((n - n // 2) // 2, (n - n // 2) // 2 + n // 2) for n in grid_shape)


def missing_region(task: str, grid_shape: tuple[int, ...]) -> np.ndarray:
    """Bool array of shape ``grid_shape``: True where the point is hidden from the model and scored."""
    check_choice("completion task", task, tuple(COMPLETION_TASKS), DataError)
    check(len(grid_shape) >= 1 and all(n >= 2 for n in grid_shape), f"grid_shape {grid_shape}: expected every axis >= 2", DataError)
    box = np.zeros(grid_shape, dtype=bool)
    box[centre_box(grid_shape)] = True
    if task == "centre":
        return box
    if task == "outpaint":
        return ~box
    half = np.zeros(grid_shape, dtype=bool)
    half[..., grid_shape[-1] // 2 :] = True
    return half


def observed_mask(task: str, grid_shape: tuple[int, ...]) -> torch.Tensor:
    """Flat (D,) bool mask of observed points, row-major like ``PointCloudBatch`` (D = prod(grid_shape))."""
    return torch.from_numpy(~missing_region(task, grid_shape).reshape(-1))


def missing_count(task: str, grid_shape: tuple[int, ...]) -> int:
    """Closed form of the missing region's size (the documented sizes)."""
    box = math.prod(n // 2 for n in grid_shape)
    total = math.prod(grid_shape)
    if task == "centre":
        return box
    if task == "outpaint":
        return total - box
    return math.prod(grid_shape[:-1]) * (grid_shape[-1] - grid_shape[-1] // 2)


def masked_voxel_iou(prediction: np.ndarray, target: np.ndarray, region: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Per-sample occupancy IoU (B,) of ``prediction > threshold`` vs ``target > 0.5`` over the voxels where ``region``
    (B, *grid) is True only (1 where both are empty there)."""
    region = np.asarray(region, dtype=bool)
    check(region.shape == np.shape(target) == np.shape(prediction), f"region {region.shape}, prediction {np.shape(prediction)} and target "
          f"{np.shape(target)}: expected the same (B, *grid)", DataError)
    values = [voxel_iou_accuracy(p[r][None], t[r][None], threshold)[0][0] for p, t, r in zip(prediction, target, region)]
    return np.asarray(values, dtype=np.float64)


def observed_mean_prediction(target: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The completion that uses the observed part only through its mean: every point of each sample set to the mean
    of its observed points (``~region``), per channel; uint8 targets give rounded uint8 values."""
    target = np.asarray(target)
    region = np.asarray(region, dtype=bool)
    flat = target.reshape(len(target), region[0].size, -1).astype(np.float64)  # (B, D, C)
    seen = ~region.reshape(len(target), -1)
    check(bool(seen.any(axis=1).all()), "observed_mean_prediction: a sample has no observed point", DataError)
    mean = (flat * seen[:, :, None]).sum(1) / seen.sum(1)[:, None]  # (B, C)
    out = np.broadcast_to(mean[:, None, :], flat.shape).reshape(target.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8) if target.dtype == np.uint8 else out


def region_scores(prediction: np.ndarray, target: np.ndarray, task: str, kind: str) -> dict[str, np.ndarray]:
    """Per-sample scores (B,) of metric arrays on ``task``'s missing region: {psnr, mse[, voxel_iou]}."""
    grid = tuple(target.shape[1 : 1 + (target.ndim - 2 if kind == "image" else target.ndim - 1)])
    region = np.broadcast_to(missing_region(task, grid), (len(target),) + grid)  # (B, *grid)
    values, mse = masked_psnr(prediction, target, region, DATA_RANGE[kind], channels_of(target, kind))
    out = {"psnr": values, "mse": mse}
    if kind == "voxels":
        out["voxel_iou"] = masked_voxel_iou(prediction, target, region)
    return out


def completion_scores(model: Any, batch: PointCloudBatch, kind: str, task: str) -> dict[str, np.ndarray]:
    """Per-sample scores (B,) on the missing region of ``task`` for one fully observed test batch (``region_scores``)."""
    grid = batch.grid_shape
    on_model = batch.to(model.device)
    obs = observed_mask(task, grid).to(on_model.mask.device)
    partial = on_model.with_mask(on_model.mask & obs[None, :])  # (B, D)
    pred = model.reconstruct(partial, on_model.coords).detach().cpu()  # (B, D, f)
    return region_scores(to_metric_arrays(pred, grid, kind), to_metric_arrays(batch.features.detach().cpu(), grid, kind), task, kind)


def complete_all(model: Any, batches: Iterable[PointCloudBatch], kind: str, tasks: Iterable[str] = tuple(COMPLETION_TASKS)) -> dict[str, dict[str, np.ndarray]]:
    """Per task: {"psnr": (N,), "mse": (N,)[, "voxel_iou": (N,)]} over every sample of ``batches``."""
    tasks = list(tasks)
    parts: dict[str, list[dict[str, np.ndarray]]] = {t: [] for t in tasks}
    for batch in batches:
        for t in tasks:
            parts[t].append(completion_scores(model, batch, kind, t))
    out = {}
    for t, v in parts.items():
        check(bool(v), "complete_all: no batches", DataError)
        out[t] = {k: np.concatenate([d[k] for d in v]) for k in v[0]}
    return out
