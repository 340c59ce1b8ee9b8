"""The arrays the figures show, computed in one place: samples at 1x and 2x, reconstructions at 1x and 2x,
completions, super-resolution against a true 2x render, and the mixture's entropy and segmentation maps (models
that have them).

Reconstructions: ``recon_1x`` follows the paper's protocol (VAMoH: posterior weights at the observed points) and,
for models that tell the protocols apart, ``recon_1x_leakfree`` the leak-free one. ``recon_2x`` (the 127-point grid
of the paper's Figure 6, every other point a 1x point) uses one rule at every point, the leak-free one: under the
paper's rule the shared points would get posterior weights and the new ones prior weights, a dotted lattice.

Every array is folded onto its grid: (n, *grid, f) for samples and reconstructions, (n, *grid) for masks and
maps. Images are stored as uint8 (what a saved image holds); fields and occupancies as float16 in [0, 1].
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..checks import DataError
from ..interface import leak_free_kwargs
from ..pointcloud import query_grid
from .completion import COMPLETION_TASKS, observed_mask
from .evaluate import EvalData
from .recon import to_metric_arrays
from .superres import SUPERRES_KINDS, superres_predictions, truth_arrays, upsample_baseline


def fold(features: Tensor, shape: tuple[int, ...], kind: str) -> np.ndarray:
    """(B, Q, f) in [0, 1] -> (B, *shape, f): uint8 for images, float16 otherwise."""
    x = features.detach().float().cpu().clamp(0, 1).reshape(features.shape[0], *shape, features.shape[-1]).numpy()
    return np.rint(x * 255).astype(np.uint8) if kind == "image" else x.astype(np.float16)


def figure_sample_count(entry: Any, num_samples: int) -> int:
    """How many samples an entry's figures show: ``num_samples`` whenever the model can draw them without a separate
    prior stage, even for an entry whose generation metrics are off (an ablation question without FID still shows each
    variant's samples); none for a model whose prior is fitted by a stage the entry does not run."""
    return num_samples if entry.generation or not entry.cls.separate_prior_stage else 0


def figure_arrays(model: Any, data: EvalData, *, num_samples: int, num_examples: int, seed: int,
                  superres_truth: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Uncurated samples (``num_samples`` at 1x, the same latents at 2x; voxels: at most 16 at 2x) and, for the
    first ``num_examples`` test samples, reconstructions, completions and mixture maps; with ``superres_truth`` (the
    first test samples rendered at 2x), that truth, the model's 2x reconstruction at its cell centres and the
    model-free upsampling for the first ``num_examples`` of them."""
    out: dict[str, np.ndarray] = {}
    q1, s1 = query_grid(data.grid_shape, 1, sphere=data.sphere)
    q2, s2 = query_grid(data.grid_shape, 2, sphere=data.sphere)
    n2 = min(num_samples, 16) if data.kind == "voxels" else num_samples  # a 63^3 grid per sample
    for tag, q, shape, n in (("samples_1x", q1, s1, num_samples), ("samples_2x", q2, s2, n2)) if num_samples > 0 else ():
        g = torch.Generator().manual_seed(seed)  # the same latents at both resolutions
        try:
            feats = torch.cat([model.sample(min(16, n - s), q, generator=g) for s in range(0, n, 16)])
        except RuntimeError as err:  # e.g. Functa without a fitted prior
            raise DataError(f"{getattr(model, 'model_name', model)}: sampling failed: {err}") from None
        out[tag] = fold(feats, shape, data.kind)
    if not getattr(model, "can_reconstruct", False):
        return out
    batch = _concat(data.first(num_examples))
    on_model = batch.to(model.device)
    out["ground_truth"] = fold(batch.features, s1, data.kind)
    one_rule = leak_free_kwargs(model)
    out["recon_1x"] = fold(model.reconstruct(on_model, None), s1, data.kind)
    if one_rule:
        out["recon_1x_leakfree"] = fold(model.reconstruct(on_model, None, **one_rule), s1, data.kind)
    out["recon_2x"] = fold(model.reconstruct(on_model, q2.to(model.device), **one_rule), s2, data.kind)
    if superres_truth is not None and data.kind in SUPERRES_KINDS:
        n = min(num_examples, len(superres_truth), batch.batch_size)
        first = batch.samples(0, n)
        # stored like every other array: images uint8 (n, *grid, 3), voxels float16 occupancy (n, *grid, 1)
        small = (lambda a: np.asarray(a)) if data.kind == "image" else (lambda a: np.asarray(a, dtype=np.float16)[..., None])  # noqa: E731
        out["superres_truth"] = small(truth_arrays(superres_truth[:n], data.kind))
        out["superres_2x"] = small(superres_predictions(model, [first], data.kind))
        out["superres_upsampled"] = small(upsample_baseline(to_metric_arrays(first.features.detach().cpu(), tuple(data.grid_shape), data.kind), data.kind))
    for task in COMPLETION_TASKS:
        mask = observed_mask(task, data.grid_shape)
        out[f"completion_{task}_mask"] = mask.reshape(s1).numpy()
        out[f"completion_{task}"] = fold(model.reconstruct(on_model.with_mask(mask.to(model.device)), None), s1, data.kind)
    if hasattr(model, "mixture_maps"):
        K = int(model.num_components)
        maps = model.mixture_maps(on_model)
        out["entropy"] = (maps["entropy"].float().cpu() / math.log(K)).reshape(batch.batch_size, *s1).numpy() if K > 1 else np.zeros((batch.batch_size, *s1), np.float32)
        out["segmentation"] = maps["segmentation"].cpu().reshape(batch.batch_size, *s1).numpy().astype(np.int16)
        out["num_components"] = np.array(K)
    return out


def _concat(batches: list) -> Any:
    from ..pointcloud import PointCloudBatch

    return PointCloudBatch(torch.cat([b.coords for b in batches]), torch.cat([b.features for b in batches]),
                           torch.cat([b.mask for b in batches]), batches[0].grid_shape)
