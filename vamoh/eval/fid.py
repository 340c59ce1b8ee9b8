"""Generation quality (Tables 1 and 4): FID, KID and improved precision/recall (k = 3) via torch-fidelity.

Every number is computed by torch-fidelity's own functions (feature extraction, its file cache,
``fid_statistics_to_metric``, ``kid_features_to_metric``, ``prc_features_to_metric``); this module
only wires them up so that

- one feature extractor is built once per evaluation, never downloads anything, and is named in
  every result (``ExtractorSpec.label``);
- real-set features and FID statistics are computed once and cached by torch-fidelity under
  ``cache_root``, keyed by dataset, split, a hash of the real images and the extractor's weights;
- generated features are extracted once per set and scored against both real splits.

Convention (torch-fidelity's): input 1 = generated, input 2 = real. Precision = fraction of generated
samples inside the real manifold; recall = fraction of real samples inside the generated manifold.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..checks import CheckpointError, ConfigError, DataError, check
from . import keys
from .config import INCEPTION_WEIGHTS_KEY, SUITE_WEIGHTS_KEY
from .extractors import SUITE_EXTRACTOR, SUITE_FEATURE, images_to_tensor, register_suite_extractor, verify_extractor_file
from .io import metric_entry

INCEPTION = "inception-v3-compat"
INCEPTION_FEATURE = "2048"


class InceptionWeightsMissingError(FileNotFoundError):
    """The paper's Inception weights are not on disk (and will not be downloaded)."""


@dataclass(frozen=True)
class ExtractorSpec:
    name: str  # torch-fidelity registry name
    weights_path: str  # always a local file: torch-fidelity never downloads
    feature_layer: str  # feature used for FID, KID and PRC
    label: str  # what results call it, e.g. "inception-v3-compat" or "vamoh-suite-ae[polymnist]@1a2b3c4d5e6f"
    digest: str  # sha256 of the weights file (suite) or torch hub's hash prefix (Inception)


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

    digest = verify_extractor_file(weights)
    _, meta = load_extractor(weights)
    register_suite_extractor()
    label = f"{SUITE_EXTRACTOR}[{meta.get('dataset', '?')}]@{digest[:12]}"
    return ExtractorSpec(SUITE_EXTRACTOR, str(weights), SUITE_FEATURE, label, digest)


def resolve_extractor(kind: str, *, inception_weights: str | Path | None = None, suite_weights: str | Path | None = None) -> ExtractorSpec:
    """``kind`` = "inception-v3-compat" or "suite" (config key ``eval.feature_extractor``)."""
    if kind == INCEPTION:
        return inception_spec(inception_weights)
    if kind == "suite":
        check(suite_weights is not None, f"eval.feature_extractor=suite needs a weights file ({SUITE_WEIGHTS_KEY})", ConfigError)
        return suite_spec(suite_weights)  # type: ignore[arg-type]
    raise ConfigError(f"eval.feature_extractor={kind!r} is not one of ['suite', {INCEPTION!r}]")


# ----------------------------------------------------------------------------- inputs


class UInt8Images(Dataset):
    """torch-fidelity input: item i is a uint8 tensor (3, H, W)."""

    def __init__(self, images: np.ndarray | Tensor) -> None:
        self.data = images if isinstance(images, Tensor) else images_to_tensor(images)  # (N, 3, H, W)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> Tensor:
        return self.data[i]


@dataclass
class RealSet:
    """Real images of one split, with the name its cached features are filed under."""

    dataset: str  # e.g. "polymnist"
    split: str  # "train" or "test"
    images: np.ndarray  # uint8 (N, H, W, 3)

    def cache_name(self, spec: ExtractorSpec) -> str:
        """Changes whenever the images or the extractor weights change, so a cache entry is never stale."""
        h = hashlib.sha256(str(self.images.shape).encode())
        h.update(np.ascontiguousarray(self.images).tobytes())
        return f"vamoh-{self.dataset}-{self.split}-n{len(self.images)}-{h.hexdigest()[:12]}-w{spec.digest[:12]}"


# ----------------------------------------------------------------------------- scoring


