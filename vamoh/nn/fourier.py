"""Random Fourier features (Tancik et al., 2020), as in GASP and VAMoH."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class RandomFourierFeatures(nn.Module):
    """x (..., c) -> [cos 2 pi B x, sin 2 pi B x] (..., 2m), with B ~ N(0, sigma^2) of shape (m, c), fixed.

    B is a buffer, not a parameter: it is saved with the model but never trained.
    """

    def __init__(self, coord_dim: int, num_frequencies: int = 128, sigma: float = 2.0, seed: int | None = None) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        B = torch.randn(num_frequencies, coord_dim, generator=gen) * sigma
        self.register_buffer("B", B)
        self.out_dim = 2 * num_frequencies

    def forward(self, x: Tensor) -> Tensor:
        proj = 2 * math.pi * x @ self.B.T  # (..., m)
        return torch.cat([torch.cos(proj), torch.sin(proj)], dim=-1)
