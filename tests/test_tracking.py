"""MLflow tracking: concurrent jobs lose nothing, and a real ``mlflow server`` reads the store back."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from vamoh import tracking

N_JOBS = 4
N_STEPS = 50


def loss_at(job: int, step: int) -> float:
    return 1.0 / (step + 1) + job  # distinct per job and step, so a mixed-up history is caught


# --------------------------------------------------------------------------------------------
# URIs and helpers


def test_tracking_uri_defaults_to_an_absolute_sqlite_store_per_run(tmp_path):
    uri = tracking.resolve_tracking_uri("demo", None, results_dir=tmp_path / "results")
    assert uri == f"sqlite:///{tmp_path}/results/demo/mlflow.db"
    assert tracking.sqlite_path(uri) == tmp_path / "results/demo/mlflow.db"
    assert tracking.artifact_root(uri) == (tmp_path / "results/demo/mlartifacts").as_uri()
    assert tracking.resolve_tracking_uri("demo", "http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert tracking.artifact_root("http://127.0.0.1:5000") is None


def test_plain_file_store_and_bad_run_names_are_refused():
    with pytest.raises(ValueError, match="MLflow 3 refuses a plain file store"):
        tracking.resolve_tracking_uri("demo", "./mlruns")
    with pytest.raises(ValueError, match="run='a/b'"):
        tracking.default_tracking_uri("a/b")


def test_git_commit_is_this_checkouts_head_or_unknown(tmp_path, monkeypatch):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True)
    expected = head.stdout.strip() if head.returncode == 0 else "unknown"
    assert tracking.git_commit() == expected
    assert tracking.git_commit(tmp_path) == "unknown"  # not a repository
    monkeypatch.setenv("VAMOH_GIT_COMMIT", "abc123")
    assert tracking.git_commit() == "abc123"


def test_flatten_params_uses_dotted_keys():
    assert tracking.flatten_params({"model": {"lr": 1e-3, "k": [2, 3]}, "seed": 0}) == {
        "model.lr": "0.001", "model.k": "[2, 3]", "seed": "0"}


def test_retry_locked_survives_a_real_sqlite_lock(tmp_path):
    db = tmp_path / "x.db"
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (v INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    threading.Timer(0.4, holder.execute, args=("COMMIT",)).start()
    calls = []

    def insert():
        calls.append(1)
        with sqlite3.connect(db, timeout=0.01) as con:  # fail fast instead of SQLite's own wait
            con.execute("INSERT INTO t VALUES (1)")

    tracking.retry_locked(insert, base_delay=0.05)
    assert len(calls) > 1, "the lock was never hit, so the retry path was not exercised"
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM t").fetchone() == (1,)

    def broken():
        calls.append(1)
        raise sqlite3.OperationalError("no such table: nope")

    calls.clear()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        tracking.retry_locked(broken)
    assert len(calls) == 1, "errors other than a lock must not be retried"


def test_a_store_that_stays_locked_is_one_clear_error(tmp_path):
    """A lock held through every retry (a real SQLite exclusive transaction) ends in one line saying what holds the
    store and what to do, not sqlalchemy's traceback; the original error is kept as its cause."""
    db = tmp_path / "x.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE t (v INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    calls = []

    def insert():
        calls.append(1)
        with sqlite3.connect(db, timeout=0.01) as con:
            con.execute("INSERT INTO t VALUES (1)")

    try:
        with pytest.raises(tracking.StoreLockedError, match="stayed locked through 3 attempts") as err:
            tracking.retry_locked(insert, attempts=3, base_delay=0.01)
    finally:
        holder.execute("COMMIT")
    assert len(calls) == 3 and isinstance(err.value.__cause__, sqlite3.OperationalError)


# --------------------------------------------------------------------------------------------
# concurrent jobs


