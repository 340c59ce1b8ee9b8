"""Wall time and peak memory of a full evaluation of one (dataset, model): (PolyMNIST stand-in, VAMoH).

    python3 benchmarks/bench_eval.py            # demo (measured) + paper scale (measured pieces, extrapolated)
    python3 benchmarks/bench_eval.py --quick    # smaller demo, for a smoke run

Each scale runs in its own child process so that its peak RSS (``ru_maxrss``) is its own.

- demo: everything measured end to end on 28x28 stand-in images with an untrained VAMoH (polymnist
  preset; the cost of a forward pass does not depend on training): suite extractor training, real
  features (cold cache), 5 generated sets (sampling, features, FID, KID, PRC), reconstruction PSNR,
  completion PSNR, interleaved timing, atomic JSON writes.
- paper: PolyMNIST at paper scale (60,000 train / 10,000 test real images, 5 x 10,000 generated,
  10,000 test reconstructions). Per-image costs come from the demo run; PRC (quadratic in the set
  sizes) and KID (fixed subsets) are measured at full size (10,000 vs 10,000) and counted for the
  train split the same way (precision/recall compare equal-sized sets); Inception-v3 per-image cost is measured
  with randomly initialised weights of the right shape (the real file is not on this machine).
  Every extrapolated row says so.

Results: benchmarks/results/eval.csv and eval.md, with the machine description.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vamoh.eval import keys  # noqa: E402
from vamoh.eval.completion import evaluate_completion  # noqa: E402
from vamoh.eval.extractors import ExtractorConfig, save_extractor, train_extractor  # noqa: E402
from vamoh.eval.fid import FidelityScorer, RealSet, _prc_subset, model_image_sampler, set_seed, suite_spec  # noqa: E402
from vamoh.eval.io import metric_entry, write_metrics, write_timing  # noqa: E402
from vamoh.eval.recon import evaluate_reconstruction, features_to_images  # noqa: E402
from vamoh.eval.timing import describe_device, reconstruction_candidates, time_interleaved, timing_record  # noqa: E402
from vamoh.pointcloud import PointCloudBatch, from_grid, grid_coordinates  # noqa: E402

SIZE = 28
DEMO = dict(n_train=1000, n_test=200, num_samples=200, num_sets=5, extractor_epochs=5, n_recon=64, repeats=50)
QUICK = dict(n_train=200, n_test=64, num_samples=64, num_sets=5, extractor_epochs=1, n_recon=16, repeats=50)
PAPER = dict(n_train=60000, n_test=10000, num_samples=10000, num_sets=5, extractor_epochs=10, n_recon=10000, n_completion=1000, extractor_cap=10000)


def standin_images(n: int, seed: int) -> np.ndarray:
    """uint8 (n, 28, 28, 3): random crops of scikit-image's bundled photos and textures, downsampled 4x."""
    from skimage import data

    pool = [data.astronaut(), data.coffee(), data.chelsea(), np.stack([data.brick()] * 3, -1), np.stack([data.grass()] * 3, -1)]
    rng = np.random.default_rng(seed)
    out = np.empty((n, SIZE, SIZE, 3), dtype=np.uint8)
    for i in range(n):
        img = pool[rng.integers(len(pool))]
        y, x = rng.integers(0, img.shape[0] - 4 * SIZE), rng.integers(0, img.shape[1] - 4 * SIZE)
        crop = img[y : y + 4 * SIZE, x : x + 4 * SIZE].astype(np.float32)
        out[i] = crop.reshape(SIZE, 4, SIZE, 4, 3).mean(axis=(1, 3)).astype(np.uint8)
    return out


def build_model():
    """Untrained VAMoH (polymnist preset); falls back to a noise sampler if the model cannot be built."""
    try:
        from vamoh.interface import DataInfo, build_model as build

        info = DataInfo(coord_dim=2, feature_dim=3, likelihood="discretized_logistic", grid_shape=(SIZE, SIZE), kind="image")
        return build("vamoh", info, preset="polymnist").eval(), "vamoh (polymnist preset, untrained)"
    except Exception as err:  # the model layer is developed in parallel; the eval layer's costs still count
        print(f"VAMoH could not be built ({err!r}); timing the eval layer with a noise sampler", file=sys.stderr)

        class Noise(torch.nn.Module):
            can_reconstruct = True

            def __init__(self):
                super().__init__()
                self.p = torch.nn.Parameter(torch.zeros(1))

            device = property(lambda self: self.p.device)

            def sample(self, n, coords, generator=None):
                return torch.rand(n, coords.shape[0], 3, generator=generator)

            def reconstruct(self, observed, query_coords):
                return torch.where(observed.mask[..., None], observed.features, torch.full_like(observed.features, 0.5))

        return Noise(), "noise sampler (VAMoH unavailable)"


