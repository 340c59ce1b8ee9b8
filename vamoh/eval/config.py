"""Typed evaluation config (the ``eval:`` section of a run config), with a comment on each default.

Build it from a YAML dict with ``eval_config_from_dict``; unknown keys and wrong types are refused
with the key named (``eval.<key>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..checks import ConfigError, check, check_choice, check_positive
from ..config import from_dict
from .names import FEATURE_EXTRACTORS, SUITE

TIMING_MODELS = ("trained", "paper")


@dataclass(frozen=True)
class EvalConfig:
    # "suite": the autoencoder trained on the dataset's train split (offline default; numbers compare
    # models with each other only). "inception-v3-compat": the paper's extractor; needs its weights file.
    feature_extractor: str = SUITE
    # Local copy of torch-fidelity's Inception weights; None = look in the torch hub cache
    # (<torch hub dir>/checkpoints/weights-inception-2015-12-05-6726825d.pth). Never downloaded.
    inception_weights: str | None = None
    # Weights of a suite extractor trained elsewhere (with its .sha256 beside it); None = train one per
    # dataset in the workflow's reference stage, on the train split.
    suite_extractor_weights: str | None = None
    # Generated images per set. 10,000 per set x 5 sets (see docs/evaluation.md for why not 50,000).
    num_samples: int = 10000
    num_sets: int = 5  # independent generated sets; metrics are reported as mean +- std over them
    max_real: int = 0  # 0 = the whole real split; >0 = a seeded subset of that size (demo runs)
    batch_size: int = 64  # sampling and feature-extraction batch size
    kid_subset_size: int = 1000  # torch-fidelity's default; clipped to the smaller set size
    kid_subsets: int = 100  # torch-fidelity's default
    prc_neighborhood: int = 3  # k of improved precision/recall (the paper's k = 3)
    # Precision/recall against a seeded subset of the real split of the generated set's size: k-NN radii
    # depend on the set size, and improved P/R (Kynkaanniemi et al. 2019) compares equal-sized sets.
    prc_match_sizes: bool = True
    prc_batch_size: int = 2000  # rows of the k-NN distance matrix held at once (memory: rows x N_real x 4 bytes)
    extractor_epochs: int = 10  # suite extractor training passes
    extractor_feature_dim: int = 64  # suite extractor feature dimension
    extractor_seed: int = 0  # suite extractor init/shuffle seed
    timing_repeats: int = 50  # interleaved repeats per candidate (the most, when timing_budget_s is set)
    # seconds of measurement for all of a dataset's timing groups together (0 = always timing_repeats): the
    # repeats of each (task, batch size) group are cut to fit, never below 3; the table prints the repeats
    timing_budget_s: float = 0.0
    # datasets whose Tables 2/5 rows are measured (empty = every dataset of the run); the others are said to be
    # not timed. For CPU runs at the paper architectures, where Functa 512 x 15 takes seconds per call.
    timing_datasets: tuple[str, ...] = ()
    timing_warmup: int = 5  # untimed calls per candidate before measuring
    timing_batch_sizes: tuple[int, ...] = (1, 16)  # batch size 1 and one batched size
    # What Tables 2/5 time: "trained" = the trained checkpoints; "paper" = untrained models at the dataset's
    # paper architecture (Table 3's VAMoH, Functa at width 512 x depth 15), whose speed does not depend on
    # their weights (for runs whose trained models are shrunken, e.g. the demo).
    timing_models: str = "trained"
    # ShapeNet's 3-D protocol: points sampled from each voxel surface (PointFlow: 2048), and how many generated
    # and test shapes are compared (0 = every test shape, with as many generated)
    pointcloud_points: int = 2048
    pointcloud_shapes: int = 0
    memorisation_quantile: float = 0.05  # "close" = nearer a training example than this quantile of the test set's distances
    completion_samples: int = 1000  # test samples used for completion PSNR (the first ones); reconstruction uses every test sample
    superres_samples: int = 64  # test samples scored at 2x against the stand-in's own 2x render (the first ones)
    # Functa-like models (an inner loop at inference): also time and score the trained model run with these
    # other step counts, labelled "Functa (3), run 10 steps"; the paper's Functa (10) is a separately
    # meta-trained model (the workflow's "functa10" entry), not this.
    extra_inference_steps: tuple[int, ...] = ()
    device: str = "auto"  # "auto" = cuda when available, else cpu

    def __post_init__(self) -> None:
        check_choice("eval.feature_extractor", self.feature_extractor, FEATURE_EXTRACTORS)
        check_choice("eval.timing_models", self.timing_models, TIMING_MODELS)
        for name in ("num_samples", "num_sets", "batch_size", "kid_subset_size", "kid_subsets", "prc_neighborhood", "prc_batch_size", "extractor_epochs", "extractor_feature_dim", "timing_repeats", "completion_samples", "superres_samples"):
            check_positive(f"eval.{name}", getattr(self, name))
        check(self.max_real >= 0, f"eval.max_real={self.max_real}: expected >= 0", ConfigError)
        check_positive("eval.pointcloud_points", self.pointcloud_points)
        check(self.pointcloud_shapes >= 0, f"eval.pointcloud_shapes={self.pointcloud_shapes}: expected >= 0 (0 = every test shape)", ConfigError)
        check(0 < self.memorisation_quantile < 0.5, f"eval.memorisation_quantile={self.memorisation_quantile}: expected a number in (0, 0.5)", ConfigError)
        check(self.timing_warmup >= 0, f"eval.timing_warmup={self.timing_warmup}: expected >= 0", ConfigError)
        check(self.timing_budget_s >= 0, f"eval.timing_budget_s={self.timing_budget_s}: expected seconds >= 0 (0 = no budget)", ConfigError)
        check(self.num_sets >= 2, f"eval.num_sets={self.num_sets}: expected >= 2 (a std needs two sets; the paper uses 5)", ConfigError)
        check(len(self.timing_batch_sizes) > 0 and all(b > 0 for b in self.timing_batch_sizes), f"eval.timing_batch_sizes={self.timing_batch_sizes}: expected positive sizes", ConfigError)
        check(all(isinstance(s, int) and s > 0 for s in self.extra_inference_steps), f"eval.extra_inference_steps={self.extra_inference_steps}: expected positive integers", ConfigError)
        check(self.num_samples > self.prc_neighborhood, f"eval.num_samples={self.num_samples}: expected more than eval.prc_neighborhood={self.prc_neighborhood} samples per set (k-NN radii)", ConfigError)

    def set_metric_settings(self):
        """The settings every generation number depends on (``vamoh.eval.fid.SetMetricSettings``)."""
        from .fid import SetMetricSettings

        return SetMetricSettings(prc_neighborhood=self.prc_neighborhood, kid_subsets=self.kid_subsets,
                                 kid_subset_size=self.kid_subset_size, prc_batch_size=self.prc_batch_size)

    def extractor_config(self):
        """The suite extractor's training config (``vamoh.eval.extractors.ExtractorConfig``)."""
        from .extractors import ExtractorConfig

        return ExtractorConfig(epochs=self.extractor_epochs, feature_dim=self.extractor_feature_dim, seed=self.extractor_seed)


def eval_config_from_dict(data: dict[str, Any] | None) -> EvalConfig:
    return from_dict(EvalConfig, data, where="eval")
