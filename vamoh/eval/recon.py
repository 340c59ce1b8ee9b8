"""Reconstruction quality (Figure 7): per-sample PSNR by scikit-image, voxel IoU and accuracy.

PSNR = 20 log10(R / RMSE) per sample, computed by ``skimage.metrics.peak_signal_noise_ratio``:
- images: on 0..255 values (uint8 after rounding the model's [0, 1] output), R = 255;
- ERA5 fields: on the normalised [0, 1] temperature scale, R = 1;
- voxels: on occupancy probabilities vs {0, 1} targets, R = 1; plus IoU and accuracy at threshold 0.5.
A perfect reconstruction has PSNR = inf (written as null in JSON).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio
from torch import Tensor

from ..checks import DataError, check, check_choice
from ..pointcloud import PointCloudBatch, to_grid
from . import keys
from .io import metric_entry

DATA_RANGE = {"image": 255.0, "field": 1.0, "voxels": 1.0}


def features_to_images(features: Tensor | np.ndarray, grid_shape: tuple[int, int]) -> np.ndarray:
    """Model features (B, H*W, f) in [0, 1] -> uint8 images (B, H, W, f), rounded to the nearest level."""
    feats = torch.as_tensor(features).detach().float().cpu()
    grid = to_grid(feats, tuple(grid_shape))  # (B, f, H, W)
    arr = grid.permute(0, 2, 3, 1).clamp(0.0, 1.0).numpy()
    return np.rint(arr * 255.0).astype(np.uint8)


def features_to_grid(features: Tensor | np.ndarray, grid_shape: tuple[int, ...]) -> np.ndarray:
    """Model features (B, D, 1) -> float64 arrays (B, *grid_shape) (fields, voxels)."""
    feats = torch.as_tensor(features).detach().double().cpu()
    check(feats.shape[-1] == 1, f"features shape {tuple(feats.shape)}: expected one channel for a field/voxel grid", DataError)
    return to_grid(feats, tuple(grid_shape))[:, 0].numpy()


def psnr(prediction: np.ndarray, target: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """Per-sample PSNR (B,) of predictions vs targets (B, ...), by scikit-image on each sample."""
    prediction, target = np.asarray(prediction), np.asarray(target)
    check(prediction.shape == target.shape, f"prediction shape {prediction.shape} differs from target {target.shape}", DataError)
    check(prediction.ndim >= 2, f"expected a batch (B, ...), got shape {prediction.shape}", DataError)
    out = np.empty(len(target), dtype=np.float64)
    for i in range(len(target)):
        # float64 so that uint8 inputs are not subtracted in uint8 (skimage converts, but be explicit).
        t, p = target[i].astype(np.float64), prediction[i].astype(np.float64)
        if np.array_equal(t, p):
            out[i] = math.inf  # skimage warns and divides by zero; the answer is inf
        else:
            out[i] = peak_signal_noise_ratio(t, p, data_range=data_range)
    return out


def masked_psnr(prediction: np.ndarray, target: np.ndarray, region: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """Per-sample PSNR (B,) over the points where ``region`` (B, *grid) is True only.

    ``prediction``/``target`` are (B, *grid) or (B, *grid, C); every channel of a region point counts.
    """
    prediction, target = np.asarray(prediction), np.asarray(target)
    region = np.asarray(region, dtype=bool)
    check(region.ndim in (target.ndim, target.ndim - 1) and region.shape == target.shape[: region.ndim], f"region shape {region.shape} does not match target {target.shape}: expected (B, *grid)", DataError)
    check(bool(region.reshape(len(target), -1).any(axis=1).all()), "masked_psnr: a sample has an empty region", DataError)
    return psnr_list([p[r] for p, r in zip(prediction, region)], [t[r] for t, r in zip(target, region)], data_range)


def psnr_list(predictions: list[np.ndarray], targets: list[np.ndarray], data_range: float) -> np.ndarray:
    """PSNR of each (prediction, target) pair of possibly different sizes."""
    return np.array([psnr(p[None], t[None], data_range)[0] for p, t in zip(predictions, targets)], dtype=np.float64)


def voxel_iou_accuracy(prediction: np.ndarray, target: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample IoU and accuracy (B,), (B,) of occupancy ``prediction > threshold`` vs ``target > 0.5``.

    IoU = |P and T| / |P or T|, defined as 1 when both are empty; accuracy = mean(P == T).
    """
    prediction, target = np.asarray(prediction), np.asarray(target)
    check(prediction.shape == target.shape, f"prediction shape {prediction.shape} differs from target {target.shape}", DataError)
    p = prediction.reshape(len(prediction), -1) > threshold
    t = target.reshape(len(target), -1) > 0.5
    inter = (p & t).sum(axis=1)
    union = (p | t).sum(axis=1)
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    acc = (p == t).mean(axis=1)
    return iou.astype(np.float64), acc.astype(np.float64)


def to_metric_arrays(features: Tensor, grid_shape: tuple[int, ...], kind: str) -> np.ndarray:
    """Features (B, D, f) -> what PSNR is computed on: uint8 (B, H, W, f) for images, float (B, *grid) otherwise."""
    check_choice("kind", kind, tuple(DATA_RANGE), DataError)
    if kind == "image":
        return features_to_images(features, grid_shape)  # type: ignore[arg-type]
    return features_to_grid(features, grid_shape)


def reconstruction_scores(prediction: Tensor, batch: PointCloudBatch, kind: str) -> dict[str, np.ndarray]:
    """Per-sample scores of a reconstruction (B, D, f) of the fully observed ``batch``: {psnr, [iou, accuracy]}."""
    pred = to_metric_arrays(prediction, batch.grid_shape, kind)
    target = to_metric_arrays(batch.features, batch.grid_shape, kind)
    out = {keys.PSNR: psnr(pred, target, DATA_RANGE[kind])}
    if kind == "voxels":
        out[keys.VOXEL_IOU], out[keys.VOXEL_ACCURACY] = voxel_iou_accuracy(pred, target)
    return out


def evaluate_reconstruction(model: Any, batches: Iterable[PointCloudBatch], kind: str) -> dict[str, dict[str, Any]]:
    """Figure 7: reconstruct each test batch from all its observed points at its own coordinates.

    Returns metric entries (mean +- std over test samples) for PSNR and, for voxels, IoU and accuracy.
    """
    scores: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        batch = batch.to(model.device)
        pred = model.reconstruct(batch, batch.coords)  # (B, D, f)
        for k, v in reconstruction_scores(pred.detach().cpu(), batch.to("cpu"), kind).items():
            scores.setdefault(k, []).append(v)
    check(bool(scores), "evaluate_reconstruction: no batches", DataError)
    return {k: _summary(np.concatenate(v)) for k, v in scores.items()}


def _summary(values: np.ndarray) -> dict[str, Any]:
    """Mean +- std over samples; per-sample values are not written (n is)."""
    entry = metric_entry(values)
    entry["values"] = None
    finite = values[np.isfinite(values)]
    entry["num_infinite"] = int(values.size - finite.size)
    entry["mean_finite"] = float(finite.mean()) if finite.size else None  # mean over samples not reconstructed exactly
    return entry
