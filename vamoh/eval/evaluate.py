"""One evaluation of one trained model on one dataset (metrics.json + scores.npz); Tables 2/5's timing is ``vamoh.eval.speed``.

``evaluate_model`` depends only on the model interface (``sample``, ``reconstruct``, ``can_reconstruct``,
optionally ``mixture_maps``) and on the dataset's reference (``vamoh.eval.reference``): every generated set
is scored against the reference's real features, every reconstruction against the test split. It returns
the metric entries, their provenance, and the evidence every number is computed from (generated features,
per-sample errors, seeds), which ``write_evaluation`` saves and ``vamoh.eval.recompute`` reads back.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..checks import DataError, check
from ..interface import leak_free_kwargs
from ..io import atomic_write
from ..pointcloud import PointCloudBatch, grid_coordinates, query_grid
from . import keys
from .completion import COMPLETION_IOU, COMPLETION_TASKS, complete_all, missing_count
from .config import EvalConfig
from .fid import FidelityScorer, evaluate_generation, model_image_sampler
from .io import write_metrics
from .maps import segment_coherence
from .recon import CONVENTION, DATA_RANGE, Reconstructing, features_to_images, reconstruct_all, summary
from .reference import ReferenceData
from .superres import SCORE_KEY as SUPERRES_KEY
from .superres import superres_scores
from .timing import describe_device


@dataclass
class EvalData:
    """What one evaluation needs from the data layer: every test sample, fully observed, on the CPU."""

    dataset: str  # e.g. "polymnist"
    label: str  # e.g. "PolyMNIST (stand-in: ...)"
    is_standin: bool
    kind: str  # "image", "voxels" or "field"
    grid_shape: tuple[int, ...]
    sphere: bool = False  # coordinates on the unit sphere (ERA5): refined grids follow its lat/lon layout
    test_batches: list[PointCloudBatch] = field(default_factory=list)
    # (N, *grid) int true part labels of the test samples, in batch order (-1 = no part); None = the data has none
    parts: np.ndarray | None = None

    @classmethod
    def from_split(cls, test: Any, label: str, is_standin: bool, batch_size: int = 32) -> "EvalData":
        spec = test.spec
        n = len(test)
        batches = [test.batch(torch.arange(s, min(s + batch_size, n))) for s in range(0, n, batch_size)]
        parts = getattr(test, "parts", None)
        return cls(spec.name, label, bool(is_standin), spec.kind, tuple(spec.grid_shape), spec.coord_system == "sphere", batches,
                   None if parts is None else np.asarray(parts))

    @property
    def num_test(self) -> int:
        return sum(b.batch_size for b in self.test_batches)

    def first(self, n: int) -> list[PointCloudBatch]:
        """Whole batches from the start until at least ``n`` samples are covered, the last one cut to size."""
        out, count = [], 0
        for b in self.test_batches:
            if count >= n:
                break
            take = min(b.batch_size, n - count)
            out.append(b if take == b.batch_size else b.samples(0, take))
            count += take
        return out

    def query(self, upsample: int) -> Tensor:
        """Coordinates (Q, c) of the dataset's grid refined ``upsample`` times (the original points are a subset)."""
        return query_grid(self.grid_shape, upsample, sphere=self.sphere)[0]


@dataclass
class Evaluation:
    metrics: dict[str, dict[str, Any]]
    provenance: dict[str, Any]
    evidence: dict[str, np.ndarray]
    variants: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # "functa@10" -> metric entries


# ---------------------------------------------------------------------------------------------- parts


