"""The ablation report's prose: per question a generated answer (``answer``) from the quality comparisons, the
sentences for metrics that cannot rank the variants (``saturation_notes``), the notes under each table (``table_notes``),
and the lines that say what the run was (``report_context``). Every sentence is a template filled from the numbers.

The answers count only quality metrics (``Metric.speed`` False, with a direction) that pass their gates
(``vamoh.report.ablation_stats.counted``); speed is reported apart and never makes a variant better.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..eval import keys
from ..eval.ablation_metrics import (
    ENCODER_KEEP,
    METRICS,
    quality_metrics,
    speed_metrics,
)
from .ablation_stats import (
    ALPHA,
    CORRECTION,
    CORRECTIONS,
    LEVEL,
    NO_SPREAD,
    Comparison,
    counted,
)
from .ablation_tables import DEFAULT_MARK, MARK, fmt_effect, fmt_p, outcome
from .ablation_values import REFERENCE_ROWS
from .format import DASH, NON_INCEPTION, STANDIN, fmt_num
from .labels import dataset_name, dataset_order, ordered


def report_context(run: str, datasets: list[str], seeds: list[int], summaries: list[dict[str, Any]], evaluation: Any,
                   measurement: dict[str, Any]) -> dict[str, Any]:
    """What ``write_ablation_report`` says about the run: its name, what was trained (``summaries``: the train.json
    of every compared job) and evaluated (``evaluation``: the run's EvalConfig), and where and how the
    ablation_measure rule measured (``measurement``: measured.json without its rows)."""
    dev = measurement["device"]
    jobs = {(s["dataset"], s["model"], int(s["seed"])) for s in summaries}
    train_hours = sum(s["seconds"] for s in summaries) / 3600
    where = dev.get("gpu") or dev.get("cpu") or measurement["processor"]
    return {
        "run": run, "encoder_repeats": measurement["encoder_repeats"], "encoder_warmup": measurement["encoder_warmup"],
        "device": f"{dev.get('device', '')}: {where}, {measurement['threads']} thread(s) per job",
        "generation": f"{evaluation.num_samples} generated samples x {evaluation.num_sets} sets per seed",
        "about": [f"Datasets {datasets}, seeds {seeds}, {len(jobs)} trained (dataset, variant, seed) jobs; their training took "
                  f"{train_hours:.2f} h in all (train.json's training seconds: the training loop, without each job's startup, "
                  f"data loading and logging, which the run's Snakemake benchmarks include).",
                  f"Evaluation: {evaluation.num_samples} generated samples x {evaluation.num_sets} sets, feature extractor "
                  f"'{evaluation.feature_extractor}', completion on {evaluation.completion_samples} test samples; device "
                  f"{dev.get('device', '')}."],
        "figure_seed": seeds[0],
    }


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
            from .summary.gates import NOISE_PRECISION_MAX

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



def _identical(ab: Any, d: str, v: str, comps: dict, metrics: list[str]) -> bool:
    """Whether ``v`` gave exactly the default's per-seed numbers on every metric that is not a speed: the
    setting changed nothing in the trained model (e.g. removing the non-linearity of a one-layer net)."""
    pairs = [(comps.get((d, v, k)), comps.get((d, ab.default, k))) for k in metrics if not METRICS[k].speed]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None and a.seeds]
    return bool(pairs) and all(a.seeds == b.seeds for a, b in pairs)


def _named(key: str, c: Comparison) -> str:
    m = METRICS[key]
    text = f"{m.label} ({fmt_effect(c.test, m.decimals)}, p adj. {fmt_p(c.p_adj)}"
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
                         + ", ".join(f"{v} {fmt_effect(c.test, m.decimals)}, {outcome(k, c)}"
                                     + (f" (p adj. {fmt_p(c.p_adj)})" if c.p_adj is not None else "") for v, c in tested))
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
    for d in ordered(values["dataset"], dataset_order()):
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



def table_notes(values: pd.DataFrame, tidy: pd.DataFrame, ab: Any, context: dict[str, Any], metrics: list[str], method: str, family: int,
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
    for d in ordered(values["dataset"], dataset_order()):
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
