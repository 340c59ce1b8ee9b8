"""Wall time and peak memory of a whole DAG run (by default the README's main command, the demo).

    python benchmarks/bench_demo.py                      # run `snakemake --cores 2` here, then summarise
    python benchmarks/bench_demo.py --summarise-only     # summarise an existing results/demo

Per rule it sums the seconds and takes the largest max_rss from Snakemake's own benchmark files and the jobs' own
records (each job's log line from vamoh.pipeline.jobclock, which also gives the seconds of measured work)
(results/{run}/benchmarks/**.tsv); the DAG's wall time is measured around the snakemake command.
Writes benchmarks/results/demo_dag.{csv,md} with the machine description.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402


def rule_of(path: Path, bench_root: Path) -> str:
    """results/{run}/benchmarks/<dataset>/<model>/seed0/train.tsv -> train; .../data/polymnist.tsv -> prepare_data."""
    rel = path.relative_to(bench_root)
    if rel.parts[0] == "data":
        return "prepare_data"
    if len(rel.parts) >= 3 and rel.parts[1] == "timing":
        return "timing"
    return path.stem


def summarise(run: str, workdir: Path = ROOT) -> tuple[list[dict], float, list[str]]:
    """Per rule: jobs, the sum of Snakemake's job seconds, the largest max RSS and, from each job's log line
    (vamoh.pipeline.jobclock), the seconds of measured work, data loading and MLflow; overhead = job - work. Also
    the GLIBC_TUNABLES values the jobs started with."""
    from vamoh.pipeline.jobclock import parse

    bench_root = workdir / "results" / run / "benchmarks"
    log_root = workdir / "logs" / run
    keys = ("seconds", "work_s", "data_s", "tracking_s", "process_s")
    allocators: set[str] = set()
    per_rule: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "clocked": 0, "max_rss_mb": 0.0, **{k: 0.0 for k in keys}})
    for tsv in bench_root.rglob("*.tsv"):
        with open(tsv) as f:
            row = list(csv.DictReader(f, delimiter="\t"))[-1]
        r = per_rule[rule_of(tsv, bench_root)]
        r["jobs"] += 1
        r["seconds"] += float(row["s"])
        rss = row.get("max_rss", "-")
        if rss not in ("-", "NA", ""):
            r["max_rss_mb"] = max(r["max_rss_mb"], float(rss))
        log = (log_root / tsv.relative_to(bench_root)).with_suffix(".log")
        clocked = parse(log.read_text()) if log.exists() else None
        if clocked is not None:
            r["clocked"] += 1
            for k in keys[1:]:
                r[k] += clocked.get(k) or 0.0
            # a job run in a child of the warm server (vamoh.pipeline.warm) is outside what Snakemake measures
            r["max_rss_mb"] = max(r["max_rss_mb"], clocked.get("max_rss_mb") or 0.0)
            if "glibc_tunables" in clocked:  # the allocator the job's process started with (config key malloc)
                allocators.add(clocked["glibc_tunables"] or "(unset: default malloc)")
    rows = [{"rule": k, **v} for k, v in sorted(per_rule.items(), key=lambda kv: -kv[1]["seconds"])]
    return rows, sum(r["seconds"] for r in rows), sorted(allocators)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="demo")
    ap.add_argument("--configfile", default="config/config.yaml")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--summarise-only", action="store_true")
    ap.add_argument("--wall-seconds", type=float, default=None, help="with --summarise-only: the measured wall time")
    ap.add_argument("--workdir", default=str(ROOT), help="with --summarise-only: the directory the run ran in (e.g. a fresh clone)")
    ap.add_argument("--note", default="", help="a line saying how the run was made (e.g. 'from a fresh clone, the README command')")
    args = ap.parse_args()
    wall = args.wall_seconds
    if not args.summarise_only:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--configfile", args.configfile], cwd=ROOT, check=True)
        wall = time.perf_counter() - t0
    rows, job_seconds, allocators = summarise(args.run, Path(args.workdir))
    machine = describe()
    if allocators:  # the jobs' own allocator (the Snakefile sets it from config key malloc), not this process's
        machine["glibc_tunables"] = " / ".join(allocators)
    out = ROOT / "benchmarks" / "results" / "demo_dag"
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["rule", "jobs", "seconds", "work_s", "data_s", "tracking_s", "process_s", "clocked", "max_rss_mb", *machine])
        w.writeheader()
        for r in rows:
            w.writerow({**r, **machine})
    peak = max(r["max_rss_mb"] for r in rows)
    work = sum(r["work_s"] for r in rows)
    clocked = sum(r["clocked"] for r in rows) == sum(r["jobs"] for r in rows)
    lines = [f"# Demo DAG ({args.configfile}, --cores {args.cores})", "",
             "Machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()), "", *([args.note, ""] if args.note else []),
             f"Wall time: {wall / 60:.1f} min" if wall else "Wall time: not measured", "",
             f"Sum of job times: {job_seconds / 60:.1f} min; largest single-job peak memory: {peak:.0f} MB "
             f"(at most {args.cores} jobs run at once).", ""]
    if clocked:
        lines += [f"Measured work: {work / 60:.1f} min; overhead (job time outside the measured work: the interpreter and "
                  f"imports, data loading, MLflow, Snakemake's start of the script): {(job_seconds - work) / 60:.1f} min, "
                  f"{100 * (job_seconds - work) / job_seconds:.0f}% of the job time."]
        if wall:
            idle = args.cores * wall - job_seconds
            lines += [f"Cores idle or in Snakemake itself (cores x wall - job time: DAG building, scheduling, jobs waiting "
                      f"on others): {idle / 60:.1f} core-min, {100 * idle / (args.cores * wall):.0f}% of {args.cores} x the wall time."]
        lines += [""]
    else:
        lines += ["Some jobs' logs have no jobclock line (a run older than vamoh.pipeline.jobclock): work and overhead "
                  "are not split.", ""]
    lines += ["| rule | jobs | seconds (sum) | share | work (s) | data (s) | MLflow (s) | overhead | largest max RSS (MB) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        split = (f"{r['work_s']:.0f} | {r['data_s']:.0f} | {r['tracking_s']:.0f} | {100 * (1 - r['work_s'] / r['seconds']):.0f}%"
                 if r["clocked"] == r["jobs"] and r["seconds"] > 0 else "- | - | - | -")
        lines.append(f"| {r['rule']} | {r['jobs']} | {r['seconds']:.0f} | {100 * r['seconds'] / job_seconds:.0f}% | {split} | "
                     f"{r['max_rss_mb']:.0f} |")
    timing = next((r["seconds"] for r in rows if r["rule"] == "timing"), 0.0)
    lines += ["", "overhead: the share of the rule's job time outside its measured work (for the report rules, the whole "
              "function is the work).",
              "", f"The timing rule: {timing:.0f} s of job time, {100 * timing / job_seconds:.0f}% of all job time"
              + (f", {100 * timing / wall:.0f}% of the wall time" if wall else "") + "."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