def mixture_scores(model: Any, batches: list[PointCloudBatch], kind: str, sphere: bool, parts: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-sample mixture statistics of a model with ``mixture_maps`` (VAMoH), on fully observed test samples:
    mean normalised entropy H(pi)/ln K, segment coherence with its chance level and their kappa, the map's mean ARI
    with the other inputs' maps (1 = a partition by position only), and, with true ``parts`` (N, *grid), the map's
    ARI with them and the k-means-on-colour baseline's (``vamoh.eval.maps``; voxels: occupied voxels only, and
    k-means on their coordinates)."""
    from .maps import kmeans_parts_ari, parts_ari, position_ari, segment_kappa

    K = int(model.num_components)
    ent, coh, chance, segs, valids, points = [], [], [], [], [], []
    for batch in batches:
        maps = model.mixture_maps(batch.to(model.device))
        B = batch.batch_size
        e = maps["entropy"].float().cpu().reshape(B, *batch.grid_shape).numpy() / math.log(K) if K > 1 else np.zeros((B, *batch.grid_shape))
        seg = maps["segmentation"].cpu().reshape(B, *batch.grid_shape).numpy()
        valid = None
        if kind == "voxels":  # segments of a shape, not of empty space
            valid = batch.features[..., 0].reshape(B, *batch.grid_shape).numpy() > 0.5
        c, ch = segment_coherence(seg, wrap_last=sphere, valid=valid)
        ent.append(e.reshape(B, -1).mean(1) if valid is None else np.array([e[i][valid[i]].mean() if valid[i].any() else np.nan for i in range(B)]))
        coh.append(c)
        chance.append(ch)
        segs.append(seg.astype(np.int16))
        valids.append(np.ones(seg.shape, dtype=bool) if valid is None else valid)
        if parts is not None:  # what k-means clusters: the colours, or (voxels: all occupancy 1) the coordinates
            points.append((batch.coords if kind == "voxels" else batch.features).reshape(B, *batch.grid_shape, -1).numpy())
    coherence, chance_level = np.concatenate(coh), np.concatenate(chance)
    seg_all, valid_all = np.concatenate(segs), np.concatenate(valids)
    out = {"entropy": np.concatenate(ent), "coherence": coherence, "chance": chance_level, "kappa": segment_kappa(coherence, chance_level),
           "position_ari": position_ari(seg_all, valid_all)}
    if parts is not None:
        parts = np.asarray(parts)
        check(parts.shape == seg_all.shape, f"parts of shape {parts.shape}, expected {seg_all.shape} (one label per test point)", DataError)
        out["parts_ari"] = parts_ari(seg_all, parts, valid_all)
        out["parts_ari_kmeans"] = kmeans_parts_ari(np.concatenate(points), parts, valid_all)
    return out


def segmentation_entries(mix: dict[str, np.ndarray]) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """The segmentation scores' metric entries and evidence from ``mixture_scores``'s per-sample values (also what
    ``vamoh.eval.recompute`` rebuilds). A sample where a score is undefined (NaN: kappa with one component
    everywhere) is left out of the mean and counted in ``num_undefined``; a score undefined on every sample is not
    applicable, with the reason; the part scores exist only where the data has parts."""
    from .io import not_applicable

    metrics: dict[str, dict[str, Any]] = {}
    evidence: dict[str, np.ndarray] = {}
    reasons = {keys.SEGMENT_KAPPA: "undefined: one component covers every point of every test sample (chance level 1), nothing is segmented"}
    for key, name in ((keys.SEGMENT_KAPPA, "kappa"), (keys.SEGMENT_POSITION_ARI, "position_ari"), (keys.SEGMENT_PARTS_ARI, "parts_ari"),
                      (keys.SEGMENT_PARTS_ARI_KMEANS, "parts_ari_kmeans")):
        if name not in mix:
            continue
        v = np.asarray(mix[name], dtype=np.float64)
        evidence[key] = v
        finite = v[np.isfinite(v)]
        undefined = int(v.size - finite.size)
        metrics[key] = summary(finite, num_undefined=undefined) if finite.size else not_applicable(reasons.get(key, "undefined on every test sample"))
    return metrics, evidence


def memorisation_scores(gen_features: Tensor, reference: ReferenceData, quantile: float) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Is the model copying training examples? Generated samples' distances to their nearest training example
    (feature space, the first generated set) against the test split's own nearest-training distances."""
    from .io import metric_entry
    from .memorisation import memorisation_report, nearest_train_distances

    gen_d, gen_i = nearest_train_distances(gen_features, reference.real["train"])
    test_d, _ = nearest_train_distances(reference.real["test"], reference.real["train"])
    report = memorisation_report(gen_d, test_d, quantile=quantile)
    extra = {"num_generated": report["num_generated"], "num_test": report["num_test"], "flagged": report["flagged"],
             "mannwhitney_p": report["mannwhitney_p"], "quantile": quantile, "space": "features of the generation metrics"}
    metrics = {keys.MEMORISATION_RATIO: metric_entry([report["median_ratio"]], **extra),
               keys.MEMORISATION_CLOSE: metric_entry([report["frac_below_test_quantile"]], **extra)}
    return metrics, {"memorisation_gen_to_train": gen_d, "memorisation_gen_nearest": gen_i, "memorisation_test_to_train": test_d}


