"""The ablation report's figures: per question every number over seeds (``ablation_figure``), and per question and
dataset each variant's uncurated samples and reconstructions (``pictures_figure``, from the evaluate stage's
figures.npz)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..eval import keys
from ..eval.ablation_metrics import METRICS, quality_metrics, speed_metrics
from .ablation_stats import ALPHA, CORRECTION, CORRECTIONS
from .ablation_tables import DEFAULT_MARK, MARK, header
from .ablation_values import LEARNED_GATE_METRICS
from .labels import dataset_name, dataset_order, ordered

FIGURE_COLUMNS = 4  # panels per figure row
PICTURE_COLUMNS = 4  # variants per row of a picture figure
GRID_SIDE = 8  # sample grid: GRID_SIDE x GRID_SIDE samples
RECON_EXAMPLES = 8  # test samples in a reconstruction row


def ablation_figure(ab: Any, values: pd.DataFrame, comps: dict, path: Path, refs: dict | None = None, method: str = CORRECTION) -> Path:
    """One panel per (dataset, metric), quality first, then speed: every seed's value per variant, mean ± std, the
    default in colour, a star over a variant that differs significantly after the correction, the held-out real
    floor as a dashed line where the reference has one; a panel not tested says so in its title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .pictures import save

    metrics = quality_metrics(ab) + speed_metrics(ab)
    datasets = ordered(values["dataset"], dataset_order()) or [""]
    variants = list(ab.variants)
    ncols = min(FIGURE_COLUMNS, len(metrics))
    per = math.ceil(len(metrics) / ncols)  # panel rows per dataset
    width = max(0.45 * len(variants), 2.6)
    fig, axes = plt.subplots(len(datasets) * per, ncols, figsize=(width * ncols + 0.6, 2.6 * len(datasets) * per + 0.8), squeeze=False)
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
            floor = (refs or {}).get((d, keys.REF_HELDOUT, k))
            mean_ref = (refs or {}).get((d, keys.REF_MEAN, k)) if k in LEARNED_GATE_METRICS else None
            if floor is not None:
                ax.axhline(floor[0], color="0.5", ls="--", lw=0.8, label="held-out real (floor)")
            if mean_ref is not None:  # the baseline a reconstruction must beat: differences near it are noise around the mean
                ax.axhline(mean_ref[0], color="C3", ls=":", lw=1.0, label="train mean (baseline)")
            if floor is not None or mean_ref is not None:
                ax.legend(fontsize=6, loc="best", frameon=False)
            ax.set_xticks(range(len(variants)), variants, rotation=45, ha="right", fontsize=7)
            ax.set_xlim(-0.5, len(variants) - 0.5)
            ax.tick_params(axis="y", labelsize=7)
            cs = [comps.get((d, v, k)) for v in variants]
            note = "speed: not in the answer" if m.speed else ""
            reasons = {c.excluded for c in cs if c is not None and c.excluded}
            if any("train mean" in r for r in reasons):
                note = "default at the train mean's level: not tested"
            elif any("noise" in r for r in reasons):
                note = "extractor gives noise precision: not tested"
            elif reasons:
                note = "extractor gate: not tested"
            elif not m.tested:
                note = "speed, load-dependent: not tested"
            elif m.not_counted:
                note = "mixture weights see the pixel: not in the answer"
            elif m.better == 0 and not m.speed:
                note = "a description: not in the answer"
            ax.set_title(f"{dataset_name(d)}: {header(m)}" + (f"\n[{note}]" if note else ""), fontsize=7)
        for ax in axes[i * per:(i + 1) * per].flat[len(metrics):]:
            ax.set_visible(False)
    fig.suptitle(f"{ab.question}\n(default: {ab.default}; dots: seeds; bars: mean ± std over seeds; {MARK} {CORRECTIONS[method][0]}-adjusted "
                 f"p < {ALPHA}, Welch, over all tests of the report)",
                 fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def pictures_figure(ab: Any, dataset: str, arrays: dict[str, dict[str, np.ndarray]], path: Path, seed: int | None = None) -> Path:
    """Per variant of one question on one dataset: a GRID_SIDE x GRID_SIDE grid of uncurated samples (figures.npz
    ``samples_1x``), and below it a reconstruction row: the first RECON_EXAMPLES test samples (``ground_truth``)
    over the variant's reconstructions of them (``recon_1x``). ``arrays``: entry -> its figures.npz arrays (the
    first seed); a variant without them says so in its panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .pictures import kind_of, mosaic, off, save, to_rgb, wrap

    variants = list(ab.variants)
    cols = min(PICTURE_COLUMNS, len(variants))
    rows = math.ceil(len(variants) / cols)
    fig = plt.figure(figsize=(2.7 * cols + 0.3, 4.1 * rows + 0.9))
    grid = fig.add_gridspec(rows * 2, cols, height_ratios=[GRID_SIDE, 3.6] * rows, hspace=0.12, wspace=0.06,
                            left=0.02, right=0.98, top=1 - 0.85 / (4.1 * rows + 0.9), bottom=0.01)
    for i, v in enumerate(variants):
        r, c = divmod(i, cols)
        top, bottom = fig.add_subplot(grid[2 * r, c]), fig.add_subplot(grid[2 * r + 1, c])
        a = arrays.get(ab.entries[v]) or {}
        head = v + (DEFAULT_MARK if v == ab.default else "")
        samples = a.get("samples_1x")
        if samples is not None and len(samples):
            kind = kind_of(a)
            n = min(len(samples), GRID_SIDE * GRID_SIDE)
            top.imshow(mosaic([to_rgb(x, kind) for x in samples[:n]], min(GRID_SIDE, n)), interpolation="nearest")
            top.set_title(f"{head}: {n} samples", fontsize=8)
        else:
            top.text(0.5, 0.5, "no samples in figures.npz", ha="center", va="center", fontsize=7, transform=top.transAxes)
            top.set_title(head, fontsize=8)
        if "recon_1x" in a and "ground_truth" in a:
            kind = kind_of(a)
            n = min(len(a["ground_truth"]), RECON_EXAMPLES)
            pics = [to_rgb(x, kind) for x in a["ground_truth"][:n]] + [to_rgb(x, kind) for x in a["recon_1x"][:n]]
            free = "recon_1x_leakfree" in a  # VAMoH: the leak-free protocol's reconstructions as a third row
            if free:
                pics += [to_rgb(x, kind) for x in a["recon_1x_leakfree"][:n]]
            bottom.imshow(mosaic(pics, n), interpolation="nearest")
            bottom.set_title("truth / reconstruction, paper protocol / leak-free" if free else "truth (top) / reconstruction", fontsize=7)
        else:
            bottom.text(0.5, 0.5, "no reconstruction in figures.npz", ha="center", va="center", fontsize=7, transform=bottom.transAxes)
        off(top)
        off(bottom)
    shown = max((min(len(a["ground_truth"]), RECON_EXAMPLES) for a in arrays.values() if "ground_truth" in a), default=0)
    text = (f"{ab.question} — {dataset_name(dataset)}: uncurated samples at 1x and reconstructions of the first "
            f"{shown} test samples (the evaluate stage's figures.npz{'' if seed is None else f', seed {seed}'})")
    fig.suptitle(wrap(text, 2.7 * cols, 9), fontsize=9)
    return save(fig, path)
