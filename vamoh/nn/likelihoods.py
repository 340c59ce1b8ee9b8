"""Per-point likelihoods of the generator outputs.

Each takes the generator's raw output ``h`` (..., f) and the data ``y`` (..., f) in [0, 1] and returns
log p(y | h) summed over the feature dimension, shape (...). ``mean(h)`` maps the output to the data
range (the value plotted and scored).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DiscretizedLogistic(nn.Module):
    """Discretized logistic on 256 bins of [0, 1] (paper eq. 17), mean = sigmoid(h).

    Bin half-width 1/255 in the [-1, 1] scaling of PixelCNN++ is 0.5/255 here on [0, 1] data; the
    edge bins absorb the tails so the 256 probabilities sum to one. The scale is one learnable
    log-scale per channel (paper) or fixed at ``fixed_scale`` (the original code's 0.1).
    """

    num_bins = 256

    def __init__(self, feature_dim: int, init_scale: float = 0.1, fixed_scale: float | None = None) -> None:
        super().__init__()
        self.fixed_scale = fixed_scale
        if fixed_scale is None:
            self.log_scale = nn.Parameter(torch.full((feature_dim,), math.log(init_scale)))
        else:
            self.register_buffer("log_scale", torch.full((feature_dim,), math.log(fixed_scale)))

    def mean(self, h: Tensor) -> Tensor:
        return torch.sigmoid(h)

    def log_prob(self, h: Tensor, y: Tensor) -> Tensor:
        mu = torch.sigmoid(h)
        half = 0.5 / (self.num_bins - 1)
        inv_s = torch.exp(-self.log_scale)
        upper = (y + half - mu) * inv_s
        lower = (y - half - mu) * inv_s
        # log(sigmoid(u) - sigmoid(l)) computed stably: sigmoid(u)-sigmoid(l) = sigmoid(u)*(1-exp(l-u))*sigmoid(-l)
        # ... expressed with logsigmoid terms to stay finite for far tails.
        log_mass = F.logsigmoid(upper) + F.logsigmoid(-lower) + torch.log(-torch.expm1(lower - upper).clamp(max=-1e-12))
        log_cdf_upper = F.logsigmoid(upper)  # first bin: P(Y <= half)
        log_sf_lower = F.logsigmoid(-lower)  # last bin: P(Y >= 1 - half)
        lo_edge = y < half
        hi_edge = y > 1 - half
        logp = torch.where(lo_edge, log_cdf_upper, torch.where(hi_edge, log_sf_lower, log_mass))
        return logp.sum(-1)


class Bernoulli(nn.Module):
    """Bernoulli on occupancy (voxels); h is the logit, mean = sigmoid(h)."""

    def mean(self, h: Tensor) -> Tensor:
        return torch.sigmoid(h)

    def log_prob(self, h: Tensor, y: Tensor) -> Tensor:
        return -F.binary_cross_entropy_with_logits(h, y, reduction="none").sum(-1)


class ContinuousBernoulli(nn.Module):
    """Continuous Bernoulli (Loaiza-Ganem & Cunningham, 2019) on [0, 1] data; h is the logit of lambda.

    log p(y) = y log l + (1-y) log(1-l) + log C(l), with C(l) = 2 atanh(1-2l)/(1-2l) (-> 2 at l = 1/2).
    ``mean`` returns the distribution's mean, l/(2l-1) + 1/(2 atanh(1-2l)), not lambda.
    """

    _eps = 1e-3  # |lambda - 1/2| below which the Taylor expansion is used

    def _log_norm(self, lam: Tensor) -> Tensor:
        x = 1 - 2 * lam
        safe = torch.where(x.abs() < self._eps, torch.full_like(x, self._eps), x)
        exact = torch.log(2 * torch.atanh(safe) / safe)
        taylor = math.log(2.0) + x**2 / 3 + x**4 * (1 / 5 - 1 / 18)
        return torch.where(x.abs() < self._eps, taylor, exact)

    def mean(self, h: Tensor) -> Tensor:
        lam = torch.sigmoid(h).clamp(1e-6, 1 - 1e-6)
        x = 1 - 2 * lam
        safe = torch.where(x.abs() < self._eps, torch.full_like(x, self._eps), x)
        exact = lam / (2 * lam - 1) + 1 / (2 * torch.atanh(safe))
        # near 1/2 the mean is 1/2 + (l - 1/2)/3 to first order
        return torch.where(x.abs() < self._eps, 0.5 - x / 6, exact)

    def log_prob(self, h: Tensor, y: Tensor) -> Tensor:
        lam = torch.sigmoid(h).clamp(1e-6, 1 - 1e-6)
        logp = -F.binary_cross_entropy_with_logits(h, y, reduction="none") + self._log_norm(lam)
        return logp.sum(-1)


def make_likelihood(name: str, feature_dim: int, fixed_scale: float | None = None) -> nn.Module:
    if name == "discretized_logistic":
        return DiscretizedLogistic(feature_dim, fixed_scale=fixed_scale)
    if name == "bernoulli":
        return Bernoulli()
    if name == "continuous_bernoulli":
        return ContinuousBernoulli()
    raise ValueError(f"likelihood={name!r} is not one of ['discretized_logistic', 'bernoulli', 'continuous_bernoulli']")
