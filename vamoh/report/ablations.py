"""The ablation report: per question of the run config's ``ablations``, tables, figures and an answer.

Every variant of a question is compared with the question's default over the run's seeds. The numbers
come from four places, all per (dataset, entry, seed):

- the tidy table (``vamoh.eval.tidy``): reconstruction and completion PSNR, generation metrics,
  mixture statistics, reconstruction time (the evaluate and timing rules), and the reference stage's
  rows (the held-out real floor, the uniform-noise ceiling, the train-mean baseline);
- the train.json summaries: training samples per second, and the resolved model config, from which
  the table's "setting" column is read (so it shows what the checkpoints were trained with);
- the ablation stage's own measurements (``measure``): the test ELBO per point, and the encoder's time
  on partially observed inputs, where its centroids and neighbourhoods must be recomputed;
- the reference records (reference.json: the feature extractor's quality gate) and the figure arrays
  (figures.npz of each entry's first seed: the sample grids and reconstruction rows).

The statistics (``welch``, ``correct``):

- each variant against the default, per (dataset, metric): Welch's two-sided t-test on the per-seed
  means; the effect is the difference of means (variant − default) with its 95% Welch interval
  (Welch–Satterthwaite degrees of freedom), and Hedges' g beside it;
- one multiple-comparison correction over every p-value the report prints (all questions, datasets,
  metrics): ``CORRECTION``, via statsmodels' ``multipletests``; a difference is significant when its
  adjusted p < ``ALPHA``;
- no test where a side has fewer than 2 seeds, or where neither side varies over seeds ("no spread": a
  p-value would be 0 or 1 by fiat); where one side is constant the test is said to be one-sample;
- the answers count only quality metrics (``Metric.speed`` False, with a direction) that pass their
  gates; speed is reported apart and never makes a variant better. Training samples per second come from
  job wall time, which carries the machine's load: shown, labelled so, never tested;
- FID, precision and recall count only where the feature extractor passes the reference stage's quality
  gate, precision and recall only where uniform noise gets (almost) no precision (the demo summary's rules,
  ``vamoh.report.summary``).

The written answers are templates filled from these numbers.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..eval import keys
from ..eval.tidy import KIND_REFERENCE, read_tidy
from ..io import atomic_write_text
from .labels import DATASET_ORDER, dataset_name, ordered
from .render import FORMATS, ReportTable, to_markdown, write_table
from .tables import DASH, NON_INCEPTION, STANDIN, fmt_num

ALPHA = 0.05  # significance level of the adjusted p-values
LEVEL = 0.95  # level of every effect interval
# The correction over every test of the report (statsmodels.stats.multitest.multipletests method names).
# Benjamini-Hochberg: the report screens many differences at once, and a reader wants most of the differences it
# names to be real (the false discovery rate), not a guarantee that none is a fluke; with 3 seeds a side a
# family-wise correction (Holm) over ~150 tests leaves only differences tens of standard errors wide.
CORRECTION = "fdr_bh"
CORRECTIONS = {"fdr_bh": ("Benjamini–Hochberg", "the false discovery rate"),
               "holm": ("Holm", "the family-wise error rate (valid under any dependence between the tests)")}
MARK = "*"  # a variant whose difference to the default is significant after the correction
DEFAULT_MARK = " (default)"
FIGURE_COLUMNS = 4  # panels per figure row
PICTURE_COLUMNS = 4  # variants per row of a picture figure
GRID_SIDE = 8  # sample grid: GRID_SIDE x GRID_SIDE samples
RECON_EXAMPLES = 8  # test samples in a reconstruction row
ENCODER_KEEP = 0.5  # fraction of points observed when the encoder is timed (each call its own random subset)
NO_SPREAD = "no spread"  # neither side varies over seeds: no test
IDENTICAL = "identical to the default on every seed"  # the setting changed nothing in the trained model: no test
FEW_SEEDS = "fewer than 2 seeds a side"  # no test, no interval
REFERENCE_ROWS = (keys.REF_HELDOUT, keys.REF_NOISE, keys.REF_MEAN)  # shown beside the variants, never tested


@dataclass(frozen=True)
class Metric:
    """One column of an ablation table."""

    label: str
    better: int  # +1: higher is better, -1: lower is better, 0: neither (a description, e.g. segment coherence)
    source: str  # "tidy" (the tidy table), "summary" (train.json) or "measured" (this stage)
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

    @property
    def header(self) -> str:
        arrow = {1: " ↑", -1: " ↓"}.get(self.better, "")
        return self.label + (NON_INCEPTION if self.extractor else "") + arrow


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
    # this stage: the question's variants timed interleaved in one process
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


def report_files(ablations: dict[str, Any], datasets: Iterable[str]) -> list[str]:
    """The file names ``write_ablation_report`` writes (given figure arrays), for the workflow's outputs."""
    out = ["ablations.md", "ablation_values.csv", "ablation_tests.csv"]
    for q, ab in ablations.items():
        out += [f"ablation_{q}.{ext}" for ext in FORMATS] + [f"ablation_{q}.png"]
        if speed_metrics(ab):
            out += [f"ablation_{q}_speed.{ext}" for ext in FORMATS]
        out += [f"ablation_{q}_pictures_{d}.png" for d in datasets]
    return out


# ---------------------------------------------------------------------------------------------- measurements


def test_elbo_per_point(net: Any, batches: Iterable[Any], seed: int) -> np.ndarray | None:
    """Per test sample, the model's test bound per observed point (nats per point; ``test_elbo_per_point``, the
    paper's eq. 16 whatever the training objective), one z per sample drawn from ``seed``; None for a model
    without one."""
    hook = getattr(net, "test_elbo_per_point", None)
    if not callable(hook):
        return None
    g = torch.Generator().manual_seed(seed)
    return np.concatenate([hook(b, generator=g).detach().cpu().numpy() for b in batches])


def observed_subsets(batch: Any, count: int, keep: float, seed: int) -> list[Any]:
    """``count`` copies of ``batch``, each observing its own random ``keep`` fraction of every sample's points."""
    g = torch.Generator().manual_seed(seed)
    D = batch.num_points
    n_keep = max(1, int(round(keep * D)))
    out = []
    for _ in range(count):
        mask = torch.zeros(batch.batch_size, D, dtype=torch.bool)
        for i in range(batch.batch_size):
            mask[i, torch.randperm(D, generator=g)[:n_keep]] = True
        out.append(batch.with_mask(mask))
    return out


def encoder_timings(nets: dict[str, Any], batch: Any, repeats: int, warmup: int, seed: int, keep: float = ENCODER_KEEP) -> dict[str, float]:
    """Median seconds per sample of each model's ``encode`` on ``batch`` observed at a fresh random ``keep``
    fraction of its points every call, measured interleaved (``vamoh.eval.timing.time_interleaved``).

    A fresh subset every call is the case where centroid selection is paid (partial observations, point
    dropout): a fully observed grid's farthest-point plan is cached after the first call. Every model sees
    the same sequence of subsets. Models without ``encode`` are left out.
    """
    from ..eval.timing import time_interleaved

    subsets = observed_subsets(batch, warmup + repeats, keep, seed)
    calls = {}
    device = None
    for name, net in nets.items():
        if not callable(getattr(net, "encode", None)):
            continue
        device = net.device
        inputs = iter([s.to(device) for s in subsets])

        def call(net=net, inputs=inputs) -> None:
            b = next(inputs)
            with torch.no_grad():
                net.encode(b.coords, b.features, b.mask)

        calls[name] = call
    if not calls:
        return {}
    stats = time_interleaved(calls, repeats, warmup, device)
    return {name: s.median / batch.batch_size for name, s in stats.items()}


