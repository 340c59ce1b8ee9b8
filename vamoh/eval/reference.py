"""The reference stage of one dataset: what every model's numbers are compared with, computed once.

For image data:
- the feature extractor: the suite's autoencoder, trained here on one half of the train split (its quality
  on the test split is recorded: reconstruction PSNR), a suite extractor given by the config, or Inception;
- the real features of the test split and of the train split (for an extractor trained here, of the train
  half it did not see; a seeded subset of ``eval.max_real`` when set), which every evaluation of the
  dataset scores its generated sets against;
- sanity rows scored exactly like a model's generated sets: held-out real images (the floor: what a
  perfect generator would score at this sample size), uniform noise images (the ceiling), and three
  generators that learned nothing worth a verdict: the train-mean image repeated, one real image repeated
  (collapse) and held-out real images under a heavy blur. A model must beat all of them (and be as spread
  as the data) before a verdict compares it (``vamoh.report.summary``).

For every kind of data:
- the train-mean baseline of reconstruction: every test sample predicted by the mean of the train split,
  scored like a model's reconstructions (and inside each completion mask, like a completion). A model that
  does not beat it has not learned to reconstruct;
- inside each completion mask, also the observed part's mean (every hidden point given the mean of the sample's
  observed points): a completion that beats the train mean only by matching the sample's overall colour has not
  completed anything;
- super-resolution (stand-ins that can render 2x, ``vamoh.data.registry.superres_truth``): the first
  ``eval.superres_samples`` test samples rendered at 2x (``superres_truth`` in features.npz), and the model-free
  baseline's score against them (bicubic for images, nearest for voxels; ``vamoh.eval.superres``).

``build_reference`` returns the record written to ``reference.json`` and the arrays written to
``features.npz``; ``ReferenceData.load`` reads them back for the evaluations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..checks import DataError, check
from . import keys
from .config import EvalConfig
from .fid import ExtractorSpec, FidelityScorer, prc_subset_index, resolve_extractor, score_sets, set_seed
from .io import metric_entry, read_json
from .names import SUITE
from .completion import COMPLETION_IOU, COMPLETION_TASKS, missing_count, missing_region, observed_mean_prediction, region_scores
from .recon import DATA_RANGE, reconstruction_scores, summary, to_metric_arrays


def subset_index(n: int, max_n: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subset of ``max_n`` of ``n`` items (all of them when max_n is 0 or >= n)."""
    if max_n <= 0 or n <= max_n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_n, replace=False))


def noise_images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Uniform noise images, uint8 (n, *shape): the ceiling row of the generation tables."""
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


BLUR_FRACTION = 1 / 16  # the blurred row's Gaussian sigma as a fraction of the image side: 4 px at 64x64, 1.75 px at 28x28


def blur_sigma(grid_shape: tuple[int, ...]) -> float:
    return float(BLUR_FRACTION * max(grid_shape[:2]))


def blur_images(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, H, W, C) under a Gaussian blur of ``blur_sigma`` pixels (reflecting edges), per channel."""
    from scipy.ndimage import gaussian_filter

    sigma = blur_sigma(images.shape[1:3])
    out = gaussian_filter(images.astype(np.float64), sigma=(0, sigma, sigma, 0), mode="reflect")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def check_generation_sizes(n_train: int, n_test: int, cfg: EvalConfig, dataset: str) -> None:
    """Every real split must hold more samples than the k of precision/recall (k-NN radii need k others)."""
    from ..data import DATASETS

    k = cfg.prc_neighborhood
    rule = DATASETS[dataset].split_rule if dataset in DATASETS else "the dataset's split rule"
    for split, n in (("train", n_train), ("test", n_test)):
        check(n > k, f"{dataset}: the {split} split has {n} images, but precision/recall with k={k} needs more than {k} "
                     f"(eval.prc_neighborhood); use more {split} images: the split's size comes from the data ({rule}), "
                     f"which data.settings.{dataset}.n_{split} can only cap", DataError)


# ----------------------------------------------------------------------------------------- extractor


