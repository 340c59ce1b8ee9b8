"""Wall time of a small workflow through SLURM beside Snakemake's local executor.

    python3 benchmarks/bench_slurm.py [--repeats 2] [--sleep 2]
    python3 benchmarks/bench_slurm.py --tiny      # the project's config/tiny.yaml DAG, local vs SLURM

Runs the demo workflow of ``tests/slurm_cluster.py`` (prepare -> 3 trains -> aggregate, each job
sleeping ``--sleep`` seconds) from scratch, with

- ``local``: ``--profile profiles/default`` (2 cores),
- ``slurm, test polling``: ``--profile profiles/slurm`` plus the fast status polling the tests use,
- ``slurm, profile defaults``: ``--profile profiles/slurm`` as a cluster user would run it,

on a throw-away single-node SLURM cluster, and writes ``benchmarks/results/slurm.csv`` and ``.md``
with the machine description. The gap is the executor's per-job overhead: an sbatch submission,
a ``python -m snakemake`` start inside the allocation, and the status-polling interval.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from benchmarks.machine import cpu_model  # noqa: E402

from slurm_cluster import (DEMO_SAMPLES, FAST_POLLING, SLURM_PROFILE, run_workflow,  # noqa: E402
                           slurm_cluster, write_demo_workflow)

LOCAL_PROFILE = REPO / "profiles" / "default"
RESULTS = HERE / "results"
COLUMNS = ["executor", "repeat", "jobs", "wall_s", "sbatch_submissions"]


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine_description() -> dict[str, str]:
    cpu = cpu_model()
    mem_kb = next(int(ln.split()[1]) for ln in open("/proc/meminfo") if ln.startswith("MemTotal"))
    os_name = next((ln.split("=", 1)[1].strip().strip('"') for ln in open("/etc/os-release")
                    if ln.startswith("PRETTY_NAME=")), platform.platform())
    from importlib.metadata import version

    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory_gib": f"{mem_kb / 2**20:.1f}",
        "os": os_name,
        "python": platform.python_version(),
        "snakemake": version("snakemake"),
        "snakemake-executor-plugin-slurm": version("snakemake-executor-plugin-slurm"),
        "slurm": _first_line(["slurmd", "-V"]),  # needs no slurm.conf, unlike sinfo
        "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES", "(unset)"),
    }


def bench(repeats: int, sleep_s: float) -> list[dict]:
    variants = [
        ("local", LOCAL_PROFILE, []),
        ("slurm, test polling", SLURM_PROFILE, list(FAST_POLLING)),
        ("slurm, profile defaults", SLURM_PROFILE, []),
    ]
    rows = []
    with slurm_cluster():
        for repeat in range(repeats):
            for name, profile, extra in variants:
                with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
                    outputs = write_demo_workflow(Path(tmp), DEMO_SAMPLES, sleep_s)
                    run = run_workflow(Path(tmp), profile, extra, timeout=900)
                    if run.returncode != 0:
                        raise RuntimeError(f"{name} run failed:\n{run.output[-4000:]}")
                    missing = [o for o in outputs if not (Path(tmp) / o).exists()]
                    if missing:
                        raise RuntimeError(f"{name} run succeeded but {missing} are missing")
                rows.append({"executor": name, "repeat": repeat, "jobs": len(outputs),
                             "wall_s": round(run.seconds, 1), "sbatch_submissions": len(run.slurm_job_ids)})
                print(rows[-1], flush=True)
    return rows


def write_results(rows: list[dict], machine: dict[str, str], sleep_s: float) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "slurm.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    by = {}
    for r in rows:
        by.setdefault(r["executor"], []).append(r["wall_s"])
    local = statistics.median(by["local"])
    lines = [
        "# SLURM executor overhead",
        "",
        f"Demo workflow from `tests/slurm_cluster.py`: prepare -> {len(DEMO_SAMPLES)} trains -> aggregate "
        f"({rows[0]['jobs']} jobs, each sleeping {sleep_s:g} s), from scratch, on a single-node SLURM "
        f"cluster on loopback. Written by `python3 benchmarks/bench_slurm.py` on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        "| executor | runs | median wall (s) | min–max (s) | × local |",
        "|---|---|---|---|---|",
    ]
    for name, walls in by.items():
        lines.append(f"| {name} | {len(walls)} | {statistics.median(walls):.1f} | {min(walls):.1f}–{max(walls):.1f} "
                     f"| {statistics.median(walls) / local:.1f} |")
    lines += [
        "",
        "`test polling` adds `" + " ".join(FAST_POLLING) + "`; `profile defaults` is `profiles/slurm` as is "
        "(status checks 10 s after submission, then 10 s further apart each time no job finished, up to "
        "180 s, and 20 s after a job finished; test polling starts at 1 s and resets to 2 s). Each SLURM job "
        "also starts `python -m snakemake` inside its allocation. For the suite's real jobs (minutes to "
        "hours) this overhead is negligible; for many tiny jobs use `group:` or `--slurm-array-jobs`.",
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in machine.items()],
        "",
    ]
    (RESULTS / "slurm.md").write_text("\n".join(lines))


def bench_tiny() -> list[dict]:
    """config/tiny.yaml's whole DAG from scratch, local (2 cores) and through SLURM (test polling)."""
    extra = ["--configfile", str(REPO / "config" / "tiny.yaml")]
    rows = []
    with slurm_cluster():
        for name, profile, more in (("local", LOCAL_PROFILE, []), ("slurm, test polling", SLURM_PROFILE, list(FAST_POLLING))):
            with tempfile.TemporaryDirectory(prefix="bench-slurm-tiny-") as tmp:
                run = run_workflow(Path(tmp), profile, extra + more, timeout=3000, snakefile=REPO / "Snakefile")
                if run.returncode != 0:
                    raise RuntimeError(f"{name} run failed:\n{run.output[-4000:]}")
                if not (Path(tmp) / "results/tiny/report.done").exists():
                    raise RuntimeError(f"{name} run succeeded but results/tiny/report.done is missing")
            rows.append({"executor": name, "repeat": 0, "jobs": run.output.count("Finished jobid"),
                         "wall_s": round(run.seconds, 1), "sbatch_submissions": len(run.slurm_job_ids)})
            print(rows[-1], flush=True)
    return rows


