"""VAMoH speed and memory at each Table 3 preset, beside the machine's measured matmul peaks.

For every variant (preset x compute dtype x allocator, optionally micro-batched), in its own process
(so peak memory is the variant's own):
  - training-step throughput (samples/s) with the flow prior active (after warm-up), with point
    dropout as in training and with every point kept (the worst case), median over timed steps;
  - peak resident memory of the process over the training steps (ru_maxrss, read before anything else runs);
  - the exact matmul FLOPs of an all-points step, forward + backward, with its encoder and decoder
    parts (benchmarks/flops.py), the step's FLOP/s and the fp32 floor (those FLOPs at the measured
    fp32 matmul peak); the decoder part (hypernetworks, generators, categorical nets, likelihood)
    timed alone, as FLOP/s and as a fraction of that peak;
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
import dataclasses
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

from benchmarks.flops import vamoh_step_flops  # noqa: E402
from benchmarks.machine import describe, matmul_peak_gflops, profile_shares, read_results_csv  # noqa: E402
from vamoh.interface import DataInfo, build_model  # noqa: E402
from vamoh.model import PRESETS  # noqa: E402
from vamoh.pointcloud import PointCloudBatch, query_grid  # noqa: E402

from vamoh.pipeline.runconfig import TUNED_GLIBC as TUNED_MALLOC  # noqa: E402  (the config key malloc: tuned)
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


def flop_fields(preset: str, batch: int, points: int, microbatch: int | None) -> dict:
    """Matmul GFLOP of one all-points training step (forward + backward), exact (benchmarks/flops.py), and its parts.

    The shared-coordinate step the benchmark runs: every sample on the same grid (or the same random
    voxels); ``microbatch`` (None or ``batch``: the whole batch) repeats the products shared by a micro-batch.
    """
    info = PRESET_DATA[preset]
    config = dataclasses.replace(PRESETS[preset], microbatch_size=microbatch if microbatch and microbatch < batch else None)
    f = vamoh_step_flops(config, info, batch, points)
    return {"step_gflop": f.total / 1e9, "encoder_gflop": f.group("encoder") / 1e9, "decoder_gflop": f.group("decoder") / 1e9}


def complete_row(row: dict) -> dict:
    """The FLOP columns of a row, from its preset, batch, points and micro-batch and its timings and matmul peak.

    Computed here rather than trusted from the CSV, so rows measured before the count was corrected
    (decoder only, 3x its forward) are shown with the exact count against their own timings.
    """
    mb = int(row.get("microbatch") or row["batch"])
    row.update(flop_fields(row["preset"], int(row["batch"]), int(row["points"]), mb))
    row.pop("decoder_gflop_per_step", None)  # the old decoder-only 3x-forward estimate
    row["decoder_gflops"] = row["decoder_gflop"] / row["decoder_s"]
    row["step_gflops_all_points"] = row["step_gflop"] / row["step_s_all_points"]
    peak = row.get("matmul_peak_gflops")
    if peak:
        row["decoder_pct_of_peak"] = 100 * row["decoder_gflops"] / peak
        row["step_pct_of_peak"] = 100 * row["step_gflops_all_points"] / peak
        # the floor: every matmul FLOP of an all-points step at 100% of the measured fp32 peak, nothing else
        row["floor_step_s"] = row["step_gflop"] / peak
        row["floor_samples_per_s"] = row["batch"] / row["floor_step_s"]
    return row


def timed(fn, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def worker(preset: str, steps: int, dtype: str, microbatch: int | None, profile_steps: int = 2) -> dict:
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
    row["samples_per_s_all_points"] = B / statistics.median(full_times)
    row["step_s_all_points"] = statistics.median(full_times)
    if profile_steps:  # where an all-points step's time goes, by operator (after the timings, so they are not slowed)
        row["profile"] = profile_shares(lambda: model.training_step(batch, opts, 0, epoch), profile_steps)
    model.dropout_alpha = alpha
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
    ap.add_argument("--profile-steps", type=int, default=2, help="all-points steps profiled by operator after the timings (0: none)")
    ap.add_argument("--append", action="store_true", help="add the rows to the existing results instead of replacing them")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/vamoh"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.steps, args.dtype, args.microbatch or None, args.profile_steps)))
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
                       "--microbatch", str(args.microbatch), "--profile-steps", str(args.profile_steps)]
                res = subprocess.run(cmd, env=env, capture_output=True, text=True)
                line = [l for l in res.stdout.splitlines() if l.startswith("RESULT ")]
                if res.returncode or not line:
                    print(res.stderr[-3000:])
                    raise SystemExit(f"{preset} failed")
                row = json.loads(line[0][7:])
                row["allocator"] = setting
                row["matmul_peak_gflops"] = peak
                row["matmul_peak_gflops_bf16"] = peak_bf16
                complete_row(row)  # exact matmul FLOPs of the step, its encoder and decoder parts, and the fp32 floor
                row["date"] = time.strftime("%Y-%m-%d %H:%M")
                # other processes on a shared machine slow every variant: the 1-minute load average after the variant ran
                row["load_average_1min"] = round(os.getloadavg()[0], 2)
                rows.append(row)
                print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
                write(rows, machine, out)


MACHINE_KEYS = ("cpu", "cpu_isa", "cpu_threads", "torch", "device")
TARGET_TEXT = {"samples_per_s": "training throughput, samples/s (>=)", "peak_gb": "peak memory, GB (<=)",
               "recon_ms": "1-sample reconstruction, ms (<=)"}


def rows_from_csv(path: Path) -> tuple[list[dict], dict]:
    """Rows and machine description back from a results CSV (to rewrite the Markdown without rerunning)."""
    return read_results_csv(path, lambda k: k if k in MACHINE_KEYS else None)


def _alloc(row: dict) -> str:
    a = str(row.get("allocator", ""))
    return "jemalloc" if "jemalloc" in a else "glibc tuned" if "mmap_max" in a else "glibc default"


def _variant(row: dict) -> str:
    mb = int(row.get("microbatch", row["batch"]))
    return f"{row.get('compute_dtype', 'float32')}, {_alloc(row)}" + (f", micro-batch {mb}" if mb < row["batch"] else "")


def _span(rows: list[dict], key: str) -> str:
    vals = sorted(float(r[key]) for r in rows if r.get(key))
    if not vals:
        return "not measured"
    return f"{vals[0]:.0f}" if round(vals[0]) == round(vals[-1]) else f"{vals[0]:.0f}-{vals[-1]:.0f}"


def _bf16_pct(row: dict) -> str:
    """A bfloat16 row's step FLOP/s as a share of the bf16 matmul peak (blank for float32 rows)."""
    if row.get("compute_dtype") != "bfloat16" or not row.get("matmul_peak_gflops_bf16"):
        return ""
    return f"{100 * row['step_gflops_all_points'] / float(row['matmul_peak_gflops_bf16']):.0f}%"


