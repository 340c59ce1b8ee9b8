"""GPU checks and benchmarks, for a machine with CUDA (run by benchmarks/gpu_check.sh; nothing here runs on CPU).

    python benchmarks/bench_gpu.py nosync                  # training steps of every model read nothing back (sync debug mode)
    python benchmarks/bench_gpu.py devices RESULTS_DIR     # every device recorded by a finished run is CUDA
    python benchmarks/bench_gpu.py vamoh                   # VAMoH at the CelebA-HQ preset: training and reconstruction
    python benchmarks/bench_gpu.py tables                  # Tables 2/5 at the paper architectures, every dataset

Writes benchmarks/results/gpu.md (appending one section per command) with the machine it ran on.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "gpu.md"


def machine() -> str:
    from vamoh.eval.timing import describe_device

    d = describe_device("cuda")
    return f"{d.get('gpu')} (CUDA {d.get('cuda_version')}), torch {d['torch_version']}, CPU {d['cpu']}"


def append(section: str) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "a") as f:
        f.write(section.rstrip() + "\n\n")
    print(section)


def devices(results: str) -> None:
    """Every number's recorded device of a finished run must be CUDA (the device rule, checked on a real GPU)."""
    root = Path(results)
    bad, seen = [], 0
    for path in [*root.glob("*/*/seed*/metrics.json"), *root.glob("*/timing/seed*/timing.json")]:
        dev = json.loads(path.read_text())["provenance"]["device"]
        seen += 1
        if not str(dev.get("device", "")).startswith("cuda") or "gpu" not in dev:
            bad.append(f"{path}: {dev.get('device')}")
    for path in root.glob("*/*/seed*/train.json"):
        seen += 1
        if not json.loads(path.read_text())["device"].startswith("cuda"):
            bad.append(str(path))
    append(f"## Device check of {results}\n\n{seen} outputs read; {len(bad)} not on CUDA. {machine()}\n" + "".join(f"- {b}\n" for b in bad))
    if bad or seen == 0:
        raise SystemExit(1)


def nosync() -> None:
    """Every model's training step on CUDA with torch's sync debug mode set to "error": any host synchronisation
    inside a step (a read-back, a blocking copy) raises. The CPU test suite proves the same on the 'meta' device
    (tests/test_no_sync.py); this is the check on real hardware. The split sits on the GPU, as the trainer puts it."""
    import numpy as np

    from vamoh.data.dataset import FunctionDataset
    from vamoh.data.registry import get_spec
    from vamoh.interface import available_models, build_model

    rows = ["| model | dataset | preset | steps | result |", "|---|---|---|---|---|"]
    failed = False
    cases = [(m, d, "tiny") for m in available_models() for d in ("polymnist", "shapenet")] + [("vamoh", "celebahq64", "celebahq64")]
    for name, dataset, preset in cases:
        spec = get_spec(dataset)
        shape = (64, *spec.grid_shape) + ((spec.feature_dim,) if spec.feature_dim > 1 else ())
        arr = np.random.default_rng(0).integers(0, 2 if spec.kind == "voxels" else 256, size=shape, dtype=np.uint8)
        data = FunctionDataset(spec, arr, is_standin=True, label="nosync", split="train").on("cuda")
        torch.manual_seed(0)
        model = build_model(name, data.info, preset).cuda()
        opts = model.make_optimizers()
        g = torch.Generator().manual_seed(0)
        bs = 16 if preset == "tiny" else 8
        epoch = getattr(model.config, "warmup_epochs", 0)
        model.training_step(data.train_batch(torch.arange(bs), g), opts, 0, epoch)  # lazy initialisation outside the check
        torch.cuda.synchronize()
        try:
            torch.cuda.set_sync_debug_mode("error")
            for i in range(1, 6):
                model.training_step(data.train_batch(torch.arange(i, i + bs) % 64, g), opts, i, epoch)
            result = "no synchronisation"
        except RuntimeError as err:
            failed = True
            result = "SYNCHRONISES: " + " ".join(str(err).split())[:200]
        finally:
            torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()
        rows.append(f"| {name} | {dataset} | {preset} | 5 | {result} |")
        del model, opts, data
        torch.cuda.empty_cache()
    append(f"## Training steps without host synchronisation on {machine()}\n\n" + "\n".join(rows))
    if failed:
        raise SystemExit(1)


