"""A one-page summary: each claim of the paper, its evidence, what this run measured, and a verdict.

Verdicts are rules on the numbers with their spread, never hand-written, so that a rerun on another machine
gives the same verdicts unless a number sits on a rule's boundary:

- reproduced: the measurement's ~95% interval lies on the claim's side of its threshold;
- not reproduced: the interval lies on the other side;
- inconclusive: the interval straddles the threshold;
- not testable at this scale: a precondition fails (a model does not beat the train-mean baseline, a FID
  falls outside the [real floor, noise] interval, a model or dataset is missing), with the reason.

Intervals: paired per-sample differences (reconstruction PSNR: mean ± 2 standard errors over the test
samples both models reconstructed); per-set FIDs (mean ± 2 standard errors over the generated sets); timing
(the ratio of medians, bounded by the inter-quartile ranges of both models).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..eval import keys
from ..eval.tidy import read_tidy
from ..io import atomic_write_text
from .labels import DATASET_ORDER, dataset_name, ordered
from .tables import CLEAR_MARGIN_DB

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE = "reproduced", "not reproduced", "inconclusive", "not testable at this scale"
SIMILAR_DB = 1.0  # "similar quality": paired mean PSNR difference within +-1 dB
COHERENCE_MARGIN = 0.1  # "segmentation, not speckle": coherence at least this far above its chance level
LOW_ENTROPY = 0.5  # "low entropy for most points": mean H / ln K below this


@dataclass
class Verdict:
    claim: str
    dataset: str
    paper: str  # the paper's evidence
    measured: str  # what this run measured, with its spread
    verdict: str
    reason: str = ""


def _per_sample(t: pd.DataFrame, dataset: str, model: str, metric: str) -> np.ndarray | None:
    rows = t[(t["dataset"] == dataset) & (t["model"] == model) & (t["metric"] == metric) & t["mean"].notna()]
    if rows.empty:
        return None
    return np.asarray([x for v in rows.sort_values("seed")["values"] for x in v], dtype=np.float64)


def _mean(t: pd.DataFrame, dataset: str, model: str, metric: str) -> float | None:
    v = _per_sample(t, dataset, model, metric)
    return None if v is None or not np.isfinite(v).any() else float(np.mean(v[np.isfinite(v)]))


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, low, high): mean ± 2 standard errors of the finite values."""
    v = values[np.isfinite(values)]
    m = float(v.mean())
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return m, m - 2 * se, m + 2 * se


def side(low: float, high: float, threshold: float, above: bool = True) -> str:
    """The verdict of an interval against a threshold the claim says it is above (or below)."""
    if above:
        return REPRODUCED if low > threshold else NOT_REPRODUCED if high < threshold else INCONCLUSIVE
    return REPRODUCED if high < threshold else NOT_REPRODUCED if low > threshold else INCONCLUSIVE


# ---------------------------------------------------------------------------------------------- claims

# Figure 7, §4.2 and §5: "VaMoH achieves similar quality on PolyMNIST and CelebA HQ, and outperforms Functa on ERA5 and
# Shapes3D"; "VaMoH achieves comparable or better PSNR values for the test set"
RECON_CLAIMS = {"polymnist": ("comparable",), "celebahq64": ("comparable",), "era5": ("comparable", "better"), "shapes3d": ("comparable", "better")}
RECON_TEXT = {"comparable": ("as good as or better than", f"comparable or better: VAMoH − Functa (3) above −{SIMILAR_DB:g} dB"),
              "better": ("better than", "better: VAMoH − Functa (3) above 0")}


def reconstruction_claims(t: pd.DataFrame, datasets: list[str]) -> list[Verdict]:
    out = []
    for d in datasets:
        for kind in RECON_CLAIMS.get(d, ()):
            words, rule = RECON_TEXT[kind]
            claim = f"Reconstruction: VAMoH {words} Functa (3) (PSNR)"
            paper = "Figure 7: " + ("VAMoH's PSNR higher (ERA5, Shapes3D)" if kind == "better" else "similar or higher PSNR")
            v, f, base = (_per_sample(t, d, m, keys.PSNR) for m in ("vamoh", "functa", keys.REF_MEAN))
            if v is None or f is None or base is None or len(v) != len(f):
                out.append(Verdict(claim, d, paper, "—", NOT_TESTABLE, "VAMoH, Functa (3) or the train-mean baseline was not evaluated"))
                continue
            base_mean = float(np.mean(base[np.isfinite(base)]))
            weak = [name for name, x in (("VAMoH", v), ("Functa (3)", f)) if float(np.mean(x[np.isfinite(x)])) < base_mean + CLEAR_MARGIN_DB]
            diff = v - f
            m, lo, hi = interval(diff[np.isfinite(diff)])
            measured = f"VAMoH − Functa (3) = {m:+.2f} dB [{lo:+.2f}, {hi:+.2f}] over {int(np.isfinite(diff).sum())} test samples"
            if weak:
                out.append(Verdict(claim, d, paper, measured, NOT_TESTABLE,
                                   f"{' and '.join(weak)} did not beat the train-mean baseline ({base_mean:.2f} dB) by {CLEAR_MARGIN_DB:g} dB"))
                continue
            threshold = -SIMILAR_DB if kind == "comparable" else 0.0
            out.append(Verdict(claim, d, paper, measured, side(lo, hi, threshold), rule))
    return out


