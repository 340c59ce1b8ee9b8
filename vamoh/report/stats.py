"""The statistics behind every interval and test the reports print.

Intervals are Student-t intervals on the independent units of a measurement:

- with two or more training seeds, the unit is a seed: each seed's mean (over its test samples, its generated
  sets, ...) is one value, so the interval carries the seed-to-seed variance of training;
- with one seed, the unit is the test sample (or, where test samples share a source, the cluster of samples
  with one source: ERA5's stand-in test fields are real fields plus anomalies, so the copies of one real
  field are one unit), and the interval says that training variance is not in it.

Student-t quantiles, not 2 standard errors: with n = 3 seeds the 95% quantile is t(2) = 4.30, not 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int  # the number of independent units the interval is over
    method: str  # how it was made, for the page

    def fmt(self, spec: str = "+.2f") -> str:
        return f"{self.mean:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"


def t_interval(values: np.ndarray | list[float], level: float = LEVEL) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of the finite values: mean ± t_{(1+level)/2, n-1} · sd / sqrt(n).

    With fewer than 2 values the bounds are NaN (no interval): a verdict on it is inconclusive."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    m = float(v.mean())
    if n < 2:
        return m, math.nan, math.nan, n
    half = float(_st.t.ppf(0.5 + level / 2, n - 1)) * float(v.std(ddof=1)) / math.sqrt(n)
    return m, m - half, m + half, n


def cluster_means(values: np.ndarray, clusters: np.ndarray | None) -> np.ndarray:
    """The mean of the finite values in each cluster (clusters sorted by id); ``values`` as they are without clusters."""
    v = np.asarray(values, dtype=np.float64)
    if clusters is None:
        return v[np.isfinite(v)]
    c = np.asarray(clusters)[: len(v)]
    ok = np.isfinite(v)
    return np.array([v[ok & (c == k)].mean() for k in np.unique(c[ok])])


def seeded_interval(per_seed: dict[int, np.ndarray], clusters: np.ndarray | None = None, unit: str = "test samples",
                    level: float = LEVEL) -> Interval:
    """The interval of a per-unit quantity measured under one or more training seeds (``per_seed``: seed -> values).

    Two or more seeds: the t-interval of the seeds' means (each the mean over its clusters when ``clusters``
    is given, else over its values). One seed: the t-interval over clusters (or values), said to exclude
    training variance."""
    seeds = sorted(per_seed)
    if not seeds:
        return Interval(math.nan, math.nan, math.nan, 0, "no values")
    pct = f"{level:.0%}"
    cl = "" if clusters is None else f", clustered into {len(np.unique(np.asarray(clusters)))} source clusters"
    if len(seeds) >= 2:
        means = [float(cluster_means(per_seed[s], clusters).mean()) for s in seeds]
        m, lo, hi, n = t_interval(means, level)
        k = min(len(per_seed[s]) for s in seeds)
        return Interval(m, lo, hi, n, f"{pct} t-interval over {n} training seeds' means (each over {k} {unit}{cl})")
    units = cluster_means(per_seed[seeds[0]], clusters)
    m, lo, hi, n = t_interval(units, level)
    what = "source clusters" if clusters is not None else unit
    return Interval(m, lo, hi, n, f"{pct} t-interval over {n} {what} of one training seed (seed variance not included)")


def paired(a: dict[int, np.ndarray], b: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """a - b per seed, on the seeds both have and where both have the same number of values (paired units)."""
    return {s: np.asarray(a[s], np.float64) - np.asarray(b[s], np.float64) for s in sorted(set(a) & set(b)) if len(a[s]) == len(b[s])}


def seed_sd(per_seed: dict[int, np.ndarray]) -> float:
    """The standard deviation (ddof=1) of the seeds' means; NaN with fewer than 2 seeds."""
    means = [float(np.nanmean(v)) for v in per_seed.values() if np.isfinite(v).any()]
    return float(np.std(means, ddof=1)) if len(means) >= 2 else math.nan


def faster_test(fast: np.ndarray, slow: np.ndarray) -> float:
    """One-sided Mann-Whitney U p-value that calls of ``fast`` take less time than calls of ``slow`` (exact for
    small samples). With 3 calls each the smallest possible p is 1/20 = 0.05; 4 and 4 give 1/70."""
    fast, slow = np.asarray(fast, np.float64), np.asarray(slow, np.float64)
    if len(fast) == 0 or len(slow) == 0:
        return math.nan
    return float(_st.mannwhitneyu(fast, slow, alternative="less", method="exact" if len(fast) + len(slow) <= 40 else "auto").pvalue)
