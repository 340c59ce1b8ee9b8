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


def source_identity(path: str | Path, exclude: str | Path | None = None) -> dict[str, Any] | None:
    """What a real dataset was read from: the count, total bytes and a sha256 over (relative name, size, mtime) of
    every file at or under ``path`` (``exclude``: a folder left out, the cache itself when it lies inside). A file
    replaced at the same path changes it, so a cache built from the old files is not reused. None when absent."""
    import hashlib

    root = Path(path)
    if not root.exists():
        return None
    skip = Path(exclude).resolve() if exclude is not None else None
    files = [root] if root.is_file() else sorted(q for q in root.rglob("*") if q.is_file())
    if skip is not None:
        files = [f for f in files if not (f.resolve() == skip or skip in f.resolve().parents)]
    h = hashlib.sha256()
    total = 0
    for f in files:
        st = f.stat()
        name = f.name if f == root else f.relative_to(root).as_posix()
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        total += st.st_size
    return {"files": len(files), "bytes": total, "sha256": h.hexdigest()}


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


def load_npy(path: Path, what: str) -> np.ndarray:
    """A numeric ``.npy`` array (never pickled objects), finite; errors name the file."""
    from ..checks import check_finite

    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise DataError(f"{what}: {path} holds Python objects (dtype object), expected a numeric array; it was not unpickled") from None
        raise DataError(f"{what}: cannot read {path} as an .npy file ({err}); the file is truncated or corrupt") from None
    except Exception as err:
        raise DataError(f"{what}: cannot read {path} as an .npy file ({type(err).__name__}: {err}); the file is truncated or corrupt") from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{what}: {path} is an .npz archive, expected a single .npy array")
    check_finite(f"{what} {path}", arr)
    return arr


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


HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N")  # 16-bit greyscale as PIL opens it (PNG, TIFF)


def decode_image(path: Path, what: str) -> np.ndarray:
    """One image file as (H, W, 3): uint8 for 8-bit files, uint16 for 16-bit ones (scaled by 65535, never clipped
    at 255), upright (its EXIF orientation applied). Modes with no defined range (32-bit integer or float) are
    refused, as are unreadable files; every error names the file."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            opened.load()
            fmt = opened.format
            img = ImageOps.exif_transpose(opened)
    except Image.DecompressionBombError as err:
        raise DataError(f"{what}: image {path} is too large to decode safely ({err})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{what}: cannot decode image {path} ({type(err).__name__}: {err}); the file is truncated or corrupt") from None
    mode = img.mode
    if mode in HIGH_DEPTH_MODES or (mode == "I" and fmt == "PNG"):  # PNG's deepest greyscale is 16 bits
        grey = np.asarray(img).astype(np.int64)
        if grey.min() < 0 or grey.max() > 65535:
            raise DataError(f"{what}: image {path} ({mode}) holds values in [{grey.min()}, {grey.max()}], expected 16-bit [0, 65535]")
        return np.repeat(grey.astype(np.uint16)[..., None], 3, axis=-1)
    if mode in ("I", "F") or mode.startswith("I;"):
        raise DataError(f"{what}: image {path} is in PIL mode {mode!r} (32-bit integer or float, no defined range); "
                        f"expected an 8-bit or 16-bit image (L, RGB, RGBA, P, I;16)")
    return np.asarray(img.convert("RGB"))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """An image from ``decode_image`` as uint8 (16-bit values rounded: 65535 / 255 = 257 exactly)."""
    if image.dtype == np.uint16:
        return np.round(image.astype(np.float64) / 257.0).astype(np.uint8)
    return image


def to_unit(image: np.ndarray) -> np.ndarray:
    """An image from ``decode_image`` as float32 in [0, 1], by its own bit depth."""
    return image.astype(np.float32) / (65535.0 if image.dtype == np.uint16 else 255.0)


def open_rgb(path: Path, what: str) -> np.ndarray:
    """An image file as uint8 RGB (H, W, 3), decoded by bit depth and upright (``decode_image``)."""
    return to_uint8(decode_image(path, what))


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
