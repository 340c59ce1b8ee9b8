"""VAMoH speed and memory at each Table 3 preset, beside the machine's measured fp32 matmul peak.

For every preset, in its own process (so peak memory is the preset's own):
  - training-step throughput (samples/s) with the flow prior active (after warm-up), with point
    dropout as in training and with every point kept (the worst case);
  - peak resident memory of the process;
  - the decoder part of the step (hypernetworks, generators, categorical nets, likelihood)
    forward+backward, as FLOP/s and as a fraction of the measured matmul peak;
  - single-sample reconstruction latency of a full image/volume/field.
Results: benchmarks/results/vamoh.csv and .md, with the machine and allocator setting.

    python benchmarks/bench_vamoh.py                  # all presets, tuned allocator
    python benchmarks/bench_vamoh.py --presets polymnist --steps 3
"""

from __future__ import annotations

import argparse
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
from vamoh.pointcloud import PointCloudBatch, grid_coordinates, sphere_coordinates  # noqa: E402

TUNED_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"
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
    if info.kind == "field":
        return sphere_coordinates(torch.linspace(90, -90, 46), torch.linspace(0, 356, 90))
    return grid_coordinates(info.grid_shape)


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


def worker(preset: str, steps: int) -> dict:
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    info = PRESET_DATA[preset]
    model = build_model("vamoh", info, preset)
    c = model.config
    B = c.batch_size
    points = 4096 if info.kind == "voxels" else None
    batch = make_batch(info, B, points)
    opts = model.make_optimizers()
    epoch = c.warmup_epochs  # flow prior active
    row = {"preset": preset, "batch": B, "points": batch.num_points, "K": c.K,
           "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2)}
    # 4 untimed steps: point dropout changes the shapes every step, and the allocator needs a few
    # steps to hold blocks of every size (the first steps pay page faults, not arithmetic)
    step_times = timed(lambda: model.training_step(batch, opts, 0, epoch), steps, 4)
    row["samples_per_s"] = B / statistics.median(step_times)
    alpha = model.dropout_alpha
    model.dropout_alpha = 0.0
    full_times = timed(lambda: model.training_step(batch, opts, 0, epoch), steps, 1)
    model.dropout_alpha = alpha
    row["samples_per_s_all_points"] = B / statistics.median(full_times)
    row["step_s_all_points"] = statistics.median(full_times)
    # decoder part alone, all points, forward + backward
    z = torch.randn(B, c.dim_z, requires_grad=True)
    rff = model._shared_rff(batch.coords)

    def decoder_step():
        h = model.decode(z, rff)
        log_px = model.likelihood.log_prob(h, batch.features[:, :, None, :].expand_as(h))
        log_q = model.posterior_c(rff, z, batch.features)
        log_p = model.prior_c(rff, z)
        loss = -((log_q.exp() * log_px).sum() - (log_q.exp() * (log_q - log_p)).sum())
        loss.backward()

    dec = statistics.median(timed(decoder_step, max(2, steps // 2), 1))
    row["decoder_s"] = dec
    row["decoder_gflop_per_step"] = 3 * decoder_flops(model, B, batch.num_points) / 1e9
    row["decoder_gflops"] = row["decoder_gflop_per_step"] / dec
    row["decoder_share_of_step"] = dec / statistics.median(full_times)
    # single-sample reconstruction of a full image / volume / field
    model.eval()
    one = make_batch(info, 1, None)
    rec = timed(lambda: model.reconstruct(one), 20, 3)
    row["recon_ms"] = 1000 * statistics.median(rec)
    # single-sample latency is bound by dispatch overhead; time it at 1 thread as well and keep both
    torch.set_num_threads(1)
    row["recon_ms_1thread"] = 1000 * statistics.median(timed(lambda: model.reconstruct(one), 20, 3))
    torch.set_num_threads(threads)
    row["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    # data loading next to training: the stand-in loader's batches/s at the same batch size (issue 3)
    from benchmarks.bench_data import loader_batches_per_second

    loader = loader_batches_per_second(preset, B, 20, cache_dir=ROOT / "results" / "bench_cache", threads=1)
    row["loader_batches_per_s"] = loader
    row["loader_over_train_steps"] = loader / (row["samples_per_s"] / B)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="*", default=list(PRESET_DATA))
    ap.add_argument("--steps", type=int, default=4, help="timed training steps per preset")
    ap.add_argument("--allocator", choices=["tuned", "default", "both"], default="tuned")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/vamoh"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.steps)))
        return
    peak = matmul_peak_gflops()
    machine = describe()
    rows = []
    allocators = ["tuned", "default"] if args.allocator == "both" else [args.allocator]
    for alloc in allocators:
        env = dict(os.environ)
        if alloc == "tuned":
            env["GLIBC_TUNABLES"] = TUNED_MALLOC
        else:
            env.pop("GLIBC_TUNABLES", None)
        for preset in args.presets:
            print(f"[{alloc}] {preset} ...", flush=True)
            out = subprocess.run([sys.executable, __file__, "--worker", preset, "--steps", str(args.steps)],
                                 env=env, capture_output=True, text=True)
            line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
            if out.returncode or not line:
                print(out.stderr[-3000:])
                raise SystemExit(f"{preset} failed")
            row = json.loads(line[0][7:])
            row["allocator"] = env.get("GLIBC_TUNABLES", "default malloc")
            row["matmul_peak_gflops"] = peak
            row["decoder_pct_of_peak"] = 100 * row["decoder_gflops"] / peak
            # the bound: the decoder's FLOPs alone at 100% of the measured peak, every point kept
            row["floor_samples_per_s"] = row["batch"] / (row["decoder_gflop_per_step"] / peak)
            rows.append(row)
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    write(rows, machine, Path(args.out))


def rows_from_csv(path: Path) -> tuple[list[dict], dict]:
    """Rows and machine description back from a results CSV (to rewrite the Markdown without rerunning)."""
    import csv

    with open(path) as f:
        raw = list(csv.DictReader(f))
    machine_keys = list(describe())
    rows, machine = [], {k: raw[0][k] for k in machine_keys if k in raw[0]}
    for r in raw:
        row = {}
        for k, v in r.items():
            if k in machine_keys:
                continue
            try:
                row[k] = int(v) if v.isdigit() else float(v)
            except ValueError:
                row[k] = v
        rows.append(row)
    return rows, machine


def write(rows: list[dict], machine: dict, out: Path) -> None:
    import csv

    out.parent.mkdir(parents=True, exist_ok=True)
    keys = list(rows[0])
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys + list(machine))
        w.writeheader()
        for r in rows:
            w.writerow({**r, **machine})
    lines = [
        "# VAMoH benchmark (Table 3 presets, flow prior active)", "",
        "Machine: " + ", ".join(f"{k}={v}" for k, v in machine.items() if k != "glibc_tunables"), "",
        "Allocator: per row (each preset runs in its own process); 'tuned' = GLIBC_TUNABLES=" + TUNED_MALLOC + ".", "",
        f"Measured fp32 matmul peak in the same run: {rows[0]['matmul_peak_gflops']:.0f} GFLOP/s.", "",
        "| preset | allocator | batch | points | samples/s (dropout) | samples/s (all points) | target | peak GB | decoder GFLOP/s | % of peak | decoder share of step | recon ms (1 sample, 2 threads / 1 thread) | target ms | loader batches/s | loader / train steps |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        alloc = "tuned" if "mmap_max" in r["allocator"] else "default"
        lines.append(
            f"| {r['preset']} | {alloc} | {r['batch']} | {r['points']} | {r['samples_per_s']:.1f} | {r['samples_per_s_all_points']:.1f} | "
            f"{TARGETS.get((r['preset'], 'samples_per_s'), '')} | {r['peak_gb']:.2f} | {r['decoder_gflops']:.0f} | {r['decoder_pct_of_peak']:.0f}% | "
            f"{100 * r['decoder_share_of_step']:.0f}% | {r['recon_ms']:.1f} / {r['recon_ms_1thread']:.1f} | {TARGETS.get((r['preset'], 'recon_ms'), '')} | "
            f"{r['loader_batches_per_s']:.0f} | {r['loader_over_train_steps']:.0f}x |")
    lines += ["", "## What bounds each figure", "",
              "`fp32 ceiling` = batch / (decoder FLOPs of an all-points step / measured matmul peak): the throughput if the "
              "decoder ran at 100% of peak and everything else were free. A target above it cannot be met in fp32 on this "
              "machine, whatever the implementation.", "",
              "| preset | decoder GFLOP per step (fwd+bwd) | fp32 ceiling (samples/s) | measured (all points) |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['preset']} | {r['decoder_gflop_per_step']:.0f} | {r['floor_samples_per_s']:.1f} | {r['samples_per_s_all_points']:.1f} |")
    lines += ["", "Single-sample reconstruction is bound by memory bandwidth, not FLOPs: every call streams all "
              "hypernetwork weights (CelebA-HQ: 10 x 512 x 24,963 floats of the last layers, 511 MB), so at B = 1 "
              "its latency is 511 MB / bandwidth (39-65 ms across runs on this VM, i.e. 8-13 GB/s). Batched "
              "reconstruction amortises that read over the batch (Tables 2 and 5 report both)."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
