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


# ------------------------------------------------------------------------------------- symlinked dataset folders


def _images(folder: Path, n: int, seed: int = 0) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")


def _celeba(path: Path):
    from vamoh.data import load_dataset

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*holds .* images, expected 30,000")
        return load_dataset({"name": "celebahq64", "source": "real", "path": str(path)}, path.parent / f"cache-{path.name}")


def test_a_symlinked_celeba_subfolder_is_read(tmp_path):
    """`celeba/img -> /mnt/data/...` (an ImageFolder layout on another drive) was "no image files in celeba (found
    ['img'])": symlinked folders and files are followed, and the data is the same as read from the real folder."""
    store = tmp_path / "mnt" / "img"
    _images(store, 10)
    direct = _celeba(store.parent)
    linked = tmp_path / "celeba"
    linked.mkdir()
    (linked / "img").symlink_to(store, target_is_directory=True)
    via_link = _celeba(linked)
    assert len(via_link["train"]) == len(direct["train"]) == 9 and len(via_link["test"]) == 1
    for split in ("train", "test"):
        assert np.array_equal(via_link[split].arrays(), direct[split].arrays())
    # symlinked files too, beside real ones, in name order
    files = tmp_path / "files"
    files.mkdir()
    for i, f in enumerate(sorted(store.iterdir())):
        (files / f.name).symlink_to(f) if i % 2 else (files / f.name).write_bytes(f.read_bytes())
    for split in ("train", "test"):
        assert np.array_equal(_celeba(files)[split].arrays(), direct[split].arrays())


def test_a_symlinked_folder_counts_in_the_cache_identity(tmp_path):
    """A file replaced behind a folder link rebuilds the cache (the identity followed no link: 0 files)."""
    from vamoh.data import DataWarning
    from vamoh.data.files import source_identity

    store = tmp_path / "mnt" / "img"
    _images(store, 10)
    linked = tmp_path / "celeba"
    linked.mkdir()
    (linked / "img").symlink_to(store, target_is_directory=True)
    ident = source_identity(linked)
    assert ident["files"] == 10 and ident["bytes"] == sum(f.stat().st_size for f in store.iterdir())
    first = _celeba(linked)
    _images(store, 1, seed=5)  # 000.png replaced
    with pytest.warns(DataWarning, match="the source files at the configured path changed"):
        second = _celeba(linked)
    assert not np.array_equal(first["train"].arrays()[0], second["train"].arrays()[0])


def test_symlink_loops_are_read_once_and_dangling_links_are_named(tmp_path):
    from vamoh.data import DataWarning

    store = tmp_path / "mnt" / "img"
    _images(store, 10)
    celeba = tmp_path / "celeba"
    celeba.mkdir()
    (celeba / "img").symlink_to(store, target_is_directory=True)
    reference = _celeba(celeba)
    (store / "loop").symlink_to(celeba, target_is_directory=True)  # img/loop -> celeba: forever, if followed blindly
    (celeba / "again").symlink_to(store, target_is_directory=True)  # a second link to one folder: every image twice
    with pytest.warns(DataWarning, match=r"celeba/(img|again)/loop leads to one of its own parent folders \(a link loop\) \(1 more such folder"):
        looped = _celeba(celeba)
    for split in ("train", "test"):
        assert np.array_equal(looped[split].arrays(), reference[split].arrays())
    (store / "loop").unlink()
    (celeba / "again").unlink()
    (celeba / "extra").symlink_to(tmp_path / "unmounted" / "img", target_is_directory=True)  # a drive not mounted
    with pytest.raises(DataError, match=r"CelebA-HQ image folder: .*celeba/extra is a symbolic link to .*unmounted/img, which does not "
                                        r"exist; mount or restore its target, or remove the link"):
        _celeba(celeba)
    (celeba / "extra").unlink()
    (celeba / "a.png").symlink_to("b.png")
    (celeba / "b.png").symlink_to("a.png")
    with pytest.raises(DataError, match=r"celeba/a\.png is a symbolic link to b\.png, a loop of links that leads to no file \(and 1 more\)"):
        _celeba(celeba)


def test_symlinked_polymnist_folders_and_a_dangling_data_path(tmp_path):
    from vamoh.data import DataWarning, load_dataset, write_real_format

    data = write_real_format("polymnist", tmp_path / "store", n_train=12, n_test=6)
    linked = tmp_path / "poly"
    (linked / "test").mkdir(parents=True)
    (linked / "train").symlink_to(data / "train", target_is_directory=True)  # a split folder linked
    (linked / "test" / "m1").symlink_to(data / "test" / "m1", target_is_directory=True)  # a modality folder linked (m1: the default)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        a = load_dataset({"name": "polymnist", "source": "real", "path": str(data)}, tmp_path / "c1")
        b = load_dataset({"name": "polymnist", "source": "real", "path": str(linked)}, tmp_path / "c2")
    for split in ("train", "test"):
        assert np.array_equal(a[split].arrays(), b[split].arrays())
    gone = tmp_path / "dangling"
    gone.symlink_to(tmp_path / "nowhere", target_is_directory=True)
    with pytest.raises(FileNotFoundError, match=r"PolyMNIST data not found: .*dangling is a symbolic link to .*nowhere, which does not exist"):
        load_dataset({"name": "polymnist", "source": "real", "path": str(gone)}, tmp_path / "c3")
    (linked / "test" / "m1").unlink()
    (linked / "test" / "m1").symlink_to(tmp_path / "unmounted", target_is_directory=True)
    with pytest.raises(FileNotFoundError, match=r"PolyMNIST modality folder not found: .*test/m1 is a symbolic link to .*unmounted, which does not exist"):
        load_dataset({"name": "polymnist", "source": "real", "path": str(linked)}, tmp_path / "c4")


