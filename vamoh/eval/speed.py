"""Tables 2 and 5: which candidates are timed, their interleaved reconstruction and 2x super-reconstruction timing,
and timing.json (the measurement itself is ``vamoh.eval.timing``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..checks import ConfigError, DataError, check
from ..pointcloud import PointCloudBatch, query_grid, upsampled_shape
from . import keys
from .config import EvalConfig
from .evaluate import EvalData
from .io import write_timing
from .recon import Reconstructing
from .timing import describe_device, time_interleaved, timing_record

def _batch_of(batches: list[PointCloudBatch], size: int) -> PointCloudBatch:
    """The first ``size`` test samples as one batch (repeating samples if there are fewer)."""
    coords = torch.cat([b.coords for b in batches])
    feats = torch.cat([b.features for b in batches])
    mask = torch.cat([b.mask for b in batches])
    idx = torch.arange(size) % len(coords)
    return PointCloudBatch(coords[idx], feats[idx], mask[idx], batches[0].grid_shape)


def timing_candidates(models: dict[str, Any], extra_steps: tuple[int, ...] = ()) -> dict[str, Any]:
    """Candidate name -> an object with ``reconstruct``: every model that can reconstruct, and those with an
    inner loop also run with ``extra_steps`` (named "<entry>@<steps>")."""
    out: dict[str, Any] = {}
    for name, model in models.items():
        if not getattr(model, "can_reconstruct", False):
            continue
        out[name] = model
        if getattr(model, "inference_steps", False):
            out.update({keys.inference_variant(name, s): Reconstructing(model, steps=s) for s in extra_steps})
    return out


def evaluate_timing(models: dict[str, Any], data: EvalData, cfg: EvalConfig, device: str | torch.device,
                    reference: str | None = None) -> dict[str, Any]:
    """Tables 2/5: every candidate's reconstruction and 2x super-reconstruction time, measured interleaved.

    ``models``: candidate name -> object with ``reconstruct`` (already on ``device``). Returns the timing
    section of timing.json: one group per (task, batch size) with every candidate's per-call and
    per-sample statistics and the speed-ups against ``reference``.
    """
    check(bool(models), "evaluate_timing: no candidates", ConfigError)
    check(bool(data.test_batches), f"{data.dataset}: timing needs test batches", DataError)
    groups = []
    n_groups = 2 * len(cfg.timing_batch_sizes)
    budget = cfg.timing_budget_s / n_groups if cfg.timing_budget_s > 0 else None
    for task, upsample in ((keys.TIME_RECONSTRUCTION, 1), (keys.TIME_SUPER_RECONSTRUCTION, 2)):
        for bs in cfg.timing_batch_sizes:
            batch = _batch_of(data.test_batches, bs).to(device)
            query = (batch.coords[0] if upsample == 1 else data.query(upsample)).to(device)
            calls: dict[str, Callable[[], Any]] = {n: (lambda m=m: m.reconstruct(batch, query)) for n, m in models.items()}
            stats = time_interleaved(calls, cfg.timing_repeats, cfg.timing_warmup, device, budget_s=budget)
            rec = timing_record(task, stats, bs, reference if reference in models else None)
            rec["query_points"] = int(query.shape[0])
            rec["query_grid"] = list(upsampled_shape(data.grid_shape, upsample)) if not data.sphere else list(query_grid(data.grid_shape, upsample, sphere=True)[1])
            groups.append(rec)
    return {"groups": groups}


def write_timing_file(path: str | Path, timing: dict[str, Any], data: EvalData, cfg: EvalConfig, *, run: str, seed: int,
                      device: str | torch.device, labels: dict[str, str], extra: dict[str, Any] | None = None) -> Path:
    provenance = {
        keys.PROV_RUN: run,
        keys.PROV_DATASET: data.dataset,
        keys.PROV_IS_STANDIN: bool(data.is_standin),
        keys.PROV_MODEL: "timing",
        keys.PROV_SEED: int(seed),
        keys.PROV_FEATURE_EXTRACTOR: "none (timing)",
        keys.PROV_NUM_SAMPLES: 0,
        keys.PROV_DEVICE: describe_device(device),
        "labels": labels,
        "repeats": cfg.timing_repeats,
        "warmup": cfg.timing_warmup,
        **(extra or {}),
    }
    return write_timing(path, timing, provenance)
