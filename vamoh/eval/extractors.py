"""The suite's own feature extractor: a small convolutional autoencoder trained on a train split.

Offline there are no Inception weights (no package ships them), so by default FID, KID and
precision/recall are computed on the bottleneck features of an autoencoder the suite trains itself
on each dataset's train split. It is label-free (CelebA-HQ has no labels), deterministic given a
seed on one machine, saved with a sha256 checksum, and registered in torch-fidelity under
``SUITE_EXTRACTOR`` so that torch-fidelity computes every metric exactly as it does for Inception.
Numbers from it are NOT comparable with the paper's Inception numbers, only between models.

Architecture (input resized to ``input_size``^2, default 32):
    uint8 (N, 3, H, W) -> [0,1] -> resize (N, 3, s, s) -> 3 x [conv 4x4 stride 2, LeakyReLU(0.2)]
    (N, 128, s/8, s/8) -> flatten -> linear -> features (N, feature_dim)
and a mirrored decoder used only for training (MSE reconstruction loss).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from ..checks import CheckpointError, ConfigError, DataError, check, check_positive
from ..io import recorded_digests, replace_with_sidecar, sha256_file  # sha256_file: also this module's API (tests, callers)

SUITE_EXTRACTOR = "vamoh-suite-ae"  # name in torch-fidelity's registry
SUITE_FEATURE = "bottleneck"  # the one feature layer it provides
FILE_FORMAT = "vamoh.eval.extractor/1"


@dataclass(frozen=True)
class ExtractorConfig:
    input_size: int = 32  # images are resized to input_size^2 (antialiased bilinear); a multiple of 8
    feature_dim: int = 64  # bottleneck width = feature dimension of FID/KID/PRC
    channels: tuple[int, int, int] = (32, 64, 128)  # conv widths of the three stride-2 stages
    epochs: int = 10  # passes over the (capped) train split; 10 x 10,000 images ~ minutes on 2 CPU cores
    batch_size: int = 128
    lr: float = 1e-3  # Adam
    seed: int = 0  # weights init and shuffling
    max_train_images: int = 10000  # cap on images used for training (a random subset, seeded)

    def __post_init__(self) -> None:
        check(self.input_size % 8 == 0 and self.input_size >= 8, f"extractor.input_size={self.input_size}: expected a multiple of 8, >= 8", ConfigError)
        for name in ("feature_dim", "epochs", "batch_size", "max_train_images"):
            check_positive(f"extractor.{name}", getattr(self, name))
        check_positive("extractor.lr", self.lr)


class ConvAutoencoder(nn.Module):
    """Encoder (N, 3, s, s) -> (N, feature_dim); decoder back to (N, 3, s, s) in [0, 1]."""

    def __init__(self, config: ExtractorConfig) -> None:
        super().__init__()
        c1, c2, c3 = config.channels
        s8 = config.input_size // 8
        self.config = config
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c1, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(c1, c2, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(c2, c3, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(c3 * s8 * s8, config.feature_dim),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Linear(config.feature_dim, c3 * s8 * s8), nn.LeakyReLU(0.2),
            nn.Unflatten(1, (c3, s8, s8)),
            nn.ConvTranspose2d(c3, c2, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(c1, 3, 4, 2, 1), nn.Sigmoid(),
        )  # fmt: skip

    def preprocess(self, images_uint8: Tensor) -> Tensor:
        """uint8 (N, 3, H, W) -> float (N, 3, s, s) in [0, 1]."""
        x = images_uint8.float() / 255.0
        s = self.config.input_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return x

    def encode(self, x01: Tensor) -> Tensor:
        return self.encoder(x01 * 2.0 - 1.0)


def images_to_tensor(images: np.ndarray) -> Tensor:
    """uint8 (N, H, W, 3) / (N, H, W, 1) / (N, H, W) -> uint8 tensor (N, 3, H, W) (grey repeated)."""
    arr = np.asarray(images)
    check(arr.dtype == np.uint8, f"images dtype {arr.dtype}, expected uint8 (N, H, W, 3)", DataError)
    if arr.ndim == 3:
        arr = arr[..., None]
    check(arr.ndim == 4 and arr.shape[-1] in (1, 3), f"images shape {arr.shape}, expected (N, H, W, 3) or (N, H, W)", DataError)
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2)
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    return t.contiguous()


def weights_digest(payload: dict[str, Any]) -> str:
    """sha256 of what an extractor file holds (format, config, dataset and every tensor's name, dtype, shape and
    bytes): the extractor's identity. The file's own sha256 only guards its integrity: ``torch.save`` writes a
    fresh serialization id into every file, so two saves of the same weights differ byte for byte."""
    h = hashlib.sha256()
    h.update(json.dumps({k: payload.get(k) for k in ("format", "config", "dataset")}, sort_keys=True, default=list).encode())
    for name in sorted(payload["state_dict"]):
        t = payload["state_dict"][name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def train_extractor(images: np.ndarray, config: ExtractorConfig | None = None, dataset: str = "", device: str = "cpu") -> ConvAutoencoder:
    """Train the autoencoder on uint8 train images (N, H, W, 3); deterministic for a given seed and machine."""
    config = config or ExtractorConfig()
    data = images_to_tensor(images)
    gen = torch.Generator().manual_seed(config.seed)
    if len(data) > config.max_train_images:
        data = data[torch.randperm(len(data), generator=gen)[: config.max_train_images]]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = ConvAutoencoder(config).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(data), generator=gen)
        for start in range(0, len(data), config.batch_size):
            x = model.preprocess(data[order[start : start + config.batch_size]].to(device))  # (b, 3, s, s)
            loss = F.mse_loss(model.decoder(model.encode(x)), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    model.trained_on = dataset  # type: ignore[attr-defined]
    return model


def save_extractor(model: ConvAutoencoder, path: str | Path, dataset: str) -> str:
    """Save weights + config atomically and write ``<path>.sha256``; returns the sha256 hex digest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FILE_FORMAT,
        "config": asdict(model.config),
        "dataset": dataset,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        digest = sha256_file(tmp)
        replace_with_sidecar(path, digest, lambda: os.replace(tmp, path))  # file and sidecar verify at every moment
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return digest


