"""K hypernetworks z -> all weights of a generator MLP, and the K x B generators they define.

Nothing here loops over K or over samples in Python: the K hypernetworks are one stack of batched
linear layers (K, in, out), and the K x B generators run as batched matrix products in a
channels-first layout (N, h, D), so the Fourier features of the coordinates (shared by all
components, and by all samples on a common grid) are read in place, never copied per generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class BatchedLinear(nn.Module):
    """K independent linear layers applied together: x (K, B, in) -> (K, B, out).

    Each of the K layers gets PyTorch's default nn.Linear initialisation.
    """

    def __init__(self, num: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(num, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class GeneratorLayout:
    """Where each weight and bias of a generator MLP sits in the flat parameter vector theta.

    Layer l maps dims[l] -> dims[l+1]; theta holds, per layer, W (dims[l] x dims[l+1], row-major,
    so that y = x @ W + b) followed by b (dims[l+1]).
    """

    def __init__(self, dims: list[int]) -> None:
        self.dims = list(dims)
        self.slices: list[tuple[slice, slice]] = []
        offset = 0
        for a, b in zip(dims[:-1], dims[1:]):
            w = slice(offset, offset + a * b)
            offset += a * b
            bias = slice(offset, offset + b)
            offset += b
            self.slices.append((w, bias))
        self.num_params = offset

    def unflatten(self, theta: Tensor) -> list[tuple[Tensor, Tensor]]:
        """theta (N, P) -> [(W (N, in, out), b (N, out))] per layer."""
        out = []
        for (ws, bs), a, b in zip(self.slices, self.dims[:-1], self.dims[1:]):
            out.append((theta[:, ws].reshape(-1, a, b), theta[:, bs]))
        return out


class HyperNetworks(nn.Module):
    """K separate MLPs z (B, dim_z) -> theta (K, B, P), LeakyReLU(0.1) between layers."""

    def __init__(self, num: int, dim_z: int, hidden: list[int], num_params: int) -> None:
        super().__init__()
        dims = [dim_z, *hidden, num_params]
        self.num = num
        self.layers = nn.ModuleList(BatchedLinear(num, a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, z: Tensor) -> Tensor:
        h = z.unsqueeze(0).expand(self.num, -1, -1)  # (K, B, dim_z)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = F.leaky_relu(h, 0.1)
        return h


def run_generators(layout: GeneratorLayout, theta: Tensor, features: Tensor) -> Tensor:
    """Evaluate B x K generators on their inputs.

    theta: (K, B, P) generator parameters; features: (B, D, F) or (1, D, F) inputs (the Fourier
    features of the coordinates; (1, D, F) when all samples share them).
    Returns raw outputs (B, D, K, f_out). LeakyReLU(0.1) between layers, none after the last (the
    likelihood applies its own link: sigmoid mean, logits).
    """
    K, B, _ = theta.shape
    params = layout.unflatten(theta.transpose(0, 1).reshape(B * K, -1))  # layers of (B*K, in, out), (B*K, out)
    W1, b1 = params[0]
    D = features.shape[1]
    h1 = W1.shape[-1]
    W1t = W1.transpose(1, 2)  # (B*K, h1, F)
    if features.shape[0] == 1:
        # one GEMM for all B*K generators: (B*K*h1, F) @ (F, D)
        h = (W1t.reshape(B * K * h1, -1) @ features[0].T).reshape(B * K, h1, D)
    else:
        h = torch.bmm(W1t.reshape(B, K * h1, -1), features.transpose(1, 2)).reshape(B * K, h1, D)
    h = h + b1[:, :, None]
    for W, b in params[1:]:
        # in place: these (B*K, h, D) activations are the largest tensors of a step, and autograd
        # can differentiate leaky_relu from its output (the slope is positive, so signs survive)
        h = F.leaky_relu_(h, 0.1)
        h = torch.baddbmm(b[:, :, None], W.transpose(1, 2), h)  # (B*K, out, D)
    f_out = h.shape[1]
    return h.reshape(B, K, f_out, D).permute(0, 3, 1, 2)  # (B, D, K, f)
