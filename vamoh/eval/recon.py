"""Reconstruction quality (Figure 7): per-sample PSNR in the paper's convention, voxel IoU and accuracy.

The paper's eq. 19: PSNR = 20 log10(R / RMSE) with RMSE = sqrt(1/D sum_d ||y_d - y~_d||^2), the squared
error summed over a point's channels and divided by the number of points D. scikit-image's
``peak_signal_noise_ratio`` averages over points x channels instead, which on RGB data reads
10 log10(3) = 4.77 dB higher. Both are the same formula with another peak: the paper's PSNR equals
scikit-image's with ``data_range = R / sqrt(C)`` for C channels, which is how it is computed here.

- images: on 0..255 values (the model's [0, 1] output rounded to uint8, as a saved image would be), R = 255;
- ERA5 fields: on the normalised [0, 1] temperature scale, R = 1;
- voxels: occupancy probabilities against {0, 1} targets, R = 1; plus IoU and accuracy at threshold 0.5.
A perfect reconstruction has PSNR = inf (written as null in JSON). Every function returns per-sample
values, and ``point_mse`` gives the per-sample mean squared error the PSNR is computed from.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio
from torch import Tensor

from ..checks import DataError, check, check_choice
from ..pointcloud import PointCloudBatch, to_grid
from . import keys

DATA_RANGE = {"image": 255.0, "field": 1.0, "voxels": 1.0}
CONVENTION = "paper eq. 19: squared error summed over channels, averaged over points"


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


def _check_pair(prediction: np.ndarray, target: np.ndarray) -> None:
    check(prediction.shape == target.shape, f"prediction shape {prediction.shape} differs from target {target.shape}", DataError)
    check(prediction.ndim >= 2, f"expected a batch (B, ...), got shape {prediction.shape}", DataError)


def psnr(prediction: np.ndarray, target: np.ndarray, data_range: float = 255.0, channels: int = 1) -> np.ndarray:
    """Per-sample PSNR (B,) in the paper's convention, by scikit-image on each sample.

    ``channels``: the size C of the last axis when it holds a point's channels (3 for (B, H, W, 3)
    images); 1 when every element is a point (fields, voxels). C = 1 is scikit-image's own convention.
    """
    prediction, target = np.asarray(prediction), np.asarray(target)
    _check_pair(prediction, target)
    check(channels >= 1 and (channels == 1 or target.shape[-1] == channels), f"channels={channels} does not match the last axis of shape {target.shape}", DataError)
    peak = data_range / math.sqrt(channels)
    out = np.empty(len(target), dtype=np.float64)
    for i in range(len(target)):
        # float64 so that uint8 inputs are not subtracted in uint8 (skimage converts, but be explicit).
        t, p = target[i].astype(np.float64), prediction[i].astype(np.float64)
        if np.array_equal(t, p):
            out[i] = math.inf  # skimage warns and divides by zero; the answer is inf
        else:
            out[i] = peak_signal_noise_ratio(t, p, data_range=peak)
    return out


def point_mse(prediction: np.ndarray, target: np.ndarray, channels: int = 1) -> np.ndarray:
    """Per-sample (B,) mean over points of the squared error summed over a point's ``channels`` (eq. 19's RMSE^2)."""
    prediction, target = np.asarray(prediction, np.float64), np.asarray(target, np.float64)
    _check_pair(prediction, target)
    err = (prediction - target) ** 2
    return err.reshape(len(err), -1).mean(axis=1) * channels


def psnr_from_mse(mse: np.ndarray, data_range: float) -> np.ndarray:
    """PSNR = 10 log10(R^2 / MSE) per sample; inf where MSE = 0 (the closed form ``psnr`` must agree with)."""
    mse = np.asarray(mse, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(mse > 0, 10.0 * np.log10(data_range**2 / np.where(mse > 0, mse, 1.0)), math.inf)


def masked_psnr(prediction: np.ndarray, target: np.ndarray, region: np.ndarray, data_range: float = 255.0, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample PSNR and point MSE (B,), (B,) over the points where ``region`` (B, *grid) is True only.

    ``prediction``/``target`` are (B, *grid) or (B, *grid, C) with ``channels`` = C.
    """
    prediction, target = np.asarray(prediction), np.asarray(target)
    region = np.asarray(region, dtype=bool)
    check(region.ndim in (target.ndim, target.ndim - 1) and region.shape == target.shape[: region.ndim], f"region shape {region.shape} does not match target {target.shape}: expected (B, *grid)", DataError)
    check(bool(region.reshape(len(target), -1).any(axis=1).all()), "masked_psnr: a sample has an empty region", DataError)
    pairs = [(p[r][None], t[r][None]) for p, r, t in zip(prediction, region, target)]  # (1, n_points[, C]) each
    values = np.array([psnr(p, t, data_range, channels)[0] for p, t in pairs], dtype=np.float64)
    mse = np.array([point_mse(p, t, channels)[0] for p, t in pairs], dtype=np.float64)
    return values, mse


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


