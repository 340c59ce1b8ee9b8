"""Run a workflow script with its output in the rule's log file and its traceback there too."""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def logged(path: str | Path) -> Iterator[None]:
    """Send stdout, stderr and logging to ``path`` for the duration; a failure's traceback lands there before re-raising."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        handler = logging.StreamHandler(f)
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
        try:
            yield
        except BaseException:
            traceback.print_exc(file=f)
            raise
        else:
            from .jobclock import line

            print(line())  # where the job's time went (vamoh.pipeline.jobclock; read by benchmarks/bench_demo.py)
        finally:
            logging.getLogger().removeHandler(handler)


def run_config(snakemake_config: dict):
    from .runconfig import RunConfig

    return RunConfig.from_dict(snakemake_config)
