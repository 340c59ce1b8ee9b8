"""The paper's figures from figures.npz, the tidy table and the training histories (PNG, Agg backend).

Samples become pictures through ``vamoh.report.pictures`` (ERA5 fields with a colour bar on the figure). Figure
titles carry each dataset's label and say "stand-in data" whenever the data is a stand-in.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..checks import ConfigError  # noqa: E402
from ..eval import keys  # noqa: E402
from ..eval.tidy import read_tidy  # noqa: E402
from .labels import dataset_name, dataset_order, model_order, ordered  # noqa: E402
from .pictures import (  # noqa: E402
    MISSING_GREY,
    float01,
    grid_figure,
    kind_of,
    layout,
    load_arrays,
    load_history,
    mosaic,
    off,
    save,
    to_rgb,
    wrap,
)
from .pooled import combine  # noqa: E402

COMPLETION_TASKS = ("centre", "half", "outpaint")
GRID_SIDE = 8  # uncurated samples shown as GRID_SIDE x GRID_SIDE


def model_colour(model: str) -> Any:
    """One colour per model in every plot, by its place in the model order (read when drawing: plugins included)."""
    order = model_order()
    return dict(zip(order, sns.color_palette(n_colors=len(order)))).get(model, "grey")


def _curve(model_name: str) -> tuple[Any, str]:
    """(history column or columns, axis label) of a model's training curve: the headline diagnostic of its own
    objective, as its class declares it (``FunctionModel.curves``); the loss for a model that declares none."""
    from ..interface import get_model_class

    try:
        return get_model_class(model_name).curves or ("loss", "training loss")
    except ConfigError:  # a model no longer registered: its history still has a loss
        return ("loss", "training loss")


class Labels:
    """Titles per dataset: the recorded label; "stand-in data" named when it is one."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.given = dict(labels)

    def is_standin(self, d: str) -> bool:
        return "stand-in" in self.given.get(d, "").lower()

    def __call__(self, d: str) -> str:
        return self.given.get(d) or dataset_name(d)


# ---------------------------------------------------------------------------------------------- figures


def generation_figure(arrays: dict[str, np.ndarray], title: str, out: Path) -> Path | None:
    """Uncurated samples of one model: an 8x8 grid at 1x beside the same latents at 2x (Figures 15, 17, 19)."""
    if "samples_1x" not in arrays or len(arrays["samples_1x"]) == 0:
        return None
    kind = kind_of(arrays)
    panels = [(tag, arrays[tag][: GRID_SIDE * GRID_SIDE]) for tag in ("samples_1x", "samples_2x") if tag in arrays]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels) + (0.9 if kind == "field" else 0), 5.8), squeeze=False)
    for ax, (tag, a) in zip(axes[0], panels):
        ax.imshow(mosaic([to_rgb(x, kind) for x in a], GRID_SIDE), interpolation="nearest")
        off(ax)
        shape = "x".join(map(str, a.shape[1:-1]))
        ax.set_title(f"{tag[-2:]} ({shape}), {len(a)} samples, uncurated", fontsize=8)
    fig.suptitle(wrap(f"{str(arrays['label'])}: generation at 1x and 2x (same latents) — {title}", 10.0, 9), fontsize=9)
    layout(fig, kind)
    return save(fig, out)


def _by_model(per_model: dict[str, dict[str, np.ndarray]], key: str) -> list[tuple[str, dict[str, np.ndarray]]]:
    return [(m, per_model[m]) for m in ordered(per_model, model_order()) if key in per_model[m]]


def reconstruction_figure(per_model: dict[str, dict[str, np.ndarray]], title: str, out: Path, n: int = 6) -> Path | None:
    """Ground truth, then each model's reconstructions at 1x (the paper's protocol, and the leak-free one for models that
    tell them apart) and super-reconstructions at 2x, one rule at every point (Figures 6, 21, 23)."""
    models = _by_model(per_model, "recon_1x")
    if not models:
        return None
    kind = kind_of(models[0][1])
    truth = models[0][1]["ground_truth"][:n]
    rows = [("Ground truth", [to_rgb(x, kind) for x in truth])]
    for _, a in models:
        two = "recon_1x_leakfree" in a
        rows.append((f"{str(a['label'])} 1x" + (", paper protocol" if two else ""), [to_rgb(x, kind) for x in a["recon_1x"][:n]]))
        if two:
            rows.append((f"{str(a['label'])} 1x, leak-free", [to_rgb(x, kind) for x in a["recon_1x_leakfree"][:n]]))
    rows += [(f"{str(a['label'])} 2x" + (", leak-free" if "recon_1x_leakfree" in a else ""), [to_rgb(x, kind) for x in a["recon_2x"][:n]])
             for _, a in models]
    head = ("Reconstruction (1x) and super-reconstruction (2x). Paper protocol: VAMoH's weights at each observed point read "
            "its value; leak-free: prior weights everywhere (2x always) — ")
    return save(grid_figure(rows, head + title, kind), out)


