"""The ablation report's tables: per question a quality table and a speed table (mean ± std over seeds, the default
marked, the reference rows beside, ``MARK`` where a test survives the report-wide correction), and every comparison
with its interval (``test_rows`` for ablation_tests.csv, ``tests_table`` for ablations.md).

The formatting of an effect, a p-value and a test's outcome (``fmt_effect``, ``fmt_p``, ``outcome``) is shared with the
answers (``vamoh.report.ablation_answers``), so a number reads the same in a table and in a sentence.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..eval import keys
from ..eval.ablation_metrics import (
    METRICS,
    Metric,
    quality_metrics,
    question_metrics,
    speed_metrics,
)
from .ablation_stats import CORRECTIONS, LEVEL, NO_SPREAD, Comparison, Welch, counted
from .ablation_values import REFERENCE_ROWS
from .format import DASH, NON_INCEPTION, STANDIN, fmt_num
from .labels import dataset_name, dataset_order, ordered
from .render import ReportTable

MARK = "*"  # a variant whose difference to the default is significant after the correction
DEFAULT_MARK = " (default)"


def header(m: Metric) -> str:
    """A metric's column header: its label, the non-Inception mark for a feature extractor's metric, its direction."""
    arrow = {1: " ↑", -1: " ↓"}.get(m.better, "")
    return m.label + (NON_INCEPTION if m.extractor else "") + arrow


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
    datasets = ordered(values["dataset"], dataset_order())
    standin = set(values.attrs.get("standin", ()))
    rows = []
    for d in datasets:
        shown = standin and d in standin
        for v in ab.variants:
            row = {"Dataset": dataset_name(d) + (STANDIN if shown else ""), "Variant": v + (DEFAULT_MARK if v == ab.default else ""),
                   "Setting": _setting(ab, summaries, d, v)}
            row.update({header(METRICS[k]): _cell(comps.get((d, v, k)), METRICS[k].decimals) for k in metrics})
            rows.append(row)
        for r in REFERENCE_ROWS if refs else ():
            cells = {k: refs.get((d, r, k)) for k in metrics}
            if not any(cells.values()):
                continue
            row = {"Dataset": dataset_name(d) + (STANDIN if shown else ""), "Variant": keys.REFERENCE_LABELS[r], "Setting": "reference (not trained)"}
            row.update({header(METRICS[k]): DASH if x is None else fmt_num(x[0], METRICS[k].decimals) + (f" ± {fmt_num(x[1], METRICS[k].decimals)}"
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


def fmt_p(p: float | None) -> str:
    return DASH if p is None else "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_diff(diff: float, decimals: int) -> str:
    return ("+" if diff >= 0 else "−") + fmt_num(abs(diff), decimals)


def fmt_effect(t: Welch, decimals: int) -> str:
    """"+1.23 [+0.50, +1.96]": the difference with its interval where it has one."""
    text = fmt_diff(t.diff, decimals)
    if t.low is not None:
        text += f" [{fmt_diff(t.low, decimals)}, {fmt_diff(t.high, decimals)}]"
    return text


def outcome(key: str, c: Comparison) -> str:
    """A test's outcome in words: better or worse (faster or slower for a speed), or why there is none."""
    m = METRICS[key]
    if c.p is None:
        return "not tested"
    if not c.significant:
        return "no significant difference"
    sign = c.diff * m.better
    if m.speed:
        return "faster" if sign > 0 else "slower"
    return "better" if sign > 0 else "worse" if sign < 0 else "different"


def why_untested(c: Comparison) -> str:
    """Why a comparison has no p-value: its failed gate, or its spread ("" where it was tested)."""
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
                     "significant": c.significant, "counted_in_answer": counted(k, c) and c.p is not None, "result": outcome(k, c),
                     "note": why_untested(c)})
    return rows


def tests_table(ab: Any, comps: dict, method: str) -> ReportTable:
    """Every comparison of one question, for ablations.md: the effect with its interval, Hedges' g, both p-values."""
    name = CORRECTIONS[method][0]
    rows = []
    for d in ordered({d for d, _, _ in comps}, dataset_order()):
        for v in ab.variants:
            for k in question_metrics(ab):
                c = comps.get((d, v, k))
                if v == ab.default or c is None or c.test is None:
                    continue
                m = METRICS[k]
                rows.append({"Dataset": dataset_name(d), "Variant": v, "Metric": header(m) + (" (speed)" if m.speed else ""),
                             f"Difference vs {ab.default} [{LEVEL:.0%} CI]": fmt_effect(c.test, m.decimals),
                             "Hedges' g": DASH if c.test.g is None else fmt_diff(c.test.g, 2), "p (Welch)": fmt_p(c.p),
                             f"p adj. ({name})": fmt_p(c.p_adj), "Result": outcome(k, c), "Note": why_untested(c)})
    return ReportTable(f"ablation_{ab.name}_tests", f"Ablation '{ab.name}': every comparison with the default", pd.DataFrame(rows), [])

