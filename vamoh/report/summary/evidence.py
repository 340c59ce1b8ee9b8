"""What every claim rule reads and writes: the evidence of a run, the verdict words, and how an interval decides.

A verdict is a rule on a number with its spread (vamoh.report.stats): ``side`` places an interval against the
claim's threshold, and ``Evidence`` hands each rule the values of one (dataset, model, metric) per training seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..stats import Interval

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE = "reproduced", "not reproduced", "inconclusive", "not testable at this scale"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE)


@dataclass
class Verdict:
    claim: str
    dataset: str
    paper: str  # the paper's evidence
    measured: str  # what this run measured, with its spread
    verdict: str
    reason: str = ""
    interval: str = ""  # n and how the interval was made


@dataclass
class Evidence:
    """Everything the rules read: the tidy table, the reference records, what was trained, the data records."""

    t: pd.DataFrame
    references: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset -> reference.json
    trained: list[dict[str, Any]] = field(default_factory=list)  # train.json records
    clusters: dict[str, np.ndarray] = field(default_factory=dict)  # dataset -> source cluster of each test sample

    def per_seed(self, dataset: str, model: str, metric: str) -> dict[int, np.ndarray]:
        t = self.t
        rows = t[(t["dataset"] == dataset) & (t["model"] == model) & (t["metric"] == metric) & t["mean"].notna()]
        return {int(s): np.asarray(v, dtype=np.float64) for s, v in zip(rows["seed"], rows["values"])}

    def mean(self, dataset: str, model: str, metric: str) -> float | None:
        vals = [float(np.nanmean(v)) for v in self.per_seed(dataset, model, metric).values() if np.isfinite(v).any()]
        return float(np.mean(vals)) if vals else None

    def has(self, dataset: str, model: str) -> bool:
        t = self.t
        return bool(((t["dataset"] == dataset) & (t["model"] == model)).any())


def side(low: float, high: float, threshold: float, above: bool = True) -> str:
    """The verdict of an interval against a threshold the claim says it is above (or below); no interval: inconclusive."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE
    if above:
        return REPRODUCED if low > threshold else NOT_REPRODUCED if high < threshold else INCONCLUSIVE
    return REPRODUCED if high < threshold else NOT_REPRODUCED if low > threshold else INCONCLUSIVE


def where_zero(iv: Interval) -> str:
    """Which side of 0 the interval lies on, in words."""
    if not (math.isfinite(iv.low) and math.isfinite(iv.high)):
        return "no interval"
    return "entirely above 0" if iv.low > 0 else "entirely below 0" if iv.high < 0 else "contains 0"
