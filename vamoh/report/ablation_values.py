"""The ablation report's numbers: per (question, dataset, variant, seed, metric) the value every table, figure and
answer is built from (``per_seed``), the reference rows beside them (``reference_values``), and the gates that keep
a number shown but untested (``learning_exclusions``, ``extractor_exclusions``).

The values come from the tidy table (``vamoh.eval.tidy``), the train.json summaries and the ablation_measure rule's
rows (``vamoh.eval.ablation_measure``). The gates are the demo summary's rules (``vamoh.report.summary``): a
reconstruction score counts only where the question's default beats the train mean; FID, precision and recall only
where the feature extractor passes the reference stage's quality gate, precision and recall only where uniform noise
gets (almost) no precision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ..eval import keys
from ..eval.ablation_metrics import METRICS, question_metrics
from ..eval.tidy import KIND_REFERENCE, read_tidy

REFERENCE_ROWS = (keys.REF_HELDOUT, keys.REF_NOISE, keys.REF_MEAN)  # shown beside the variants, never tested


def _values_by_seed(rows: pd.DataFrame) -> dict[int, float]:
    return {int(s): float(v) for s, v in zip(rows["seed"], rows["mean"]) if v is not None and math.isfinite(float(v))}


def per_seed(ablations: dict[str, Any], tidy: pd.DataFrame | str | Path, summaries: list[dict[str, Any]],
             measured: pd.DataFrame) -> pd.DataFrame:
    """One row per (question, dataset, variant, seed, metric) with its value: the numbers every table,
    figure and answer is built from.

    ``measured``: rows (question, dataset, model, seed, metric, value) from ``vamoh.eval.ablation_measure.measure``
    (read back from measured.json); a question "" holds entry-level measurements shared by every question that
    compares the entry.
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
    from .margins import CLEAR_MARGIN_DB

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
    from .summary.gates import NOISE_PRECISION_MAX

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

