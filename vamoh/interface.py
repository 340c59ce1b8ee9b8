"""The one interface VAMoH, GASP and Functa share, and the registry that names them.

The workflow loops over registry names and never branches on them. A model is an ``nn.Module``
built from (its typed config, a ``DataInfo``); it owns its optimizers and performs one training
step on a ``PointCloudBatch``; it samples new functions at any coordinates and, when it can,
reconstructs a function from observed points at any query coordinates.
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .checks import ConfigError
from .pointcloud import PointCloudBatch

LIKELIHOODS = ("discretized_logistic", "bernoulli", "continuous_bernoulli")
KINDS = ("image", "voxels", "field")


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about the data it is built for."""

    coord_dim: int  # 2 for images, 3 for voxels and for ERA5 on the unit sphere
    feature_dim: int  # 3 (RGB), 1 (occupancy), 1 (temperature)
    likelihood: str  # one of LIKELIHOODS
    grid_shape: tuple[int, ...]  # (H, W), (S, S, S) or (lat, lon)
    kind: str = "image"  # one of KINDS
    # points per sample in a training batch when training subsamples them (ShapeNet: 4096 random voxels);
    # None = every grid point. VAMoH's point-dropout bound is computed from it.
    train_points: int | None = None

    def __post_init__(self) -> None:
        if self.train_points is not None and (not isinstance(self.train_points, int) or isinstance(self.train_points, bool)
                                              or self.train_points <= 0):
            raise ConfigError(f"train_points={self.train_points!r}: expected a positive integer or None (every grid point)")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"likelihood={self.likelihood!r} is not one of {list(LIKELIHOODS)}")
        if self.kind not in KINDS:
            raise ConfigError(f"kind={self.kind!r} is not one of {list(KINDS)}")


@dataclass(frozen=True)
class Variant:
    """One trained model of a registry entry: the model as configured (``suffix`` "") or a variant of it
    that the model class declares (Functa (10): the same network meta-trained with 10 inner steps).

    The workflow trains and evaluates every variant as an entry of its own, named ``model_name + suffix``
    (e.g. "functa10"), so that nothing outside the model class needs to know that Functa has two.
    """

    suffix: str = ""  # entry name = model_name + suffix
    overrides: tuple[tuple[str, Any], ...] = ()  # config keys set on top of the run's config for this model
    generation: bool = True  # evaluated for generation (and given the prior stage, when the model has one)

    def override_dict(self) -> dict[str, Any]:
        return dict(self.overrides)


# How a reconstruction may use the observed values (docs/evaluation.md, "Two reconstruction protocols"):
# "paper": the model's own rule (VAMoH: posterior mixture weights q(c | x, y, z) at observed points, eq. 5);
# "leak_free": no point's prediction reads that point's value except through the global latent (VAMoH: the prior
# p(c | x, z) at every point). A model whose prediction reads the data only through a global latent (Functa's
# modulations) declares only "paper": both protocols are the same computation for it.
RECONSTRUCTION_PROTOCOLS = ("paper", "leak_free")


def leak_free_kwargs(model: Any) -> dict[str, str]:
    """The reconstruct() keywords that select the leak-free protocol: {"protocol": "leak_free"} for a model that tells
    the protocols apart, {} for one whose only rule already is leak-free."""
    return {"protocol": "leak_free"} if "leak_free" in getattr(model, "reconstruction_protocols", ("paper",)) else {}


class CannotReconstructError(NotImplementedError):
    """The model has no inference network (GASP)."""


def step_skipping(optimizer: torch.optim.Optimizer, bad: Tensor) -> None:
    """``optimizer.step()`` unless the 0-dim bool tensor ``bad`` is true.

    A fused optimizer decides on the device: fused Adam reads ``found_inf`` inside its kernel and then leaves
    weights, moments and step count as they were (the mechanism torch's GradScaler uses), so nothing is read back.
    Any other optimizer reads ``bad`` on the host, which is free only on the CPU; on an accelerator that would be a
    synchronisation every step, so it is refused (build the optimizer with ``fused=True`` there).
    """
    if optimizer.defaults.get("fused"):
        optimizer.found_inf = bad.float()
        try:
            optimizer.step()
        finally:
            del optimizer.found_inf
    elif bad.device.type == "cpu":
        if not bool(bad):
            optimizer.step()
    else:
        raise TypeError(f"step_skipping on {bad.device.type}: {type(optimizer).__name__} is not fused, so skipping a non-finite "
                        "step would read the loss back every step; build it with fused=True")


