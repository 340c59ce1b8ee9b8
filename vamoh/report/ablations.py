"""The ablation report: per question of the run config's ``ablations``, a table, a figure and an answer.

Every variant of a question is compared with the question's default over the run's seeds. The numbers
come from three places, all per (dataset, entry, seed):

- the tidy table (``vamoh.eval.tidy``): reconstruction and completion PSNR, generation metrics,
  mixture statistics, reconstruction time (the evaluate and timing rules);
- the train.json summaries: training samples per second, and the resolved model config, from which
  the table's "setting" column is read (so it shows what the checkpoints were trained with);
- the ablation stage's own measurements (``measure``): the test ELBO per point, and the encoder's time
  on partially observed inputs, where its centroids and neighbourhoods must be recomputed.

A variant is marked where its per-seed means differ from the default's beyond the seeds' spread:
Welch's two-sided t-test, p < ``ALPHA``. The written answers are templates filled from these numbers.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..eval.tidy import KIND_REFERENCE, read_tidy
from ..io import atomic_write_text
from .labels import DATASET_ORDER, dataset_name, ordered
from .render import ReportTable, to_markdown, write_table
from .tables import DASH, NON_INCEPTION, STANDIN, fmt_num

ALPHA = 0.05  # significance level of the two-sided Welch test against the default
MARK = "*"  # a variant whose difference to the default is significant
DEFAULT_MARK = " (default)"
SIGNIFICANCE_NOTE = (f"{MARK} the variant's per-seed means differ from the default's beyond the seeds' spread: Welch's two-sided "
                     f"t-test (unequal variances) on the per-seed means, p < {ALPHA}. Mean ± std over seeds (std with ddof=1).")
FIGURE_COLUMNS = 4  # panels per figure row
ENCODER_KEEP = 0.5  # fraction of points observed when the encoder is timed (each call its own random subset)


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
    speed: bool = False  # a time or throughput: differs run to run even for the very same model

    @property
    def header(self) -> str:
        arrow = {1: " ↑", -1: " ↓"}.get(self.better, "")
        return self.label + (NON_INCEPTION if self.extractor else "") + arrow


def _tidy(label: str, better: int, key: str, decimals: int = 2, **kw: Any) -> Metric:
    return Metric(label, better, "tidy", decimals, tidy_metric=key, **kw)


METRICS: dict[str, Metric] = {
    "test_elbo_per_point": Metric("Test ELBO / point", 1, "measured", 3),
    "psnr": _tidy("Recon. PSNR (dB)", 1, "psnr"),
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
    "time_reconstruction_ms": _tidy("Recon. ms / sample", -1, "time_reconstruction", 3, scale=1e3, speed=True),
    "samples_per_second": Metric("Train samples / s", 1, "summary", 0, speed=True),
    "encoder_ms": Metric("Encoder ms / sample", -1, "measured", 3, speed=True),
}
STANDARD = ("test_elbo_per_point", "psnr", "psnr_completion_centre", "fid_test", "precision_test", "recall_test",
            "segment_kappa", "samples_per_second")


def question_metrics(ablation: Any) -> list[str]:
    """The metric keys a question reports (checked by ``RunConfig.ablations``): its own list, or the standard set
    (generation metrics only with generation)."""
    return list(ablation.metrics) or [k for k in STANDARD if ablation.generation or not METRICS[k].generation]


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


# ---------------------------------------------------------------------------------------------- comparison


@dataclass
class Comparison:
    """One variant against the default on one (dataset, metric), over seeds."""

    mean: float | None
    std: float | None
    n: int
    diff: float | None = None  # variant mean - default mean
    p: float | None = None  # Welch's two-sided p-value; None when a side has fewer than 2 seeds
    significant: bool = False
    seeds: list[float] = field(default_factory=list)


def welch_p(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided p-value of Welch's t-test (unequal variances) of two samples; None with fewer than 2 values
    a side. Two samples without spread are 0 apart (p = 1) or infinitely many standard errors (p = 0)."""
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 2 or b.size < 2:
        return None
    if a.var(ddof=1) == 0 and b.var(ddof=1) == 0:
        return 1.0 if a.mean() == b.mean() else 0.0
    with warnings.catch_warnings():  # nearly equal samples: scipy warns of precision loss, the p-value is still ~1
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def compare(values: pd.DataFrame, default: str) -> dict[tuple[str, str, str], Comparison]:
    """(dataset, variant, metric) -> Comparison, from one question's per-seed rows."""
    out: dict[tuple[str, str, str], Comparison] = {}
    for (d, m), grp in values.groupby(["dataset", "metric"]):
        base = grp[grp["variant"] == default].sort_values("seed")["value"].to_numpy(float)
        for v, rows in grp.groupby("variant"):
            x = rows.sort_values("seed")["value"].to_numpy(float)
            c = Comparison(float(x.mean()) if x.size else None, float(x.std(ddof=1)) if x.size > 1 else None, int(x.size), seeds=list(x))
            if v != default and x.size and base.size:
                c.diff = c.mean - float(base.mean())
                c.p = welch_p(x, base)
                c.significant = c.p is not None and c.p < ALPHA
            out[(d, v, m)] = c
    return out


