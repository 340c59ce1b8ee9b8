"""One (run, dataset, model, seed) evaluation end to end: metrics.json and timing.json.

The workflow rule calls ``evaluate_model`` with arrays and batches it got from the data layer, so this
module depends only on the model interface (``sample``, ``reconstruct``, ``can_reconstruct``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..checks import ConfigError, DataError, check, resolve_device
from ..pointcloud import PointCloudBatch, grid_coordinates, query_grid, upsampled_shape
from . import keys
from .completion import evaluate_completion
from .config import EvalConfig
from .extractors import ExtractorConfig, train_or_load_extractor
from .fid import FidelityScorer, RealSet, evaluate_generation, model_image_sampler, resolve_extractor
from .io import output_dir, write_metrics, write_timing
from .recon import evaluate_reconstruction, features_to_images
from .timing import describe_device, reconstruction_candidates, time_interleaved, timing_record


@dataclass
class EvalInputs:
    """What one evaluation needs from the data layer."""

    dataset: str  # e.g. "polymnist"
    is_standin: bool  # True when the data is the offline stand-in, not the real dataset
    kind: str  # "image", "voxels" or "field"
    grid_shape: tuple[int, ...]
    real_train: np.ndarray | None = None  # uint8 (N, H, W, 3); images only
    real_test: np.ndarray | None = None  # uint8 (M, H, W, 3); images only
    test_batches: list[PointCloudBatch] = field(default_factory=list)  # fully observed test samples
    to_images: Callable[[Tensor], np.ndarray] | None = None  # (b, Q, f) -> uint8 (b, H, W, 3); default: round [0,1]


def _subset(images: np.ndarray, max_n: int, seed: int) -> np.ndarray:
    if max_n <= 0 or len(images) <= max_n:
        return images
    idx = np.sort(np.random.default_rng(seed).choice(len(images), max_n, replace=False))
    return images[idx]


def make_scorer(cfg: EvalConfig, inputs: EvalInputs, device: str) -> FidelityScorer:
    """The configured extractor; the suite extractor is trained on the train split on first use."""
    suite_weights = None
    if cfg.feature_extractor == "suite":
        suite_weights = cfg.suite_extractor_weights or str(Path(cfg.cache_root) / "extractors" / f"{inputs.dataset}.pt")
        ext_cfg = ExtractorConfig(epochs=cfg.extractor_epochs, feature_dim=cfg.extractor_feature_dim, seed=cfg.extractor_seed)
        train_or_load_extractor(inputs.real_train, suite_weights, inputs.dataset, ext_cfg, device=device)  # type: ignore[arg-type]
    spec = resolve_extractor(cfg.feature_extractor, inception_weights=cfg.inception_weights, suite_weights=suite_weights)
    return FidelityScorer(
        spec, Path(cfg.cache_root) / "fidelity", device=device, batch_size=cfg.batch_size,
        prc_neighborhood=cfg.prc_neighborhood, prc_batch_size=cfg.prc_batch_size, kid_subsets=cfg.kid_subsets, kid_subset_size=cfg.kid_subset_size,
    )  # fmt: skip


def evaluate_model(
    model: Any,
    model_name: str,
    inputs: EvalInputs,
    cfg: EvalConfig,
    *,
    run: str,
    seed: int,
    out_root: str | Path,
) -> tuple[Path, dict[str, float]]:
    """Write ``<out_root>/<run>/<dataset>/<model>/seed<seed>/metrics.json``; returns (path, stage seconds)."""
    device = str(resolve_device(cfg.device, "eval.device"))
    stage_seconds: dict[str, float] = {}
    metrics: dict[str, dict[str, Any]] = {}
    extractor_label = "none (no image generation metrics for this data kind)"
    generation_provenance: dict[str, Any] = {}
    num_samples = 0
    if inputs.kind == "image":
        check(inputs.real_train is not None and inputs.real_test is not None, f"{inputs.dataset}: image evaluation needs real_train and real_test arrays", DataError)
        t0 = time.perf_counter()
        scorer = make_scorer(cfg, inputs, device)
        stage_seconds["extractor"] = time.perf_counter() - t0
        extractor_label = scorer.spec.label
        num_samples = cfg.num_samples
        to_images = inputs.to_images or (lambda f: features_to_images(f, inputs.grid_shape))  # type: ignore[arg-type,return-value]
        sampler = model_image_sampler(model, grid_coordinates(inputs.grid_shape), to_images, cfg.batch_size)
        real_train = RealSet(inputs.dataset, "train", _subset(inputs.real_train, cfg.max_real, seed))  # type: ignore[arg-type]
        real_test = RealSet(inputs.dataset, "test", _subset(inputs.real_test, cfg.max_real, seed))  # type: ignore[arg-type]
        t0 = time.perf_counter()
        metrics.update(evaluate_generation(sampler, real_train, real_test, scorer, cfg.num_samples, cfg.num_sets, seed, cfg.prc_match_sizes))
        generation_provenance = scorer.describe()
        stage_seconds["generation"] = time.perf_counter() - t0
    if getattr(model, "can_reconstruct", False) and inputs.test_batches:
        t0 = time.perf_counter()
        recon = evaluate_reconstruction(model, inputs.test_batches, inputs.kind)
        metrics.update(recon)
        stage_seconds["reconstruction"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        metrics.update(evaluate_completion(model, _first_samples(inputs.test_batches, cfg.completion_samples), inputs.kind))
        stage_seconds["completion"] = time.perf_counter() - t0
    provenance = {
        keys.PROV_RUN: run,
        keys.PROV_DATASET: inputs.dataset,
        keys.PROV_IS_STANDIN: bool(inputs.is_standin),
        keys.PROV_MODEL: model_name,
        keys.PROV_SEED: int(seed),
        keys.PROV_FEATURE_EXTRACTOR: extractor_label,
        keys.PROV_NUM_SAMPLES: num_samples,
        keys.PROV_DEVICE: describe_device(device),
        "num_sets": cfg.num_sets,
        "eval_config": asdict(cfg),
        "generation": generation_provenance,
        "stage_seconds": stage_seconds,
    }
    path = output_dir(out_root, run, inputs.dataset, model_name, seed) / "metrics.json"
    return write_metrics(path, metrics, provenance), stage_seconds


def _first_samples(batches: list[PointCloudBatch], n: int) -> list[PointCloudBatch]:
    """Whole batches from the start until at least ``n`` samples are covered."""
    out, count = [], 0
    for b in batches:
        if count >= n:
            break
        out.append(b)
        count += b.batch_size
    return out


def _batch_of(batches: list[PointCloudBatch], size: int) -> PointCloudBatch:
    """The first ``size`` test samples as one batch (repeating samples if the test batches are smaller)."""
    coords = torch.cat([b.coords for b in batches])
    feats = torch.cat([b.features for b in batches])
    mask = torch.cat([b.mask for b in batches])
    idx = torch.arange(size) % len(coords)
    return PointCloudBatch(coords[idx], feats[idx], mask[idx], batches[0].grid_shape)


def super_query(inputs: EvalInputs, upsample: int, batch: PointCloudBatch) -> Tensor:
    """Query coordinates (Q, c): the batch's own points for upsample 1, else a refined grid that contains them.

    Images/voxels: the (s(n-1)+1)-per-axis grid in [-1, 1]. Fields: the lat/lon grid of ERA5's layout
    (lat from 90 to -90, lon from 0 in steps of 360/n_lon) refined ``upsample`` times, on the unit sphere.
    """
    if upsample == 1:
        return batch.coords[0]
    return query_grid(tuple(inputs.grid_shape), upsample, sphere=inputs.kind == "field")[0]


def evaluate_timing(
    models: dict[str, Any],
    inputs: EvalInputs,
    cfg: EvalConfig,
    *,
    run: str,
    seed: int,
    out_root: str | Path,
    reference: str | None = None,
    model_of: dict[str, str] | None = None,
) -> list[Path]:
    """Tables 2/5: time every candidate's reconstruction and 2x super-reconstruction, interleaved.

    ``models`` maps a candidate label (e.g. "vamoh", "functa3", "functa10") to an object with
    ``reconstruct``; ``model_of`` maps a label to the registry model whose folder gets its
    timing.json (default: the label itself). Each file holds all candidates' numbers, so the
    speed-ups are always computed from one interleaved measurement.
    """
    check(bool(models), "evaluate_timing: no models", ConfigError)
    check(bool(inputs.test_batches), f"{inputs.dataset}: timing needs test batches", DataError)
    device = str(resolve_device(cfg.device, "eval.device"))
    groups = []
    for task, upsample in ((keys.TIME_RECONSTRUCTION, 1), (keys.TIME_SUPER_RECONSTRUCTION, 2)):
        for bs in cfg.timing_batch_sizes:
            batch = _batch_of(inputs.test_batches, bs).to(device)
            query = super_query(inputs, upsample, batch).to(device)
            stats = time_interleaved(reconstruction_candidates(models, batch, query), cfg.timing_repeats, cfg.timing_warmup, device)
            rec = timing_record(task, stats, bs, reference)
            rec["query_points"] = int(query.shape[0])
            rec["query_grid"] = list(upsampled_shape(inputs.grid_shape, upsample))
            groups.append(rec)
    paths = []
    for label in models:
        name = (model_of or {}).get(label, label)
        provenance = {
            keys.PROV_RUN: run,
            keys.PROV_DATASET: inputs.dataset,
            keys.PROV_IS_STANDIN: bool(inputs.is_standin),
            keys.PROV_MODEL: name,
            keys.PROV_SEED: int(seed),
            keys.PROV_FEATURE_EXTRACTOR: "none (timing)",
            keys.PROV_NUM_SAMPLES: 0,
            keys.PROV_DEVICE: describe_device(device),
            "candidate": label,
            "repeats": cfg.timing_repeats,
            "warmup": cfg.timing_warmup,
        }
        path = output_dir(out_root, run, inputs.dataset, name, seed) / ("timing.json" if name == label else f"timing_{label}.json")
        paths.append(write_timing(path, {"groups": groups}, provenance))
    return paths