class FunctionModel(nn.Module, ABC):
    """Base class of every model in the registry."""

    model_name: ClassVar[str] = ""
    config_class: ClassVar[type] = object
    presets: ClassVar[dict[str, Any]] = {}
    can_reconstruct: ClassVar[bool] = True
    # True when generation needs a separate stage after training (Functa: modulations, then a flow);
    # the workflow then adds the functaset and fit_prior rules for this model.
    separate_prior_stage: ClassVar[bool] = False
    label: ClassVar[str] = ""  # display name in tables and figures, e.g. "VAMoH"
    paper_order: ClassVar[int] = 1000  # position in the paper's tables (GASP, Functa, VAMoH); unlisted models after
    # the headline diagnostic of the model's own training objective in the training-curves figure:
    # (history column or columns, axis label); () = no curve
    curves: ClassVar[tuple[Any, ...]] = ()
    # the module whose import_published(source, info, preset, seed) reads this model's published checkpoints (None: none)
    importer: ClassVar[str | None] = None
    # the entries the workflow trains for this model; the first is the model as configured
    variants: ClassVar[tuple[Variant, ...]] = (Variant(),)
    # True when reconstruct() takes ``steps=`` (an inner loop whose length can be chosen at inference)
    inference_steps: ClassVar[bool] = False
    # the RECONSTRUCTION_PROTOCOLS reconstruct(..., protocol=) tells apart; ("paper",) = the two are the same
    reconstruction_protocols: ClassVar[tuple[str, ...]] = ("paper",)

    @classmethod
    def saved_config_defaults(cls) -> dict[str, Any]:
        """Values of config keys that checkpoints written before the key existed were trained with (a missing
        key must not take a new default that changes the function the weights compute)."""
        return {}

    @classmethod
    def config_from(cls, preset: str, overrides: dict[str, Any] | None = None, seed: int | None = None, where: str = "") -> Any:
        """The config of preset ``preset`` (which the caller has checked exists, naming its own key) with ``overrides``
        on top; a config with a ``seed`` field (fixed random Fourier frequencies) gets ``seed`` unless the overrides
        set it. The one rule for the workflow (``RunConfig.model_config``) and ``vamoh train``."""
        from .config import from_dict

        overrides = dict(overrides or {})
        if seed is not None and "seed" in cls.config_class.__dataclass_fields__ and "seed" not in overrides:
            overrides["seed"] = int(seed)
        return from_dict(cls.config_class, overrides, where=where or cls.model_name, base=cls.presets[preset])

    @classmethod
    def display_label(cls, config: Any) -> str:
        """The name a model with ``config`` has in tables, e.g. "Functa (3)" for a 3-step Functa."""
        return cls.label or cls.model_name

    def __init__(self, config: Any, info: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.info = info

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @abstractmethod
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers the training step uses, by name (saved in checkpoints)."""

    @abstractmethod
    def training_step(self, batch: PointCloudBatch, optimizers: dict[str, torch.optim.Optimizer], step: int, epoch: int = 0) -> dict[str, Tensor | float]:
        """One optimisation step on ``batch``; returns scalar diagnostics, always with 'loss'.

        The diagnostics are 0-dim tensors (float64 by convention) left on the device, or Python floats: the
        trainer reads them back once per logging interval, so a step that reads no device value back (no
        ``.item()``, ``float()``, ``bool()`` of a device tensor) never waits for the GPU. A step whose 'loss' is
        non-finite must leave the weights unchanged (``step_skipping`` does it without a synchronisation), so
        the weights in memory stay those of the last good step.
        """

    @abstractmethod
    def sample(self, n: int, coords: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``n`` functions from the prior evaluated at ``coords`` (Q, c): features (n, Q, f) in the data range."""

    def reconstruct(self, observed: PointCloudBatch, query_coords: Tensor | None) -> Tensor:
        """Features (B, Q, f) at ``query_coords`` (Q, c) or (B, Q, c), inferred from ``observed``'s masked points;
        ``query_coords`` None means every point of ``observed`` (its own coordinates). Features are in the data range
        ([0, 1]). A model that lists "leak_free" in ``reconstruction_protocols`` also takes ``protocol=``."""
        raise CannotReconstructError(f"{self.model_name} cannot do inference: it has no encoder and no inner loop, only generation")

    @classmethod
    def import_published(cls, source: dict[str, Any], info: "DataInfo", preset: str | None = None, seed: int = 0) -> "FunctionModel":
        """The model of a published checkpoint (``source``: the files, e.g. {"path": ..., "modulations": ...,
        "trust_pickle": False}), for data ``info``, ready to evaluate (a generative prior fitted when it needs one).

        The class names its importer module (``importer``), which depends on the class, never the other way round;
        the module's ``import_published(source, info, preset, seed)`` does the work."""
        if cls.importer is None:
            raise NotImplementedError(f"{cls.model_name} has no importer for published checkpoints")
        return importlib.import_module(cls.importer).import_published(source, info, preset=preset, seed=seed)

    def write_prior_data(self, splits: dict[str, Any], path: Any, batch_size: int = 16) -> dict[str, Any]:
        """The first half of a separate prior stage (``separate_prior_stage``): what the prior is fitted to,
        written to ``path`` for inspection (Functa: every sample's modulation); returns its metadata."""
        raise NotImplementedError(f"{self.model_name} has no separate prior stage")

    def fit_prior(self, train_batches: Any, **kwargs: Any) -> dict[str, float]:
        """The second half of a separate prior stage (Functa's flow on modulations); a no-op by default."""
        return {}

    def parameter_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, child in self.named_children():
            counts[name] = sum(p.numel() for p in child.parameters())
        counts["total"] = sum(p.numel() for p in self.parameters())
        return counts


# ----------------------------------------------------------------------------- registry

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_REGISTRY: dict[str, type[FunctionModel]] = {}
# Where each model lives; importing the module registers it. Imported on first use, one at a time,
# so a model's heavy or missing dependencies never affect the others.
_PLUGIN_MODULES = {"vamoh": "vamoh.model", "gasp": "baselines.gasp.model", "functa": "baselines.functa.model"}


def register_model(cls: type[FunctionModel]) -> type[FunctionModel]:
    """Class decorator: add ``cls`` to the registry under ``cls.model_name``."""
    name = cls.model_name
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"model name {name!r} is malformed: expected lower-case letters, digits and '_'")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"model name {name!r} is already registered by {_REGISTRY[name].__module__}")
    _REGISTRY[name] = cls
    return cls