def pointset_scores(model: Any, data: EvalData, cfg: EvalConfig, seed: int) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """ShapeNet's protocol: COV / MMD / 1-NNA (Chamfer) of generated shapes against the test split's, on point
    clouds of ``eval.pointcloud_points`` points sampled from the thresholded voxel surfaces."""
    from .io import metric_entry
    from .pointsets import cov_mmd_1nna_from_distances, cov_mmd_1nna_nothing_generated, has_surface, pairwise_chamfer, voxel_surface_points

    n = min(cfg.pointcloud_shapes or data.num_test, data.num_test)
    reference = torch.cat([b.features for b in data.first(n)])[..., 0].reshape(n, *data.grid_shape)  # (n, S, S, S)
    g = torch.Generator().manual_seed(set_seed_for(seed, "pointsets"))
    coords = grid_coordinates(data.grid_shape).to(model.device)
    with torch.no_grad():
        generated = torch.cat([model.sample(min(16, n - s), coords, generator=g).cpu() for s in range(0, n, 16)])[..., 0].reshape(n, *data.grid_shape)
    keep = has_surface(generated)
    ref_keep = has_surface(reference)
    gen_clouds = voxel_surface_points(generated[keep], cfg.pointcloud_points, generator=g) if bool(keep.any()) else None
    ref_clouds = voxel_surface_points(reference[ref_keep], cfg.pointcloud_points, generator=g)
    extra = {"num_generated": n, "num_empty_generated": int((~keep).sum()), "num_reference": int(ref_keep.sum()),
             "points_per_cloud": cfg.pointcloud_points, "distance": "Chamfer (PointFlow: mean squared NN distance, both ways)"}
    saved = {"pointsets_generated_kept": keep.numpy()}  # which generated shapes had a surface to score
    if gen_clouds is None:  # every generated shape is empty: nothing covers, nothing matches
        res = cov_mmd_1nna_nothing_generated()
    else:
        d_gr, d_gg, d_rr = pairwise_chamfer(gen_clouds, ref_clouds), pairwise_chamfer(gen_clouds), pairwise_chamfer(ref_clouds)
        res = cov_mmd_1nna_from_distances(d_gr, d_gg, d_rr)
        saved.update(chamfer_gen_ref=d_gr.numpy(), chamfer_gen_gen=d_gg.numpy(), chamfer_ref_ref=d_rr.numpy())
    metrics = {keys.COV_CD: metric_entry([res[keys.COV]], **extra), keys.MMD_CD: metric_entry([res[keys.MMD]], **extra),
               keys.NNA_CD: metric_entry([res[keys.ONE_NNA]], **extra)}
    return metrics, saved


def set_seed_for(seed: int, purpose: str) -> int:
    """A seed for one purpose of one run, independent of the others."""
    return int(np.random.SeedSequence([int(seed), sum(map(ord, purpose))]).generate_state(1)[0])


def _entry(values: np.ndarray, **extra: Any) -> dict[str, Any]:
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    check(values.size > 0, "no finite values to summarise", DataError)
    return summary(values, **extra)


