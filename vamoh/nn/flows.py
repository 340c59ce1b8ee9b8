"""Planar-flow prior p_psi(z) (Rezende & Mohamed, 2015) on a standard Gaussian base, and Gaussian helpers.

The flow is written in the density direction: g = g_T o ... o g_1 maps a latent z to the base
space, so log p(z) = log N(g(z); 0, I) + sum_t log|det dg_t/dz| is exact and cheap. The ELBO needs
exactly that at posterior samples (paper §3.3: the continuous KL is a Monte Carlo estimate
E_q[log q(z) - log p(z)]). Sampling the prior inverts each planar layer, which reduces to a
monotone scalar equation in a = w.z + b: solved exactly for LeakyReLU layers (the paper's, B.1),
by bisection for tanh layers. Generation is not the training hot path.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# LeakyReLU's negative slope in the original code's planar layers (normflows' Planar(act="leaky_relu"))
LEAKY_SLOPE = 0.2
FLOW_ACTIVATIONS = ("leaky_relu", "tanh")


class PlanarLayer(nn.Module):
    """g(z) = z + u_hat h(w.z + b), h = LeakyReLU(0.2) or tanh, with w.u_hat > -1 so that g is invertible.

    dg/dz = I + h'(a) u_hat w^T has determinant 1 + h'(a) w.u_hat (matrix determinant lemma), and
    h' lies in (0, 1] for both activations, so w.u_hat > -1 keeps it positive everywhere.
    """

    def __init__(self, dim: int, activation: str = "leaky_relu") -> None:
        super().__init__()
        if activation not in FLOW_ACTIVATIONS:
            raise ValueError(f"planar flow activation={activation!r} is not one of {list(FLOW_ACTIVATIONS)}")
        self.activation = activation
        self.u = nn.Parameter(torch.randn(dim) * 0.01)
        self.w = nn.Parameter(torch.randn(dim) * 0.01)
        self.b = nn.Parameter(torch.zeros(1))

    def u_hat(self) -> Tensor:
        wu = self.w @ self.u
        return self.u + (-1 + F.softplus(wu) - wu) * self.w / (self.w @ self.w + 1e-12)

    def h(self, a: Tensor) -> Tensor:
        return F.leaky_relu(a, LEAKY_SLOPE) if self.activation == "leaky_relu" else torch.tanh(a)

    def h_prime(self, a: Tensor) -> Tensor:
        if self.activation == "leaky_relu":
            return torch.where(a >= 0, torch.ones_like(a), torch.full_like(a, LEAKY_SLOPE))
        return 1 - torch.tanh(a) ** 2

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """z (N, d) -> (g(z) (N, d), log|det dg/dz| (N,))."""
        u = self.u_hat()
        a = z @ self.w + self.b  # (N,)
        out = z + self.h(a)[:, None] * u[None, :]
        det = 1 + self.h_prime(a) * (self.w @ u)  # > 0; abs and the floor only guard rounding and log(0)
        logdet = torch.log(det.abs().clamp_min(torch.finfo(det.dtype).tiny))
        return out, logdet

    @torch.no_grad()
    def inverse(self, y: Tensor, iterations: int = 80) -> Tensor:
        """Solve g(z) = y, y (N, d) -> z (N, d).

        With a = w.z + b, w.y + b = a + s h(a), s = w.u_hat > -1: strictly increasing in a. For
        LeakyReLU both pieces are linear with positive slope and a has the sign of w.y + b, so a is
        exact; for tanh it is found by bisection (|a - (w.y + b)| <= |s|). Then z = y - u_hat h(a).
        """
        u = self.u_hat().double()
        w = self.w.double()
        s = w @ u
        target = y.double() @ w + self.b.double()  # (N,)
        if self.activation == "leaky_relu":
            a = torch.where(target >= 0, target / (1 + s), target / (1 + LEAKY_SLOPE * s))
        else:
            lo, hi = target - s.abs() - 1e-6, target + s.abs() + 1e-6
            for _ in range(iterations):
                mid = 0.5 * (lo + hi)
                too_big = mid + s * torch.tanh(mid) > target
                hi = torch.where(too_big, mid, hi)
                lo = torch.where(too_big, lo, mid)
            a = 0.5 * (lo + hi)
        return (y.double() - self.h(a)[:, None] * u[None, :]).to(y.dtype)


class PlanarFlowPrior(nn.Module):
    """p(z) with z = g^{-1}(z0), z0 ~ N(0, I), g a stack of ``num_layers`` planar layers."""

    def __init__(self, dim: int, num_layers: int, activation: str = "leaky_relu") -> None:
        super().__init__()
        self.dim = dim
        self.layers = nn.ModuleList([PlanarLayer(dim, activation) for _ in range(num_layers)])

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
        """n latents (n, d) on ``device``; the base noise is drawn on the generator's device, so a CPU
        generator gives the same latents whatever device the flow is on."""
        z = draw_normal((n, self.dim), device, generator)
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z


def draw_normal(shape: tuple[int, ...], device: torch.device | str | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Standard normal noise of ``shape`` on ``device``, drawn where ``generator`` lives (torch requires the
    generator's device to be the tensor's) and then moved: the numbers depend only on the generator."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, device=where, generator=generator).to(device)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def gaussian_log_prob(z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    return -0.5 * (((z - mean) ** 2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)


def gaussian_kl_standard(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) in closed form, summed over the last dimension."""
    return 0.5 * (torch.exp(logvar) + mean**2 - 1 - logvar).sum(-1)