def _load_plugin(name: str) -> None:
    if name in _REGISTRY or name not in _PLUGIN_MODULES:
        return
    module = _PLUGIN_MODULES[name]
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:  # a real missing dependency, not an absent plugin
            raise


def available_models() -> list[str]:
    """Every registered model name (the workflow's and the CLI's choices)."""
    for name in _PLUGIN_MODULES:
        _load_plugin(name)
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type[FunctionModel]:
    _load_plugin(name)
    if name not in _REGISTRY:
        raise ConfigError(f"model={name!r} is not one of {available_models()}")
    return _REGISTRY[name]


@dataclass(frozen=True)
class Entry:
    """One model the workflow trains (or imports): a registry model and one of its variants."""

    name: str  # e.g. "vamoh", "functa", "functa10", "gasp-official"
    model: str  # registry name of the class
    variant: Variant
    # a published checkpoint per dataset ({dataset: {"path": ..., ...}}): the entry is imported there, not trained
    imported: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()

    def source(self, dataset: str) -> dict[str, Any] | None:
        return next((dict(files) for d, files in self.imported if d == dataset), None)

    @property
    def cls(self) -> type[FunctionModel]:
        return get_model_class(self.model)

    @property
    def generation(self) -> bool:
        return self.variant.generation

    @property
    def prior_stage(self) -> bool:
        """Whether generation needs the model's separate prior stage (Functa's functaset and fitted flow)."""
        return self.cls.separate_prior_stage and self.variant.generation

    @property
    def final_checkpoint(self) -> str:
        """The file name of the checkpoint the entry is evaluated from: imported, or trained and after its prior
        stage when it has one (the workflow's rules write these names)."""
        return "imported.pt" if self.imported else "fitted.pt" if self.prior_stage else "checkpoint.pt"


def model_entries(models: list[str] | tuple[str, ...]) -> dict[str, Entry]:
    """Entry name -> Entry for the configured ``models``, every declared variant included, in order."""
    out: dict[str, Entry] = {}
    for model in models:
        cls = get_model_class(model)
        for variant in cls.variants:
            name = model + variant.suffix
            if name in out:
                raise ConfigError(f"model entry {name!r} is declared twice (model {model!r}, variant {variant.suffix!r})")
            out[name] = Entry(name, model, variant)
    return out


def build_model(name: str, info: DataInfo, preset: str | None = None, overrides: dict[str, Any] | None = None) -> FunctionModel:
    """Model ``name`` for data ``info`` from a named preset plus config overrides."""
    from .config import from_dict

    cls = get_model_class(name)
    base = None
    if preset is not None:
        if preset not in cls.presets:
            raise ConfigError(f"{name} preset={preset!r} is not one of {sorted(cls.presets)}")
        base = cls.presets[preset]
    config = from_dict(cls.config_class, overrides, where=f"{name}", base=base)
    return cls(config, info)


def entry_order() -> list[str]:
    """Every registered model's entry names (each declared variant after its model) in the paper's table order."""
    classes = sorted((get_model_class(name) for name in available_models()), key=lambda c: (c.paper_order, c.model_name))
    return [cls.model_name + v.suffix for cls in classes for v in cls.variants]