class FidelityScorer:
    """One torch-fidelity feature extractor plus its settings; scores generated sets against real sets."""

    def __init__(
        self,
        spec: ExtractorSpec,
        cache_root: str | Path,
        device: str = "cpu",
        batch_size: int = 64,
        prc_neighborhood: int = 3,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        prc_batch_size: int = 2000,
        rng_seed: int = 2020,
    ) -> None:
        from torch_fidelity.utils import create_feature_extractor

        self.spec = spec
        self.cache_root = str(cache_root)
        self.cuda = device.startswith("cuda")
        self.batch_size = batch_size
        self.prc_neighborhood = prc_neighborhood
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        self.prc_batch_size = prc_batch_size
        self.rng_seed = rng_seed
        if spec.name == SUITE_EXTRACTOR:
            register_suite_extractor()
        self.extractor = create_feature_extractor(
            spec.name, [spec.feature_layer], cuda=self.cuda, feature_extractor_weights_path=spec.weights_path, verbose=False
        )

    def _kwargs(self, **extra: Any) -> dict[str, Any]:
        return dict(
            cuda=self.cuda,
            batch_size=self.batch_size,
            cache=True,
            cache_root=self.cache_root,
            save_cpu_ram=True,  # no DataLoader worker processes for in-memory arrays
            verbose=False,
            feature_extractor=self.spec.name,
            feature_extractor_weights_path=self.spec.weights_path,
            **extra,
        )

    def features(self, images: np.ndarray | Tensor, cache_name: str | None = None) -> Tensor:
        """Features (N, d) of uint8 images (N, H, W, 3), through torch-fidelity (cached when ``cache_name``)."""
        from torch_fidelity.utils import extract_featuresdict_from_input_id_cached

        kwargs = self._kwargs(input1=UInt8Images(images), input1_cache_name=cache_name)
        feats = extract_featuresdict_from_input_id_cached(1, self.extractor, **kwargs)
        return feats[self.spec.feature_layer]

    def real_features(self, real: RealSet) -> tuple[Tensor, dict[str, np.ndarray]]:
        """Cached features (N, d) and FID statistics {mu (d,), sigma (d, d)} of a real split."""
        from torch_fidelity.metric_fid import fid_featuresdict_to_statistics_cached

        name = real.cache_name(self.spec)
        feats = self.features(real.images, cache_name=name)
        stats = fid_featuresdict_to_statistics_cached(
            {self.spec.feature_layer: feats}, name, self.extractor, self.spec.feature_layer, **self._kwargs()
        )
        return feats, stats

    def score(self, generated: Tensor, real: Tensor, real_stats: dict[str, np.ndarray] | None = None) -> dict[str, float]:
        """FID, KID (mean over subsets), precision, recall of generated features (N1, d) vs real (N2, d)."""
        from torch_fidelity.metric_fid import fid_features_to_statistics

        check(generated.shape[1] == real.shape[1], f"feature dims differ: generated {tuple(generated.shape)}, real {tuple(real.shape)}", DataError)
        stats_real = real_stats if real_stats is not None else fid_features_to_statistics(real)
        precision, recall = self.prc_values(generated, real)
        return {keys.FID: self.fid_value(generated, stats_real), keys.KID: self.kid_value(generated, real), keys.PRECISION: precision, keys.RECALL: recall}

    def fid_value(self, generated: Tensor, real_stats: dict[str, np.ndarray]) -> float:
        from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

        return float(fid_statistics_to_metric(fid_features_to_statistics(generated), real_stats, verbose=False)[KEY_METRIC_FID])

    def kid_value(self, generated: Tensor, real: Tensor) -> float:
        from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

        out = kid_features_to_metric(
            generated, real, kid_subsets=self.kid_subsets, kid_subset_size=self.kid_size(len(generated), len(real)),
            rng_seed=self.rng_seed, verbose=False,
        )  # fmt: skip
        return float(out[KEY_METRIC_KID_MEAN])

    def prc_values(self, generated: Tensor, real: Tensor) -> tuple[float, float]:
        from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

        # Batched k-NN (save_cpu_ram=True): same numbers, at most prc_batch_size x N distances in memory.
        out = prc_features_to_metric(
            generated, real, prc_neighborhood=self.prc_neighborhood, prc_batch_size=self.prc_batch_size, save_cpu_ram=True, verbose=False
        )
        return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])

    def kid_size(self, n_generated: int, n_real: int) -> int:
        return min(self.kid_subset_size, n_generated, n_real)

    def describe(self) -> dict[str, Any]:
        import torch_fidelity

        return {
            keys.PROV_FEATURE_EXTRACTOR: self.spec.label,
            "feature_layer": self.spec.feature_layer,
            "feature_extractor_weights": self.spec.weights_path,
            "feature_extractor_sha256": self.spec.digest,
            "torch_fidelity_version": torch_fidelity.__version__,
            "prc_neighborhood": self.prc_neighborhood,
            "kid_subsets": self.kid_subsets,
            "kid_subset_size_max": self.kid_subset_size,
        }


