"""The reconstruction family of claims: reconstruction (Figure 7), ShapeNet reconstruction (Figure 6(a)), completion
(Figure 9, Appendix B.4) and super-resolution against a true 2x render (Figures 6, 21, 23)."""

from __future__ import annotations

import math

import numpy as np

from ...eval import keys
from ...eval.paper import PAPER_MODEL_NAMES, PAPER_RECONSTRUCTION_CLAIMS
from ..margins import CLEAR_MARGIN_DB, CLEAR_MARGIN_IOU, COMPLETION_BASELINES
from ..stats import paired, seed_sd, seeded_interval
from .evidence import (
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    Evidence,
    Verdict,
    side,
    where_zero,
)
from .gates import reconstruction_gate

# "comparable" PSNR: VAMoH no more than this many dB below Functa (3). The paper states no margin. 1 dB is
# about 1.5-3x the seed-to-seed SD of a model's reconstruction PSNR measured by the ablations (0.3-0.7 dB,
# reports/ablations), so a model within it cannot be told apart from the other by retraining; each verdict
# prints this run's own seed SD of the difference beside it.
COMPARABLE_DB = 1.0


# Figure 7, §4.2 and §5: "VaMoH achieves similar quality on PolyMNIST and CelebA HQ, and outperforms Functa on ERA5 and
# Shapes3D"; "VaMoH achieves comparable or better PSNR values for the test set". One claim per dataset, as stated.
RECON_TEXT = {"comparable": ("as good as or better than", f"comparable or better: the interval of VAMoH − Functa (3) above −{COMPARABLE_DB:g} dB"),
              "better": ("better than", "better: the interval of VAMoH − Functa (3) above 0")}


PROTOCOLS = (("paper", keys.PSNR, "paper protocol: VAMoH's mixture weights at each observed point read its value"),
             ("leak-free", keys.PSNR_LEAK_FREE, "leak-free protocol: VAMoH's prior weights at every point"))


def reconstruction_claims(ev: Evidence, datasets: list[str]) -> list[Verdict]:
    """Each dataset's reconstruction claim judged under both protocols (docs/evaluation.md), the leak-free row stating
    how much of VAMoH's PSNR the paper protocol's read of y adds."""
    out = []
    for d in datasets:
        kind = PAPER_RECONSTRUCTION_CLAIMS.get(d)
        if kind is None:
            continue
        words, rule = RECON_TEXT[kind]
        paper = "Figure 7: " + ("VAMoH's PSNR higher" if kind == "better" else "similar PSNR") + " (under the paper's protocol)"
        for proto, metric, what in PROTOCOLS:
            claim = f"Reconstruction: VAMoH {words} Functa (3) (PSNR, {proto} protocol)"
            # Functa reads the data only through its modulations: its leak-free values are its paper values
            functa = ev.per_seed(d, "functa", metric) or ev.per_seed(d, "functa", keys.PSNR)
            diff = paired(ev.per_seed(d, "vamoh", metric), functa)
            if not diff:
                out.append(Verdict(claim, d, paper, "—", NOT_TESTABLE, f"VAMoH ({proto}) and Functa (3) were not both evaluated on the same test samples"))
                continue
            iv = seeded_interval(diff, ev.clusters.get(d))
            sd = seed_sd(diff)
            sd_text = f"; seed SD of the difference {sd:.2f} dB" if math.isfinite(sd) else ""
            measured = f"VAMoH − Functa (3) = {iv.fmt()} dB, {where_zero(iv)}{sd_text} ({what})"
            if metric == keys.PSNR_LEAK_FREE:
                leak = paired(ev.per_seed(d, "vamoh", keys.PSNR), ev.per_seed(d, "vamoh", keys.PSNR_LEAK_FREE))
                if leak:
                    liv = seeded_interval(leak, ev.clusters.get(d))
                    measured += f"; VAMoH paper − leak-free = {liv.fmt()} dB (what reading y at the point adds)"
            own_gate, rival_gate = reconstruction_gate(ev, d, "vamoh", metric), reconstruction_gate(ev, d, "functa")
            if own_gate and not rival_gate:
                # VAMoH has not learned to reconstruct (under this protocol) where Functa (3) has: the claim is refuted, not untestable
                out.append(Verdict(claim, d, paper, measured, NOT_REPRODUCED, own_gate + "; Functa (3) did", f"n = {iv.n}: {iv.method}"))
                continue
            weak = [r for r in (own_gate, rival_gate) if r]
            if weak:
                out.append(Verdict(claim, d, paper, measured, NOT_TESTABLE, "; ".join(weak), f"n = {iv.n}: {iv.method}"))
                continue
            threshold = -COMPARABLE_DB if kind == "comparable" else 0.0
            out.append(Verdict(claim, d, paper, measured, side(iv.low, iv.high, threshold), rule, f"n = {iv.n}: {iv.method}"))
    return out


