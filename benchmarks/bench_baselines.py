"""Speed and memory of the two baselines at their paper presets.

    python benchmarks/bench_baselines.py                 # all cases, writes benchmarks/results/baselines.{csv,md}
    python benchmarks/bench_baselines.py --case gasp_celebahq64 --steps 1

Cases (each in its own process, so its peak resident memory is its own):
  gasp_celebahq64   GASP training step (one D step + one G step), batch 64 on the 64x64 grid
  gasp_shapenet     GASP training step, batch 26 on 4096 random voxels of 32^3
  functa_celebahq64 Functa meta-training step (3 second-order inner steps), batch 16, on
                    --functa-points random pixels per image (default 256 of 4096; see the note)
  functa_recon3/10  Functa single-sample reconstruction of a 64x64 image, 3 and 10 inner steps

Throughput is samples per second of training steps after one warm-up step; latency is the median
of --repeats runs after one warm-up. Feature values are random: speed does not depend on them.
The machine, threads, torch version and the GLIBC_TUNABLES in force are recorded beside the numbers
(REFERENCE §6: glibc's malloc trimming changes CPU step times several-fold).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.flops import functa_reconstruction_flops, step_flops  # noqa: E402
from benchmarks.machine import cpu_isa, cpu_model, matmul_peak_gflops, profile_shares, read_results_csv  # noqa: E402
from vamoh.interface import DataInfo, build_model  # noqa: E402
from vamoh.pointcloud import PointCloudBatch, grid_coordinates  # noqa: E402

CASES = ("gasp_celebahq64", "gasp_shapenet", "functa_celebahq64", "functa_recon3", "functa_recon10")
IMAGE64 = DataInfo(2, 3, "discretized_logistic", (64, 64), "image")
VOXELS32 = DataInfo(3, 1, "bernoulli", (32, 32, 32), "voxels")
FIELDS = ("case", "model", "preset", "device", "batch_size", "points_per_sample", "steps_timed", "seconds_per_step",
          "samples_per_s", "latency_s", "peak_memory_mb", "parameters", "gflop", "gflop_parts", "fp32_floor_s",
          "floor_samples_per_s", "pct_of_fp32_peak", "matmul_peak_gflops", "note", "profile")
CASE_DATA = {"gasp_celebahq64": ("gasp", "celebahq64", IMAGE64), "gasp_shapenet": ("gasp", "shapenet", VOXELS32),
             "functa_celebahq64": ("functa", "celebahq64", IMAGE64), "functa_recon3": ("functa", "celebahq64", IMAGE64),
             "functa_recon10": ("functa", "celebahq64", IMAGE64)}
FLOP_GROUPS = {"gasp": ("generator", "discriminator"), "functa": ("inner", "outer")}


def flop_fields(row: dict) -> dict:
    """Exact matmul GFLOP of the case's timed unit (benchmarks/flops.py, checked against FlopCounterMode by
    tests/test_flop_count.py): one training step (forward + backward, every sample on the same points) or one
    single-sample reconstruction, with its main parts."""
    from vamoh.interface import get_model_class

    model, preset, info = CASE_DATA[row["case"]]
    config = get_model_class(model).presets[preset]
    D = int(row["points_per_sample"])
    if row["case"].startswith("functa_recon"):
        f = functa_reconstruction_flops(config, info, D, int(row["case"].removeprefix("functa_recon")))
        groups = ("inner", "decode")
    else:
        f = step_flops(model, config, info, int(row["batch_size"]), D)
        groups = FLOP_GROUPS[model]
    return {"gflop": f.total / 1e9, "gflop_parts": " + ".join(f"{g} {f.group(g) / 1e9:.1f}" for g in groups)}


def complete_row(row: dict, peak_gflops: float | None) -> dict:
    """The FLOP columns of a row and, with the measured fp32 matmul peak, its floor: those FLOPs at 100% of the peak."""
    row.update(flop_fields(row))
    if peak_gflops:
        row["matmul_peak_gflops"] = peak_gflops
        row["fp32_floor_s"] = row["gflop"] / peak_gflops
        measured = row.get("seconds_per_step") or row.get("latency_s")
        if row.get("seconds_per_step"):
            row["floor_samples_per_s"] = row["batch_size"] / row["fp32_floor_s"]
        if measured:
            row["pct_of_fp32_peak"] = 100 * row["fp32_floor_s"] / measured
    return row


def machine() -> dict[str, str]:
    cpu = cpu_model()
    info = {"cpu": cpu, "cpu_isa": cpu_isa(), "logical_cpus": str(os.cpu_count()), "torch_threads": str(torch.get_num_threads()),
            "torch": torch.__version__, "python": platform.python_version(),
            "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES", "unset"),
            # other processes on a shared machine slow every case; the 1-minute load average at the end shows it
            "load_average_1min": f"{os.getloadavg()[0]:.1f}"}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def random_batch(coords: torch.Tensor, B: int, f: int, grid_shape: tuple[int, ...], g: torch.Generator) -> PointCloudBatch:
    """B samples on the shared coords (D, c) with random features in [0, 1]."""
    D = coords.shape[0]
    return PointCloudBatch(coords[None].expand(B, -1, -1), torch.rand(B, D, f, generator=g), torch.ones(B, D, dtype=torch.bool), grid_shape)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def time_training(name: str, preset: str, info: DataInfo, points: int, steps: int, device: torch.device) -> dict:
    """Seconds per training step after a warm-up; every step sees a fresh random subset of ``points`` points."""
    torch.manual_seed(0)
    model = build_model(name, info, preset).to(device)
    opts = model.make_optimizers()
    B = model.config.batch_size
    grid = grid_coordinates(info.grid_shape)
    g = torch.Generator().manual_seed(0)
    seconds = []
    for step in range(steps + 1):
        keep = torch.randperm(grid.shape[0], generator=g)[:points] if points < grid.shape[0] else torch.arange(grid.shape[0])
        batch = random_batch(grid[keep], B, info.feature_dim, info.grid_shape if points >= grid.shape[0] else (), g).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        model.training_step(batch, opts, step)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step > 0:  # the first step pays one-off costs (allocations, neighbourhood plans)
            seconds.append(time.perf_counter() - t0)
    per_step = statistics.median(seconds)
    # where a step's time goes, by operator, after the timings (the profiler's cost does not enter them)
    profile = profile_shares(lambda: model.training_step(batch, opts, steps + 1), 1) if device.type == "cpu" else ""
    return {"model": name, "preset": preset, "batch_size": B, "points_per_sample": points, "steps_timed": steps,
            "seconds_per_step": per_step, "samples_per_s": B / per_step, "parameters": sum(p.numel() for p in model.parameters()),
            "profile": profile}


def time_reconstruction(inner_steps: int, repeats: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = build_model("functa", IMAGE64, "celebahq64").to(device)
    observed = random_batch(grid_coordinates((64, 64)), 1, 3, (64, 64), torch.Generator().manual_seed(0)).to(device)
    seconds = []
    for r in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        model.reconstruct(observed, steps=inner_steps)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if r > 0:
            seconds.append(time.perf_counter() - t0)
    return {"model": "functa", "preset": "celebahq64", "batch_size": 1, "points_per_sample": 4096, "steps_timed": repeats,
            "latency_s": statistics.median(seconds), "parameters": sum(p.numel() for p in model.parameters())}


def run_case(case: str, args: argparse.Namespace) -> dict:
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device))
    if case == "gasp_celebahq64":
        row = time_training("gasp", "celebahq64", IMAGE64, 4096, args.steps, device)
    elif case == "gasp_shapenet":
        row = time_training("gasp", "shapenet", VOXELS32, 4096, args.steps, device)
        row["note"] = "4096 random voxels per batch (GASP's voxel training)"
    elif case == "functa_celebahq64":
        row = time_training("functa", "celebahq64", IMAGE64, args.functa_points, args.steps, device)
        if args.functa_points < 4096:
            row["note"] = (f"{args.functa_points} of 4096 pixels per image: the full 64x64 batch of 16 needs ~30 GB and minutes per "
                           "step on CPU; cost grows ~linearly with points")
    else:
        row = time_reconstruction(int(case.removeprefix("functa_recon")), args.repeats, device)
        row["note"] = "single 64x64 sample, inner loop from zero on all 4096 points"
    row.update(case=case, device=str(device), peak_memory_mb=peak_memory_mb(device))
    return complete_row(row, None)


def write_results(rows: list[dict], info: dict[str, str], out: Path, peak_gflops: float | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = [complete_row(dict(r), peak_gflops or r.get("matmul_peak_gflops")) for r in rows]
    with open(out / "baselines.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS + tuple(f"machine_{k}" for k in info))
        w.writeheader()
        for r in rows:
            w.writerow({**{k: r.get(k, "") for k in FIELDS}, **{f"machine_{k}": v for k, v in info.items()}})

    def fmt(v, digits=3):
        return "" if v in ("", None) else (f"{v:.{digits}g}" if isinstance(v, float) else str(v))

    peak = peak_gflops or next((r["matmul_peak_gflops"] for r in rows if r.get("matmul_peak_gflops")), None)
    lines = ["# Baseline benchmarks", "", "Machine: " + ", ".join(f"{k} = `{v}`" for k, v in info.items()), "",
             f"Measured fp32 matmul peak (2048x2048): {fmt(peak, 4) if peak else 'not measured'} GFLOP/s.", "",
             "| case | device | batch | points/sample | s/step | samples/s | latency (s) | GFLOP (parts) | fp32 floor (s) | "
             "floor samples/s | % of fp32 peak | peak memory (MB) | parameters | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join([r["case"], r["device"], fmt(r["batch_size"]), fmt(r["points_per_sample"]), fmt(r.get("seconds_per_step")),
                                          fmt(r.get("samples_per_s")), fmt(r.get("latency_s")), f"{r['gflop']:.1f} ({r['gflop_parts']})",
                                          fmt(r.get("fp32_floor_s")), fmt(r.get("floor_samples_per_s")),
                                          f"{r['pct_of_fp32_peak']:.0f}%" if r.get("pct_of_fp32_peak") else "",
                                          f"{r['peak_memory_mb']:.0f}", fmt(r["parameters"]), r.get("note", "")]) + " |")
    lines += ["", "GFLOP: the matmul work of the timed unit (one training step, forward + backward; or one reconstruction), "
              "counted exactly from the configuration by `benchmarks/flops.py` and held equal to "
              "`torch.utils.flop_counter.FlopCounterMode` by `tests/test_flop_count.py`. GASP: generator (the D step's fakes "
              "without gradient, the G step's with) + discriminator (D(real) with the R1 penalty's double backward, D(fake), "
              "and D in the G step with frozen weights). Functa: inner (the second-order inner loop: its forwards, the "
              "gradients to z, and the outer backward through both) + outer (the final decode and its backward); a "
              "reconstruction: inner (first-order) + decode. `fp32 floor` = GFLOP / the measured fp32 matmul peak; "
              "`% of fp32 peak` = floor / measured time. Element-wise work and the optimiser are not counted.", "",
              "Peak memory: the case process's peak resident set on CPU (model, optimizer state and activations; "
              "includes ~0.3 GB of interpreter and torch), torch.cuda.max_memory_allocated on GPU.", ""]
    profiled = [r for r in rows if r.get("profile")]
    if profiled:
        lines += ["## Where a training step's time goes", "",
                  "Self CPU time by operator over one profiled step after the timings (torch.profiler; its own cost inflates "
                  "small operators). `mm`, `bmm`, `baddbmm`, `addmm` are the matmuls the floor counts.", "",
                  "| case | top operators (share of self time) |", "|---|---|"]
        lines += [f"| {r['case']} | {r['profile']} |" for r in profiled]
        lines.append("")
    lines += beside_vamoh(rows, out)
    (out / "baselines.md").write_text("\n".join(lines))


def beside_vamoh(rows: list[dict], out: Path) -> list[str]:
    """One table of training steps against their fp32 floors: these baseline rows and benchmarks/results/vamoh.csv's
    float32 whole-batch rows (bench_vamoh.py), when that file was measured on the same CPU."""
    vamoh_csv = out / "vamoh.csv"
    train = [r for r in rows if r.get("seconds_per_step") and r.get("fp32_floor_s")]
    if not vamoh_csv.exists() or not train:
        return []
    from benchmarks.bench_vamoh import rows_from_csv as vamoh_rows  # vamoh.csv's own reader (its machine columns)

    every, vmachine = vamoh_rows(vamoh_csv)
    vrows = [r for r in every if r.get("compute_dtype", "float32") == "float32"
             and "mmap_max" in str(r.get("allocator", "")) and r.get("microbatch") == r.get("batch")]
    if not vrows or vmachine.get("cpu") != cpu_model():
        return []
    lines = ["## Training steps against their floors, all three models", "",
             f"fp32, 2 threads, one CPU ({cpu_model()}); VAMoH's rows from `vamoh.csv` (all points, flow prior active). "
             "`x floor` = measured seconds per step / (the step's matmul FLOPs at the fp32 matmul peak that the row's run measured, "
             "given beside it). s/step: VAMoH the median of `max(2, steps // 2)` all-points steps after one untimed one, the "
             "baselines the median of their timed steps; one run each, no spread measured.", "",
             "| model | preset | batch | points | steps timed | s/step | fp32 peak (GFLOP/s) | fp32 floor (s) | x floor |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in vrows:
        step, floor = r["step_s_all_points"], r["floor_step_s"]
        timed = max(2, int(r["timed_steps"]) // 2)
        lines.append(f"| vamoh | {r['preset']} | {r['batch']} | {r['points']} | {timed} | {step:.3g} | "
                     f"{r['matmul_peak_gflops']:.0f} | {floor:.3g} | {step / floor:.2f} |")
    for r in train:
        lines.append(f"| {r['model']} | {r['preset']} | {r['batch_size']} | {r['points_per_sample']} | {r['steps_timed']} | "
                     f"{r['seconds_per_step']:.3g} | {r['matmul_peak_gflops']:.0f} | {r['fp32_floor_s']:.3g} | "
                     f"{r['seconds_per_step'] / r['fp32_floor_s']:.2f} |")
    return lines + [""]


def rows_from_csv(path: Path) -> tuple[list[dict], dict[str, str]]:
    """The rows and the machine description (its ``machine_`` columns) of a results CSV, typed as a run returns them."""
    return read_results_csv(path, lambda k: k.removeprefix("machine_") if k.startswith("machine_") else None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", choices=CASES, help="run one case in this process and print its row as JSON")
    p.add_argument("--steps", type=int, default=2, help="timed training steps per case (after one warm-up)")
    p.add_argument("--repeats", type=int, default=3, help="timed reconstructions per case (after one warm-up)")
    p.add_argument("--functa-points", type=int, default=256, help="pixels per image in the Functa training case")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--rewrite", action="store_true", help="rewrite baselines.md from the existing baselines.csv (no timing)")
    args = p.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args)))
        return
    if args.rewrite:
        if not (args.out / "baselines.csv").is_file():
            raise SystemExit(f"--rewrite: {args.out / 'baselines.csv'} does not exist (run the benchmark first, or pass --out "
                             "the folder that holds it)")
        rows, info = rows_from_csv(args.out / "baselines.csv")
        write_results(rows, info, args.out)
        print((args.out / "baselines.md").read_text())
        return
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device))
    peak = matmul_peak_gflops(device)
    rows = []
    for case in CASES:
        cmd = [sys.executable, __file__, "--case", case, "--steps", str(args.steps), "--repeats", str(args.repeats),
               "--functa-points", str(args.functa_points), "--device", args.device]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"benchmark case {case} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{case}: {time.perf_counter() - t0:.0f} s wall", file=sys.stderr, flush=True)
    write_results(rows, machine(), args.out, peak)
    print((args.out / "baselines.md").read_text())


if __name__ == "__main__":
    main()
