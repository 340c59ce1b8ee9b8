"""Wall time and peak memory of a full evaluation of one (dataset, model): (PolyMNIST stand-in, VAMoH).

    python3 benchmarks/bench_eval.py                    # demo (measured) + paper scale (measured pieces, extrapolated)
    python3 benchmarks/bench_eval.py --quick            # smaller demo, for a smoke run
    python3 benchmarks/bench_eval.py --quick --out DIR  # write eval.csv / eval.md somewhere else

Each scale runs in its own child process so that its peak RSS (``ru_maxrss``) is its own.

- demo: the workflow's own calls, in the workflow's order, on the PolyMNIST stand-in (``vamoh.data``) with an
  untrained VAMoH (polymnist preset; the cost of a forward pass does not depend on training): the reference stage
  (``vamoh.eval.reference.build_reference``: suite extractor training on half the train split, its quality check,
  real features, the sanity rows), the evaluate stage (``vamoh.eval.evaluate.evaluate_model``: 5 generated sets
  with sampling, features, FID, KID, precision/recall, density/coverage; memorisation; reconstruction PSNR in both
  protocols; completion PSNR; mixture maps; then ``vamoh.eval.arrays.figure_arrays``), the timing stage
  (``vamoh.eval.speed.evaluate_timing``) and every output file (the workflow's atomic writers). Each stage's row is
  the exclusive time of the real function that does it, measured by wrapping that function while the stage runs
  (``Probe``); what the wrappers do not claim is the "_other" row of its stage, so the rows add up to the stages.
- paper: PolyMNIST at paper scale (60,000 train / 10,000 test real images, 5 x 10,000 generated, 10,000 test
  reconstructions, 1,000 completions) with the suite extractor. Per-image costs come from the demo run; the set
  metrics (FID, KID, precision/recall, density/coverage; quadratic or fixed-cost in the set sizes) and memorisation
  are measured once at full size on random 64-d features, and multiplied by the number of such calls the workflow
  makes; Inception-v3's per-image cost is measured through ``FidelityScorer.features`` with randomly initialised
  weights of the real shape (the real file is not on this machine). Every extrapolated row says so, and how.

Results: <out>/eval.csv and eval.md (default benchmarks/results), with the machine description.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vamoh.eval.coverage as coverage_mod  # noqa: E402
import vamoh.eval.evaluate as evaluate_mod  # noqa: E402
import vamoh.eval.extractors as extractors_mod  # noqa: E402
import vamoh.eval.fid as fid_mod  # noqa: E402
import vamoh.eval.reference as reference_mod  # noqa: E402
from vamoh.data.dataset import FunctionDataset  # noqa: E402
from vamoh.eval import keys  # noqa: E402
from vamoh.eval.config import EvalConfig  # noqa: E402
from vamoh.eval.names import INCEPTION  # noqa: E402
from vamoh.eval.timing import describe_device  # noqa: E402

SIZE = 28
DATASET = "polymnist"
# n_completion = eval.completion_samples; reconstruction, leak-free reconstruction and mixture maps use every test sample
DEMO = dict(n_train=1000, n_test=200, num_samples=200, num_sets=5, extractor_epochs=5, n_completion=64, repeats=50, warmup=5, batch_sizes=(1,))
QUICK = dict(n_train=200, n_test=64, num_samples=64, num_sets=5, extractor_epochs=1, n_completion=16, repeats=50, warmup=5, batch_sizes=(1,))
# config/paper.yaml's eval section (timing 100 repeats at batch 1 and 64, 1,000 completions), the suite extractor's
# defaults (10 epochs on at most 10,000 images) and PolyMNIST's real split sizes
PAPER = dict(n_train=60000, n_test=10000, num_samples=10000, num_sets=5, extractor_epochs=10, extractor_cap=10000, n_completion=1000,
             repeats=100, warmup=5, batch_sizes=(1, 64))
FIGURES = dict(num_samples=64, num_examples=8)  # config/config.yaml's figures section, what the evaluate rule draws
FEATURE_DIM = 64  # the suite extractor's feature width (eval.extractor_feature_dim)

# stage -> what the demo row measured; in the order the workflow runs them
STAGES = {
    "setup": "measured: PolyMNIST stand-in prepared and loaded (vamoh.data prepare/load_prepared), model built; not evaluation, not in the paper total",
    "extractor_training": "measured: extractors.train_extractor as reference.build_reference calls it (prepare_extractor; half the train split)",
    "extractor_quality": "measured: reference.extractor_quality (the extractor's held-out PSNR gate)",
    "extractor_files": "measured: rest of reference.prepare_extractor (save_extractor with its sha256, suite_spec verifying it)",
    "real_features": "measured: FidelityScorer.features of the embedded train half and the test split inside build_reference (computed once per dataset; no feature cache)",
    "reference_rows_images": "measured: reference.blur_images and noise_images (the blurred and noise sanity rows)",
    "reference_rows_features": "measured: FidelityScorer.features of the sanity rows (blurred, noise, collapsed, train-mean images)",
    "reference_rows_scoring": "measured: build_reference's score_sets calls (every set metric of the floor, blurred, noise, collapsed and train-mean rows)",
    "reference_other": "measured: rest of build_reference (train-mean and observed-mean baselines, subsets, scorer construction)",
    "sampling": "measured: the model_image_sampler closure evaluate_model builds (model.sample + features_to_images)",
    "generated_features": "measured: FidelityScorer.features of the generated sets (evaluate_generation)",
    "fid": "measured: torch-fidelity's fid_features_to_statistics + fid_statistics_to_metric inside fid.set_metrics (no separate FID method any more)",
    "kid": "measured: torch-fidelity's kid_features_to_metric inside fid.set_metrics",
    "prc": "measured: torch-fidelity's prc_features_to_metric inside fid.set_metrics (real side cut by fid.prc_subset_index)",
    "density_coverage": "measured: coverage.density_coverage inside fid.set_metrics",
    "spread": "measured: fid.spread_ratio inside fid.set_metrics",
    "memorisation": "measured: evaluate.memorisation_scores (nearest-train distances of the first generated set and of the test split)",
    "reconstruction": "measured: recon.reconstruct_all over every test sample, paper protocol (what evaluate_model calls)",
    "reconstruction_leakfree": "measured: recon.reconstruct_all again with the leak-free protocol (VAMoH tells the two apart)",
    "completion": "measured: completion.complete_all on the first eval.completion_samples test samples, 3 masks",
    "superres": "measured: superres.superres_scores (2x against the stand-in's own render)",
    "mixture_maps": "measured: evaluate.mixture_scores (entropy, coherence, ARI of VAMoH's mixture maps)",
    "evaluate_other": "measured: rest of evaluate_model (scorer construction, score_sets and summary glue) and ReferenceData.load",
    "figure_arrays": "measured: arrays.figure_arrays as the evaluate rule runs it (64 samples, 8 examples)",
    "timing_harness": "measured: speed.evaluate_timing (time_interleaved: reconstruction and 2x super-reconstruction)",
    "write_outputs": "measured: features.npz + reference.json, evaluate.write_evaluation (scores.npz + metrics.json), speed.write_timing_file",
}
SET_METRIC_STAGES = ("fid", "kid", "prc", "density_coverage", "spread")
# stages the demo must reach: a wrapper that never fires means the workflow no longer calls that function
MUST_RUN = ("extractor_training", "extractor_quality", "real_features", "reference_rows_images", "reference_rows_features",
            "reference_rows_scoring", "sampling", "generated_features", *SET_METRIC_STAGES, "memorisation", "reconstruction",
            "reconstruction_leakfree", "completion", "mixture_maps")


# ------------------------------------------------------------------------------------------------ measuring


class Probe:
    """Exclusive seconds, calls and work items per stage of the workflow's own functions.

    ``wrap`` replaces a module or class attribute by a timed version until ``restore``; a call inside another timed
    call is taken out of the outer one's time, so every second lands in exactly one stage. Inside an opaque stage
    nothing is split off (its inner calls are its own). ``stage`` opens a stage around a block of code; its
    exclusive time is what no wrapper inside it claimed.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.items: dict[str, int] = defaultdict(int)
        self.phase = ""
        self._frames: list[list[Any]] = []  # [stage, seconds of timed calls inside it, opaque]
        self._saved: list[tuple[Any, str, Any]] = []

    def _opaque(self) -> bool:
        return any(frame[2] for frame in self._frames)

    @contextmanager
    def _frame(self, name: str, opaque: bool):
        frame = [name, 0.0, opaque]
        self._frames.append(frame)
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            self._frames.pop()
            self.seconds[name] += spent - frame[1]
            self.calls[name] += 1
            if self._frames:
                self._frames[-1][1] += spent

    @contextmanager
    def stage(self, name: str, phase: str = "", opaque: bool = False):
        previous, self.phase = self.phase, phase or self.phase
        try:
            with self._frame(name, opaque):
                yield
        finally:
            self.phase = previous

    def timed(self, fn: Callable, stage: str | Callable[..., str], items: Callable[..., int] | None = None, opaque: bool = False) -> Callable:
        probe = self

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            if probe._opaque():
                return fn(*args, **kwargs)
            name = stage(args, kwargs) if callable(stage) else stage
            if items is not None:
                probe.items[name] += int(items(args, kwargs))
            with probe._frame(name, opaque):
                return fn(*args, **kwargs)

        return run

    def replace(self, owner: Any, attr: str, new: Callable) -> None:
        self._saved.append((owner, attr, getattr(owner, attr)))  # AttributeError here: the function was renamed
        setattr(owner, attr, new)

    def wrap(self, owner: Any, attr: str, stage: str | Callable[..., str], items: Callable[..., int] | None = None, opaque: bool = False) -> None:
        self.replace(owner, attr, self.timed(getattr(owner, attr), stage, items, opaque))

    def restore(self) -> None:
        while self._saved:
            owner, attr, original = self._saved.pop()
            setattr(owner, attr, original)


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _samples(batches: Any) -> int:
    return sum(b.batch_size for b in batches)


