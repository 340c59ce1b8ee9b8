"""Inference timing (Tables 2 and 5): interleaved, warmed-up, synchronised wall-clock measurements.

``time_interleaved`` measures several callables in one process, round-robin: repeat r calls every
candidate once, starting from a different candidate each repeat, so slow drifts of the machine
(frequency scaling, other load, allocator state) hit all candidates alike. On CUDA the device is
synchronised before starting and after finishing every call, so the time covers the GPU work.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ..checks import ConfigError, check
from . import keys


@dataclass(frozen=True)
class TimingStats:
    """Seconds per call of one candidate over ``repeats`` measured calls."""

    median: float
    q25: float
    q75: float
    iqr: float
    min: float
    max: float
    mean: float
    repeats: int
    samples: tuple[float, ...] = ()  # every measured call, in order: what a test of who is faster reads

    @classmethod
    def from_samples(cls, seconds: list[float] | np.ndarray) -> "TimingStats":
        arr = np.asarray(seconds, dtype=np.float64)
        check(arr.size > 0, "TimingStats: no samples")
        q25, med, q75 = np.percentile(arr, [25, 50, 75])
        return cls(float(med), float(q25), float(q75), float(q75 - q25), float(arr.min()), float(arr.max()), float(arr.mean()), int(arr.size),
                   tuple(float(x) for x in arr))

    def scaled(self, factor: float) -> "TimingStats":
        """Every time multiplied by ``factor`` (e.g. 1 / batch size for seconds per sample)."""
        d = asdict(self)
        out = {k: (v * factor if k not in ("repeats", "samples") else v) for k, v in d.items()}
        out["samples"] = tuple(x * factor for x in self.samples)
        return TimingStats(**out)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["samples"] = list(self.samples)
        return d


def _sync(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


# A time budget never cuts the repeats below this: the summary tests who is faster with a one-sided Mann-Whitney test
# on the calls, whose smallest p-value with n calls each is 1 / C(2n, n): 0.05 with 3 (never below 0.05), 0.014 with 4.
MIN_BUDGET_REPEATS = 4


def _timed(call: Callable[[], Any], device: str | torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    call()
    _sync(device)
    return time.perf_counter() - start


def _round(candidates: dict[str, Callable[[], Any]], device: str | torch.device) -> float:
    """Seconds of one call of every candidate."""
    _sync(device)
    start = time.perf_counter()
    for call in candidates.values():
        call()
        _sync(device)
    return time.perf_counter() - start


def time_interleaved(candidates: dict[str, Callable[[], Any]], repeats: int = 50, warmup: int = 5, device: str | torch.device = "cpu",
                     budget_s: float | None = None) -> dict[str, TimingStats]:
    """Time each zero-argument callable ``repeats`` times, round-robin, after ``warmup`` untimed rounds.

    With ``budget_s`` the number of rounds is what fits in it (one round: every candidate once, timed in the last
    warm-up round or, without warm-up, in the first measured round, which then counts), at least
    MIN_BUDGET_REPEATS and at most ``repeats``.
    Returns ``{name: TimingStats}`` in seconds per call, in the order of ``candidates``.
    """
    check(len(candidates) > 0, "time_interleaved: no candidates", ConfigError)
    check(isinstance(repeats, int) and repeats >= 1, f"repeats={repeats!r}: expected an int >= 1", ConfigError)
    check(isinstance(warmup, int) and warmup >= 0, f"warmup={warmup!r}: expected an int >= 0", ConfigError)
    names = list(candidates)
    samples: dict[str, list[float]] = {n: [] for n in names}
    round_s = 0.0
    for _ in range(warmup):
        round_s = _round(candidates, device)
    first = 0
    if budget_s is not None:
        if warmup == 0:  # no warm-up: the first measured round also sizes the budget (and counts)
            round_s = 0.0
            for name in names:
                samples[name].append(_timed(candidates[name], device))
                round_s += samples[name][-1]
            first = 1
        repeats = int(min(repeats, max(MIN_BUDGET_REPEATS, budget_s // max(round_s, 1e-9))))
    for r in range(first, repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:  # rotate the order each repeat
            samples[name].append(_timed(candidates[name], device))
    return {n: TimingStats.from_samples(samples[n]) for n in names}


def speedups(stats: dict[str, TimingStats], reference: str) -> dict[str, float]:
    """median(other) / median(reference) for every candidate: how many times faster ``reference`` is."""
    check(reference in stats, f"reference={reference!r} is not one of {list(stats)}", ConfigError)
    ref = stats[reference].median
    return {n: s.median / ref for n, s in stats.items()}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_device(device: str | torch.device = "cpu") -> dict[str, Any]:
    """What the numbers were measured on: CPU model, GPU name, torch version, threads, allocator setting."""
    dev = torch.device(device)
    info: dict[str, Any] = {
        "device": str(dev),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
    }
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
        info["cuda_version"] = torch.version.cuda
    return info


def timing_record(
    task: str,
    stats: dict[str, TimingStats],
    batch_size: int,
    reference: str | None = None,
) -> dict[str, Any]:
    """One measurement group as JSON-ready data: per-call and per-sample stats, speed-ups vs ``reference``."""
    check(task in keys.TIMING_TASKS, f"task={task!r} is not one of {list(keys.TIMING_TASKS)}", ConfigError)
    record: dict[str, Any] = {
        "task": task,
        "batch_size": batch_size,
        "seconds_per_call": {n: s.to_dict() for n, s in stats.items()},
        "seconds_per_sample": {n: s.scaled(1.0 / batch_size).to_dict() for n, s in stats.items()},
        "candidates": list(stats),
    }
    if reference is not None:
        record["reference"] = reference
        record["speedup_vs_reference"] = speedups(stats, reference)
    return record


def reconstruction_candidates(models: dict[str, Any], observed: Any, query_coords: torch.Tensor) -> dict[str, Callable[[], Any]]:
    """``{name: lambda: model.reconstruct(observed, query_coords)}``; each model handles its own grad mode.

    Functa's inner loop needs gradients, so nothing is wrapped in ``no_grad`` here.
    """
    return {name: (lambda m=m: m.reconstruct(observed, query_coords)) for name, m in models.items()}