def superres_figure(per_model: dict[str, dict[str, np.ndarray]], title: str, out: Path, n: int = 6) -> Path | None:
    """Super-resolution against the truth: the stand-in's own 2x render, the 1x sample upsampled without a model
    (bicubic / nearest), then each model's 2x reconstruction of the same samples."""
    models = _by_model(per_model, "superres_2x")
    if not models:
        return None
    first = models[0][1]
    kind = kind_of(first)
    truth = first["superres_truth"][:n]
    rows = [("Truth at 2x (rendered)", [to_rgb(x, kind) for x in truth]),
            ("1x upsampled (" + ("bicubic" if kind == "image" else "nearest") + ")", [to_rgb(x, kind) for x in first["superres_upsampled"][:n]])]
    rows += [(f"{str(a['label'])} 2x", [to_rgb(x, kind) for x in a["superres_2x"][:n]]) for _, a in models]
    return save(grid_figure(rows, f"Super-resolution against a true 2x render — {title}", kind), out)


def completion_figure(per_model: dict[str, dict[str, np.ndarray]], title: str, out: Path, n: int = 6) -> Path | None:
    """Per task: the observed input (missing region grey; for voxels only the observed voxels are drawn), then each
    model's completion."""
    models = _by_model(per_model, "completion_centre")
    if not models:
        return None
    first = models[0][1]
    kind = kind_of(first)
    truth = first["ground_truth"][:n]
    rows = [("Ground truth", [to_rgb(x, kind) for x in truth])]
    for task in COMPLETION_TASKS:
        key = f"completion_{task}"
        mask = first[f"{key}_mask"].astype(bool)  # (*grid), True = observed
        inputs = []
        for x in truth:
            if kind == "voxels":
                inputs.append(to_rgb(np.where(mask[..., None], x, 0), kind))
            else:
                pic = to_rgb(x, kind).copy()
                pic[~mask] = MISSING_GREY
                inputs.append(pic)
        rows.append((f"Input ({task})", inputs))
        rows += [(f"{str(a['label'])} ({task})", [to_rgb(x, kind) for x in a[key][:n]]) for _, a in models]
    what = "only the observed voxels drawn in the input rows" if kind == "voxels" else "grey = missing"
    return save(grid_figure(rows, f"Completion ({what}) — {title}", kind), out)


def _surface(field: np.ndarray, occupancy: np.ndarray) -> np.ndarray:
    """A per-voxel map (X, Y, Z) seen from the front (along z, y up): the value at the first occupied voxel."""
    occ = occupancy > 0.5
    first = occ.argmax(axis=2)  # (X, Y): the nearest occupied z
    picked = np.take_along_axis(field, first[..., None], axis=2)[..., 0].astype(np.float32)
    picked[~occ.any(axis=2)] = np.nan
    return picked.T[::-1]  # (Y, X) with y up