def wrap_set_metrics(probe: Probe) -> None:
    """The leaves of ``fid.set_metrics``: it imports torch-fidelity's functions at each call, so module attributes."""
    import torch_fidelity.metric_fid as tf_fid
    import torch_fidelity.metric_kid as tf_kid
    import torch_fidelity.metric_prc as tf_prc

    probe.wrap(tf_fid, "fid_features_to_statistics", "fid")
    probe.wrap(tf_fid, "fid_statistics_to_metric", "fid")
    probe.wrap(tf_kid, "kid_features_to_metric", "kid")
    probe.wrap(tf_prc, "prc_features_to_metric", "prc")
    probe.wrap(coverage_mod, "density_coverage", "density_coverage")
    probe.wrap(fid_mod, "spread_ratio", "spread")


def wrap_workflow(probe: Probe) -> None:
    real_images: list[np.ndarray] = []  # what build_reference read from the splits: features of these are real features

    images_uint8 = FunctionDataset.images_uint8

    def recorded(self: FunctionDataset, *args: Any, **kwargs: Any) -> np.ndarray:
        out = images_uint8(self, *args, **kwargs)
        real_images.append(out)
        return out

    def features_stage(args: tuple, kwargs: dict) -> str:
        if probe.phase == "evaluate":
            return "generated_features"
        images = _arg(args, kwargs, 1, "images")
        return "real_features" if any(images is r for r in real_images) else "reference_rows_features"

    def quality_items(args: tuple, kwargs: dict) -> int:
        train = _arg(args, kwargs, 2, "train_images")
        return len(_arg(args, kwargs, 1, "images")) + (0 if train is None else len(train))

    def training_items(args: tuple, kwargs: dict) -> int:
        cfg = _arg(args, kwargs, 1, "config") or extractors_mod.ExtractorConfig()
        return min(len(_arg(args, kwargs, 0, "images")), cfg.max_train_images) * cfg.epochs

    def memorisation_items(args: tuple, kwargs: dict) -> int:
        gen, ref = _arg(args, kwargs, 0, "gen_features"), _arg(args, kwargs, 1, "reference")
        return (len(gen) + len(ref.real["test"])) * len(ref.real["train"])

    sampler_factory = evaluate_mod.model_image_sampler

    def timed_sampler(*args: Any, **kwargs: Any) -> Callable:
        return probe.timed(sampler_factory(*args, **kwargs), "sampling", lambda a, k: _arg(a, k, 0, "n"))

    probe.replace(FunctionDataset, "images_uint8", recorded)
    probe.wrap(extractors_mod, "train_extractor", "extractor_training", training_items)  # prepare_extractor imports it per call
    probe.wrap(reference_mod, "extractor_quality", "extractor_quality", quality_items)
    probe.wrap(reference_mod, "prepare_extractor", "extractor_files")
    probe.wrap(fid_mod.FidelityScorer, "features", features_stage, lambda a, k: len(_arg(a, k, 1, "images")))
    probe.wrap(reference_mod, "blur_images", "reference_rows_images", lambda a, k: len(a[0]))
    probe.wrap(reference_mod, "noise_images", "reference_rows_images", lambda a, k: _arg(a, k, 0, "n"))
    # opaque: the sanity rows' FID/KID/... stay in this row instead of the model's
    probe.wrap(reference_mod, "score_sets", "reference_rows_scoring", lambda a, k: len(a[0]) * len(a[1]), opaque=True)
    probe.replace(evaluate_mod, "model_image_sampler", timed_sampler)
    probe.wrap(evaluate_mod, "memorisation_scores", "memorisation", memorisation_items)
    probe.wrap(evaluate_mod, "reconstruct_all", lambda a, k: "reconstruction_leakfree" if isinstance(a[0], evaluate_mod.Reconstructing) else "reconstruction",
               lambda a, k: _samples(_arg(a, k, 1, "batches")))
    probe.wrap(evaluate_mod, "complete_all", "completion",
               lambda a, k: _samples(_arg(a, k, 1, "batches")) * len(tuple(_arg(a, k, 3, "tasks", evaluate_mod.COMPLETION_TASKS))))
    probe.wrap(evaluate_mod, "mixture_scores", "mixture_maps", lambda a, k: _samples(_arg(a, k, 1, "batches")))
    probe.wrap(evaluate_mod, "superres_scores", "superres", lambda a, k: len(_arg(a, k, 2, "truth")))
    wrap_set_metrics(probe)


