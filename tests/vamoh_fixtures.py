"""Tiny datasets made in the tests (shared by several test files)."""

from __future__ import annotations

import torch

from vamoh.interface import DataInfo
from vamoh.pointcloud import PointCloudBatch, grid_coordinates


class BlobImages:
    """N images (H x H, RGB in [0, 1]) of one coloured disc on a background of the complementary colour.

    The disc's centre and colour are random (seeded): a family of functions with 5 degrees of
    freedom that a small VAMoH can learn in a few hundred steps.
    """

    def __init__(self, n: int = 64, size: int = 16, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.coords = grid_coordinates((size, size))
        self.grid_shape = (size, size)
        centre = torch.rand(n, 1, 2, generator=g) * 1.2 - 0.6
        colour = torch.rand(n, 1, 3, generator=g)
        inside = ((self.coords[None] - centre) ** 2).sum(-1, keepdim=True) < 0.15
        self.features = torch.where(inside, colour, 1 - colour)
        # quantise to the 256 levels the discretized logistic models
        self.features = torch.round(self.features * 255) / 255
        self.info = DataInfo(2, 3, "discretized_logistic", self.grid_shape, "image")

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, indices, points=None, generator=None) -> PointCloudBatch:
        f = self.features[indices]
        B, D = f.shape[:2]
        coords = self.coords[None].expand(B, -1, -1)
        if points is not None:
            keep = torch.randperm(D, generator=generator)[:points]
            return PointCloudBatch(coords[:, keep], f[:, keep], torch.ones(B, points, dtype=torch.bool), ())
        return PointCloudBatch(coords, f, torch.ones(B, D, dtype=torch.bool), self.grid_shape)


def tiny_model(data, **overrides):
    """A seeded VAMoH at the "tiny" preset for ``data`` (a BlobImages), with config overrides."""
    from vamoh.interface import build_model

    torch.manual_seed(0)
    return build_model("vamoh", data.info, "tiny", overrides)


def strict_randn(monkeypatch) -> None:
    """Make ``torch.randn`` refuse a generator on another device than the tensor's, as CUDA does.

    The 'meta' device (used to test sampling on "another device" without a GPU) silently accepts a
    CPU generator; real CUDA raises. With this patch a meta model behaves like a CUDA one.
    """
    real = torch.randn

    def randn(*size, generator=None, device=None, **kwargs):
        if generator is not None:
            target = torch.device(device if device is not None else "cpu").type
            if generator.device.type != target:
                raise RuntimeError(f"Expected a '{target}' device type for generator but found '{generator.device.type}'")
        return real(*size, generator=generator, device=device, **kwargs)

    monkeypatch.setattr(torch, "randn", randn)


def to_meta(model, switches: bool = True):
    """``model`` on the 'meta' device (shapes only). Its boolean state buffers (VAMoH's flow_active,
    Functa's prior_fitted) are set to ``switches`` and kept on the CPU: bool() of a meta tensor raises."""
    model.to("meta")
    for name in ("flow_active", "prior_fitted"):
        if hasattr(model, name):
            setattr(model, name, torch.tensor(switches))
    return model
