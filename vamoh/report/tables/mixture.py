"""The mixture's segmentations as numbers (the paper's Figures 10, 25): entropy, contiguity, input dependence, true parts."""

from __future__ import annotations

import pandas as pd

from ...eval import keys
from ...eval.tidy import read_tidy
from ..format import DASH, fmt_stat
from ..pooled import stat_of
from ..render import ReportTable
from .provenance import Provenance
from .rows import datasets_with_numbers, label_of, models


def mixture_table(tidy: pd.DataFrame) -> ReportTable:
    """The mixture's segmentations (paper Figures 10, 25): mean normalised entropy, segment coherence vs chance,
    contiguity normalised for balance (kappa), dependence on the input (mean ARI with the other inputs' maps), and,
    where the data has true parts, agreement with them (ARI) beside a k-means-on-colour baseline."""
    t = read_tidy(tidy)
    rows = t[t["metric"].isin(keys.MIXTURE_KEYS) & t["mean"].notna()]
    datasets = datasets_with_numbers(rows)
    prov = Provenance(rows, extractors=False)
    out = []
    undefined_kappa = False
    for d in datasets:
        for m in models(rows, d):
            ent, coh, chance, kappa, pos, parts, km = (stat_of(rows, d, m, k) for k in (
                keys.MIXTURE_ENTROPY, keys.SEGMENT_COHERENCE, keys.SEGMENT_CHANCE, keys.SEGMENT_KAPPA, keys.SEGMENT_POSITION_ARI,
                keys.SEGMENT_PARTS_ARI, keys.SEGMENT_PARTS_ARI_KMEANS))
            kappa_cell = fmt_stat(kappa, 3)
            scored = bool(((t["dataset"] == d) & (t["model"] == m) & (t["metric"] == keys.SEGMENT_KAPPA)).any())  # runs before κ have no row
            if coh and scored and (kappa is None or kappa.n < coh.n):  # samples where one component covers everything: κ undefined
                undefined_kappa = True
                kappa_cell = "undefined" if kappa is None else f"{kappa_cell} ({coh.n - kappa.n} of {coh.n} undefined)"
            out.append({"Dataset": prov.label(d), "Model": label_of(rows, m), "Entropy / ln K": fmt_stat(ent, 3),
                        "Segment coherence": fmt_stat(coh, 3), "Chance level": fmt_stat(chance, 3), "Contiguity κ": kappa_cell,
                        "Position ARI": fmt_stat(pos, 3), "Parts ARI": fmt_stat(parts, 3), "k-means ARI (baseline)": fmt_stat(km, 3),
                        "Test samples": str(coh.n) if coh else DASH})
    notes = [
        "Entropy / ln K: the mixture weights' entropy per point, divided by its maximum ln K (0 = one component owns the point, "
        "1 = all K equally likely), averaged over the test points (ShapeNet: occupied voxels only).",
        "Segment coherence: the share of neighbouring grid points (4 per pixel, 6 per voxel; longitude wraps on ERA5) whose most "
        "probable component agrees. Chance level: what a segmentation with the same component shares but no spatial "
        "structure scores (sum_k p_k^2 per sample). Coherence minus chance is bounded by 1 − chance, so it rewards balanced "
        "components: read contiguity from κ.",
        "Contiguity κ = (coherence − chance) / (1 − chance) per sample (Cohen's kappa of a point's component and its neighbour's): "
        "0 = speckle with the same component shares, negative = more disagreeing neighbours than chance, 1 = no disagreeing "
        "neighbours; a contiguous map scores 1 minus its border pairs over speckle's. Undefined where one component covers "
        "every point (chance 1: nothing is segmented, e.g. K = 1); such samples are left out and counted.",
        "Position ARI: per sample, the mean adjusted Rand index of its map with the maps of the next 32 test samples (all "
        "others in a smaller test set) on the points valid in both. 1 = the same partition of the grid whatever the input "
        "(a partition by position, not a segmentation of the image); lower = the map follows the input.",
        "Parts ARI: the adjusted Rand index of the map with the true parts the stand-in renders (Shapes3D: wall, floor, object; "
        "faces: background, clothes, hair, face; chairs: seat, back, legs, arms); k-means ARI: the same for k-means on the sample's colours (voxels: the "
        "occupied voxels' coordinates) with k = the number of true parts, the baseline a segmentation should beat. "
        f"{DASH}: the data has no true parts (real data, PolyMNIST, ERA5).",
        *prov.notes(datasets),
    ]
    frame = pd.DataFrame(out)
    if not undefined_kappa:
        notes[2] = notes[2].replace("; such samples are left out and counted", "")
    return ReportTable("mixture", "Mixture segmentations: entropy, contiguity, input dependence and true parts (Figures 10, 25 as numbers)",
                       frame, notes)