# ---------------------------------------------------------------------------------------------- table


def _setting(ab: Any, summaries: dict[tuple[str, str, int], dict[str, Any]], dataset: str, variant: str) -> str:
    """What the trained checkpoints have (train.json) for the keys the question's variants set: every such key
    on the default's row, on the others the keys where they differ from the default."""
    def trained(v: str) -> dict[str, Any] | None:
        found = [s for (d, e, _), s in sorted(summaries.items()) if d == dataset and e == ab.entries[v]]
        return found[0].get("model_config", {}) if found else None

    keys = sorted({k for o in ab.variants.values() for k in o})
    own, default = trained(variant), trained(ab.default)
    if own is None:  # not trained (yet): what the config asks for
        return ", ".join(f"{k}={ab.variants[variant][k]}" for k in keys if k in ab.variants[variant]) or "as configured"
    shown = [k for k in keys if variant == ab.default or default is None or own.get(k) != default.get(k)]
    return ", ".join(f"{k}={own.get(k)}" for k in shown) or "as the default"


def _cell(c: Comparison | None, decimals: int) -> str:
    if c is None or c.mean is None:
        return DASH
    text = fmt_num(c.mean, decimals) + (f" ± {fmt_num(c.std, decimals)}" if c.std is not None else "")
    return text + (f" {MARK}" if c.significant else "")


def ablation_table(ab: Any, values: pd.DataFrame, comps: dict[tuple[str, str, str], Comparison], summaries: dict, notes: list[str]) -> ReportTable:
    metrics = question_metrics(ab)
    datasets = ordered(values["dataset"], DATASET_ORDER)
    standin = set(values.attrs.get("standin", ()))
    rows = []
    for d in datasets:
        for v in ab.variants:
            row = {"Dataset": dataset_name(d) + (STANDIN if d in standin else ""), "Variant": v + (DEFAULT_MARK if v == ab.default else ""),
                   "Setting": _setting(ab, summaries, d, v)}
            row.update({METRICS[k].header: _cell(comps.get((d, v, k)), METRICS[k].decimals) for k in metrics})
            rows.append(row)
    return ReportTable(f"ablation_{ab.name}", f"Ablation '{ab.name}': {ab.question}", pd.DataFrame(rows), notes)


# ---------------------------------------------------------------------------------------------- answer


def _fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _fmt_diff(diff: float, decimals: int) -> str:
    return ("+" if diff >= 0 else "−") + fmt_num(abs(diff), decimals)


def _identical(ab: Any, d: str, v: str, comps: dict, metrics: list[str]) -> bool:
    """Whether ``v`` gave exactly the default's per-seed numbers on every metric that is not a speed: the
    setting changed nothing in the trained model (e.g. removing the non-linearity of a one-layer net)."""
    pairs = [(comps.get((d, v, k)), comps.get((d, ab.default, k))) for k in metrics if not METRICS[k].speed]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None and a.seeds]
    return bool(pairs) and all(a.seeds == b.seeds for a, b in pairs)


def _describe(ab: Any, d: str, v: str, comps: dict, metrics: list[str]) -> str:
    if _identical(ab, d, v, comps, metrics):
        return f"{v} gives exactly the default's numbers on every seed: the setting changed nothing in the trained model here"
    better, worse, other = [], [], []
    for k in metrics:
        c = comps.get((d, v, k))
        if c is None or not c.significant:
            continue
        m = METRICS[k]
        text = f"{m.label} ({_fmt_diff(c.diff, m.decimals)}, {_fmt_p(c.p)})"
        (better if c.diff * m.better > 0 else worse if c.diff * m.better < 0 else other).append(text)
    tested = sum(1 for k in metrics if (d, v, k) in comps and comps[(d, v, k)].p is not None)
    parts = []
    if better:
        parts.append("better on " + ", ".join(better))
    if worse:
        parts.append("worse on " + ", ".join(worse))
    if other:
        parts.append("different on " + ", ".join(other))
    rest = tested - len(better) - len(worse) - len(other)
    if not parts:
        return f"{v} is within the seeds' spread of the default on all {tested} metrics tested"
    return f"{v} is " + "; ".join(parts) + (f"; within the seeds' spread on the other {rest} metric{'s' * (rest != 1)}" if rest else "")


