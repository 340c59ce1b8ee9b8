"""VAMoH speed and memory at each Table 3 preset, beside the machine's measured matmul peaks.

For every variant (preset x compute dtype x allocator, optionally micro-batched), in its own process
(so peak memory is the variant's own):
  - training-step throughput (samples/s) with the flow prior active (after warm-up), with point
    dropout as in training and with every point kept (the worst case), median over timed steps;
  - peak resident memory of the process over the training steps (ru_maxrss, read before anything else runs);
  - the decoder part of the step (hypernetworks, generators, categorical nets, likelihood)
    forward+backward, as FLOP/s and as a fraction of the measured fp32 matmul peak;
  - single-sample reconstruction latency of a full image/volume/field (median of 50 calls).
Results: benchmarks/results/vamoh.csv and .md, with the machine and allocator of every row.

    python benchmarks/bench_vamoh.py                  # all presets, fp32, tuned glibc allocator
    python benchmarks/bench_vamoh.py --presets celebahq64 shapes3d --dtypes bfloat16 \
        --allocators tuned jemalloc --append          # add mixed-precision rows to the same table
    python benchmarks/bench_vamoh.py --presets polymnist --steps 3

Allocators: 'tuned' = glibc with GLIBC_TUNABLES below (no mmap, no trim: no page faults after
warm-up); 'default' = glibc as shipped; 'jemalloc' = LD_PRELOAD of libjemalloc.so.2 (Debian/Ubuntu
package libjemalloc2, conda-forge package jemalloc) with JEMALLOC_CONF below.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe, matmul_peak_gflops  # noqa: E402
from vamoh.interface import DataInfo, build_model  # noqa: E402
from vamoh.pointcloud import PointCloudBatch, query_grid  # noqa: E402

TUNED_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"
# retain freed pages (no decay): like the tuned glibc setting, no page faults after warm-up
JEMALLOC_CONF = "background_thread:true,metadata_thp:auto,dirty_decay_ms:-1,muzzy_decay_ms:-1"
JEMALLOC_PATHS = ["/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
                  "/usr/lib64/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so.2"]
PRESET_DATA = {
    "celebahq64": DataInfo(2, 3, "discretized_logistic", (64, 64), "image"),
    "shapes3d": DataInfo(2, 3, "discretized_logistic", (64, 64), "image"),
    "polymnist": DataInfo(2, 3, "discretized_logistic", (28, 28), "image"),
    "shapenet": DataInfo(3, 1, "bernoulli", (32, 32, 32), "voxels"),
    "era5": DataInfo(3, 1, "continuous_bernoulli", (46, 90), "field"),
}
TARGETS = {  # issue targets on two CPU cores
    ("celebahq64", "samples_per_s"): 25, ("shapes3d", "samples_per_s"): 90,
    ("celebahq64", "recon_ms"): 50, ("shapes3d", "recon_ms"): 15, ("polymnist", "recon_ms"): 2,
    ("celebahq64", "peak_gb"): 8,
}


def coords_for(info: DataInfo) -> torch.Tensor:
    return query_grid(info.grid_shape, 1, sphere=info.kind == "field")[0]


def make_batch(info: DataInfo, B: int, points: int | None) -> PointCloudBatch:
    coords = coords_for(info)
    if points is not None:
        coords = coords[torch.randperm(len(coords))[:points]]
    D = len(coords)
    y = torch.rand(B, D, info.feature_dim)
    if info.likelihood == "discretized_logistic":
        y = torch.round(y * 255) / 255
    elif info.likelihood == "bernoulli":
        y = (y > 0.8).float()
    return PointCloudBatch(coords[None].expand(B, -1, -1), y, torch.ones(B, D, dtype=torch.bool), () if points else info.grid_shape)


def decoder_flops(model, B: int, D: int) -> float:
    """Forward matmul FLOPs of the decoder part; a step's fwd+bwd is counted as 3x (standard estimate)."""
    c, K = model.config, model.config.K
    dims = model.layout.dims
    hyper_dims = [c.dim_z, *c.hypernet_hidden, model.layout.num_params]
    hyper = B * K * sum(a * b for a, b in zip(hyper_dims[:-1], hyper_dims[1:]))
    gen = B * K * D * sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    R = model.rff.out_dim
    cat_dims = [R + c.dim_z, *c.categorical_hidden, K]
    cat = 2 * B * D * sum(a * b for a, b in zip(cat_dims[:-1], cat_dims[1:]))
    return 2.0 * (hyper + gen + cat)


