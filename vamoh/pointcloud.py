"""The suite's one point-cloud batch type and the coordinate systems it lives on.

A sample is a function sampled at D points: coordinates ``x`` (D, c) and features ``y`` (D, f).
A batch stacks B samples that share the same D; a boolean mask marks observed points, so a
partially observed sample (a dropped patch, point dropout) keeps its shape. ``grid_shape`` tells
how the D points fold back into an image (H, W), a voxel grid (S, S, S) or a lat/lon field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .checks import DataError, check


@dataclass
class PointCloudBatch:
    coords: Tensor  # (B, D, c) float
    features: Tensor  # (B, D, f) float
    mask: Tensor  # (B, D) bool, True where the point is observed
    grid_shape: tuple[int, ...]  # e.g. (64, 64), (32, 32, 32), (46, 90); () when the points are not a grid
    # Promises made by whoever built the batch, so that models need not read the tensors back to know them (on a
    # GPU every such read is a host synchronisation): every sample has the same coordinates; every point is
    # observed (mask all True). False means "not promised": a model checks the data itself.
    shared_coords: bool = False
    all_observed: bool = False

    def __post_init__(self) -> None:
        B, D, _ = self.coords.shape
        check(self.features.shape[:2] == (B, D), f"features shape {tuple(self.features.shape)} does not match coords {tuple(self.coords.shape)}", DataError)
        check(self.mask.shape == (B, D), f"mask shape {tuple(self.mask.shape)}, expected {(B, D)}", DataError)
        check(self.mask.dtype == torch.bool, f"mask dtype {self.mask.dtype}, expected torch.bool", DataError)
        if self.grid_shape:
            check(math.prod(self.grid_shape) == D, f"grid_shape {self.grid_shape} holds {math.prod(self.grid_shape)} points, batch has D={D}", DataError)
        if self.coords.device.type == "cpu":  # a promise is verified where reading the tensors is free
            check(not self.shared_coords or bool((self.coords == self.coords[:1]).all()),
                  "shared_coords=True, but the samples' coordinates differ", DataError)
            check(not self.all_observed or bool(self.mask.all()), "all_observed=True, but the mask has unobserved points", DataError)

    @property
    def batch_size(self) -> int:
        return self.coords.shape[0]

    @property
    def num_points(self) -> int:
        return self.coords.shape[1]

    def to(self, device: torch.device | str) -> "PointCloudBatch":
        return replace(self, coords=self.coords.to(device), features=self.features.to(device), mask=self.mask.to(device))

    def with_mask(self, mask: Tensor) -> "PointCloudBatch":
        """The same batch with another observed-point mask, (B, D) or (D,) broadcast over the batch."""
        if mask.dim() == 1:
            mask = mask.unsqueeze(0).expand(self.batch_size, -1)
        return replace(self, mask=mask.to(self.mask.device, torch.bool).contiguous(), all_observed=False)

    def samples(self, start: int, stop: int) -> "PointCloudBatch":
        """Samples start..stop-1 of the batch (views, no copy)."""
        return replace(self, coords=self.coords[start:stop], features=self.features[start:stop], mask=self.mask[start:stop])

    def subset(self, index: Tensor) -> "PointCloudBatch":
        """Keep the points ``index`` (K,) of every sample; the result is no longer a grid."""
        return PointCloudBatch(self.coords[:, index], self.features[:, index], self.mask[:, index], (),
                               shared_coords=self.shared_coords, all_observed=self.all_observed)


def grid_coordinates(shape: tuple[int, ...], upsample: int = 1) -> Tensor:
    """Regular grid in [-1, 1]^len(shape), row-major, shape (prod(shape'), len(shape)).

    Axis i has n_i points at 2*(j/(n_i-1) - 0.5). With ``upsample=s`` each axis gets s*(n_i-1)+1
    points, so the original grid is exactly a subset (every s-th point): a 2x super-resolution query
    of a 64x64 image is a 127x127 grid, as in the original code.
    """
    axes = []
    for n in shape:
        m = upsample * (n - 1) + 1
        axes.append(torch.linspace(-1.0, 1.0, m) if m > 1 else torch.zeros(1))
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([g.reshape(-1) for g in mesh], dim=-1)


def upsampled_shape(shape: tuple[int, ...], upsample: int) -> tuple[int, ...]:
    return tuple(upsample * (n - 1) + 1 for n in shape)


def sphere_coordinates(latitude_deg: Tensor, longitude_deg: Tensor) -> Tensor:
    """Lat/lon grid (degrees) to points on the unit sphere, (len(lat)*len(lon), 3), row-major lat then lon.

    x = cos(lat)cos(lon), y = cos(lat)sin(lon), z = sin(lat), as the original code does for ERA5.
    """
    lat = torch.deg2rad(latitude_deg.double())
    lon = torch.deg2rad(longitude_deg.double())
    la, lo = torch.meshgrid(lat, lon, indexing="ij")
    xyz = torch.stack([torch.cos(la) * torch.cos(lo), torch.cos(la) * torch.sin(lo), torch.sin(la)], dim=-1)
    return xyz.reshape(-1, 3).float()


def upsampled_latlon(latitude_deg: Tensor, longitude_deg: Tensor, upsample: int) -> tuple[Tensor, Tensor]:
    """A finer global lat/lon grid that contains the original nodes (linear refinement between nodes).

    Latitude (H,) does not wrap: s*(H-1)+1 values from the first to the last node (90..-90 stays
    90..-90). Longitude (W,) is periodic: the last node is refined towards the first + 360 too,
    and that end is left out because it is the first node again, so s*W values.
    """

    def refine(a: Tensor) -> Tensor:
        # upsample - 1 evenly spaced values between consecutive entries: (N,) -> (upsample*(N-1)+1,)
        steps = torch.linspace(0, 1, upsample + 1, dtype=a.dtype)[:-1]
        inner = (a[:-1, None] + (a[1:] - a[:-1])[:, None] * steps[None, :]).reshape(-1)
        return torch.cat([inner, a[-1:]])

    if upsample == 1:
        return latitude_deg, longitude_deg
    lat = refine(latitude_deg) if latitude_deg.numel() > 1 else latitude_deg
    gap = float(longitude_deg[0] + 360.0 - longitude_deg[-1])
    check(0.0 < gap <= 360.0, f"longitudes {float(longitude_deg[0])}..{float(longitude_deg[-1])} degrees: expected a global grid whose last node lies less than 360 after its first (360 is the first node again)", DataError)
    closed = torch.cat([longitude_deg, longitude_deg[:1] + 360.0])  # the wrap-around segment back to the first node
    return lat, refine(closed)[:-1]


def query_grid(grid_shape: tuple[int, ...], upsample: int = 1, sphere: bool = False) -> tuple[Tensor, tuple[int, ...]]:
    """Coordinates (Q, c) of a dataset's grid refined ``upsample`` times, and the refined grid's shape.

    The original points are a subset of the refined ones. Regular grids: the (s(n-1)+1)-per-axis grid
    in [-1, 1]. ``sphere``: the (lat, lon) layout of ERA5 (lat from 90 to -90, lon from 0 in steps of
    360 / n_lon), refined between nodes, on the unit sphere: (s(n_lat-1)+1, s*n_lon), longitude
    wrapping at 360 (46x90 at 2x: 91 latitudes, 180 longitudes 0, 2, ..., 358).
    """
    if sphere:
        n_lat, n_lon = grid_shape
        lat, lon = upsampled_latlon(torch.linspace(90.0, -90.0, n_lat), torch.linspace(0.0, 360.0 - 360.0 / n_lon, n_lon), upsample)
        return sphere_coordinates(lat, lon), (len(lat), len(lon))
    return grid_coordinates(tuple(grid_shape), upsample), upsampled_shape(tuple(grid_shape), upsample)


def to_grid(values: Tensor, grid_shape: tuple[int, ...]) -> Tensor:
    """(B, D, f) point values to (B, f, *grid_shape) arrays (channels first, like images)."""
    B, D, f = values.shape
    check(math.prod(grid_shape) == D, f"cannot fold D={D} points into grid {grid_shape}", DataError)
    return values.transpose(1, 2).reshape(B, f, *grid_shape)


def from_grid(arrays: Tensor) -> Tensor:
    """(B, f, *grid) arrays to (B, D, f) point values; inverse of ``to_grid``."""
    B, f = arrays.shape[:2]
    return arrays.reshape(B, f, -1).transpose(1, 2).contiguous()
