"""Checkpoints: model and optimizer state, the resolved config, the step and the RNG states, written atomically.

Beside every checkpoint ``<name>`` lies ``<name>.sha256`` (``sha256sum`` format), written with it and verified
on every load: a changed byte (a flipped bit, a partial copy) is a ``CheckpointError`` naming the file. While a
new version is being renamed into place the sidecar lists the new digest and the previous one, so a process
killed in between leaves a file that still verifies. A checkpoint without a sidecar (written before this
check, or copied without it, e.g. downloaded from MLflow) loads with a ``CheckpointWarning`` saying that its
integrity was not verified.

A checkpoint holds only tensors and plain data (dicts, lists, strings, numbers), and is read with
``torch.load(weights_only=True)``: a file that holds anything else (pickled code, a crafted object) is
refused before any of it runs. The numpy and Python RNG states are stored as tensors and plain tuples
for that reason.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checks import CheckpointError, CheckpointWarning
from .io import atomic_write, recorded_digests, replace_with_sidecar, sha256_file, sidecar_path

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


def checksum_path(path: str | Path) -> Path:
    """The sha256 sidecar of checkpoint ``path``: ``<name>.sha256``."""
    return sidecar_path(path)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the format version) to ``path`` atomically, with its ``.sha256`` sidecar."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save({**payload, "format_version": FORMAT_VERSION}, buf)
    digest = hashlib.sha256(buf.getbuffer()).hexdigest()
    return replace_with_sidecar(path, digest, lambda: atomic_write(path, lambda f: f.write(buf.getbuffer())))


def move_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Rename checkpoint ``src`` to ``dst`` with its sidecar (a stale sidecar of an earlier ``dst`` never survives)."""
    src, dst = Path(src), Path(dst)
    digests = recorded_digests(src)
    if not digests:
        checksum_path(dst).unlink(missing_ok=True)
        os.replace(src, dst)
        return dst
    replace_with_sidecar(dst, digests[0], lambda: os.replace(src, dst))
    checksum_path(src).unlink(missing_ok=True)
    return dst


def link_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Put checkpoint ``src`` also at ``dst`` (a hard link, or a copy where the file system has none), with its sidecar;
    ``src`` stays. The workflow's training keeps its running state until its MLflow run is closed, so a store that
    locks after the training leaves the finished state to resume from instead of nothing."""
    import shutil
    import tempfile

    src, dst = Path(src), Path(dst)
    digests = recorded_digests(src)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        try:
            os.link(src, tmp)
        except OSError:  # no hard links here (some network or FUSE file systems)
            shutil.copyfile(src, tmp)
        if not digests:
            checksum_path(dst).unlink(missing_ok=True)
            os.replace(tmp, dst)
        else:
            replace_with_sidecar(dst, digests[0], lambda: os.replace(tmp, dst))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dst


def remove_checkpoint(path: str | Path) -> None:
    """Delete checkpoint ``path`` and its sidecar (the file first: a sidecar without its file is only an orphan)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    checksum_path(path).unlink(missing_ok=True)


def verify_checkpoint(path: str | Path) -> str | None:
    """The checkpoint file's sha256, checked against its sidecar (``CheckpointError`` naming both on a mismatch);
    None, with a ``CheckpointWarning``, when it has no sidecar."""
    path = Path(path)
    side = checksum_path(path)
    recorded = recorded_digests(path)
    if not recorded:
        warnings.warn(f"checkpoint {path} has no {side.name} checksum beside it (written before checkpoints had one, or copied "
                      f"without it): its integrity is not verified", CheckpointWarning, stacklevel=3)
        return None
    actual = sha256_file(path)
    if actual not in recorded:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: its sha256 {actual[:16]}... does not match "
                              f"{recorded[0][:16]}... recorded in {side.name} (a changed byte, or a partial copy); restore it, "
                              f"or delete it and {side.name} to start over")
    return actual


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; one clear error for a missing, truncated, foreign or unsafe file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file; name the checkpoint file itself (e.g. {path / 'checkpoint.pt'})")
    verify_checkpoint(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"(?:[Uu]nsupported global: |unsupported )GLOBAL ([\w.]+)", str(err))
        what = f" (it names {found.group(1)})" if found else ""
        raise CheckpointError(f"{path} holds objects other than tensors and plain data{what}, so it was refused unread: a checkpoint "
                              "of this suite holds only tensors, numbers, strings, lists and dicts, and is read with "
                              "torch.load(weights_only=True). Do not load this file with weights_only=False unless you trust its source") from None
    except Exception as err:  # torch raises several types for damaged zip archives
        if _is_npz(path):
            raise CheckpointError(f"{path} is a numpy .npz archive (arrays, e.g. a data cache or scores file), not a checkpoint; "
                                  f"name the .pt file a training wrote") from None
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({type(err).__name__}: {err}); delete it to start over") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path} is not a checkpoint of this suite (no format_version)")
    version = payload["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path}: format_version {version!r}, expected 1..{FORMAT_VERSION} (a file written by another "
                              f"version of this suite, or not by it)")
    for key in REQUIRED_KEYS:
        if key not in payload:
            raise CheckpointError(f"checkpoint {path} lacks the key {key!r}")
    for key, kind, what in _KEY_TYPES:
        if not isinstance(payload[key], kind) or isinstance(payload[key], bool):
            raise CheckpointError(f"checkpoint {path}: {key} is a {type(payload[key]).__name__}, expected {what}")
    if payload["step"] < 0:
        raise CheckpointError(f"checkpoint {path}: step {payload['step']}, expected an integer >= 0")
    bad = [k for k, v in payload["model_state"].items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"checkpoint {path}: model_state holds {bad[:3]} that are not named tensors, expected a state dict "
                              f"(parameter name -> tensor)")
    return payload


def _is_npz(path: Path) -> bool:
    """A zip of top-level .npy members (numpy's savez), which torch.load reports as a damaged archive."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return bool(names) and all(n.endswith(".npy") and "/" not in n for n in names)


# what each required key holds (type, as said in an error)
_KEY_TYPES = (("model_name", str, "a model name (str)"), ("model_config", dict, "a dict of config keys"),
              ("data_info", dict, "a dict (the DataInfo the model was built for)"), ("model_state", dict, "a state dict"),
              ("step", int, "an integer"))


def with_model_state(path: str | Path, payload: dict[str, Any], model: Any, **extra: Any) -> Path:
    """Save ``payload`` (a loaded checkpoint's) at ``path`` with ``model``'s current weights (on the CPU) and ``extra``
    (e.g. a fitted prior's statistics): a checkpoint of the model after a stage that changed it."""
    payload = {**payload, "model_state": {k: v.cpu() for k, v in model.state_dict().items()}, **extra}
    payload.pop("format_version", None)
    return save_checkpoint(path, payload)
