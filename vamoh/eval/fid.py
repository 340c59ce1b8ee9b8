"""Generation quality (Tables 1 and 4): FID, KID and improved precision/recall (k = 3) via torch-fidelity,
and density/coverage (Naeem et al. 2020) via ``vamoh.eval.coverage``, all on the same features.

Feature extraction and every formula are torch-fidelity's own functions (``fid_features_to_statistics``,
``fid_statistics_to_metric``, ``kid_features_to_metric``, ``prc_features_to_metric``); this module only
wires them up so that

- one feature extractor is built once per evaluation, never downloads anything, and is named in
  every result (``ExtractorSpec.label``);
- every number is a function of features alone (``set_metrics``): the real features come from the
  workflow's reference stage (computed once per dataset), the generated features are extracted once
  per set, saved, and scored against both real splits, so that ``vamoh.eval.recompute`` can redo every
  number from the saved features without a model or an extractor.

Convention (torch-fidelity's): input 1 = generated, input 2 = real. Precision = fraction of generated
samples inside the real manifold; recall = fraction of real samples inside the generated manifold.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..checks import CheckpointError, ConfigError, DataError, check
from . import keys
from .extractors import SUITE_EXTRACTOR, SUITE_FEATURE, images_to_tensor, register_suite_extractor
from .io import metric_entry
from .names import INCEPTION, SUITE

# the config keys that name weights files, as the error messages give them
INCEPTION_WEIGHTS_KEY = "eval.inception_weights"
SUITE_WEIGHTS_KEY = "eval.suite_extractor_weights"

INCEPTION_FEATURE = "2048"


class InceptionWeightsMissingError(FileNotFoundError):
    """The paper's Inception weights are not on disk (and will not be downloaded)."""


@dataclass(frozen=True)
class ExtractorSpec:
    name: str  # torch-fidelity registry name
    weights_path: str  # always a local file: torch-fidelity never downloads
    feature_layer: str  # feature used for FID, KID and PRC
    label: str  # what results call it, e.g. "inception-v3-compat" or "vamoh-suite-ae[polymnist]@1a2b3c4d5e6f"
    digest: str  # suite: sha256 of the weights' content (extractors.weights_digest); Inception: the file's sha256


# ----------------------------------------------------------------------------- extractors