def _meets(key: str, value: float, target: float) -> bool:
    return value >= target if key == "samples_per_s" else value <= target


def write(rows: list[dict], machine: dict, out: Path) -> None:
    import csv

    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [complete_row(r) for r in rows]
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
        f"Measured matmul peak (2048x2048, 2 threads), over the runs behind these rows: fp32 {_span(rows, 'matmul_peak_gflops')} GFLOP/s, "
        f"bf16 {_span(rows, 'matmul_peak_gflops_bf16')} GFLOP/s. Every row's floor uses its own run's peak (in the CSV).", "",
        "Each row is one run: medians over its timed steps (dropout: `timed steps`; all points: max(2, timed steps // 2) after "
        "one untimed step), no spread measured across runs.", "",
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
              "allocator that fragments keeps growing (on the EPYC, glibc-tuned bf16 at CelebA-HQ went from 9.7 GB after 12 "
              "steps to 16.0 GB after 40, vamoh_epyc_2026-11-21.md)."]
    long_keys = {(r["preset"], _variant(r)) for r in rows if int(r.get("timed_steps", 0)) >= 40}
    if long_keys:
        lines += [" The same variants timed over more steps (untimed warm-up and the all-points steps come on top):", "",
                  "| preset | variant | timed steps | peak GB |", "|---|---|---|---|"]
        for r in rows:
            if (r["preset"], _variant(r)) in long_keys and "timed_steps" in r:
                lines.append(f"| {r['preset']} | {_variant(r)} | {r['timed_steps']} | {r['peak_gb']:.2f} |")
    lines += ["", "## Every row", "",
              "| preset | variant | batch | points | timed steps | samples/s (dropout) | samples/s (all points) | peak GB | "
              "step GFLOP/s (all points) | step % of fp32 peak | step % of bf16 peak | decoder GFLOP/s | decoder % of fp32 peak | "
              "decoder share of step | recon ms (2 threads / 1 thread) | loader / train steps | date |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {_variant(r)} | {r['batch']} | {r['points']} | {r.get('timed_steps', '')} | {r['samples_per_s']:.1f} | "
            f"{r['samples_per_s_all_points']:.1f} | {r['peak_gb']:.2f} | {r['step_gflops_all_points']:.0f} | "
            f"{r.get('step_pct_of_peak', float('nan')):.0f}% | {_bf16_pct(r)} | {r['decoder_gflops']:.0f} | {r.get('decoder_pct_of_peak', float('nan')):.0f}% | "
            f"{100 * r['decoder_share_of_step']:.0f}% | {r['recon_ms']:.1f} / {r['recon_ms_1thread']:.1f} | "
            f"{r['loader_over_train_steps']:.0f}x | {r.get('date', '')} |")
    lines += ["", "## What bounds each figure", "",
              "`GFLOP per step` is the matmul work of one all-points training step, forward + backward, counted exactly from the "
              "configuration (`benchmarks/flops.py`, held equal to `torch.utils.flop_counter.FlopCounterMode` on real steps by "
              "`tests/test_flop_count.py`): every product autograd runs, a backward costing 1x its forward where the input needs "
              "no gradient (the encoder's first contraction and weight-net layer, the generators' and categorical nets' first "
              "layers on the Fourier features and data) and 2x elsewhere. Element-wise work, the planar flow's matrix-vector "
              "products and the optimiser are not in it. `fp32 floor` = that count / the measured fp32 matmul peak: the step "
              "time if every product ran at 100% of the peak and everything else were free; `fp32 ceiling` = batch / floor. "
              "A target above the ceiling cannot be met in fp32 on this machine, whatever the implementation; mixed precision "
              "moves it towards the bf16 peak.", "",
              "| preset | batch | points | GFLOP per step (encoder + decoder) | fp32 floor (s/step) | fp32 ceiling (samples/s) | "
              "best float32 measured (all points) | measured step / floor |", "|---|---|---|---|---|---|---|---|"]
    seen = set()
    for r in rows:
        if r["preset"] in seen:
            continue
        seen.add(r["preset"])
        same = [x for x in rows if x["preset"] == r["preset"]]
        whole = [x for x in same if int(x.get("microbatch") or x["batch"]) >= x["batch"]] or same  # the floor of the whole-batch step
        f = whole[0]
        fp32 = [x["samples_per_s_all_points"] for x in same if x.get("compute_dtype", "float32") == "float32"]
        best32 = max(fp32) if fp32 else float("nan")
        lines.append(f"| {f['preset']} | {f['batch']} | {f['points']} | {f['step_gflop']:.1f} ({f['encoder_gflop']:.1f} + "
                     f"{f['decoder_gflop']:.1f}) | {f.get('floor_step_s', float('nan')):.3g} | "
                     f"{f.get('floor_samples_per_s', float('nan')):.1f} | {best32:.1f} | "
                     f"{f.get('floor_samples_per_s', float('nan')) / best32:.2f}x |")
    profiled = [r for r in rows if r.get("profile")]
    if profiled:
        lines += ["", "## Where an all-points step's time goes", "",
                  "Self CPU time by operator over profiled all-points steps after the timings (torch.profiler; its own cost "
                  "inflates small operators). `mm`, `bmm`, `baddbmm`, `addmm` are the matmuls the floor counts; everything else "
                  "is outside it.", "", "| preset | variant | top operators (share of self time) |", "|---|---|---|"]
        for r in profiled:
            lines.append(f"| {r['preset']} | {_variant(r)} | {r['profile']} |")
    lines += ["", "Single-sample reconstruction is bound by memory bandwidth, not FLOPs: every call streams all "
              "hypernetwork weights (CelebA-HQ: 10 x 512 x 24,963 of the last layers, 511 MB in float32, 254 MB in bfloat16, "
              "whose cast copy is kept between no-grad calls), so at B = 1 its latency follows the VM's memory bandwidth, "
              "which varies from run to run here. Batched reconstruction amortises that read over the batch (Tables 2 and 5 report both)."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
