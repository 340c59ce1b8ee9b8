"""Writing a stand-in in its real dataset's file format (test fixtures, a picture of a real layout).

Kept apart from ``registry.py`` because it builds a ``DataConfig``: ``config.py`` imports the
registry, so the registry must not import ``config.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..checks import ConfigError
from .config import DataConfig, make_config
from .registry import backend, get_spec


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
    return backend(name).write_real(config, Path(out_dir), fmt)