def maps_figure(per_model: dict[str, dict[str, np.ndarray]], title: str, out: Path, n: int = 6) -> Path | None:
    """The mixture: ground truth, reconstruction, per-point entropy / ln K (0..1, colour bar) and the most probable
    component (one colour per component, legend) (Figures 10, 25)."""
    models = _by_model(per_model, "entropy")
    if not models:
        return None
    model, a = models[0]
    kind = kind_of(a)
    K = int(a["num_components"])
    truth, ent, seg = a["ground_truth"][:n], a["entropy"][:n], a["segmentation"][:n]
    occ = [float01(t)[..., 0] for t in truth] if kind == "voxels" else None
    fig, axes = plt.subplots(4, len(truth), figsize=(1.5 * len(truth) + 2.6, 6.6), squeeze=False)
    cmap = matplotlib.colormaps["tab10"] if K <= 10 else matplotlib.colormaps["tab20"]
    for i in range(len(truth)):
        axes[0, i].imshow(to_rgb(truth[i], kind), interpolation="nearest")
        axes[1, i].imshow(to_rgb(a["recon_1x"][i], kind), interpolation="nearest")
        e = _surface(ent[i], occ[i]) if occ else ent[i]
        s = _surface(seg[i].astype(np.float32), occ[i]) if occ else seg[i].astype(np.float32)
        im = axes[2, i].imshow(np.ma.masked_invalid(e), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        axes[3, i].imshow(np.ma.masked_invalid(s), cmap=cmap, vmin=-0.5, vmax=cmap.N - 0.5, interpolation="nearest")
        for r in range(4):
            off(axes[r, i])
    for r, name in enumerate(("Ground truth", f"{str(a['label'])} recon.", "Entropy / ln K", "Component")):
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(wrap(f"Mixture entropy and segmentation (K = {K}) — {title}", 1.5 * len(truth) + 2.4, 9), fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    fig.colorbar(im, ax=axes[2, :].tolist(), fraction=0.03, pad=0.02).set_label("H(π) / ln K", fontsize=7)
    handles = [matplotlib.patches.Patch(color=cmap(k), label=f"component {k}") for k in range(K)]
    fig.legend(handles=handles, loc="lower right", fontsize=6, frameon=False, bbox_to_anchor=(1.0, 0.02))
    return save(fig, out)


def psnr_figure(tidy: pd.DataFrame, labels: Labels, out: Path) -> Path | None:
    """Figure 7: PSNR of test reconstructions per model (boxes over the per-sample values), one panel per dataset, the
    paper's protocol (filled) beside the leak-free one (hatched) for models that tell them apart, with the train-mean
    baseline as a dashed line."""
    rows = tidy[tidy["metric"].isin((keys.PSNR, keys.PSNR_LEAK_FREE)) & tidy["mean"].notna()]
    datasets = ordered(rows[rows["metric"] == keys.PSNR]["dataset"], dataset_order())
    if not datasets:
        return None

    def values_of(r: pd.DataFrame) -> np.ndarray:
        vals = np.asarray([x for v in r["values"] for x in v], dtype=float)
        return vals[np.isfinite(vals)]

    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, len(datasets), figsize=(3.6 * len(datasets), 3.8), squeeze=False)
        for ax, d in zip(axes[0], datasets):
            sel = rows[rows["dataset"] == d]
            models = [m for m in ordered(sel["model"], model_order()) if m != keys.REF_MEAN]
            ticks, names = [], []
            for i, m in enumerate(models):
                colour = model_colour(keys.split_inference_variant(m)[0])
                paper, free = sel[(sel["model"] == m) & (sel["metric"] == keys.PSNR)], sel[(sel["model"] == m) & (sel["metric"] == keys.PSNR_LEAK_FREE)]
                differ = len(free) and not np.array_equal(values_of(paper), values_of(free))
                parts = [(paper, i - 0.2 if differ else i, None)] + ([(free, i + 0.2, "///")] if differ else [])
                for r, x, hatch in parts:
                    vals = values_of(r)
                    if vals.size > 1:
                        ax.boxplot([vals], positions=[x], widths=0.35 if differ else 0.6, patch_artist=True,
                                   boxprops={"facecolor": colour, "alpha": 0.6, "hatch": hatch})
                    else:
                        st = combine(r)
                        if st is not None and st.mean is not None and math.isfinite(st.mean):
                            ax.errorbar([x], [st.mean], yerr=[st.std or 0.0], fmt="o", color=colour, capsize=4)
                ticks.append(i)
                names.append(sel[sel["model"] == m]["label"].iloc[0] + ("\n(paper | leak-free)" if differ else ""))
            base = combine(sel[(sel["model"] == keys.REF_MEAN) & (sel["metric"] == keys.PSNR)])
            if base is not None and base.mean is not None:
                ax.axhline(base.mean, color="black", linestyle="--", linewidth=1, label=keys.REFERENCE_LABELS[keys.REF_MEAN])
                ax.legend(fontsize=6, loc="lower right")
            ax.set_xticks(ticks, names, fontsize=7, rotation=20)
            ax.set_xlim(-0.7, len(models) - 0.3)
            ax.set_ylabel("PSNR (dB, paper eq. 19)")
            ax.set_title(wrap(labels(d), 3.4, 7), fontsize=7)
    standin = [dataset_name(d) for d in datasets if labels.is_standin(d)]
    title = ("Figure 7: reconstruction PSNR on the test set; filled = paper protocol (VAMoH's weights read each observed "
             "value), hatched = leak-free (prior weights everywhere)" + (f" (stand-in data: {', '.join(standin)})" if standin else ""))
    fig.suptitle(wrap(title, 3.6 * len(datasets) - 0.2, 9), fontsize=9)
    fig.tight_layout()
    return save(fig, out)


def training_curves_figure(histories: list[tuple[dict[str, Any], Path]], labels: Labels, out: Path) -> Path | None:
    """Each model's own training diagnostic against the step, one row per dataset and one panel per model (own axes),
    so a researcher can see whether the curves have flattened."""
    if not histories:
        return None
    first_seed: dict[tuple[str, str], tuple[dict[str, Any], Path]] = {}
    for summary, path in histories:
        first_seed.setdefault((summary["dataset"], summary["model"]), (summary, path))
    datasets = ordered({d for d, _ in first_seed}, dataset_order())
    models = ordered({m for _, m in first_seed}, model_order())
    fig, axes = plt.subplots(len(datasets), len(models), figsize=(3.2 * len(models), 2.4 * len(datasets) + 0.6), squeeze=False)
    for r, d in enumerate(datasets):
        for c, m in enumerate(models):
            ax = axes[r, c]
            if (d, m) not in first_seed:
                ax.axis("off")
                continue
            summary, path = first_seed[(d, m)]
            h = load_history(path)
            cols, ylabel = _curve(summary.get("model_name", m))
            for col in (cols if isinstance(cols, tuple) else (cols,)):
                if col in h.columns:
                    ax.plot(h["step"], h[col], label=col, linewidth=1)
            if isinstance(cols, tuple):
                ax.legend(fontsize=6)
            ax.set_title(wrap(f"{dataset_name(d)} — {summary.get('label', m)}", 3.0, 7), fontsize=7)
            ax.set_xlabel("step", fontsize=7)
            ax.set_ylabel(ylabel, fontsize=7)
            ax.tick_params(labelsize=6)
    standin = [dataset_name(d) for d in datasets if labels.is_standin(d)]
    title = "Training curves, each model's own objective" + (f" (stand-in data: {', '.join(standin)})" if standin else "")
    fig.suptitle(wrap(title, 3.2 * len(models) - 0.2, 9), fontsize=9)
    fig.tight_layout()
    return save(fig, out)


# ---------------------------------------------------------------------------------------------- all of them


def write_figures(tidy: pd.DataFrame | str | Path, figure_arrays: list[Path], histories: list[tuple[dict[str, Any], Path]],
                  out_dir: str | Path, labels: dict[str, str]) -> list[Path]:
    """Every figure as PNG in ``out_dir``; returns the paths written.

    Per dataset and model: generation_<d>_<m>.png; per dataset: reconstruction_<d>.png, completion_<d>.png,
    superres_<d>.png (stand-ins with a 2x truth), mixture_maps_<d>.png; across datasets: figure7_psnr.png (from the tidy table), training_curves.png.
    ``figure_arrays``: figures.npz files (each names its dataset and model); ``histories``: (train.json
    record, history.csv path) pairs.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = read_tidy(tidy)
    lab = Labels(labels)
    by_dataset: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for path in figure_arrays:
        a = load_arrays(path)
        d, m = str(a["dataset"]), str(a["model"])
        by_dataset.setdefault(d, {}).setdefault(m, a)  # the first seed
    written: list[Path | None] = []
    for d in ordered(by_dataset, dataset_order()):
        per_model, title = by_dataset[d], lab(d)
        for m in ordered(per_model, model_order()):
            written.append(generation_figure(per_model[m], title, out_dir / f"generation_{d}_{m}.png"))
        written.append(reconstruction_figure(per_model, title, out_dir / f"reconstruction_{d}.png"))
        written.append(completion_figure(per_model, title, out_dir / f"completion_{d}.png"))
        written.append(superres_figure(per_model, title, out_dir / f"superres_{d}.png"))
        written.append(maps_figure(per_model, title, out_dir / f"mixture_maps_{d}.png"))
    written.append(psnr_figure(t, lab, out_dir / "figure7_psnr.png"))
    written.append(training_curves_figure(histories, lab, out_dir / "training_curves.png"))
    return [p for p in written if p is not None]