# Table 2 / 5: "more than 2 times faster than Functa (3) ... at least 7 times faster than Functa (10)"
SPEED_CLAIMS = ((keys.TIME_RECONSTRUCTION, "Table 2"), (keys.TIME_SUPER_RECONSTRUCTION, "Table 5"))
SPEED_THRESHOLDS = {"functa": (2.0, "Functa (3)"), "functa10": (7.0, "Functa (10)")}


def speed_claims(t: pd.DataFrame, datasets: list[str]) -> list[Verdict]:
    out = []
    timed = set(t[t["metric"].str.startswith("time_")]["dataset"])
    reconstructing = set(t[(t["metric"] == keys.PSNR) & (t["model"] == "vamoh")]["dataset"])
    timed_out = (reconstructing - timed) if timed else set()  # a run that timed some datasets and not these
    for task, table in SPEED_CLAIMS:
        what = "reconstruction" if task == keys.TIME_RECONSTRUCTION else "2x super-reconstruction"
        for other, (threshold, label) in SPEED_THRESHOLDS.items():
            claim = f"Speed ({what}): VAMoH ≥ {threshold:g}x faster than {label}"
            for d in datasets:
                rows = t[(t["dataset"] == d) & (t["metric"] == f"time_{task}") & (t["batch_size"] == 1)]
                v, f = rows[rows["model"] == "vamoh"], rows[rows["model"] == other]
                if v.empty or f.empty:
                    if d in timed_out:
                        out.append(Verdict(claim, d, f"{table} (V100): × {threshold:g} or more", "—", NOT_TESTABLE,
                                           "not timed in this run (eval.timing_datasets)"))
                    continue
                (vq25, vmed, vq75), (fq25, fmed, fq75) = (tuple(r["values"].iloc[0][:3]) for r in (v, f))
                ratio, lo, hi = fmed / vmed, fq25 / vq75, fq75 / vq25
                note = v["note"].iloc[0]
                measured = f"× {ratio:.2f} [{lo:.2f}, {hi:.2f}] at batch size 1 ({note}; {v['device'].iloc[0]})"
                out.append(Verdict(claim, d, f"{table} (V100): × {threshold:g} or more", measured, side(lo, hi, threshold),
                                   "interval from the inter-quartile ranges of both timings"))
    return out


def segmentation_claims(t: pd.DataFrame, datasets: list[str]) -> list[Verdict]:
    out = []
    claim = "Segmentation: the mixture's most probable component forms coherent regions, with low entropy"
    paper = "Figures 10, 25: low entropy except at borders; segmentation-like maps"
    for d in datasets:
        coh, chance, ent = (_per_sample(t, d, "vamoh", k) for k in (keys.SEGMENT_COHERENCE, keys.SEGMENT_CHANCE, keys.MIXTURE_ENTROPY))
        if coh is None or chance is None or ent is None:
            continue
        m, lo, hi = interval(coh - chance)
        em, elo, ehi = interval(ent)
        measured = f"coherence − chance = {m:+.3f} [{lo:+.3f}, {hi:+.3f}]; entropy / ln K = {em:.3f} [{elo:.3f}, {ehi:.3f}]"
        a, b = side(lo, hi, COHERENCE_MARGIN), side(elo, ehi, LOW_ENTROPY, above=False)
        verdict = a if a == b else NOT_REPRODUCED if NOT_REPRODUCED in (a, b) else INCONCLUSIVE
        out.append(Verdict(claim, d, paper, measured, verdict,
                           f"coherent = more than {COHERENCE_MARGIN:g} above chance; low entropy = below {LOW_ENTROPY:g}"))
    return out


# Table 1 (FID, train embeddings): CelebA-HQ GASP 14.01 < Functa 40.40 < VAMoH 66.27; Shapes3D VAMoH 56.25 < Functa 57.81 < GASP 118.66
FID_ORDER = {"celebahq64": (("gasp", "functa"), ("functa", "vamoh")), "shapes3d": (("vamoh", "gasp"), ("functa", "gasp"))}
LABEL = {"gasp": "GASP", "functa": "Functa (3)", "vamoh": "VAMoH"}


