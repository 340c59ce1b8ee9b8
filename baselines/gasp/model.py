"""GASP (Dupont, Teh & Doucet, 2022): a GAN whose samples are functions (REFERENCE §2).

Generator:      z ~ N(0, I_64);  theta = hypernetwork(z);  f_theta(x) = tanh(MLP_theta(RFF(x))) in [-1, 1]
                (raw coordinates instead of RFF(x) for voxels).
Discriminator:  PointConv with batch norm on (coordinates, features) -> one logit per sample.
Loss:           non-saturating GAN (BCE with logits), one D step then one G step, R1 penalty
                (weight/2) E ||grad_y D(y)||^2 on real data w.r.t. its features.

Feature ranges: the suite's data features lie in [0, 1], GASP's in [-1, 1]. Real features enter
the discriminator as 2y - 1 and generated ones as the generator's tanh output, so the
discriminator sees GASP's range on both sides; ``sample`` returns (tanh + 1) / 2, the data range.
GASP has no encoder and no inner loop: ``reconstruct`` raises the base class's CannotReconstructError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vamoh.checks import ConfigError, check_choice, check_int_list, check_positive, check_range
from vamoh.interface import DataInfo, FunctionModel, register_model, step_skipping
from vamoh.nn.fourier import RandomFourierFeatures
from vamoh.nn.hyper import GeneratorLayout, HyperNetworks, run_generators
from vamoh.nn.pointconv import CENTROID_METHODS, build_stages
from vamoh.pointcloud import PointCloudBatch

from .discriminator import PointConvDiscriminator


@dataclass
class GASPConfig:
    """Hyperparameters of GASP. Defaults are GASP's CelebA-HQ 64x64 configuration."""

    dim_z: int = 64  # latent size of the generator
    hypernet_hidden: list[int] = field(default_factory=lambda: [256, 512])  # z -> 256 -> 512 -> all function weights
    function_hidden: list[int] = field(default_factory=lambda: [128, 128, 128])  # the function MLP's hidden widths
    fourier_features: bool = True  # False: the function MLP reads raw coordinates (GASP's voxels)
    rff_frequencies: int = 128  # m: RFF gives 2m inputs
    rff_sigma: float = 2.0
    # PointConv discriminator, on raw coordinates (same list convention as vamoh.model.VAMoHConfig)
    weightnet_hidden: list[int] = field(default_factory=lambda: [16, 16, 16, 16])
    centroids: list[int] = field(default_factory=lambda: [4096, 1024, 256, 64, 1])
    neighbours: list[int] = field(default_factory=lambda: [9, 9, 9, 9, 16])
    out_channels: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 1])  # last: the logit
    pool_centroids: list[int | None] | None = field(default_factory=lambda: [1024, 256, 64, 16, None])
    pool_neighbours: list[int | None] | None = field(default_factory=lambda: [9, 9, 9, 9, None])
    centroid_method: str = "fps"
    # optimisation
    r1_weight: float = 10.0  # R1 penalty weight gamma; the penalty is gamma/2 E||grad||^2 (Mescheder et al., 2018)
    # True (GASP's code, which the VAMoH paper's GASP numbers come from): R1 on the gradient of sigmoid(D).
    # False: on the gradient of the logit, Mescheder et al.'s definition; sigmoid' <= 1/4 makes it >= 16x stronger.
    r1_on_probability: bool = True
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.5, 0.999)  # Adam, both optimizers
    epochs: int = 300
    batch_size: int = 64
    seed: int = 0  # seed of the fixed Fourier frequencies

    def validate(self) -> None:
        for name in ("dim_z", "rff_frequencies", "epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"gasp.{name}={v!r}: expected a positive integer")
        for name in ("hypernet_hidden", "function_hidden", "weightnet_hidden", "centroids", "neighbours", "out_channels"):
            check_int_list(f"gasp.{name}", getattr(self, name))
        for name in ("rff_sigma", "lr_g", "lr_d"):
            check_positive(f"gasp.{name}", getattr(self, name))
        check_range("gasp.r1_weight", self.r1_weight, 0.0, math.inf)
        for i, b in enumerate(self.betas):
            check_range(f"gasp.betas[{i}]", b, 0.0, 0.999999)
        check_choice("gasp.centroid_method", self.centroid_method, CENTROID_METHODS)
        build_stages(self.centroids, self.neighbours, self.out_channels, self.pool_centroids, self.pool_neighbours)
        if self.centroids[-1] != 1 or self.out_channels[-1] != 1:
            raise ConfigError(f"gasp: the discriminator's last PointConv must have 1 centroid and 1 output channel "
                              f"(the logit); found centroids[-1]={self.centroids[-1]}, out_channels[-1]={self.out_channels[-1]}")


# CelebA-HQ 64 and ERA5: PC(4096,9,64) AP(1024,9) PC(1024,9,128) AP(256,9) PC(256,9,256) AP(64,9) PC(64,9,512) AP(16,9) PC(1,16,1)
_CELEBA_D: dict[str, Any] = dict(centroids=[4096, 1024, 256, 64, 1], neighbours=[9, 9, 9, 9, 16], out_channels=[64, 128, 256, 512, 1],
                                 pool_centroids=[1024, 256, 64, 16, None], pool_neighbours=[9, 9, 9, 9, None])
# Voxels: PC(4096,8,32) PC(4096,27,64) AP(512,27) PC(512,27,128) AP(64,27) PC(64,27,256) AP(8,27) PC(1,8,1)
_VOXEL_D: dict[str, Any] = dict(centroids=[4096, 4096, 512, 64, 1], neighbours=[8, 27, 27, 27, 8], out_channels=[32, 64, 128, 256, 1],
                                pool_centroids=[None, 512, 64, 8, None], pool_neighbours=[None, 27, 27, 27, None])
# PolyMNIST 28x28 (derived, GASP has none; docs/baselines.md): the CelebA stack started at the 784 pixels,
# pools by the same factor 4 (784 -> 196 -> 49), the 512-channel stage dropped because 49 points remain,
# the last pool down to 16 points so the final PC(1, 16, 1) is CelebA's.
_POLYMNIST_D: dict[str, Any] = dict(centroids=[784, 196, 49, 1], neighbours=[9, 9, 9, 16], out_channels=[64, 128, 256, 1],
                                    pool_centroids=[196, 49, 16, None], pool_neighbours=[9, 9, 9, None])

PRESETS: dict[str, GASPConfig] = {
    "celebahq64": GASPConfig(**_CELEBA_D),
    "era5": GASPConfig(**_CELEBA_D),  # same stack and schedule as CelebA64; RFF of the 3-d sphere coordinates
    # Shapes3D 64x64 (derived): the same grid size as CelebA64, so GASP's CelebA64 configuration unchanged
    "shapes3d": GASPConfig(**_CELEBA_D),
    "polymnist": GASPConfig(**_POLYMNIST_D),
    "shapenet": GASPConfig(fourier_features=False, lr_g=2e-5, lr_d=8e-5, batch_size=26, epochs=200, **_VOXEL_D),
    # shrunken model for unit tests and smoke runs only: any data with >= 64 points per sample. Its discriminator
    # cannot train a generator (docs/baselines.md, "GASP at demo scale"): one PointConv reads 64 centroids x 8
    # neighbours (512 of a 64x64 image's 4096 pixels) and the logit is a sum of per-position terms of that one
    # layer, so textures with the data's local colours hold it at chance.
    "tiny": GASPConfig(dim_z=8, hypernet_hidden=[16], function_hidden=[16, 16], rff_frequencies=16, weightnet_hidden=[8],
                       centroids=[64, 1], neighbours=[8, 16], out_channels=[16, 1], pool_centroids=[16, None],
                       pool_neighbours=[8, None], lr_g=1e-3, lr_d=4e-3, epochs=2, batch_size=8),
    # shrunken model that learns in the demo's few hundred steps: any data with >= 256 points per sample. The
    # discriminator is the paper stack cut to two hidden PointConvs: PC(256,16,32) AP(64,9) PC(64,9,64) AP(16,9)
    # PC(1,16,1); its first layer's 256 centroids x 16 neighbours read 83% of a 64x64 grid's pixels (all of
    # PolyMNIST's), and the logit mixes two non-linear layers. The generator is tiny's at twice the width (32 RFF frequencies).
    "demo": GASPConfig(dim_z=16, hypernet_hidden=[32], function_hidden=[32, 32], rff_frequencies=32, weightnet_hidden=[8],
                       centroids=[256, 64, 1], neighbours=[16, 9, 16], out_channels=[32, 64, 1], pool_centroids=[64, 16, None],
                       pool_neighbours=[9, 9, None], lr_g=1e-3, lr_d=4e-3, epochs=2, batch_size=32),
}


def to_discriminator_range(features01: Tensor) -> Tensor:
    """Data features in [0, 1] -> GASP's [-1, 1] (what real samples look like to the discriminator)."""
    return 2 * features01 - 1


def to_data_range(features_pm1: Tensor) -> Tensor:
    """Generator output in [-1, 1] -> the suite's [0, 1]."""
    return (features_pm1 + 1) / 2


def discriminator_accuracy(logit_real: Tensor, logit_fake: Tensor) -> Tensor:
    """Fraction (0-dim float64 tensor, on the logits' device) of the D step's samples the discriminator classes
    right: real logits > 0 and fake logits < 0.

    0.5 is chance (e.g. every logit on one side of 0); 1.0 is a discriminator that separates the batch.
    """
    right = (logit_real > 0).double().sum() + (logit_fake < 0).double().sum()
    return right / (logit_real.numel() + logit_fake.numel())


def r1_penalty(discriminator: nn.Module, coords: Tensor, real: Tensor, weight: float, on_probability: bool = False,
               shared: bool | None = None) -> tuple[Tensor, Tensor]:
    """R1 = weight/2 * mean_b sum_{d,f} (dD(real)/d real_{b,d,f})^2 and the logits it was taken of.

    D is the logit, or with ``on_probability`` the probability sigmoid(logit) (GASP's code); without
    batch-norm coupling, the latter's gradient is the logit's scaled by sigmoid'(logit) <= 1/4.

    coords (B, N, c); real (B, N, f) features in [-1, 1] -> (penalty scalar, logits (B,)). The
    gradient is of the summed outputs, so with batch norm each sample's gradient also carries its
    effect on the batch statistics, as in GASP. ``create_graph=True`` so the penalty trains D.
    """
    real = real.detach().requires_grad_(True)
    logits = discriminator(coords, real) if shared is None else discriminator(coords, real, shared=shared)
    out = torch.sigmoid(logits) if on_probability else logits
    (grad,) = torch.autograd.grad(out.sum(), real, create_graph=True)
    penalty = 0.5 * weight * grad.pow(2).sum(dim=(1, 2)).mean()
    return penalty, logits


@register_model
class GASP(FunctionModel):
    model_name = "gasp"
    label = "GASP"
    paper_order = 1
    curves = (("loss_d", "loss_g"), "discriminator / generator loss")
    config_class = GASPConfig
    presets = PRESETS
    can_reconstruct = False
    importer = "baselines.gasp.importer"  # GASP's released checkpoints

    def __init__(self, config: GASPConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.rff = RandomFourierFeatures(info.coord_dim, c.rff_frequencies, c.rff_sigma, seed=c.seed) if c.fourier_features else None
        in_dim = self.rff.out_dim if self.rff is not None else info.coord_dim
        self.layout = GeneratorLayout([in_dim, *c.function_hidden, info.feature_dim])
        # GASP's hypernetwork is VAMoH's with a single component (K = 1)
        self.hypernet = HyperNetworks(1, c.dim_z, c.hypernet_hidden, self.layout.num_params)
        stages = build_stages(c.centroids, c.neighbours, c.out_channels, c.pool_centroids, c.pool_neighbours)
        self.discriminator = PointConvDiscriminator(stages, info.feature_dim, info.coord_dim, c.weightnet_hidden, c.centroid_method)

    # ------------------------------------------------------------------ generator
    def generate(self, z: Tensor, coords: Tensor) -> Tensor:
        """Latents z (B, dim_z) at coords (B, N, c) or (1, N, c) shared -> features (B, N, f) in [-1, 1]."""
        inputs = self.rff(coords) if self.rff is not None else coords
        theta = self.hypernet(z)  # (1, B, P)
        return torch.tanh(run_generators(self.layout, theta, inputs)[:, :, 0, :])

    def prior_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        # drawn where the generator lives, so a CPU generator gives the same latents on any device
        where = generator.device if generator is not None else self.device
        return torch.randn(n, self.config.dim_z, device=where, generator=generator).to(self.device)

    @staticmethod
    def _shared(coords: Tensor) -> Tensor:
        """(B, N, c) -> (1, N, c) when every sample has the same coordinates (the generator then reads them once)."""
        return coords[:1] if coords.shape[0] > 1 and bool((coords == coords[:1]).all()) else coords

    # ------------------------------------------------------------------ training
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        # off the CPU fused, whose found_inf input skips a non-finite step without a host synchronisation; on the CPU
        # torch's default (foreach) implementation, with which every committed CPU result was computed (fused Adam
        # rounds differently, and a GAN amplifies it)
        fused = self.device.type != "cpu"
        return {"g": torch.optim.Adam(self.hypernet.parameters(), lr=c.lr_g, betas=c.betas, fused=fused),
                "d": torch.optim.Adam(self.discriminator.parameters(), lr=c.lr_d, betas=c.betas, fused=fused)}

    def training_step(self, batch: PointCloudBatch, optimizers: dict[str, torch.optim.Optimizer], step: int, epoch: int = 0) -> dict[str, Tensor]:
        """One D step (fresh fakes, R1 on the reals), then one G step (new fakes); 'loss' is the G loss.

        The diagnostics are 0-dim float64 tensors on the model's device; nothing reads a device value back (the
        trainer does, once per logging interval). A non-finite loss skips its optimizer's step (fused Adam's
        ``found_inf``), so the weights stay those of the last good step.
        """
        if not batch.all_observed and not bool(batch.mask.all()):  # a promised batch (the trainer's) is not read back
            raise ValueError("gasp: training batches must be fully observed (mask all True); GASP has no notion of missing points")
        c = self.config
        opt_g, opt_d = optimizers["g"], optimizers["d"]
        B = batch.batch_size
        coords = batch.coords
        shared = {"shared": True} if batch.shared_coords else {}  # the batch's promise saves reading the coordinates back
        gen_coords = coords[:1] if batch.shared_coords else self._shared(coords)
        real = to_discriminator_range(batch.features)
        ones, zeros = torch.ones(B, device=coords.device), torch.zeros(B, device=coords.device)

        # discriminator step: real and fake pass through D separately (separate batch statistics, as in GASP)
        with torch.no_grad():
            fake = self.generate(self.prior_z(B), gen_coords)
        if c.r1_weight > 0:
            r1, logit_real = r1_penalty(self.discriminator, coords, real, c.r1_weight, c.r1_on_probability, **shared)
        else:
            r1, logit_real = torch.zeros((), device=coords.device), self.discriminator(coords, real, **shared)
        logit_fake = self.discriminator(coords, fake, **shared)
        loss_real = F.binary_cross_entropy_with_logits(logit_real, ones)
        loss_fake = F.binary_cross_entropy_with_logits(logit_fake, zeros)
        loss_d = loss_real + loss_fake + r1
        out = {"loss_d": loss_d.detach().double(), "r1": r1.detach().double()}
        d_bad = ~torch.isfinite(out["loss_d"])
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        step_skipping(opt_d, d_bad)

        # generator step: non-saturating loss -log sigmoid(D(G(z))) on new fakes; D's weights are held fixed
        self.discriminator.requires_grad_(False)
        try:
            fake = self.generate(self.prior_z(B), gen_coords)
            loss_g = F.binary_cross_entropy_with_logits(self.discriminator(coords, fake, **shared), ones)
        finally:
            self.discriminator.requires_grad_(True)
        out["loss_g"] = loss_g.detach().double()
        # a non-finite D loss makes the step's loss non-finite too, so the trainer stops on it
        out["loss"] = torch.where(d_bad, out["loss_d"], out["loss_g"])
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        step_skipping(opt_g, d_bad | ~torch.isfinite(out["loss_g"]))
        out["d_real"] = torch.sigmoid(logit_real.detach()).mean().double()
        out["d_fake"] = torch.sigmoid(logit_fake.detach()).mean().double()
        out["d_acc"] = discriminator_accuracy(logit_real.detach(), logit_fake.detach())
        return out

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def sample(self, n: int, coords: Tensor, generator: torch.Generator | None = None, z: Tensor | None = None) -> Tensor:
        """n functions at coords (Q, c) -> features (n, Q, f) in [0, 1]; any resolution. Pass ``z`` (n, dim_z) to reuse latents."""
        z = self.prior_z(n, generator) if z is None else z.to(self.device)
        return to_data_range(self.generate(z, coords.to(self.device)[None]))