def to_batches(images: np.ndarray, bs: int = 16) -> list[PointCloudBatch]:
    out = []
    coords = grid_coordinates((SIZE, SIZE))
    for s in range(0, len(images), bs):
        chunk = torch.from_numpy(images[s : s + bs]).permute(0, 3, 1, 2).float() / 255.0
        n = len(chunk)
        out.append(PointCloudBatch(coords.expand(n, -1, -1), from_grid(chunk), torch.ones(n, SIZE * SIZE, dtype=torch.bool), (SIZE, SIZE)))
    return out


class Stopwatch:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str):
        watch = self

        class _Ctx:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                watch.seconds[name] = watch.seconds.get(name, 0.0) + time.perf_counter() - self.t

        return _Ctx()


def run_demo(p: dict, work: Path) -> dict:
    """Everything measured; returns stage seconds and per-unit costs."""
    sw = Stopwatch()
    torch.manual_seed(0)
    train, test = standin_images(p["n_train"], 0), standin_images(p["n_test"], 1)
    model, model_label = build_model()
    with sw("extractor_training"):
        ext = train_extractor(train, ExtractorConfig(epochs=p["extractor_epochs"]), "polymnist-standin")
        save_extractor(ext, work / "ext.pt", "polymnist-standin")
    scorer = FidelityScorer(suite_spec(work / "ext.pt"), work / "cache", device="cpu")
    with sw("real_features"):
        reals = {"train": scorer.real_features(RealSet("polymnist-standin", "train", train)), "test": scorer.real_features(RealSet("polymnist-standin", "test", test))}
    sampler = model_image_sampler(model, grid_coordinates((SIZE, SIZE)), lambda f: features_to_images(f, (SIZE, SIZE)), 64)
    per_set: dict[str, list[float]] = {k: [] for k in keys.GENERATION_KEYS}
    for i in range(p["num_sets"]):
        with sw("sampling"):
            imgs = sampler(p["num_samples"], set_seed(0, i))
        with sw("generated_features"):
            feats = scorer.features(imgs)
        for split, (rf, rs) in reals.items():
            with sw("fid"):
                per_set[f"fid_{split}"].append(scorer.fid_value(feats, rs))
            with sw("kid"):
                per_set[f"kid_{split}"].append(scorer.kid_value(feats, rf))
            with sw("prc"):
                pr, rc = scorer.prc_values(feats, _prc_subset(rf, p["num_samples"], 0))
            per_set[f"precision_{split}"].append(pr)
            per_set[f"recall_{split}"].append(rc)
    batches = to_batches(test[: p["n_recon"]])
    with sw("reconstruction"):
        recon = evaluate_reconstruction(model, batches, "image")
    with sw("completion"):
        comp = evaluate_completion(model, batches, "image")
    b1 = to_batches(test[:1], 1)[0]
    with sw("timing_harness"):
        stats_r = time_interleaved(reconstruction_candidates({"vamoh": model}, b1, b1.coords[0]), p["repeats"], 5)
        stats_s = time_interleaved(reconstruction_candidates({"vamoh": model}, b1, grid_coordinates((SIZE, SIZE), 2)), p["repeats"], 5)
    prov = {
        keys.PROV_RUN: "bench", keys.PROV_DATASET: "polymnist-standin", keys.PROV_IS_STANDIN: True, keys.PROV_MODEL: "vamoh",
        keys.PROV_SEED: 0, keys.PROV_FEATURE_EXTRACTOR: scorer.spec.label, keys.PROV_NUM_SAMPLES: p["num_samples"], keys.PROV_DEVICE: describe_device("cpu"),
    }  # fmt: skip
    with sw("write_json"):
        write_metrics(work / "metrics.json", {**{k: metric_entry(v) for k, v in per_set.items()}, **recon, **comp}, prov)
        write_timing(work / "timing.json", {"groups": [timing_record(keys.TIME_RECONSTRUCTION, stats_r, 1), timing_record(keys.TIME_SUPER_RECONSTRUCTION, stats_s, 1)]}, prov)
    n_gen = p["num_samples"] * p["num_sets"]
    unit = {
        "extractor_training_per_image_epoch": sw.seconds["extractor_training"] / (p["n_train"] * p["extractor_epochs"]),
        "real_features_per_image": sw.seconds["real_features"] / (p["n_train"] + p["n_test"]),
        "sampling_per_image": sw.seconds["sampling"] / n_gen,
        "generated_features_per_image": sw.seconds["generated_features"] / n_gen,
        "fid_per_set_split": sw.seconds["fid"] / (2 * p["num_sets"]),
        "reconstruction_per_image": sw.seconds["reconstruction"] / p["n_recon"],
        "completion_per_image": sw.seconds["completion"] / p["n_recon"],
        "timing_harness_total": sw.seconds["timing_harness"],
    }
    return {"stages": sw.seconds, "unit": unit, "model": model_label, "fid_train_mean": float(np.mean(per_set[keys.FID_TRAIN]))}


