"""Atomic writes: a file is either the old version or the complete new one, never half written.

A write goes to a temporary file beside the target (``.<name>.<random>.tmp``), is fsynced and renamed
into place. A process killed mid-write (SIGKILL, power loss) cannot clean up after itself, so every
write first removes the temporary files an earlier, killed write of the same target left behind.

Checksum sidecars: a file that is verified on every load (a checkpoint, a feature extractor) has
``<name>.sha256`` beside it in ``sha256sum`` format. ``replace_with_sidecar`` puts a new version in place
so that the pair verifies at every moment (the sidecar first lists the new and the previous digest, then
the new one only); ``drop_orphan_sidecars`` removes the sidecars of files that are gone (Snakemake deletes
a job's declared outputs before a forced or changed rerun and after a failure, but not their sidecars).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """The sha256 hex digest of a file's bytes, read in chunks (checkpoints, caches, extractors, scores files)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _stale_temporaries(path: Path) -> list[Path]:
    return list(path.parent.glob(f".{path.name}.*.tmp"))


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then rename it into place.

    One target is written by one job at a time (Snakemake's outputs, the trainer's checkpoint), so the
    temporaries of earlier writes of ``path`` are leftovers of a killed writer and are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in _stale_temporaries(path):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_npz(path: str | Path, arrays: dict[str, Any]) -> Path:
    """``arrays`` as a compressed .npz at exactly ``path`` (numpy's own savez would add '.npz' to another name), atomically."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write(path, lambda f: f.write(buf.getbuffer()))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def sidecar_path(path: str | Path) -> Path:
    """The sha256 sidecar of ``path``: ``<name>.sha256`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def recorded_digests(path: str | Path) -> list[str]:
    """The digests the sidecar of ``path`` lists, the current one first; [] when it has none."""
    side = sidecar_path(path)
    if not side.is_file():
        return []
    return [line.split()[0] for line in side.read_text(encoding="utf-8").splitlines() if line.strip()]


def replace_with_sidecar(path: str | Path, digest: str, put: Callable[[], Any]) -> Path:
    """Put a new version of ``path`` (sha256 ``digest``) in place with ``put()`` (an atomic write or rename), keeping
    its sidecar true at every moment: first the sidecar lists the new and the previous digest, then (after ``put``)
    the new one only. A process killed at any point leaves a file that verifies against its sidecar."""
    path = Path(path)
    previous = recorded_digests(path)[:1] if path.exists() else []
    atomic_write_text(sidecar_path(path), "".join(f"{d}  {path.name}\n" for d in dict.fromkeys([digest, *previous])))
    put()
    atomic_write_text(sidecar_path(path), f"{digest}  {path.name}\n")
    return path


def drop_orphan_sidecars(*paths: str | Path) -> list[Path]:
    """Remove the sidecar of each of ``paths`` whose file is gone; return the sidecars removed.

    A job calls this first on its declared outputs: Snakemake deleted them (a forced or changed rerun, a failed
    attempt) but not the sidecars it does not know, which describe files that no longer exist."""
    removed = []
    for p in paths:
        side = sidecar_path(p)
        if not Path(p).exists() and side.is_file():
            side.unlink(missing_ok=True)
            removed.append(side)
    return removed


def json_ready(value: Any) -> Any:
    """``value`` with numpy/torch scalars as Python numbers and non-finite floats as ``None``.

    JSON has no inf or nan (a perfect reconstruction's PSNR is inf); strict readers reject them.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "ndim", 0) == 0:  # numpy / torch scalars
        return json_ready(value.item())
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy / torch arrays
        return json_ready(value.tolist())
    return value


def atomic_write_json(path: str | Path, obj: Any, sort_keys: bool = False) -> Path:
    """Atomically write ``obj`` as indented, strict JSON (non-finite floats become null)."""
    return atomic_write_text(path, json.dumps(json_ready(obj), indent=2, sort_keys=sort_keys, allow_nan=False) + "\n")


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` for the duration: one process at a time.

    The lock file is created when absent and removed on release, so no ``.lock`` file outlives the
    work it guarded (a failed preparation included). A waiter may wake up holding a lock on a file that
    its holder has just removed; it then retries on the new file, so two processes never both hold it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fh = open(path, "a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                same = os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder removed this file while we waited: lock the current one instead
                continue
            try:
                yield
            finally:
                path.unlink(missing_ok=True)
                fcntl.flock(fh, fcntl.LOCK_UN)
            return
        finally:
            fh.close()
