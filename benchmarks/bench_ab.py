"""Training-step time of two commits side by side: the same cases, alternating between the two in fresh processes.

    python benchmarks/bench_ab.py --base ceb7424~1 --head HEAD               # the default cases, 3 rounds
    python benchmarks/bench_ab.py --base A --head B --cases vamoh-tiny-celebahq64 --rounds 5 --name my_change

Each commit is checked out into a temporary git worktree and imported from there (PYTHONPATH), so both run with the
same interpreter, packages and allocator setting. A round times every case once under each commit, in its own
process and in alternating order (base first in even rounds, head first in odd ones), so that drifts of a shared
machine fall on both. A measurement is the median of ``--steps`` all-points training steps (no point dropout, every
sample on the full grid) after two untimed ones. The result, with the machine, goes to
benchmarks/results/ab_<name>.{csv,md}: per case the median over rounds of each commit, and the per-round ratios
base / head with their range.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "--worker" not in sys.argv:  # a worker imports vamoh from its commit's worktree (PYTHONPATH), never from here
    sys.path.insert(0, str(ROOT))

# case -> (model, preset, overrides, dataset grid, threads): the demo's tiny presets at one thread (how the demo's
# jobs run) and VAMoH's paper presets at two (how bench_vamoh.py runs them)
CASES = {
    "vamoh-tiny-celebahq64": ("vamoh", "tiny", {"batch_size": 32}, "celebahq64", 1),
    "vamoh-shapes3d": ("vamoh", "shapes3d", {}, "shapes3d", 2),
    "vamoh-celebahq64": ("vamoh", "celebahq64", {}, "celebahq64", 2),
    "gasp-demo-celebahq64": ("gasp", "demo", {"batch_size": 32}, "celebahq64", 1),
    "functa-demo-celebahq64": ("functa", "tiny", {"width": 64, "depth": 4, "latent_dim": 32, "batch_size": 16}, "celebahq64", 1),
}
DEFAULT_CASES = ["vamoh-tiny-celebahq64", "vamoh-shapes3d", "vamoh-celebahq64"]


def worker(case: str, steps: int) -> dict:
    """Time ``steps`` all-points training steps of ``case`` with the vamoh package on sys.path (one commit's)."""
    import torch

    import vamoh
    from vamoh.interface import DataInfo, build_model
    from vamoh.pointcloud import PointCloudBatch, grid_coordinates

    model_name, preset, overrides, dataset, threads = CASES[case]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    info = DataInfo(2, 3, "discretized_logistic", (64, 64), "image")
    model = build_model(model_name, info, preset, overrides)
    B = model.config.batch_size
    coords = grid_coordinates(info.grid_shape)
    y = torch.round(torch.rand(B, coords.shape[0], 3) * 255) / 255
    batch = PointCloudBatch(coords[None].expand(B, -1, -1).contiguous(), y, torch.ones(B, coords.shape[0], dtype=torch.bool),
                            info.grid_shape, True, True)
    opts = model.make_optimizers()
    if hasattr(model, "dropout_alpha"):
        model.dropout_alpha = 0.0  # every point: the same work in every step
    times = []
    for step in range(steps + 2):
        t0 = time.perf_counter()
        out = model.training_step(batch, opts, step, 10**6)  # epoch past any warm-up: VAMoH's flow prior active
        float(out["loss"])
        times.append(time.perf_counter() - t0)
    return {"case": case, "source": str(Path(vamoh.__file__).parents[1]), "batch": B, "threads": threads,
            "seconds_per_step": statistics.median(times[2:]), "steps": steps}


def measure(tree: Path, case: str, steps: int) -> dict:
    from vamoh.pipeline.runconfig import TUNED_GLIBC  # this checkout's (the parent process's), not the worktree's

    env = {**os.environ, "PYTHONPATH": str(tree), "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES", TUNED_GLIBC)}
    done = subprocess.run([sys.executable, __file__, "--worker", case, "--steps", str(steps)], cwd=tempfile.gettempdir(),
                          env=env, capture_output=True, text=True)
    line = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    if done.returncode or not line:
        raise SystemExit(f"{case} under {tree} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    row = json.loads(line[0][7:])
    if Path(row["source"]).resolve() != tree.resolve():
        raise SystemExit(f"{case}: imported vamoh from {row['source']}, not from {tree} (an installed copy shadows PYTHONPATH?)")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="the commit before the change (any git revision)")
    ap.add_argument("--head", default="HEAD", help="the commit with the change")
    ap.add_argument("--cases", nargs="*", default=DEFAULT_CASES, choices=list(CASES))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per measurement (median)")
    ap.add_argument("--name", default="change", help="results go to benchmarks/results/ab_<name>.{csv,md}")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.steps)))
        return
    if not args.base:
        ap.error("--base is required")
    revs = {}
    for label, rev in (("base", args.base), ("head", args.head)):
        done = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"--{label} {rev!r}: not a revision of {ROOT} ({done.stderr.strip()})")
        revs[label] = done.stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench_ab_") as tmp:
        trees = {}
        for label, rev in revs.items():
            trees[label] = Path(tmp) / label
            subprocess.run(["git", "worktree", "add", "--detach", "-q", str(trees[label]), rev], cwd=ROOT, check=True)
        try:
            rows = []
            for r in range(args.rounds):
                order = ("base", "head") if r % 2 == 0 else ("head", "base")
                for case in args.cases:
                    for label in order:
                        row = measure(trees[label], case, args.steps)
                        row.update(round=r, commit=revs[label], side=label)
                        rows.append(row)
                        print(f"round {r} {case} {label} {revs[label]}: {row['seconds_per_step'] * 1e3:.1f} ms/step", flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    write(rows, revs, args)


def write(rows: list[dict], revs: dict[str, str], args: argparse.Namespace) -> None:
    from benchmarks.machine import describe
    from vamoh.pipeline.runconfig import TUNED_GLIBC

    machine = describe()
    machine["glibc_tunables"] = os.environ.get("GLIBC_TUNABLES", TUNED_GLIBC)
    out = ROOT / "benchmarks" / "results" / f"ab_{args.name}"
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*rows[0].keys(), *machine])
        w.writeheader()
        for row in rows:
            w.writerow({**row, **machine})
    lines = [f"# A/B: {revs['base']} (base) against {revs['head']} (head)", "",
             "Machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()), "",
             f"`python benchmarks/bench_ab.py --base {args.base} --head {args.head} --rounds {args.rounds} --steps {args.steps}`: "
             f"every case once per commit per round, in fresh processes, alternating which commit goes first; each "
             f"measurement the median of {args.steps} all-points training steps after two untimed ones.", "",
             "| case | threads | batch | base ms/step (median of rounds) | head ms/step | base / head (median of rounds) | range over rounds |",
             "|---|---|---|---|---|---|---|"]
    for case in args.cases:
        base = {r["round"]: r["seconds_per_step"] for r in rows if r["case"] == case and r["side"] == "base"}
        head = {r["round"]: r["seconds_per_step"] for r in rows if r["case"] == case and r["side"] == "head"}
        ratios = [base[k] / head[k] for k in base if k in head]
        first = next(r for r in rows if r["case"] == case)
        lines.append(f"| {case} | {first['threads']} | {first['batch']} | {1e3 * statistics.median(base.values()):.1f} | "
                     f"{1e3 * statistics.median(head.values()):.1f} | {statistics.median(ratios):.2f} | "
                     f"{min(ratios):.2f}-{max(ratios):.2f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