def verdicts(ab: Any, comps: dict, metrics: list[str]) -> dict[str, tuple[int, int]]:
    """Variant -> (significant comparisons the default wins, ones the variant wins), over datasets and
    metrics with a direction."""
    out = {}
    for v in ab.variants:
        if v == ab.default:
            continue
        wins = losses = 0
        for (d, vv, k), c in comps.items():
            if vv != v or k not in metrics or not c.significant or METRICS[k].better == 0:
                continue
            if c.diff * METRICS[k].better > 0:
                losses += 1
            else:
                wins += 1
        out[v] = (wins, losses)
    return out


def answer(ab: Any, values: pd.DataFrame, comps: dict) -> list[str]:
    """The generated answer to one question: a verdict line, then per dataset what each variant does."""
    metrics = question_metrics(ab)
    seeds = sorted({int(s) for s in values["seed"]})
    groups: dict[str, list[str]] = {"worse": [], "better": [], "mixed": [], "same": []}
    for v, (wins, losses) in verdicts(ab, comps, metrics).items():
        key = "worse" if wins and not losses else "better" if losses and not wins else "mixed" if wins else "same"
        groups[key].append(v + (f" (better than the default in {losses}, worse in {wins} significant comparisons)" if wins or losses else ""))

    def these(vs: list[str]) -> str:
        return ", ".join(vs) + (" is" if len(vs) == 1 else " are")

    phrases = {"worse": "the default {d} is better than {vs}", "better": "{are} better than the default {d}",
               "mixed": "{are} better than the default {d} on some metrics and worse on others",
               "same": "{are} within the seeds' spread of the default {d} on every metric"}
    verdict = "; ".join(phrases[k].format(d=ab.default, vs=", ".join(vs), are=these(vs)) for k, vs in groups.items() if vs)
    lines = [f"Answer, from the numbers ({len(seeds)} seeds, p < {ALPHA}): {verdict}."]
    for d in ordered(values["dataset"], DATASET_ORDER):
        parts = [_describe(ab, d, v, comps, metrics) for v in ab.variants if v != ab.default]
        best = []
        for k in metrics:
            m = METRICS[k]
            means = {v: comps[(d, v, k)].mean for v in ab.variants if (d, v, k) in comps and comps[(d, v, k)].mean is not None}
            top = max((m.better * x for x in means.values()), default=None)
            leaders = [v for v, x in means.items() if m.better * x == top]
            if m.better and len(leaders) == 1:  # a tie names no best
                best.append(f"{m.label}: {leaders[0]} ({fmt_num(means[leaders[0]], m.decimals)})")
        lines.append(f"{dataset_name(d)}, against {ab.default}: " + ". ".join(parts) + "." + (f" Best mean: {'; '.join(best)}." if best else ""))
    return lines


# ---------------------------------------------------------------------------------------------- figure