# ------------------------------------------------------------------------------------------------ what a run does


def counts(p: dict, suite: bool = True) -> dict[str, int]:
    """Work items of each stage for the sizes ``p``, as build_reference / evaluate_model / complete_all size them
    (max_real = 0, prc_match_sizes): what the paper scale is extrapolated with, and checked against the demo's
    measured items. ``suite``: the extractor is trained here on half the train split (else the whole split is
    embedded and nothing is trained)."""
    n_tr, n_te, n, sets = p["n_train"], p["n_test"], p["num_samples"], p["num_sets"]
    extractor_half = n_tr // 2 if suite else 0
    embedded = n_tr - extractor_half
    floor = min(n, n_te) + min(n, embedded)  # held-out picks scored against train (from test) and against test (from train)
    out = {
        "extractor_training": min(extractor_half, p.get("extractor_cap", extractor_half)) * p["extractor_epochs"] if suite else 0,
        "extractor_quality": n_te + extractor_half if suite else 0,
        "real_features": embedded + n_te,
        "reference_rows_images": sets * floor + sets * n,  # blurred picks, noise sets
        "reference_rows_features": sets * floor + sets * n + sets * n + n,  # blurred, noise, collapsed, the train-mean set
        "reference_rows_scoring": sets * 2 + sets * 2 + sets * 2 + sets * 2 + sets * 2,  # floor, blurred, noise, collapsed, mean
        "sampling": sets * n,
        "generated_features": sets * n,
        "memorisation": (n + n_te) * embedded,  # distance pairs: first generated set and test split against the train embeddings
        "reconstruction": n_te,
        "reconstruction_leakfree": n_te,
        "completion": min(p["n_completion"], n_te) * 3,
        "mixture_maps": n_te,
        "set_metric_calls": sets * 2,  # the model's sets against both real splits
    }
    out["saved_feature_rows"] = out["real_features"] + out["reference_rows_features"] + out["generated_features"]
    return out