def _job(uri: str, job: int, barrier, artifact_dir: str, results) -> None:
    """One 'Snakemake job' in its own process: params, 50 metric steps, a file and a directory."""
    art = Path(artifact_dir) / f"job{job}"
    (art / "samples").mkdir(parents=True)
    (art / "metrics.json").write_text(json.dumps({"job": job}))
    (art / "samples" / "s0.txt").write_text(f"sample of job {job}")
    barrier.wait(timeout=120)  # every process has imported mlflow: now write at the same moment
    with tracking.job_run(uri, "concurrency", f"job{job}",
                          tags={"dataset": "mnist", "model": "vamoh", "seed": job},
                          params={"train": {"lr": 0.001 * (job + 1), "steps": N_STEPS}},
                          flush_every=5) as run:  # many small transactions: maximum contention
        # every job trained on the same data: the first to log it creates the store's dataset row, the rest link to it
        run.log_dataset_input("mnist", is_standin=True, sizes={"train": 60, "test": 10}, checksum="ab" * 32)
        for step in range(N_STEPS):
            run.log_metrics({"loss": loss_at(job, step), "psnr": float(step)}, step=step)
        run.log_artifact(art / "metrics.json")
        run.log_artifacts(art / "samples", "samples")
    results.put((job, run.run_id, run.experiment_id))