# ---------------------------------------------------------------------------------------------- per-seed values


def _values_by_seed(rows: pd.DataFrame) -> dict[int, float]:
    return {int(s): float(v) for s, v in zip(rows["seed"], rows["mean"]) if v is not None and math.isfinite(float(v))}


def per_seed(ablations: dict[str, Any], tidy: pd.DataFrame | str | Path, summaries: list[dict[str, Any]],
             measured: pd.DataFrame) -> pd.DataFrame:
    """One row per (question, dataset, variant, seed, metric) with its value: the numbers every table,
    figure and answer is built from.

    ``measured``: rows (question, dataset, model, seed, metric, value) from ``measure``; a question ""
    holds entry-level measurements shared by every question that compares the entry.
    """
    t = read_tidy(tidy)
    t = t[t["kind"] != KIND_REFERENCE]
    timing = t[t["metric"].str.startswith("time_")]
    if len(timing):  # timing rows: batch size 1 (per-sample latency), the smallest timed
        t = pd.concat([t[~t["metric"].str.startswith("time_")], timing[timing["batch_size"] == timing["batch_size"].min()]])
    summ = {(s["dataset"], s["model"], int(s["seed"])): s for s in summaries}
    rows = []
    for q, ab in ablations.items():
        for key in question_metrics(ab):
            m = METRICS[key]
            for variant, entry in ab.entries.items():
                if m.source == "tidy":
                    sel = t[(t["model"] == entry) & (t["metric"] == m.tidy_metric)]
                    vals = {(d, s): v for d, grp in sel.groupby("dataset") for s, v in _values_by_seed(grp).items()}
                elif m.source == "summary":
                    vals = {(d, s): float(x[key]) for (d, e, s), x in summ.items() if e == entry and x.get(key) is not None}
                else:
                    sel = measured[(measured["model"] == entry) & (measured["metric"] == key) & measured["question"].isin(["", q])]
                    vals = {(d, int(s)): float(v) for d, s, v in zip(sel["dataset"], sel["seed"], sel["value"]) if math.isfinite(float(v))}
                rows += [{"question": q, "dataset": d, "variant": variant, "model": entry, "seed": s, "metric": key, "value": v * m.scale}
                         for (d, s), v in vals.items()]
    return pd.DataFrame(rows, columns=["question", "dataset", "variant", "model", "seed", "metric", "value"])


# ---------------------------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Welch:
    """One variant's per-seed values against the default's."""

    diff: float  # mean(variant) - mean(default): the effect, in the metric's unit
    low: float | None = None  # its LEVEL Welch interval (None: fewer than 2 seeds a side, or no spread)
    high: float | None = None
    dof: float | None = None  # Welch-Satterthwaite degrees of freedom
    p: float | None = None  # two-sided Welch p-value, unadjusted (None: no test)
    g: float | None = None  # Hedges' g: the difference over the pooled SD, small-sample corrected
    spread: str = ""  # "" (both sides vary), NO_SPREAD, FEW_SEEDS, or which side is constant


def hedges_g(x: np.ndarray, base: np.ndarray) -> float | None:
    """Hedges' g of ``x`` against ``base``: (mean x − mean base) / pooled SD (ddof=1), times the small-sample
    correction J = 1 − 3 / (4 (n_x + n_base) − 9); None with fewer than 2 values a side or no pooled spread."""
    nx, nb = len(x), len(base)
    if nx < 2 or nb < 2:
        return None
    pooled = ((nx - 1) * np.var(x, ddof=1) + (nb - 1) * np.var(base, ddof=1)) / (nx + nb - 2)
    if pooled <= 0:
        return None
    return float((np.mean(x) - np.mean(base)) / math.sqrt(pooled) * (1 - 3 / (4 * (nx + nb) - 9)))


def welch(x: Iterable[float], base: Iterable[float], level: float = LEVEL) -> Welch | None:
    """Welch's test and interval of ``x`` against ``base`` (their finite values); None when a side is empty.

    The interval is diff ± t_{(1+level)/2, ν} · se with se² = s_x²/n_x + s_b²/n_b and ν the Welch-Satterthwaite
    degrees of freedom; the p-value is scipy's ``ttest_ind(x, base, equal_var=False)``. No test and no interval
    with fewer than 2 values a side or when neither side varies (``NO_SPREAD``: the difference is then exact, and
    a p-value of 0 or 1 would be an artefact). One constant side leaves a one-sample test against its value,
    said so in ``spread``.
    """
    from scipy import stats

    x = np.asarray([v for v in x if math.isfinite(v)], float)
    base = np.asarray([v for v in base if math.isfinite(v)], float)
    if not x.size or not base.size:
        return None
    diff = float(x.mean() - base.mean())
    if x.size < 2 or base.size < 2:
        return Welch(diff, spread=FEW_SEEDS)
    flat_x, flat_b = bool(np.ptp(x) == 0), bool(np.ptp(base) == 0)
    if flat_x and flat_b:
        return Welch(diff, spread=NO_SPREAD)
    vx, vb = (0.0 if flat_x else float(x.var(ddof=1))) / x.size, (0.0 if flat_b else float(base.var(ddof=1))) / base.size
    se = math.sqrt(vx + vb)
    dof = (vx + vb) ** 2 / (vx**2 / (x.size - 1) + vb**2 / (base.size - 1))
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * se
    with warnings.catch_warnings():  # nearly equal samples: scipy warns of precision loss, the p-value is still ~1
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(x, base, equal_var=False).pvalue)
    spread = "the variant has no spread over seeds" if flat_x else "the default has no spread over seeds" if flat_b else ""
    return Welch(diff, diff - half, diff + half, dof, p, hedges_g(x, base), spread)


def adjust(pvalues: Iterable[float], method: str = CORRECTION) -> np.ndarray:
    """The p-values adjusted for their number by ``method`` (statsmodels' ``multipletests``: "fdr_bh", "holm")."""
    from statsmodels.stats.multitest import multipletests

    if method not in CORRECTIONS:
        raise ValueError(f"unknown multiple-comparison correction {method!r}; expected one of {sorted(CORRECTIONS)}")
    p = np.asarray(list(pvalues), float)
    if not p.size:
        return p
    return multipletests(p, alpha=ALPHA, method=method)[1]


# ---------------------------------------------------------------------------------------------- comparison


@dataclass
class Comparison:
    """One variant on one (dataset, metric), over seeds; against the default unless it is the default."""

    mean: float | None
    std: float | None
    n: int
    seeds: list[float] = field(default_factory=list)
    test: Welch | None = None  # against the default (None: the default itself, a metric never tested, no values)
    p_adj: float | None = None  # the test's p-value after the report-wide correction
    significant: bool = False  # p_adj < ALPHA
    excluded: str = ""  # why this (dataset, metric) is not tested and counts in no answer (a failed gate)

    @property
    def diff(self) -> float | None:
        return self.test.diff if self.test else None

    @property
    def p(self) -> float | None:
        return self.test.p if self.test else None


