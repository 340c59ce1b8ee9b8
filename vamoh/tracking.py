"""MLflow tracking for the benchmark suite: one store per run config, one MLflow run per Snakemake job.

Layout (the default, when the config names no tracking server)::

    results/{run}/mlflow.db        SQLite tracking store      tracking URI  sqlite:////abs/results/{run}/mlflow.db
    results/{run}/mlartifacts/     artifacts of every run     set as the experiment's artifact location

Why it is shaped like this:

- MLflow 3 refuses the plain ``./mlruns`` file store, so the default is SQLite.
- Several processes creating a fresh SQLite store at once crash in the schema migrations, so the
  workflow calls ``init_store(uri)`` once before any job starts; jobs then only read the schema.
- Concurrent writers to one SQLite file meet "database is locked"; every write goes through
  ``retry_locked`` (exponential backoff with jitter), and metrics are sent in batches
  (``MlflowClient.log_batch``) so a 1000-step history costs one transaction, not 1000.
- Everything goes through an explicit ``MlflowClient(uri)``: no global ``mlflow.set_tracking_uri``
  state leaks between jobs or tests.

What a researcher sees in the UI: the experiment is tagged for MLflow 3's model-training view;
each run lists the dataset it read as a dataset input (``log_dataset_input``); a training run holds
its checkpoint under ``checkpoint/`` (``JobRun.log_checkpoint``, ``download_checkpoint``).

Interrupted jobs: a job killed without warning never closes its run. Each job run carries the tag
``vamoh.job`` (its identity across attempts); the next attempt closes the dead attempt's run as
KILLED with ``vamoh.interrupted=true`` (``close_stale_runs``) and logs the complete training history
restored from its checkpoint (``JobRun.log_history``), so the newest run holds the whole curve.

``import vamoh.tracking`` does not import mlflow (seconds on a small machine); the functions do.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import numbers
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from .checks import CheckpointError, DataError
from .io import file_lock

log = logging.getLogger(__name__)

T = TypeVar("T")

DB_FILENAME = "mlflow.db"
ARTIFACT_DIRNAME = "mlartifacts"
# tag keys written on every job run; ``git_commit`` mirrors MLflow's own source tag
TAG_KIND = "vamoh.kind"  # "job" or "report"
TAG_GIT_COMMIT = "git_commit"
MLFLOW_GIT_TAG = "mlflow.source.git.commit"
# One Snakemake job keeps its identity across attempts (a killed job, its resumed rerun, a forced
# rerun): "{stage}/{dataset}/{model}/seed{seed}". It is how a new attempt finds the runs it replaces.
TAG_JOB = "vamoh.job"
TAG_INTERRUPTED = "vamoh.interrupted"  # "true" on a run that close_stale_runs found still RUNNING
TAG_REPLACES = "vamoh.replaces"  # on a new attempt: comma-separated ids of the interrupted runs it closed
# MLflow 3's UI opens an experiment in the view this experiment tag names; without it the UI guesses
# (and may offer the GenAI view). Key and value are the UI's own (mlflow/server/js, enum ExperimentKind).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# MLflow's dataset-input context tag (mlflow.utils.mlflow_tags.MLFLOW_DATASET_CONTEXT), shown beside the dataset
DATASET_CONTEXT_TAG = "mlflow.data.context"
TAG_IS_STANDIN = "vamoh.is_standin"  # input tag on a dataset input: "true" for stand-in data
DATASET_DIGEST_CHARS = 12  # of the checksum, as the dataset's MLflow digest (the UI shows it; the store allows 36)
CHECKPOINT_ARTIFACT_DIR = "checkpoint"  # a run's checkpoint file lives at checkpoint/<file name>
CHECKSUM_ARTIFACT_DIR = "checkpoint_sha256"  # and its sha256 sidecar at checkpoint_sha256/<file name>.sha256
# MLflow's per-request limits (mlflow.utils.validation); restated so the module imports without mlflow
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_PARAM_LENGTH = 6000
LOCK_MESSAGES = ("database is locked", "database table is locked", "locking protocol")


# --------------------------------------------------------------------------------------------
# URIs and the store


def default_tracking_uri(run: str, results_dir: str | Path = "results") -> str:
    """``sqlite:///`` URI of ``{results_dir}/{run}/mlflow.db`` with an absolute path."""
    if not run or "/" in run:
        raise ValueError(f"run={run!r}: expected a non-empty run-config name without '/'")
    path = (Path(results_dir) / run / DB_FILENAME).resolve()
    return f"sqlite:///{path}"


