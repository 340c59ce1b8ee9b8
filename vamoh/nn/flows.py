"""Planar-flow prior p_psi(z) (Rezende & Mohamed, 2015) on a standard Gaussian base, and Gaussian helpers.

The flow is written in the density direction: g = g_T o ... o g_1 maps a latent z to the base
space, so log p(z) = log N(g(z); 0, I) + sum_t log|det dg_t/dz| is exact and cheap. The ELBO needs
exactly that at posterior samples (paper §3.3: the continuous KL is a Monte Carlo estimate
E_q[log q(z) - log p(z)]). Sampling the prior inverts each planar layer, which reduces to a
monotone scalar equation solved by bisection: generation is not the training hot path.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PlanarLayer(nn.Module):
    """g(z) = z + u_hat tanh(w.z + b), with u_hat constrained so that w.u_hat >= -1 (invertible)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.u = nn.Parameter(torch.randn(dim) * 0.01)
        self.w = nn.Parameter(torch.randn(dim) * 0.01)
        self.b = nn.Parameter(torch.zeros(1))

    def u_hat(self) -> Tensor:
        wu = self.w @ self.u
        return self.u + (-1 + F.softplus(wu) - wu) * self.w / (self.w @ self.w + 1e-12)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """z (N, d) -> (g(z) (N, d), log|det dg/dz| (N,))."""
        u = self.u_hat()
        t = torch.tanh(z @ self.w + self.b)  # (N,)
        out = z + t[:, None] * u[None, :]
        # det(I + u psi^T) = 1 + psi.u with psi = (1 - t^2) w  (matrix determinant lemma)
        logdet = torch.log((1 + (1 - t**2) * (self.w @ u)).abs() + 1e-12)
        return out, logdet

    @torch.no_grad()
    def inverse(self, y: Tensor, iterations: int = 80) -> Tensor:
        """Solve g(z) = y. With a = w.z + b: w.y + b = a + s tanh(a), s = w.u_hat >= -1, monotone in a."""
        u = self.u_hat().double()
        w = self.w.double()
        s = w @ u
        target = y.double() @ w + self.b.double()  # (N,)
        lo, hi = target - s.abs() - 1e-6, target + s.abs() + 1e-6
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            too_big = mid + s * torch.tanh(mid) > target
            hi = torch.where(too_big, mid, hi)
            lo = torch.where(too_big, lo, mid)
        a = 0.5 * (lo + hi)
        return (y.double() - torch.tanh(a)[:, None] * u[None, :]).to(y.dtype)


class PlanarFlowPrior(nn.Module):
    """p(z) with z = g^{-1}(z0), z0 ~ N(0, I), g a stack of ``num_layers`` planar layers."""

    def __init__(self, dim: int, num_layers: int) -> None:
        super().__init__()
        self.dim = dim
        self.layers = nn.ModuleList([PlanarLayer(dim) for _ in range(num_layers)])

    def to_base(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """z (N, d) -> (g(z) (N, d), log|det dg/dz| (N,))."""
        logdet = torch.zeros(z.shape[0], device=z.device, dtype=z.dtype)
        for layer in self.layers:
            z, ld = layer(z)
            logdet = logdet + ld
        return z, logdet

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z), (N,)."""
        base, logdet = self.to_base(z)
        return standard_normal_log_prob(base) + logdet

    @torch.no_grad()
    def sample(self, n: int, device: torch.device | None = None, generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(n, self.dim, device=device, generator=generator)
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z


def standard_normal_log_prob(z: Tensor) -> Tensor:
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def gaussian_log_prob(z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    return -0.5 * (((z - mean) ** 2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)


def gaussian_kl_standard(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) in closed form, summed over the last dimension."""
    return 0.5 * (torch.exp(logvar) + mean**2 - 1 - logvar).sum(-1)
