"""Nothing is lost and nothing stale survives (issue 19, second sweep): a deleted data cache is rebuilt from its
record, symlinked dataset folders are read (each folder once), a checksum sidecar and its file verify at every
moment of a rewrite, and a job that fails on a locked MLflow store leaves no stale sidecar and loses no training."""

from __future__ import annotations

import copy
import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from vamoh.checks import DataError

ROOT = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())


def small_run_config(run: str, **changes):
    """tiny.yaml on PolyMNIST with VAMoH only (the smallest run that trains)."""
    from vamoh.pipeline.runconfig import RunConfig

    cfg = copy.deepcopy(TINY)
    cfg.update(run=run, datasets=["polymnist"], models=["vamoh"], **changes)
    return RunConfig.from_dict(cfg)


# ------------------------------------------------------------------------------------- a deleted data cache


@pytest.fixture()
def prepared(tmp_path, monkeypatch):
    """The workflow's prepare_data stage for PolyMNIST in a scratch results folder: (run config, record path, record)."""
    from vamoh.pipeline import stages

    monkeypatch.chdir(tmp_path)
    rc = small_run_config("cache")
    out = tmp_path / "results" / "cache" / "data" / "polymnist.json"
    record = stages.prepare_data(rc, "polymnist", out)
    return rc, out, record


@pytest.mark.parametrize("deleted", ["the cache file", "its checksum record", "the whole cache folder"])
def test_a_deleted_data_cache_is_rebuilt_by_the_next_job_that_reads_it(prepared, deleted):
    """Deleting the cache (docs/datasets.md's refresh) left every later job failing on "prepared data cache not found",
    while Snakemake saw nothing to do. The next reader rebuilds it from the recorded config, checks that it holds the
    recorded arrays, and leaves the record (and so what Snakemake reruns) as it was."""
    import shutil

    from vamoh.data import DataWarning
    from vamoh.pipeline import stages

    rc, out, record = prepared
    before, stamp = stages.load_data(out)[0], out.stat().st_mtime_ns
    cache = Path(record["path"])
    {"the cache file": lambda: cache.unlink(), "its checksum record": lambda: cache.with_name(cache.name + ".json").unlink(),
     "the whole cache folder": lambda: shutil.rmtree(cache.parent)}[deleted]()
    with pytest.warns(DataWarning, match=rf"prepared data cache .*{cache.name} (is missing|has no checksum record).*rebuilding it from the data "
                                         rf"config recorded in .*polymnist\.json"):
        after, again = stages.load_data(out)
    assert cache.is_file() and again == record and out.stat().st_mtime_ns == stamp  # the record is untouched
    for split in ("train", "test"):
        assert np.array_equal(before[split].arrays(), after[split].arrays())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt once: the next reader finds it
        stages.load_data(out)


def test_a_rebuilt_cache_must_hold_the_recorded_data(tmp_path, monkeypatch):
    """Real files changed since the preparation and the cache deleted: rebuilding would silently feed the other files to
    jobs whose siblings saw the old ones, so it is one error naming the cache, the record and the command that reruns."""
    from vamoh.data import DataWarning, write_real_format
    from vamoh.pipeline import stages

    monkeypatch.chdir(tmp_path)
    data = write_real_format("polymnist", tmp_path / "poly", n_train=12, n_test=6)
    settings = {**TINY["data"]["settings"], "polymnist": {"source": "real", "path": str(data), "n_train": 12, "n_test": 6}}
    rc = small_run_config("real", data={"source": "standin", "settings": settings})
    out = tmp_path / "results" / "real" / "data" / "polymnist.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # the files hold fewer than 60,000 images
        record = stages.prepare_data(rc, "polymnist", out)
        first, other = sorted((data / "train" / rc.data_config("polymnist").modality).iterdir())[:2]
        first.write_bytes(other.read_bytes())  # a file replaced at the same path
        Path(record["path"]).unlink()
        with pytest.raises(DataError, match=r"prepared data cache .* was deleted and rebuilt from the config recorded in .*polymnist\.json, "
                                            r"but the rebuilt arrays differ from the recorded ones .* the files at .*poly changed since it was "
                                            r"prepared\. Rerun the preparation .*snakemake --forcerun prepare_data"):
            stages.load_data(out)
        # and a cache that another preparation rewrote in place is not read as the recorded data either
        with pytest.raises(DataError, match=r"holds other arrays than .*polymnist\.json records"):
            stages.load_data(out)


def test_a_deleted_cache_reruns_nothing_and_the_next_job_rebuilds_it(tmp_path):
    """The workflow: after `rm -r results/<run>/data_cache` the dry run plans no preparation and no training (the
    record is unchanged), and the next job that reads the data (here the reference) rebuilds the cache and runs."""
    import shutil

    try:
        from test_workflow import job_counts, snake
    except ImportError:
        from tests.test_workflow import job_counts, snake

    cfg = copy.deepcopy(TINY)
    cfg.update(run="gone", datasets=["polymnist"], models=["vamoh"])
    path = tmp_path / "gone.yaml"
    path.write_text(yaml.safe_dump(cfg))
    work = tmp_path / "w"
    work.mkdir()
    checkpoint = "results/gone/polymnist/vamoh/seed0/checkpoint.pt"
    snake([checkpoint, "--cores", "1", "--configfile", str(path)], work, timeout=600)
    shutil.rmtree(work / "results" / "gone" / "data_cache")
    plan = snake([checkpoint, "-n", "--configfile", str(path)], work, timeout=300)
    assert "Nothing to be done" in plan.stdout + plan.stderr, plan.stdout[-2000:]
    reference = "results/gone/polymnist/reference/reference.json"
    plan = snake([reference, "-n", "--configfile", str(path)], work, timeout=300)
    assert job_counts(plan.stdout) .get("prepare_data", 0) == 0 and job_counts(plan.stdout)["reference"] == 1
    snake([reference, "--cores", "1", "--configfile", str(path)], work, timeout=600)
    assert len(list((work / "results" / "gone" / "data_cache").glob("*.npz"))) == 1
    log = (work / "logs" / "gone" / "polymnist" / "reference.log").read_text()
    assert "rebuilding it from the data config recorded in" in log


