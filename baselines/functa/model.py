"""Functa (Dupont, Kim, Eslami, Rezende & Rosenbaum, 2022) behind the suite's interface (REFERENCE §3).

Representation:  f(x; z) = ModulatedSiren(x; shifts = A z + a), shared weights, per-sample latent z.
Inference:       Meta-SGD inner loop from z = 0: z <- z - alpha * grad_z MSE_i(z), per sample, for a few
                 steps (alpha: one learned rate per latent dimension).
Meta-training:   outer loss = MSE after the inner loop, differentiated through it (second order by
                 default), Adam on the shared weights, A, a and alpha.
Generation:      a normalizing flow (zuko) fitted to the standardised modulations of the training set,
                 decoded by the shared network: the separate stages ``write_functaset`` -> ``fit_prior``.

Coordinates: the suite's grids live in [-1, 1], Functa's in [0, 1], so grid coordinates are mapped by
(x + 1) / 2; ERA5's 3-d unit-sphere coordinates are used as they are (no [0, 1] grid exists there).
Outputs: the network is unbounded (linear + 0.5); ``sample`` and ``reconstruct`` clip to the data range
[0, 1], as Functa's evaluation does, while training uses the raw output.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zuko
from torch import Tensor, nn

from vamoh.checks import ConfigError, TrainingDivergedError, check, check_choice, check_int_list, check_positive
from vamoh.interface import DataInfo, FunctionModel, Variant, register_model, step_skipping
from vamoh.pointcloud import PointCloudBatch

from .functaset import load_functaset
from .siren import ModulatedSiren

COORDINATE_MAPS = ("auto", "unit_interval", "identity")
FLOWS = ("maf", "nsf")
DECODE_CHUNK = 16  # functions decoded at once when sampling


class PriorNotFittedError(RuntimeError):
    """Functa samples from a flow fitted after meta-training; it has not been fitted yet."""


@dataclass
class FunctaConfig:
    """Hyperparameters of Functa. Defaults are the Functa paper's CelebA-HQ 64 setting."""

    width: int = 512  # SIREN width
    depth: int = 15  # linear layers: depth - 1 modulated sine layers and the output layer
    w0: float = 30.0  # SIREN frequency
    latent_dim: int = 128  # modulation size (the paper published 64..1024)
    inner_steps: int = 3  # inner-loop steps during meta-training, and the default at inference
    inner_lr_init: tuple[float, float] = (0.005, 0.1)  # Meta-SGD rates start U(low, high), one per latent dimension
    inner_lr_clip: tuple[float, float] = (0.0, 1.0)  # the rates are clipped to this range when used (Functa code)
    first_order: bool = False  # True: drop the second-order terms through the inner loop (first-order MAML)
    lr: float = 3e-6  # outer Adam learning rate
    batch_size: int = 16
    epochs: int = 297  # ~500k outer steps on CelebA-HQ 64's 27,000 training images (docs/baselines.md)
    coordinate_map: str = "auto"  # "auto": [-1,1] grids -> [0,1], sphere coords as they are; or "unit_interval" / "identity"
    # flow prior on the modulations (the generative stage)
    flow: str = "maf"  # zuko.flows.MAF or NSF
    flow_transforms: int = 5
    flow_hidden: list[int] = field(default_factory=lambda: [256, 256])
    prior_epochs: int = 100  # defaults of fit_prior
    prior_lr: float = 1e-3
    prior_batch_size: int = 256

    def validate(self) -> None:
        for name in ("width", "latent_dim", "batch_size", "epochs", "flow_transforms", "prior_epochs", "prior_batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"functa.{name}={v!r}: expected a positive integer")
        if not isinstance(self.depth, int) or self.depth < 2:
            raise ConfigError(f"functa.depth={self.depth!r}: expected an integer >= 2")
        if not isinstance(self.inner_steps, int) or self.inner_steps < 0:
            raise ConfigError(f"functa.inner_steps={self.inner_steps!r}: expected an integer >= 0")
        if self.latent_dim < 2:
            raise ConfigError(f"functa.latent_dim={self.latent_dim}: expected >= 2 (an autoregressive flow needs two dimensions)")
        for name in ("w0", "lr", "prior_lr"):
            check_positive(f"functa.{name}", getattr(self, name))
        for name in ("inner_lr_init", "inner_lr_clip"):
            low, high = getattr(self, name)
            if not (0 <= low < high):
                raise ConfigError(f"functa.{name}={getattr(self, name)!r}: expected (low, high) with 0 <= low < high")
        check_int_list("functa.flow_hidden", self.flow_hidden)
        check_choice("functa.coordinate_map", self.coordinate_map, COORDINATE_MAPS)
        check_choice("functa.flow", self.flow, FLOWS)


PRESETS: dict[str, FunctaConfig] = {
    # The network and optimiser are the Functa paper's on every dataset; epochs ~ 500k outer steps at
    # batch 16 over each training split (sizes in docs/baselines.md). Exact budget: train.max_steps=500000.
    "celebahq64": FunctaConfig(epochs=297),  # 27,000 train images
    "shapes3d": FunctaConfig(epochs=209),  # 38,400 (the 10% subset, 80% train)
    "polymnist": FunctaConfig(epochs=134),  # 60,000
    "era5": FunctaConfig(epochs=941),  # 8,510 (GASP's split)
    "shapenet": FunctaConfig(epochs=1480),  # 5,422 (80% of 6,778 chairs); 4096 random voxels per batch
    # shrunken model for tests and smoke runs
    "tiny": FunctaConfig(width=32, depth=3, latent_dim=16, lr=1e-3, batch_size=4, epochs=2, flow_transforms=2,
                         flow_hidden=[32, 32], prior_epochs=10, prior_batch_size=64),
}


def make_flow(config: FunctaConfig) -> nn.Module:
    """The zuko flow of the prior; fixed feature order (no random permutations) so it is rebuilt identically from the config."""
    kwargs = dict(transforms=config.flow_transforms, hidden_features=list(config.flow_hidden), randperm=False)
    if config.flow == "nsf":
        return zuko.flows.NSF(config.latent_dim, **kwargs)
    return zuko.flows.MAF(config.latent_dim, **kwargs)


@register_model
class Functa(FunctionModel):
    model_name = "functa"
    label = "Functa"
    paper_order = 2
    curves = ("psnr", "train PSNR after the inner loop (dB, eq. 19)")
    # The VAMoH paper's "Functa (10)" (Tables 2/5) is a separately meta-trained 10-step model: a variant
    # the workflow trains as the entry "functa10"; only its reconstructions are evaluated.
    variants = (Variant(), Variant("10", (("inner_steps", 10),), generation=False))
    inference_steps = True  # reconstruct(..., steps=N) runs another number of inner steps than meta-trained
    config_class = FunctaConfig
    presets = PRESETS
    separate_prior_stage = True  # generation needs the functaset and fit_prior stages
    can_reconstruct = True
    importer = "baselines.functa.importer"  # DeepMind's released parameters and modulations

    @classmethod
    def display_label(cls, config: FunctaConfig) -> str:
        return f"Functa ({config.inner_steps})"

    def __init__(self, config: FunctaConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.siren = ModulatedSiren(info.coord_dim, info.feature_dim, c.width, c.depth, c.w0)
        self.to_shifts = nn.Linear(c.latent_dim, self.siren.num_shifts)
        nn.init.zeros_(self.to_shifts.bias)  # z = 0 (the inner loop's start) is the unmodulated SIREN
        low, high = c.inner_lr_init
        self.inner_lrs = nn.Parameter(torch.empty(c.latent_dim).uniform_(low, high))
        mode = c.coordinate_map
        if mode == "auto":
            mode = "identity" if info.kind == "field" else "unit_interval"
        self.coordinate_mode = mode
        # the generative stage: flow on standardised modulations u = (z - mean) / std, all saved in the state dict
        self.flow = make_flow(c)
        self.register_buffer("mod_mean", torch.zeros(c.latent_dim))
        self.register_buffer("mod_std", torch.ones(c.latent_dim))
        self.register_buffer("prior_fitted", torch.tensor(False))

    # ------------------------------------------------------------------ the function
    def map_coords(self, coords: Tensor) -> Tensor:
        return (coords + 1) / 2 if self.coordinate_mode == "unit_interval" else coords

    def decode(self, z: Tensor, coords: Tensor) -> Tensor:
        """Latents z (B, L) at suite coordinates (1 or B, D, c) -> raw outputs (B, D, f)."""
        shifts = self.to_shifts(z).reshape(z.shape[0], -1, self.siren.width)  # (B, depth-1, width)
        return self.siren(self.map_coords(coords), shifts)

    def per_sample_mse(self, z: Tensor, coords: Tensor, y: Tensor, weights: Tensor | None) -> Tensor:
        """MSE (B,) of each sample over its observed points: weights (B, D) in {0, 1}, or None = every point."""
        err = (self.decode(z, coords) - y).pow(2).mean(-1)  # (B, D)
        if weights is None:
            return err.mean(1)
        return (err * weights).sum(1) / weights.sum(1).clamp(min=1)

    @staticmethod
    def observed(batch: PointCloudBatch) -> tuple[Tensor, Tensor, Tensor | None]:
        """(coords (1 or B, D', c), features (B, D', f), weights (B, D') or None) of the observed points.

        When every sample observes the same points they are selected once (the loss ignores the rest
        anyway) and the coordinates, shared, are passed once; otherwise the mask becomes weights.
        """
        coords, y, mask = batch.coords, batch.features, batch.mask
        if batch.all_observed:  # promised by the batch (the trainer's): nothing is read back from the device
            return (coords[:1] if batch.shared_coords else coords), y, None
        if bool((mask == mask[:1]).all()):
            if not bool(mask.all()):
                keep = mask[0].nonzero().squeeze(1)
                coords, y = coords[:, keep], y[:, keep]
            if coords.shape[0] > 1 and bool((coords == coords[:1]).all()):
                coords = coords[:1]
            return coords, y, None
        return coords, y, mask.to(y.dtype)

    # ------------------------------------------------------------------ inner loop (Meta-SGD)
    def inner_loop(self, coords: Tensor, y: Tensor, weights: Tensor | None, steps: int, create_graph: bool) -> Tensor:
        """Latents (B, L) after ``steps`` per-sample gradient steps from zero.

        The summed loss has, in row i of its gradient, exactly sample i's own gradient. With
        ``create_graph`` the result is differentiable w.r.t. every shared weight through the
        gradients themselves (second order); without it only through the learned rates.
        """
        rates = self.inner_lrs.clamp(*self.config.inner_lr_clip)
        z = torch.zeros(y.shape[0], self.config.latent_dim, device=y.device, dtype=y.dtype, requires_grad=True)
        for _ in range(steps):
            loss = self.per_sample_mse(z, coords, y, weights).sum()
            (grad,) = torch.autograd.grad(loss, z, create_graph=create_graph)
            z = z - rates * grad
        return z

    def modulations(self, batch: PointCloudBatch, steps: int | None = None) -> Tensor:
        """The latents (B, L) the inner loop finds for ``batch``'s observed points (detached); works under no_grad."""
        steps = self._check_steps(steps)
        coords, y, w = self.observed(batch.to(self.device))
        with torch.enable_grad():
            z = self.inner_loop(coords, y, w, steps, create_graph=False)
        return z.detach()

    def _check_steps(self, steps: int | None) -> int:
        steps = self.config.inner_steps if steps is None else steps
        check(isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0,
              f"functa: steps={steps!r}: expected an integer >= 0 (inner-loop steps; meta-trained with {self.config.inner_steps})")
        return steps

    # ------------------------------------------------------------------ training
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        # the outer loop trains the SIREN, the latent -> shift map and the inner rates; the flow is fitted later
        params = [*self.siren.parameters(), *self.to_shifts.parameters(), self.inner_lrs]
        # off the CPU fused, whose found_inf input skips a non-finite step without a host synchronisation; on the CPU
        # torch's default (foreach) implementation, with which every committed CPU result was computed
        return {"adam": torch.optim.Adam(params, lr=self.config.lr, fused=self.device.type != "cpu")}

    def training_step(self, batch: PointCloudBatch, optimizers: dict[str, torch.optim.Optimizer], step: int, epoch: int = 0) -> dict[str, Tensor]:
        """One outer Adam step through the inner loop; diagnostics as 0-dim float64 tensors on the device (nothing is
        read back; a non-finite loss skips the step inside fused Adam, so the weights stay the last good step's)."""
        c = self.config
        opt = optimizers["adam"]
        coords, y, w = self.observed(batch)
        z = self.inner_loop(coords, y, w, c.inner_steps, create_graph=not c.first_order)
        mse = self.per_sample_mse(z, coords, y, w)  # (B,)
        loss = mse.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        out = {"loss": loss.detach().double()}
        step_skipping(opt, ~torch.isfinite(out["loss"]))  # the trainer stops on a non-finite loss; no step into NaN weights
        out["mse"] = out["loss"]
        out["psnr"] = self.psnr_of_mse(mse.detach()).mean().double()  # the paper's eq. 19, as every test PSNR of the suite
        return out

    def psnr_of_mse(self, mse: Tensor) -> Tensor:
        """PSNR (B,) in the paper's convention (eq. 19; data in [0, 1]) of per-sample MSEs averaged over channels:
        the squared error summed over a point's C channels is C x that mean."""
        return -10 * torch.log10((mse * self.info.feature_dim).clamp(min=1e-12))

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def reconstruct(self, observed: PointCloudBatch, query_coords: Tensor | None = None, steps: int | None = None) -> Tensor:
        """Features (B, Q, f) in [0, 1] at query_coords ((Q, c), (B, Q, c), or None = the batch's own points).

        The latent is fitted to ``observed``'s masked points by ``steps`` inner-loop steps from zero
        (default: the meta-trained number; the VAMoH paper's "Functa (10)" uses 10).
        """
        z = self.modulations(observed, steps)
        q = observed.coords if query_coords is None else query_coords
        q = q.to(self.device)
        q = q[None] if q.dim() == 2 else q
        if q.shape[0] > 1 and bool((q == q[:1]).all()):
            q = q[:1]
        return self.decode(z, q).clamp(0.0, 1.0)

    # ------------------------------------------------------------------ generation (flow on modulations)
    def write_prior_data(self, splits: dict[str, Any], path: str | Path, batch_size: int = 16) -> dict[str, Any]:
        """The functaset: every sample's modulation (the meta-trained number of inner steps), in an .npz + .json."""
        from .functaset import write_functaset

        return write_functaset(self, splits, path, batch_size=batch_size)

    def prior_log_prob(self, z: Tensor) -> Tensor:
        """log p(z) (N,) of modulations z (N, L): the flow's density of u = (z - mean)/std and the standardisation's Jacobian."""
        u = (z - self.mod_mean) / self.mod_std
        return self.flow().log_prob(u) - self.mod_std.log().sum()

    def _modulations_from(self, source: Any) -> Tensor:
        """Modulations (N, L) from an array, a functaset file (its 'train' array) or an iterable of batches or arrays."""
        if isinstance(source, (str, Path)):
            source = load_functaset(source)["train"]
        if isinstance(source, (np.ndarray, Tensor)):
            mods = torch.as_tensor(np.asarray(source) if isinstance(source, np.ndarray) else source)
        elif isinstance(source, Iterable):
            parts = [self.modulations(b) if isinstance(b, PointCloudBatch) else torch.as_tensor(b) for b in source]
            check(len(parts) > 0, "functa.fit_prior: the training batches are empty")
            mods = torch.cat([p.to(self.device) for p in parts])
        else:
            raise TypeError(f"functa.fit_prior: expected modulations (N, L), a functaset path or an iterable of batches; got {type(source).__name__}")
        L = self.config.latent_dim
        check(mods.dim() == 2 and mods.shape[1] == L and mods.shape[0] >= 2,
              f"functa.fit_prior: modulations of shape {tuple(mods.shape)}, expected (N >= 2, {L})")
        return mods.to(self.device, torch.float32)

    def fit_prior(self, train_batches: Any, epochs: int | None = None, lr: float | None = None, batch_size: int | None = None,
                  seed: int = 0, **kwargs: Any) -> dict[str, float]:
        """Fit the flow to the training modulations: maximum likelihood with Adam.

        ``train_batches``: modulations (N, L) (tensor or array), the path of a functaset written by
        ``write_functaset`` (its 'train' array), or an iterable of PointCloudBatch (modulations are
        computed with the meta-trained number of inner steps). Returns the final negative
        log-likelihood per modulation in nats ('prior_nll'), 'prior_epochs' and 'num_modulations'.
        """
        c = self.config
        epochs = c.prior_epochs if epochs is None else epochs
        lr = c.prior_lr if lr is None else lr
        batch_size = c.prior_batch_size if batch_size is None else batch_size
        check(isinstance(epochs, int) and epochs >= 0, f"functa.fit_prior: epochs={epochs!r}, expected an integer >= 0")
        check_positive("functa.fit_prior lr", lr, ValueError)
        mods = self._modulations_from(train_batches)
        N = mods.shape[0]
        with torch.no_grad():
            self.mod_mean.copy_(mods.mean(0))
            self.mod_std.copy_(mods.std(0).clamp(min=1e-6))  # a constant dimension must not divide by zero
        u = (mods - self.mod_mean) / self.mod_std
        opt = torch.optim.Adam(self.flow.parameters(), lr=lr)
        g = torch.Generator().manual_seed(seed)
        with torch.enable_grad():
            for epoch in range(epochs):
                order = torch.randperm(N, generator=g).to(self.device)
                for s in range(0, N, batch_size):
                    nll = -self.flow().log_prob(u[order[s : s + batch_size]]).mean()
                    if not math.isfinite(float(nll.detach())):
                        raise TrainingDivergedError(f"functa.fit_prior: non-finite flow loss {float(nll.detach())} in epoch {epoch}; try a lower lr (now {lr})")
                    opt.zero_grad(set_to_none=True)
                    nll.backward()
                    opt.step()
        self.prior_fitted.fill_(True)
        with torch.no_grad():
            final = -float(self.prior_log_prob(mods).mean())
        return {"prior_nll": final, "prior_epochs": float(epochs), "num_modulations": float(N)}

    @torch.no_grad()
    def sample_modulations(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n modulations (n, L) from the flow: base noise through the inverse transform, then un-standardised."""
        if not bool(self.prior_fitted):
            raise PriorNotFittedError("functa: sample() needs the flow prior on the modulations; run the functaset stage "
                                      "(write_functaset) and model.fit_prior(...) after meta-training first")
        # the base noise is drawn here (zuko's sample() takes no generator); zuko's base is N(0, I)
        where = generator.device if generator is not None else self.device
        eps = torch.randn(n, self.config.latent_dim, generator=generator, device=where).to(self.device)
        u = self.flow().transform.inv(eps)
        return u * self.mod_std + self.mod_mean

    @torch.no_grad()
    def sample(self, n: int, coords: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """n functions at coords (Q, c) -> features (n, Q, f) in [0, 1]."""
        z = self.sample_modulations(n, generator)
        coords = coords.to(self.device)[None]
        # decoded DECODE_CHUNK functions at a time: each sample's output is bitwise the same as in one batch, and the
        # activations stay small (B x points x width floats a layer)
        return torch.cat([self.decode(z[i : i + DECODE_CHUNK], coords).clamp_(0.0, 1.0) for i in range(0, n, DECODE_CHUNK)])
