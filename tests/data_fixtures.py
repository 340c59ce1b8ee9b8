"""Small helpers shared by the data tests (imported by tests/test_data_*.py)."""

from __future__ import annotations

import numpy as np

from vamoh.data import DataConfig, make_config
from vamoh.data.registry import build

# Tiny stand-in sizes (train, val, test) for fixtures written in the real formats.
TINY = {
    "celebahq64": dict(n_train=9, n_test=1),
    "shapes3d": dict(n_train=16, n_val=2, n_test=2),
    "polymnist": dict(n_train=20, n_test=10),
    "era5": dict(n_train=8, n_val=2, n_test=3),
    "shapenet": dict(n_train=8, n_val=1, n_test=1),
}


def tiny_cfg(name: str, **overrides) -> DataConfig:
    return make_config({"name": name, **TINY[name], **overrides})


def standin_arrays(name: str, **overrides) -> dict[str, np.ndarray]:
    raw, _ = build(tiny_cfg(name, **overrides))
    return raw.arrays


def row_hashes(a: np.ndarray) -> set[bytes]:
    """One hash key per sample, to test that splits share no sample."""
    return {bytes(x.tobytes()) for x in a}
