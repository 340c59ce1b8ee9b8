"""Nothing is lost and nothing stale survives (issue 19, second sweep): a deleted data cache is rebuilt from its
record, symlinked dataset folders are read (each folder once), a checksum sidecar and its file verify at every
moment of a rewrite, and a job that fails on a locked MLflow store leaves no stale sidecar and loses no training."""

from __future__ import annotations

import copy
import hashlib
import json
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
    from vamoh.pipeline import jobs

    rc, out, record = prepared
    before, stamp = jobs.load_data(out)[0], out.stat().st_mtime_ns
    cache = Path(record["path"])
    {"the cache file": lambda: cache.unlink(), "its checksum record": lambda: cache.with_name(cache.name + ".json").unlink(),
     "the whole cache folder": lambda: shutil.rmtree(cache.parent)}[deleted]()
    with pytest.warns(DataWarning, match=rf"prepared data cache .*{cache.name} (is missing|has no checksum record).*rebuilding it from the data "
                                         rf"config recorded in .*polymnist\.json"):
        after, again = jobs.load_data(out)
    assert cache.is_file() and again == record and out.stat().st_mtime_ns == stamp  # the record is untouched
    for split in ("train", "test"):
        assert np.array_equal(before[split].arrays(), after[split].arrays())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt once: the next reader finds it
        jobs.load_data(out)


def test_a_rebuilt_cache_must_hold_the_recorded_data(tmp_path, monkeypatch):
    """Real files changed since the preparation and the cache deleted: rebuilding would silently feed the other files to
    jobs whose siblings saw the old ones, so it is one error naming the cache, the record and the command that reruns."""
    from vamoh.data import DataWarning, write_real_format
    from vamoh.pipeline import jobs, stages

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
            jobs.load_data(out)
        # and a cache that another preparation rewrote in place is not read as the recorded data either
        with pytest.raises(DataError, match=r"holds other arrays than .*polymnist\.json records"):
            jobs.load_data(out)


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


# ------------------------------------------------------------------------------------- sidecars follow their files


class _Killed(BaseException):
    """A process killed at one point of a write (raised instead of dying, so the test can look at what is left)."""


def _kill_at_rename_of(monkeypatch, target: Path, after: bool):
    """Make the rename of a new version into ``target`` the last thing the process does (before or after it)."""
    real = os.replace

    def replace(src, dst, *a, **k):
        if Path(dst) == target:
            if after:
                real(src, dst, *a, **k)
            raise _Killed(f"killed {'after' if after else 'before'} renaming into {target}")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)


def _extractor():
    from vamoh.eval.extractors import ConvAutoencoder, ExtractorConfig

    torch.manual_seed(0)
    return ConvAutoencoder(ExtractorConfig(input_size=8, feature_dim=4, channels=(2, 2, 2), epochs=1))


WRITERS = {
    "checkpoint": (lambda p, i: __import__("vamoh.checkpoint", fromlist=["x"]).save_checkpoint(
        p, {"model_name": "vamoh", "model_config": {}, "data_info": {}, "model_state": {"w": torch.full((50,), float(i))}, "step": i}),
        lambda p: __import__("vamoh.checkpoint", fromlist=["x"]).load_checkpoint(p)),
    "extractor": (lambda p, i: __import__("vamoh.eval.extractors", fromlist=["x"]).save_extractor(_extractor(), p, f"data{i}"),
                  lambda p: __import__("vamoh.eval.extractors", fromlist=["x"]).load_extractor(p)),
}


@pytest.mark.parametrize("after", [False, True], ids=["killed before the rename", "killed after the rename"])
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_a_rewrite_killed_at_the_rename_leaves_a_file_that_verifies(tmp_path, monkeypatch, kind, after):
    """A forced rerun rewrites extractor.pt: its sidecar was written after the rename, not atomically, so a process
    killed in between left the new file with the old digest, refused as corrupt. Both writers now keep the pair true."""
    write, load = WRITERS[kind]
    path = tmp_path / f"{kind}.pt"
    write(path, 1)
    with monkeypatch.context() as m:
        _kill_at_rename_of(m, path, after)
        with pytest.raises(_Killed):
            write(path, 2)
    load(path)  # whichever version is in place, it verifies against its sidecar
    assert not list(tmp_path.glob(".*.tmp"))
    write(path, 3)
    assert path.with_name(path.name + ".sha256").read_text() == f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"