@pytest.mark.slow  # four spawned processes that each import mlflow: ~16 s on 2 idle cores
def test_concurrent_jobs_lose_nothing(tmp_path):
    # a fresh store that nobody initialised: the jobs race to create it, which init_store's lock
    # and atomic rename must make safe (calling init_store first is the normal, cheaper path)
    uri = tracking.default_tracking_uri("race", tmp_path / "results")
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(N_JOBS), ctx.Queue()
    procs = [ctx.Process(target=_job, args=(uri, j, barrier, str(tmp_path / "art"), results)) for j in range(N_JOBS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=150)
    codes = [p.exitcode for p in procs]
    assert codes == [0] * N_JOBS, f"job processes exited with {codes}"
    done = sorted(results.get(timeout=5) for _ in range(N_JOBS))
    assert len({exp for _, _, exp in done}) == 1, f"jobs created several experiments: {done}"

    c = tracking.client(uri)
    exp = c.get_experiment_by_name("concurrency")
    assert [e.name for e in c.search_experiments()].count("concurrency") == 1
    runs = {r.info.run_id: r for r in c.search_runs([exp.experiment_id])}
    assert sorted(runs) == sorted(run_id for _, run_id, _ in done)
    assert sorted(tracking.run_ids(uri, "concurrency", kind="job")) == sorted(runs)
    for job, run_id, _ in done:
        r = runs[run_id]
        assert r.info.status == "FINISHED"
        assert r.info.run_name == f"job{job}"
        assert r.data.tags["dataset"] == "mnist" and r.data.tags["seed"] == str(job)
        assert r.data.tags[tracking.TAG_GIT_COMMIT] == tracking.git_commit()
        assert r.data.params == {"train.lr": str(0.001 * (job + 1)), "train.steps": str(N_STEPS)}
        loss = sorted((m.step, m.value) for m in c.get_metric_history(run_id, "loss"))
        assert loss == [(s, loss_at(job, s)) for s in range(N_STEPS)]
        assert len(c.get_metric_history(run_id, "psnr")) == N_STEPS
        assert [d.dataset.name for d in r.inputs.dataset_inputs] == ["mnist"]  # each run linked to the one shared row
        local = Path(tracking.sqlite_path(uri).parent / "mlartifacts" / run_id / "artifacts")
        assert r.info.artifact_uri == local.as_uri()
        assert json.loads((local / "metrics.json").read_text()) == {"job": job}
        assert (local / "samples" / "s0.txt").read_text() == f"sample of job {job}"


def test_failed_job_is_marked_failed_and_keeps_its_metrics(tmp_path):
    uri = tracking.init_store(tracking.default_tracking_uri("fail", tmp_path))
    assert tracking.init_store(uri) == uri  # idempotent
    with pytest.raises(RuntimeError, match="diverged"):
        with tracking.job_run(uri, "fail", "job") as run:
            run.log_metric_history("loss", [3.0, 2.0, 1.0])
            raise RuntimeError("diverged")
    c = tracking.client(uri)
    assert c.get_run(run.run_id).info.status == "FAILED"
    assert [m.value for m in sorted(c.get_metric_history(run.run_id, "loss"), key=lambda m: m.step)] == [3.0, 2.0, 1.0]


# --------------------------------------------------------------------------------------------
# what a researcher sees: the experiment's view, dataset inputs, checkpoints


def _mlflow_ui_bundle() -> str:
    """The installed MLflow UI's main script: the authority on the experiment-kind tag it reads."""
    import mlflow

    bundles = sorted((Path(mlflow.__file__).parent / "server/js/build/static/js").glob("main.*.js"))
    if not bundles:
        pytest.skip("this MLflow install has no UI bundle (mlflow-skinny)")
    return bundles[0].read_text(errors="replace")


def test_experiment_is_tagged_for_the_ui_model_training_view(tmp_path):
    ui = _mlflow_ui_bundle()
    assert f'"{tracking.EXPERIMENT_KIND_TAG}"' in ui  # the tag key the UI reads
    assert f'CUSTOM_MODEL_DEVELOPMENT="{tracking.EXPERIMENT_KIND}"' in ui  # the UI's name for the training view

    uri = tracking.init_store(tracking.default_tracking_uri("kind", tmp_path))
    c = tracking.client(uri)
    fresh = tracking.get_or_create_experiment(uri, "fresh")
    assert c.get_experiment(fresh).tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    # an experiment made before the suite set the tag (or by hand) gets it too, once
    old = c.create_experiment("old", artifact_location=tracking.artifact_root(uri))
    assert tracking.EXPERIMENT_KIND_TAG not in c.get_experiment(old).tags
    assert tracking.get_or_create_experiment(uri, "old") == old
    assert c.get_experiment(old).tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dataset_input_shows_name_digest_sizes_and_standin_mark(tmp_path):
    uri = tracking.init_store(tracking.default_tracking_uri("data", tmp_path))
    data = tmp_path / "polymnist-standin.npz"
    data.write_bytes(os.urandom(4096))
    checksum = _sha256(data)
    with tracking.job_run(uri, "data", "train") as run:
        run.log_dataset_input("polymnist", is_standin=True, sizes={"train": 600, "test": 100}, checksum=checksum,
                              source=str(data), label="PolyMNIST (stand-in)")
    with tracking.job_run(uri, "data", "evaluate") as other:
        pass
    # the function form, on a run that is already closed, with data built in memory (no source)
    tracking.log_dataset_input((uri, other.run_id), "era5", is_standin=False, sizes={"train": 40},
                               checksum=checksum.upper(), context="eval")

    c = tracking.client(uri)
    (inp,) = c.get_run(run.run_id).inputs.dataset_inputs
    ds = inp.dataset
    assert (ds.name, ds.digest, ds.source_type) == ("polymnist", checksum[:12], "local")
    assert json.loads(ds.source) == {"uri": str(data)}
    profile = json.loads(ds.profile)
    assert profile == {"is_standin": True, "sizes": {"train": 600, "test": 100}, "num_samples": 700,
                       "sha256": checksum, "label": "PolyMNIST (stand-in)"}
    assert {t.key: t.value for t in inp.tags} == {"mlflow.data.context": "train", "vamoh.is_standin": "true"}
    (inp2,) = c.get_run(other.run_id).inputs.dataset_inputs
    assert (inp2.dataset.name, inp2.dataset.digest, inp2.dataset.source_type) == ("era5", checksum[:12], "code")
    assert {t.key: t.value for t in inp2.tags} == {"mlflow.data.context": "eval", "vamoh.is_standin": "false"}


@pytest.mark.parametrize("bad, match", [
    ({"checksum": None}, "checksum=None"),
    ({"checksum": "not-hex-at-all!"}, "sha256 hex digest"),
    ({"sizes": {"train": -1}}, "sizes="),
    ({"sizes": {}}, "sizes="),
    ({"is_standin": "yes"}, "is_standin='yes'"),
])
def test_dataset_input_refuses_bad_records(tmp_path, bad, match):
    from vamoh.checks import DataError

    uri = tracking.init_store(tracking.default_tracking_uri("bad", tmp_path))
    args = {"is_standin": True, "sizes": {"train": 1}, "checksum": "ab" * 32, **bad}
    with tracking.job_run(uri, "bad", "r") as run:
        with pytest.raises(DataError, match=match):
            run.log_dataset_input("polymnist", **args)
    assert tracking.client(uri).get_run(run.run_id).inputs.dataset_inputs == []


def test_checkpoint_is_fetched_back_by_run_id(tmp_path):
    from vamoh.checks import CheckpointError

    uri = tracking.init_store(tracking.default_tracking_uri("ckpt", tmp_path))
    ckpt = tmp_path / "job" / "checkpoint.pt"
    ckpt.parent.mkdir()
    payload = os.urandom(10_000)
    ckpt.write_bytes(payload)
    with tracking.job_run(uri, "ckpt", "train") as run:
        assert run.log_checkpoint(ckpt) == "checkpoint/checkpoint.pt"
        with pytest.raises(CheckpointError, match="checkpoint file not found: .*missing.pt"):
            run.log_checkpoint(tmp_path / "missing.pt")
    got = tracking.download_checkpoint(uri, run.run_id, tmp_path / "fetched")
    assert got.parent == tmp_path / "fetched" and got.read_bytes() == payload

    with tracking.job_run(uri, "ckpt", "no-checkpoint") as empty:
        empty.log_artifact(ckpt)  # an artifact, but not under checkpoint/
    with pytest.raises(CheckpointError, match=f"run {empty.run_id} .* has no checkpoint"):
        tracking.download_checkpoint(uri, empty.run_id, tmp_path / "x")
    with pytest.raises(CheckpointError, match="run '0123abcd' not found in the tracking store"):
        tracking.download_checkpoint(uri, "0123abcd", tmp_path / "x")

    fitted = tmp_path / "job" / "fitted.pt"
    fitted.write_bytes(payload[::-1])
    with tracking.job_run(uri, "ckpt", "two") as two:
        two.log_checkpoint(ckpt)
        two.log_checkpoint(fitted)
    with pytest.raises(CheckpointError, match=r"several checkpoints \['checkpoint.pt', 'fitted.pt'\]"):
        tracking.download_checkpoint(uri, two.run_id, tmp_path / "y")
    assert tracking.download_checkpoint(uri, two.run_id, tmp_path / "y", name="fitted.pt").read_bytes() == payload[::-1]
    with pytest.raises(CheckpointError, match="no checkpoint named 'nope.pt'"):
        tracking.download_checkpoint(uri, two.run_id, tmp_path / "y", name="nope.pt")


# --------------------------------------------------------------------------------------------
# interrupted jobs (issue 12)

JOB_KEY = "train/polymnist/vamoh/seed0"
HISTORY = [{"step": s, "epoch": s // 20, "seconds": 0.1 * s, "loss": loss_at(0, s), "phase": "warmup"}
           for s in range(10, 101, 10)]
KILLED_JOB = """
import os, signal, sys
from vamoh import tracking
uri, job_key, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
with tracking.job_run(uri, "resume", "train/polymnist/vamoh/seed0", job_key=job_key) as run:
    for s in range(10, steps + 1, 10):
        run.log_metrics({"loss": 1.0 / (s + 1)}, step=s)
    run.flush()
    print(run.run_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # as SLURM's or the OOM killer's SIGKILL: no cleanup runs
"""


def _killed_attempts(uri: str, attempts: list[tuple[str, int]]) -> list[str]:
    """Run one killed attempt per (job key, steps), all at once (each imports mlflow); their run ids."""
    procs = [subprocess.Popen([sys.executable, "-c", KILLED_JOB, uri, job_key, str(steps)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for job_key, steps in attempts]
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, err[-3000:]
        ids.append(out.split()[0])
    return ids


def _curve(c, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in c.get_metric_history(run_id, key))


@pytest.mark.slow  # two real processes that import mlflow and are killed: ~8 s on 2 busy cores
def test_killed_job_run_is_closed_and_the_resumed_run_holds_the_whole_curve(tmp_path):
    uri = tracking.init_store(tracking.default_tracking_uri("resume", tmp_path))
    c = tracking.client(uri)
    assert tracking.close_stale_runs(uri, "no-such-experiment", JOB_KEY) == []
    # this job's first attempt, and another job's that is (for all we know) still running
    killed, other_job = _killed_attempts(uri, [(JOB_KEY, 50), ("train/polymnist/gasp/seed0", 20)])
    assert c.get_run(killed).info.status == "RUNNING"  # what issue 12 reports: it stays so forever

    # the second attempt resumes from the checkpoint at step 40, logs steps 50..100 live, then the history
    with tracking.job_run(uri, "resume", "train/polymnist/vamoh/seed0", job_key=JOB_KEY) as resumed:
        for row in HISTORY[4:]:
            resumed.log_metrics({"loss": row["loss"]}, step=row["step"])
        queued = resumed.log_history(HISTORY)
    assert queued == 4 + 2 * len(HISTORY)  # loss at 10..40; epoch and seconds at every step; not "phase"

    old = c.get_run(killed)
    assert old.info.status == "KILLED" and old.data.tags[tracking.TAG_INTERRUPTED] == "true"
    assert _curve(c, killed, "loss") == [(s, 1.0 / (s + 1)) for s in range(10, 51, 10)]  # kept as it was
    new = c.get_run(resumed.run_id)
    assert new.info.status == "FINISHED" and tracking.TAG_INTERRUPTED not in new.data.tags
    assert new.data.tags[tracking.TAG_JOB] == JOB_KEY and new.data.tags[tracking.TAG_REPLACES] == killed
    assert _curve(c, resumed.run_id, "loss") == [(r["step"], r["loss"]) for r in HISTORY]  # each step once
    assert _curve(c, resumed.run_id, "epoch") == [(r["step"], float(r["epoch"])) for r in HISTORY]
    assert c.get_metric_history(resumed.run_id, "phase") == []
    assert c.get_run(other_job).info.status == "RUNNING"  # not this job's run: untouched

    # a forced rerun after success: nothing to close, and with no live steps it still gets the curve
    with tracking.job_run(uri, "resume", "train/polymnist/vamoh/seed0", job_key=JOB_KEY) as forced:
        forced.log_history(HISTORY)
    assert c.get_run(resumed.run_id).info.status == "FINISHED"
    assert tracking.TAG_REPLACES not in c.get_run(forced.run_id).data.tags
    assert _curve(c, forced.run_id, "loss") == [(r["step"], r["loss"]) for r in HISTORY]
    assert tracking.close_stale_runs(uri, "resume", JOB_KEY) == []


def test_log_history_skips_missing_values_and_refuses_rows_without_a_step(tmp_path):
    uri = tracking.init_store(tracking.default_tracking_uri("hist", tmp_path))
    rows = [{"it": 1, "loss": 2.0, "kl": None}, {"it": 2.0, "loss": 1.0, "kl": float("nan"), "ok": True},
            {"it": 3, "loss": 0.5, "kl": 0.25}]
    with tracking.job_run(uri, "hist", "r") as run:
        assert run.log_history(rows, step_key="it") == 4
        with pytest.raises(ValueError, match=r"history row 1: it=2.5, expected an integer step"):
            run.log_history([{"it": 1, "loss": 1.0}, {"it": 2.5, "loss": 1.0}], step_key="it")
        with pytest.raises(ValueError, match="history row 0: step=None"):
            run.log_history([{"loss": 1.0}])
    c = tracking.client(uri)
    assert _curve(c, run.run_id, "loss") == [(1, 2.0), (2, 1.0), (3, 0.5)]
    assert _curve(c, run.run_id, "kl") == [(3, 0.25)]
    assert c.get_metric_history(run.run_id, "ok") == []


# --------------------------------------------------------------------------------------------
# reading back through a real tracking server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, body: dict | None = None, timeout: float = 10) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        text = resp.read().decode()
    return json.loads(text) if text.strip().startswith("{") else {"text": text}


def _log_demo_runs(uri: str, tmp_path: Path) -> tuple[str, str]:
    """One job run and one report run (a table file and a figure directory) in experiment 'demo'."""
    table = tmp_path / "table1.csv"
    table.write_text("model,fid\nvamoh,12.5\n")
    figure_dir = tmp_path / "figure3"
    figure_dir.mkdir()
    (figure_dir / "samples.png").write_bytes(b"\x89PNG fake")
    data = tmp_path / "mnist.npz"
    data.write_bytes(b"stand-in digits")
    with tracking.job_run(uri, "demo", "train-mnist-vamoh-seed0", job_key="train/mnist/vamoh/seed0",
                          tags={"dataset": "mnist", "model": "vamoh", "seed": 0}, params={"lr": 0.01}) as job:
        job.log_metric_history("loss", [loss_at(0, s) for s in range(N_STEPS)])
        job.log_dataset_input("mnist", is_standin=True, sizes={"train": 60, "test": 10}, checksum=_sha256(data),
                              source=str(data), label="MNIST (stand-in)")
    report_id = tracking.report_run(uri, "demo", tables=[table], figures=[figure_dir],
                                    metrics={"fid": 12.5}, tags={"config": "demo"})
    return job.run_id, report_id


@pytest.fixture
def mlflow_server(tmp_path):
    """``mlflow server`` on 127.0.0.1 over a store holding a job run and a report run.

    The runs are written through SQLite while the server boots (it takes ~10-20 s here), which also
    shows that the server sees what jobs write behind its back. Yields (base URL, job run id,
    report run id, the data file's sha256).
    """
    uri = tracking.init_store(tracking.default_tracking_uri("demo", tmp_path / "results"))
    port = _free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "--backend-store-uri", uri, "--default-artifact-root", tracking.artifact_root(uri)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: the workers it spawns are stopped with it
        )
    base = f"http://127.0.0.1:{port}"
    try:
        job_id, report_id = _log_demo_runs(uri, tmp_path)
        deadline = time.monotonic() + 60
        while True:
            try:
                if _http(f"{base}/health", timeout=2).get("text", "").strip() == "OK":
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"mlflow server did not become healthy within 60 s (rc={proc.poll()}):\n"
                                     f"{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield base, job_id, report_id, _sha256(tmp_path / "mnist.npz")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass


@pytest.mark.slow  # the server takes 10-20 s to boot here
def test_tracking_server_serves_the_runs(mlflow_server, tmp_path):
    base, job_id, report_id, checksum = mlflow_server
    api = f"{base}/api/2.0/mlflow"
    exp = _http(f"{api}/experiments/get-by-name?experiment_name=demo")["experiment"]
    exp_tags = {t["key"]: t["value"] for t in exp.get("tags", [])}
    assert exp_tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    runs = _http(f"{api}/runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 100})["runs"]
    by_id = {r["info"]["run_id"]: r for r in runs}
    assert set(by_id) == {job_id, report_id}

    job = by_id[job_id]
    tags = {t["key"]: t["value"] for t in job["data"]["tags"]}
    assert job["info"]["status"] == "FINISHED"
    assert (tags["dataset"], tags["model"], tags["seed"], tags[tracking.TAG_KIND]) == ("mnist", "vamoh", "0", "job")
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", tags[tracking.TAG_GIT_COMMIT])
    assert tags[tracking.TAG_JOB] == "train/mnist/vamoh/seed0"
    assert {p["key"]: p["value"] for p in job["data"]["params"]} == {"lr": "0.01"}
    (inp,) = job["inputs"]["dataset_inputs"]  # what the UI's Dataset column shows
    assert (inp["dataset"]["name"], inp["dataset"]["digest"]) == ("mnist", checksum[:12])
    assert json.loads(inp["dataset"]["profile"])["sizes"] == {"train": 60, "test": 10}
    assert {t["key"]: t["value"] for t in inp["tags"]} == {"mlflow.data.context": "train", "vamoh.is_standin": "true"}
    hist = _http(f"{api}/metrics/get-history?" + urllib.parse.urlencode({"run_id": job_id, "metric_key": "loss"}))
    got = sorted((int(m.get("step", 0)), m["value"]) for m in hist["metrics"])
    assert got == [(s, pytest.approx(loss_at(0, s))) for s in range(N_STEPS)]

    report = by_id[report_id]
    assert {t["key"]: t["value"] for t in report["data"]["tags"]}[tracking.TAG_KIND] == "report"
    assert {m["key"]: m["value"] for m in report["data"]["metrics"]} == {"fid": 12.5}
    listing = lambda path: sorted(f["path"] for f in _http(  # noqa: E731
        f"{api}/artifacts/list?" + urllib.parse.urlencode({"run_id": report_id, "path": path})).get("files", []))
    assert listing("") == ["figures", "tables"]
    assert listing("tables") == ["tables/table1.csv"]
    assert listing("figures/figure3") == ["figures/figure3/samples.png"]


    # a job writing through the server's REST API instead of the SQLite file: the same calls work
    ckpt = tmp_path / "served.pt"
    ckpt.write_bytes(os.urandom(2000))
    with tracking.job_run(base, "demo", "train-over-http", job_key="train/mnist/gasp/seed0") as over_http:
        over_http.log_history([{"step": s, "loss": loss_at(1, s)} for s in range(5)])
        over_http.log_dataset_input("mnist", is_standin=True, sizes={"train": 60}, checksum=checksum)
        over_http.log_checkpoint(ckpt)
    run = _http(f"{api}/runs/get?run_id={over_http.run_id}")["run"]
    assert run["info"]["status"] == "FINISHED"
    assert run["inputs"]["dataset_inputs"][0]["dataset"]["digest"] == checksum[:12]
    assert tracking.download_checkpoint(base, over_http.run_id, tmp_path / "back").read_bytes() == ckpt.read_bytes()
    query = urllib.parse.urlencode({"run_id": over_http.run_id, "metric_key": "loss"})
    hist = _http(f"{api}/metrics/get-history?{query}")
    assert sorted((int(m.get("step", 0)), m["value"]) for m in hist["metrics"]) == [
        (s, pytest.approx(loss_at(1, s))) for s in range(5)]


def test_a_dataset_row_created_by_a_concurrent_job_is_linked_not_fatal(tmp_path, monkeypatch):
    """Two jobs on the same data can both find no dataset row and both insert one; the store refuses the second
    (`UNIQUE constraint failed: datasets...`, a train job of the published-checkpoint test died of it). The losing
    job must link its run to the row the winner created. Here the winner's insert is staged deterministically:
    the first call commits the row through another run and then fails as the losing insert does."""
    from mlflow.tracking import MlflowClient

    uri = tracking.init_store(tracking.default_tracking_uri("ds", tmp_path))
    real = MlflowClient.log_inputs
    raced = []

    def racing(self, run_id, datasets=None, **kw):
        if not raced:
            raced.append(run_id)
            other = self.create_run(self.get_run(run_id).info.experiment_id).info.run_id
            real(self, other, datasets=datasets)  # the concurrent job wins the insert
            raise RuntimeError("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name, datasets.digest")
        return real(self, run_id, datasets=datasets, **kw)

    monkeypatch.setattr(MlflowClient, "log_inputs", racing)
    with tracking.job_run(uri, "datasets", "job") as run:
        run.log_dataset_input("polymnist", is_standin=True, sizes={"train": 8, "test": 2}, checksum="cd" * 32)
    c = tracking.client(uri)
    assert raced == [run.run_id]
    assert [d.dataset.digest for d in c.get_run(run.run_id).inputs.dataset_inputs] == [("cd" * 32)[:tracking.DATASET_DIGEST_CHARS]]
    # any other store error still stops the job at once
    monkeypatch.setattr(MlflowClient, "log_inputs", lambda self, run_id, datasets=None, **kw: (_ for _ in ()).throw(RuntimeError("disk I/O error")))
    with pytest.raises(RuntimeError, match="disk I/O error"):
        with tracking.job_run(uri, "datasets", "job2") as run2:
            run2.log_dataset_input("polymnist", is_standin=True, sizes={"train": 8, "test": 2}, checksum="cd" * 32)


def test_the_runs_view_is_a_route_of_the_installed_mlflow_ui():
    """tracking.runs_view's path is one the installed MLflow web app routes (read from its own bundle), and not the
    experiment's bare page, which MLflow 3 opens on its GenAI overview."""
    import mlflow

    bundles = list((Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js").glob("main*.js"))
    if not bundles:
        pytest.skip("this MLflow install carries no web app")
    routes = set(re.findall(r'"(/experiments/:experimentId[^"]*)"', "".join(b.read_text(errors="ignore") for b in bundles)))
    url = tracking.runs_view("7", port=5001)
    assert url == "http://127.0.0.1:5001/#/experiments/7/runs"
    assert "/experiments/:experimentId/runs" in routes
    assert urllib.parse.urlsplit(url).fragment.replace("/7/", "/:experimentId/") in routes
