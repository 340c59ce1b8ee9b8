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
from torch.autograd.function import once_differentiable


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
        return _DiscretizedLogisticLogProb.apply(h, y, self.log_scale.to(h.dtype))


def _memory_order(t: Tensor) -> list[int]:
    """The permutation of t's dimensions that lists them as they lie in memory (outermost first)."""
    return sorted(range(t.dim()), key=lambda d: (-t.stride(d), d))


def _compact(t: Tensor) -> Tensor:
    """t without its broadcast copies: every dimension of stride 0 narrowed to size 1."""
    return t[tuple(slice(0, 1) if (stride == 0 and size > 1) else slice(None) for size, stride in zip(t.shape, t.stride()))]


class _DiscretizedLogisticLogProb(torch.autograd.Function):
    """log p(y | h) of the discretized logistic summed over the last (feature) dimension, with its gradient
    written out, in the memory order of ``h``.

    The same distribution as the textbook form log(sigmoid(u) - sigmoid(l)), u and l the bin edges in
    standard units, computed with fewer full-size passes:

    - u - l = 2 half / s is the same for every point of a channel, so sigmoid(u) - sigmoid(l) =
      sigmoid(u) sigmoid(-l) (1 - exp(l - u)) has its last factor as one constant per channel (without the
      cancellation of subtracting two nearly equal numbers per point);
    - the gradient is d log p / du = sigmoid(-u) and d log p / dl = -sigmoid(l) (each absent in the edge bin
      that does not have it), read from the saved log-sigmoids, instead of autograd's trace of ~25 operations;
    - VAMoH's generators return h as a permuted view (components and channels before points in memory)
      and y broadcast over the K components: the work runs on h in its memory order, with y and the
      per-channel scale broadcast over outer dimensions, so every pass reads memory contiguously.
    """

    @staticmethod
    def forward(ctx, h: Tensor, y: Tensor, log_scale: Tensor) -> Tensor:  # type: ignore[override]
        half = 0.5 / (DiscretizedLogistic.num_bins - 1)
        n, f_dim = h.dim(), h.dim() - 1
        perm = _memory_order(h)
        hm = h.permute(perm)
        if not hm.is_contiguous():
            perm = list(range(n))
            hm = h.contiguous()
        pos_f = perm.index(f_dim)
        channel = [h.shape[f_dim] if i == pos_f else 1 for i in range(n)]
        y = _compact(y.broadcast_to(h.shape).permute(perm)).contiguous()  # the data once, not K times
        inv_s = torch.exp(-log_scale).reshape(channel)
        width = (2 * half) * inv_s  # u - l
        const = torch.log(-torch.expm1(-width))  # log(1 - exp(l - u)): one number per channel
        mu = torch.sigmoid(hm)
        u = torch.sub(y + half, mu).mul_(inv_s)
        l = u - width
        log_cdf_u = F.logsigmoid(u)  # log sigmoid(u): the first bin's log-probability
        log_sf_l = F.logsigmoid(l.neg_())  # log sigmoid(-l): the last bin's; l now holds -l
        low, high = y < half, y > 1 - half
        interior = (log_cdf_u + log_sf_l).add_(const)
        logp = torch.where(low, log_cdf_u, torch.where(high, log_sf_l, interior)).sum(pos_f)
        ctx.save_for_backward(mu, u, l, log_cdf_u, log_sf_l, low, high, inv_s, width)
        ctx.layout = (perm, pos_f)
        rest = [d for d in perm if d != f_dim]  # logp's dimensions, in memory order
        return logp.permute([rest.index(d) for d in range(n - 1)])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, Tensor | None]:  # type: ignore[override]
        mu, u, neg_l, log_cdf_u, log_sf_l, low, high, inv_s, width = ctx.saved_tensors
        perm, pos_f = ctx.layout
        n = mu.dim()
        rest = [d for d in perm if d != n - 1]
        g = grad.permute(rest).unsqueeze(pos_f)  # in the memory order of the forward
        # d log p / du = sigmoid(-u) = -expm1(log sigmoid(u)), except in the last bin (no upper edge);
        # d log p / dl = -sigmoid(l) = expm1(log sigmoid(-l)), except in the first bin (no lower edge)
        d_u = torch.where(high, 0.0, torch.expm1(log_cdf_u).neg_())
        d_l = torch.where(low, 0.0, torch.expm1(log_sf_l))
        grad_h = grad_scale = None
        if ctx.needs_input_grad[0]:
            # u and l move with mu by -1/s each; mu = sigmoid(h)
            grad_h = (d_u + d_l).mul_(mu * (1 - mu)).mul_(-inv_s).mul_(g)
            grad_h = grad_h.permute([perm.index(d) for d in range(n)])
        if ctx.needs_input_grad[2]:
            # u, l and the per-channel constant scale with 1/s = exp(-log_scale)
            d_const = width / torch.expm1(width)  # -(d const / d log_scale)
            t = (d_u * u).sub_(d_l * neg_l)
            t = torch.where(low | high, t, t + d_const).mul_(g)
            grad_scale = -t.sum([d for d in range(n) if d != pos_f])
        return grad_h, None, grad_scale


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
