"""Completion: reconstruct from a partly observed sample and score PSNR on the missing region only.

Masks on a grid of shape (n_1, ..., n_k) (images (H, W), ERA5 (lat, lon), voxels (S, S, S)):

- ``centre``   missing: the centred box of side n_i // 2 on every axis, starting at (n_i - n_i // 2) // 2
                (64x64: rows/cols 16..47, 1024 of 4096 pixels; 28x28: 7..20, 196 of 784);
- ``half``     missing: the last axis from n_k // 2 on (the right half of an image; 64x64: 2048 pixels);
- ``outpaint`` observed: only that centred box; missing: everything else (64x64: 3072 pixels).
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
from .recon import DATA_RANGE, channels_of, masked_psnr, to_metric_arrays

COMPLETION_TASKS = {
    "centre": keys.PSNR_COMPLETION_CENTRE,
    "half": keys.PSNR_COMPLETION_HALF,
    "outpaint": keys.PSNR_COMPLETION_OUTPAINT,
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


def completion_scores(model: Any, batch: PointCloudBatch, kind: str, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample PSNR and point MSE (B,), (B,) on the missing region of ``task`` for one fully observed test batch."""
    grid = batch.grid_shape
    on_model = batch.to(model.device)
    obs = observed_mask(task, grid).to(on_model.mask.device)
    partial = on_model.with_mask(on_model.mask & obs[None, :])  # (B, D)
    pred = model.reconstruct(partial, on_model.coords).detach().cpu()  # (B, D, f)
    pred_arr = to_metric_arrays(pred, grid, kind)
    target_arr = to_metric_arrays(batch.features.detach().cpu(), grid, kind)
    region = np.broadcast_to(missing_region(task, grid), (batch.batch_size,) + tuple(grid))  # (B, *grid)
    return masked_psnr(pred_arr, target_arr, region, DATA_RANGE[kind], channels_of(target_arr, kind))


def complete_all(model: Any, batches: Iterable[PointCloudBatch], kind: str, tasks: Iterable[str] = tuple(COMPLETION_TASKS)) -> dict[str, dict[str, np.ndarray]]:
    """Per task: {"psnr": (N,), "mse": (N,)} over every sample of ``batches``."""
    tasks = list(tasks)
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {t: [] for t in tasks}
    for batch in batches:
        for t in tasks:
            parts[t].append(completion_scores(model, batch, kind, t))
    out = {}
    for t, v in parts.items():
        check(bool(v), "complete_all: no batches", DataError)
        out[t] = {"psnr": np.concatenate([a for a, _ in v]), "mse": np.concatenate([b for _, b in v])}
    return out