def run_paper_pieces(p: dict) -> dict:
    """Measure PRC and KID at full test-split size, and Inception's per-image cost with random weights."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    sw = Stopwatch()
    rng = np.random.default_rng(0)
    d = 64
    gen = torch.from_numpy(rng.normal(size=(p["num_samples"], d)).astype(np.float32))
    real_eq = torch.from_numpy(rng.normal(size=(p["num_samples"], d)).astype(np.float32))
    scorer = FidelityScorer.__new__(FidelityScorer)  # only the metric methods are used: no extractor needed
    scorer.prc_neighborhood, scorer.prc_batch_size, scorer.kid_subsets, scorer.kid_subset_size, scorer.rng_seed = 3, 2000, 100, 1000, 2020
    with sw("prc_equal_size"):
        scorer.prc_values(gen, real_eq)
    with sw("kid_full_size"):
        scorer.kid_value(gen, real_eq)
    with tempfile.TemporaryDirectory() as tmp:
        # Random weights of the right shape: same FLOPs as the real file, which is absent here.
        state = None
        try:
            path = Path(tmp) / "random_inception.pth"
            torch.save(_inception_random_state(), path)
            fe = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
            x = torch.from_numpy(standin_images(32, 2)).permute(0, 3, 1, 2).contiguous()
            with torch.no_grad():
                fe(x[:4])
                with sw("inception_32_images"):
                    fe(x)
        except Exception as err:  # pragma: no cover - diagnostic only
            state = repr(err)
    return {"stages": sw.seconds, "inception_error": state}


def _inception_random_state() -> dict:
    """A state dict with Inception-v3-compat's parameter shapes (built by instantiating the class without loading)."""
    import torch_fidelity.feature_extractor_inceptionv3 as inc

    original = inc.load_state_dict_from_url
    captured: dict = {}  # filled when the constructor reaches the (patched) download

    class _Capture(Exception):
        pass

    def fake_loader(*args, **kwargs):
        raise _Capture()

    inc.load_state_dict_from_url = fake_loader
    try:
        module = inc.FeatureExtractorInceptionV3.__new__(inc.FeatureExtractorInceptionV3)
        try:
            inc.FeatureExtractorInceptionV3.__init__(module, "inception-v3-compat", ["2048"])
        except _Capture:
            captured = {k: v.clone() for k, v in module.state_dict().items()}
    finally:
        inc.load_state_dict_from_url = original
    return captured


def child(scale: str, out_json: str, quick: bool) -> None:
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_demo(QUICK if quick else DEMO, Path(tmp)) if scale == "demo" else run_paper_pieces(PAPER)
    result["wall_seconds"] = time.perf_counter() - t0
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    Path(out_json).write_text(json.dumps(result, indent=2))


