"""Checkpoints: model and optimizer state, the resolved config, the step and the RNG states, written atomically."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checks import CheckpointError
from .io import atomic_write

FORMAT_VERSION = 1


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the format version) to ``path`` atomically."""
    buf = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **payload}, buf)
    return atomic_write(path, lambda f: f.write(buf.getbuffer()))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint, with one clear error for a missing, truncated or foreign file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises several types for damaged zip archives
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({type(err).__name__}: {err}); delete it to start over") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path} is not a checkpoint of this suite (no format_version)")
    for key in ("model_name", "model_config", "data_info", "model_state", "step"):
        if key not in payload:
            raise CheckpointError(f"checkpoint {path} lacks the key {key!r}")
    return payload