def resolve_tracking_uri(run: str, tracking_uri: str | None = None, results_dir: str | Path = "results") -> str:
    """The config's tracking URI (a shared server, another database) if given, else the run's SQLite store.

    A relative ``sqlite:///`` path is made absolute (jobs run in other working directories);
    a plain path or ``file:`` URI is refused because MLflow 3 no longer accepts file stores.
    """
    if not tracking_uri:
        return default_tracking_uri(run, results_dir)
    scheme = urlparse(tracking_uri).scheme
    if scheme == "sqlite":
        return f"sqlite:///{sqlite_path(tracking_uri)}"
    if scheme in ("", "file"):
        raise ValueError(
            f"tracking_uri={tracking_uri!r}: MLflow 3 refuses a plain file store; use "
            f"'sqlite:///path/to/mlflow.db' or an http(s):// tracking server"
        )
    if scheme.split("+")[0] not in STORE_SCHEMES:  # MLflow would refuse it only at the first job, with its own traceback
        raise ValueError(f"tracking_uri={tracking_uri!r}: unknown scheme {scheme!r}; expected one of {list(STORE_SCHEMES)} "
                         f"(e.g. 'sqlite:///path/to/mlflow.db' or 'http://host:5000')")
    return tracking_uri


# the tracking-store schemes MLflow accepts (a database URI may name its driver: postgresql+psycopg2://)
STORE_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks", "databricks-uc", "uc")
SQLITE_HEADER = b"SQLite format 3\x00"


def check_existing_store(uri: str, key: str = "--tracking-uri") -> str:
    """``uri`` as a store to read from: a ``sqlite:///`` file must exist and be an SQLite database (MLflow would
    otherwise create an empty store there, or fail with a sqlalchemy traceback). Returns the resolved URI."""
    if not is_sqlite(uri):
        return uri
    db = sqlite_path(uri)
    if not db.is_file():
        what = "is a directory" if db.is_dir() else "does not exist"
        raise CheckpointError(f"{key} {uri}: the SQLite store {db} {what}; expected the mlflow.db a run logged to "
                              f"(e.g. results/<run>/mlflow.db)")
    with open(db, "rb") as f:
        head = f.read(len(SQLITE_HEADER))
    if head != SQLITE_HEADER:
        raise CheckpointError(f"{key} {uri}: {db} is not an SQLite database (it starts with {head[:8]!r}); expected the "
                              f"mlflow.db a run logged to")
    return uri


def is_sqlite(uri: str) -> bool:
    return urlparse(uri).scheme == "sqlite"


def sqlite_path(uri: str) -> Path:
    """Absolute path of the database file of a ``sqlite:///`` URI."""
    if not is_sqlite(uri):
        raise ValueError(f"tracking URI {uri!r} is not a sqlite:/// URI")
    rest = uri[len("sqlite:///"):]
    if not rest or rest.startswith(":memory:"):
        raise ValueError(f"tracking URI {uri!r}: an in-memory SQLite store cannot be shared between jobs")
    return Path(unquote(rest.split("?", 1)[0])).resolve()


def artifact_root(uri: str) -> str | None:
    """``file:`` URI of the ``mlartifacts`` folder beside a SQLite store; ``None`` for a server (it decides)."""
    if not is_sqlite(uri):
        return None
    return (sqlite_path(uri).parent / ARTIFACT_DIRNAME).as_uri()