def load_standin(p: dict, work: Path) -> tuple[dict, dict]:
    """The workflow's prepare_data + load_data on the PolyMNIST stand-in."""
    from vamoh.data.cache import load_prepared, prepare, prepared_record
    from vamoh.data.config import make_config

    cfg = make_config(name=DATASET, n_train=p["n_train"], n_test=p["n_test"])
    path = prepare(cfg, work / "cache")
    return load_prepared(path), prepared_record(DATASET, cfg, path)


def run_demo(p: dict, work: Path) -> dict:
    """The reference, evaluate and timing stages of the workflow on the stand-in, every stage measured."""
    from vamoh.eval.arrays import figure_arrays
    from vamoh.eval.evaluate import evaluate_model, write_evaluation
    from vamoh.eval.reference import ReferenceData, build_reference
    from vamoh.eval.speed import evaluate_timing, write_timing_file
    from vamoh.interface import build_model
    from vamoh.io import atomic_write_json, atomic_write_npz
    from vamoh.pipeline.jobs import eval_data, superres_truth

    cfg = EvalConfig(num_samples=p["num_samples"], num_sets=p["num_sets"], max_real=0, extractor_epochs=p["extractor_epochs"],
                     completion_samples=p["n_completion"], timing_repeats=p["repeats"], timing_warmup=p["warmup"],
                     timing_batch_sizes=tuple(p["batch_sizes"]), device="cpu")
    probe = Probe()
    with probe.stage("setup", "setup"):
        splits, record = load_standin(p, work)
        truth = superres_truth(record, len(splits["test"]), cfg.superres_samples)
        torch.manual_seed(0)
        model = build_model("vamoh", splits["train"].info, preset=DATASET).eval()
        data = eval_data(splits, record)
    wrap_workflow(probe)
    try:
        with probe.stage("reference_other", "reference"):
            rec, arrays = build_reference(splits, cfg, seed=0, device="cpu", extractor_out=work / "extractor.pt", superres=truth)
        with probe.stage("write_outputs", "writes", opaque=True):
            rec.update(data_label=record["label"], is_standin=record["is_standin"], data_sha256=record["sha256"])
            atomic_write_npz(work / "features.npz", arrays)
            atomic_write_json(work / "reference.json", rec)
        with probe.stage("evaluate_other", "evaluate"):
            ref = ReferenceData.load(work / "reference.json", work / "features.npz")
            ev = evaluate_model(model, data, cfg, entry="vamoh", label="VAMoH (untrained)", seed=0, run="bench", reference=ref)
        with probe.stage("write_outputs", "writes", opaque=True):
            write_evaluation(ev, work / "metrics.json", work / "scores.npz")
        with probe.stage("figure_arrays", "figures", opaque=True):
            figure_arrays(model, data, num_samples=FIGURES["num_samples"], num_examples=FIGURES["num_examples"], seed=0, superres_truth=ref.superres_truth())
        with probe.stage("timing_harness", "timing", opaque=True):
            timing = evaluate_timing({"vamoh": model}, data, cfg, "cpu", reference="vamoh")
        with probe.stage("write_outputs", "writes", opaque=True):
            write_timing_file(work / "timing.json", timing, data, cfg, run="bench", seed=0, device="cpu", labels={"vamoh": "VAMoH"})
    finally:
        probe.restore()
    missing = [s for s in MUST_RUN if probe.calls[s] == 0]
    if missing:
        raise RuntimeError(f"the evaluation no longer reached {missing}: the workflow's functions changed; update wrap_workflow")
    medians = {(g["task"], g["batch_size"]): g["seconds_per_call"]["vamoh"]["median"] for g in timing["groups"]}
    return {"stages": dict(probe.seconds), "items": dict(probe.items), "timing_median_bs1": {t: s for (t, b), s in medians.items() if b == 1},
            "model": f"vamoh ({DATASET} preset, untrained; {model.parameter_counts()['total']:,} parameters)", "data": record["label"],
            "fid_train_mean": ev.metrics[keys.FID_TRAIN]["mean"], "extractor_passes": rec["extractor"]["quality"].get("passes")}