COMPLETION_CLAIMS = (  # (task, PSNR key, voxel IoU key, the paper's evidence, the datasets it shows)
    ("centre", keys.PSNR_COMPLETION_CENTRE, keys.VOXEL_IOU_COMPLETION_CENTRE, "Figure 9(a): in-painting a missing patch (CelebA-HQ, Shapes3D)",
     ("celebahq64", "shapes3d")),
    ("half", keys.PSNR_COMPLETION_HALF, keys.VOXEL_IOU_COMPLETION_HALF,
     "Figure 9(b): high-quality completions with half of the image missing (CelebA-HQ, Shapes3D)", ("celebahq64", "shapes3d")),
    ("outpaint", keys.PSNR_COMPLETION_OUTPAINT, keys.VOXEL_IOU_COMPLETION_OUTPAINT, "Appendix B.4, Figure 24: out-painting on every dataset",
     None),  # None: every dataset
)
COMPLETION_WORDS = {"centre": "a missing central patch", "half": "a hidden half", "outpaint": "everything outside a central patch"}


def completion_claims(ev: Evidence, datasets: list[str]) -> list[Verdict]:
    """§4.3 / Figure 9 / Appendix B.4: VAMoH completes partly observed samples. Scored where it is hidden against two
    baselines on the same samples, the train mean inside the mask (a completion that ignored the observed part) and the
    observed part's mean (one that used only the sample's overall colour); the verdict is against the better of the two,
    with the margin every "better than a baseline" rule uses (CLEAR_MARGIN_DB; voxels: CLEAR_MARGIN_IOU of hidden-part
    IoU). Functa (3)'s completion of the same samples is printed beside it."""
    out = []
    for task, psnr_key, iou_key, paper, shown in COMPLETION_CLAIMS:
        claim = f"Completion: VAMoH fills in {COMPLETION_WORDS[task]} better than both baselines do"
        for d in datasets:
            if shown is not None and d not in shown:
                continue
            voxels = ev.per_seed(d, "vamoh", iou_key) != {}
            key, margin, unit, score = (iou_key, CLEAR_MARGIN_IOU, "", "IoU of the hidden voxels") if voxels else (psnr_key, CLEAR_MARGIN_DB, " dB", "PSNR where hidden")
            own = ev.per_seed(d, "vamoh", key)
            bases = {b: next(iter(v.values())) for b in COMPLETION_BASELINES if (v := ev.per_seed(d, b, key))}
            if not own or not bases:
                out.append(Verdict(claim, d, paper, "—", NOT_TESTABLE, "VAMoH's completions or the baselines inside the mask were not evaluated"))
                continue
            best = max(bases, key=lambda b: float(np.nanmean(bases[b])))
            b = bases[best]
            diff = {s: v - b[: len(v)] for s, v in own.items() if len(v) <= len(b)}
            iv = seeded_interval(diff, None)
            others = "; ".join(f"{keys.REFERENCE_LABELS[x]} {float(np.nanmean(v)):.{3 if voxels else 2}f}" for x, v in bases.items())
            functa = ev.mean(d, "functa", key)
            beside = f"; Functa (3) − that baseline = {functa - float(np.nanmean(b)):+.{3 if voxels else 2}f}{unit}" if functa is not None else ""
            measured = (f"{score}, VAMoH − {keys.REFERENCE_LABELS[best].split(' (')[0].lower()} (the better baseline) = {iv.fmt()}{unit}, "
                        f"{where_zero(iv)} (baselines: {others}){beside}")
            gate = reconstruction_gate(ev, d, "vamoh", keys.PSNR_LEAK_FREE)
            if gate:
                out.append(Verdict(claim, d, paper, measured, NOT_TESTABLE, gate, f"n = {iv.n}: {iv.method}"))
                continue
            out.append(Verdict(claim, d, paper, measured, side(iv.low, iv.high, margin),
                               f"better: the interval above +{margin:g}{unit} over the better baseline (the margin of every 'beats a baseline' rule)",
                               f"n = {iv.n}: {iv.method}"))
    return out


# Abstract and §5: VAMoH performs "conditional super-resolution generation and in-painting, as well or better than previous
# approaches". Judged where a true 2x render exists, as the reconstruction claims judge "comparable" (COMPARABLE_DB; voxels
# COMPARABLE_IOU), with the model-free upsampling printed beside: a model that does not beat it adds nothing at 2x.
COMPARABLE_IOU = 0.05


