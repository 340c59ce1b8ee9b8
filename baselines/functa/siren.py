"""Latent-modulated SIREN (Functa, Dupont et al., 2022): shared weights, per-sample shift modulations.

Layer l (of depth - 1 sine layers):  h <- sin(w0 * (W_l h + b_l + s_l)),  s_l the sample's shifts.
Output:                                y = W_out h + b_out + 0.5 (data in [0, 1] centred at zero output).
Shifts:                                s = A z + a, one linear map from the latent z to all (depth-1) x width shifts.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def siren_bounds(in_dim: int, width: int, w0: float) -> tuple[float, float]:
    """SIREN's uniform init bounds: first layer U(+-1/in_dim), later layers U(+-sqrt(6/width)/w0)."""
    return 1.0 / in_dim, math.sqrt(6.0 / width) / w0


class ModulatedSiren(nn.Module):
    """x (1 or B, D, c) with shifts (B, depth-1, width) -> (B, D, out_dim)."""

    def __init__(self, in_dim: int, out_dim: int, width: int, depth: int, w0: float) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"functa.depth={depth}: expected >= 2 (at least one sine layer and the output layer)")
        self.w0 = w0
        self.width = width
        dims = [in_dim] + [width] * (depth - 1)
        self.sine_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.output = nn.Linear(width, out_dim)
        first, rest = siren_bounds(in_dim, width, w0)
        with torch.no_grad():
            # biases share their layer's bound, as the weights (the SIREN reference init)
            for i, layer in enumerate(self.sine_layers):
                bound = first if i == 0 else rest
                layer.weight.uniform_(-bound, bound)
                layer.bias.uniform_(-bound, bound)
            self.output.weight.uniform_(-rest, rest)
            self.output.bias.uniform_(-rest, rest)

    @property
    def num_shifts(self) -> int:
        return len(self.sine_layers) * self.width

    def forward(self, x: Tensor, shifts: Tensor) -> Tensor:
        h = x
        inplace = not torch.is_grad_enabled()  # inference: the same operations in the same order, into one buffer a layer
        for i, layer in enumerate(self.sine_layers):
            # layer(h) is (1 or B, D, W); the sample's shift broadcasts over its D points
            a, s = layer(h), shifts[:, i, None, :]
            if inplace and a.shape[0] == s.shape[0]:
                h = a.add_(s).mul_(self.w0).sin_()
            else:
                h = torch.sin(self.w0 * (a + s))
        return self.output(h).add_(0.5) if inplace else self.output(h) + 0.5
