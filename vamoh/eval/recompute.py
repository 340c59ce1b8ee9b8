"""Recompute every number of a metrics.json from what the evaluation saved beside it (scores.npz) and the
dataset's reference features, without a model or a feature extractor.

    vamoh recompute results/demo/polymnist/vamoh/seed0/metrics.json

Generation metrics are recomputed from the saved generated features of every set and the reference's real
features (with the saved precision/recall subsets); PSNR from the saved per-sample squared errors by the
closed form 10 log10(R^2 / MSE) (independent of the scikit-image call that produced it); IoU, accuracy and
the mixture statistics from their saved per-sample values; the segmentation kappa from the saved coherence and
chance level, the segmentation ARIs from their saved per-sample values.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checks import DataError, check
from ..io import sha256_file
from . import keys
from .completion import COMPLETION_IOU, COMPLETION_TASKS
from .fid import SetMetricSettings, score_sets
from .io import metric_entry, read_json
from .recon import psnr_from_mse, summary


class _Saved(dict):
    """The arrays of a saved .npz; a missing one is a DataError naming the file and the array (a foreign or
    older file), not a KeyError."""

    path: Path

    def __missing__(self, key: str) -> Any:
        raise DataError(f"{self.path}: no array {key!r} (it holds {sorted(self)}); expected the file the evaluate stage wrote")


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    check(path.is_file(), f"saved scores not found: {path} (written by the evaluate stage beside metrics.json)", DataError)
    try:
        with np.load(path, allow_pickle=False) as z:
            out = _Saved({k: z[k] for k in z.files})
    except Exception as err:  # zipfile, zlib, pickle refusals: the file is damaged or not ours
        raise DataError(f"{path}: cannot read it as the evaluation's .npz ({type(err).__name__}: {err}); the file is truncated, "
                        f"corrupt or not written by the evaluate stage: rerun the evaluation") from None
    out.path = path
    return out


def _reference_path(metrics_path: Path, recorded: str) -> Path:
    """The reference features a metrics file names. The workflow records them relative to its working directory,
    which need not be where ``vamoh recompute`` runs: a relative path is tried from here, then from each directory
    above the metrics file (the first that holds it is the run's working directory)."""
    path = Path(recorded)
    if path.is_absolute() or path.is_file():
        return path
    for parent in metrics_path.resolve().parents:
        if (parent / path).is_file():
            return parent / path
    return path  # not found anywhere: _load_npz names it


def pointset_metrics_from_scores(scores: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """COV / MMD / 1-NNA from the saved Chamfer matrices (or, when no generated shape had a surface, from the
    saved mask of kept shapes); empty when the evaluation scored no point sets."""
    from .keys import COV, MMD, ONE_NNA
    from .pointsets import cov_mmd_1nna_from_distances, cov_mmd_1nna_nothing_generated

    if "chamfer_gen_ref" in scores:
        res = cov_mmd_1nna_from_distances(*(torch.from_numpy(scores[f"chamfer_{k}"]) for k in ("gen_ref", "gen_gen", "ref_ref")))
    elif "pointsets_generated_kept" in scores:
        check(not scores["pointsets_generated_kept"].any(), "scores: generated shapes kept but no Chamfer distances saved", DataError)
        res = cov_mmd_1nna_nothing_generated()
    else:
        return {}
    return {keys.COV_CD: metric_entry([res[COV]]), keys.MMD_CD: metric_entry([res[MMD]]), keys.NNA_CD: metric_entry([res[ONE_NNA]])}


def recompute_metrics(metrics_path: str | Path) -> dict[str, dict[str, Any]]:
    """Metric entries recomputed from the evidence of the evaluation that wrote ``metrics_path``."""
    metrics_path = Path(metrics_path)
    data = read_json(metrics_path, keys.METRICS_SCHEMA)
    check("provenance" in data and "metrics" in data, f"{metrics_path}: no 'provenance'/'metrics' (keys {sorted(data)}); expected a metrics.json of the evaluate stage", DataError)
    prov = data["provenance"]
    scores_path = metrics_path.with_name(prov["scores"])
    if prov.get("scores_sha256") and scores_path.is_file():
        digest = sha256_file(scores_path)
        check(digest == prov["scores_sha256"], f"{scores_path}: sha256 {digest[:12]}…, but {metrics_path} was computed from a scores file "
              f"with sha256 {prov['scores_sha256'][:12]}…: the evidence is not what these numbers came from (rerun the evaluate job)", DataError)
    scores = _load_npz(scores_path)
    check(str(scores.get("schema")) == keys.SCORES_SCHEMA, f"{metrics_path.with_name(prov['scores'])}: schema {scores.get('schema')!r}, expected {keys.SCORES_SCHEMA!r}", DataError)
    out: dict[str, dict[str, Any]] = {}
    if "gen_features" in scores:
        ref = _load_npz(_reference_path(metrics_path, prov["reference"]["features"]))
        reals = {s: torch.from_numpy(ref[f"real_{s}"]) for s in keys.REAL_SPLITS}
        prc = {s: scores[f"prc_index_{s}"] for s in keys.REAL_SPLITS}
        g = prov["generation"]
        settings = SetMetricSettings(**{k: g[k] for k in SetMetricSettings.__dataclass_fields__})
        per_set = score_sets([torch.from_numpy(f) for f in scores["gen_features"]], reals, prc, settings)
        out.update({k: metric_entry(v) for k, v in per_set.items()})
    out.update(pointset_metrics_from_scores(scores))
    if "memorisation_gen_to_train" in scores:
        from .memorisation import memorisation_report

        q = data["metrics"][keys.MEMORISATION_RATIO]["quantile"]
        report = memorisation_report(scores["memorisation_gen_to_train"], scores["memorisation_test_to_train"], quantile=q)
        out[keys.MEMORISATION_RATIO] = metric_entry([report["median_ratio"]])
        out[keys.MEMORISATION_CLOSE] = metric_entry([report["frac_below_test_quantile"]])
    data_range = float(prov["data_range"])
    if "recon_mse" in scores:
        out[keys.PSNR] = summary(psnr_from_mse(scores["recon_mse"], data_range))
        for k in (keys.VOXEL_IOU, keys.VOXEL_ACCURACY):
            if f"recon_{k}" in scores:
                out[k] = summary(scores[f"recon_{k}"])
        for task, key in COMPLETION_TASKS.items():
            out[key] = summary(psnr_from_mse(scores[f"completion_{task}_mse"], data_range))
            if f"completion_{task}_voxel_iou" in scores:
                out[COMPLETION_IOU[task]] = summary(scores[f"completion_{task}_voxel_iou"])
    if "recon_leakfree_mse" in scores:  # the leak-free protocol's per-sample errors
        out[keys.PSNR_LEAK_FREE] = summary(psnr_from_mse(scores["recon_leakfree_mse"], data_range))
        for k in (keys.VOXEL_IOU, keys.VOXEL_ACCURACY):
            if f"recon_leakfree_{k}" in scores:
                out[keys.LEAK_FREE_KEYS[k]] = summary(scores[f"recon_leakfree_{k}"])
    for key in keys.SUPERRES_KEYS:  # per-sample scores against the 2x render
        if key in scores:
            out[key] = summary(scores[key])
    for key, name in ((keys.MIXTURE_ENTROPY, "mixture_entropy"), (keys.SEGMENT_COHERENCE, "segment_coherence"), (keys.SEGMENT_CHANCE, "segment_chance")):
        if name in scores:
            v = scores[name]
            out[key] = summary(v[~np.isnan(v)])
    out.update(segmentation_metrics_from_scores(scores))
    return out


def segmentation_metrics_from_scores(scores: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """The segmentation scores from the saved evidence: kappa recomputed from the saved per-sample coherence and
    chance level (the saved kappa only marks that the evaluation scored it), the ARIs from their saved per-sample
    values; empty for an evaluation without mixture maps, and without the part scores where the data had no parts."""
    from .evaluate import segmentation_entries
    from .maps import segment_kappa

    if "segment_coherence" not in scores or "segment_chance" not in scores or keys.SEGMENT_KAPPA not in scores:
        return {}  # no mixture maps, or evidence written before these scores existed (its metrics.json has none either)
    mix = {"kappa": segment_kappa(scores["segment_coherence"], scores["segment_chance"])}
    for key, name in ((keys.SEGMENT_POSITION_ARI, "position_ari"), (keys.SEGMENT_PARTS_ARI, "parts_ari"), (keys.SEGMENT_PARTS_ARI_KMEANS, "parts_ari_kmeans")):
        if key in scores:
            mix[name] = scores[key]
    return segmentation_entries(mix)[0]


def compare(saved: dict[str, dict[str, Any]], recomputed: dict[str, dict[str, Any]], rtol: float = 1e-6, atol: float = 1e-9) -> list[str]:
    """Differences between saved and recomputed entries (mean, std and every per-set/per-sample value)."""

    def same(a: Any, b: Any) -> bool:
        # JSON holds a non-finite number (a perfect reconstruction's inf PSNR, its nan std) as null
        a = None if a is None or not math.isfinite(float(a)) else float(a)
        b = None if b is None or not math.isfinite(float(b)) else float(b)
        if a is None or b is None:
            return a is None and b is None
        return abs(a - b) <= atol + rtol * abs(b)

    problems = []
    for key, entry in recomputed.items():
        old = saved.get(key, {})
        for field in ("mean", "std"):
            if not same(old.get(field), entry[field]):
                problems.append(f"{key}.{field}: saved {old.get(field)}, recomputed {entry[field]}")
        ov, nv = old.get("values") or [], entry["values"]
        if len(ov) != len(nv) or not all(same(a, b) for a, b in zip(ov, nv)):
            problems.append(f"{key}.values: saved {len(ov)} values differ from the {len(nv)} recomputed")
    missing = [k for k, e in saved.items() if e.get("mean") is not None and k not in recomputed]
    problems += [f"{k}: saved but not recomputable from the scores" for k in missing]
    return problems
