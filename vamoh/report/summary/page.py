"""The page: every claim rule run on one run's evidence, the context a reader needs to weigh the verdicts, and the
Markdown and HTML that print them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...eval.paper import PAPER_MODEL_NAMES
from ...eval.tidy import read_tidy
from ...io import atomic_write_text
from ..labels import dataset_name, dataset_order, model_order, ordered
from ..margins import CLEAR_MARGIN_DB
from .evidence import VERDICTS, Evidence, Verdict
from .gates import D_ACCURACY_MIN, D_GAP_MIN, MEMORISATION_CLOSE_MAX, SPREAD_MIN
from .generation import generation_claims, overfitting_claims, untestable_claims
from .reconstruction import (
    COMPARABLE_DB,
    completion_claims,
    reconstruction_claims,
    shapenet_reconstruction_claim,
    superres_claims,
)
from .segmentation import segmentation_claims
from .speed import speed_claims


def source_clusters(data_record: dict[str, Any]) -> np.ndarray | None:
    """The source cluster of each test sample where test samples share a source, else None.

    ERA5's stand-in fills its test split with the real fields, then copies of them with a synthetic anomaly
    (test sample j is real field j mod r; the data record's ``test_sources``): the copies of one field are not
    independent samples."""
    src = data_record.get("test_sources") or {}
    real, augmented = src.get("real"), src.get("augmented")
    if not real or not augmented:
        return None
    return np.arange(int(real) + int(augmented)) % int(real)


def build_summary(tidy: pd.DataFrame | str | Path, references: list[dict[str, Any]] | None = None,
                  trained: list[dict[str, Any]] | None = None, data_records: list[dict[str, Any]] | None = None) -> tuple[list[Verdict], list[str]]:
    """(verdicts, context lines) for every claim the run's numbers can speak to."""
    t = read_tidy(tidy)
    datasets = ordered(t["dataset"], dataset_order())
    clusters = {}
    for rec in data_records or []:
        c = source_clusters(rec)
        name = rec.get("dataset")
        if c is not None and name:
            clusters[name] = c
    ev = Evidence(t, {r["dataset"]: r for r in references or []}, list(trained or []), clusters)
    verdicts = (reconstruction_claims(ev, datasets) + shapenet_reconstruction_claim(ev, datasets) + completion_claims(ev, datasets)
                + superres_claims(ev, datasets)
                + speed_claims(ev, datasets)
                + segmentation_claims(t, datasets) + generation_claims(ev, datasets) + overfitting_claims(ev, datasets)
                + untestable_claims(ev, datasets))
    seeds = sorted({int(s) for s in t.loc[t["kind"] == "model", "seed"].dropna()})
    context = [f"Training seeds: {len(seeds)} ({', '.join(map(str, seeds))}). "
               + ("Intervals are 95% Student-t intervals over the seeds' means, so they include training variance."
                  if len(seeds) >= 2 else "With one seed, intervals are over test samples or generated sets and exclude training variance.")]
    if clusters:
        context.append("Test samples clustered by source (intervals over clusters, not samples): "
                       + ", ".join(f"{dataset_name(d)} {len(c)} samples from {len(np.unique(c))} source fields" for d, c in clusters.items()) + ".")
    context.append(f"A model enters a comparison only after it has learned what is compared: reconstruction beats the train mean by "
                   f"{CLEAR_MARGIN_DB:g} dB; generation has a FID below every baseline generator (train-mean image, one real image "
                   f"repeated, blurred real images, uniform noise) and above the real floor, samples spread at least {SPREAD_MIN:g} of the "
                   f"data's and not near-copies of the train set (at most {MEMORISATION_CLOSE_MAX:.0%} closer than the test set's 5th "
                   f"percentile), and (GASP) a discriminator that left chance (accuracy ≥ {D_ACCURACY_MIN:g} and D(real) − D(fake) ≥ {D_GAP_MIN:g}). 'Comparable' PSNR = at most "
                   f"{COMPARABLE_DB:g} dB lower, about 1.5–3× the seed SD of reconstruction PSNR measured by the ablations.")
    context.append("Two reconstruction protocols (docs/evaluation.md): the paper's, where VAMoH's mixture weights at an observed point "
                   "are the posterior q(c | x, y, z) computed with that point's own value (a best-of-K choice made with the answer), and "
                   "a leak-free one, the prior p(c | x, z) at every point. Each reconstruction claim is judged under both; completion, "
                   "super-resolution and every gate after reconstruction use the leak-free one (at a hidden or new point the two agree). "
                   "In both, VAMoH's z, like Functa's modulations, is fitted to every observed point.")
    labels = {rec.get("model"): rec.get("label") for rec in ev.trained if rec.get("label")}  # what train.json calls each entry
    budget = "; ".join(f"{labels.get(m) or PAPER_MODEL_NAMES.get(m, m)} {int(min(st))}–{int(max(st))}" for m, st in _steps_by_model(ev).items())
    if budget:
        context.append(f"Every verdict is about models trained briefly at this scale (optimiser steps per dataset: {budget}): "
                       "read each as 'at this budget'.")
    gan = _discriminator_lines(ev, datasets)
    if gan:
        context.append("GASP's discriminator over the last 20% of training (mean over seeds; accuracy, D(real) − D(fake)): " + gan + ".")
    for ref in references or []:
        ext = ref.get("extractor") or {}
        q = ext.get("quality", {})
        if "test_psnr_db" in q:
            against = (f", against {q['mean_image_psnr_db']:.2f} dB for the train-mean image: "
                       f"{'passes' if q['passes'] else 'FAILS'} the +{q['gate_db']:g} dB gate" if "mean_image_psnr_db" in q else "")
            trained_on = f"; trained on {ext['trained_on']}" if ext.get("trained_on") else ""
            context.append(f"{dataset_name(ref['dataset'])}: feature extractor {ext.get('label')} reconstructs held-out test images at "
                           f"{q['test_psnr_db']:.2f} dB PSNR ({ext.get('config', {}).get('epochs', '?')} epochs on "
                           f"{ext.get('num_train_images', '?')} images{trained_on}){against}.")
    standin = sorted({dataset_name(d) for d, s in zip(t["dataset"], t["is_standin"]) if s})
    if standin:
        context.insert(0, f"Stand-in data ({', '.join(standin)}): the verdicts say what these models do on these data at this scale, "
                          "not whether the paper's numbers hold on the real datasets.")
    return verdicts, context


def _steps_by_model(ev: Evidence) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for rec in ev.trained:
        if rec.get("steps"):
            out.setdefault(rec.get("model", "?"), []).append(int(rec["steps"]))
    return {m: out[m] for m in ordered(out, model_order())}


def _discriminator_lines(ev: Evidence, datasets: list[str]) -> str:
    parts = []
    for d in datasets:
        tails = [rec.get("tail_means") or {} for rec in ev.trained if rec.get("dataset") == d and rec.get("model") == "gasp"]
        acc = [t["d_acc"] for t in tails if "d_acc" in t]
        gap = [t["d_real"] - t["d_fake"] for t in tails if "d_real" in t and "d_fake" in t]
        if acc and gap:
            parts.append(f"{dataset_name(d)} {np.mean(acc):.2f}, {np.mean(gap):+.2f}")
    return "; ".join(parts)


COLUMNS = ("Claim", "Dataset", "Paper's evidence", "Measured here", "Interval (n, method)", "Verdict", "Rule / reason")


def _cells(v: Verdict) -> list[str]:
    return [v.claim, dataset_name(v.dataset) if v.dataset else "all", v.paper, v.measured, v.interval or "—", v.verdict, v.reason]


def render_summary(verdicts: list[Verdict], context: list[str], title: str) -> str:
    counts = {v: sum(x.verdict == v for x in verdicts) for v in VERDICTS}
    lines = [f"# {title}", "", "How each claim of the paper fares in this run. Verdicts follow fixed rules on the numbers and their spread "
             "(`vamoh/report/summary/`): reproduced / not reproduced when the 95% interval lies on one side of the claim's threshold, "
             "inconclusive when it straddles it, not testable at this scale when a precondition fails (the reason is given).", "",
             "**Tally:** " + ", ".join(f"{n} {v}" for v, n in counts.items()), ""]
    lines += [f"- {c}" for c in context] + ([""] if context else [])
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for v in verdicts:
        cells = _cells(v)
        cells[5] = f"**{cells[5]}**"
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(tidy: pd.DataFrame | str | Path, references: list[dict[str, Any]], out_md: str | Path, out_html: str | Path, title: str,
                  trained: list[dict[str, Any]] | None = None, data_records: list[dict[str, Any]] | None = None) -> list[Path]:
    import html

    verdicts, context = build_summary(tidy, references, trained, data_records)
    md = render_summary(verdicts, context, title)
    rows = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(v)) + "</tr>" for v in verdicts)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>table{border-collapse:collapse;font-family:sans-serif;font-size:90%}td,th{border:1px solid #bbb;padding:2px 6px}</style>"
            f"</head><body><h1>{html.escape(title)}</h1>" + "".join(f"<p>{html.escape(c)}</p>" for c in context)
            + "<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS) + "</tr>"
            + rows + "</table></body></html>\n")
    return [atomic_write_text(out_md, md), atomic_write_text(out_html, page)]