def _sync() -> None:
    torch.cuda.synchronize()


def vamoh() -> None:
    """Training throughput and single-sample reconstruction of VAMoH at the CelebA-HQ preset (K = 10, 129.5M parameters)."""
    from vamoh.interface import DataInfo, build_model
    from vamoh.pointcloud import PointCloudBatch, grid_coordinates

    info = DataInfo(2, 3, "discretized_logistic", (64, 64), "image")
    rows = ["| compute dtype | samples/s (batch 64, flow active) | reconstruction ms (batch 1) | 2x super-reconstruction ms | peak GB |", "|---|---|---|---|---|"]
    for dtype in ("float32", "bfloat16"):
        torch.manual_seed(0)
        model = build_model("vamoh", info, "celebahq64", {"compute_dtype": dtype}).cuda()
        coords = grid_coordinates((64, 64)).cuda()
        y = torch.round(torch.rand(64, 4096, 3, device="cuda") * 255) / 255
        batch = PointCloudBatch(coords[None].expand(64, -1, -1), y, torch.ones(64, 4096, dtype=torch.bool, device="cuda"), (64, 64),
                                shared_coords=True, all_observed=True)  # as the trainer's batches: nothing read back per step
        opts = model.make_optimizers()
        torch.cuda.reset_peak_memory_stats()
        times = []
        for i in range(12):
            _sync()
            t = time.perf_counter()
            model.training_step(batch, opts, i, model.config.warmup_epochs)
            _sync()
            times.append(time.perf_counter() - t)
        sps = 64 / statistics.median(times[3:])
        peak = torch.cuda.max_memory_allocated() / 1024**3
        model.eval()
        one = batch.samples(0, 1)
        q2 = grid_coordinates((64, 64), 2).cuda()
        rec = []
        for query in (None, q2):
            ts = []
            for _ in range(30):
                _sync()
                t = time.perf_counter()
                model.reconstruct(one, query)
                _sync()
                ts.append(time.perf_counter() - t)
            rec.append(1000 * statistics.median(ts[5:]))
        rows.append(f"| {dtype} | {sps:.1f} | {rec[0]:.2f} | {rec[1]:.2f} | {peak:.2f} |")
        del model, opts
        torch.cuda.empty_cache()
    append(f"## VAMoH, CelebA-HQ preset, on {machine()}\n\n" + "\n".join(rows))


def tables(work: str = "/tmp/vamoh_gpu_tables") -> None:
    """Tables 2/5 at the paper architectures (untrained: speed does not depend on the weights), every dataset."""
    import yaml

    from vamoh import tracking
    from vamoh.eval.tidy import rows_from_timing, write_tidy
    from vamoh.pipeline import stages
    from vamoh.pipeline.runconfig import RunConfig
    from vamoh.report.render import to_markdown
    from vamoh.report.tables.timing import table2, table5

    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw.update(run="gpu_tables", device="cuda", models=["vamoh", "functa"], threads=4)
    raw["eval"] = {**raw.get("eval", {}), "timing_models": "paper", "timing_repeats": 100, "timing_warmup": 10,
                   "timing_batch_sizes": [1, 64], "timing_budget_s": 60}
    rc = RunConfig.from_dict(raw)
    work = Path(work)
    store = work / "tracking.json"  # the timing stage logs to the store this names, as in the workflow
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps({"uri": tracking.init_store(rc.tracking_uri), "experiment": rc.experiment}))
    rows = []
    for d in rc.datasets:
        record = work / "data" / f"{d}.json"
        stages.prepare_data(rc, d, record)
        out = work / d / "timing.json"
        stages.timing(rc, d, 0, record, {}, out, threads=4, tracking=store)
        rows += rows_from_timing(out)
    tidy = write_tidy(rows, work / "tidy.csv")
    append(f"## Tables 2 and 5 at the paper architectures on {machine()}\n\n{to_markdown(table2(tidy))}\n{to_markdown(table5(tidy))}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    {"nosync": nosync, "devices": lambda: devices(sys.argv[2]), "vamoh": vamoh, "tables": lambda: tables(*sys.argv[2:3])}[cmd]()