EXTRACTOR_GATE_DB = 6.0  # the extractor must reconstruct held-out images this much better than the train-mean image


def extractor_quality(model: Any, images: np.ndarray, train_images: np.ndarray | None = None, batch_size: int = 128) -> dict[str, Any]:
    """How well the suite autoencoder reconstructs held-out images, at its input resolution (paper-convention PSNR),
    against the train-mean image at the same resolution; ``passes`` when it is EXTRACTOR_GATE_DB better.

    An extractor that reconstructs no better than the mean image encodes next to nothing of an image, and FIDs
    on its features are noise (the old demo's 15-step extractor let pure noise beat recognisable faces).
    """
    from .extractors import images_to_tensor

    def psnr_of(pred: Any, x: Any) -> Any:
        mse = ((pred - x) ** 2).sum(1).mean((1, 2)).double()  # per image: squared error summed over channels
        return 10 * torch.log10(1.0 / mse.clamp(min=1e-12))

    data = images_to_tensor(images)
    mean = None
    if train_images is not None:
        train = images_to_tensor(train_images)
        with torch.no_grad():
            mean = torch.stack([model.preprocess(train[s : s + batch_size]).sum(0) for s in range(0, len(train), batch_size)]).sum(0) / len(train)
    own, base = [], []
    with torch.no_grad():
        for s in range(0, len(data), batch_size):
            x = model.preprocess(data[s : s + batch_size])  # (b, 3, s, s) in [0, 1]
            own.append(psnr_of(model.decoder(model.encode(x)), x))
            if mean is not None:
                base.append(psnr_of(mean.expand_as(x), x))
    psnr = torch.cat(own).numpy()
    out: dict[str, Any] = {"test_psnr_db": float(psnr.mean()), "test_psnr_db_std": float(psnr.std(ddof=1)) if len(psnr) > 1 else 0.0,
                           "num_test_images": int(len(psnr)), "resolution": int(model.config.input_size)}
    if base:
        mean_db = float(torch.cat(base).numpy().mean())
        out.update(mean_image_psnr_db=mean_db, margin_db=out["test_psnr_db"] - mean_db, gate_db=EXTRACTOR_GATE_DB,
                   passes=bool(out["test_psnr_db"] - mean_db >= EXTRACTOR_GATE_DB))
    return out


def prepare_extractor(cfg: EvalConfig, train_images: np.ndarray, test_images: np.ndarray, dataset: str, out: str | Path,
                      device: str | torch.device) -> tuple[ExtractorSpec, dict[str, Any]]:
    """The configured extractor, its spec and what is known of its quality.

    "suite" without given weights: trained now on ``train_images`` and saved to ``out`` (+ .sha256).
    """
    from .extractors import load_extractor, save_extractor, train_extractor

    info: dict[str, Any] = {"kind": cfg.feature_extractor}
    if cfg.feature_extractor == SUITE:
        weights = cfg.suite_extractor_weights
        if weights is None:
            ext_cfg = cfg.extractor_config()
            model = train_extractor(train_images, ext_cfg, dataset=dataset, device=str(device)).cpu()
            save_extractor(model, out, dataset)
            weights = str(out)
            info.update(trained_here=True, config=asdict(ext_cfg), num_train_images=int(min(len(train_images), ext_cfg.max_train_images)))
        else:
            model, meta = load_extractor(weights)
            info.update(trained_here=False, config=meta.get("config"), trained_on=meta.get("dataset"))
        info["quality"] = extractor_quality(model, test_images, train_images)
        spec = resolve_extractor(SUITE, suite_weights=weights)
    else:
        spec = resolve_extractor(cfg.feature_extractor, inception_weights=cfg.inception_weights)
        info["quality"] = {"note": "the paper's Inception-v3 (torch-fidelity's inception-v3-compat weights)"}
    info.update(label=spec.label, sha256=spec.digest, weights=spec.weights_path)
    return spec, info


# ----------------------------------------------------------------------------------------- the stage


def _set_entries(per_set: dict[str, list[float]], **extra: Any) -> dict[str, dict[str, Any]]:
    return {k: metric_entry(v, **extra) for k, v in per_set.items()}


