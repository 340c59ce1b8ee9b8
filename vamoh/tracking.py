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

``import vamoh.tracking`` does not import mlflow (seconds on a small machine); the functions do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from .io import file_lock

log = logging.getLogger(__name__)

T = TypeVar("T")

DB_FILENAME = "mlflow.db"
ARTIFACT_DIRNAME = "mlartifacts"
# tag keys written on every job run; ``git_commit`` mirrors MLflow's own source tag
TAG_KIND = "vamoh.kind"  # "job" or "report"
TAG_GIT_COMMIT = "git_commit"
MLFLOW_GIT_TAG = "mlflow.source.git.commit"
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
    return tracking_uri


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


def is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(m in text for m in LOCK_MESSAGES)


def retry_locked(fn: Callable[..., T], *args: Any, attempts: int = 12, base_delay: float = 0.05,
                 max_delay: float = 3.0, **kwargs: Any) -> T:
    """Call ``fn``; on SQLite "database is locked" wait (exponential backoff, jitter) and call again.

    Other errors propagate at once. A locked write was rolled back, so repeating it is safe.
    """
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if not is_lock_error(e) or attempt == attempts - 1:
                raise
            delay = min(max_delay, base_delay * 2**attempt) * (0.5 + random.random())
            log.debug("SQLite store locked (%s); retry %d in %.2f s", e, attempt + 1, delay)
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


def get_or_create_experiment(uri: str, name: str) -> str:
    """Id of the experiment called ``name``, creating it (artifacts beside a SQLite store) if absent.

    Race-safe: when another process creates it first, the "already exists" error is caught and the
    experiment re-read. A deleted experiment of that name is restored.
    """
    from mlflow.exceptions import MlflowException

    if not name:
        raise ValueError("experiment name is empty: expected the run config's name")
    c = client(ensure_store(uri))
    exp = retry_locked(c.get_experiment_by_name, name)
    if exp is None:
        root = artifact_root(uri)
        try:
            return retry_locked(c.create_experiment, name, artifact_location=root)
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS" and "already exists" not in str(e).lower():
                raise
        exp = retry_locked(c.get_experiment_by_name, name)
        if exp is None:
            raise RuntimeError(f"experiment {name!r} reported as existing in {uri} but cannot be read back")
    if exp.lifecycle_stage == "deleted":
        retry_locked(c.restore_experiment, exp.experiment_id)
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


@contextlib.contextmanager
def job_run(uri: str, experiment: str, run_name: str, tags: Mapping[str, Any] | None = None,
            params: Mapping[str, Any] | None = None, kind: str = "job",
            flush_every: int = MAX_METRICS_PER_BATCH) -> Iterator[JobRun]:
    """Open one MLflow run for one job; finish it FINISHED, or FAILED if the block raises.

    ``tags`` are typically dataset/model/seed; the git commit is added. ``params`` may be nested.
    Pending metrics are flushed before the run is closed, also on failure; ``flush_every`` sends
    them sooner (a live view of a long training job) at the cost of more SQLite transactions.
    """
    experiment_id = get_or_create_experiment(uri, experiment)
    all_tags = {TAG_KIND: kind, TAG_GIT_COMMIT: git_commit(), **{str(k): str(v) for k, v in (tags or {}).items()}}
    all_tags.setdefault(MLFLOW_GIT_TAG, all_tags[TAG_GIT_COMMIT])
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
    ids: list[str] = []
    token = None
    while True:
        page = retry_locked(c.search_runs, [exp.experiment_id], filter_string=filt, max_results=1000, page_token=token)
        ids += [r.info.run_id for r in page]
        token = page.token
        if not token:
            return ids