def inception_weights_filename() -> tuple[str, str]:
    """(file name, URL) of torch-fidelity's Inception weights, read from the installed package."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return os.path.basename(urlparse(URL_INCEPTION_V3).path), URL_INCEPTION_V3


def default_inception_weights_path() -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` would have stored them: <hub dir>/checkpoints/<file>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / inception_weights_filename()[0]


def inception_spec(weights: str | Path | None = None, verify_hash: bool = True) -> ExtractorSpec:
    """The paper's extractor with a local weights file, or ``InceptionWeightsMissingError`` naming it.

    ``weights`` is the config value ``eval.inception_weights``; ``None`` means the torch hub cache.
    """
    filename, url = inception_weights_filename()
    hub_path = default_inception_weights_path()
    path = Path(weights) if weights is not None else hub_path
    if not path.is_file():
        raise InceptionWeightsMissingError(
            f"Inception-v3 FID weights not found: {path}. torch-fidelity's feature extractor {INCEPTION!r} needs "
            f"the file {filename} (published at {url}); this machine cannot download it. Copy it to {hub_path} "
            f"(the torch hub cache) or to any path and set config key {INCEPTION_WEIGHTS_KEY} to that path; "
            f"or set eval.feature_extractor: suite to use the suite's own offline extractor."
        )
    # torch hub convention: the file name ends in the first hex digits of the file's sha256.
    prefix = filename.rsplit("-", 1)[-1].split(".")[0]
    digest = prefix
    if verify_hash:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
        digest = h.hexdigest()
        check(digest.startswith(prefix), f"{path}: sha256 {digest[:16]}... does not start with {prefix} (expected torch-fidelity's {filename}; config key {INCEPTION_WEIGHTS_KEY})", CheckpointError)
    return ExtractorSpec(INCEPTION, str(path), INCEPTION_FEATURE, INCEPTION, digest)


def suite_spec(weights: str | Path) -> ExtractorSpec:
    """The suite-trained extractor from a verified weights file (config key ``eval.suite_extractor_weights``)."""
    from .extractors import load_extractor

    _, meta = load_extractor(weights)  # verifies the file against its .sha256 first
    digest = meta["content_sha256"]  # the weights' identity, the same for every save of the same weights
    register_suite_extractor()
    label = f"{SUITE_EXTRACTOR}[{meta.get('dataset', '?')}]@{digest[:12]}"
    return ExtractorSpec(SUITE_EXTRACTOR, str(weights), SUITE_FEATURE, label, digest)


def resolve_extractor(kind: str, *, inception_weights: str | Path | None = None, suite_weights: str | Path | None = None) -> ExtractorSpec:
    """``kind`` = "inception-v3-compat" or "suite" (config key ``eval.feature_extractor``)."""
    if kind == INCEPTION:
        return inception_spec(inception_weights)
    if kind == SUITE:
        check(suite_weights is not None, f"eval.feature_extractor=suite needs a weights file ({SUITE_WEIGHTS_KEY})", ConfigError)
        return suite_spec(suite_weights)  # type: ignore[arg-type]
    raise ConfigError(f"eval.feature_extractor={kind!r} is not one of [{SUITE!r}, {INCEPTION!r}]")


# ----------------------------------------------------------------------------- inputs


class UInt8Images(Dataset):
    """torch-fidelity input: item i is a uint8 tensor (3, H, W)."""

    def __init__(self, images: np.ndarray | Tensor) -> None:
        self.data = images if isinstance(images, Tensor) else images_to_tensor(images)  # (N, 3, H, W)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> Tensor:
        return self.data[i]


# ----------------------------------------------------------------------------- scoring features


@dataclass(frozen=True)
class SetMetricSettings:
    """How a generated set is scored: the knobs every number depends on (saved with the numbers)."""

    prc_neighborhood: int = 3  # k of improved precision/recall and of density/coverage (the paper's k = 3)
    kid_subsets: int = 100
    kid_subset_size: int = 1000  # clipped to the smaller set size
    prc_batch_size: int = 2000  # rows of the k-NN distance matrix held at once (same numbers for any value)
    kid_rng_seed: int = 2020  # torch-fidelity's default


def set_metrics(generated: Tensor, real: Tensor, prc_real: Tensor, settings: SetMetricSettings) -> dict[str, float]:
    """FID and KID against ``real`` (N, d), precision/recall/density/coverage against ``prc_real`` (n, d),
    of generated features (M, d): one value per key of ``keys.SET_METRICS``."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric
    from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

    from .coverage import density_coverage

    check(generated.shape[1] == real.shape[1] == prc_real.shape[1], f"feature dims differ: generated {tuple(generated.shape)}, real {tuple(real.shape)}", DataError)
    k = settings.prc_neighborhood
    check(min(len(generated), len(prc_real)) > k, f"precision/recall with k={k} needs more than {k} samples per set; got {len(generated)} generated, {len(prc_real)} real (eval.prc_neighborhood, eval.num_samples)", DataError)
    fid = fid_statistics_to_metric(fid_features_to_statistics(generated), fid_features_to_statistics(real), verbose=False)[KEY_METRIC_FID]
    kid = kid_features_to_metric(generated, real, kid_subsets=settings.kid_subsets, kid_subset_size=min(settings.kid_subset_size, len(generated), len(real)),
                                 rng_seed=settings.kid_rng_seed, verbose=False)[KEY_METRIC_KID_MEAN]
    # batched k-NN (save_cpu_ram=True): the same numbers with at most prc_batch_size x N distances in memory
    prc = prc_features_to_metric(generated, prc_real, prc_neighborhood=k, prc_batch_size=settings.prc_batch_size, save_cpu_ram=True, verbose=False)
    dc = density_coverage(prc_real, generated, k=k, batch_size=settings.prc_batch_size)
    return {keys.FID: float(fid), keys.KID: float(kid), keys.PRECISION: float(prc[KEY_METRIC_PRECISION]),
            keys.RECALL: float(prc[KEY_METRIC_RECALL]), keys.DENSITY: float(dc["density"]), keys.COVERAGE: float(dc["coverage"]),
            keys.SPREAD: spread_ratio(generated, real)}


def spread_ratio(generated: Tensor, real: Tensor) -> float:
    """RMS distance of the generated features (M, d) to their own mean, over the real features' (N, d), in float64.

    1 for a set as spread as the data, 0 for a collapsed set (every sample the same); the diversity check of
    the learned-gates (``vamoh.report.summary``)."""
    def rms(x: Tensor) -> float:
        x = x.double()
        return float((x - x.mean(0)).pow(2).sum(1).mean().sqrt())

    r = rms(real)
    return rms(generated) / r if r > 0 else float("nan")


