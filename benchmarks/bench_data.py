"""Loader benchmark: training batches per second of each stand-in at the paper's batch size.

    python3 benchmarks/bench_data.py [--batches 50] [--cache data_cache] [--out benchmarks/results/data_loading.csv]

A batch is what a training step consumes: ``FunctionDataset.train_batch`` on random indices
(features to float, coordinates expanded, 4096 random voxels for ShapeNet). Each row records the
machine, the torch thread count and GLIBC_TUNABLES, because the allocator setting changes CPU
timings (REFERENCE.md section 6). The comparison against one VAMoH training step is added by the
suite's timing benchmarks; ``loader_batches_per_second`` is importable for that.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchmarks.machine import cpu_model  # noqa: E402
from vamoh.data import DATASETS, FunctionDataset, load_dataset  # noqa: E402

FIELDS = ("dataset", "label", "batch_size", "points_per_sample", "n_batches", "batches_per_second", "samples_per_second", "machine", "torch_threads", "glibc_tunables", "torch", "date")
_LOADED: dict[str, FunctionDataset] = {}


def _train_split(name: str, cache_dir: str | Path | None = None) -> FunctionDataset:
    if name not in _LOADED:
        _LOADED[name] = load_dataset({"name": name}, cache_dir)["train"]
    return _LOADED[name]


def loader_batches_per_second(name: str, batch_size: int, n_batches: int, cache_dir: str | Path | None = None, seed: int = 0, threads: int | None = 1) -> float:
    """Training batches per second of stand-in ``name`` (built or read from the cache first, untimed).

    1 / the median time of ``n_batches`` timed batches: the median keeps a busy shared machine's
    stalls out of the figure. ``threads``: torch intra-op threads while timing (None = leave as
    is). One thread by default: batch assembly is memory-bound, and on a loaded 2-core machine a
    two-thread copy waits for a descheduled worker (measured 60 ms instead of 1 ms per batch).
    """
    ds = _train_split(name, cache_dir)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _time_batches(ds, batch_size, n_batches, seed)
    finally:
        torch.set_num_threads(before)


def _time_batches(ds: FunctionDataset, batch_size: int, n_batches: int, seed: int) -> float:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(3):  # warm-up: first-touch allocations
        ds.train_batch(torch.randint(len(ds), (batch_size,), generator=gen), gen)
    times = []
    for _ in range(n_batches):
        idx = torch.randint(len(ds), (batch_size,), generator=gen)
        start = time.perf_counter()
        ds.train_batch(idx, gen)
        times.append(time.perf_counter() - start)
    return 1.0 / statistics.median(times)


def machine_description() -> str:
    cpu = cpu_model()
    return f"{cpu}; {os.cpu_count()} cores; {platform.system()} {platform.release()}; Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50, help="timed batches per dataset")
    parser.add_argument("--cache", default=None, help="data cache directory (default $VAMOH_DATA_CACHE or data_cache)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "data_loading.csv"))
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads while timing (0 = torch's default)")
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    args = parser.parse_args(argv)

    rows = []
    for name in args.datasets:
        spec = DATASETS[name]
        bps = loader_batches_per_second(name, spec.paper_batch_size, args.batches, args.cache, threads=args.threads or None)
        ds = _train_split(name, args.cache)
        rows.append(
            {
                "dataset": name,
                "label": ds.label,
                "batch_size": spec.paper_batch_size,
                "points_per_sample": ds.train_points or ds.num_points,
                "n_batches": args.batches,
                "batches_per_second": round(bps, 2),
                "samples_per_second": round(bps * spec.paper_batch_size, 1),
                "machine": machine_description(),
                "torch_threads": args.threads or torch.get_num_threads(),
                "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
                "torch": torch.__version__,
                "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
        print(f"{name:11s} batch {spec.paper_batch_size:4d}: {bps:9.1f} batches/s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
