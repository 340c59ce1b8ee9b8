"""metrics.json / timing.json: atomic, fixed keys, provenance, JSON-safe numbers; mixture maps."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from vamoh.checks import DataError
from vamoh.eval import keys
from vamoh.eval.io import metric_entry, read_json, write_metrics, write_timing
from vamoh.io import atomic_write_json
from vamoh.eval.maps import mixture_maps_to_arrays, segmentation_to_rgb

PROV = {
    keys.PROV_RUN: "r1",
    keys.PROV_DATASET: "polymnist",
    keys.PROV_IS_STANDIN: True,
    keys.PROV_MODEL: "vamoh",
    keys.PROV_SEED: 0,
    keys.PROV_FEATURE_EXTRACTOR: "vamoh-suite-ae[polymnist]@abc",
    keys.PROV_NUM_SAMPLES: 100,
    keys.PROV_DEVICE: {"device": "cpu"},
}


def test_metrics_json_has_every_key_and_provenance(tmp_path):
    path = tmp_path / "seed0" / "metrics.json"
    write_metrics(path, {keys.PSNR: metric_entry([20.0, math.inf])}, PROV)
    data = read_json(path, keys.METRICS_SCHEMA)
    assert list(data["metrics"]) == list(keys.METRIC_KEYS)
    assert data["provenance"] == PROV
    assert data["metrics"][keys.PSNR]["mean"] is None  # inf -> null, strict JSON
    assert data["metrics"][keys.FID_TRAIN]["mean"] is None and data["metrics"][keys.FID_TRAIN]["note"]
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temp file left behind


def test_unknown_metric_key_and_missing_provenance_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"unknown metric key\(s\) \['fid'\]"):
        write_metrics(tmp_path / "m.json", {"fid": metric_entry([1.0])}, PROV)
    prov = {k: v for k, v in PROV.items() if k != keys.PROV_IS_STANDIN}
    with pytest.raises(DataError, match="provenance lacks \\['is_standin'\\]"):
        write_timing(tmp_path / "t.json", {}, prov)


def test_atomic_write_replaces_and_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "x.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["x.json"]


def test_metric_entry_mean_and_sample_std():
    e = metric_entry(np.array([1.0, 2.0, 4.0]), extractor="x")
    assert e["mean"] == pytest.approx(7 / 3) and e["std"] == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert e["n"] == 3 and e["extractor"] == "x"


def test_mixture_maps_fold_onto_the_grid():
    B, H, W, K = 2, 3, 4, 5
    entropy = torch.arange(B * H * W, dtype=torch.float32).reshape(B, H * W)
    seg = (torch.arange(B * H * W) % K).reshape(B, H * W)
    out = mixture_maps_to_arrays({"entropy": entropy, "segmentation": seg}, (H, W), num_components=K)
    assert out["entropy"].shape == (B, H, W) and out["segmentation"].dtype == np.int64
    assert out["entropy"][1, 2, 3] == entropy[1, 2 * W + 3]  # row-major, like grid_coordinates
    assert out["segmentation"][0, 1, 0] == seg[0, W]
    np.testing.assert_allclose(out["entropy_normalised"], out["entropy"] / math.log(K))
    rgb = segmentation_to_rgb(out["segmentation"])
    assert rgb.shape == (B, H, W, 3) and rgb.dtype == np.uint8
    with pytest.raises(DataError, match=r"entropy shape \(2, 12\), expected \(B, 10\)"):
        mixture_maps_to_arrays({"entropy": entropy, "segmentation": seg}, (2, 5))


def test_killed_write_leaves_a_temporary_file_that_the_next_write_removes(tmp_path):
    """A writer killed mid-write cannot clean up: the next write of the same file removes its leftover."""
    path = tmp_path / "checkpoint.pt"
    leftover = tmp_path / ".checkpoint.pt.abc123.tmp"
    leftover.write_bytes(b"x" * 1000)  # what a SIGKILL during a checkpoint write leaves behind
    other = tmp_path / ".other.pt.abc123.tmp"  # another file's temporary is not ours to remove
    other.write_bytes(b"y")
    atomic_write_json(path, {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pt.abc123.tmp", "checkpoint.pt"]


def test_file_lock_leaves_no_lock_file_and_excludes_others(tmp_path):
    import multiprocessing

    from vamoh.io import file_lock

    lock = tmp_path / "data.npz.lock"
    with file_lock(lock):
        assert lock.exists()
    assert not lock.exists()  # no litter after the work it guarded
    with pytest.raises(RuntimeError):
        with file_lock(lock):
            raise RuntimeError("a failed preparation")
    assert not lock.exists()
    # two processes never hold it at once: each appends start/end marks that must not interleave
    log = tmp_path / "log.txt"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hold, args=(lock, log, i)) for i in range(4)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(30)
    marks = log.read_text().split()
    assert len(marks) == 8
    assert all(marks[i][1:] == marks[i + 1][1:] and marks[i][0] == "s" and marks[i + 1][0] == "e" for i in range(0, 8, 2)), marks
    assert not lock.exists()


def _hold(lock, log, i):
    import time

    from vamoh.io import file_lock

    with file_lock(lock):
        with open(log, "a") as f:
            f.write(f"s{i} ")
        time.sleep(0.05)
        with open(log, "a") as f:
            f.write(f"e{i} ")