def compare(values: pd.DataFrame, default: str, excluded: dict[tuple[str, str], str] | None = None) -> dict[tuple[str, str, str], Comparison]:
    """(dataset, variant, metric) -> Comparison, from one question's per-seed rows.

    Metrics that are never tested (``Metric.tested``) get no Welch; ``excluded`` ((dataset, metric) -> reason)
    keeps the difference and its interval but drops the p-value: such a number is shown, not tested."""
    excluded = excluded or {}
    out: dict[tuple[str, str, str], Comparison] = {}
    for (d, m), grp in values.groupby(["dataset", "metric"]):
        base = grp[grp["variant"] == default].sort_values("seed")["value"].to_numpy(float)
        for v, rows in grp.groupby("variant"):
            x = rows.sort_values("seed")["value"].to_numpy(float)
            c = Comparison(float(x.mean()) if x.size else None, float(x.std(ddof=1)) if x.size > 1 else None, int(x.size), seeds=list(x),
                           excluded=excluded.get((d, m), ""))
            if v != default and METRICS[m].tested:
                # the same per-seed numbers as the default: an exact zero difference, not a sample to test (when
                # neither side varies at all, Welch's own "no spread" says the same and names the flat value)
                same = x.size > 1 and np.array_equal(x, base) and np.ptp(x) > 0
                c.test = Welch(0.0, spread=IDENTICAL) if same else welch(x, base)
                if c.test is not None and c.excluded:
                    c.test = dataclasses.replace(c.test, p=None)
            out[(d, v, m)] = c
    return out


def correct(comparisons: Iterable[Comparison], method: str = CORRECTION) -> int:
    """Adjust every tested comparison's p-value as one family (``adjust``) and mark the significant ones; returns
    the number of tests in the family."""
    tested = [c for c in comparisons if c.p is not None]
    for c, q in zip(tested, adjust([c.p for c in tested], method)):
        c.p_adj = float(q)
        c.significant = bool(q < ALPHA)
    return len(tested)


def counted(key: str, c: Comparison | None) -> bool:
    """Whether a comparison can enter an answer: a quality metric with a direction that passed its gates."""
    m = METRICS[key]
    return c is not None and not m.speed and m.better != 0 and not c.excluded and not m.not_counted


# ---------------------------------------------------------------------------------------------- references and gates


def reference_values(tidy: pd.DataFrame, metrics: Iterable[str]) -> dict[tuple[str, str, str], tuple[float, float | None]]:
    """(dataset, reference row, metric key) -> (mean, std) of the reference stage's rows (``REFERENCE_ROWS``) for
    the metrics of the tidy table: the floor and the ceiling over generated sets, the train mean over test samples."""
    ref = tidy[(tidy["kind"] == KIND_REFERENCE) & tidy["model"].isin(REFERENCE_ROWS)]
    out = {}
    for key in metrics:
        m = METRICS[key]
        if m.source != "tidy":
            continue
        for d, r, mean, std in ref[ref["metric"] == (m.reference_metric or m.tidy_metric)][["dataset", "model", "mean", "std"]].itertuples(index=False):
            if mean is not None and math.isfinite(float(mean)):
                out[(d, r, key)] = (float(mean) * m.scale, float(std) * m.scale if std is not None and math.isfinite(float(std)) else None)
    return out


# the reconstruction and completion scores whose train-mean baseline the reference stage gives
LEARNED_GATE_METRICS = ("psnr", "psnr_leakfree", "psnr_completion_centre", "psnr_completion_half", "psnr_completion_outpaint")


def learning_exclusions(values: pd.DataFrame, default: str, metrics: Iterable[str],
                        refs: dict[tuple[str, str, str], tuple[float, float | None]]) -> dict[tuple[str, str], str]:
    """(dataset, metric) -> why a reconstruction or completion score is shown but not tested: the question's default does
    not beat the train mean on it by the margin of every "beats a baseline" rule of the summary (CLEAR_MARGIN_DB). Such a
    model's latent adds nothing the mean does not, so its variants' differences are noise around the mean, not an answer."""
    from .summary import CLEAR_MARGIN_DB

    out = {}
    for key in metrics:
        if key not in LEARNED_GATE_METRICS:
            continue
        for d, grp in values[(values["metric"] == key) & (values["variant"] == default)].groupby("dataset"):
            base = refs.get((d, keys.REF_MEAN, key))
            if base is None or grp.empty:
                continue
            own = float(grp["value"].mean())
            if own < base[0] + CLEAR_MARGIN_DB:
                out[(d, key)] = (f"the default {default} does not beat the train mean by {CLEAR_MARGIN_DB:g} dB here ({own:.2f} against "
                                 f"{base[0]:.2f} dB): at this budget its latent adds nothing the mean does not")
    return out


def extractor_exclusions(datasets: Iterable[str], metrics: Iterable[str], references: dict[str, dict[str, Any]] | None,
                         refs: dict[tuple[str, str, str], tuple[float, float | None]]) -> dict[tuple[str, str], str]:
    """(dataset, metric) -> why the extractor's numbers are shown but not tested: the demo summary's rules.

    FID, precision and recall need a feature extractor that passes the reference stage's quality gate (a suite
    extractor must reconstruct held-out images ``EXTRACTOR_GATE_DB`` better than the train-mean image); precision
    and recall also need one that tells noise from data (uniform noise's precision at most ``NOISE_PRECISION_MAX``).
    """
    from .summary import NOISE_PRECISION_MAX

    out = {}
    for d in datasets:
        rec = (references or {}).get(d)
        ext = (rec or {}).get("extractor") or {}
        q = ext.get("quality") or {}
        if rec is None:
            gate = "no reference record was given, so the feature extractor's quality gate is unknown"
        elif q.get("passes") is False:
            gate = (f"the feature extractor fails its quality gate: held-out images reconstructed at {q['test_psnr_db']:.2f} dB against "
                    f"{q['mean_image_psnr_db']:.2f} dB for the train-mean image, under the +{q['gate_db']:g} dB it needs")
        elif ext.get("kind") == "suite" and "passes" not in q:
            gate = "the suite feature extractor has no quality gate recorded"
        else:
            gate = ""
        for key in metrics:
            m = METRICS[key]
            if not m.extractor:
                continue
            if gate:
                out[(d, key)] = gate
                continue
            split = m.tidy_metric.rsplit("_", 1)[-1]
            noise = refs.get((d, keys.REF_NOISE, f"precision_{split}"))
            if key.startswith(("precision", "recall")) and noise is not None and noise[0] > NOISE_PRECISION_MAX:
                out[(d, key)] = (f"the feature extractor does not tell noise from data: uniform noise gets precision {noise[0]:.2f} "
                                 f"(> {NOISE_PRECISION_MAX:g})")
    return out


def _refs_for_precision(refs: dict, d: str, key: str) -> dict[str, float]:
    return {r: refs[(d, r, key)][0] for r in (keys.REF_HELDOUT, keys.REF_NOISE) if (d, r, key) in refs}


def saturation_notes(values: pd.DataFrame, refs: dict[tuple[str, str, str], tuple[float, float | None]],
                     excluded: dict[tuple[str, str], str] | None = None) -> list[str]:
    """A sentence per (dataset, metric) whose value is one and the same for every variant on every seed: it cannot
    rank the variants, whatever its value; with the floor and noise rows beside it where the reference has them, and
    whether noise exposes the extractor (``excluded``: the gates' reasons, ``extractor_exclusions``)."""
    out = []
    for (d, key), grp in values.groupby(["dataset", "metric"]):
        v = grp["value"].to_numpy(float)
        if len(v) < 2 or np.ptp(v) != 0 or grp["variant"].nunique() < 2:
            continue
        m = METRICS[key]
        beside = _refs_for_precision(refs, d, key)
        words = {keys.REF_HELDOUT: "held-out real images (the floor)", keys.REF_NOISE: "uniform noise"}
        ref_text = "; ".join(f"{words[r]} {fmt_num(x, m.decimals)}" for r, x in beside.items())
        tells = ""
        if key.startswith("precision") and keys.REF_NOISE in beside:
            from .summary import NOISE_PRECISION_MAX

            if beside[keys.REF_NOISE] <= NOISE_PRECISION_MAX:
                tells = (f" Uniform noise gets precision {beside[keys.REF_NOISE]:.2f}, so the noise row does not expose the extractor "
                         f"as fooled: the value is saturation (every variant's samples fall inside the real samples' k-NN balls "
                         f"at this sample size), not a noise artefact.")
            else:
                tells = f" Uniform noise gets precision {beside[keys.REF_NOISE]:.2f} too: the extractor does not tell noise from data."
        gate = (excluded or {}).get((d, key), "")
        if gate and "noise" not in gate:
            tells += f" Beyond that, {gate}."
        out.append(f"{dataset_name(d)}, {m.label}: {fmt_num(v[0], m.decimals)} for every variant on every seed"
                   + (f" ({ref_text})" if ref_text else "") + ": saturated, it cannot rank the variants and enters no test." + tells)
    return out


