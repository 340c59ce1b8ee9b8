"""Reading the files of real datasets, with one clear error per kind of bad input.

Every reader turns the library's own exception (zipfile, pickle, PIL, HDF5) into a ``DataError``
that names the file, what was found and what was expected. Input that can still be used but is
not what the real dataset holds (another file count) is a ``DataWarning``, also recorded in the
cache's meta so the tables can be traced back to it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checks import DataError, check_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class DataWarning(UserWarning):
    """Usable data that differs from the real dataset (e.g. a file with another number of rows)."""


def warn_data(meta: dict[str, Any], message: str) -> None:
    """Warn with ``message`` and record it in ``meta["warnings"]`` (RawSplits.meta, kept in the cache)."""
    warnings.warn(message, DataWarning, stacklevel=3)
    meta.setdefault("warnings", []).append(message)


def check_count(meta: dict[str, Any], what: str, path: str | Path, found: int, expected: int, unit: str) -> None:
    """A ``DataWarning`` when ``path`` holds ``found`` ``unit`` instead of the real dataset's ``expected``."""
    if found != expected:
        warn_data(meta, f"{what}: {path} holds {found:,} {unit}, expected {expected:,} (the full dataset); using what is there")


def require_dir(path: str | Path, what: str, key: str = "data.path") -> Path:
    p = check_file(path, what, key)
    if not p.is_dir():
        raise DataError(f"{what}: {p} is a file, expected a directory")
    return p


def list_files(directory: Path, suffixes: tuple[str, ...], what: str, recursive: bool = False) -> list[Path]:
    """Files under ``directory`` whose suffix is in ``suffixes``, sorted by relative path; never empty."""
    pattern = "**/*" if recursive else "*"
    files = sorted((p for p in directory.glob(pattern) if p.is_file() and p.suffix.lower() in suffixes), key=lambda p: p.relative_to(directory).as_posix())
    if not files:
        found = sorted(p.name for p in directory.iterdir())[:5]
        raise DataError(f"{what}: no {'/'.join(suffixes)} files in {directory} (found {found or 'an empty directory'})")
    return files


def load_tensor(path: Path, what: str) -> torch.Tensor:
    """A tensor saved with ``torch.save``; refuses pickled code (weights_only)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zipfile, pickle and EOF errors all mean the same thing here
        raise DataError(f"{what}: cannot read {path} as a torch.save file ({type(err).__name__}: {err}); the file is truncated or corrupt") from None
    if not isinstance(obj, torch.Tensor):
        raise DataError(f"{what}: {path} holds a {type(obj).__name__}, expected a single tensor")
    return obj


def load_npz(path: Path, keys: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an ``.npz`` file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DataError(f"{what}: {path} lacks key(s) {missing}; found keys {sorted(z.files)}, expected {list(keys)}")
            return {k: np.asarray(z[k]) for k in keys}
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"{what}: cannot read {path} as an .npz file ({type(err).__name__}: {err}); the file is truncated or corrupt") from None


def open_rgb(path: Path, what: str) -> Any:
    """A PIL image converted to RGB."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{what}: cannot decode image {path} ({type(err).__name__}: {err}); the file is truncated or corrupt") from None


def check_array(what: str, arr: np.ndarray | torch.Tensor, shape: tuple[int | None, ...], dtypes: tuple[str, ...] | None = None) -> None:
    """Shape (``None`` = any size) and dtype-kind check: 'u' unsigned, 'f' float, 'b' bool, 'i' int."""
    found = tuple(arr.shape)
    if len(found) != len(shape) or any(e is not None and f != e for f, e in zip(found, shape)):
        shown = tuple("N" if e is None else e for e in shape)
        raise DataError(f"{what}: shape {found}, expected {shown}")
    if dtypes is not None:
        kind = _tensor_kind(arr) if isinstance(arr, torch.Tensor) else arr.dtype.kind
        if kind not in dtypes:
            raise DataError(f"{what}: dtype {arr.dtype}, expected {' or '.join(_KIND_NAMES[k] for k in dtypes)}")


def _tensor_kind(t: torch.Tensor) -> str:
    if t.dtype == torch.bool:
        return "b"
    if t.is_floating_point():
        return "f"
    return "u" if t.dtype == torch.uint8 else "i"


_KIND_NAMES = {"u": "unsigned integer (uint8)", "f": "floating point", "b": "bool", "i": "integer"}