def run_paper_pieces(p: dict) -> dict:
    """One set_metrics call and one memorisation at full size (random 64-d features), and Inception-v3's per-image
    cost through FidelityScorer.features with random weights of the real shape."""
    from vamoh.eval.fid import INCEPTION_FEATURE, ExtractorSpec, FidelityScorer, prc_subset_index, set_metrics
    from vamoh.eval.reference import ReferenceData, noise_images

    c = counts(p)
    cfg = EvalConfig()  # the workflow's set-metric settings (k = 3, KID 100 x 1000, PRC blocks of 2000)
    rng = np.random.default_rng(0)
    feats = lambda n: torch.from_numpy(rng.normal(size=(n, FEATURE_DIM)).astype(np.float32))  # noqa: E731
    n_embedded = c["real_features"] - p["n_test"]
    gen, real_train, real_test = feats(p["num_samples"]), feats(n_embedded), feats(p["n_test"])
    prc_real = real_train[torch.from_numpy(prc_subset_index(n_embedded, p["num_samples"], 0))]
    probe = Probe()
    wrap_set_metrics(probe)
    probe.wrap(evaluate_mod, "memorisation_scores", "memorisation")
    try:
        with probe.stage("set_metrics_other"):
            set_metrics(gen, real_train, prc_real, cfg.set_metric_settings())
        reference = ReferenceData({}, Path("."), {"train": real_train, "test": real_test})
        with probe.stage("memorisation_other"):
            evaluate_mod.memorisation_scores(gen, reference, cfg.memorisation_quantile)
    finally:
        probe.restore()
    error = None
    with tempfile.TemporaryDirectory() as tmp:
        try:  # random weights of the right shape: the same FLOPs as the real file, which is absent here
            path = Path(tmp) / "random_inception.pth"
            torch.save(inception_random_state(), path)
            scorer = FidelityScorer(ExtractorSpec(INCEPTION, str(path), INCEPTION_FEATURE, f"{INCEPTION} (random weights)", "random"), "cpu", cfg.batch_size)
            images = noise_images(32, (SIZE, SIZE, 3), 2)
            scorer.features(images[:4])  # warm-up
            with probe.stage("inception_32_images"):
                scorer.features(images)
        except Exception as err:  # diagnostic only: the other rows stand without it
            error = repr(err)
    return {"stages": dict(probe.seconds), "inception_error": error}


