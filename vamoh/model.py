"""VAMoH: the model of the paper (§3, Appendix A, Table 3).

Generative model:  z ~ p_psi(z) (planar flow, after a warm-up with N(0, I));
                   c_d ~ Cat(f_psi_c([RFF(x_d), z]));  y_d ~ p_theta_k(y | x_d), theta_k = g_phi_k(z).
Inference model:   q(z | X, Y) = N(PointConv(X, Y));  q(c_d | z, x_d, y_d) = Cat(f_gamma_c([RFF(x_d), y_d, z])).
ELBO (eq. 16):     sum_d E_q(z)[sum_k q(c_d = k) log p_k(y_d | x_d)] - KL(q(z) || p(z)) - E_q(z)[KL(q(C) || p(C | z, X))],
                   summed over observed points, one reparameterised z sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import ConfigError, check_choice, check_int_list, check_positive, check_range
from .interface import RECONSTRUCTION_PROTOCOLS, DataInfo, FunctionModel, register_model, step_skipping
from .nn.flows import FLOW_ACTIVATIONS, PlanarFlowPrior, draw_normal, gaussian_kl_standard, gaussian_log_prob
from .nn.fourier import RandomFourierFeatures
from .nn.hyper import GeneratorLayout, HyperNetworks, run_generators
from .nn.likelihoods import make_likelihood
from .nn.pointconv import CENTROID_METHODS, PointConvEncoder, build_stages
from .pointcloud import PointCloudBatch

SAMPLE_MODES = ("mixture_mean", "argmax")
COMPUTE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass
class VAMoHConfig:
    """Hyperparameters of VAMoH. Defaults are the paper's CelebA-HQ column of Table 3."""

    dim_z: int = 64  # latent size
    K: int = 10  # number of hypergenerators (mixture components)
    epochs: int = 1000  # training budget (paper)
    batch_size: int = 64
    lr: float = 1e-4  # Adam
    grad_clip: float = 200.0  # gradient-norm clipping (original code)
    # PointConv encoder (Table 3)
    weightnet_hidden: list[int] = field(default_factory=lambda: [16, 16, 16, 16])
    neighbours: list[int] = field(default_factory=lambda: [9, 9, 9, 9, 9])
    centroids: list[int] = field(default_factory=lambda: [4096, 1024, 256, 64, 1])
    out_channels: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 512])
    pool_neighbours: list[int | None] | None = field(default_factory=lambda: [9, 9, 9, 9, None])
    pool_centroids: list[int | None] | None = field(default_factory=lambda: [1024, 256, 64, 16, None])
    centroid_method: str = "fps"  # "fps" (paper), or the faster "random" / "stratified"
    # decoder
    categorical_hidden: list[int] = field(default_factory=lambda: [64, 32])  # prior and posterior nets
    hypernet_hidden: list[int] = field(default_factory=lambda: [256, 512])
    generator_hidden: list[int] = field(default_factory=lambda: [64, 64, 64])
    rff_frequencies: int = 128  # m: RFF gives 2m features
    rff_sigma: float = 2.0
    flow_layers: int = 80  # planar flow T
    # planar layers' non-linearity: "leaky_relu" (slope 0.2; paper B.1 and the original code) or "tanh"
    # (this suite before; neither the paper nor the original code)
    flow_activation: str = "leaky_relu"
    warmup_epochs: int = 200  # epochs with the N(0, I) prior before the flow is trained (original code: 200)
    point_dropout_alpha: float | None = None  # max dropout rate; None = the largest the encoder allows
    sample_mode: str = "mixture_mean"  # generation output: pi-weighted mean of the K means, or the argmax component's mean
    seed: int = 0  # seed of the fixed Fourier frequencies
    # dtype of the large products: the encoder's conv stack, the hypernetworks and the generators' hidden
    # layers. "bfloat16" is mixed precision: parameters, gradients, optimiser state, the encoder head, the
    # generators' last layer, categorical nets, likelihood and KLs stay float32. Not in the paper (float32);
    # several times faster on CPUs with AVX512-BF16 or AMX, and on GPUs.
    compute_dtype: str = "float32"
    # samples per forward/backward pass in training; gradients are accumulated over the micro-batches of a
    # batch before its one optimiser step, so the update is the whole batch's (up to float summation
    # order). None = the whole batch at once. Lowers peak memory roughly in proportion.
    microbatch_size: int | None = None
    # the original code's deviations from the paper (all off = the paper)
    fixed_logistic_scale: float | None = None  # original: 0.1; paper: learnable
    tanh_categorical_logits: bool = False  # original: tanh before the softmax bounds logits to [-1, 1]
    neighbourhoods_in_fourier_space: bool = False  # original: kNN and offsets in the 256-d RFF space
    flow_on_detached_posterior: bool = False  # original: after warm-up, KL replaced by -log p_flow(z.detach())
    frozen_uniform_categorical_prior_epochs: int = 0  # original: 100 (uniform, untrained p(C) for these epochs)
    weightnet_linear: bool = False  # original: no non-linearity inside the PointConv weight-net

    def validate(self) -> None:
        for name in ("dim_z", "K", "epochs", "batch_size", "rff_frequencies"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ConfigError(f"vamoh.{name}={getattr(self, name)!r}: expected a positive integer")
        check_positive("vamoh.lr", self.lr)
        check_positive("vamoh.grad_clip", self.grad_clip)
        check_positive("vamoh.rff_sigma", self.rff_sigma)
        for name in ("weightnet_hidden", "neighbours", "centroids", "out_channels", "categorical_hidden", "hypernet_hidden", "generator_hidden"):
            check_int_list(f"vamoh.{name}", getattr(self, name))
        if self.flow_layers < 0 or self.warmup_epochs < 0 or self.frozen_uniform_categorical_prior_epochs < 0:
            raise ConfigError("vamoh.flow_layers, warmup_epochs and frozen_uniform_categorical_prior_epochs must be >= 0")
        if self.microbatch_size is not None and (not isinstance(self.microbatch_size, int) or self.microbatch_size <= 0):
            raise ConfigError(f"vamoh.microbatch_size={self.microbatch_size!r}: expected a positive integer or null (the whole batch)")
        if self.point_dropout_alpha is not None:
            check_range("vamoh.point_dropout_alpha", self.point_dropout_alpha, 0.0, 1.0)
        check_choice("vamoh.centroid_method", self.centroid_method, CENTROID_METHODS)
        check_choice("vamoh.sample_mode", self.sample_mode, SAMPLE_MODES)
        check_choice("vamoh.compute_dtype", self.compute_dtype, tuple(COMPUTE_DTYPES))
        check_choice("vamoh.flow_activation", self.flow_activation, FLOW_ACTIVATIONS)
        if self.fixed_logistic_scale is not None:
            check_positive("vamoh.fixed_logistic_scale", self.fixed_logistic_scale)
        build_stages(self.centroids, self.neighbours, self.out_channels, self.pool_centroids, self.pool_neighbours)


def _preset(**kw: Any) -> VAMoHConfig:
    return VAMoHConfig(**kw)


NO_POOL = dict(pool_neighbours=None, pool_centroids=None)
PRESETS: dict[str, VAMoHConfig] = {
    "celebahq64": _preset(),
    "shapes3d": _preset(dim_z=32, K=5, epochs=600, batch_size=64, lr=1e-4, weightnet_hidden=[16, 16], neighbours=[16, 16, 16],
                        centroids=[1024, 256, 64], out_channels=[32, 64, 256], categorical_hidden=[32, 32],
                        hypernet_hidden=[128, 256], generator_hidden=[32, 32], flow_layers=20, **NO_POOL),
    "polymnist": _preset(dim_z=16, K=4, epochs=600, batch_size=256, lr=1e-3, weightnet_hidden=[16, 16], neighbours=[9, 9, 9],
                         centroids=[196, 49, 25], out_channels=[32, 32, 32], categorical_hidden=[32, 32],
                         hypernet_hidden=[16, 32], generator_hidden=[4, 4, 4], flow_layers=3, **NO_POOL),
    "shapenet": _preset(dim_z=32, K=3, epochs=500, batch_size=22, lr=1e-3, weightnet_hidden=[16, 16, 16, 16], neighbours=[8, 27, 27, 27, 8],
                        centroids=[4096, 512, 64, 16, 16], out_channels=[32, 64, 128, 256, 16], categorical_hidden=[32, 32],
                        hypernet_hidden=[256, 512], generator_hidden=[64, 64, 64], flow_layers=40, **NO_POOL),
    "era5": _preset(dim_z=32, K=3, epochs=600, batch_size=64, lr=1e-4, weightnet_hidden=[16, 16, 16, 16], neighbours=[9, 9, 9, 9, 9],
                    centroids=[1024, 256, 64, 32, 16], out_channels=[32, 64, 256, 512, 32], categorical_hidden=[32, 32],
                    hypernet_hidden=[256, 512], generator_hidden=[64, 64, 64], flow_layers=10, **NO_POOL),
    # shrunken model for tests and smoke runs: any dataset with >= 64 points per sample
    "tiny": _preset(dim_z=8, K=3, epochs=2, batch_size=16, lr=3e-3, weightnet_hidden=[8], neighbours=[8, 8], centroids=[64, 16],
                    out_channels=[16, 16], categorical_hidden=[16], hypernet_hidden=[32], generator_hidden=[16, 16],
                    rff_frequencies=32, flow_layers=2, warmup_epochs=1, **NO_POOL),
}


class CategoricalNet(nn.Module):
    """MLP on [RFF(x), extra, z] -> K logits, with the first layer split by input part.

    Split so that the RFF part, identical for every sample on a shared grid, is computed once:
    W [rff; extra; z] = W_rff rff + W_extra extra + W_z z, the same function as one Linear on the
    concatenation.
    """

    def __init__(self, rff_dim: int, extra_dim: int, dim_z: int, hidden: list[int], K: int, tanh_logits: bool) -> None:
        super().__init__()
        self.parts = (rff_dim, extra_dim, dim_z)
        dims = [sum(self.parts), *hidden, K]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.tanh_logits = tanh_logits

    def forward(self, rff: Tensor, z: Tensor, extra: Tensor | None = None) -> Tensor:
        """rff (B or 1, D, R), z (B, dz), extra (B, D, E) or None -> log-probabilities (B, D, K)."""
        first = self.layers[0]
        W_rff, W_extra, W_z = first.weight.split(self.parts, dim=1)
        h = F.linear(rff, W_rff) + F.linear(z, W_z, first.bias)[:, None, :]
        if extra is not None:
            h = h + F.linear(extra, W_extra)
        for layer in self.layers[1:]:
            h = layer(F.leaky_relu(h, 0.1))
        if self.tanh_logits:
            h = torch.tanh(h)
        return log_softmax_components_first(h)


def log_softmax_components_first(logits: Tensor) -> Tensor:
    """log_softmax over the last dimension (the K components) of logits (B, D, K), computed with the components
    outermost in memory and returned as a (B, D, K) view of that layout.

    On CPU, torch's log_softmax over a last dimension of a few elements runs element by element (CelebA-HQ's
    (64, 4096, 10): ~20x slower than over an outer dimension). The likelihood's log-probabilities (from the
    generators' (B, K, f, D) layout) lie components-first too, so the mixture's products and sums over K that
    combine them read both in one memory order.
    """
    if logits.dim() < 2 or logits.shape[-1] == 1:
        return F.log_softmax(logits, dim=-1)
    return F.log_softmax(logits.transpose(-1, -2).contiguous(), dim=-2).transpose(-1, -2)


def categorical_kl(log_q: Tensor, log_p: Tensor) -> Tensor:
    """KL(q || p) of categoricals given log-probabilities (..., K) -> (...)."""
    return (log_q.exp() * (log_q - log_p)).sum(-1)


def max_dropout_alpha(centroids: list[int], num_points: int) -> float:
    """Largest point-dropout rate that keeps at least as many points as the first subsampling layer's centroids.

    A first layer asking for at least as many centroids as there are points (CelebA-HQ: 4096 of
    4096) keeps every observed point, so the bound comes from the first layer that subsamples.
    """
    for m in centroids:
        if m < num_points:
            return max(0.0, 1.0 - m / num_points)
    return 0.0


MATCH_TOLERANCE = 1e-5  # a 2x grid's shared nodes differ from the 1x grid's by ~1e-7 (linspace rounding)
_MATCH_WINDOW = 4  # candidates checked per query point before the rare wider windows are searched


def _generic_direction(dim: int, device: torch.device) -> Tensor:
    """A fixed unit vector (dim,) float64 in no special position: no row of a regular grid projects onto one value."""
    v = torch.randn(dim, generator=torch.Generator().manual_seed(12345), dtype=torch.float64)
    return (v / v.norm()).to(device)


def match_observed_points(query: Tensor, coords: Tensor, mask: Tensor | None = None, tol: float = MATCH_TOLERANCE) -> Tensor:
    """For each query point, the observed point at the same location: its index, or -1 where there is none.

    query (Bq, Q, c); coords (Bo, D, c) and mask (Bo, D) (True = observed; None = every point), with Bq
    and Bo each 1 (shared by the batch) or B. Returns (max(Bq, Bo), Q) long: the index into D of the
    nearest observed point within Euclidean distance ``tol``, else -1.

    Cost O((D + Q) log D), no Q x D distance matrix: points are projected onto a fixed generic
    direction and the observed projections sorted once. A point within ``tol`` of a query projects
    within ``tol`` of the query's projection, so only the observed points in that window of the sorted
    order are candidates, and they are checked by true distance. Windows are normally 0 or 1 points
    wide; the rare wider ones (coincident points, such as a lat/lon grid's pole) are searched in full.
    """
    Bq, Q, c = query.shape
    Bo, D, _ = coords.shape
    B = max(Bq, Bo)
    v = _generic_direction(c, coords.device)
    obs = coords.double()
    key = obs @ v  # (Bo, D)
    if mask is not None:
        key = key.masked_fill(~mask, math.inf)  # unobserved points sort last and fall in no window
    key, order = key.sort(dim=1)
    qry = query.double()
    qkey = qry @ v  # (Bq, Q)
    if Bo == 1:
        lo = torch.searchsorted(key[0], qkey - tol)
        hi = torch.searchsorted(key[0], qkey + tol, right=True)
    else:
        qkey = qkey.expand(B, Q).contiguous()
        lo = torch.searchsorted(key, qkey - tol)
        hi = torch.searchsorted(key, qkey + tol, right=True)
    lo, hi = lo.expand(B, Q).reshape(-1), hi.expand(B, Q).reshape(-1)  # (B*Q,) window [lo, hi) per flat query
    flat = torch.arange(B * Q, device=coords.device)
    obs_start = (flat // Q) * D if Bo > 1 else torch.zeros_like(flat)  # where each query's sample starts in (Bo*D)
    q_row = flat if Bq > 1 else flat % Q  # each query's row in qry.reshape(-1, c)
    order, obs, qry = order.reshape(-1), obs.reshape(-1, c), qry.reshape(-1, c)
    match = torch.full((B * Q,), -1, dtype=torch.long, device=coords.device)

    def search(sel: Tensor, lo_s: Tensor, hi_s: Tensor) -> None:
        width = int((hi_s - lo_s).max()) if sel.numel() else 0
        if width == 0:
            return
        pos = lo_s[:, None] + torch.arange(width, device=sel.device)  # (n, W) positions in the sorted order
        valid = pos < hi_s[:, None]
        start = obs_start[sel, None]
        index = order[start + pos.clamp(max=D - 1)]  # (n, W) indices into D
        dist = (obs[start + index] - qry[q_row[sel], None, :]).norm(dim=-1).masked_fill(~valid, math.inf)
        best, j = dist.min(dim=1)
        match[sel] = torch.where(best <= tol, index.gather(1, j[:, None]).squeeze(1), -1)

    search(flat, lo, torch.minimum(hi, lo + _MATCH_WINDOW))
    wide = (hi - lo > _MATCH_WINDOW).nonzero().squeeze(1)
    search(wide, lo[wide], hi[wide])
    return match.view(B, Q)


def _shared_over_batch(x: Tensor) -> Tensor:
    """(B, ...) -> (1, ...) when every sample holds the same values, else unchanged."""
    return x[:1] if x.shape[0] > 1 and bool((x == x[:1]).all()) else x


@register_model
class VAMoH(FunctionModel):
    model_name = "vamoh"
    label = "VAMoH"
    paper_order = 3
    curves = ("elbo_per_point", "ELBO per point (nats)")
    config_class = VAMoHConfig
    presets = PRESETS
    can_reconstruct = True
    reconstruction_protocols = RECONSTRUCTION_PROTOCOLS  # the posterior weights at observed points read y there

    def __init__(self, config: VAMoHConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.rff = RandomFourierFeatures(info.coord_dim, c.rff_frequencies, c.rff_sigma, seed=c.seed)
        R = self.rff.out_dim
        enc_coord_dim = R if c.neighbourhoods_in_fourier_space else info.coord_dim
        stages = build_stages(c.centroids, c.neighbours, c.out_channels, c.pool_centroids, c.pool_neighbours)
        self.encoder = PointConvEncoder(stages, info.feature_dim, enc_coord_dim, c.weightnet_hidden, c.dim_z,
                                        c.centroid_method, c.weightnet_linear)
        self.layout = GeneratorLayout([R, *c.generator_hidden, info.feature_dim])
        self.hypernets = HyperNetworks(c.K, c.dim_z, c.hypernet_hidden, self.layout.num_params, self.layout.last_layer_params)
        self.prior_c = CategoricalNet(R, 0, c.dim_z, c.categorical_hidden, c.K, c.tanh_categorical_logits)
        self.posterior_c = CategoricalNet(R, info.feature_dim, c.dim_z, c.categorical_hidden, c.K, c.tanh_categorical_logits)
        self.likelihood = make_likelihood(info.likelihood, info.feature_dim, c.fixed_logistic_scale)
        self.flow = PlanarFlowPrior(c.dim_z, c.flow_layers, c.flow_activation)
        # set when the warm-up ends: from then on the flow is the prior (and is what sample() draws from)
        self.register_buffer("flow_active", torch.tensor(False))
        # the points a training sample has before dropout: a random subset when training subsamples (ShapeNet's voxels)
        grid_points = math.prod(info.grid_shape)
        num_points = min(info.train_points or grid_points, grid_points)
        bound = max_dropout_alpha(c.centroids, num_points)
        self.dropout_alpha = bound if c.point_dropout_alpha is None else min(c.point_dropout_alpha, bound)

    # ------------------------------------------------------------------ pieces
    def encode(self, coords: Tensor, features: Tensor, mask: Tensor | None = None, shared: bool | None = None) -> tuple[Tensor, Tensor]:
        """q(z | X, Y): mean, logvar (B, dim_z) from the observed points. ``shared``: True when every sample is known
        to have the same coordinates (None: the encoder checks)."""
        enc_coords = self.rff(coords) if self.config.neighbourhoods_in_fourier_space else coords
        return self.encoder(enc_coords, features, mask, COMPUTE_DTYPES[self.config.compute_dtype], shared=shared)

    def _shared_rff(self, coords: Tensor) -> Tensor:
        """RFF of the coordinates: (1, D, R) when every sample shares them, else (B, D, R)."""
        return self.rff(_shared_over_batch(coords))

    def decode(self, z: Tensor, rff: Tensor) -> Tensor:
        """Raw generator outputs (B, D, K, f) of the K hypergenerators at the points whose RFF are ``rff``."""
        dtype = COMPUTE_DTYPES[self.config.compute_dtype]
        theta = self.hypernets(z, dtype)
        return run_generators(self.layout, theta, rff, dtype)

    def log_prior_c(self, rff: Tensor, z: Tensor, uniform: bool = False) -> Tensor:
        if uniform:
            B, D = z.shape[0], rff.shape[1]
            return torch.full((B, D, self.config.K), -math.log(self.config.K), device=z.device)
        return self.prior_c(rff, z)

    # ------------------------------------------------------------------ ELBO
    def elbo(self, batch: PointCloudBatch, epoch: int = 10**9, sample_z: bool = True, noise: Tensor | None = None) -> dict[str, Tensor]:
        """The three ELBO terms per sample (B,), summed over observed points, and their sum.

        Returns dict(elbo, rec, kl_z, kl_c). ``epoch`` selects the warm-up behaviours. ``noise`` (B, dim_z):
        the standard normal draw of the reparameterised z (default: drawn here).
        """
        c = self.config
        coords, y, mask = batch.coords, batch.features, batch.mask
        shared_mask = batch.all_observed or bool((mask == mask[:1]).all())  # the batch's promise, else the data
        if batch.all_observed:
            mask = None
        elif shared_mask and not bool(mask.all()):
            # the same points are observed in every sample: drop the others once (the loss ignores them anyway)
            keep = mask[0].nonzero().squeeze(1)
            coords, y, mask = coords[:, keep], y[:, keep], None
        elif shared_mask:
            mask = None
        mean, logvar = self.encode(coords, y, mask, shared=True if batch.shared_coords else None)
        if noise is None:
            noise = torch.randn_like(mean)
        z = mean + noise.to(mean) * torch.exp(0.5 * logvar) if sample_z else mean
        rff = self._shared_rff(coords[:1] if batch.shared_coords else coords)
        h = self.decode(z, rff)  # (B, D, K, f)
        log_px = self.likelihood.log_prob(h, y[:, :, None, :].expand_as(h))  # (B, D, K)
        log_q_c = self.posterior_c(rff, z, y)  # (B, D, K)
        uniform_prior = epoch < c.frozen_uniform_categorical_prior_epochs
        log_p_c = self.log_prior_c(rff, z, uniform_prior)
        w = None if mask is None else mask.float()
        rec_d = (log_q_c.exp() * log_px).sum(-1)  # (B, D)
        klc_d = categorical_kl(log_q_c, log_p_c)
        rec = rec_d.sum(1) if w is None else (rec_d * w).sum(1)
        kl_c = klc_d.sum(1) if w is None else (klc_d * w).sum(1)
        in_warmup = epoch < c.warmup_epochs or c.flow_layers == 0
        if in_warmup:
            kl_z = gaussian_kl_standard(mean, logvar)
        elif c.flow_on_detached_posterior:
            # original code: the flow fits detached posterior samples; the encoder gets no KL gradient
            kl_z = -self.flow.log_prob(z.detach())
        else:
            # paper: Monte Carlo KL through the same reparameterised sample
            kl_z = gaussian_log_prob(z, mean, logvar) - self.flow.log_prob(z)
        return {"elbo": rec - kl_z - kl_c, "rec": rec, "kl_z": kl_z, "kl_c": kl_c}

    # ------------------------------------------------------------------ training
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": torch.optim.Adam(self.parameters(), lr=self.config.lr, fused=True)}

    def point_dropout(self, batch: PointCloudBatch) -> PointCloudBatch:
        """Drop a uniformly random subset of floor(r D) points, r ~ U(0, alpha), the same mask for the whole batch.

        An exact count (rather than independent coin flips) guarantees the bound on the remaining
        points; each point is still dropped with probability r.
        """
        if self.dropout_alpha <= 0:
            return batch
        D = batch.num_points
        r = float(torch.rand(()) * self.dropout_alpha)
        n_drop = int(r * D)
        if n_drop == 0:
            return batch
        keep = torch.ones(D, dtype=torch.bool)
        keep[torch.randperm(D)[:n_drop]] = False  # drawn on the CPU (the run's RNG stream on every device)
        if batch.all_observed:
            # every point observed: drop the points themselves (what elbo does with a shared mask), with indices
            # known on the CPU, so nothing is read back from the device
            return batch.subset(keep.nonzero().squeeze(1).to(batch.coords.device, non_blocking=True))
        return batch.with_mask(batch.mask & keep.to(batch.mask.device, non_blocking=True)[None, :])

    def training_step(self, batch: PointCloudBatch, optimizers: dict[str, torch.optim.Optimizer], step: int, epoch: int = 0) -> dict[str, Tensor]:
        """One Adam step on ``batch``; the diagnostics are 0-dim float64 tensors on the model's device.

        No host synchronisation: nothing here reads a device value back (the trainer does, once per logging
        interval). A non-finite loss skips the optimizer step inside fused Adam (its ``found_inf`` input, as
        torch's GradScaler uses it), so the weights and Adam's state stay those of the last good step.
        """
        c = self.config
        if epoch >= c.warmup_epochs and c.flow_layers > 0:
            self.flow_active.fill_(True)  # unconditionally: reading the flag back would synchronise
        opt = optimizers["adam"]
        batch = self.point_dropout(batch)
        B = batch.batch_size
        # one draw for the whole batch, so micro-batching does not change the random numbers
        noise = torch.randn(B, c.dim_z, device=self.device)
        opt.zero_grad(set_to_none=True)
        size = c.microbatch_size or B
        sums: dict[str, Tensor] = {}
        for start in range(0, B, size):
            terms = self.elbo(batch.samples(start, start + size), epoch, noise=noise[start : start + size])
            # the batch loss is the mean over all B samples: each micro-batch adds its share
            (-terms["elbo"].sum() / B).backward()
            for k, v in terms.items():
                # summed in float64, as Python floats were before: the logged values do not depend on the device
                part = v.detach().sum().double()
                sums[k] = sums[k] + part if k in sums else part
        out = {"loss": -sums["elbo"] / B}
        grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters(), c.grad_clip)
        step_skipping(opt, ~torch.isfinite(out["loss"]))  # a non-finite loss leaves weights and Adam's state as they were
        out.update({k: v / B for k, v in sums.items()})
        # the sums run over the observed points, whose number point dropout changes every step:
        # the per-point ELBO is the figure comparable across steps
        out["elbo_per_point"] = out["elbo"] / batch.mask[0].sum().double()
        out["grad_norm"] = grad_norm.detach().double()
        return out

    # ------------------------------------------------------------------ generation & inference
    def _features_from_outputs(self, h: Tensor, log_pi: Tensor, mode: str) -> Tensor:
        """Raw outputs (B, Q, K, f) and mixture log-weights (B, Q, K) -> features (B, Q, f) in the data range."""
        means = self.likelihood.mean(h)
        if mode == "argmax":
            k = log_pi.argmax(-1)  # (B, Q)
            return torch.gather(means, 2, k[:, :, None, None].expand(-1, -1, 1, means.shape[-1])).squeeze(2)
        return (log_pi.exp()[..., None] * means).sum(2)

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n latents (n, dim_z) from the prior, on the model's device. The noise is drawn on the generator's
        device, so a CPU generator gives the same latents whatever device the model is on."""
        if bool(self.flow_active):
            return self.flow.sample(n, self.device, generator)
        return draw_normal((n, self.config.dim_z), self.device, generator)

    @torch.no_grad()
    def sample(self, n: int, coords: Tensor, generator: torch.Generator | None = None, z: Tensor | None = None) -> Tensor:
        """n functions from the prior at coords (Q, c) -> features (n, Q, f). Pass ``z`` to reuse latents (1x vs 2x)."""
        z = self.sample_z(n, generator) if z is None else z.to(self.device)
        rff = self.rff(coords.to(self.device))[None]
        h = self.decode(z, rff)
        return self._features_from_outputs(h, self.prior_c(rff, z), self.config.sample_mode)

    def _observed_at_queries(self, observed: PointCloudBatch, query: Tensor) -> tuple[Tensor, Tensor]:
        """Which query points (1 or B, Q, c) are observed points, and their observed features.

        Returns (observed (B, Q) bool, y (B, Q, f), zeros where not observed). Coordinates and
        masks shared by the batch are matched once.
        """
        coords, y, mask = observed.coords, observed.features, observed.mask
        if coords.shape[0] > 1 and bool((coords == coords[:1]).all()) and bool((mask == mask[:1]).all()):
            coords, mask = coords[:1], mask[:1]
        index = match_observed_points(query, coords, mask).expand(y.shape[0], -1)  # (B, Q)
        hit = index >= 0
        y_q = torch.gather(y, 1, index.clamp(min=0)[:, :, None].expand(-1, -1, y.shape[-1]))
        return hit, y_q * hit[:, :, None]

    def _posterior_mixture(self, observed: PointCloudBatch, query_coords: Tensor | None,
                           protocol: str = "paper") -> tuple[Tensor, Tensor, Tensor]:
        """z = posterior mean; log pi at the query points, chosen by ``protocol`` (RECONSTRUCTION_PROTOCOLS).

        Returns (z (B, dz), rff of queries (1 or B, Q, R), log_pi (B, Q, K)). ``"paper"``: as in the paper
        (eq. 5) and the original code, a query point that is an observed point (the same location within
        MATCH_TOLERANCE, mask True) gets the posterior q(c | x, y, z) with that point's y; any other (a hidden
        point in completion, a new point of a super-resolution grid) gets the prior p(c | x, z). At an observed
        point this is a best-of-K choice made with the answer. ``"leak_free"``: the prior p(c | x, z) at every
        point, so no point's mixture weights read its own value; z (the encoder's posterior mean over every
        observed point) is the only route from the data to the prediction, as Functa's modulations are.
        ``query_coords`` (Q, c) or (B, Q, c); None means the observed batch's own points.
        """
        check_choice("reconstruction protocol", protocol, RECONSTRUCTION_PROTOCOLS, ConfigError)
        observed = observed.to(self.device)
        coords, mask = observed.coords, observed.mask
        mean, _ = self.encode(coords, observed.features, None if bool(mask.all()) else mask)
        z = mean
        q = None if query_coords is None else query_coords.to(self.device)
        if q is not None and q.dim() == 2:
            q = q[None]
        own_points = q is None or (q.shape[1:] == coords.shape[1:] and bool((q == coords).all()))
        if own_points:
            # the query points are the observed batch's own points, in order: no matching needed
            rff = self._shared_rff(coords)
        else:
            q = _shared_over_batch(q)
            rff = self.rff(q)
        log_prior = self.prior_c(rff, z)
        if protocol == "leak_free":
            return z, rff, log_prior
        hit, y_q = (mask, observed.features) if own_points else self._observed_at_queries(observed, q)
        if not bool(hit.any()):
            return z, rff, log_prior
        log_post = self.posterior_c(rff, z, y_q)
        return z, rff, torch.where(hit[:, :, None], log_post, log_prior)

    @torch.no_grad()
    def reconstruct(self, observed: PointCloudBatch, query_coords: Tensor | None = None, protocol: str = "paper") -> Tensor:
        """Features (B, Q, f) at query_coords ((Q, c), (B, Q, c), or None = the batch's own points), the mixture
        weights chosen by ``protocol`` (``_posterior_mixture``)."""
        z, rff, log_pi = self._posterior_mixture(observed, query_coords, protocol)
        h = self.decode(z, rff)
        return self._features_from_outputs(h, log_pi, "mixture_mean")

    @classmethod
    def saved_config_defaults(cls) -> dict[str, Any]:
        return {"flow_activation": "tanh"}  # the planar layers were tanh before the key existed

    @torch.no_grad()
    def test_elbo_per_point(self, batch: PointCloudBatch, generator: torch.Generator | None = None) -> Tensor:
        """The paper's bound (eq. 16) per observed point of each sample (B,), in nats, one reparameterised z each.

        Whatever the training objective was: the switches that change only how training treats the bound
        (``flow_on_detached_posterior``, which replaces the KL by the flow's NLL; the frozen uniform p(c) of the first
        epochs) are off while it is computed, and the prior is the flow once the warm-up has ended in training.
        """
        import dataclasses

        trained = self.config
        batch = batch.to(self.device)
        where = generator.device if generator is not None else self.device
        noise = torch.randn(batch.batch_size, trained.dim_z, generator=generator, device=where).to(self.device)
        epoch = 10**9 if bool(self.flow_active) else 0
        self.config = dataclasses.replace(trained, flow_on_detached_posterior=False, frozen_uniform_categorical_prior_epochs=0)
        try:
            terms = self.elbo(batch, epoch=epoch, noise=noise)
        finally:
            self.config = trained
        return terms["elbo"] / batch.mask.sum(1)

    @property
    def num_components(self) -> int:
        """K: the number of hypergenerators, the mixture's components (entropy maps are scaled by ln K)."""
        return self.config.K

    @torch.no_grad()
    def mixture_maps(self, observed: PointCloudBatch, query_coords: Tensor | None = None, protocol: str = "paper") -> dict[str, Tensor]:
        """Entropy H(c_d) (B, Q) and most probable component (B, Q) of the mixture weights (paper Fig. 10, 25)."""
        _, _, log_pi = self._posterior_mixture(observed, query_coords, protocol)
        entropy = -(log_pi.exp() * log_pi).sum(-1)
        return {"entropy": entropy, "segmentation": log_pi.argmax(-1)}