def evaluate_model(model: Any, data: EvalData, cfg: EvalConfig, *, entry: str, label: str, seed: int, run: str,
                   reference: ReferenceData | None = None, generation: bool = True, extra_steps: tuple[int, ...] = ()) -> Evaluation:
    """Every metric of one trained model (entry ``entry``, display name ``label``) on one dataset."""
    check(data.test_batches, f"{data.dataset}: evaluation needs test samples", DataError)
    # what the model draws from torch's global generator during inference (VAMoH's random or stratified encoder
    # centroids) follows the job's seed, not whatever the process drew before (a cold job, a warm server's child)
    torch.manual_seed(set_seed_for(seed, "evaluate"))
    seconds: dict[str, float] = {}
    metrics: dict[str, dict[str, Any]] = {}
    evidence: dict[str, np.ndarray] = {}
    variants: dict[str, dict[str, dict[str, Any]]] = {}
    extractor_label = "none (no generation metrics for this model or data kind)"
    generation_provenance: dict[str, Any] = {}
    num_samples = 0
    if generation and data.kind == "image":
        check(reference is not None and bool(reference.real), f"{data.dataset}: image generation metrics need the dataset's reference features", DataError)
        t0 = time.perf_counter()
        scorer = FidelityScorer(reference.extractor_spec, model.device, cfg.batch_size, cfg.set_metric_settings())
        to_images = lambda f: features_to_images(f, data.grid_shape)  # noqa: E731
        sampler = model_image_sampler(model, grid_coordinates(data.grid_shape), to_images, cfg.batch_size)
        entries, gen_evidence = evaluate_generation(sampler, reference.real, scorer, cfg.num_samples, cfg.num_sets, seed, cfg.prc_match_sizes)
        metrics.update(entries)
        evidence.update(gen_evidence)
        extractor_label, num_samples = scorer.spec.label, cfg.num_samples
        generation_provenance = scorer.describe()
        seconds["generation"] = time.perf_counter() - t0
    if generation and data.kind == "image" and "gen_features" in evidence:
        t0 = time.perf_counter()
        memo, memo_evidence = memorisation_scores(torch.from_numpy(evidence["gen_features"][0]), reference, cfg.memorisation_quantile)
        metrics.update(memo)
        evidence.update(memo_evidence)
        seconds["memorisation"] = time.perf_counter() - t0
    if generation and data.kind == "voxels":
        t0 = time.perf_counter()
        shapes, shape_evidence = pointset_scores(model, data, cfg, seed)
        metrics.update(shapes)
        evidence.update(shape_evidence)
        seconds["pointsets"] = time.perf_counter() - t0
    if getattr(model, "can_reconstruct", False):
        t0 = time.perf_counter()
        rec = reconstruct_all(model, data.test_batches, data.kind)
        for k, v in rec.items():
            evidence[f"recon_{k}"] = v
            if k != "mse":
                metrics[k] = summary(v, **({"convention": CONVENTION} if k == keys.PSNR else {}), protocol="paper")
        seconds["reconstruction"] = time.perf_counter() - t0
        # the leak-free protocol (vamoh.interface.RECONSTRUCTION_PROTOCOLS): a model that tells the two apart is run
        # again; for any other both protocols are one computation, and the paper protocol's values are the evidence
        t0 = time.perf_counter()
        own_rule = not leak_free_kwargs(model)
        free = rec if own_rule else reconstruct_all(Reconstructing(model, **leak_free_kwargs(model)), data.test_batches, data.kind)
        note = ("the model's prediction reads the data only through its global latent: the same computation as the paper protocol"
                if own_rule else "mixture weights p(c | x, z) at every point: no point's weights read its own value")
        for k, v in free.items():
            evidence[f"recon_leakfree_{k}"] = v
            if k != "mse":
                metrics[keys.LEAK_FREE_KEYS[k]] = summary(v, **({"convention": CONVENTION} if k == keys.PSNR else {}), protocol="leak_free", note=note)
        seconds["reconstruction_leakfree"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        comp = complete_all(model, data.first(cfg.completion_samples), data.kind)
        for task, v in comp.items():
            metrics[COMPLETION_TASKS[task]] = summary(v["psnr"], missing_points=missing_count(task, data.grid_shape), convention=CONVENTION)
            evidence[f"completion_{task}_psnr"], evidence[f"completion_{task}_mse"] = v["psnr"], v["mse"]
            if "voxel_iou" in v:
                metrics[COMPLETION_IOU[task]] = summary(v["voxel_iou"], missing_points=missing_count(task, data.grid_shape), threshold=0.5)
                evidence[f"completion_{task}_voxel_iou"] = v["voxel_iou"]
        seconds["completion"] = time.perf_counter() - t0
        truth = None if reference is None else reference.superres_truth()
        if truth is not None:
            t0 = time.perf_counter()
            values, _ = superres_scores(model, data.first(len(truth)), truth, data.kind)
            key = SUPERRES_KEY[data.kind]
            metrics[key] = summary(values, factor=2, baseline=reference.record["superres"]["baseline"], truth=reference.record["superres"]["description"],
                                   **({"convention": CONVENTION} if data.kind == "image" else {"threshold": 0.5}))
            evidence[key] = values
            seconds["superres"] = time.perf_counter() - t0
        for steps in extra_steps if getattr(model, "inference_steps", False) else ():
            name = keys.inference_variant(entry, steps)
            stepped = Reconstructing(model, steps=steps)
            v = reconstruct_all(stepped, data.test_batches, data.kind)
            variants[name] = {k: summary(x) for k, x in v.items() if k != "mse"}
            evidence[f"variant_{steps}_recon_mse"] = v["mse"]
            evidence[f"variant_{steps}_recon_psnr"] = v[keys.PSNR]
    if hasattr(model, "mixture_maps"):
        t0 = time.perf_counter()
        mix = mixture_scores(model, data.test_batches, data.kind, data.sphere, data.parts)
        metrics[keys.MIXTURE_ENTROPY] = _entry(mix["entropy"], components=int(model.num_components))
        metrics[keys.SEGMENT_COHERENCE] = _entry(mix["coherence"])
        metrics[keys.SEGMENT_CHANCE] = _entry(mix["chance"])
        evidence.update(mixture_entropy=mix["entropy"], segment_coherence=mix["coherence"], segment_chance=mix["chance"])
        seg_metrics, seg_evidence = segmentation_entries(mix)
        metrics.update(seg_metrics)
        evidence.update(seg_evidence)
        seconds["mixture"] = time.perf_counter() - t0
    provenance = {
        keys.PROV_RUN: run,
        keys.PROV_DATASET: data.dataset,
        keys.PROV_IS_STANDIN: bool(data.is_standin),
        keys.PROV_MODEL: entry,
        keys.PROV_SEED: int(seed),
        keys.PROV_FEATURE_EXTRACTOR: extractor_label,
        keys.PROV_NUM_SAMPLES: num_samples,
        keys.PROV_DEVICE: describe_device(model.device),  # where the model's tensors were
        "label": label,
        "data_label": data.label,
        "num_test": data.num_test,
        "num_sets": cfg.num_sets if num_samples else 0,
        "eval_config": asdict(cfg),
        "generation": generation_provenance,
        "psnr_convention": CONVENTION,
        "data_range": DATA_RANGE[data.kind],
        "stage_seconds": seconds,
    }
    if reference is not None:
        provenance["reference"] = {"features": str(reference.features_path), "dataset": reference.record["dataset"]}
    return Evaluation(metrics, provenance, evidence, variants)


def write_evaluation(ev: Evaluation, metrics_path: str | Path, scores_path: str | Path) -> None:
    """metrics.json (with any inference variants) and scores.npz, each written atomically."""
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, schema=np.array(keys.SCORES_SCHEMA), **ev.evidence)
    atomic_write(scores_path, lambda f: f.write(buf.getbuffer()))
    # the scores file's digest binds metrics.json to the evidence it was computed from (vamoh recompute checks it)
    provenance = {**ev.provenance, "scores": Path(scores_path).name, "scores_sha256": hashlib.sha256(buf.getbuffer()).hexdigest(),
                  "inference_variants": ev.variants}
    write_metrics(metrics_path, ev.metrics, provenance)
