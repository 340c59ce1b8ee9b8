"""The typed data config: which dataset, from where, and how it is cut and resized.

Built with ``vamoh.config.from_dict`` so a misspelt key or a wrong type stops the run with a
``ConfigError`` naming it; ``validate`` then checks the values against the registry.

Imports run one way: spec <- config <- dataset modules <- registry <- cache / export. Names are checked against
``spec.DATASETS``, which ``vamoh.data.registry.register_dataset`` fills.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..checks import ConfigError, check_choice, check_range
from ..config import from_dict
from .spec import DATASETS, MODALITIES

SOURCES = ("standin", "real")
PIL_RESIZE = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")
TORCH_RESIZE = ("nearest", "bilinear", "bicubic", "area")
RESIZE_LIBRARIES = ("pil", "torch")


@dataclass
class DataConfig:
    name: str  # registry key: celebahq64 | shapes3d | polymnist | era5 | shapenet
    source: str = "standin"  # "standin": embedded offline data; "real": the files under `path`
    path: str | None = None  # real data: file or directory (see docs/datasets.md); ignored for stand-ins
    format: str | None = None  # real file format (spec.formats); None = detect from the files at `path`
    modality: str = "m1"  # PolyMNIST modality m0..m4 to train on; m1 like the original VAMoH code
    subset: float = 0.1  # Shapes3D: fraction of the 480,000 images kept before the 80/10/10 split (original code: 10%)
    split_seed: int = 0  # Shapes3D: seed of the shuffle before the split (original code: 0)
    resize: str = "bicubic"  # CelebA-HQ: resampling filter to 64x64 (PIL: nearest/box/bilinear/hamming/bicubic/lanczos)
    resize_library: str = "pil"  # CelebA-HQ: "pil" (always antialiased) or "torch" (F.interpolate; bicubic/bilinear/area/nearest)
    antialias: bool = True  # CelebA-HQ with resize_library="torch": antialiased downsampling; changes FID, so it is recorded
    n_train: int | None = None  # stand-in: number of training samples, >= 1 (None = dataset default); real: keep the first n
    n_val: int | None = None  # as n_train, for the validation split, >= 0 (empty for CelebA-HQ and PolyMNIST)
    n_test: int | None = None  # as n_train, for the test split, >= 1
    seed: int = 0  # stand-in generation seed (textures crops, procedural parameters, ERA5 anomalies)
    augment: bool = True  # ERA5 stand-in: fill the splits beyond the 78 real fields with seeded smooth anomalies
    train_points: int | None = None  # random points per training batch; None = dataset default (4096 voxels for ShapeNet), 0 = every point; enters through load_prepared

    def validate(self) -> None:
        check_choice("data.name", self.name, sorted(DATASETS))
        check_choice("data.source", self.source, SOURCES)
        check_choice("data.modality", self.modality, MODALITIES)
        check_choice("data.resize_library", self.resize_library, RESIZE_LIBRARIES)
        allowed = PIL_RESIZE if self.resize_library == "pil" else TORCH_RESIZE
        check_choice(f"data.resize (resize_library={self.resize_library!r})", self.resize, allowed)
        if self.resize_library == "pil" and not self.antialias:
            raise ConfigError("data.antialias=False needs resize_library='torch': PIL always antialiases when it downsamples")
        if not (isinstance(self.subset, (int, float)) and 0.0 < self.subset <= 1.0):
            raise ConfigError(f"data.subset={self.subset!r}: expected a fraction in (0, 1]")
        check_range("data.split_seed", self.split_seed, 0, 2**32 - 1)
        check_range("data.seed", self.seed, 0, 2**32 - 1)
        # Training and evaluation need at least one sample each; a run without validation is fine.
        for key, least in (("n_train", 1), ("n_val", 0), ("n_test", 1)):
            value = getattr(self, key)
            if value is not None and value < least:
                why = " (a validation split may be empty)" if least == 0 else f" ({key[2:]} needs at least one sample)"
                raise ConfigError(f"data.{key}={value!r}: expected a number >= {least} or null{why}")
        if self.train_points is not None and self.train_points < 0:
            raise ConfigError(f"data.train_points={self.train_points!r}: expected a number >= 0 (0 = every point) or null")
        spec = DATASETS[self.name]
        if self.format is not None:
            check_choice(f"data.format ({self.name})", self.format, spec.formats)
        if self.source == "real" and not self.path:
            raise ConfigError(f"data.path is required when data.source='real' ({self.name}: see docs/datasets.md)")


def make_config(cfg: DataConfig | dict[str, Any] | None = None, **overrides: Any) -> DataConfig:
    """A validated ``DataConfig`` from a config, a plain dict (YAML) or keyword overrides."""
    if isinstance(cfg, DataConfig):
        return from_dict(DataConfig, overrides, where="data", base=cfg)
    merged = {**(cfg or {}), **overrides}
    return from_dict(DataConfig, merged, where="data")