def inception_random_state() -> dict:
    """A state dict with inception-v3-compat's parameter shapes: the constructor runs up to its download, which is
    stopped, and the randomly initialised module is read."""
    import torch_fidelity.feature_extractor_inceptionv3 as inc

    class Stop(Exception):
        pass

    def no_download(*args: Any, **kwargs: Any) -> None:
        raise Stop

    loader = inc.load_state_dict_from_url
    inc.load_state_dict_from_url = no_download
    module = inc.FeatureExtractorInceptionV3.__new__(inc.FeatureExtractorInceptionV3)
    try:
        inc.FeatureExtractorInceptionV3.__init__(module, INCEPTION, ["2048"])
    except Stop:
        return {k: v.clone() for k, v in module.state_dict().items()}
    finally:
        inc.load_state_dict_from_url = loader
    raise RuntimeError("torch-fidelity's Inception constructor did not reach its download: cannot build random weights")



def child(scale: str, out_json: str, quick: bool) -> None:
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_demo(QUICK if quick else DEMO, Path(tmp)) if scale == "demo" else run_paper_pieces(PAPER)
    result["wall_seconds"] = time.perf_counter() - t0
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    Path(out_json).write_text(json.dumps(result, indent=2))


# ------------------------------------------------------------------------------------------------ paper scale