# ---------------------------------------------------------------------------------------------- tables


def _setting(ab: Any, summaries: dict[tuple[str, str, int], dict[str, Any]], dataset: str, variant: str) -> str:
    """What the trained checkpoints have (train.json) for the keys the question's variants set: every such key
    on the default's row, on the others the keys where they differ from the default."""
    def trained(v: str) -> dict[str, Any] | None:
        found = [s for (d, e, _), s in sorted(summaries.items()) if d == dataset and e == ab.entries[v]]
        return found[0].get("model_config", {}) if found else None

    keys_ = sorted({k for o in ab.variants.values() for k in o})
    own, default = trained(variant), trained(ab.default)
    if own is None:  # not trained (yet): what the config asks for
        return ", ".join(f"{k}={ab.variants[variant][k]}" for k in keys_ if k in ab.variants[variant]) or "as configured"
    shown = [k for k in keys_ if variant == ab.default or default is None or own.get(k) != default.get(k)]
    return ", ".join(f"{k}={own.get(k)}" for k in shown) or "as the default"


def _cell(c: Comparison | None, decimals: int) -> str:
    if c is None or c.mean is None:
        return DASH
    text = fmt_num(c.mean, decimals) + (f" ± {fmt_num(c.std, decimals)}" if c.std is not None else "")
    return text + (f" {MARK}" if c.significant else "")


def _table(ab: Any, values: pd.DataFrame, comps: dict, summaries: dict, metrics: list[str], name: str, title: str, notes: list[str],
           refs: dict | None = None) -> ReportTable:
    datasets = ordered(values["dataset"], DATASET_ORDER)
    standin = set(values.attrs.get("standin", ()))
    rows = []
    for d in datasets:
        shown = standin and d in standin
        for v in ab.variants:
            row = {"Dataset": dataset_name(d) + (STANDIN if shown else ""), "Variant": v + (DEFAULT_MARK if v == ab.default else ""),
                   "Setting": _setting(ab, summaries, d, v)}
            row.update({METRICS[k].header: _cell(comps.get((d, v, k)), METRICS[k].decimals) for k in metrics})
            rows.append(row)
        for r in REFERENCE_ROWS if refs else ():
            cells = {k: refs.get((d, r, k)) for k in metrics}
            if not any(cells.values()):
                continue
            row = {"Dataset": dataset_name(d) + (STANDIN if shown else ""), "Variant": keys.REFERENCE_LABELS[r], "Setting": "reference (not trained)"}
            row.update({METRICS[k].header: DASH if x is None else fmt_num(x[0], METRICS[k].decimals) + (f" ± {fmt_num(x[1], METRICS[k].decimals)}"
                                                                                                         if x[1] is not None else "")
                        for k, x in cells.items()})
            rows.append(row)
    return ReportTable(name, title, pd.DataFrame(rows), notes)


def ablation_table(ab: Any, values: pd.DataFrame, comps: dict, summaries: dict, notes: list[str], refs: dict | None = None) -> ReportTable:
    """The quality table: one row per (dataset, variant), then the reference rows, one column per quality metric."""
    return _table(ab, values, comps, summaries, quality_metrics(ab), f"ablation_{ab.name}", f"Ablation '{ab.name}': {ab.question}", notes, refs)


def speed_table(ab: Any, values: pd.DataFrame, comps: dict, summaries: dict, notes: list[str]) -> ReportTable:
    """The speed table: the question's speed metrics, apart from its answer."""
    return _table(ab, values, comps, summaries, speed_metrics(ab), f"ablation_{ab.name}_speed",
                  f"Ablation '{ab.name}', speed (never counted in the answer): {ab.question}", notes)


def _fmt_p(p: float | None) -> str:
    return DASH if p is None else "< 0.001" if p < 0.001 else f"{p:.3f}"


def _fmt_diff(diff: float, decimals: int) -> str:
    return ("+" if diff >= 0 else "−") + fmt_num(abs(diff), decimals)


def _fmt_effect(t: Welch, decimals: int) -> str:
    """"+1.23 [+0.50, +1.96]": the difference with its interval where it has one."""
    text = _fmt_diff(t.diff, decimals)
    if t.low is not None:
        text += f" [{_fmt_diff(t.low, decimals)}, {_fmt_diff(t.high, decimals)}]"
    return text


def _result(key: str, c: Comparison) -> str:
    m = METRICS[key]
    if c.p is None:
        return "not tested"
    if not c.significant:
        return "no significant difference"
    sign = c.diff * m.better
    if m.speed:
        return "faster" if sign > 0 else "slower"
    return "better" if sign > 0 else "worse" if sign < 0 else "different"


def _why_untested(c: Comparison) -> str:
    t = c.test
    if c.excluded:
        return c.excluded
    if t is None:
        return ""
    if t.spread == NO_SPREAD:
        return (f"{NO_SPREAD}: both sides give one value on every seed"
                + (", the same value" if t.diff == 0 else ", so the difference is exact and no test applies"))
    return t.spread


def test_rows(q: str, ab: Any, comps: dict) -> list[dict[str, Any]]:
    """Every comparison of one question against its default, as rows of ``ablation_tests.csv`` (numbers unrounded)."""
    rows = []
    for (d, v, k), c in sorted(comps.items()):
        if v == ab.default or c.test is None:
            continue
        base = comps.get((d, ab.default, k))
        t = c.test
        rows.append({"question": q, "dataset": d, "variant": v, "model": ab.entries[v], "metric": k, "kind": "speed" if METRICS[k].speed else "quality",
                     "n_variant": c.n, "n_default": base.n if base else 0, "mean_variant": c.mean, "mean_default": base.mean if base else None,
                     "diff": t.diff, "ci_low": t.low, "ci_high": t.high, "dof": t.dof, "hedges_g": t.g, "p": t.p, "p_adjusted": c.p_adj,
                     "significant": c.significant, "counted_in_answer": counted(k, c) and c.p is not None, "result": _result(k, c),
                     "note": _why_untested(c)})
    return rows


def tests_table(ab: Any, comps: dict, method: str) -> ReportTable:
    """Every comparison of one question, for ablations.md: the effect with its interval, Hedges' g, both p-values."""
    name = CORRECTIONS[method][0]
    rows = []
    for d in ordered({d for d, _, _ in comps}, DATASET_ORDER):
        for v in ab.variants:
            for k in question_metrics(ab):
                c = comps.get((d, v, k))
                if v == ab.default or c is None or c.test is None:
                    continue
                m = METRICS[k]
                rows.append({"Dataset": dataset_name(d), "Variant": v, "Metric": m.header + (" (speed)" if m.speed else ""),
                             f"Difference vs {ab.default} [{LEVEL:.0%} CI]": _fmt_effect(c.test, m.decimals),
                             "Hedges' g": DASH if c.test.g is None else _fmt_diff(c.test.g, 2), "p (Welch)": _fmt_p(c.p),
                             f"p adj. ({name})": _fmt_p(c.p_adj), "Result": _result(k, c), "Note": _why_untested(c)})
    return ReportTable(f"ablation_{ab.name}_tests", f"Ablation '{ab.name}': every comparison with the default", pd.DataFrame(rows), [])