def superres_claims(ev: Evidence, datasets: list[str]) -> list[Verdict]:
    claim = "Super-resolution: VAMoH as good as or better than Functa (3) against a true 2x render"
    paper = "Abstract / Figures 6, 21, 23: super-resolution as well or better than previous approaches (qualitative)"
    out = []
    for d in datasets:
        voxels = bool(ev.per_seed(d, "vamoh", keys.VOXEL_IOU_SUPERRES))
        key = keys.VOXEL_IOU_SUPERRES if voxels else keys.PSNR_SUPERRES
        own, functa = ev.per_seed(d, "vamoh", key), ev.per_seed(d, "functa", key)
        if not own:
            continue  # no 2x truth for this dataset: the superresolution table says why
        diff = paired(own, functa)
        if not diff:
            out.append(Verdict(claim, d, paper, "—", NOT_TESTABLE, "VAMoH and Functa (3) were not both scored at 2x on the same samples"))
            continue
        iv = seeded_interval(diff, None)
        unit, dec, margin = ("", 3, COMPARABLE_IOU) if voxels else (" dB", 2, COMPARABLE_DB)
        base = ev.mean(d, keys.REF_UPSAMPLED, key)
        vs = "; ".join(f"{PAPER_MODEL_NAMES[m]} − upsampled {(ev.mean(d, m, key) or float('nan')) - base:+.{dec}f}{unit}" for m in ("vamoh", "functa")) if base is not None else ""
        measured = (f"{'IoU' if voxels else 'PSNR'} at 2x, VAMoH − Functa (3) = {iv.fmt()}{unit}, {where_zero(iv)}"
                    + (f" ({vs}; 1x upsampled {'nearest' if voxels else 'bicubic'})" if vs else ""))
        weak = [r for r in (reconstruction_gate(ev, d, "vamoh", keys.PSNR_LEAK_FREE), reconstruction_gate(ev, d, "functa")) if r]
        # the learned-gate of super-resolution: a model whose 2x is worse than interpolating the 1x sample has not learned
        # to super-resolve, and two such models are not compared
        weak += [f"{PAPER_MODEL_NAMES[m]} at 2x does not beat the 1x sample upsampled ({'nearest' if voxels else 'bicubic'}, "
                 f"{base:.{dec}f}{unit}) ({own_mean:.{dec}f}{unit})"
                 for m in ("vamoh", "functa") if base is not None and (own_mean := ev.mean(d, m, key)) is not None and own_mean <= base]
        if weak:
            out.append(Verdict(claim, d, paper, measured, NOT_TESTABLE, "; ".join(weak), f"n = {iv.n}: {iv.method}"))
            continue
        out.append(Verdict(claim, d, paper, measured, side(iv.low, iv.high, -margin),
                           f"comparable or better: the interval of VAMoH − Functa (3) above −{margin:g}{unit}", f"n = {iv.n}: {iv.method}"))
    return out


def shapenet_reconstruction_claim(ev: Evidence, datasets: list[str]) -> list[Verdict]:
    """Figure 6(a): "both methods produce high-quality reconstructions" of ShapeNet chairs. A reconstruction that does not
    beat the train mean (voxel IoU, PSNR) by the suite's margin is evidence against it."""
    if "shapenet" not in datasets:
        return []
    claim = "Reconstruction: VAMoH and Functa (3) both reconstruct ShapeNet chairs well"
    paper = "Figure 6(a): high-quality reconstructions, details of the chairs captured (qualitative)"
    base_iou = ev.mean("shapenet", keys.REF_MEAN, keys.VOXEL_IOU)
    parts, failing = [], []
    for m in ("vamoh", "functa"):
        iou = ev.mean("shapenet", m, keys.VOXEL_IOU)
        if iou is not None:
            parts.append(f"{PAPER_MODEL_NAMES[m]} IoU {iou:.3f}")
        gate = reconstruction_gate(ev, "shapenet", m)
        if gate:
            failing.append(gate)
    if not parts:
        return [Verdict(claim, "shapenet", paper, "—", NOT_TESTABLE, "no ShapeNet reconstructions were evaluated")]
    measured = ", ".join(parts) + (f"; train mean IoU {base_iou:.3f}" if base_iou is not None else "")
    if failing:
        return [Verdict(claim, "shapenet", paper, measured, NOT_REPRODUCED, "; ".join(failing))]
    return [Verdict(claim, "shapenet", paper, measured, REPRODUCED, f"both beat the train mean's occupancy IoU by {CLEAR_MARGIN_IOU:g}")]