def extrapolate(demo: dict, pieces: dict, p_demo: dict, p: dict) -> dict[str, tuple[float, str]]:
    """Paper-scale seconds and how of every evaluation stage, from the demo's per-item costs and the full-size pieces."""
    d_count, count = counts(p_demo), counts(p)
    sec, items, piece = demo["stages"], demo["items"], pieces["stages"]
    out: dict[str, tuple[float, str]] = {}

    def per_item(stage: str, unit: str) -> None:
        measured = items.get(stage, 0)
        note = "" if measured == d_count[stage] else f" (count model {d_count[stage]:,} differs from the demo's measured {measured:,}: check counts())"
        out[stage] = (sec.get(stage, 0.0) / max(measured, 1) * count[stage], f"extrapolated: demo cost per {unit} x {count[stage]:,}" + note)

    def scaled(stage: str, factor: float, why: str) -> None:
        out[stage] = (sec.get(stage, 0.0) * factor, f"extrapolated: demo x {factor:.4g} ({why})")

    per_item("extractor_training", "image-epoch")
    per_item("extractor_quality", "image (test + extractor half; encode+decode and mean image alike)")
    out["extractor_files"] = (sec.get("extractor_files", 0.0), "as measured in the demo (size-independent)")
    per_item("real_features", "image")
    per_item("reference_rows_images", "image")
    per_item("reference_rows_features", "image")
    rows_calls = count["reference_rows_scoring"]
    per_call = sum(piece.get(s, 0.0) for s in SET_METRIC_STAGES)
    out["reference_rows_scoring"] = (per_call * rows_calls, f"measured at full size (one set_metrics call, all set metrics) x {rows_calls} calls")
    demo_size = p_demo["n_train"] + p_demo["n_test"]
    scaled("reference_other", (p["n_train"] + p["n_test"]) / demo_size, "linear in train + test images: the streamed train mean, the baselines on the test split")
    per_item("sampling", "image")
    per_item("generated_features", "image")
    calls = count["set_metric_calls"]
    for s in SET_METRIC_STAGES:
        out[s] = (piece.get(s, 0.0) * calls, (f"measured at full size ({p['num_samples']:,} generated vs {count['real_features'] - p['n_test']:,} real, "
                                              f"P/R and density/coverage vs {p['num_samples']:,}; 64-d) x {calls} calls (2 splits x {p['num_sets']} sets)"))
    out["memorisation"] = (piece.get("memorisation", 0.0), (f"measured at full size ({p['num_samples']:,} generated + {p['n_test']:,} test vs "
                                                             f"{count['real_features'] - p['n_test']:,} train embeddings, 64-d)"))
    per_item("reconstruction", "test image")
    per_item("reconstruction_leakfree", "test image")
    per_item("completion", "image x mask")
    per_item("mixture_maps", "test image")
    demo_work = d_count["generated_features"] + p_demo["n_test"]
    scaled("evaluate_other", (count["generated_features"] + p["n_test"]) / demo_work, "linear in generated + test samples")
    out["figure_arrays"] = (sec.get("figure_arrays", 0.0), "as measured in the demo (fixed size: figures.num_samples / num_examples)")
    med = demo["timing_median_bs1"]
    rounds = p["repeats"] + p["warmup"]
    harness = rounds * sum(med.values()) * sum(p["batch_sizes"])
    out["timing_harness"] = (harness, (f"extrapolated: ({p['repeats']} repeats + {p['warmup']} warm-up) x (reconstruction + 2x) demo median at "
                                       f"batch 1 x batch sizes {'+'.join(map(str, p['batch_sizes']))} (per-sample cost assumed flat)"))
    scaled("write_outputs", count["saved_feature_rows"] / d_count["saved_feature_rows"], "linear in the feature rows saved")
    return out


def inception_instead(pieces: dict, p: dict) -> tuple[float, str]:
    """Every image config/paper.yaml's Inception would embed (the whole train split, nothing trained), at the measured rate."""
    c = counts(p, suite=False)
    n = c["real_features"] + c["reference_rows_features"] + c["generated_features"]
    t = pieces["stages"].get("inception_32_images")
    how = (f"extrapolated from 32 images through FidelityScorer.features with random weights of the real shape, x {n:,} images (real "
           f"{c['real_features']:,} + sanity rows {c['reference_rows_features']:,} + generated {c['generated_features']:,}); replaces "
           f"extractor_*, real_features, reference_rows_features, generated_features")
    if pieces.get("inception_error"):
        how += f" (failed: {pieces['inception_error']})"
    return (t / 32 * n if t else float("nan")), how