# ---------------------------------------------------------------------------------------------- answer


def _identical(ab: Any, d: str, v: str, comps: dict, metrics: list[str]) -> bool:
    """Whether ``v`` gave exactly the default's per-seed numbers on every metric that is not a speed: the
    setting changed nothing in the trained model (e.g. removing the non-linearity of a one-layer net)."""
    pairs = [(comps.get((d, v, k)), comps.get((d, ab.default, k))) for k in metrics if not METRICS[k].speed]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None and a.seeds]
    return bool(pairs) and all(a.seeds == b.seeds for a, b in pairs)


def _named(key: str, c: Comparison) -> str:
    m = METRICS[key]
    text = f"{m.label} ({_fmt_effect(c.test, m.decimals)}, p adj. {_fmt_p(c.p_adj)}"
    return text + (f"; {c.test.spread}" if c.test.spread else "") + ")"


def _describe(ab: Any, d: str, v: str, comps: dict, metrics: list[str]) -> str:
    """One variant on one dataset, from its counted quality comparisons."""
    if _identical(ab, d, v, comps, metrics):
        return f"{v} gives exactly the default's numbers on every seed: the setting changed nothing in the trained model here"
    better, worse, other, shown = [], [], [], []
    tested = 0
    for k in metrics:
        c = comps.get((d, v, k))
        if c is None or c.p is None:
            continue
        if not counted(k, c):  # a description without a direction (κ, entropy): named where it differs, never counted
            if c.significant and METRICS[k].not_counted and not c.excluded:
                shown.append(f"{'higher' if c.diff > 0 else 'lower'} {_named(k, c)}")
            elif c.significant:
                other.append(_named(k, c))
            continue
        tested += 1
        if c.significant:
            (better if c.diff * METRICS[k].better > 0 else worse).append(_named(k, c))
    parts = [f"better on {', '.join(better)}"] * bool(better) + [f"worse on {', '.join(worse)}"] * bool(worse)
    rest = tested - len(better) - len(worse)
    if other:
        parts.append(f"different (no better or worse) on {', '.join(other)}")
    aside = f" (not counted: {', '.join(shown)})" if shown else ""
    if not better and not worse and not other:
        return f"{v} shows no significant difference on the {tested} quality metric{'s' * (tested != 1)} counted" + aside
    return f"{v} is " + "; ".join(parts) + (f"; no significant difference on the other {rest} quality metric{'s' * (rest != 1)} counted"
                                           if rest else "") + aside


def verdicts(ab: Any, comps: dict, metrics: list[str]) -> dict[str, tuple[int, int]]:
    """Variant -> (significant comparisons the default wins, ones the variant wins), over datasets and the
    quality metrics with a direction that passed their gates; a speed never counts."""
    out = {}
    for v in ab.variants:
        if v == ab.default:
            continue
        wins = losses = 0
        for (d, vv, k), c in comps.items():
            if vv != v or k not in metrics or not counted(k, c) or not c.significant:
                continue
            if c.diff * METRICS[k].better > 0:
                losses += 1
            else:
                wins += 1
        out[v] = (wins, losses)
    return out


def _not_counted(ab: Any, d: str, comps: dict, metrics: list[str]) -> str:
    """The quality metrics of one dataset shown but never tested, grouped by why."""
    why: dict[str, list[str]] = {}
    for k in metrics:
        cs = [comps.get((d, v, k)) for v in ab.variants if v != ab.default]
        cs = [c for c in cs if c is not None and c.test is not None]
        if not cs or METRICS[k].better == 0:
            continue
        if cs[0].excluded:
            why.setdefault(cs[0].excluded, []).append(METRICS[k].label)
        elif all(c.test.spread == NO_SPREAD for c in cs):
            why.setdefault(f"{NO_SPREAD}: every variant and the default give one value on every seed", []).append(METRICS[k].label)
    return " ".join(f"Not tested, not counted: {', '.join(ms)} ({reason})." for reason, ms in why.items())


def _speed_line(ab: Any, d: str, comps: dict) -> str:
    parts = []
    for k in speed_metrics(ab):
        m = METRICS[k]
        if not m.tested:
            means = [f"{v} {fmt_num(comps[(d, v, k)].mean, m.decimals)}" for v in ab.variants
                     if (d, v, k) in comps and comps[(d, v, k)].mean is not None]
            if means:
                parts.append(f"{m.label}, shown only, never tested (it carries the machine's load): {', '.join(means)}")
            continue
        tested = [(v, comps[(d, v, k)]) for v in ab.variants if v != ab.default and (d, v, k) in comps and comps[(d, v, k)].test is not None]
        if tested:
            parts.append(f"{m.label} against {ab.default} ({fmt_num(comps[(d, ab.default, k)].mean, m.decimals) if (d, ab.default, k) in comps else DASH}): "
                         + ", ".join(f"{v} {_fmt_effect(c.test, m.decimals)}, {_result(k, c)}"
                                     + (f" (p adj. {_fmt_p(c.p_adj)})" if c.p_adj is not None else "") for v, c in tested))
    return f"{dataset_name(d)} speed, apart from the answer: " + "; ".join(parts) + "." if parts else ""


def answer(ab: Any, values: pd.DataFrame, comps: dict, family: int = 0, method: str = CORRECTION) -> list[str]:
    """The generated answer to one question: a verdict line from the quality metrics, then per dataset what each
    variant does, what was not tested and why, and the speed apart."""
    metrics = quality_metrics(ab)
    seeds = sorted({int(s) for s in values["seed"]})
    groups: dict[str, list[str]] = {"worse": [], "better": [], "mixed": [], "same": []}
    for v, (wins, losses) in verdicts(ab, comps, metrics).items():
        key = "worse" if wins and not losses else "better" if losses and not wins else "mixed" if wins else "same"
        groups[key].append(v + (f" (better than the default in {losses}, worse in {wins} significant comparisons)" if wins or losses else ""))

    def these(vs: list[str]) -> str:
        return ", ".join(vs) + (" is" if len(vs) == 1 else " are")

    phrases = {"worse": "the default {d} is better than {vs}", "better": "{are} better than the default {d}",
               "mixed": "{are} better than the default {d} on some metrics and worse on others",
               "same": "{are} not significantly different from the default {d} on any quality metric tested"}
    verdict = "; ".join(phrases[k].format(d=ab.default, vs=", ".join(vs), are=these(vs)) for k, vs in groups.items() if vs)
    name = CORRECTIONS[method][0]
    lines = [f"Answer, from the quality metrics ({len(seeds)} seeds; a difference counts where its Welch test's {name}-adjusted "
             f"p < {ALPHA}, over all {family} tests of this report; speed is reported apart and never counts): {verdict}."]
    for d in ordered(values["dataset"], DATASET_ORDER):
        parts = [_describe(ab, d, v, comps, metrics) for v in ab.variants if v != ab.default]
        best = []
        for k in metrics:
            m = METRICS[k]
            means = {v: comps[(d, v, k)].mean for v in ab.variants if (d, v, k) in comps and comps[(d, v, k)].mean is not None}
            top = max((m.better * x for x in means.values()), default=None)
            leaders = [v for v, x in means.items() if m.better * x == top]
            if m.better and len(leaders) == 1 and not comps[(d, leaders[0], k)].excluded:  # a tie names no best
                best.append(f"{m.label}: {leaders[0]} ({fmt_num(means[leaders[0]], m.decimals)})")
        skipped = _not_counted(ab, d, comps, metrics)
        lines.append(f"{dataset_name(d)}, against {ab.default}: " + ". ".join(parts) + "." + (f" {skipped}" if skipped else "")
                     + (f" Best mean (not a test): {'; '.join(best)}." if best else ""))
        speed = _speed_line(ab, d, comps)
        if speed:
            lines.append(speed)
    return lines


