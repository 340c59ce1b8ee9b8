"""The dataset registry: name -> ``DatasetSpec``, and name -> the module that reads or builds it.

Every dataset module provides ``SPEC``, ``build_standin(cfg)``, ``detect_format(root)``,
``load_real(cfg, fmt)`` and ``write_real(cfg, out_dir, fmt)``, either
``render_superres(cfg, split, count, factor)`` (its stand-in's samples at a finer resolution) or
``SUPERRES_UNAVAILABLE`` (why there is none), and may provide ``standin_label(cfg, raw)``; the
rest of the suite only sees the functions below (and ``write_real_format`` in ``export.py``), so nothing outside this package branches on a dataset's
name. A module enters the registry through ``register_dataset``: the package's ``__init__`` registers the five
datasets, and a plugin module (the run config's ``plugins``) registers its own when it is imported.

Imports run one way: spec <- config <- dataset modules <- registry <- package. ``DataConfig`` appears here only in
type hints; the config checks names against ``spec.DATASETS``, the storage this module fills.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checks import ConfigError, DataError, check_choice, check_file
from .files import warn_data
from .spec import DATASETS, SPLITS, DatasetSpec, RawSplits, SuperResTruth

if TYPE_CHECKING:
    from .config import DataConfig

_BACKENDS: dict[str, ModuleType] = {}
REQUIRED_SPLITS = ("train", "test")  # training and evaluation need at least one sample; val may be empty
_REQUIRED = ("SPEC", "build_standin", "detect_format", "load_real", "write_real")


def register_dataset(module: ModuleType) -> ModuleType:
    """Add the dataset ``module`` (its ``SPEC`` and functions, as the module docstring lists) to the registry; a name
    registered by another module, or a module without the functions, is a ``ValueError`` naming it."""
    missing = [name for name in _REQUIRED if not hasattr(module, name)]
    if missing:
        raise ValueError(f"dataset module {module.__name__} lacks {', '.join(missing)} (see vamoh.data.registry)")
    name = module.SPEC.name
    if name in _BACKENDS and _BACKENDS[name] is not module:
        raise ValueError(f"dataset name {name!r} registered twice ({_BACKENDS[name].__name__} and {module.__name__})")
    if hasattr(module, "render_superres") == hasattr(module, "SUPERRES_UNAVAILABLE"):
        raise ValueError(f"dataset {name!r}: its module must define exactly one of render_superres and SUPERRES_UNAVAILABLE")
    _BACKENDS[name] = module
    DATASETS[name] = module.SPEC
    return module


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ConfigError(f"dataset {name!r} is not one of {sorted(DATASETS)}")
    return DATASETS[name]


def backend(name: str) -> ModuleType:
    """The module that reads and builds dataset ``name``."""
    get_spec(name)
    return _BACKENDS[name]


def standin_label(cfg: DataConfig, raw: RawSplits) -> str:
    """The one-line label of a built stand-in: the spec's, or the module's own when it depends on the build."""
    module = _BACKENDS[cfg.name]
    custom = getattr(module, "standin_label", None)
    return custom(cfg, raw) if custom else module.SPEC.display_label(True)


def superres_truth(cfg: DataConfig, split: str, count: int, factor: int = 2) -> SuperResTruth:
    """The first ``count`` samples of ``split`` (in the prepared cache's order: ``load_dataset(cfg)[split]``) rendered at
    ``factor`` times the resolution on every grid axis, or why no such render exists (``SuperResTruth``).

    Only the procedural stand-ins (CelebA-HQ faces, Shapes3D scenes, ShapeNet chairs) render one, genuinely at the
    finer resolution from the same random draws or factors (never by upsampling); real files
    (``cfg.source='real'``), PolyMNIST's real digits and ERA5's GloSea4 fields give ``values=None`` and the reason.
    An unknown ``split``, a ``count`` below 1 or above the split's size, or a ``factor`` below 2 is a ``ValueError``
    naming the value (the size is checked only where a render is made: the other cases never read the data).
    """
    check_choice("superres_truth: split", split, SPLITS, error=ValueError)
    for name, value, least in (("count", count, 1), ("factor", factor, 2)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
            raise ValueError(f"superres_truth: {name}={value!r}: expected an integer >= {least}")
    spec = get_spec(cfg.name)
    module = _BACKENDS[cfg.name]
    if cfg.source != "standin":
        return SuperResTruth(None, f"real {spec.label} files (data.source={cfg.source!r}) have no {factor}x render; only the "
                                   f"procedural stand-ins can be rendered at another resolution")
    if not hasattr(module, "render_superres"):
        return SuperResTruth(None, module.SUPERRES_UNAVAILABLE)
    truth = module.render_superres(cfg, split, int(count), int(factor))
    trailing = tuple(factor * g for g in spec.grid_shape) + ((spec.feature_dim,) if spec.kind == "image" else ())
    if truth.values.shape != (count, *trailing) or truth.values.dtype != np.dtype(spec.storage_dtype):
        raise DataError(f"{spec.name} super-resolution: values {truth.values.shape} {truth.values.dtype}, "
                        f"expected {(count, *trailing)} {spec.storage_dtype}")  # a bug in the renderer, not bad input
    return truth


def resolve_format(cfg: DataConfig) -> str:
    """The configured real format, or the one detected from the files at ``cfg.path``."""
    if cfg.format is not None:
        return cfg.format
    root = check_file(cfg.path, f"{DATASETS[cfg.name].label} data", "data.path")  # (names a dangling symbolic link's target)
    return _BACKENDS[cfg.name].detect_format(root)


def build(cfg: DataConfig) -> tuple[RawSplits, dict[str, Any]]:
    """The dataset as arrays, plus the facts recorded with it (label, is_standin, format, timing).

    A train or test split that comes out empty is a ``DataError`` naming it (and ``cfg.path``);
    a split smaller than its ``n_*`` is a ``DataWarning`` recorded in ``raw.meta["warnings"]``.
    """
    spec = get_spec(cfg.name)
    module = _BACKENDS[cfg.name]
    start = time.perf_counter()
    if cfg.source == "standin":
        raw = module.build_standin(cfg)
        facts = {"is_standin": True, "label": standin_label(cfg, raw), "format": None}
    else:
        fmt = resolve_format(cfg)
        raw = module.load_real(cfg, fmt)
        facts = {"is_standin": False, "label": spec.display_label(False), "format": fmt}
    facts["build_seconds"] = round(time.perf_counter() - start, 3)
    _check_raw(spec, raw)
    _check_sizes(spec, cfg, raw)
    return raw, facts


def _check_raw(spec: DatasetSpec, raw: RawSplits) -> None:
    """Every builder must hand back the documented array layout; a slip here is a bug, not bad input."""
    trailing = spec.grid_shape + ((spec.feature_dim,) if spec.kind == "image" else ())
    for split in SPLITS:
        a = raw.arrays.get(split)
        if a is None or a.shape[1:] != trailing or a.dtype != np.dtype(spec.storage_dtype):
            found = None if a is None else (a.shape, str(a.dtype))
            raise DataError(f"{spec.name} {split}: arrays {found}, expected (N, {', '.join(map(str, trailing))}) {spec.storage_dtype}")


def _check_sizes(spec: DatasetSpec, cfg: DataConfig, raw: RawSplits) -> None:
    """Empty train/test splits stop the run here, before any training; short splits are reported."""
    where = f"data.path={cfg.path}" if cfg.source == "real" else "the stand-in"
    sizes = raw.sizes()
    for split in REQUIRED_SPLITS:
        if sizes[split] == 0:
            raise DataError(f"{spec.label}: the {split} split is empty after loading {where} ({spec.split_rule}); {split} needs at least one sample")
    for split in SPLITS:
        asked = getattr(cfg, f"n_{split}")
        if asked is not None and sizes[split] < asked:
            warn_data(raw.meta, f"{spec.label}: data.n_{split}={asked} asked for, {where} gives {sizes[split]} {split} samples; using {sizes[split]}")