def prc_subset_index(n_real: int, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subset of ``n`` of ``n_real`` real samples (all of them when n_real <= n).

    Improved precision/recall compares equal-sized sets (k-NN radii shrink as a set grows), so the real
    side is cut to the generated set's size, the same subset for every set.
    """
    if n_real <= n:
        return np.arange(n_real)
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n_real, generator=g)[:n].sort().values.numpy()


class FidelityScorer:
    """One torch-fidelity feature extractor and the settings its sets are scored with."""

    def __init__(self, spec: ExtractorSpec, device: str | torch.device = "cpu", batch_size: int = 64, settings: SetMetricSettings | None = None) -> None:
        from torch_fidelity.utils import create_feature_extractor

        self.spec = spec
        self.cuda = torch.device(device).type == "cuda"
        self.batch_size = batch_size
        self.settings = settings or SetMetricSettings()
        if spec.name == SUITE_EXTRACTOR:
            register_suite_extractor()
        self.extractor = create_feature_extractor(
            spec.name, [spec.feature_layer], cuda=self.cuda, feature_extractor_weights_path=spec.weights_path, verbose=False
        )

    def features(self, images: np.ndarray | Tensor) -> Tensor:
        """Features (N, d) float32 on the CPU of uint8 images (N, H, W, 3), through torch-fidelity."""
        from torch_fidelity.utils import extract_featuresdict_from_input_id

        feats = extract_featuresdict_from_input_id(
            1, self.extractor, input1=UInt8Images(images), cuda=self.cuda, batch_size=self.batch_size, save_cpu_ram=True, verbose=False,
        )  # fmt: skip
        return feats[self.spec.feature_layer].float().cpu()

    def describe(self) -> dict[str, Any]:
        import torch_fidelity

        return {
            keys.PROV_FEATURE_EXTRACTOR: self.spec.label,
            "feature_layer": self.spec.feature_layer,
            "feature_extractor_weights": self.spec.weights_path,
            "feature_extractor_sha256": self.spec.digest,
            "torch_fidelity_version": torch_fidelity.__version__,
            **asdict(self.settings),
        }


def generation_metrics(generated: np.ndarray, real: np.ndarray, scorer: FidelityScorer) -> dict[str, float]:
    """Every set metric of one generated set, uint8 (N, H, W, 3), against real images (all of them for P/R)."""
    real_feats = scorer.features(real)
    return set_metrics(scorer.features(generated), real_feats, real_feats, scorer.settings)


def set_seed(seed: int, index: int) -> int:
    """Seed of generated set ``index`` of a run with ``seed``: independent streams via SeedSequence."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def score_sets(gen_features: list[Tensor] | Tensor, reals: dict[str, Tensor], prc_index: dict[str, np.ndarray], settings: SetMetricSettings) -> dict[str, list[float]]:
    """Per-set values of every generation key: each set (M, d) against each real split (N, d)."""
    per_set: dict[str, list[float]] = {k: [] for k in keys.GENERATION_KEYS}
    for feats in gen_features:
        for split, real in reals.items():
            values = set_metrics(feats, real, real[torch.from_numpy(prc_index[split])], settings)
            for base, v in values.items():
                per_set[f"{base}_{split}"].append(v)
    return per_set


def evaluate_generation(
    sample_images: Callable[[int, int], np.ndarray],
    reals: dict[str, Tensor],
    scorer: FidelityScorer,
    num_samples: int,
    num_sets: int = 5,
    seed: int = 0,
    prc_match_sizes: bool = True,
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Tables 1/4 for one model: ``num_sets`` independent generated sets, each scored against every real split.

    ``sample_images(n, set_seed)`` returns uint8 images (n, H, W, 3); ``reals``: split -> real features
    (N, d). Returns (metric entries ``{keys.FID_TRAIN: {"mean", "std", "n", "values": [per set], ...}}``
    for every key of ``keys.GENERATION_KEYS``, and the evidence: the generated features of every set
    (num_sets, num_samples, d), the set seeds and the precision/recall subsets of the real splits).
    """
    prc_index = {split: prc_subset_index(len(f), num_samples if prc_match_sizes else len(f), seed) for split, f in reals.items()}
    seeds = [set_seed(seed, i) for i in range(num_sets)]
    gen_features = []
    for s in seeds:
        images = sample_images(num_samples, s)
        check(len(images) == num_samples, f"sampler returned {len(images)} images, expected {num_samples}", DataError)
        gen_features.append(scorer.features(images))  # (num_samples, d), once per set, used against every split
    per_set = score_sets(gen_features, reals, prc_index, scorer.settings)
    extra = {"feature_extractor": scorer.spec.label, "num_samples": num_samples, "prc_num_real": {s: int(len(i)) for s, i in prc_index.items()},
             **{f"num_real_{s}": int(len(f)) for s, f in reals.items()}}
    evidence = {"gen_features": torch.stack(gen_features).numpy(), "set_seeds": np.asarray(seeds, dtype=np.int64),
                **{f"prc_index_{s}": i for s, i in prc_index.items()}}
    return {k: metric_entry(v, **extra) for k, v in per_set.items()}, evidence


def model_image_sampler(
    model: Any,
    coords: Tensor,
    to_images: Callable[[Tensor], np.ndarray],
    batch_size: int = 64,
) -> Callable[[int, int], np.ndarray]:
    """Wrap ``model.sample(n, coords, generator)`` (n, Q, f) as ``sample_images(n, seed) -> uint8 (n, H, W, 3)``.

    The generator is a CPU one, so a seed gives the same latents on any device the model is on.
    """

    def sample_images(n: int, seed: int) -> np.ndarray:
        gen = torch.Generator().manual_seed(seed)
        out = []
        with torch.no_grad():
            for start in range(0, n, batch_size):
                b = min(batch_size, n - start)
                feats = model.sample(b, coords.to(model.device), generator=gen)  # (b, Q, f)
                out.append(np.asarray(to_images(feats.detach().cpu())))
        return np.concatenate(out, axis=0)

    return sample_images