# ---------------------------------------------------------------------------------------------- figures


def ablation_figure(ab: Any, values: pd.DataFrame, comps: dict, path: Path, refs: dict | None = None, method: str = CORRECTION) -> Path:
    """One panel per (dataset, metric), quality first, then speed: every seed's value per variant, mean ± std, the
    default in colour, a star over a variant that differs significantly after the correction, the held-out real
    floor as a dashed line where the reference has one; a panel not tested says so in its title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .figures import _save

    metrics = quality_metrics(ab) + speed_metrics(ab)
    datasets = ordered(values["dataset"], DATASET_ORDER) or [""]
    variants = list(ab.variants)
    ncols = min(FIGURE_COLUMNS, len(metrics))
    per = math.ceil(len(metrics) / ncols)  # panel rows per dataset
    width = max(0.45 * len(variants), 2.6)
    fig, axes = plt.subplots(len(datasets) * per, ncols, figsize=(width * ncols + 0.6, 2.6 * len(datasets) * per + 0.8), squeeze=False)
    for i, d in enumerate(datasets):
        for j, k in enumerate(metrics):
            ax, m = axes[i * per + j // ncols, j % ncols], METRICS[k]
            for x, v in enumerate(variants):
                c = comps.get((d, v, k))
                if c is None or c.mean is None:
                    continue
                colour = "C1" if v == ab.default else "C0"
                ax.plot(np.full(len(c.seeds), x) + np.linspace(-0.12, 0.12, len(c.seeds)), c.seeds, ".", color=colour, alpha=0.5)
                ax.errorbar(x, c.mean, yerr=c.std or 0.0, fmt="o", color=colour, capsize=3)
                if c.significant:
                    ax.annotate(MARK, (x, c.mean + (c.std or 0.0)), ha="center", va="bottom", fontsize=12)
            floor = (refs or {}).get((d, keys.REF_HELDOUT, k))
            mean_ref = (refs or {}).get((d, keys.REF_MEAN, k)) if k in LEARNED_GATE_METRICS else None
            if floor is not None:
                ax.axhline(floor[0], color="0.5", ls="--", lw=0.8, label="held-out real (floor)")
            if mean_ref is not None:  # the baseline a reconstruction must beat: differences near it are noise around the mean
                ax.axhline(mean_ref[0], color="C3", ls=":", lw=1.0, label="train mean (baseline)")
            if floor is not None or mean_ref is not None:
                ax.legend(fontsize=6, loc="best", frameon=False)
            ax.set_xticks(range(len(variants)), variants, rotation=45, ha="right", fontsize=7)
            ax.set_xlim(-0.5, len(variants) - 0.5)
            ax.tick_params(axis="y", labelsize=7)
            cs = [comps.get((d, v, k)) for v in variants]
            note = "speed: not in the answer" if m.speed else ""
            reasons = {c.excluded for c in cs if c is not None and c.excluded}
            if any("train mean" in r for r in reasons):
                note = "default at the train mean's level: not tested"
            elif any("noise" in r for r in reasons):
                note = "extractor gives noise precision: not tested"
            elif reasons:
                note = "extractor gate: not tested"
            elif not m.tested:
                note = "speed, load-dependent: not tested"
            elif m.not_counted:
                note = "mixture weights see the pixel: not in the answer"
            elif m.better == 0 and not m.speed:
                note = "a description: not in the answer"
            ax.set_title(f"{dataset_name(d)}: {m.header}" + (f"\n[{note}]" if note else ""), fontsize=7)
        for ax in axes[i * per:(i + 1) * per].flat[len(metrics):]:
            ax.set_visible(False)
    fig.suptitle(f"{ab.question}\n(default: {ab.default}; dots: seeds; bars: mean ± std over seeds; {MARK} {CORRECTIONS[method][0]}-adjusted "
                 f"p < {ALPHA}, Welch, over all tests of the report)",
                 fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def pictures_figure(ab: Any, dataset: str, arrays: dict[str, dict[str, np.ndarray]], path: Path, seed: int | None = None) -> Path:
    """Per variant of one question on one dataset: a GRID_SIDE x GRID_SIDE grid of uncurated samples (figures.npz
    ``samples_1x``), and below it a reconstruction row: the first RECON_EXAMPLES test samples (``ground_truth``)
    over the variant's reconstructions of them (``recon_1x``). ``arrays``: entry -> its figures.npz arrays (the
    first seed); a variant without them says so in its panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .figures import _off, _save, _wrap, kind_of, mosaic, to_rgb

    variants = list(ab.variants)
    cols = min(PICTURE_COLUMNS, len(variants))
    rows = math.ceil(len(variants) / cols)
    fig = plt.figure(figsize=(2.7 * cols + 0.3, 4.1 * rows + 0.9))
    grid = fig.add_gridspec(rows * 2, cols, height_ratios=[GRID_SIDE, 3.6] * rows, hspace=0.12, wspace=0.06,
                            left=0.02, right=0.98, top=1 - 0.85 / (4.1 * rows + 0.9), bottom=0.01)
    for i, v in enumerate(variants):
        r, c = divmod(i, cols)
        top, bottom = fig.add_subplot(grid[2 * r, c]), fig.add_subplot(grid[2 * r + 1, c])
        a = arrays.get(ab.entries[v]) or {}
        head = v + (DEFAULT_MARK if v == ab.default else "")
        samples = a.get("samples_1x")
        if samples is not None and len(samples):
            kind = kind_of(a)
            n = min(len(samples), GRID_SIDE * GRID_SIDE)
            top.imshow(mosaic([to_rgb(x, kind) for x in samples[:n]], min(GRID_SIDE, n)), interpolation="nearest")
            top.set_title(f"{head}: {n} samples", fontsize=8)
        else:
            top.text(0.5, 0.5, "no samples in figures.npz", ha="center", va="center", fontsize=7, transform=top.transAxes)
            top.set_title(head, fontsize=8)
        if "recon_1x" in a and "ground_truth" in a:
            kind = kind_of(a)
            n = min(len(a["ground_truth"]), RECON_EXAMPLES)
            pics = [to_rgb(x, kind) for x in a["ground_truth"][:n]] + [to_rgb(x, kind) for x in a["recon_1x"][:n]]
            free = "recon_1x_leakfree" in a  # VAMoH: the leak-free protocol's reconstructions as a third row
            if free:
                pics += [to_rgb(x, kind) for x in a["recon_1x_leakfree"][:n]]
            bottom.imshow(mosaic(pics, n), interpolation="nearest")
            bottom.set_title("truth / reconstruction, paper protocol / leak-free" if free else "truth (top) / reconstruction", fontsize=7)
        else:
            bottom.text(0.5, 0.5, "no reconstruction in figures.npz", ha="center", va="center", fontsize=7, transform=bottom.transAxes)
        _off(top)
        _off(bottom)
    shown = max((min(len(a["ground_truth"]), RECON_EXAMPLES) for a in arrays.values() if "ground_truth" in a), default=0)
    text = (f"{ab.question} — {dataset_name(dataset)}: uncurated samples at 1x and reconstructions of the first "
            f"{shown} test samples (the evaluate stage's figures.npz{'' if seed is None else f', seed {seed}'})")
    fig.suptitle(_wrap(text, 2.7 * cols, 9), fontsize=9)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------- the report


