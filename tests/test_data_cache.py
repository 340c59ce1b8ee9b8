"""prepare / load_prepared: versioned, checksummed, idempotent, safe to interrupt."""

from __future__ import annotations

import json

import numpy as np
import pytest

import vamoh.data.cache as cache
from vamoh.checks import DataError
from vamoh.data import CACHE_VERSION, load_prepared, prepare, read_meta

try:
    from tests.data_fixtures import tiny_cfg
except ImportError:
    from data_fixtures import tiny_cfg


def test_prepare_names_and_checksums_the_cache(tmp_path):
    path = prepare(tiny_cfg("shapenet"), tmp_path)
    assert path.parent == tmp_path and path.name.startswith(f"shapenet-standin-v{CACHE_VERSION}-") and path.suffix == ".npz"
    record = json.loads((tmp_path / (path.name + ".json")).read_text())
    assert record["sha256"] == cache.sha256_file(path) and record["bytes"] == path.stat().st_size
    meta = read_meta(path)
    assert meta["is_standin"] and meta["sizes"] == {"train": 8, "val": 1, "test": 1} and meta["config"]["name"] == "shapenet"
    splits = load_prepared(path)
    assert set(splits) == {"train", "val", "test"} and len(splits["train"]) == 8


def test_prepare_is_idempotent_and_does_not_rebuild(tmp_path, monkeypatch):
    cfg = tiny_cfg("era5")
    first = prepare(cfg, tmp_path)
    stamp = first.stat().st_mtime_ns

    def no_rebuild(cfg):
        raise AssertionError("prepare rebuilt a finished cache")

    monkeypatch.setattr(cache, "build", no_rebuild)
    assert prepare(cfg, tmp_path) == first and first.stat().st_mtime_ns == stamp
    # train_points does not change the arrays, so it shares the cache; the seed does not.
    assert prepare(tiny_cfg("era5", train_points=100), tmp_path) == first
    monkeypatch.undo()
    assert prepare(tiny_cfg("era5", seed=3), tmp_path) != first


def test_corrupt_cache_is_refused(tmp_path):
    path = prepare(tiny_cfg("shapenet"), tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"cache file .*{path.name} is corrupt: sha256 .* expected"):
        load_prepared(path)


def test_missing_cache_or_checksum_record(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepared data cache not found"):
        load_prepared(tmp_path / "nope.npz")
    path = prepare(tiny_cfg("shapenet"), tmp_path)
    (tmp_path / (path.name + ".json")).unlink()
    with pytest.raises(DataError, match="checksum record .* is missing"):
        load_prepared(path)
    # An npz without its record is an interrupted prepare: the next call rebuilds it.
    assert prepare(tiny_cfg("shapenet"), tmp_path) == path
    assert len(load_prepared(path)["test"]) == 1


def test_interrupted_prepare_leaves_no_partial_file(tmp_path, monkeypatch):
    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half an npz")
        raise KeyboardInterrupt

    monkeypatch.setattr(cache.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare(tiny_cfg("shapenet"), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no npz, no temp file, no record (the lock is released and removed)
    monkeypatch.undo()
    path = prepare(tiny_cfg("shapenet"), tmp_path)
    assert len(load_prepared(path)["train"]) == 8


def test_real_and_standin_caches_differ_and_record_the_format(tmp_path):
    from vamoh.data import write_real_format

    root = write_real_format("shapenet", tmp_path / "chairs", n_train=8, n_val=1, n_test=1)
    real = prepare(tiny_cfg("shapenet", source="real", path=str(root)), tmp_path / "cache")
    fake = prepare(tiny_cfg("shapenet"), tmp_path / "cache")
    assert real != fake and real.name.startswith(f"shapenet-real-v{CACHE_VERSION}-")
    r, f = load_prepared(real), load_prepared(fake)
    assert not r["train"].is_standin and r["train"].label == "ShapeNet chairs 32^3" and read_meta(real)["format"] == "pt"
    np.testing.assert_array_equal(r["train"].arrays(), f["train"].arrays())
