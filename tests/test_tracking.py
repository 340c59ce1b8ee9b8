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
        for step in range(N_STEPS):
            run.log_metrics({"loss": loss_at(job, step), "psnr": float(step)}, step=step)
        run.log_artifact(art / "metrics.json")
        run.log_artifacts(art / "samples", "samples")
    results.put((job, run.run_id, run.experiment_id))


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
    with tracking.job_run(uri, "demo", "train-mnist-vamoh-seed0",
                          tags={"dataset": "mnist", "model": "vamoh", "seed": 0}, params={"lr": 0.01}) as job:
        job.log_metric_history("loss", [loss_at(0, s) for s in range(N_STEPS)])
    report_id = tracking.report_run(uri, "demo", tables=[table], figures=[figure_dir],
                                    metrics={"fid": 12.5}, tags={"config": "demo"})
    return job.run_id, report_id


@pytest.fixture
def mlflow_server(tmp_path):
    """``mlflow server`` on 127.0.0.1 over a store holding a job run and a report run.

    The runs are written through SQLite while the server boots (it takes ~20 s here), which also
    shows that the server sees what jobs write behind its back.
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
        yield base, job_id, report_id
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def test_tracking_server_serves_the_runs(mlflow_server):
    base, job_id, report_id = mlflow_server
    api = f"{base}/api/2.0/mlflow"
    exp = _http(f"{api}/experiments/get-by-name?experiment_name=demo")["experiment"]
    runs = _http(f"{api}/runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 100})["runs"]
    by_id = {r["info"]["run_id"]: r for r in runs}
    assert set(by_id) == {job_id, report_id}

    job = by_id[job_id]
    tags = {t["key"]: t["value"] for t in job["data"]["tags"]}
    assert job["info"]["status"] == "FINISHED"
    assert (tags["dataset"], tags["model"], tags["seed"], tags[tracking.TAG_KIND]) == ("mnist", "vamoh", "0", "job")
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", tags[tracking.TAG_GIT_COMMIT])
    assert {p["key"]: p["value"] for p in job["data"]["params"]} == {"lr": "0.01"}
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