def _notes(values: pd.DataFrame, tidy: pd.DataFrame, ab: Any, context: dict[str, Any], metrics: list[str], method: str, family: int,
           excluded: dict[tuple[str, str], str], refs: dict) -> list[str]:
    name, controls = CORRECTIONS[method]
    notes = [f"{MARK} significant: the variant's per-seed means differ from the default's by Welch's two-sided t-test (unequal variances) "
             f"with a {name}-adjusted p < {ALPHA}; the correction controls {controls} over all {family} tests of this report (every "
             f"comparison that gets a test, in every question and dataset: counted quality metrics, the ones shown but not counted, "
             f"and the interleaved encoder time; none for untested rows). Mean ± std over seeds (std with ddof=1). Every difference, its "
             f"{LEVEL:.0%} Welch interval (per comparison, not adjusted: an interval that excludes 0 can still be non-significant "
             f"after the correction), Hedges' g and both p-values are in ablations.md and ablation_tests.csv. No test where a side "
             f"has fewer than 2 seeds, or where neither side varies over seeds ({NO_SPREAD}).",
             f"{DEFAULT_MARK.strip()}: the variant the others are compared with. Setting: the values the trained "
             f"checkpoints have (train.json) for the keys the variants set; on the other rows only where they differ from the default's."]
    rows = tidy[tidy["model"].isin(set(ab.entries.values())) & tidy["dataset"].isin(set(values["dataset"]))]
    for d in ordered(values["dataset"], DATASET_ORDER):
        labels = sorted({x for x in rows[rows["dataset"] == d]["data_label"] if x})
        if d in values.attrs.get("standin", ()):
            notes.append(f"{STANDIN} {dataset_name(d)}: stand-in data, not the paper's dataset — {'; '.join(labels) or d}.")
    if any(METRICS[k].extractor for k in metrics):
        fx = sorted({f for f in rows["feature_extractor"] if f and not f.lower().startswith("none")})
        inception = bool(fx) and all(f.lower().startswith("inception") for f in fx)
        caveat = "" if inception else " (not the paper's Inception: they compare these variants with each other only)"
        sizes = f"; {context['generation']}" if context.get("generation") else ""
        notes.append(f"{NON_INCEPTION} FID, precision and recall on the features of {'; '.join(fx) or 'no extractor'}{caveat}{sizes}.")
        by_reason: dict[str, list[str]] = {}
        for (d, k), why in excluded.items():
            if k in metrics:
                by_reason.setdefault(f"{dataset_name(d)}: {why}", []).append(METRICS[k].label)
        for where, ms in by_reason.items():
            notes.append(f"Not tested, in no answer: {', '.join(ms)} on {where}.")
    present = [r for r in REFERENCE_ROWS if any(rr == r and k in metrics and d in set(values["dataset"]) for (d, rr, k) in refs or {})]
    if present:
        about = {keys.REF_HELDOUT: "held-out real images, scored exactly like a variant's generated sets (mean ± std over the sets)",
                 keys.REF_NOISE: "uniform noise images, scored the same way",
                 keys.REF_MEAN: "the train split's mean predicting every test sample (mean ± std over test samples), and as a "
                                "generator that image repeated"}
        notes.append("Reference rows (the reference stage, not trained, never tested): "
                     + "; ".join(f"{keys.REFERENCE_LABELS[r]}: {about[r]}" for r in present) + ".")
    if "test_elbo_per_point" in metrics:
        notes.append("Test ELBO / point: the paper's bound (eq. 16) per test sample divided by its number of points (nats), one "
                     "reparameterised z per sample; switches that change only the training objective are off while it is computed.")
    if "encoder_ms" in metrics:
        notes.append(f"Encoder ms / sample: median of {context.get('encoder_repeats', '?')} calls of the encoder on one test "
                     f"sample observed at a fresh random {ENCODER_KEEP:.0%} of its points each call (centroids and neighbourhoods "
                     f"recomputed, as under point dropout or partial observation), after {context.get('encoder_warmup', '?')} warm-up "
                     f"calls; the question's variants interleaved in one process per (dataset, seed), so they share the machine's load.")
    if "time_reconstruction_ms" in metrics:
        notes.append("Recon. ms / sample: the timing rule's median per-sample reconstruction time at batch size 1, every entry of a "
                     "(dataset, seed) interleaved in one process.")
    if "segment_kappa" in metrics:
        notes.append(f"Segment contiguity κ = (coherence − chance) / (1 − chance) per test sample, coherence the share of neighbouring "
                     f"points with the same most probable component and chance = sum_k p_k² (vamoh.eval.maps.segment_kappa): 0 = speckle, "
                     f"1 = no disagreeing neighbours. {DASH} where it is undefined: one component covers every point (K = 1), so "
                     f"nothing is segmented.")
    if "segment_coherence" in metrics:
        notes.append("Segment coherence (raw): not corrected for chance; a single component (K = 1) scores 1.000.")
    if "segment_position_ari" in metrics:
        notes.append("Segment position ARI: the mean adjusted Rand index of each map with the maps of other test inputs on the same "
                     "grid (1 = the same partition whatever the input: a partition by position).")
    if "segment_parts_ari" in metrics:
        notes.append("Segment parts ARI: the adjusted Rand index of each map with the true parts the stand-in renders (Shapes3D, the "
                     f"faces, the chairs); {DASH} where the data has none.")
    if "samples_per_second" in metrics:
        notes.append("Train samples / s (job wall time): training steps x batch size / the training job's wall time (train.json). Jobs "
                     "ran side by side, so it carries the machine's load (the same model has differed by 5% between two jobs): shown, "
                     "never tested, never counted.")
    if any(METRICS[k].speed for k in metrics):
        notes.append("Speed is reported apart from quality: a faster variant is never called better.")
    if context.get("device"):
        notes.append(f"Computed on: {context['device']}; seeds: {', '.join(map(str, sorted({int(s) for s in values['seed']})))}.")
    return notes


