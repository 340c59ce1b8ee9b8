"""Completion against the truth: each model's score on the hidden region only, per mask, beside two baselines.

The paper shows completions only as pictures (Figures 9, 19, 20); this table gives them numbers, against the
baselines the summary's completion verdicts use (vamoh.report.margins.COMPLETION_BASELINES).
"""

from __future__ import annotations

import pandas as pd

from ...eval import keys
from ...eval.tidy import KIND_REFERENCE, read_tidy
from ..format import DASH, fmt_stat
from ..margins import COMPLETION_BASELINES
from ..pooled import stat_of
from ..render import ReportTable
from .provenance import Provenance
from .rows import datasets_with_numbers, label_of, models, psnr_ranges

COMPLETION_MASKS = (("centre", "centre box hidden", keys.PSNR_COMPLETION_CENTRE, keys.VOXEL_IOU_COMPLETION_CENTRE),
                    ("half", "right half hidden", keys.PSNR_COMPLETION_HALF, keys.VOXEL_IOU_COMPLETION_HALF),
                    ("outpaint", "all but the centre box hidden", keys.PSNR_COMPLETION_OUTPAINT, keys.VOXEL_IOU_COMPLETION_OUTPAINT))


def completion_margin(t: pd.DataFrame, dataset: str, model: str, metric: str) -> tuple[float, str] | None:
    """(the model's mean minus the better baseline's, that baseline) on ``metric``, or None without numbers."""
    own = stat_of(t, dataset, model, metric)
    bases = [(b, stat_of(t, dataset, b, metric)) for b in COMPLETION_BASELINES]
    bases = [(b, st) for b, st in bases if st is not None]
    if own is None or not bases:
        return None
    best, st = max(bases, key=lambda x: x[1].mean)
    return own.mean - st.mean, best


def completion_table(tidy: pd.DataFrame) -> ReportTable:
    """Completion against the truth: scores on the hidden region only, per mask, each model beside two baselines (the
    train mean inside the mask, the observed part's mean); voxels by IoU of the hidden part."""
    from ...data import DATASETS

    t = read_tidy(tidy)
    metric_keys = tuple(k for _, _, p, v in COMPLETION_MASKS for k in (p, v))
    rows = t[t["metric"].isin(metric_keys) & t["mean"].notna()]
    datasets = datasets_with_numbers(rows[rows["kind"] != KIND_REFERENCE])
    used = rows[rows["dataset"].isin(datasets)]
    prov = Provenance(used, extractors=False)
    out = []
    for d in datasets:
        voxels = d in DATASETS and DATASETS[d].kind == "voxels"
        for m in models(used, d):
            cell = {"Dataset": prov.label(d), "Model": label_of(used, m)}
            for task, what, psnr_key, iou_key in COMPLETION_MASKS:
                key = iou_key if voxels else psnr_key
                st = stat_of(used, d, m, key)
                cell[f"{task.capitalize()} ({what})"] = fmt_stat(st, 3 if voxels else 2)
                margin = None if m in COMPLETION_BASELINES else completion_margin(used, d, m, key)
                unit = "" if voxels else " dB"
                cell[f"{task.capitalize()} vs best baseline"] = DASH if margin is None else f"{margin[0]:+.{3 if voxels else 2}f}{unit}"
            cell["Score"] = "IoU of the hidden voxels" if voxels else "PSNR on the hidden region (dB)"
            ns = {st.n for st in (stat_of(used, d, m, k) for _, _, k, _ in COMPLETION_MASKS) if st}
            cell["Test samples"] = "/".join(map(str, sorted(ns))) if ns else DASH
            out.append(cell)
    notes = [
        "Each test sample is given with one region hidden (centre: the centred box of half the side on every axis; half: the "
        "last axis from its middle on, the right half of an image; outpaint: everything but the centred box), and scored on the "
        "hidden region only. Images and fields: PSNR in the paper's convention (eq. 19), " + psnr_ranges(datasets) + ". Voxels: "
        "the IoU of occupancy (threshold 0.5) inside the hidden region, since PSNR there is mostly empty space. Mean ± std over "
        "the first eval.completion_samples test samples (pooled over seeds).",
        f"Baselines, scored on the same samples and regions: {keys.REFERENCE_LABELS[keys.REF_MEAN]} (the train split's mean inside "
        f"the mask: a completion that ignored the observed part) and {keys.REFERENCE_LABELS[keys.REF_OBSERVED_MEAN]} (every hidden "
        "point given the mean of the sample's observed points: a completion that used only the sample's overall colour). "
        "'vs best baseline' is the model's mean minus the better of the two.",
        "The completion of a hidden point reads no value at that point, so both reconstruction protocols give the same completion.",
        "Paper: completions are shown only as pictures (Figures 9, 19, 20), with no numbers to print beside ours.",
        *prov.notes(datasets),
    ]
    return ReportTable("completion_scores", "Completion against the truth: the hidden region only, beside two baselines", pd.DataFrame(out), notes)
