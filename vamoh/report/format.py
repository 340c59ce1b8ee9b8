"""How a number is printed in every report table, and the marks a table puts on its rows.

One module for the text of a cell, so the paper-style tables (vamoh.report.tables), the ablation report
(vamoh.report.ablations) and the summary print a missing value, a mean ± std or a marked dataset the same way.
"""

from __future__ import annotations

import math

from .pooled import Stat, finite

DASH = "—"  # no number: not reported, not applicable or not computed
STANDIN, NON_INCEPTION = "†", "‡"  # dataset marks: stand-in data; generation features other than Inception


def fmt_num(x: float | None, decimals: int = 2) -> str:
    if not finite(x):
        return DASH
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{decimals}f}"


def fmt_pm(mean: float | None, std: float | None, decimals: int = 2) -> str:
    """"66.27 ± 0.18"; the mean alone when there is no std; a dash when there is no mean."""
    if not finite(mean):
        return DASH
    if not finite(std) or math.isinf(mean):
        return fmt_num(mean, decimals)
    return f"{fmt_num(mean, decimals)} ± {fmt_num(std, decimals)}"


def fmt_stat(st: Stat | None, decimals: int = 2) -> str:
    return fmt_pm(st.mean, st.std, decimals) if st else DASH


def fmt_seconds(x: float | None) -> str:
    if not finite(x):
        return DASH
    return f"{x:.5f}" if x < 1 else f"{x:.3f}"


def fmt_speedup(functa: float | None, vamoh: float | None) -> str:
    if not (finite(functa) and finite(vamoh)) or vamoh <= 0:
        return DASH
    return f"× {functa / vamoh:.2f}"
