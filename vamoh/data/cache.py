"""Materialise a dataset once into a versioned, checksummed cache file, and load it back.

``prepare`` writes ``{cache_dir}/{name}-{source}-v{CACHE_VERSION}-{config hash}.npz`` and, beside
it, ``<same>.npz.json`` with its sha256, size and the recorded facts. The sidecar is removed before a
rewrite and written last, and is the mark of a finished cache: an interrupted run leaves at most a stray temporary file (or
an npz without sidecar, which the next call rebuilds). Both files are written atomically (temp file
in the same directory, fsync, os.replace), and a lock file serialises concurrent preparers.

The cache key is the data config (minus keys that do not change the arrays) and, for real data,
the resolved path. For real data the sidecar also records the source files' identity (count, bytes,
and a digest of every file's name, size and mtime): a file replaced, added or removed at that path
rebuilds the cache with a DataWarning saying so, instead of reusing data read from the old files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import DataError
from ..config import to_dict
from ..io import atomic_write, atomic_write_json, file_lock, sha256_file  # sha256_file: also this module's API
from .config import DataConfig, make_config
from .dataset import FunctionDataset
from .files import source_identity
from .registry import build, get_spec
from .spec import SPLITS

CACHE_VERSION = 2  # 2: optional "{split}_parts" arrays (true part labels per point of stand-ins that render them)
DEFAULT_CACHE_DIR = "data_cache"  # relative to the working directory; overridden by $VAMOH_DATA_CACHE
_NOT_IN_KEY = ("train_points",)  # config keys that do not change the cached arrays


def config_key(cfg: DataConfig) -> dict[str, Any]:
    key = {k: v for k, v in to_dict(cfg).items() if k not in _NOT_IN_KEY}
    if cfg.source == "real":
        key["path"] = str(Path(cfg.path).resolve())
    key["cache_version"] = CACHE_VERSION
    return key


def cache_path(cfg: DataConfig, cache_dir: str | Path) -> Path:
    digest = hashlib.sha256(json.dumps(config_key(cfg), sort_keys=True).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{cfg.name}-{cfg.source}-v{CACHE_VERSION}-{digest}.npz"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    """sha256 of a cache's data (every array but ``meta_json``: name, dtype, shape and bytes): the data's identity,
    the same for every build of the same data. The file's own sha256 guards its integrity only: the npz holds
    the build time in its meta, so two builds of the same data usually differ byte for byte."""
    h = hashlib.sha256()
    for name in sorted(k for k in arrays if k != "meta_json"):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _locked(path: Path):
    """Serialise preparers of the same cache file (a lock file beside it)."""
    return file_lock(path.with_name(path.name + ".lock"))


def _is_complete(path: Path) -> bool:
    side = _sidecar(path)
    if not (path.is_file() and side.is_file()):
        return False
    try:
        record = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return record.get("bytes") == path.stat().st_size


def prepare(cfg: DataConfig | dict[str, Any], cache_dir: str | Path | None = None) -> Path:
    """Build the dataset once and return its cache file; later calls return the same path at once."""
    cfg = make_config(cfg)
    cache_dir = Path(cache_dir or os.environ.get("VAMOH_DATA_CACHE", DEFAULT_CACHE_DIR))
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_path(cfg, cache_dir)
    sources = source_identity(cfg.path, exclude=cache_dir) if cfg.source == "real" else None
    if _is_complete(path) and _same_sources(path, sources):
        return path
    with _locked(path):
        if _is_complete(path) and _same_sources(path, sources, warn=True):  # another process finished it while we waited
            return path
        raw, facts = build(cfg)
        arrays: dict[str, np.ndarray] = {}
        for split in SPLITS:
            arrays[split] = raw.arrays[split]
            if split in raw.labels:
                arrays[f"{split}_labels"] = raw.labels[split]
            if split in raw.parts:
                parts = np.asarray(raw.parts[split])
                expected = raw.arrays[split].shape[: 1 + len(get_spec(cfg.name).grid_shape)]
                if parts.shape != expected or not np.issubdtype(parts.dtype, np.integer):
                    raise DataError(f"{cfg.name} {split}: parts {parts.shape} {parts.dtype}, expected {expected} integer part labels")
                arrays[f"{split}_parts"] = parts.astype(np.int8)
        for key, value in raw.extra.items():
            arrays[f"extra_{key}"] = value
        meta = {
            "cache_version": CACHE_VERSION,
            "name": cfg.name,
            "source": cfg.source,
            "config": to_dict(cfg),
            "sizes": raw.sizes(),
            **facts,
            "details": raw.meta,
        }
        # The meta travels inside the npz too, so the file alone still says what it holds.
        arrays["meta_json"] = np.array(json.dumps(meta, sort_keys=True, default=_json_default))
        _sidecar(path).unlink(missing_ok=True)  # the old record never describes the new file: until the new one is written the cache is incomplete
        atomic_write(path, lambda f: np.savez(f, **arrays))
        atomic_write_json(_sidecar(path), {"sha256": sha256_file(path), "content_sha256": arrays_sha256(arrays), "bytes": path.stat().st_size,
                                           "file": path.name, "meta": json.loads(str(arrays["meta_json"])),
                                           **({"sources": sources} if sources is not None else {})})
    return path


def _same_sources(path: Path, sources: dict[str, Any] | None, warn: bool = False) -> bool:
    """Whether the complete cache ``path`` was built from the source files ``sources`` (always, for stand-ins);
    ``warn``: say why it is rebuilt when it was not."""
    if sources is None:
        return True
    recorded = json.loads(_sidecar(path).read_text()).get("sources")
    if recorded == sources:
        return True
    if warn:
        import warnings

        from .files import DataWarning

        was = "no record of its source files (an older cache)" if recorded is None else (
            f"{recorded['files']} files, {recorded['bytes']:,} bytes")
        warnings.warn(f"cache {path}: the source files at the configured path changed since it was built (then: {was}; now: "
                      f"{sources['files']} files, {sources['bytes']:,} bytes, or the same count with other sizes or times); "
                      f"rebuilding it from the files there now", DataWarning, stacklevel=3)
    return False


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


RECORD_KEYS = ("sha256", "content_sha256", "bytes", "file", "meta")  # what the sidecar of a cache file holds


def read_record(path: str | Path) -> dict[str, Any]:
    """The checksum record of cache file ``path``: {"sha256", "content_sha256", "bytes", "file", "meta"}.

    ``sha256`` and ``bytes`` are those of the npz when it was written (its integrity); ``content_sha256`` is
    that of its arrays (``arrays_sha256``: the data's identity across builds); ``meta`` is what
    ``read_meta`` returns. A missing or unreadable record is a ``DataError`` naming it.
    """
    side = _sidecar(Path(path))
    if not side.is_file():
        raise DataError(f"cache file {path}: its checksum record {side} is missing; delete the cache file and run prepare again")
    try:
        record = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"checksum record {side} is unreadable ({err}); delete it and the cache file, then run prepare again") from None
    missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
    if missing:
        raise DataError(f"checksum record {side} lacks key(s) {missing}, expected {list(RECORD_KEYS)}; delete it and the cache file, then run prepare again")
    return {k: record[k] for k in RECORD_KEYS}


def read_meta(path: str | Path) -> dict[str, Any]:
    """The facts recorded beside a cache file (label, is_standin, sizes, config, build time, warnings)."""
    return read_record(path)["meta"]


def load_prepared(path: str | Path, train_points: int | None = None) -> dict[str, FunctionDataset]:
    """The splits of a cache file written by ``prepare``: {"train", "val", "test"} (val may be empty).

    Verifies the sha256 first; a corrupt or truncated cache is a ``DataError`` naming the file.
    ``train_points`` is the one place ``DataConfig.train_points`` enters training: random points
    per training batch (None = the dataset's default, 4096 for ShapeNet; 0 = every point). The
    cache does not depend on it; each split's ``info.train_points`` holds the effective value.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prepared data cache not found: {path} (run prepare first)")
    expected = read_record(path)["sha256"]
    side = _sidecar(path)
    found = sha256_file(path)
    if found != expected:
        raise DataError(f"cache file {path} is corrupt: sha256 {found[:16]}..., expected {expected[:16]}... (recorded in {side.name}); delete it and run prepare again")
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta_json"]))
        if meta.get("cache_version") != CACHE_VERSION:
            raise DataError(f"cache file {path}: version {meta.get('cache_version')}, expected {CACHE_VERSION}; run prepare again")
        spec = get_spec(meta["name"])
        extra = {k[len("extra_") :]: z[k] for k in z.files if k.startswith("extra_")}
        out = {}
        for split in SPLITS:
            out[split] = FunctionDataset(
                spec,
                z[split],
                is_standin=meta["is_standin"],
                label=meta["label"],
                split=split,
                labels=z[f"{split}_labels"] if f"{split}_labels" in z.files else None,
                parts=z[f"{split}_parts"] if f"{split}_parts" in z.files else None,
                latitude=extra.get("latitude"),
                longitude=extra.get("longitude"),
                train_points=train_points,
                meta=meta,
            )
    return out


def ensure_prepared(path: str | Path, cfg: DataConfig | dict[str, Any], content_sha256: str, recorded_in: str | Path) -> Path:
    """The cache file ``path`` that ``recorded_in`` (the workflow's data record) says holds ``cfg``'s data with the arrays'
    sha256 ``content_sha256``; rebuilt from ``cfg`` into the same folder when it or its checksum record was deleted.

    A cache is derived data: deleting it must not leave the jobs that read it failing, and rebuilding it must not make
    Snakemake rerun what was computed from it (the data record, and with it its mtime, is left as it is). The cache
    must hold the recorded arrays, rebuilt or not, so every result computed from the old file stays valid; when it
    does not (the real files at ``cfg.path`` changed since), it is a ``DataError`` saying to rerun the preparation.
    """
    path = Path(path)
    rebuilt = not _is_complete(path)
    if rebuilt:
        import warnings

        from .files import DataWarning

        gone = ("is missing" if not path.is_file() else f"has no checksum record ({_sidecar(path).name})" if not _sidecar(path).is_file()
                else "is incomplete (its size differs from its checksum record's)")
        warnings.warn(f"prepared data cache {path} {gone}; rebuilding it from the data config recorded in {recorded_in}",
                      DataWarning, stacklevel=2)
        cfg = make_config(cfg)
        path = prepare(cfg, path.parent)
    record = read_record(path)
    if content_sha256 not in (record["content_sha256"], record["sha256"]):  # (records written before content_sha256 hold the file's)
        source = record["meta"].get("config", {}).get("path") or "the stand-in's settings"
        what = (f"was deleted and rebuilt from the config recorded in {recorded_in}, but the rebuilt arrays differ from the recorded ones"
                if rebuilt else f"holds other arrays than {recorded_in} records")
        raise DataError(f"prepared data cache {path} {what} (sha256 {record['content_sha256'][:16]}..., recorded {content_sha256[:16]}...): "
                        f"the files at {source} changed since it was prepared. Rerun the preparation and what depends on it "
                        f"(snakemake --forcerun prepare_data)")
    return path


def load_dataset(cfg: DataConfig | dict[str, Any], cache_dir: str | Path | None = None) -> dict[str, FunctionDataset]:
    """``prepare`` then ``load_prepared``: the splits {"train", "val", "test"} of the configured dataset."""
    cfg = make_config(cfg)
    return load_prepared(prepare(cfg, cache_dir), train_points=cfg.train_points)


def prepared_record(dataset: str, cfg: DataConfig, path: str | Path) -> dict[str, Any]:
    """What the prepare_data rule records of the cache file at ``path`` built from ``cfg``: where and what it is, with
    its checksums, sizes and warnings; for test samples that are copies of a few real sources (ERA5's stand-in), the
    rule mapping them to their sources (the summary's intervals cluster by it)."""
    cache = read_record(path)
    meta = cache["meta"]
    record = {"dataset": dataset, "path": str(Path(path).resolve()), "source": cfg.source, "is_standin": bool(meta["is_standin"]),
              "label": meta["label"], "data_config": to_dict(cfg), "sha256": cache["content_sha256"], "file_sha256": cache["sha256"], "bytes": cache["bytes"],
              "sizes": meta["sizes"], "warnings": meta.get("details", {}).get("warnings", [])}
    details = meta.get("details") or {}
    if (details.get("augmented") or {}).get("test"):
        record["test_sources"] = {"real": int(details["real_fields"]["test"]), "augmented": int(details["augmented"]["test"]),
                                  "rule": "test sample j is a copy of real source j mod real"}
    return record
