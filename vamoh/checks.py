"""One small helper family for clear errors.

Every check raises a ``ValueError`` (or ``FileNotFoundError``) whose message names the value,
what was found and what was expected, so a user can fix the input without reading the code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration key or value is wrong."""


class DataError(ValueError):
    """A dataset file or array does not have the expected form."""


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated or does not match the model."""


class CheckpointWarning(UserWarning):
    """A checkpoint that loads but cannot be verified (written before checksums, or copied without its .sha256)."""


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


def check(condition: bool, message: str, error: type[Exception] = ValueError) -> None:
    """Raise ``error(message)`` unless ``condition`` holds."""
    if not condition:
        raise error(message)


def check_choice(name: str, value: Any, choices: Iterable[Any], error: type[Exception] = ConfigError) -> None:
    choices = list(choices)
    if value not in choices:
        raise error(f"{name}={value!r} is not one of {choices}")


def check_positive(name: str, value: float, error: type[Exception] = ConfigError) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 or math.isinf(value):
        raise error(f"{name}={value!r}: expected a finite number > 0")


def check_range(name: str, value: float, low: float, high: float, error: type[Exception] = ConfigError) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not (low <= value <= high):
        raise error(f"{name}={value!r}: expected a number in [{low}, {high}]")


def check_int_list(name: str, value: Sequence[Any], length: int | None = None, error: type[Exception] = ConfigError) -> None:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise error(f"{name}={value!r}: expected a list of positive integers")
    if length is not None and len(value) != length:
        raise error(f"{name}={value!r}: expected {length} entries, found {len(value)}")


def check_shape(name: str, shape: Sequence[int], expected: Sequence[int | None], error: type[Exception] = DataError) -> None:
    """``expected`` may hold ``None`` for a free dimension."""
    shape = tuple(shape)
    ok = len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))
    if not ok:
        shown = tuple("*" if e is None else e for e in expected)
        raise error(f"{name}: shape {shape}, expected {shown}")


SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SAFE_NAME_MAX = 100


def check_name(key: str, value: Any, error: type[Exception] = ConfigError) -> str:
    """``value`` as a name that becomes one path component (results/{run}/, an entry's folder): letters, digits,
    '_', '.', '-', starting with a letter or digit, so never '', '.', '..', an absolute path or a path with '/'."""
    if not isinstance(value, str) or not SAFE_NAME.match(value) or len(value) > SAFE_NAME_MAX:
        raise error(f"{key}={value!r}: expected a name of letters, digits, '_', '.' and '-' that starts with a letter or digit "
                    f"(at most {SAFE_NAME_MAX} characters; it becomes a folder name, so '.', '..' and '/' are refused)")
    return value


SEED_LIMIT = 2**32  # numpy's seeds; the training seeds every RNG from one integer, so larger ones would alias


def check_seed(key: str, value: Any, error: type[Exception] = ConfigError) -> int:
    """A seed in [0, 2**32): numpy takes seeds modulo 2**32, so 0 and 2**32 would be the same training."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < SEED_LIMIT:
        raise error(f"{key}={value!r}: expected an integer in [0, 2**32 - 1 = {SEED_LIMIT - 1}] (larger seeds alias smaller ones "
                    f"modulo 2**32, so two 'different' seeds would train identically)")
    return value


def check_finite(what: str, values: Any, expected: str = "finite values", error: type[Exception] = DataError) -> None:
    """Refuse NaN or inf anywhere in ``values`` (a numpy array or a torch tensor), with their count: every place
    data enters (loaders, the command's inputs and masks) calls this, so a NaN never becomes a silent number."""
    import numpy as np

    arr = values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)
    if arr.dtype.kind not in "fc":  # integers and booleans are always finite
        if arr.dtype.kind not in "biu":
            raise error(f"{what}: dtype {arr.dtype}, expected numbers")
        return
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise error(f"{what}: {bad} NaN/inf values of {arr.size}, expected {expected}")


def check_file(path: str | Path, what: str, key: str | None = None) -> Path:
    """Return ``path`` as a ``Path`` or raise ``FileNotFoundError`` naming it (and the config key)."""
    p = Path(path)
    if not p.exists():
        hint = f" (config key {key})" if key else ""
        if p.is_symlink():  # a link whose target is gone (an unmounted drive, a moved folder): say where it points
            import os

            try:
                target = os.readlink(p)
            except OSError:
                target = "?"
            raise FileNotFoundError(f"{what} not found: {p} is a symbolic link to {target}, which does not exist{hint}")
        raise FileNotFoundError(f"{what} not found: {p}{hint}")
    return p


def check_input_file(path: str | Path, what: str, key: str | None = None) -> Path:
    """``path`` as an existing regular file: missing -> ``FileNotFoundError``, a directory (or another non-file) ->
    ``ConfigError``, both naming the file (and the flag or config key)."""
    p = check_file(path, what, key)
    if not p.is_file():
        hint = f" (config key {key})" if key and not key.startswith("-") else (f" ({key})" if key else "")
        kind = "a directory" if p.is_dir() else "not a regular file"
        raise ConfigError(f"{what} {p} is {kind}{hint}; expected a file")
    return p


def resolve_device(name: str, key: str = "device") -> Any:
    """The torch.device for config value ``name`` of ``key``: 'auto' (CUDA when available, else CPU),
    'cpu' or 'cuda[:N]'. A malformed name, or CUDA asked for where there is none, is a ConfigError."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"{key}={name!r}: expected 'auto', 'cpu' or 'cuda[:N]'") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"{key}={name!r}: expected 'auto', 'cpu' or 'cuda[:N]'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}={name!r} but no CUDA device is available; use 'auto' or 'cpu'")
    return dev
