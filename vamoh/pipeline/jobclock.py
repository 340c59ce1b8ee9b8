"""Where a workflow job's time goes: its measured work against what surrounds it.

A stage marks its computation with ``with clock("work"):`` (the training loop, the evaluation, the
extractor's training), the data it loads with ``clock("data")`` and its MLflow run's opening and closing
with ``timed(cm, "tracking")``. When the job's script ends, ``vamoh.pipeline.scriptlog.logged`` writes one
line to the job's log::

    jobclock {"process_s": 34.7, "max_rss_mb": 1210.9, "work_s": 29.8, "data_s": 0.4, "tracking_s": 1.9, "glibc_tunables": null}

``process_s`` is the age of the process (its start, imports included); Snakemake's benchmark file of the
same job has the job's whole wall time ``s``, so ``s - work_s`` is the job's overhead: the interpreter and
imports, data loading, MLflow and Snakemake's own start-up of the script. ``benchmarks/bench_demo.py``
reads these lines next to the benchmark files. ``max_rss_mb`` is the process's peak memory: a job run in a
child of the warm server (vamoh.pipeline.warm) is not a descendant of the process Snakemake measures.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

PREFIX = "jobclock "
_spent: dict[str, float] = defaultdict(float)


@contextlib.contextmanager
def clock(category: str) -> Iterator[None]:
    """Add the block's wall time to ``category`` ("work", "data", "tracking")."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        _spent[category] += time.perf_counter() - t0


class timed:  # noqa: N801 (used like a function: ``with timed(cm, "tracking") as run``)
    """A context manager whose entering and leaving count to ``category``, not what runs inside it."""

    def __init__(self, cm: Any, category: str):
        self.cm, self.category = cm, category

    def __enter__(self) -> Any:
        with clock(self.category):
            return self.cm.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        with clock(self.category):
            return self.cm.__exit__(*exc)


def process_seconds() -> float | None:
    """Seconds since this process started, to the clock tick (Linux: /proc, whose start time psutil converts with a
    boot time rounded to the second), else from psutil, else None."""
    import os

    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime, in ticks since boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:  # noqa: BLE001 (a missing or failing psutil only loses the line's first number)
        return None


def line() -> str:
    """The log line: the process age and the seconds of each category, rounded to 10 ms."""
    import resource

    record: dict[str, float | None] = {"process_s": process_seconds(),
                                       "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    record.update({f"{k}_s": v for k, v in sorted(_spent.items())})
    values: dict[str, Any] = {k: None if v is None else round(v, 2) for k, v in record.items()}
    values["glibc_tunables"] = os.environ.get("GLIBC_TUNABLES")  # the allocator the process started with (config key malloc)
    return PREFIX + json.dumps(values)


def parse(text: str) -> dict[str, float] | None:
    """The last jobclock record in a log's text (a rerun appends to the same log), or None."""
    found = None
    for row in text.splitlines():
        if row.startswith(PREFIX):
            found = json.loads(row[len(PREFIX):])
    return found


def reset() -> None:
    _spent.clear()