def build_reference(splits: dict[str, Any], cfg: EvalConfig, *, seed: int, device: str | torch.device,
                    extractor_out: str | Path, superres: Any = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The reference of one dataset: (record for reference.json, arrays for features.npz).

    ``splits``: {"train", "test", ...} FunctionDatasets. ``extractor_out``: where a suite extractor
    trained here is saved (image data only; nothing is written there otherwise). ``superres``: the first test
    samples rendered at 2x (``vamoh.data.spec.SuperResTruth``), or None when the data layer was not asked.
    """
    train, test = splits["train"], splits["test"]
    spec = test.spec
    check(len(test) > 0 and len(train) > 0, f"{spec.name}: the reference needs a non-empty train and test split (found {len(train)}, {len(test)})", DataError)
    arrays: dict[str, np.ndarray] = {}
    metrics: dict[str, dict[str, dict[str, Any]]] = {}
    record: dict[str, Any] = {"schema": keys.REFERENCE_SCHEMA, "dataset": spec.name, "kind": spec.kind, "seed": int(seed),
                              "sizes": {"train": len(train), "test": len(test)}}

    # ---- the train-mean baseline of reconstruction (every kind)
    mean = _streamed_mean(train)  # (D, f)
    targets = test.features(torch.arange(len(test)))  # (N, D, f)
    scores = reconstruction_scores(mean.expand_as(targets), targets, tuple(spec.grid_shape), spec.kind)
    arrays["mean_image"] = mean.numpy()
    arrays["mean_mse"] = scores["mse"]
    metrics[keys.REF_MEAN] = {k: summary(v) for k, v in scores.items() if k != "mse"}
    record["mean_image"] = {"data_range": DATA_RANGE[spec.kind], "num_test": len(test)}
    # the same baseline inside each completion mask, on the samples the evaluations complete (the first
    # eval.completion_samples of the test split): what a completion must beat to have used the observed part
    n_comp = min(cfg.completion_samples, len(test))
    true = to_metric_arrays(targets[:n_comp], tuple(spec.grid_shape), spec.kind)
    pred = to_metric_arrays(mean.expand_as(targets[:n_comp]), tuple(spec.grid_shape), spec.kind)
    metrics[keys.REF_OBSERVED_MEAN] = {}
    for task, key in COMPLETION_TASKS.items():
        region = np.broadcast_to(missing_region(task, tuple(spec.grid_shape)), (n_comp, *spec.grid_shape))
        for model, guess in ((keys.REF_MEAN, pred), (keys.REF_OBSERVED_MEAN, observed_mean_prediction(true, region))):
            scores = region_scores(guess, true, task, spec.kind)
            metrics[model][key] = summary(scores["psnr"], missing_points=missing_count(task, tuple(spec.grid_shape)))
            if "voxel_iou" in scores:
                metrics[model][COMPLETION_IOU[task]] = summary(scores["voxel_iou"], missing_points=missing_count(task, tuple(spec.grid_shape)))

    # ---- super-resolution against the stand-in's own 2x render, and the model-free upsampling baseline
    if superres is not None:
        record["superres"] = {"available": superres.values is not None, "description": superres.description, "factor": 2}
        if superres.values is not None:
            from .superres import BASELINE, SCORE_KEY, score, truth_arrays, upsample_baseline

            n_sr = len(superres.values)
            truth = truth_arrays(superres.values, spec.kind)
            low = to_metric_arrays(targets[:n_sr], tuple(spec.grid_shape), spec.kind)
            metrics[keys.REF_UPSAMPLED] = {SCORE_KEY[spec.kind]: summary(score(upsample_baseline(low, spec.kind), truth, spec.kind), baseline=BASELINE[spec.kind])}
            arrays["superres_truth"] = np.asarray(superres.values)
            record["superres"].update(num_samples=n_sr, baseline=BASELINE[spec.kind], shape=list(truth.shape[1:]))

    # ---- generation references (image data)
    if spec.kind == "image":
        check_generation_sizes(len(train), len(test), cfg, spec.name)
        # A suite extractor trained here learns from one half of the train split (seeded) and the "tr" embeddings come
        # from the other half, so neither the tr nor the tst features are in-sample for the extractor, and FID tr
        # against FID tst measures the generator, not the extractor's overfitting. Given weights (or Inception) were
        # trained elsewhere: the whole train split is embedded.
        halves = cfg.feature_extractor == SUITE and cfg.suite_extractor_weights is None
        if halves:
            perm = np.random.default_rng(seed + 7).permutation(len(train))
            extractor_idx, embed_pool = np.sort(perm[: len(train) // 2]), np.sort(perm[len(train) // 2 :])
            check(len(embed_pool) > cfg.prc_neighborhood, f"{spec.name}: half of the train split ({len(embed_pool)} images) is embedded as "
                  f"'tr' and must hold more than k={cfg.prc_neighborhood}; use more train images (data.settings.{spec.name}.n_train)", DataError)
            train_idx = embed_pool[subset_index(len(embed_pool), cfg.max_real, seed)]
        else:
            extractor_idx, train_idx = None, subset_index(len(train), cfg.max_real, seed)
        test_idx = subset_index(len(test), cfg.max_real, seed + 1)
        train_images, test_images = train.images_uint8(train_idx), test.images_uint8(test_idx)
        extractor_images = train.images_uint8(extractor_idx) if extractor_idx is not None else train_images
        ext_spec, ext_info = prepare_extractor(cfg, extractor_images, test_images, spec.name, extractor_out, device)
        ext_info["trained_on"] = ("half of the train split, disjoint from the embedded tr half and from tst" if halves
                                  else ext_info.get("trained_on") or "elsewhere (given weights)")
        ext_info["disjoint_from_embeddings"] = bool(halves or cfg.feature_extractor != SUITE)
        if extractor_idx is not None:
            arrays["extractor_train_index"] = extractor_idx
        scorer = FidelityScorer(ext_spec, device, cfg.batch_size, cfg.set_metric_settings())
        reals = {"train": scorer.features(train_images), "test": scorer.features(test_images)}  # (N, d) each
        arrays.update(real_train=reals["train"].numpy(), real_test=reals["test"].numpy(), real_train_index=train_idx, real_test_index=test_idx)
        n = cfg.num_samples
        images = {"train": train_images, "test": test_images}
        # floor: real images the extractor scores as if generated; against train embeddings they come from the
        # test split, against test embeddings from the train split (never scored against themselves). The blurred
        # row is the same picks under a heavy blur: real content without the detail.
        floor_sizes = {split: min(n, len(reals["test" if split == "train" else "train"])) for split in ("train", "test")}
        floor: dict[str, list[float]] = {}
        blurred: dict[str, list[float]] = {}
        for split, other in (("train", "test"), ("test", "train")):
            m = floor_sizes[split]
            prc = {split: prc_subset_index(len(reals[split]), m, seed)}
            sets, blur_sets, picks = [], [], []
            for i in range(cfg.num_sets):
                pick = np.sort(np.random.default_rng(set_seed(seed, 100 + i)).choice(len(reals[other]), m, replace=False))
                picks.append(pick)
                sets.append(reals[other][torch.from_numpy(pick)])
                blur_sets.append(scorer.features(blur_images(images[other][pick])))
            per_set = score_sets(sets, {split: reals[split]}, prc, scorer.settings)
            floor.update({k: v for k, v in per_set.items() if k.endswith(f"_{split}")})
            per_set = score_sets(blur_sets, {split: reals[split]}, prc, scorer.settings)
            blurred.update({k: v for k, v in per_set.items() if k.endswith(f"_{split}")})
            arrays[f"heldout_pick_{split}"] = np.stack(picks)
            arrays[f"prc_index_heldout_{split}"] = prc[split]
            arrays[f"blurred_features_{split}"] = torch.stack(blur_sets).numpy()
        metrics[keys.REF_HELDOUT] = _set_entries(floor, num_samples=floor_sizes)
        metrics[keys.REF_BLURRED] = _set_entries(blurred, num_samples=floor_sizes, blur_sigma_px=blur_sigma(spec.grid_shape))
        prc = {split: prc_subset_index(len(f), n, seed) for split, f in reals.items()}
        # ceiling: uniform noise, the generated set size of the models
        noise_feats = [scorer.features(noise_images(n, tuple(spec.grid_shape) + (spec.feature_dim,), set_seed(seed, 200 + i))) for i in range(cfg.num_sets)]
        metrics[keys.REF_NOISE] = _set_entries(score_sets(noise_feats, reals, prc, scorer.settings), num_samples=n)
        arrays["noise_features"] = torch.stack(noise_feats).numpy()
        arrays.update({f"prc_index_noise_{s}": i for s, i in prc.items()})
        # collapse: one held-out (test) image repeated n times per set, a different image per set
        picks = np.random.default_rng(set_seed(seed, 300)).choice(len(test_images), cfg.num_sets, replace=len(test_images) < cfg.num_sets)
        collapsed = [scorer.features(np.repeat(test_images[i : i + 1], n, axis=0)) for i in picks]
        metrics[keys.REF_COLLAPSED] = _set_entries(score_sets(collapsed, reals, prc, scorer.settings), num_samples=n)
        arrays["collapsed_pick"] = picks
        # the train-mean image repeated n times: a generator that learned only the average (the mean of the
        # embedded tr images, so it is no copy of anything the extractor saw)
        mean_img = np.clip(np.rint(train_images.astype(np.float64).mean(0)), 0, 255).astype(np.uint8)
        mean_feats = scorer.features(np.repeat(mean_img[None], n, axis=0))
        metrics[keys.REF_MEAN].update(_set_entries(score_sets([mean_feats] * cfg.num_sets, reals, prc, scorer.settings), num_samples=n))
        record["extractor"] = ext_info
        record["generation"] = {"num_samples": n, "num_sets": cfg.num_sets, "floor_num_samples": floor_sizes,
                                "num_real": {s: int(len(f)) for s, f in reals.items()}, "blur_sigma_px": blur_sigma(spec.grid_shape),
                                **scorer.describe()}
    record["metrics"] = metrics
    return record, arrays


def _streamed_mean(split: Any, block: int = 1024) -> Tensor:
    total = None
    for s in range(0, len(split), block):
        part = split.features(torch.arange(s, min(s + block, len(split)))).double().sum(0)
        total = part if total is None else total + part
    return (total / len(split)).float()


@dataclass
class ReferenceData:
    """A dataset's reference as the evaluations use it."""

    record: dict[str, Any]
    features_path: Path
    real: dict[str, Tensor]  # split -> real features (N, d); empty for data without generation metrics

    @classmethod
    def load(cls, json_path: str | Path, features_path: str | Path) -> "ReferenceData":
        record = read_json(json_path, keys.REFERENCE_SCHEMA)
        features_path = Path(features_path)
        check(features_path.is_file(), f"reference features not found: {features_path}", DataError)
        with np.load(features_path, allow_pickle=False) as z:
            real = {s: torch.from_numpy(z[f"real_{s}"]) for s in keys.REAL_SPLITS if f"real_{s}" in z.files}
        return cls(record, features_path, real)

    def superres_truth(self) -> np.ndarray | None:
        """The first test samples rendered at 2x (stand-ins that can render them), or None."""
        if not (self.record.get("superres") or {}).get("available"):
            return None
        with np.load(self.features_path, allow_pickle=False) as z:
            check("superres_truth" in z.files, f"{self.features_path}: reference.json promises a 2x render ('superres_truth') that is not there", DataError)
            return z["superres_truth"]

    @property
    def extractor_spec(self) -> ExtractorSpec | None:
        ext = self.record.get("extractor")
        if ext is None:
            return None
        if ext["kind"] == SUITE:
            return resolve_extractor(SUITE, suite_weights=ext["weights"])
        return resolve_extractor(ext["kind"], inception_weights=ext["weights"])