def verify_extractor_file(path: str | Path) -> str:
    """Check the weights file against its ``.sha256`` sidecar; return the digest or raise ``CheckpointError``."""
    path = Path(path)
    check(path.exists(), f"suite feature-extractor weights not found: {path} (train them with vamoh.eval.extractors.train_extractor / config key eval.suite_extractor_weights)", CheckpointError)
    sidecar = _checksum_path(path)
    check(sidecar.exists(), f"checksum file not found: {sidecar} (expected beside {path})", CheckpointError)
    recorded = recorded_digests(path)  # the new and the previous digest while a save is renaming the file into place
    actual = sha256_file(path)
    check(actual in recorded, f"{path}: sha256 {actual} does not match {recorded[0] if recorded else 'nothing'} recorded in {sidecar}; retrain or restore the file", CheckpointError)
    return actual


def load_extractor(path: str | Path) -> tuple[ConvAutoencoder, dict[str, Any]]:
    """Verified load; returns the model (eval mode) and the file's metadata (format, config, dataset)."""
    verify_extractor_file(path)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    check(payload.get("format") == FILE_FORMAT, f"{path}: format {payload.get('format')!r}, expected {FILE_FORMAT!r}", CheckpointError)
    cfg = dict(payload["config"])
    cfg["channels"] = tuple(cfg["channels"])
    model = ConvAutoencoder(ExtractorConfig(**cfg))
    model.load_state_dict(payload["state_dict"])
    model.eval()
    payload["content_sha256"] = weights_digest(payload)
    return model, {k: v for k, v in payload.items() if k != "state_dict"}


class SuiteFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity adapter: uint8 (N, 3, H, W) -> (bottleneck features (N, feature_dim),).

    torch-fidelity constructs it as ``cls(name, features_list, feature_extractor_weights_path=..., ...)``.
    """

    def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(name, features_list)
        check(feature_extractor_weights_path is not None, f"feature extractor {name!r} needs feature_extractor_weights_path (config key eval.suite_extractor_weights)", ConfigError)
        self.net, self.meta = load_extractor(feature_extractor_weights_path)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return (SUITE_FEATURE,)

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return SUITE_FEATURE

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> Tensor:
        return torch.zeros(1, 3, 8, 8, dtype=torch.uint8)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        check(x.dim() == 4 and x.shape[1] == 3 and x.dtype == torch.uint8, f"{self.name}: input {tuple(x.shape)} {x.dtype}, expected uint8 (N, 3, H, W)", DataError)
        feats = self.net.encode(self.net.preprocess(x)).float()  # (N, feature_dim)
        return tuple(feats for _ in self.features_list)


def register_suite_extractor() -> None:
    """Register ``SUITE_EXTRACTOR`` in torch-fidelity once (idempotent)."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    existing = FEATURE_EXTRACTORS_REGISTRY.get(SUITE_EXTRACTOR)
    if existing is None:
        register_feature_extractor(SUITE_EXTRACTOR, SuiteFeatureExtractor)
    elif existing is not SuiteFeatureExtractor:
        raise ConfigError(f"torch-fidelity feature extractor {SUITE_EXTRACTOR!r} is registered by another class {existing!r}")


def _plain(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in cfg.items()}


def train_or_load_extractor(images: np.ndarray, path: str | Path, dataset: str, config: ExtractorConfig | None = None, device: str = "cpu") -> str:
    """Train and save on first use, otherwise verify the saved file; returns its sha256."""
    path = Path(path)
    if path.exists():
        digest = verify_extractor_file(path)
        _, meta = load_extractor(path)
        if config is not None and _plain(meta["config"]) != _plain(asdict(config)):
            raise ConfigError(f"{path} was trained with config {meta['config']}, the run asks for {asdict(config)}; delete the file or point eval.suite_extractor_weights elsewhere")
        return digest
    model = train_extractor(images, config, dataset=dataset, device=device)
    return save_extractor(model, path, dataset)
