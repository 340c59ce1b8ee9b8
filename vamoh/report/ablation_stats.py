"""The ablation report's statistics: each variant against its question's default, over seeds.

- ``welch``: Welch's two-sided t-test on the per-seed means; the effect is the difference of means (variant −
  default) with its ``LEVEL`` Welch interval (Welch–Satterthwaite degrees of freedom), and ``hedges_g`` beside it;
- ``correct``: one multiple-comparison correction (``CORRECTION``, statsmodels' ``multipletests`` via ``adjust``) over
  every p-value the report prints; a difference is significant when its adjusted p < ``ALPHA``;
- no test where a side has fewer than 2 seeds (``FEW_SEEDS``), or where neither side varies over seeds
  (``NO_SPREAD``: a p-value would be 0 or 1 by fiat); where one side is constant the test is said to be one-sample;
- ``compare`` builds every (dataset, variant, metric) ``Comparison`` of one question; ``counted`` says which of them
  may enter an answer (quality metrics with a direction that pass their gates, never a speed).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..eval.ablation_metrics import METRICS

ALPHA = 0.05  # significance level of the adjusted p-values
LEVEL = 0.95  # level of every effect interval
# The correction over every test of the report (statsmodels.stats.multitest.multipletests method names).
# Benjamini-Hochberg: the report screens many differences at once, and a reader wants most of the differences it
# names to be real (the false discovery rate), not a guarantee that none is a fluke; with 3 seeds a side a
# family-wise correction (Holm) over ~150 tests leaves only differences tens of standard errors wide.
CORRECTION = "fdr_bh"
CORRECTIONS = {"fdr_bh": ("Benjamini–Hochberg", "the false discovery rate"),
               "holm": ("Holm", "the family-wise error rate (valid under any dependence between the tests)")}
NO_SPREAD = "no spread"  # neither side varies over seeds: no test
IDENTICAL = "identical to the default on every seed"  # the setting changed nothing in the trained model: no test
FEW_SEEDS = "fewer than 2 seeds a side"  # no test, no interval


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