def generation_metrics(generated: np.ndarray, real: RealSet, scorer: FidelityScorer) -> dict[str, float]:
    """FID/KID/precision/recall of one generated set, uint8 (N, H, W, 3), against one real split."""
    real_feats, real_stats = scorer.real_features(real)
    return scorer.score(scorer.features(generated), real_feats, real_stats)


def set_seed(seed: int, index: int) -> int:
    """Seed of generated set ``index`` of a run with ``seed``: independent streams via SeedSequence."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def evaluate_generation(
    sample_images: Callable[[int, int], np.ndarray],
    real_train: RealSet,
    real_test: RealSet,
    scorer: FidelityScorer,
    num_samples: int,
    num_sets: int = 5,
    seed: int = 0,
    prc_match_sizes: bool = True,
) -> dict[str, dict[str, Any]]:
    """Tables 1/4 for one model: ``num_sets`` independent generated sets, each scored against train and test.

    ``sample_images(n, set_seed)`` returns uint8 images (n, H, W, 3). Returns metric entries
    ``{keys.FID_TRAIN: {"mean", "std", "n", "values": [per set], "feature_extractor", ...}, ...}``
    for every key in ``keys.GENERATION_KEYS``. FID and KID use the whole real split; with
    ``prc_match_sizes`` precision/recall use one seeded subset of it with ``num_samples`` images
    (the same subset for every set), because k-NN radii shrink as a set grows.
    """
    reals = {"train": scorer.real_features(real_train), "test": scorer.real_features(real_test)}
    prc_reals = {split: _prc_subset(f, num_samples, seed) if prc_match_sizes else f for split, (f, _) in reals.items()}
    per_set: dict[str, list[float]] = {k: [] for k in keys.GENERATION_KEYS}
    for i in range(num_sets):
        images = sample_images(num_samples, set_seed(seed, i))
        check(len(images) == num_samples, f"sampler returned {len(images)} images, expected {num_samples}", DataError)
        gen_feats = scorer.features(images)  # (num_samples, d), once per set, used against both splits
        for split, (real_feats, real_stats) in reals.items():
            per_set[f"{keys.FID}_{split}"].append(scorer.fid_value(gen_feats, real_stats))
            per_set[f"{keys.KID}_{split}"].append(scorer.kid_value(gen_feats, real_feats))
            precision, recall = scorer.prc_values(gen_feats, prc_reals[split])
            per_set[f"{keys.PRECISION}_{split}"].append(precision)
            per_set[f"{keys.RECALL}_{split}"].append(recall)
    extra = {
        "feature_extractor": scorer.spec.label,
        "num_samples": num_samples,
        "num_real_train": len(real_train.images),
        "num_real_test": len(real_test.images),
        "prc_num_real": {split: len(f) for split, f in prc_reals.items()},
    }
    return {k: metric_entry(v, **extra) for k, v in per_set.items()}


def _prc_subset(features: Tensor, n: int, seed: int) -> Tensor:
    """A seeded subset (n, d) of real features (N, d) when N > n, else all of them."""
    if len(features) <= n:
        return features
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(len(features), generator=g)[:n].sort().values
    return features[idx]


def model_image_sampler(
    model: Any,
    coords: Tensor,
    to_images: Callable[[Tensor], np.ndarray],
    batch_size: int = 64,
) -> Callable[[int, int], np.ndarray]:
    """Wrap ``model.sample(n, coords, generator)`` (n, Q, f) as ``sample_images(n, seed) -> uint8 (n, H, W, 3)``.

    ``to_images`` turns features (b, Q, f) into uint8 images, e.g. the dataset's ``to_arrays`` or
    ``vamoh.eval.recon.features_to_images`` with the grid shape bound.
    """

    def sample_images(n: int, seed: int) -> np.ndarray:
        device = model.device
        gen = torch.Generator(device=device).manual_seed(seed)
        out = []
        with torch.no_grad():
            for start in range(0, n, batch_size):
                b = min(batch_size, n - start)
                feats = model.sample(b, coords.to(device), generator=gen)  # (b, Q, f)
                out.append(np.asarray(to_images(feats.detach().cpu())))
        return np.concatenate(out, axis=0)

    return sample_images