def channels_of(arrays: np.ndarray, kind: str) -> int:
    """C of eq. 19 for arrays from ``to_metric_arrays``: the last axis of images, 1 for fields and voxels."""
    return int(arrays.shape[-1]) if kind == "image" else 1


def reconstruction_scores(prediction: Tensor, target: Tensor, grid_shape: tuple[int, ...], kind: str) -> dict[str, np.ndarray]:
    """Per-sample scores of a reconstruction (B, D, f) of fully observed targets (B, D, f).

    Returns {psnr, mse[, voxel_iou, voxel_accuracy]}, each (B,).
    """
    pred = to_metric_arrays(prediction, grid_shape, kind)
    true = to_metric_arrays(target, grid_shape, kind)
    c = channels_of(true, kind)
    out = {keys.PSNR: psnr(pred, true, DATA_RANGE[kind], c), "mse": point_mse(pred, true, c)}
    if kind == "voxels":
        out[keys.VOXEL_IOU], out[keys.VOXEL_ACCURACY] = voxel_iou_accuracy(pred, true)
    return out


def reconstruct_all(model: Any, batches: list[PointCloudBatch], kind: str) -> dict[str, np.ndarray]:
    """Figure 7: reconstruct every test batch from all its points at its own coordinates; per-sample scores."""
    scores: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        on_model = batch.to(model.device)
        pred = model.reconstruct(on_model, on_model.coords)  # (B, D, f)
        for k, v in reconstruction_scores(pred.detach().cpu(), batch.features, batch.grid_shape, kind).items():
            scores.setdefault(k, []).append(v)
    check(bool(scores), "reconstruct_all: no test batches", DataError)
    return {k: np.concatenate(v) for k, v in scores.items()}


def summary(values: np.ndarray, **extra: Any) -> dict[str, Any]:
    """A metric entry over samples: mean +- std (ddof=1), n, every per-sample value, and the mean over the
    samples that were not reconstructed exactly (PSNR inf)."""
    from .io import metric_entry

    values = np.asarray(values, dtype=np.float64)
    entry = metric_entry(values, **extra)
    finite = values[np.isfinite(values)]
    entry["num_infinite"] = int(values.size - finite.size)
    entry["mean_finite"] = float(finite.mean()) if finite.size else None
    return entry


class Reconstructing:
    """A model seen through reconstruct() with some of its keywords fixed: another number of inner steps
    (``steps=``), or one of its reconstruction protocols (``protocol=``)."""

    def __init__(self, model: Any, **fixed: Any) -> None:
        self.model, self.fixed = model, fixed

    @property
    def device(self) -> torch.device:
        return self.model.device

    def reconstruct(self, observed: PointCloudBatch, query_coords: Tensor | None = None) -> Tensor:
        return self.model.reconstruct(observed, query_coords, **self.fixed)
