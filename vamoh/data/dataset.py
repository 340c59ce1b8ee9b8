"""One split of a dataset as functions: every sample shares the coordinates, only features differ.

Samples are kept in their compact stored form (uint8 pixels/voxels, float32 fields) and turned
into float features in ``feature_range`` per batch, so a split costs 1 byte per pixel in memory.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..checks import ConfigError, DataError
from ..interface import DataInfo
from ..pointcloud import PointCloudBatch, grid_coordinates, sphere_coordinates
from .spec import DatasetSpec


class FunctionDataset(Dataset):
    """A split of N samples on D shared points.

    ``coords`` (D, c) float32: grid in [-1, 1]^c (row-major over ``grid_shape``) or the unit sphere
    (ERA5, row-major lat then lon); ``self[i]`` (D, f) float32 in ``spec.feature_range``.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        data: np.ndarray,
        *,
        is_standin: bool,
        label: str,
        split: str = "",
        labels: np.ndarray | None = None,
        parts: np.ndarray | None = None,
        latitude: np.ndarray | None = None,
        longitude: np.ndarray | None = None,
        train_points: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.spec = spec
        self.is_standin = is_standin
        self.label = label
        self.split = split
        self.grid_shape = spec.grid_shape
        self.meta = dict(meta or {})
        self.labels = labels  # (N, k) per-sample labels when the source has them (Shapes3D factors, digits)
        # (N, *grid) int8 true part labels per point (-1 = no part) of stand-ins that render them; None otherwise
        self.parts = None if parts is None else np.asarray(parts)
        if self.parts is not None and self.parts.shape != (np.shape(data)[0], *spec.grid_shape):
            raise DataError(f"{spec.name} {split}: parts of shape {self.parts.shape}, expected {(np.shape(data)[0], *spec.grid_shape)}")
        self._data = torch.from_numpy(np.ascontiguousarray(data))  # (N, *grid[, C]) stored dtype
        # None -> the dataset's default; 0 -> every point (config convention).
        if train_points is not None and (isinstance(train_points, bool) or train_points < 0):
            raise ConfigError(f"train_points={train_points!r}: expected a number >= 0 (0 = every point) or None (the dataset's default)")
        points = spec.train_points if train_points is None else (train_points or None)
        if points is not None and points >= spec.num_points:
            points = None  # a subset at least as large as the grid is the whole grid
        self.train_points: int | None = points  # effective points per training batch; None = every point
        if spec.coord_system == "sphere":
            if latitude is None or longitude is None:
                raise DataError(f"{spec.name}: a sphere dataset needs latitude and longitude arrays")
            self.latitude = torch.as_tensor(np.asarray(latitude), dtype=torch.float64)  # (H,) degrees
            self.longitude = torch.as_tensor(np.asarray(longitude), dtype=torch.float64)  # (W,) degrees
            self.coords = sphere_coordinates(self.latitude, self.longitude)  # (H*W, 3)
        else:
            self.latitude = self.longitude = None
            self.coords = grid_coordinates(spec.grid_shape)  # (D, len(grid_shape)) in [-1, 1]

    # ------------------------------------------------------------------ Dataset protocol

    def __len__(self) -> int:
        return int(self._data.shape[0])

    def __getitem__(self, i: int) -> Tensor:
        """Features (D, f) float32 of sample ``i``."""
        return self._features(self._data[i].unsqueeze(0))[0]

    def __repr__(self) -> str:
        return f"FunctionDataset({self.label!r}, split={self.split!r}, n={len(self)}, grid={self.grid_shape}, is_standin={self.is_standin})"

    @property
    def num_points(self) -> int:
        return self.spec.num_points

    @property
    def info(self) -> DataInfo:
        """``spec.info`` with this dataset's effective ``train_points`` (None = every point).

        Build models and trainers from this, not from ``spec``: it carries the config's value
        (``load_prepared(path, train_points)``).
        """
        return dataclasses.replace(self.spec.info, train_points=self.train_points)

    # ------------------------------------------------------------------ conversions

    def _features(self, stored: Tensor, keep: Tensor | None = None) -> Tensor:
        """Stored samples (B, *grid[, C]) -> features (B, D, f) float32, or (B, len(keep), f) at points ``keep``."""
        B = stored.shape[0]
        x = stored.reshape(B, self.num_points, self.spec.feature_dim)
        if keep is not None:
            x = x[:, keep]  # pick points before the float conversion: 8x less to convert for voxels
        if stored.dtype == torch.uint8:
            # Pixels are k/255 exactly as in the original code; voxels are already 0/1.
            return x.float() / 255.0 if self.spec.kind == "image" else x.float()
        return x.float()

    def features(self, indices: Sequence[int] | Tensor, keep: Tensor | None = None) -> Tensor:
        """Features (B, D, f) float32 of the samples ``indices`` (only the points ``keep`` (K,) when given)."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if len(idx) and (idx.max() >= len(self) or idx.min() < -len(self)):
            raise IndexError(f"{self.spec.name} {self.split}: index {int(idx.max())} out of range for {len(self)} samples")
        dev = self._data.device
        if dev.type != "cpu":  # a split placed on an accelerator by on(): indices go there without a synchronisation
            idx = idx.to(dev, non_blocking=True)
            keep = None if keep is None else keep.to(dev, non_blocking=True)
        return self._features(self._data[idx], keep)

    def on(self, device: torch.device | str) -> "FunctionDataset":
        """This split with its samples and coordinates on ``device`` (a shallow copy; the trainer puts the training
        split on the GPU once, so no step copies a batch from the host). Indices and random point subsets are
        still drawn on the CPU, so the run's random stream is the same on every device."""
        moved = copy.copy(self)
        moved._data = self._data.to(device)
        moved.coords = self.coords.to(device)
        return moved

    def batch(self, indices: Sequence[int] | Tensor, points: int | None = None, generator: torch.Generator | None = None) -> PointCloudBatch:
        """The samples ``indices`` as a ``PointCloudBatch``: coords (B, D, c), features (B, D, f), mask all True.

        With ``points`` the batch keeps a random subset of that many points (the same subset for
        every sample, drawn from ``generator``) and is no longer a grid (grid_shape=()).
        """
        D = self.num_points
        coords, keep, grid_shape = self.coords, None, self.grid_shape
        if points is not None and points < D:
            if points <= 0:
                raise ConfigError(f"points={points}: expected a positive number of points (at most {D})")
            keep = torch.randperm(D, generator=generator)[:points]
            coords, grid_shape = coords[keep.to(coords.device, non_blocking=True)], ()
        feats = self.features(indices, keep)  # (B, D', f)
        B = feats.shape[0]
        return PointCloudBatch(
            coords=coords.unsqueeze(0).expand(B, -1, -1).contiguous(),  # (B, D', c)
            features=feats.contiguous(),  # (B, D', f)
            mask=torch.ones(B, coords.shape[0], dtype=torch.bool, device=feats.device),  # (B, D')
            grid_shape=grid_shape,
            shared_coords=True,
            all_observed=True,
        )

    def train_batch(self, indices: Sequence[int] | Tensor, generator: torch.Generator | None = None) -> PointCloudBatch:
        """A training batch: ``train_points`` random points (4096 voxels for ShapeNet) or every point."""
        return self.batch(indices, points=self.train_points, generator=generator)

    def iter_batches(self, batch_size: int, shuffle: bool = True, generator: torch.Generator | None = None, drop_last: bool = False, train: bool = True) -> Iterator[PointCloudBatch]:
        """One epoch of batches; ``train`` subsamples points like ``train_batch``."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            idx = order[start : start + batch_size]
            if drop_last and len(idx) < batch_size:
                break
            yield self.train_batch(idx, generator) if train else self.batch(idx)

    def to_arrays(self, features: Tensor | np.ndarray) -> np.ndarray:
        """Features (B, D, f) on this dataset's grid -> arrays for plots and metrics.

        Images: (B, H, W, C) uint8 (round(255 * clip(x, 0, 1))); voxels: (B, S, S, S) float32
        occupancy probabilities; ERA5: (B, 46, 90) float32 normalised temperatures.
        """
        x = features.detach().cpu().numpy() if isinstance(features, Tensor) else np.asarray(features)
        if x.ndim != 3 or x.shape[1:] != (self.num_points, self.spec.feature_dim):
            raise DataError(f"{self.spec.name}: features of shape {x.shape}, expected (B, {self.num_points}, {self.spec.feature_dim}) on grid {self.grid_shape}")
        B = x.shape[0]
        if self.spec.kind == "image":
            return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8).reshape(B, *self.grid_shape, self.spec.feature_dim)
        return x.astype(np.float32).reshape(B, *self.grid_shape)

    def arrays(self, indices: Sequence[int] | Tensor | None = None) -> np.ndarray:
        """Stored samples without a float round trip: images (B, H, W, C) uint8, voxels (B, S, S, S) uint8, fields float32."""
        data = self._data if indices is None else self._data[torch.as_tensor(indices, dtype=torch.long).reshape(-1)]
        return data.numpy().copy()

    def images_uint8(self, indices: Sequence[int] | Tensor | None = None) -> np.ndarray:
        """Images (B, H, W, 3) uint8 for FID (every sample when ``indices`` is None)."""
        if self.spec.kind != "image":
            raise DataError(f"{self.spec.name} holds {self.spec.kind}, not images: FID needs an image dataset")
        return self.arrays(indices)
