"""The pooled mean ± std behind every cell of the paper-style tables (and the figures' error bars).

A cell pools the tidy rows of one (dataset, model, metric) over seeds: the raw per-set or per-sample values
when the rows carry them, otherwise the rows' own means and stds weighted by their counts. The intervals and
tests of the verdicts are elsewhere (vamoh.report.stats): a table cell describes, a verdict decides.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd


@dataclasses.dataclass
class Stat:
    mean: float | None
    std: float | None
    n: int  # number of values behind mean (sets for generation, samples for reconstruction, runs for timing)


def finite(x: Any) -> bool:
    """Whether ``x`` is a number to print: not None and not NaN (infinities are numbers: they print as "inf")."""
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def combine(rows: pd.DataFrame) -> Stat | None:
    """One mean +- std from the rows of one (dataset, model, metric), possibly several seeds.

    Per-set/per-sample ``values`` are pooled when present (std with ddof=1, as vamoh.eval writes it);
    otherwise the rows' means and stds are pooled weighting by n. None when no row has a mean.
    """
    rows = rows[rows["mean"].notna()]
    if rows.empty:
        return None
    vals = [x for v in rows["values"] for x in v]
    if vals and len(vals) >= len(rows):
        arr = np.asarray(vals, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return Stat(float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0, int(arr.size))
    if len(rows) == 1:
        r = rows.iloc[0]
        return Stat(float(r["mean"]), float(r["std"]) if finite(r["std"]) else None, int(r["n"]) if finite(r["n"]) else 1)
    n = np.array([r if finite(r) and r > 0 else 1.0 for r in rows["n"]])
    m = rows["mean"].to_numpy(float)
    s = np.array([x if finite(x) else 0.0 for x in rows["std"]])
    total = n.sum()
    mu = float((n * m).sum() / total)
    with np.errstate(invalid="ignore"):
        var = float(((n - 1) * s**2 + n * (m - mu) ** 2).sum() / max(total - 1, 1))
    return Stat(mu, math.sqrt(var) if math.isfinite(var) else None, int(total))


def stat_of(t: pd.DataFrame, dataset: str, model: str, metric: str) -> Stat | None:
    """The pooled cell of one (dataset, model, metric) of a tidy table."""
    return combine(t[(t["dataset"] == dataset) & (t["model"] == model) & (t["metric"] == metric)])


def scaled(st: Stat | None, factor: float) -> Stat | None:
    """``st`` in other units (mean and std times ``factor``), e.g. an MMD printed ×10³."""
    if st is None:
        return None
    return Stat(None if st.mean is None else st.mean * factor, None if st.std is None else st.std * factor, st.n)