def write_ablation_report(ablations: dict[str, Any], tidy: pd.DataFrame | str | Path, summaries: list[dict[str, Any]],
                          measured: pd.DataFrame, out_dir: str | Path, context: dict[str, Any] | None = None,
                          references: dict[str, dict[str, Any]] | None = None, arrays: dict[tuple[str, str], dict[str, np.ndarray]] | None = None,
                          method: str = CORRECTION) -> list[Path]:
    """``out_dir``: per question ``ablation_<q>.{csv,md,tex,html}`` (quality), ``ablation_<q>_speed.*`` (where it has
    speed metrics), ``ablation_<q>.png`` (every number) and, given ``arrays``, ``ablation_<q>_pictures_<dataset>.png``
    (samples and reconstructions); the per-seed numbers ``ablation_values.csv``; every test ``ablation_tests.csv``;
    and ``ablations.md`` with every answer, table and figure.

    ``references``: dataset -> its reference.json record (the extractor's quality gate); without one a dataset's
    FID, precision and recall are shown but not tested. ``arrays``: (dataset, entry) -> figures.npz arrays (of the seed
    ``context["figure_seed"]``, named in the pictures' titles).
    ``method``: the multiple-comparison correction over every test of the report (``CORRECTIONS``).
    """
    if method not in CORRECTIONS:
        raise ValueError(f"unknown multiple-comparison correction {method!r}; expected one of {sorted(CORRECTIONS)}")
    context = dict(context or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = read_tidy(tidy)
    values = per_seed(ablations, t, summaries, measured)
    standin = sorted(set(t[t["is_standin"]]["dataset"]))
    summ = {(s["dataset"], s["model"], int(s["seed"])): s for s in summaries}
    refs = reference_values(t, {k for ab in ablations.values() for k in question_metrics(ab)})
    datasets = ordered(values["dataset"], DATASET_ORDER)
    # every question's comparisons first: the correction runs over all of the report's tests at once
    per_q: dict[str, tuple[pd.DataFrame, dict, dict]] = {}
    for q, ab in ablations.items():
        vals = values[values["question"] == q].copy()
        vals.attrs["standin"] = standin
        excluded = {**learning_exclusions(vals, ab.default, question_metrics(ab), refs),
                    **extractor_exclusions(sorted(set(vals["dataset"])), question_metrics(ab), references, refs)}
        per_q[q] = (vals, compare(vals, ab.default, excluded), excluded)
    family = correct([c for _, comps, _ in per_q.values() for c in comps.values()], method)
    name, controls = CORRECTIONS[method]
    tests = pd.DataFrame([r for q, ab in ablations.items() for r in test_rows(q, ab, per_q[q][1])])
    written = [atomic_write_text(out_dir / "ablation_values.csv", values.to_csv(index=False)),
               atomic_write_text(out_dir / "ablation_tests.csv", f"# correction: {name} ({method}) over {family} tests\n" + tests.to_csv(index=False))]
    run = context.get("run", "")
    doc = [f"# Ablations{f' (run {run})' if run else ''}", "",
           "Generated by `snakemake ablations` (`vamoh.report.ablations`) from the tidy table, the train.json summaries, the reference "
           "records and the ablation stage's measurements; every sentence below is a template filled from the numbers.", ""]
    doc += [f"- {line}" for line in context.get("about", [])]
    doc += [f"- Statistics: each variant against its question's default, per dataset and metric, by Welch's two-sided t-test on the "
            f"per-seed means. Effect: the difference of means (variant − default) with its {LEVEL:.0%} Welch interval "
            f"(Welch–Satterthwaite degrees of freedom), and Hedges' g (pooled SD, small-sample corrected) beside it. Correction: "
            f"{name} ({method}, statsmodels' multipletests) over all {family} tests of this report, controlling {controls}; "
            f"a difference is significant, and marked {MARK}, where its adjusted p < {ALPHA}. No test where a side has fewer than 2 "
            f"seeds or neither side varies over seeds ({NO_SPREAD}); where one side is constant the test is one-sample, said so. "
            f"The intervals are per comparison (not adjusted), so an interval that excludes 0 can belong to a difference that is "
            f"not significant after the correction.",
            "- Answers count only quality metrics with a direction (ELBO, leak-free reconstruction and completion PSNR, FID, "
            "precision, recall, and parts ARI where a question shows it) that pass their gates; the paper-protocol reconstruction "
            "PSNR is tested and shown, never counted (its mixture weights see the values they predict). Reconstruction and "
            "completion scores are tested only where the question's default beats the train mean on them by "
            "the summary's margin: a model at the train mean's level has learned nothing for its variants to change. "
            "Speed is reported apart and never makes a variant better: the encoder's time is measured "
            "with the variants interleaved in one process, training samples per second come from job wall time and are shown only.",
            "- FID, precision and recall are tested only where the feature extractor passes the reference stage's quality gate, and "
            "precision and recall only where uniform noise gets (almost) no precision, as in the demo's summary; the held-out real "
            "floor, the uniform-noise ceiling and the train mean stand beside the variants in every table."]
    for q, ab in ablations.items():
        vals, comps, excluded = per_q[q]
        metrics = question_metrics(ab)
        notes = _notes(vals, t, ab, context, metrics, method, family, excluded, refs)
        table = ablation_table(ab, vals, comps, summ, [n for n in notes if not n.startswith(("Encoder ms", "Train samples", "Recon. ms", "Speed is"))], refs)
        written += write_table(table, out_dir)
        lines = answer(ab, vals, comps, family, method) + saturation_notes(vals, refs, excluded)
        doc += ["", f"## {ab.question}", ""] + [f"{'' if i == 0 else '- '}{line}" for i, line in enumerate(lines)]
        doc += ["", to_markdown(table)]
        if speed_metrics(ab):
            speed = speed_table(ab, vals, comps, summ, [n for n in notes if n.startswith((MARK, "Encoder ms", "Train samples", "Recon. ms", "Speed",
                                                                                           "Computed on"))])
            written += write_table(speed, out_dir)
            doc += ["", to_markdown(speed)]
        tests_md = tests_table(ab, comps, method)
        if not tests_md.frame.empty:
            doc += ["", f"<details><summary>Every comparison of this question ({len(tests_md.frame)})</summary>", "", to_markdown(tests_md),
                    "</details>"]
        written.append(ablation_figure(ab, vals, comps, out_dir / f"ablation_{q}.png", refs, method))
        doc += ["", f"![{q}](ablation_{q}.png)"]
        if arrays is not None:
            for d in ordered(set(datasets) | {dd for dd, _ in arrays}, DATASET_ORDER):
                own = {e: a for (dd, e), a in arrays.items() if dd == d}
                written.append(pictures_figure(ab, d, own, out_dir / f"ablation_{q}_pictures_{d}.png", context.get("figure_seed")))
                doc += ["", f"![{q}, {dataset_name(d)}: samples and reconstructions](ablation_{q}_pictures_{d}.png)"]
    written.append(atomic_write_text(out_dir / "ablations.md", "\n".join(doc).rstrip() + "\n"))
    return written


def measure(ablations: dict[str, Any], jobs: dict[tuple[str, str, int], Any], test_batches: dict[str, list[Any]],
            load: Any, repeats: int, warmup: int) -> pd.DataFrame:
    """The stage's own measurements, rows (question, dataset, model, seed, metric, value).

    ``jobs``: (dataset, entry, seed) -> checkpoint; ``load(checkpoint)`` -> the model, ready to run;
    ``test_batches``: dataset -> its test batches. The test ELBO is measured once per entry (question "");
    the encoder is timed per question, its variants interleaved per (dataset, seed).
    """
    wanted = {e for ab in ablations.values() if "test_elbo_per_point" in question_metrics(ab) for e in ab.entries.values()}
    rows = []
    for (d, e, s), ckpt in jobs.items():
        if e not in wanted:
            continue
        vals = test_elbo_per_point(load(ckpt), test_batches[d], seed=s)
        if vals is not None:
            rows.append({"question": "", "dataset": d, "model": e, "seed": s, "metric": "test_elbo_per_point", "value": float(np.mean(vals))})
    for q, ab in ablations.items():
        if "encoder_ms" not in question_metrics(ab):
            continue
        for d, s in sorted({(d, s) for (d, _, s) in jobs}):
            nets = {e: load(jobs[(d, e, s)]) for e in dict.fromkeys(ab.entries.values()) if (d, e, s) in jobs}
            first = test_batches[d][0].samples(0, 1)
            for e, sec in encoder_timings(nets, first, repeats, warmup, seed=s).items():
                rows.append({"question": q, "dataset": d, "model": e, "seed": s, "metric": "encoder_ms", "value": sec * 1e3})
    return pd.DataFrame(rows, columns=["question", "dataset", "model", "seed", "metric", "value"])
