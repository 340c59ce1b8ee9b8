"""The ablation report's metric registry: every number an ablation question can show, where it comes from,
which way is better, and whether it is tested and counted.

It lives on the evaluation floor, not in the report, because ``RunConfig.ablations`` checks each question's
``metrics`` against it in every job: the check must not import the report (pandas tables, matplotlib). The
report renders the column headers (``vamoh.report.ablation_tables.header``, which adds the non-Inception
mark for ``Metric.extractor``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# the encoder_ms metric: the fraction of a sample's points observed when its encoder is timed (each call its own
# random subset; vamoh.eval.ablation_measure.encoder_timings), named in the report's notes
ENCODER_KEEP = 0.5


@dataclass(frozen=True)
class Metric:
    """One column of an ablation table."""

    label: str
    better: int  # +1: higher is better, -1: lower is better, 0: neither (a description, e.g. segment coherence)
    source: str  # "tidy" (the tidy table), "summary" (train.json) or "measured" (the ablation_measure rule)
    decimals: int = 2
    tidy_metric: str = ""  # the tidy table's metric key, for source "tidy"
    scale: float = 1.0  # multiplies the stored value (seconds -> milliseconds)
    generation: bool = False  # a generation metric: only for questions with generation
    extractor: bool = False  # computed on a feature extractor's embeddings (its name goes in the notes)
    speed: bool = False  # a time or throughput: reported apart from the answer, never makes a variant better
    tested: bool = True  # False: shown only (a number that carries the machine's load), never tested
    reference_metric: str = ""  # the reference rows' metric key when it differs from tidy_metric
    # why a quality metric with a direction is tested and shown but never counted in an answer ("" = counted)
    not_counted: str = ""


def _tidy(label: str, better: int, key: str, decimals: int = 2, **kw: Any) -> Metric:
    return Metric(label, better, "tidy", decimals, tidy_metric=key, **kw)


METRICS: dict[str, Metric] = {
    "test_elbo_per_point": Metric("Test ELBO / point", 1, "measured", 3),
    "psnr": _tidy("Recon. PSNR, paper protocol (dB)", 1, "psnr",
                  not_counted="the paper's protocol lets each observed point's mixture weights see the value they predict, which "
                              "favours more components whatever they learned; the answer counts the leak-free score"),
    # no point's mixture weights see its own value (docs/evaluation.md); the train mean predicts the same under both
    "psnr_leakfree": _tidy("Recon. PSNR, leak-free (dB)", 1, "psnr_leakfree", reference_metric="psnr"),
    "psnr_completion_centre": _tidy("Completion PSNR, centre (dB)", 1, "psnr_completion_centre"),
    "psnr_completion_half": _tidy("Completion PSNR, half (dB)", 1, "psnr_completion_half"),
    "psnr_completion_outpaint": _tidy("Completion PSNR, outpaint (dB)", 1, "psnr_completion_outpaint"),
    "fid_test": _tidy("FID tst", -1, "fid_test", generation=True, extractor=True),
    "fid_train": _tidy("FID tr", -1, "fid_train", generation=True, extractor=True),
    "precision_test": _tidy("Precision tst", 1, "precision_test", 3, generation=True, extractor=True),
    "recall_test": _tidy("Recall tst", 1, "recall_test", 3, generation=True, extractor=True),
    # contiguity normalised for balance; undefined (—) where one component covers every point, e.g. K = 1
    "segment_kappa": _tidy("Segment contiguity κ", 0, "segment_kappa", 3),
    "segment_position_ari": _tidy("Segment position ARI", 0, "segment_position_ari", 3),
    "segment_parts_ari": _tidy("Segment parts ARI", 1, "segment_parts_ari", 3),
    # raw coherence: 1.000 for a single component (K = 1), so not in the standard set
    "segment_coherence": _tidy("Segment coherence (raw)", 0, "segment_coherence", 3),
    "mixture_entropy": _tidy("Mixture entropy / ln K", 0, "mixture_entropy", 3),
    # the timing rule: every entry of a (dataset, seed) timed interleaved in one process
    "time_reconstruction_ms": _tidy("Recon. ms / sample", -1, "time_reconstruction", 3, scale=1e3, speed=True),
    # job wall time, with other jobs running beside it: carries the machine's load, so never tested
    "samples_per_second": Metric("Train samples / s (job wall time)", 1, "summary", 0, speed=True, tested=False),
    # the ablation_measure rule: the question's variants timed interleaved in one process
    "encoder_ms": Metric("Encoder ms / sample", -1, "measured", 3, speed=True),
}
STANDARD = ("test_elbo_per_point", "psnr", "psnr_leakfree", "psnr_completion_centre", "fid_test", "precision_test", "recall_test",
            "segment_kappa", "samples_per_second")


def question_metrics(ablation: Any) -> list[str]:
    """The metric keys a question reports (checked by ``RunConfig.ablations``): its own list, or the standard set
    (generation metrics only with generation)."""
    return list(ablation.metrics) or [k for k in STANDARD if ablation.generation or not METRICS[k].generation]


def quality_metrics(ablation: Any) -> list[str]:
    return [k for k in question_metrics(ablation) if not METRICS[k].speed]


def speed_metrics(ablation: Any) -> list[str]:
    return [k for k in question_metrics(ablation) if METRICS[k].speed]