def timed(fn, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def worker(preset: str, steps: int, dtype: str, microbatch: int | None) -> dict:
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    info = PRESET_DATA[preset]
    model = build_model("vamoh", info, preset, {"compute_dtype": dtype, "microbatch_size": microbatch})
    c = model.config
    B = c.batch_size
    points = 4096 if info.kind == "voxels" else None
    batch = make_batch(info, B, points)
    opts = model.make_optimizers()
    epoch = c.warmup_epochs  # flow prior active
    row = {"preset": preset, "compute_dtype": dtype, "microbatch": microbatch or B, "batch": B, "points": batch.num_points,
           "K": c.K, "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2), "timed_steps": steps}
    # 4 untimed steps: point dropout changes the shapes every step, and the allocator needs a few
    # steps to hold blocks of every size (the first steps pay page faults, not arithmetic)
    step_times = timed(lambda: model.training_step(batch, opts, 0, epoch), steps, 4)
    row["samples_per_s"] = B / statistics.median(step_times)
    alpha = model.dropout_alpha
    model.dropout_alpha = 0.0
    full_times = timed(lambda: model.training_step(batch, opts, 0, epoch), max(2, steps // 2), 1)
    model.dropout_alpha = alpha
    row["samples_per_s_all_points"] = B / statistics.median(full_times)
    row["step_s_all_points"] = statistics.median(full_times)
    # the target is the training step's memory: read the high-water mark before anything else runs
    row["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    # decoder part alone, all points, forward + backward (one micro-batch's worth when micro-batched)
    Bd = microbatch or B
    z = torch.randn(Bd, c.dim_z, requires_grad=True)
    part = batch.samples(0, Bd)
    rff = model._shared_rff(part.coords)

    def decoder_step():
        h = model.decode(z, rff)
        log_px = model.likelihood.log_prob(h, part.features[:, :, None, :].expand_as(h))
        log_q = model.posterior_c(rff, z, part.features)
        log_p = model.prior_c(rff, z)
        loss = -((log_q.exp() * log_px).sum() - (log_q.exp() * (log_q - log_p)).sum())
        loss.backward()

    dec = statistics.median(timed(decoder_step, max(2, steps // 2), 1)) * (B / Bd)
    row["decoder_s"] = dec
    row["decoder_gflop_per_step"] = 3 * decoder_flops(model, B, batch.num_points) / 1e9
    row["decoder_gflops"] = row["decoder_gflop_per_step"] / dec
    row["decoder_share_of_step"] = dec / statistics.median(full_times)
    # single-sample reconstruction of a full image / volume / field
    model.eval()
    one = make_batch(info, 1, None)
    row["recon_ms"] = 1000 * statistics.median(timed(lambda: model.reconstruct(one), 50, 5))
    # single-sample latency is bound by dispatch overhead or memory bandwidth; time it at 1 thread as well
    torch.set_num_threads(1)
    row["recon_ms_1thread"] = 1000 * statistics.median(timed(lambda: model.reconstruct(one), 50, 5))
    torch.set_num_threads(threads)
    # data loading next to training: the stand-in loader's batches/s at the same batch size (issue 3)
    from benchmarks.bench_data import loader_batches_per_second

    loader = loader_batches_per_second(preset, B, 20, cache_dir=ROOT / "results" / "bench_cache", threads=1)
    row["loader_batches_per_s"] = loader
    row["loader_over_train_steps"] = loader / (row["samples_per_s"] / B)
    return row


def allocator_env(name: str) -> tuple[dict, str]:
    """Environment for a worker with allocator ``name``, and the setting as recorded in the results."""
    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    env.pop("LD_PRELOAD", None)
    if name == "tuned":
        env["GLIBC_TUNABLES"] = TUNED_MALLOC
        return env, "glibc GLIBC_TUNABLES=" + TUNED_MALLOC
    if name == "default":
        return env, "glibc default"
    found = [p for p in JEMALLOC_PATHS + glob.glob(os.path.join(sys.prefix, "lib", "libjemalloc.so*")) if os.path.exists(p)]
    if not found:
        raise SystemExit("--allocators jemalloc: libjemalloc.so.2 not found (apt install libjemalloc2, or conda install jemalloc); "
                         f"looked in {JEMALLOC_PATHS} and {sys.prefix}/lib")
    env["LD_PRELOAD"] = found[0]
    env["MALLOC_CONF"] = JEMALLOC_CONF
    return env, f"jemalloc LD_PRELOAD={found[0]} MALLOC_CONF={JEMALLOC_CONF}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="*", default=list(PRESET_DATA))
    ap.add_argument("--dtypes", nargs="*", default=["float32"], choices=["float32", "bfloat16"], help="vamoh.compute_dtype values")
    ap.add_argument("--allocators", nargs="*", default=["tuned"], choices=["tuned", "default", "jemalloc"])
    ap.add_argument("--microbatch", type=int, default=0, help="vamoh.microbatch_size (0: the whole batch)")
    ap.add_argument("--steps", type=int, default=12, help="timed training steps per variant (median reported)")
    ap.add_argument("--append", action="store_true", help="add the rows to the existing results instead of replacing them")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/vamoh"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.steps, args.dtype, args.microbatch or None)))
        return
    peak = matmul_peak_gflops()
    peak_bf16 = matmul_peak_gflops(dtype=torch.bfloat16)
    machine = describe()
    machine = {k: machine[k] for k in MACHINE_KEYS}  # allocator and date are recorded per row
    out = Path(args.out)
    rows = rows_from_csv(out.with_suffix(".csv"))[0] if args.append and out.with_suffix(".csv").exists() else []
    for alloc in args.allocators:
        env, setting = allocator_env(alloc)
        for dtype in args.dtypes:
            for preset in args.presets:
                print(f"[{alloc}, {dtype}, microbatch {args.microbatch or 'none'}] {preset} ...", flush=True)
                cmd = [sys.executable, __file__, "--worker", preset, "--steps", str(args.steps), "--dtype", dtype,
                       "--microbatch", str(args.microbatch)]
                res = subprocess.run(cmd, env=env, capture_output=True, text=True)
                line = [l for l in res.stdout.splitlines() if l.startswith("RESULT ")]
                if res.returncode or not line:
                    print(res.stderr[-3000:])
                    raise SystemExit(f"{preset} failed")
                row = json.loads(line[0][7:])
                row["allocator"] = setting
                row["matmul_peak_gflops"] = peak
                row["matmul_peak_gflops_bf16"] = peak_bf16
                row["decoder_pct_of_peak"] = 100 * row["decoder_gflops"] / peak
                # the bound: the decoder's FLOPs alone at 100% of the measured fp32 peak, every point kept
                row["floor_samples_per_s"] = row["batch"] / (row["decoder_gflop_per_step"] / peak)
                row["date"] = time.strftime("%Y-%m-%d %H:%M")
                rows.append(row)
                print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
                write(rows, machine, out)


MACHINE_KEYS = ("cpu", "cpu_threads", "torch", "device")
TARGET_TEXT = {"samples_per_s": "training throughput, samples/s (>=)", "peak_gb": "peak memory, GB (<=)",
               "recon_ms": "1-sample reconstruction, ms (<=)"}


def rows_from_csv(path: Path) -> tuple[list[dict], dict]:
    """Rows and machine description back from a results CSV (to rewrite the Markdown without rerunning)."""
    import csv

    with open(path) as f:
        raw = list(csv.DictReader(f))
    rows, machine = [], {k: raw[0][k] for k in MACHINE_KEYS if k in raw[0]}
    for r in raw:
        row = {}
        for k, v in r.items():
            if k in MACHINE_KEYS or v in ("", None):
                continue
            try:
                row[k] = int(v) if v.isdigit() else float(v)
            except ValueError:
                row[k] = v
        rows.append(row)
    return rows, machine


def _alloc(row: dict) -> str:
    a = str(row.get("allocator", ""))
    return "jemalloc" if "jemalloc" in a else "glibc tuned" if "mmap_max" in a else "glibc default"


def _variant(row: dict) -> str:
    mb = int(row.get("microbatch", row["batch"]))
    return f"{row.get('compute_dtype', 'float32')}, {_alloc(row)}" + (f", micro-batch {mb}" if mb < row["batch"] else "")


def _meets(key: str, value: float, target: float) -> bool:
    return value >= target if key == "samples_per_s" else value <= target


def write(rows: list[dict], machine: dict, out: Path) -> None:
    import csv

    out.parent.mkdir(parents=True, exist_ok=True)
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys + list(machine), restval="")
        w.writeheader()
        for r in rows:
            w.writerow({**r, **machine})
    last = rows[-1]
    lines = [
        "# VAMoH benchmark (Table 3 presets, flow prior active)", "",
        "Machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()), "",
        f"Measured matmul peak (2048x2048, latest run): fp32 {last['matmul_peak_gflops']:.0f} GFLOP/s, "
        f"bf16 {last.get('matmul_peak_gflops_bf16', float('nan')):.0f} GFLOP/s. Every row records its own run's peaks in the CSV.", "",
        "Allocators: 'glibc tuned' = GLIBC_TUNABLES=" + TUNED_MALLOC + "; 'jemalloc' = LD_PRELOAD=libjemalloc.so.2 with "
        "MALLOC_CONF=" + JEMALLOC_CONF + ". Each row ran in its own process; the CSV has the exact setting.", "",
        "Training throughput is the median over timed steps with point dropout as in training (after 4 untimed steps); "
        "'all points' keeps every point (the worst case). Peak memory is the process's high-water mark over those steps. "
        "`float32` is the paper's arithmetic; `bfloat16` is `vamoh.compute_dtype: bfloat16` (mixed precision: parameters, "
        "gradients, Adam, the generators' output layer, likelihood and KLs stay float32).", "",
        "## Issue targets (two CPU cores)", "",
        "| target | preset | value | best variant | met | best float32 value |", "|---|---|---|---|---|---|",
    ]
    for (preset, key), target in TARGETS.items():
        cand = [r for r in rows if r["preset"] == preset and key in r]
        if not cand:
            continue
        pick = max if key == "samples_per_s" else min
        best = pick(cand, key=lambda r: r[key])
        fp32 = [r for r in cand if r.get("compute_dtype", "float32") == "float32"]
        best32 = f"{pick(r[key] for r in fp32):.1f}" if fp32 else ""
        # the memory target is for the same configuration as the throughput target: report the fastest
        # variant's memory next to the smallest
        lines.append(f"| {TARGET_TEXT[key]} {target} | {preset} | {best[key]:.1f} | {_variant(best)} | "
                     f"{'yes' if _meets(key, best[key], target) else 'no'} | {best32} |")
    longest: dict[str, dict] = {}  # per CelebA-HQ variant, its longest run (memory only grows with steps)
    for r in rows:
        v = _variant(r)
        if r["preset"] == "celebahq64" and int(r.get("timed_steps", 0)) >= int(longest.get(v, {}).get("timed_steps", -1)):
            longest[v] = r
    both = [r for r in longest.values() if r["samples_per_s"] >= 25 and r["peak_gb"] <= 8]
    lines += ["", "CelebA-HQ variants meeting the throughput and the memory target together, each judged on its longest run: "
              + ("; ".join(f"{_variant(r)} ({r['samples_per_s']:.1f} samples/s, {r['peak_gb']:.2f} GB)" for r in both) or "none") + ".",
              "", "Peak memory under point dropout depends on how long the run is: every step has other shapes, and an "
              "allocator that fragments keeps growing. The same variants timed over more steps (untimed warm-up and the "
              "all-points steps come on top):", "",
              "| preset | variant | timed steps | peak GB |", "|---|---|---|---|"]
    long_keys = {(r["preset"], _variant(r)) for r in rows if int(r.get("timed_steps", 0)) >= 40}
    for r in rows:
        if (r["preset"], _variant(r)) in long_keys and "timed_steps" in r:
            lines.append(f"| {r['preset']} | {_variant(r)} | {r['timed_steps']} | {r['peak_gb']:.2f} |")
    lines += ["", "## Every row", "",
              "| preset | variant | batch | points | timed steps | samples/s (dropout) | samples/s (all points) | peak GB | decoder GFLOP/s | "
              "% of fp32 peak | decoder share of step | recon ms (2 threads / 1 thread) | loader / train steps | date |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {_variant(r)} | {r['batch']} | {r['points']} | {r.get('timed_steps', '')} | {r['samples_per_s']:.1f} | "
            f"{r['samples_per_s_all_points']:.1f} | {r['peak_gb']:.2f} | {r['decoder_gflops']:.0f} | {r['decoder_pct_of_peak']:.0f}% | "
            f"{100 * r['decoder_share_of_step']:.0f}% | {r['recon_ms']:.1f} / {r['recon_ms_1thread']:.1f} | "
            f"{r['loader_over_train_steps']:.0f}x | {r.get('date', '')} |")
    lines += ["", "## What bounds each figure", "",
              "`fp32 ceiling` = batch / (decoder FLOPs of an all-points step / measured fp32 matmul peak): the throughput if the "
              "decoder ran at 100% of the fp32 peak and everything else (encoder, Adam) were free. A target above it cannot be met "
              "in fp32 on this machine, whatever the implementation; mixed precision moves the ceiling to the bf16 peak.", "",
              "| preset | decoder GFLOP per step (fwd+bwd) | fp32 ceiling (samples/s) | best float32 measured (all points) |", "|---|---|---|---|"]
    seen = set()
    for r in rows:
        if r["preset"] in seen:
            continue
        seen.add(r["preset"])
        fp32 = [x["samples_per_s_all_points"] for x in rows if x["preset"] == r["preset"] and x.get("compute_dtype", "float32") == "float32"]
        lines.append(f"| {r['preset']} | {r['decoder_gflop_per_step']:.0f} | {r['floor_samples_per_s']:.1f} | "
                     f"{max(fp32) if fp32 else float('nan'):.1f} |")
    lines += ["", "Single-sample reconstruction is bound by memory bandwidth, not FLOPs: every call streams all "
              "hypernetwork weights (CelebA-HQ: 10 x 512 x 24,963 of the last layers, 511 MB in float32, 254 MB in bfloat16, "
              "whose cast copy is kept between no-grad calls), so at B = 1 its latency follows the VM's memory bandwidth, "
              "which varies from run to run here. Batched reconstruction amortises that read over the batch (Tables 2 and 5 report both)."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