def ablation_figure(ab: Any, values: pd.DataFrame, comps: dict, path: Path) -> Path:
    """One panel per (dataset, metric): every seed's value per variant, mean ± std, the default in colour,
    a star over a variant that differs significantly."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .figures import _save

    metrics = question_metrics(ab)
    datasets = ordered(values["dataset"], DATASET_ORDER) or [""]
    variants = list(ab.variants)
    ncols = min(FIGURE_COLUMNS, len(metrics))
    per = math.ceil(len(metrics) / ncols)  # panel rows per dataset
    width = max(0.45 * len(variants), 2.4)
    fig, axes = plt.subplots(len(datasets) * per, ncols, figsize=(width * ncols + 0.6, 2.5 * len(datasets) * per + 0.8), squeeze=False)
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
            ax.set_xticks(range(len(variants)), variants, rotation=45, ha="right", fontsize=7)
            ax.set_xlim(-0.5, len(variants) - 0.5)
            ax.tick_params(axis="y", labelsize=7)
            ax.set_title(f"{dataset_name(d)}: {m.header}", fontsize=8)
        for ax in axes[i * per:(i + 1) * per].flat[len(metrics):]:
            ax.set_visible(False)
    fig.suptitle(f"{ab.question} (default: {ab.default}; {MARK} p < {ALPHA}, Welch)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------- the report


def _notes(values: pd.DataFrame, tidy: pd.DataFrame, ab: Any, context: dict[str, Any]) -> list[str]:
    notes = [SIGNIFICANCE_NOTE, f"{DEFAULT_MARK.strip()}: the variant the others are compared with. Setting: the values the trained "
                                f"checkpoints have (train.json) for the keys the variants set; on the other rows only where "
                                f"they differ from the default's."]
    rows = tidy[tidy["model"].isin(set(ab.entries.values())) & tidy["dataset"].isin(set(values["dataset"]))]
    for d in ordered(values["dataset"], DATASET_ORDER):
        labels = sorted({x for x in rows[rows["dataset"] == d]["data_label"] if x})
        if d in values.attrs.get("standin", ()):
            notes.append(f"{STANDIN} {dataset_name(d)}: stand-in data, not the paper's dataset — {'; '.join(labels) or d}.")
    metrics = question_metrics(ab)
    if any(METRICS[k].extractor for k in metrics):
        fx = sorted({f for f in rows["feature_extractor"] if f and not f.lower().startswith("none")})
        inception = bool(fx) and all(f.lower().startswith("inception") for f in fx)
        caveat = "" if inception else " (not the paper's Inception: they compare these variants with each other only)"
        sizes = f"; {context['generation']}" if context.get("generation") else ""
        notes.append(f"{NON_INCEPTION} FID, precision and recall on the features of {'; '.join(fx) or 'no extractor'}{caveat}{sizes}.")
    if "test_elbo_per_point" in metrics:
        notes.append("Test ELBO / point: the paper's bound (eq. 16) per test sample divided by its number of points (nats), one "
                     "reparameterised z per sample; switches that change only the training objective are off while it is computed.")
    if "encoder_ms" in metrics:
        notes.append(f"Encoder ms / sample: median of {context.get('encoder_repeats', '?')} interleaved calls of the encoder on one test "
                     f"sample observed at a fresh random {ENCODER_KEEP:.0%} of its points each call (centroids and neighbourhoods "
                     f"recomputed, as under point dropout or partial observation), after {context.get('encoder_warmup', '?')} warm-up calls.")
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
        notes.append("Train samples / s: training steps x batch size / the training job's wall time (train.json); jobs ran side by side, "
                     "so it carries the machine's load.")
    if context.get("device"):
        notes.append(f"Computed on: {context['device']}; seeds: {', '.join(map(str, sorted({int(s) for s in values['seed']})))}.")
    return notes


def write_ablation_report(ablations: dict[str, Any], tidy: pd.DataFrame | str | Path, summaries: list[dict[str, Any]],
                          measured: pd.DataFrame, out_dir: str | Path, context: dict[str, Any] | None = None) -> list[Path]:
    """``out_dir``: per question ``ablation_<q>.{csv,md,tex,html}`` and ``ablation_<q>.png``, the per-seed
    numbers ``ablation_values.csv``, and ``ablations.md`` with every answer, table and figure."""
    context = dict(context or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = read_tidy(tidy)
    values = per_seed(ablations, t, summaries, measured)
    standin = sorted(set(t[t["is_standin"]]["dataset"]))
    summ = {(s["dataset"], s["model"], int(s["seed"])): s for s in summaries}
    written = [atomic_write_text(out_dir / "ablation_values.csv", values.to_csv(index=False))]
    run = context.get("run", "")
    doc = [f"# Ablations{f' (run {run})' if run else ''}", "",
           "Generated by `snakemake ablations` (`vamoh.report.ablations`) from the tidy table, the train.json summaries and the "
           "ablation stage's measurements; every sentence below is a template filled from the numbers.", ""]
    doc += [f"- {line}" for line in context.get("about", [])]
    for q, ab in ablations.items():
        vals = values[values["question"] == q].copy()
        vals.attrs["standin"] = standin
        comps = compare(vals, ab.default)
        table = ablation_table(ab, vals, comps, summ, _notes(vals, t, ab, context))
        written += write_table(table, out_dir)
        written.append(ablation_figure(ab, vals, comps, out_dir / f"ablation_{q}.png"))
        doc += ["", f"## {ab.question}", ""] + [f"{'' if i == 0 else '- '}{line}" for i, line in enumerate(answer(ab, vals, comps))]
        doc += ["", to_markdown(table), f"![{q}](ablation_{q}.png)"]
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
