"""Checkpoints: model and optimizer state, the resolved config, the step and the RNG states, written atomically.

A checkpoint holds only tensors and plain data (dicts, lists, strings, numbers), and is read with
``torch.load(weights_only=True)``: a file that holds anything else (pickled code, a crafted object) is
refused before any of it runs. The numpy and Python RNG states are stored as tensors and plain tuples
for that reason.
"""

from __future__ import annotations

import io
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checks import CheckpointError
from .io import atomic_write

FORMAT_VERSION = 2
REQUIRED_KEYS = ("model_name", "model_config", "data_info", "model_state", "step")


def rng_state() -> dict[str, Any]:
    """Every RNG state the training loop draws from, as tensors and plain data."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": name, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the format version) to ``path`` atomically."""
    buf = io.BytesIO()
    torch.save({**payload, "format_version": FORMAT_VERSION}, buf)
    return atomic_write(path, lambda f: f.write(buf.getbuffer()))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; one clear error for a missing, truncated, foreign or unsafe file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file; name the checkpoint file itself (e.g. {path / 'checkpoint.pt'})")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"(?:[Uu]nsupported global: |unsupported )GLOBAL ([\w.]+)", str(err))
        what = f" (it names {found.group(1)})" if found else ""
        raise CheckpointError(f"{path} holds objects other than tensors and plain data{what}, so it was refused unread: a checkpoint "
                              "of this suite holds only tensors, numbers, strings, lists and dicts, and is read with "
                              "torch.load(weights_only=True). Do not load this file with weights_only=False unless you trust its source") from None
    except Exception as err:  # torch raises several types for damaged zip archives
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({type(err).__name__}: {err}); delete it to start over") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path} is not a checkpoint of this suite (no format_version)")
    for key in REQUIRED_KEYS:
        if key not in payload:
            raise CheckpointError(f"checkpoint {path} lacks the key {key!r}")
    return payload