def test_a_cache_rewrite_never_pairs_a_new_file_with_the_old_record(tmp_path, monkeypatch):
    import vamoh.data.cache as cache
    from vamoh.data import DataWarning, write_real_format

    data = write_real_format("polymnist", tmp_path / "poly", n_train=12, n_test=6)
    cfg = {"name": "polymnist", "source": "real", "path": str(data), "n_train": 12, "n_test": 6, "modality": "m0"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        path = cache.prepare(cfg, tmp_path / "cache")
        files = sorted((data / "train" / "m0").iterdir())
        files[0].write_bytes(files[1].read_bytes())
        with monkeypatch.context() as m:
            _kill_at_rename_of(m, path, after=True)
            with pytest.raises(_Killed):
                cache.prepare(cfg, tmp_path / "cache")
        try:
            record = cache.read_record(path)
        except DataError:
            record = None  # no record: an incomplete cache, rebuilt by the next prepare
        assert record is None or record["sha256"] == cache.sha256_file(path)
        assert not cache._is_complete(path)
        cache.load_prepared(cache.prepare(cfg, tmp_path / "cache"))


def test_orphan_sidecars_are_dropped_and_only_those(tmp_path):
    from vamoh.io import drop_orphan_sidecars, sidecar_path

    kept, gone = tmp_path / "kept.pt", tmp_path / "gone.pt"
    kept.write_bytes(b"x")
    for p in (kept, gone):
        sidecar_path(p).write_text("0" * 64 + f"  {p.name}\n")
    assert drop_orphan_sidecars(kept, gone, tmp_path / "never.pt") == [sidecar_path(gone)]
    assert sidecar_path(kept).exists() and not sidecar_path(gone).exists()


# ------------------------------------------------------------------------------------- a locked MLflow store


@pytest.fixture()
def locked_store(prepared):
    """The run's store created (the init_tracking rule), and ``lock(where)``: a context in which the store stays locked
    through every retry when a job opens its run ("open"), logs its checkpoint, or closes its run ("close")."""
    import contextlib

    from vamoh import tracking

    rc, out, record = prepared
    tracking.init_store(rc.tracking_uri)
    where = out.parent.parent / "tracking.json"  # what the init_tracking rule writes and every logging rule reads
    where.write_text(json.dumps({"uri": rc.tracking_uri, "experiment": rc.experiment}))

    def refuse(*a, **k):
        raise tracking.StoreLockedError("the MLflow store stayed locked through 12 attempts over 40 s: another process holds its write lock")

    class Closing:  # a client whose set_terminated (closing the run) meets the lock
        def __init__(self, c):
            self._c = c

        def __getattr__(self, name):
            return refuse if name == "set_terminated" else getattr(self._c, name)

    @contextlib.contextmanager
    def lock(where: str):
        with pytest.MonkeyPatch.context() as m:
            if where == "open":
                m.setattr(tracking, "get_or_create_experiment", refuse)
            elif where == "log_checkpoint":
                m.setattr(tracking.JobRun, "log_checkpoint", refuse)
            else:
                real = tracking.client
                m.setattr(tracking, "client", lambda uri: Closing(real(uri)))
            yield

    return rc, out, lock


def _train_outputs(root: Path) -> list[Path]:
    job = root / "results" / "cache" / "polymnist" / "vamoh" / "seed0"
    return [job / "checkpoint.pt", job / "history.csv", job / "train.json"]


@pytest.mark.parametrize("where", ["log_checkpoint", "close"], ids=["logging the checkpoint", "closing the run"])
def test_a_store_locked_after_training_loses_no_training(locked_store, tmp_path, capsys, where):
    """The training's state was renamed to checkpoint.pt before the checkpoint was logged and the run closed: a store
    locked then failed the job, Snakemake deleted checkpoint.pt, and the rerun trained from step 0 (days at paper
    scale). The state now stays until the run is closed, and the rerun resumes at its last step."""
    from vamoh import tracking
    from vamoh.checkpoint import checksum_path, load_checkpoint
    from vamoh.pipeline import stages

    rc, out, lock = locked_store
    outputs = _train_outputs(tmp_path)
    state = outputs[0].with_name("train_state.pt")
    with lock(where), pytest.raises(tracking.StoreLockedError):
        stages.train(rc, "polymnist", "vamoh", 0, out, *outputs, outputs[0].with_name("train_state.pt"), tracking=out.parent.parent / "tracking.json")
    assert state.is_file() and load_checkpoint(state)["step"] == 6
    for p in outputs:  # Snakemake deletes a failed job's declared outputs, not the files it does not know
        p.unlink(missing_ok=True)
    capsys.readouterr()
    summary = stages.train(rc, "polymnist", "vamoh", 0, out, *outputs, outputs[0].with_name("train_state.pt"), tracking=out.parent.parent / "tracking.json")
    assert "resuming from" in capsys.readouterr().out and summary["steps"] == 6
    assert load_checkpoint(outputs[0])["step"] == 6 and checksum_path(outputs[0]).is_file()
    assert not state.exists() and not checksum_path(state).exists()


@pytest.mark.parametrize("stage", ["train", "reference"])
def test_a_forced_job_on_a_locked_store_leaves_no_stale_sidecar(locked_store, tmp_path, stage):
    """`snakemake -R` deleted checkpoint.pt / extractor.pt, the store was locked, the job failed: the earlier run's
    sidecar stayed beside no file (and would be taken for the checksum of a file restored or written there later)."""
    from vamoh import tracking
    from vamoh.pipeline import stages

    rc, out, lock = locked_store
    if stage == "train":
        outputs = _train_outputs(tmp_path)
        target = outputs[0]
        run = lambda: stages.train(rc, "polymnist", "vamoh", 0, out, *outputs, outputs[0].with_name("train_state.pt"), tracking=out.parent.parent / "tracking.json")  # noqa: E731
    else:
        ref = tmp_path / "results" / "cache" / "polymnist" / "reference"
        target = ref / "extractor.pt"
        run = lambda: stages.reference(rc, "polymnist", 0, out, ref / "reference.json", ref / "features.npz", target,
                                        tracking=out.parent.parent / "tracking.json")  # noqa: E731
    target.parent.mkdir(parents=True, exist_ok=True)
    side = target.with_name(target.name + ".sha256")
    side.write_text("ab" * 32 + f"  {target.name}\n")  # the earlier run's; its file was deleted by Snakemake
    with lock("open"), pytest.raises(tracking.StoreLockedError, match="stayed locked"):
        run()
    assert not side.exists() and not target.exists()
    assert not list(target.parent.glob(".*.tmp"))


# ------------------------------------------------------------------------------------- MLflow downloads


def test_a_downloaded_checkpoint_replaces_a_stale_sidecar(tmp_path):
    """download_checkpoint into a folder holding an earlier download's sidecar, from a run that logged none: the stale
    sidecar made the fresh file 'truncated or corrupt'. It is removed; the file loads with the not-verified warning."""
    from vamoh import tracking
    from vamoh.checks import CheckpointWarning
    from vamoh.checkpoint import load_checkpoint, save_checkpoint

    uri = tracking.init_store(tracking.default_tracking_uri("dl", tmp_path))
    ckpt = save_checkpoint(tmp_path / "job" / "checkpoint.pt",
                           {"model_name": "vamoh", "model_config": {}, "data_info": {}, "model_state": {}, "step": 1})
    ckpt.with_name("checkpoint.pt.sha256").unlink()  # a legacy checkpoint: logged without a sidecar
    with tracking.job_run(uri, "dl", "train") as run:
        run.log_checkpoint(ckpt)
    dst = tmp_path / "fetched"
    dst.mkdir()
    (dst / "checkpoint.pt.sha256").write_text("cd" * 32 + "  checkpoint.pt\n")
    got = tracking.download_checkpoint(uri, run.run_id, dst)
    assert not (dst / "checkpoint.pt.sha256").exists()
    with pytest.warns(CheckpointWarning, match="its integrity is not verified"):
        assert load_checkpoint(got)["step"] == 1
