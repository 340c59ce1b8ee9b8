"""The dataset registry: name -> ``DatasetSpec``, and name -> the module that reads or builds it.

Every dataset module provides ``SPEC``, ``build_standin(cfg)``, ``detect_format(root)``,
``load_real(cfg, fmt)`` and ``write_real(cfg, out_dir, fmt)``; the rest of the suite only sees
the functions below, so nothing outside this package branches on a dataset's name.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..checks import ConfigError, DataError
from . import celeba, era5, polymnist, shapenet, shapes3d
from .config import DataConfig, make_config
from .spec import SPLITS, DatasetSpec, RawSplits

_MODULES: tuple[ModuleType, ...] = (celeba, shapes3d, polymnist, era5, shapenet)
_BACKENDS: dict[str, ModuleType] = {}
for _m in _MODULES:
    if _m.SPEC.name in _BACKENDS:
        raise ValueError(f"dataset name {_m.SPEC.name!r} registered twice")
    _BACKENDS[_m.SPEC.name] = _m

DATASETS: dict[str, DatasetSpec] = {name: m.SPEC for name, m in _BACKENDS.items()}


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ConfigError(f"dataset {name!r} is not one of {sorted(DATASETS)}")
    return DATASETS[name]


def standin_label(cfg: DataConfig) -> str:
    backend = _BACKENDS[cfg.name]
    custom = getattr(backend, "standin_label", None)
    return custom(cfg) if custom else backend.SPEC.display_label(True)


def resolve_format(cfg: DataConfig) -> str:
    """The configured real format, or the one detected from the files at ``cfg.path``."""
    if cfg.format is not None:
        return cfg.format
    root = Path(cfg.path)
    if not root.exists():
        raise FileNotFoundError(f"{DATASETS[cfg.name].label} data not found: {root} (config key data.path)")
    return _BACKENDS[cfg.name].detect_format(root)


def build(cfg: DataConfig) -> tuple[RawSplits, dict[str, Any]]:
    """The dataset as arrays, plus the facts recorded with it (label, is_standin, format, timing)."""
    spec = get_spec(cfg.name)
    backend = _BACKENDS[cfg.name]
    start = time.perf_counter()
    if cfg.source == "standin":
        raw = backend.build_standin(cfg)
        facts = {"is_standin": True, "label": standin_label(cfg), "format": None}
    else:
        fmt = resolve_format(cfg)
        raw = backend.load_real(cfg, fmt)
        facts = {"is_standin": False, "label": spec.display_label(False), "format": fmt}
    facts["build_seconds"] = round(time.perf_counter() - start, 3)
    _check_raw(spec, raw)
    return raw, facts


def _check_raw(spec: DatasetSpec, raw: RawSplits) -> None:
    """Every builder must hand back the documented array layout; a slip here is a bug, not bad input."""
    trailing = spec.grid_shape + ((spec.feature_dim,) if spec.kind == "image" else ())
    for split in SPLITS:
        a = raw.arrays.get(split)
        if a is None or a.shape[1:] != trailing or a.dtype != np.dtype(spec.storage_dtype):
            found = None if a is None else (a.shape, str(a.dtype))
            raise DataError(f"{spec.name} {split}: arrays {found}, expected (N, {', '.join(map(str, trailing))}) {spec.storage_dtype}")


def write_real_format(name: str, out_dir: str | Path, fmt: str | None = None, cfg: DataConfig | dict[str, Any] | None = None, **overrides: Any) -> Path:
    """Write dataset ``name``'s stand-in in its real file format; returns the value for ``data.path``.

    ``fmt`` defaults to the spec's first format; ``cfg``/``overrides`` set the stand-in's sizes and
    seed (e.g. ``n_train=16``). The real loaders read the result like a downloaded dataset.
    """
    spec = get_spec(name)
    fmt = fmt or spec.formats[0]
    if fmt not in spec.formats:
        raise ConfigError(f"format={fmt!r} is not one of {list(spec.formats)} for {name}")
    if isinstance(cfg, DataConfig):
        config = make_config(cfg, name=name, source="standin", **overrides)
    else:
        config = make_config({**(cfg or {}), "name": name, "source": "standin"}, **overrides)
    return _BACKENDS[name].write_real(config, Path(out_dir), fmt)