class StoreLockedError(RuntimeError):
    """The tracking store refused every retry of a write because another process holds its lock."""


def is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(m in text for m in LOCK_MESSAGES)


def is_dataset_race(exc: BaseException) -> bool:
    """The store refused a dataset row that a concurrent job inserted first (SQLite's or the server's message)."""
    text = str(exc)
    return "UNIQUE constraint failed: datasets" in text or ("datasets" in text and "duplicate key" in text.lower())


def retry_locked(fn: Callable[..., T], *args: Any, attempts: int = 12, base_delay: float = 0.05,
                 max_delay: float = 3.0, retry_if: Callable[[BaseException], bool] = is_lock_error, **kwargs: Any) -> T:
    """Call ``fn``; on SQLite "database is locked" (or whatever ``retry_if`` accepts) wait (exponential backoff,
    jitter) and call again.

    Other errors propagate at once. A locked write was rolled back, so repeating it is safe.
    """
    waited = 0.0
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if not retry_if(e):
                raise
            if attempt == attempts - 1:
                if is_lock_error(e):  # one clear line instead of sqlalchemy's traceback
                    raise StoreLockedError(f"the MLflow store stayed locked through {attempts} attempts over {waited:.0f} s: another "
                                           "process holds its write lock (a running job, a stuck `mlflow server`, or a killed "
                                           f"process's journal). Stop that process, or rerun when it is done. Last error: {e}") from e
                raise
            delay = min(max_delay, base_delay * 2**attempt) * (0.5 + random.random())
            waited += delay  # (the delay slept is the one counted)
            log.debug("store refused the write (%s); retry %d in %.2f s", e, attempt + 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _fast_build_dir() -> Path | None:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


def _create_sqlite_store(db: Path, root: str) -> None:
    """Build a fresh store elsewhere, then rename it into place: ``db`` never exists half made.

    The schema migrations fsync dozens of times; on tmpfs they take half the time.
    """
    import shutil
    import tempfile

    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with tempfile.TemporaryDirectory(dir=_fast_build_dir() or db.parent) as tmp:
        built = Path(tmp) / DB_FILENAME
        SqlAlchemyStore(f"sqlite:///{built}", root).engine.dispose()
        staged = db.with_name(f".{db.name}.{os.getpid()}.tmp")
        shutil.copyfile(built, staged)
    os.replace(staged, db)


def init_store(uri: str) -> str:
    """Create or upgrade the tracking store's schema; call once before jobs start. Idempotent.

    For SQLite this creates ``results/{run}/``, the database and ``mlartifacts/`` (or migrates a store
    from an older MLflow with ``mlflow db upgrade``), under an exclusive file lock, and the database
    file appears only once complete, so concurrent callers are safe too. A server URI is only
    checked to answer. Returns ``uri``.
    """
    from mlflow.exceptions import MlflowException

    if not is_sqlite(uri):
        retry_locked(client(uri).search_experiments, max_results=1)
        return uri
    db = sqlite_path(uri)
    root = artifact_root(uri)
    Path(urlparse(root).path).mkdir(parents=True, exist_ok=True)
    with file_lock(db.with_name(db.name + ".init.lock")):
        if not db.exists() or db.stat().st_size == 0:
            _create_sqlite_store(db, root)
            return uri
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        try:
            SqlAlchemyStore(uri, root).engine.dispose()
        except MlflowException as e:
            if "upgrade" not in str(e).lower():
                raise
            # a store written by an older MLflow: migrate it in place
            out = subprocess.run([sys.executable, "-m", "mlflow", "db", "upgrade", uri],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"`mlflow db upgrade {uri}` failed:\n{out.stderr[-3000:]}") from e
    return uri


def ensure_store(uri: str) -> str:
    """``init_store`` unless the SQLite database already exists (cheap check for every job)."""
    if is_sqlite(uri) and not sqlite_path(uri).exists():
        init_store(uri)
    return uri


def client(uri: str):
    """An ``MlflowClient`` bound to ``uri`` (no global tracking-URI state)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def runs_view(experiment_id: str, host: str = "127.0.0.1", port: int = 5000) -> str:
    """The browser address of an experiment's runs table on an ``mlflow server`` at ``host:port``. MLflow 3's bare
    address (and ``#/experiments/<id>``) opens its GenAI overview, which shows no training runs."""
    return f"http://{host}:{port}/#/experiments/{experiment_id}/runs"


def get_or_create_experiment(uri: str, name: str) -> str:
    """Id of the experiment called ``name``, creating it (artifacts beside a SQLite store) if absent.

    Race-safe: when another process creates it first, the "already exists" error is caught and the
    experiment re-read. A deleted experiment of that name is restored. The experiment is tagged
    ``mlflow.experimentKind = custom_model_development`` (also an existing one that lacks the tag,
    e.g. from an older version of the suite), so MLflow's UI opens it in the model-training view.
    """
    from mlflow.exceptions import MlflowException

    if not name:
        raise ValueError("experiment name is empty: expected the run config's name")
    c = client(ensure_store(uri))
    exp = retry_locked(c.get_experiment_by_name, name)
    if exp is None:
        root = artifact_root(uri)
        try:
            return retry_locked(c.create_experiment, name, artifact_location=root,
                                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS" and "already exists" not in str(e).lower():
                raise
        exp = retry_locked(c.get_experiment_by_name, name)
        if exp is None:
            raise RuntimeError(f"experiment {name!r} reported as existing in {uri} but cannot be read back")
    if exp.lifecycle_stage == "deleted":
        retry_locked(c.restore_experiment, exp.experiment_id)
    if exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:  # written once: later jobs only read
        retry_locked(c.set_experiment_tag, exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return exp.experiment_id


def git_commit(repo_dir: str | Path | None = None) -> str:
    """Commit hash of the checkout holding this package (or ``repo_dir``); ``"unknown"`` if none.

    ``VAMOH_GIT_COMMIT`` overrides it, for cluster nodes that run from a copy without ``.git``.
    """
    if os.environ.get("VAMOH_GIT_COMMIT"):
        return os.environ["VAMOH_GIT_COMMIT"]
    where = Path(repo_dir) if repo_dir is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else "unknown"


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"model.lr": "0.001", ...}`` with string values MLflow accepts."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, prefix=f"{name}."))
        else:
            text = str(value)
            flat[name] = text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."
    return flat


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --------------------------------------------------------------------------------------------
# one run per job


class JobRun:
    """An open MLflow run; made by ``job_run``. Metrics are buffered and sent with ``log_batch``."""

    def __init__(self, uri: str, run_id: str, experiment_id: str, flush_every: int = MAX_METRICS_PER_BATCH):
        self.uri = uri
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.client = client(uri)
        self._flush_every = max(1, min(flush_every, MAX_METRICS_PER_BATCH))
        self._pending: list[Any] = []  # mlflow.entities.Metric

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log a (possibly nested) mapping as flat string params, 100 per request."""
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in flatten_params(params).items()]
        for chunk in _chunks(items, MAX_PARAMS_PER_BATCH):
            retry_locked(self.client.log_batch, self.run_id, params=chunk)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(str(k), str(v)) for k, v in tags.items()]
        for chunk in _chunks(items, MAX_PARAMS_PER_BATCH):
            retry_locked(self.client.log_batch, self.run_id, tags=chunk)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0, timestamp_ms: int | None = None) -> None:
        """Queue one value per key at ``step``; sent when the buffer fills, on ``flush`` and at run end."""
        from mlflow.entities import Metric

        ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        for key, value in metrics.items():
            self._pending.append(Metric(key=key, value=float(value), timestamp=ts, step=int(step)))
        if len(self._pending) >= self._flush_every:
            self.flush()

    def log_metric_history(self, key: str, values: Iterable[float], steps: Iterable[int] | None = None) -> None:
        """Queue a whole curve (e.g. a training loss read from a log file)."""
        values = list(values)
        steps = list(range(len(values))) if steps is None else list(steps)
        if len(steps) != len(values):
            raise ValueError(f"metric {key!r}: {len(values)} values but {len(steps)} steps")
        for s, v in zip(steps, values):
            self.log_metrics({key: v}, step=s)

    def flush(self) -> None:
        while self._pending:
            chunk = self._pending[:MAX_METRICS_PER_BATCH]
            retry_locked(self.client.log_batch, self.run_id, metrics=chunk)
            del self._pending[: len(chunk)]

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Copy one file into the run's artifacts (under ``artifact_path`` if given)."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"artifact file not found: {p}")
        self.client.log_artifact(self.run_id, str(p), artifact_path)

    def log_artifacts(self, directory: str | Path, artifact_path: str | None = None) -> None:
        """Copy a directory tree into the run's artifacts."""
        d = Path(directory)
        if not d.is_dir():
            raise FileNotFoundError(f"artifact directory not found: {d}")
        self.client.log_artifacts(self.run_id, str(d), artifact_path)

    def artifact_uri(self) -> str:
        return retry_locked(self.client.get_run, self.run_id).info.artifact_uri

    def log_history(self, rows: Iterable[Mapping[str, Any]], step_key: str = "step") -> int:
        """Log every numeric column of a whole training history, each row at step ``row[step_key]``.

        ``rows``: the trainer's history (a list of dicts such as ``{"step": 10, "epoch": 0,
        "seconds": 1.2, "loss": 0.5}``). A resumed or force-rerun job calls this with the complete
        history restored from its checkpoint, so its run holds the whole curve, not only the steps
        trained since the resume. (key, step) pairs the run already holds (logged live by this
        attempt) are skipped, so nothing appears twice. Missing values (``None``, NaN: a column
        that some rows lack) and non-numeric columns are skipped. Returns the values queued.
        """
        points: dict[str, dict[int, float]] = {}  # key -> step -> value; the first row of a step wins
        for i, row in enumerate(rows):
            step = row.get(step_key)
            whole = isinstance(step, numbers.Integral) or (isinstance(step, float) and step.is_integer())
            if isinstance(step, bool) or not whole:
                raise ValueError(f"history row {i}: {step_key}={step!r}, expected an integer step ({row!r})")
            for key, value in row.items():
                if key != step_key and _is_value(value):
                    points.setdefault(str(key), {}).setdefault(int(step), float(value))
        self.flush()  # the store must hold this attempt's live metrics before comparing against it
        queued = 0
        for key, by_step in points.items():
            held = {m.step for m in retry_locked(self.client.get_metric_history, self.run_id, key)}
            for step, value in sorted(by_step.items()):
                if step not in held:
                    self.log_metrics({key: value}, step=step)
                    queued += 1
        return queued

    def log_dataset_input(self, name: str, *, is_standin: bool, sizes: Mapping[str, int], checksum: str,
                          source: str | None = None, label: str | None = None, context: str = "train") -> None:
        """Record the dataset this run read as an MLflow dataset input (see ``log_dataset_input``)."""
        log_dataset_input(self, name, is_standin=is_standin, sizes=sizes, checksum=checksum, source=source,
                          label=label, context=context)

    def log_checkpoint(self, path: str | Path) -> str:
        """Log a checkpoint file under ``checkpoint/``; return its artifact path (``checkpoint/<name>``).

        ``download_checkpoint(uri, run_id, dst_dir)`` fetches it back by run id.
        """
        p = Path(path)
        if not p.is_file():
            raise CheckpointError(f"checkpoint file not found: {p} (nothing to log for run {self.run_id})")
        self.log_artifact(p, CHECKPOINT_ARTIFACT_DIR)
        side = p.with_name(p.name + ".sha256")
        if side.is_file():  # its checksum travels with it (download_checkpoint verifies against it)
            self.log_artifact(side, CHECKSUM_ARTIFACT_DIR)
        return f"{CHECKPOINT_ARTIFACT_DIR}/{p.name}"


def _is_value(value: Any) -> bool:
    """A number worth logging as a metric: not a bool, not a missing value (None / NaN)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)


@contextlib.contextmanager
def job_run(uri: str, experiment: str, run_name: str, tags: Mapping[str, Any] | None = None,
            params: Mapping[str, Any] | None = None, kind: str = "job",
            flush_every: int = MAX_METRICS_PER_BATCH, job_key: str | None = None) -> Iterator[JobRun]:
    """Open one MLflow run for one job; finish it FINISHED, or FAILED if the block raises.

    ``tags`` are typically dataset/model/seed; the git commit is added. ``params`` may be nested.
    Pending metrics are flushed before the run is closed, also on failure; ``flush_every`` sends
    them sooner (a live view of a long training job) at the cost of more SQLite transactions.

    ``job_key`` (e.g. ``"train/polymnist/vamoh/seed0"``) names the job across attempts: the run is
    tagged ``vamoh.job`` with it, and runs of the same job that a killed attempt left RUNNING are
    first closed as KILLED (``close_stale_runs``); the new run lists them in ``vamoh.replaces``.
    """
    experiment_id = get_or_create_experiment(uri, experiment)
    all_tags = {TAG_KIND: kind, TAG_GIT_COMMIT: git_commit(), **{str(k): str(v) for k, v in (tags or {}).items()}}
    all_tags.setdefault(MLFLOW_GIT_TAG, all_tags[TAG_GIT_COMMIT])
    if job_key is not None:
        all_tags[TAG_JOB] = _check_job_key(job_key)
        replaced = close_stale_runs(uri, experiment, job_key)
        if replaced:
            all_tags[TAG_REPLACES] = ",".join(replaced)
    c = client(uri)
    run = retry_locked(c.create_run, experiment_id, tags=all_tags, run_name=run_name)
    jr = JobRun(uri, run.info.run_id, experiment_id, flush_every=flush_every)
    status = "FAILED"
    try:
        if params:
            jr.log_params(params)
        yield jr
        status = "FINISHED"
    finally:
        try:
            jr.flush()
        finally:
            retry_locked(c.set_terminated, jr.run_id, status=status)


def _check_job_key(job_key: str) -> str:
    if not isinstance(job_key, str) or not job_key.strip():
        raise ValueError(f"job_key={job_key!r}: expected a non-empty name such as 'train/polymnist/vamoh/seed0'")
    return job_key


def _search_all(c, experiment_id: str, filter_string: str = "") -> list[Any]:
    """Every run of the experiment matching ``filter_string`` (all pages)."""
    found: list[Any] = []
    token = None
    while True:
        page = retry_locked(c.search_runs, [experiment_id], filter_string=filter_string, max_results=1000,
                            page_token=token)
        found += list(page)
        token = page.token
        if not token:
            return found


def close_stale_runs(uri: str, experiment: str, job_key: str) -> list[str]:
    """Close the runs of job ``job_key`` still marked RUNNING: status KILLED, tag ``vamoh.interrupted=true``.

    A job killed by SLURM, a node failure or ``kill -9`` never reaches ``set_terminated``, so its run
    stays RUNNING forever. The next attempt of the same job calls this when it starts (``job_run``
    does, given ``job_key``): Snakemake never runs one job twice at once, so a RUNNING run of the
    job at that moment belongs to a dead attempt. The closed run keeps its metrics and artifacts.
    Returns the ids of the runs closed (none when the experiment does not exist yet).
    """
    _check_job_key(job_key)
    c = client(uri)
    exp = retry_locked(c.get_experiment_by_name, experiment)
    if exp is None:
        return []
    # the job key is compared here rather than in the filter: it may hold quotes the filter grammar rejects
    running = _search_all(c, exp.experiment_id, "attributes.status = 'RUNNING'")
    stale = [r.info.run_id for r in running if r.data.tags.get(TAG_JOB) == job_key]
    for run_id in stale:
        retry_locked(c.set_tag, run_id, TAG_INTERRUPTED, "true")
        retry_locked(c.set_terminated, run_id, status="KILLED")
        log.info("closed run %s of job %s: left RUNNING by an interrupted attempt", run_id, job_key)
    return stale


def _dataset_source(source: str | None) -> tuple[str, str]:
    """(MLflow source type, source JSON) as MLflow's own dataset sources write them."""
    if source is None:  # built by code (a stand-in generated in memory): MLflow's "code" source
        return "code", json.dumps({"tags": {}})
    scheme = urlparse(str(source)).scheme
    if scheme in ("", "file"):
        return "local", json.dumps({"uri": str(source)})
    return scheme, json.dumps({"uri": str(source)})


def log_dataset_input(target: JobRun | tuple[str, str], name: str, *, is_standin: bool, sizes: Mapping[str, int],
                      checksum: str, source: str | None = None, label: str | None = None,
                      context: str = "train") -> None:
    """Record a dataset as an input of a run, so MLflow's run table shows it in its Dataset column.

    ``target``: an open ``JobRun`` or ``(tracking uri, run id)``. ``name``: the dataset's registry
    name (``polymnist``); ``sizes``: samples per split (``{"train": 600, "test": 100}``);
    ``checksum``: the sha256 (hex) of the prepared data file, whose first 12 characters become the
    dataset's MLflow digest, so two different preparations of one dataset are told apart;
    ``source``: its path or URI (``None``: data built by code); ``label``: the display label
    (e.g. with the stand-in mark); ``context``: what the run used it for (``train``, ``eval``).
    Stand-in data is marked in the dataset's profile and by the input tag ``vamoh.is_standin``.
    """
    from mlflow.entities import Dataset, DatasetInput, InputTag

    if isinstance(target, JobRun):
        c, run_id = target.client, target.run_id
    else:
        uri, run_id = target
        c = client(uri)
    if not isinstance(name, str) or not name:
        raise DataError(f"dataset input name={name!r}: expected the dataset's registry name, e.g. 'polymnist'")
    if not isinstance(is_standin, bool):
        raise DataError(f"dataset input {name!r}: is_standin={is_standin!r}, expected True or False")
    if not isinstance(checksum, str) or len(checksum) < DATASET_DIGEST_CHARS or not all(
            ch in "0123456789abcdefABCDEF" for ch in checksum):
        raise DataError(f"dataset input {name!r}: checksum={checksum!r}, expected the sha256 hex digest of the "
                        f"prepared data (its content_sha256, at least {DATASET_DIGEST_CHARS} hex characters)")
    bad = {k: v for k, v in sizes.items() if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0}
    if not sizes or bad:
        raise DataError(f"dataset input {name!r}: sizes={dict(sizes)!r}, expected samples per split as integers >= 0, "
                        f"e.g. {{'train': 600, 'test': 100}}")
    profile = {"is_standin": is_standin, "sizes": {str(k): int(v) for k, v in sizes.items()},
               "num_samples": int(sum(sizes.values())), "sha256": checksum.lower()}
    if label is not None:
        profile["label"] = str(label)
    source_type, source_json = _dataset_source(source)
    dataset = Dataset(name=name, digest=checksum.lower()[:DATASET_DIGEST_CHARS], source_type=source_type,
                      source=source_json, profile=json.dumps(profile, ensure_ascii=False))
    tags = [InputTag(DATASET_CONTEXT_TAG, context), InputTag(TAG_IS_STANDIN, str(is_standin).lower())]
    # Two jobs on the same data (the demo trains four models per dataset, two at a time) can both find no dataset
    # row and both insert it: the second insert breaks the store's uniqueness and is rolled back. The row then
    # exists, so logging again links this run to it.
    retry_locked(c.log_inputs, run_id, datasets=[DatasetInput(dataset, tags)],
                 retry_if=lambda e: is_lock_error(e) or is_dataset_race(e))


def download_checkpoint(uri: str, run_id: str, dst_dir: str | Path, name: str | None = None) -> Path:
    """Fetch the checkpoint that run ``run_id`` logged with ``JobRun.log_checkpoint``; return its local path.

    The file lands at ``dst_dir/<file name>``. ``name`` picks one file when the run logged several
    under ``checkpoint/``. A missing run, a run without a checkpoint, or an ambiguous choice is a
    ``CheckpointError`` naming the run and the store.
    """
    from mlflow.exceptions import MlflowException

    check_existing_store(uri, "tracking store")  # reading a run never creates a store
    c = client(uri)
    try:
        retry_locked(c.get_run, run_id)
    except MlflowException as e:
        raise CheckpointError(f"run {run_id!r} not found in the tracking store {uri} ({e.message})") from None
    files = sorted(Path(f.path).name for f in retry_locked(c.list_artifacts, run_id, CHECKPOINT_ARTIFACT_DIR)
                   if not f.is_dir)
    if name is not None:
        files = [f for f in files if f == name]
    where = f"run {run_id} in the tracking store {uri}"
    if not files:
        asked = f" named {name!r}" if name is not None else ""
        raise CheckpointError(f"{where} has no checkpoint{asked} under its artifacts '{CHECKPOINT_ARTIFACT_DIR}/' "
                              f"(a training run logs one with JobRun.log_checkpoint)")
    if len(files) > 1:
        raise CheckpointError(f"{where} has several checkpoints {files} under '{CHECKPOINT_ARTIFACT_DIR}/': "
                              f"pass name= to pick one")
    dst = Path(dst_dir)
    dst.mkdir(parents=True, exist_ok=True)
    sums = [Path(f.path).name for f in retry_locked(c.list_artifacts, run_id, CHECKSUM_ARTIFACT_DIR) if not f.is_dir]
    # the sidecar of an earlier download into dst describes another file: it goes first, and the new one (when the run
    # has one) comes after the checkpoint, so a download that fails half way leaves no file paired with a wrong digest
    (dst / f"{files[0]}.sha256").unlink(missing_ok=True)
    local = retry_locked(c.download_artifacts, run_id, f"{CHECKPOINT_ARTIFACT_DIR}/{files[0]}", str(dst))
    if f"{files[0]}.sha256" in sums:
        retry_locked(c.download_artifacts, run_id, f"{CHECKSUM_ARTIFACT_DIR}/{files[0]}.sha256", str(dst))
    return Path(local)


def report_run(uri: str, experiment: str, tables: Iterable[str | Path] = (), figures: Iterable[str | Path] = (),
               metrics: Mapping[str, float] | None = None, tags: Mapping[str, Any] | None = None,
               params: Mapping[str, Any] | None = None, run_name: str = "report") -> str:
    """Log the final report run (tables under ``tables/``, figures under ``figures/``); return its run id.

    A directory among ``tables``/``figures`` is logged whole.
    """
    with job_run(uri, experiment, run_name, tags=tags, params=params, kind="report") as jr:
        for folder, paths in (("tables", tables), ("figures", figures)):
            for p in map(Path, paths):
                if p.is_dir():
                    jr.log_artifacts(p, f"{folder}/{p.name}")
                else:
                    jr.log_artifact(p, folder)
        if metrics:
            jr.log_metrics(metrics)
    return jr.run_id


def run_ids(uri: str, experiment: str, kind: str | None = None) -> list[str]:
    """Ids of the experiment's runs (optionally only ``kind`` "job" or "report")."""
    c = client(uri)
    exp = retry_locked(c.get_experiment_by_name, experiment)
    if exp is None:
        return []
    filt = f"tags.`{TAG_KIND}` = '{kind}'" if kind else ""
    return [r.info.run_id for r in _search_all(c, exp.experiment_id, filt)]
