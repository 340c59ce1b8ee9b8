"""A one-line description of the machine a benchmark ran on, recorded beside every figure."""

from __future__ import annotations

import os
import platform
import time

import torch


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_isa() -> str:
    """The matmul-relevant vector extensions the CPU reports (Linux /proc/cpuinfo), e.g. "avx512f avx512_bf16 amx_bf16"."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_fp16")
    return " ".join(w for w in wanted if w in flags) or "none of " + "/".join(wanted)


def describe(device: torch.device | str = "cpu") -> dict[str, str]:
    device = torch.device(device)
    info = {
        "cpu": cpu_model(),
        "cpu_isa": cpu_isa(),
        "cpu_threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", "(unset: default malloc)"),
        "date": time.strftime("%Y-%m-%d"),
    }
    return info


def matmul_peak_gflops(device: torch.device | str = "cpu", n: int = 2048, repeats: int = 10,
                       dtype: torch.dtype = torch.float32) -> float:
    """Measured matmul rate (GFLOP/s) in ``dtype`` (default fp32): the ceiling FLOP/s figures are compared with."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(repeats):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 * repeats / best / 1e9


def profile_shares(step, steps: int, top: int = 8) -> str:
    """The operators with the largest self CPU time over ``steps`` calls of ``step`` under torch.profiler, as
    "name share%; ..." (shares of the profiled self time; the profiler's own cost inflates small operators)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: -e.self_cpu_time_total)
    return "; ".join(f"{e.key.replace('aten::', '')} {100 * e.self_cpu_time_total / total:.0f}%" for e in events[:top])


def read_results_csv(path, machine_column) -> tuple[list[dict], dict[str, str]]:
    """The rows of a benchmark's results CSV typed back (int, float, else str; empty cells left out) and its machine
    description, to rewrite the Markdown without rerunning. ``machine_column(name)`` gives the machine key a column
    holds (every row repeats the machine), or None for a row's own column."""
    import csv

    with open(path) as f:
        raw = list(csv.DictReader(f))
    machine = {key: v for k, v in (raw[0].items() if raw else ()) if (key := machine_column(k)) is not None}
    rows = []
    for r in raw:
        row: dict = {}
        for k, v in r.items():
            if machine_column(k) is not None or v in ("", None):
                continue
            try:
                row[k] = int(v) if v.lstrip("-").isdigit() else float(v)
            except ValueError:
                row[k] = v
        rows.append(row)
    return rows, machine