def extrapolate(demo: dict, pieces: dict, p: dict) -> tuple[dict[str, float], float]:
    """Paper-scale stage seconds from the demo's per-unit costs and the full-size pieces."""
    u = demo["unit"]
    n_gen = p["num_samples"] * p["num_sets"]
    n_t, n_v = p["n_train"], p["n_test"]
    # PRC compares equal-sized sets (eval.prc_match_sizes): n_gen x n_gen against either split.
    prc_one = pieces["stages"]["prc_equal_size"]
    stages = {
        "extractor_training": u["extractor_training_per_image_epoch"] * min(n_t, p["extractor_cap"]) * p["extractor_epochs"],
        "real_features": u["real_features_per_image"] * (n_t + n_v),
        "sampling": u["sampling_per_image"] * n_gen,
        "generated_features": u["generated_features_per_image"] * n_gen,
        "fid": u["fid_per_set_split"] * 2 * p["num_sets"],
        "kid": pieces["stages"]["kid_full_size"] * 2 * p["num_sets"],
        "prc": prc_one * 2 * p["num_sets"],
        "reconstruction": u["reconstruction_per_image"] * p["n_recon"],
        "completion": u["completion_per_image"] * p["n_completion"],
        "timing_harness": u["timing_harness_total"],
    }
    inception = pieces["stages"].get("inception_32_images")
    inception_total = inception / 32 * (n_gen + n_t + n_v) if inception else float("nan")
    return stages, inception_total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smaller demo run (smoke test)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--child", choices=["demo", "paper"], help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.child_out, args.quick)
        return
    results = {}
    for scale in ("demo", "paper"):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
            out = fh.name
        cmd = [sys.executable, __file__, "--child", scale, "--child-out", out] + (["--quick"] if args.quick else [])
        subprocess.run(cmd, check=True)
        results[scale] = json.loads(Path(out).read_text())
        os.unlink(out)
    demo, pieces = results["demo"], results["paper"]
    paper_stages, inception_total = extrapolate(demo, pieces, PAPER)
    machine = describe_device("cpu")
    rows = []
    for stage, sec in demo["stages"].items():
        rows.append({"scale": "demo", "stage": stage, "seconds": round(sec, 3), "how": "measured"})
    rows.append({"scale": "demo", "stage": "TOTAL", "seconds": round(demo["wall_seconds"], 3), "how": f"measured; peak RSS {demo['peak_rss_mib']:.0f} MiB"})
    for stage, sec in paper_stages.items():
        how = "measured at full size (10,000 vs 10,000, 64-d), x 2 splits x 5 sets" if stage in ("prc", "kid") else "extrapolated from demo per-unit cost"
        rows.append({"scale": "paper", "stage": stage, "seconds": round(sec, 1), "how": how})
    total = sum(paper_stages.values())
    prc_mem = 2000 * PAPER["num_samples"] * 4 / 2**20
    real_mem = PAPER["n_train"] * SIZE * SIZE * 3 / 2**20
    rows.append({"scale": "paper", "stage": "TOTAL", "seconds": round(total, 1), "how": f"extrapolated; peak memory estimate {real_mem + prc_mem + demo['peak_rss_mib']:.0f} MiB (real train uint8 {real_mem:.0f} + PRC distance block {prc_mem:.0f} + demo process peak {demo['peak_rss_mib']:.0f}); pieces child peak RSS {pieces['peak_rss_mib']:.0f} MiB"})
    rows.append({"scale": "paper", "stage": "feature extraction with inception-v3-compat instead (CPU)", "seconds": round(inception_total, 1), "how": "extrapolated from 32 images with random weights of the real shape" + (f" (failed: {pieces['inception_error']})" if pieces.get("inception_error") else "")})
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    with open(outdir / "eval.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["scale", "stage", "seconds", "how"])
        w.writeheader()
        w.writerows(rows)
    p_demo = QUICK if args.quick else DEMO
    lines = [
        "# Evaluation cost: one (dataset, model) = (PolyMNIST stand-in 28x28, VAMoH)",
        "",
        f"Machine: {machine['cpu']} ({machine['cpu_count']} cores), torch {machine['torch_version']} with {machine['torch_threads']} threads, "
        f"{machine['platform']}; GLIBC_TUNABLES={machine['glibc_tunables'] or '(unset)'}; device cpu. Model: {demo['model']}. "
        f"Feature extractor: the suite's autoencoder (64-d).",
        "",
        f"Demo scale (measured end to end): {p_demo['n_train']} train / {p_demo['n_test']} test real images, "
        f"{p_demo['num_sets']} x {p_demo['num_samples']} generated, {p_demo['n_recon']} reconstructions, timing {p_demo['repeats']} repeats.",
        f"Paper scale (EXTRAPOLATED, not run here): {PAPER['n_train']} / {PAPER['n_test']} real, {PAPER['num_sets']} x {PAPER['num_samples']} generated, "
        f"{PAPER['n_recon']} reconstructions, {PAPER['n_completion']} completions x 3 masks, suite extractor {PAPER['extractor_epochs']} epochs on {PAPER['extractor_cap']} images; "
        f"per-image costs from the demo run, PRC/KID measured at full size.",
        "",
        "| scale | stage | seconds | how |",
        "|---|---|---:|---|",
    ]
    lines += [f"| {r['scale']} | {r['stage']} | {r['seconds']} | {r['how']} |" for r in rows]
    top = sorted(paper_stages.items(), key=lambda kv: -kv[1])[:3]
    lines += ["", "Where the time goes at paper scale: " + ", ".join(f"{k} {v / total:.0%}" for k, v in top) + "."]
    (outdir / "eval.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
