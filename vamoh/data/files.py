"""Reading the files of real datasets, with one clear error per kind of bad input.

Every reader turns the library's own exception (zipfile, pickle, PIL, HDF5) into a ``DataError``
that names the file, what was found and what was expected. Input that can still be used but is
not what the real dataset holds (another file count) is a ``DataWarning``, also recorded in the
cache's meta so the tables can be traced back to it.
"""

from __future__ import annotations

import os
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


def walk(root: Path) -> tuple[list[Path], list[tuple[Path, Path]], list[Path]]:
    """Every file under the folder ``root``, following symbolic links to folders and files (a dataset folder is often
    a link farm: ``celeba/img -> /mnt/data/img``): ``(files, repeats, dangling)``.

    Files keep the names they have under ``root`` (the link's, not the target's), so their order does not depend on
    where the data really lives. A folder reached a second time (a link to one of its ancestors, which would recurse
    forever, or a second link to one folder) is not entered again; ``repeats`` lists (that path, the path it was first
    reached by). ``dangling`` lists the links whose target does not exist (an unmounted drive, a moved folder)."""
    files: list[Path] = []
    repeats: list[tuple[Path, Path]] = []
    dangling: list[Path] = []
    seen: dict[tuple[int, int], Path] = {}
    stack = [root]
    while stack:
        folder = stack.pop()
        st = folder.stat()
        key = (st.st_dev, st.st_ino)
        if key in seen:
            repeats.append((folder, seen[key]))
            continue
        seen[key] = folder
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)  # popped from the stack in name order
        except OSError as err:
            raise DataError(f"cannot list the folder {folder} ({err.strerror or err})") from None
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=True):
                    stack.append(path)
                elif entry.is_file(follow_symlinks=True):
                    files.append(path)
                elif entry.is_symlink() and not path.exists():
                    dangling.append(path)
            except OSError:  # a link loop of links (a -> b -> a) raises ELOOP: it leads nowhere
                dangling.append(path)
    return files, repeats, dangling


def link_target(path: Path) -> str:
    """Where the symbolic link ``path`` points (as written in the link)."""
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def describe_dangling(path: Path) -> str:
    """'``path`` is a symbolic link to X, which does not exist' (or '..., a loop of links')."""
    import errno

    try:
        os.stat(path)
        why = "which does not exist"
    except OSError as err:
        why = "a loop of links that leads to no file" if err.errno == errno.ELOOP else "which does not exist"
    return f"{path} is a symbolic link to {link_target(path)}, {why}"


def source_identity(path: str | Path, exclude: str | Path | None = None) -> dict[str, Any] | None:
    """What a real dataset was read from: the count, total bytes and a sha256 over (relative name, size, mtime) of
    every file at or under ``path`` (``exclude``: a folder left out, the cache itself when it lies inside). A file
    replaced at the same path changes it, so a cache built from the old files is not reused. None when absent.
    Symbolic links are followed (the target's size and time count), each folder once; a dangling link counts by its
    target's name, so mounting the missing drive changes the identity too."""
    import hashlib

    root = Path(path)
    if not root.exists():
        return None
    skip = Path(exclude).resolve() if exclude is not None else None
    if root.is_file():
        files, dangling = [root], []
    else:
        files, _, dangling = walk(root)
        files.sort(key=lambda q: q.relative_to(root).as_posix())
        dangling.sort(key=lambda q: q.relative_to(root).as_posix())
    if skip is not None:
        files = [f for f in files if not (f.resolve() == skip or skip in f.resolve().parents)]
    h = hashlib.sha256()
    total = 0
    for f in files:
        st = f.stat()
        name = f.name if f == root else f.relative_to(root).as_posix()
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        total += st.st_size
    for d in dangling:
        h.update(f"{d.relative_to(root).as_posix()}\0-> {link_target(d)}\n".encode())
    return {"files": len(files), "bytes": total, "sha256": h.hexdigest()}


def require_dir(path: str | Path, what: str, key: str = "data.path") -> Path:
    p = check_file(path, what, key)
    if not p.is_dir():
        raise DataError(f"{what}: {p} is a file, expected a directory")
    return p


def list_files(directory: Path, suffixes: tuple[str, ...], what: str, recursive: bool = False) -> list[Path]:
    """Files under ``directory`` whose suffix is in ``suffixes``, sorted by relative path; never empty.

    Symbolic links to files and (``recursive``) to folders are followed. A dangling link that could be one of the
    files (a matching suffix, or none: a folder) is a ``DataError`` naming it and its target: silently leaving out
    part of a dataset would change every number computed from it. A folder reached twice (a link loop, or two links
    to one folder) is read once, with a ``DataWarning`` naming the link, so no file is read twice (or forever)."""
    if recursive:
        found, repeats, broken = walk(directory)
    else:
        found, repeats, broken = [], [], []
        for entry in sorted(directory.iterdir()):
            try:
                if entry.is_file():
                    found.append(entry)
                elif entry.is_symlink() and not entry.exists():
                    broken.append(entry)
            except OSError:  # ELOOP
                broken.append(entry)
    broken = [d for d in broken if d.suffix.lower() in suffixes or not d.suffix]
    if broken:
        d = sorted(broken)[0]
        more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
        raise DataError(f"{what}: {describe_dangling(d)}{more}; mount or restore its target, or remove the link")
    if repeats:
        again, first = sorted(repeats)[0]
        kind = "one of its own parent folders (a link loop)" if first == directory or first in again.parents else f"{first} again"
        link = again if again.is_symlink() else next((q for q in again.parents if q.is_symlink()), again)
        more = f" ({len(repeats) - 1} more such folder(s))" if len(repeats) > 1 else ""
        warnings.warn(f"{what}: {again} leads to {kind}{more}; its files are read once, from {first} (the link {link} is not followed)",
                      DataWarning, stacklevel=2)
    files = sorted((p for p in found if p.suffix.lower() in suffixes), key=lambda p: p.relative_to(directory).as_posix())
    if not files:
        names = sorted(p.name for p in directory.iterdir())[:5]
        raise DataError(f"{what}: no {'/'.join(suffixes)} files in {directory} (found {names or 'an empty directory'})")
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
    import zipfile

    head = b""
    if path.is_file():
        with open(path, "rb") as f:
            head = f.read(8)
    if path.is_file() and not head.startswith(b"PK") and not zipfile.is_zipfile(path):  # an image, a pickle, a text file, nothing:
        found = f"is not an .npz archive (it starts with {head!r})" if head else "is empty"  # numpy's message would misname it
        raise DataError(f"{what}: {path} {found}, expected a numpy .npz holding {list(keys)}")
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