# ------------------------------------------------------------------------------------------------ report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smaller demo run (smoke test)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="where eval.csv and eval.md go (default: benchmarks/results)")
    ap.add_argument("--child", choices=["demo", "paper"], help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.child_out, args.quick)
        return
    results = {}
    for scale in ("demo", "paper"):
        fd, out = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        try:
            subprocess.run([sys.executable, __file__, "--child", scale, "--child-out", out] + (["--quick"] if args.quick else []), check=True)
            results[scale] = json.loads(Path(out).read_text())
        finally:
            os.unlink(out)
    demo, pieces = results["demo"], results["paper"]
    p_demo = QUICK if args.quick else DEMO
    paper = extrapolate(demo, pieces, p_demo, PAPER)
    machine = describe_device("cpu")
    rows = []
    for stage in [*STAGES, *(s for s in demo["stages"] if s not in STAGES)]:
        if stage in demo["stages"]:
            rows.append({"scale": "demo", "stage": stage, "seconds": round(demo["stages"][stage], 3), "how": STAGES.get(stage, "measured")})
    rows.append({"scale": "demo", "stage": "TOTAL", "seconds": round(demo["wall_seconds"], 3),
                 "how": f"measured: the demo child's wall time after its imports (the rows above add up to it); peak RSS {demo['peak_rss_mib']:.0f} MiB"})
    for stage, (sec, how) in paper.items():
        rows.append({"scale": "paper", "stage": stage, "seconds": round(sec, 1), "how": how})
    total = sum(sec for sec, _ in paper.values())
    c = counts(PAPER)
    real_mib = (PAPER["n_train"] + PAPER["n_test"]) * SIZE * SIZE * 3 / 2**20
    block_mib = EvalConfig().prc_batch_size * PAPER["num_samples"] * 8 / 2**20  # density/coverage's float64 distance block (PRC's is float32)
    feats_mib = c["saved_feature_rows"] * FEATURE_DIM * 4 / 2**20
    rows.append({"scale": "paper", "stage": "TOTAL", "seconds": round(total, 1),
                 "how": f"extrapolated; peak memory estimate {real_mib + block_mib + feats_mib + demo['peak_rss_mib']:.0f} MiB (real images uint8 "
                        f"{real_mib:.0f} + k-NN distance block {block_mib:.0f} + features {feats_mib:.0f} + demo process peak {demo['peak_rss_mib']:.0f}); "
                        f"pieces child peak RSS {pieces['peak_rss_mib']:.0f} MiB"})
    inc_sec, inc_how = inception_instead(pieces, PAPER)
    rows.append({"scale": "paper", "stage": "feature extraction with inception-v3-compat instead (CPU)", "seconds": round(inc_sec, 1), "how": inc_how})
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    with open(outdir / "eval.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["scale", "stage", "seconds", "how"])
        w.writeheader()
        w.writerows(rows)
    lines = [
        "# Evaluation cost: one (dataset, model) = (PolyMNIST stand-in 28x28, VAMoH)",
        "",
        (f"Machine: {machine['cpu']} ({machine['cpu_count']} cores), torch {machine['torch_version']} with {machine['torch_threads']} threads, "
         f"{machine['platform']}; GLIBC_TUNABLES={machine['glibc_tunables'] or '(unset)'}; device cpu. Model: {demo['model']}. "
         f"Data: {demo['data']}. Feature extractor: the suite's autoencoder ({FEATURE_DIM}-d; quality gate passed: {demo['extractor_passes']})."),
        "",
        (f"Demo scale (measured end to end with the workflow's functions: build_reference, evaluate_model, figure_arrays, evaluate_timing, "
         f"the writers): {p_demo['n_train']} train ({p_demo['n_train'] // 2} train the extractor, {p_demo['extractor_epochs']} epochs; the rest are "
         f"embedded) / {p_demo['n_test']} test real images, {p_demo['num_sets']} x {p_demo['num_samples']} generated, {p_demo['n_test']} "
         f"reconstructions x 2 protocols, {p_demo['n_completion']} completions x 3 masks, timing {p_demo['repeats']} repeats at batch "
         f"{'/'.join(map(str, p_demo['batch_sizes']))}."),
        (f"Paper scale (EXTRAPOLATED, not run here): {PAPER['n_train']} / {PAPER['n_test']} real, {PAPER['num_sets']} x {PAPER['num_samples']} "
         f"generated, {PAPER['n_test']} reconstructions x 2 protocols, {PAPER['n_completion']} completions x 3 masks, suite extractor "
         f"{PAPER['extractor_epochs']} epochs on {PAPER['extractor_cap']} of the train half, timing {PAPER['repeats']} repeats at batch "
         f"{'/'.join(map(str, PAPER['batch_sizes']))}; per-image costs from the demo run, the set metrics and memorisation measured at full size."),
        "",
        "| scale | stage | seconds | how |",
        "|---|---|---:|---|",
    ]
    lines += [f"| {r['scale']} | {r['stage']} | {r['seconds']} | {r['how']} |" for r in rows]
    top = sorted(((k, v) for k, (v, _) in paper.items()), key=lambda kv: -kv[1])[:3]
    lines += ["", "Where the time goes at paper scale: " + ", ".join(f"{k} {v / total:.0%}" for k, v in top) + "."]
    (outdir / "eval.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