def write_tiny_results(rows: list[dict], machine: dict[str, str]) -> None:
    with open(RESULTS / "slurm_tiny.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    local = next(r["wall_s"] for r in rows if r["executor"] == "local")
    lines = ["# The tiny DAG (config/tiny.yaml) through SLURM beside the local executor", "",
             f"Whole DAG from scratch (3 datasets x 3 models, every rule), written by `python3 benchmarks/bench_slurm.py --tiny` "
             f"on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.", "",
             "| executor | jobs finished | sbatch submissions | wall (s) | x local |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['executor']} | {r['jobs']} | {r['sbatch_submissions']} | {r['wall_s']:.0f} | {r['wall_s'] / local:.2f} |")
    lines += ["", "Machine:", "", *[f"- {k}: {v}" for k, v in machine.items()], ""]
    (RESULTS / "slurm_tiny.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=1, help="runs of each executor (default 1)")
    ap.add_argument("--sleep", type=float, default=2.0, help="seconds each job sleeps (default 2)")
    ap.add_argument("--tiny", action="store_true", help="time config/tiny.yaml's DAG instead of the demo workflow")
    args = ap.parse_args(argv)
    if args.tiny:
        rows = bench_tiny()
        write_tiny_results(rows, machine_description())
        print((RESULTS / "slurm_tiny.md").read_text())
        return
    rows = bench(args.repeats, args.sleep)
    write_results(rows, machine_description(), args.sleep)
    print((RESULTS / "slurm.md").read_text())


if __name__ == "__main__":
    main()