def generation_claims(t: pd.DataFrame, datasets: list[str], gate: dict[str, bool] | None = None) -> list[Verdict]:
    out = []
    gate = gate or {}
    for d in datasets:
        for better, worse in FID_ORDER.get(d, ()):
            claim = f"Generation: {LABEL[better]} has a lower FID than {LABEL[worse]}"
            paper = "Table 1 (Inception, train embeddings)"
            a, b = _per_sample(t, d, better, keys.FID_TRAIN), _per_sample(t, d, worse, keys.FID_TRAIN)
            floor, noise = _mean(t, d, keys.REF_HELDOUT, keys.FID_TRAIN), _mean(t, d, keys.REF_NOISE, keys.FID_TRAIN)
            if a is None or b is None or floor is None or noise is None:
                out.append(Verdict(claim, d, paper, "—", NOT_TESTABLE, "a model or the floor/noise rows were not evaluated"))
                continue
            m, lo, hi = interval(b - a) if len(a) == len(b) else (float(b.mean() - a.mean()),) * 3
            position = lambda v: (float(v.mean()) - floor) / (noise - floor)  # noqa: E731 - 0 = the real floor, 1 = noise
            measured = (f"FID {LABEL[worse]} − {LABEL[better]} = {m:+.2f} [{lo:+.2f}, {hi:+.2f}] over {len(a)} sets; position between "
                        f"floor (0) and noise (1): {LABEL[better]} {position(a):.2f}, {LABEL[worse]} {position(b):.2f}")
            if gate.get(d) is False:
                out.append(Verdict(claim, d, paper, measured, NOT_TESTABLE, "the feature extractor fails its quality gate"))
                continue
            outside = [LABEL[x] for x, v in ((better, a), (worse, b)) if not floor < float(v.mean()) < noise]
            if outside:
                out.append(Verdict(claim, d, paper, measured, NOT_TESTABLE,
                                   f"FID of {' and '.join(outside)} outside [real floor {floor:.2f}, noise {noise:.2f}]"))
                continue
            out.append(Verdict(claim, d, paper, measured, side(lo, hi, 0.0), "lower = the difference's interval above 0"))
    return out


# ---------------------------------------------------------------------------------------------- the page


def build_summary(tidy: pd.DataFrame | str | Path, references: list[dict[str, Any]] | None = None) -> tuple[list[Verdict], list[str]]:
    """(verdicts, context lines) for every claim the run's numbers can speak to."""
    t = read_tidy(tidy)
    datasets = ordered(t["dataset"], DATASET_ORDER)
    gate = {ref["dataset"]: (ref.get("extractor") or {}).get("quality", {}).get("passes") for ref in references or []}
    verdicts = (reconstruction_claims(t, datasets) + speed_claims(t, datasets) + segmentation_claims(t, datasets)
                + generation_claims(t, datasets, gate))
    context = []
    for ref in references or []:
        ext = ref.get("extractor") or {}
        q = ext.get("quality", {})
        if "test_psnr_db" in q:
            against = (f", against {q['mean_image_psnr_db']:.2f} dB for the train-mean image: "
                       f"{'passes' if q['passes'] else 'FAILS'} the +{q['gate_db']:g} dB gate" if "mean_image_psnr_db" in q else "")
            context.append(f"{dataset_name(ref['dataset'])}: feature extractor {ext.get('label')} reconstructs held-out test images at "
                           f"{q['test_psnr_db']:.2f} dB PSNR ({ext.get('config', {}).get('epochs', '?')} epochs on "
                           f"{ext.get('num_train_images', '?')} train images){against}.")
    standin = sorted({dataset_name(d) for d, s in zip(t["dataset"], t["is_standin"]) if s})
    if standin:
        context.insert(0, f"Stand-in data ({', '.join(standin)}): the verdicts say what these models do on these data at this scale, "
                          "not whether the paper's numbers hold on the real datasets.")
    return verdicts, context


def render_summary(verdicts: list[Verdict], context: list[str], title: str) -> str:
    counts = {v: sum(x.verdict == v for x in verdicts) for v in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE)}
    lines = [f"# {title}", "", "How each claim of the paper fares in this run. Verdicts follow fixed rules on the numbers and their spread "
             "(`vamoh/report/summary.py`): reproduced / not reproduced when the ~95% interval lies on one side of the claim's threshold, "
             "inconclusive when it straddles it, not testable at this scale when a precondition fails (the reason is given).", "",
             "**Tally:** " + ", ".join(f"{n} {v}" for v, n in counts.items()), ""]
    lines += [f"- {c}" for c in context] + ([""] if context else [])
    lines += ["| Claim | Dataset | Paper's evidence | Measured here | Verdict | Rule / reason |", "|---|---|---|---|---|---|"]
    for v in verdicts:
        cells = [v.claim, dataset_name(v.dataset), v.paper, v.measured, f"**{v.verdict}**", v.reason]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(tidy: pd.DataFrame | str | Path, references: list[dict[str, Any]], out_md: str | Path, out_html: str | Path, title: str) -> list[Path]:
    import html

    verdicts, context = build_summary(tidy, references)
    md = render_summary(verdicts, context, title)
    rows = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (v.claim, dataset_name(v.dataset), v.paper, v.measured, v.verdict, v.reason))
                     + "</tr>" for v in verdicts)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>table{border-collapse:collapse;font-family:sans-serif;font-size:90%}td,th{border:1px solid #bbb;padding:2px 6px}</style>"
            f"</head><body><h1>{html.escape(title)}</h1>" + "".join(f"<p>{html.escape(c)}</p>" for c in context)
            + "<table><tr><th>Claim</th><th>Dataset</th><th>Paper</th><th>Measured</th><th>Verdict</th><th>Rule / reason</th></tr>"
            + rows + "</table></body></html>\n")
    return [atomic_write_text(out_md, md), atomic_write_text(out_html, page)]
