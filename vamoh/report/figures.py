"""The paper's figures from figures.npz, the tidy table and the training histories (PNG, Agg backend).

Every array is turned into an RGB picture by one function (``to_rgb``): images as they are, ERA5
temperature fields through a colour map, voxel grids as a maximum projection along the first axis,
so that grids of any dataset are drawn the same way. Figure titles carry each dataset's label and
say "stand-in data" whenever the data is a stand-in.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..eval import keys  # noqa: E402
from ..io import atomic_write  # noqa: E402
from .reference import DATASET_ORDER, MODEL_ORDER, dataset_name, model_name, ordered  # noqa: E402
from .tables import combine, normalise_tidy  # noqa: E402

MAX_COLUMNS = 6  # samples shown per row
COMPLETION_TASKS = ("centre", "half", "outpaint")
FIELD_CMAP = "RdYlBu_r"  # ERA5 temperature
MISSING_GREY = 0.6
RECON_ORDER = ("vamoh", "functa")  # the paper's reconstruction figures: ground truth, VAMoH, Functa (3), Functa (10)
PALETTE = dict(zip(MODEL_ORDER, sns.color_palette(n_colors=len(MODEL_ORDER))))  # one colour per model in every plot


# ---------------------------------------------------------------------------------------------- inputs


def load_arrays(path: str | Path, dataset: str, model: str) -> dict[str, np.ndarray]:
    """Every array of one figures.npz; a clear error naming the file when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"figure arrays for ({dataset}, {model}) not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"figure arrays for ({dataset}, {model}): cannot read {path}: {err}") from None


def _need(arrays: dict[str, np.ndarray], key: str, path: Path) -> np.ndarray:
    if key not in arrays:
        raise KeyError(f"{path}: no array {key!r} (has {sorted(arrays)})")
    return arrays[key]


def load_history(path: str | Path, dataset: str, model: str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training history for ({dataset}, {model}) not found: {path}")
    frame = pd.read_csv(path)
    if "loss" not in frame.columns:
        raise ValueError(f"{path}: no column 'loss' (has {list(frame.columns)})")
    return frame


class Labels:
    """Titles per dataset: the given label, else the tidy table's data_label; "stand-in data" named when it is."""

    def __init__(self, tidy: pd.DataFrame, labels: dict[str, str]) -> None:
        self.standin = {d: bool(g["is_standin"].any()) for d, g in tidy.groupby("dataset")}
        self.given = dict(labels)
        self.tidy_label = {d: next((x for x in g["data_label"] if x), "") for d, g in tidy.groupby("dataset")}

    def is_standin(self, d: str) -> bool:
        return self.standin.get(d, False) or "stand-in" in self.given.get(d, "").lower()

    def __call__(self, d: str) -> str:
        label = self.given.get(d) or self.tidy_label.get(d) or dataset_name(d)
        if self.is_standin(d) and "stand-in" not in label.lower():
            label += " [stand-in data]"
        return label


# ---------------------------------------------------------------------------------------------- arrays -> pictures


def _is_voxels(a: np.ndarray) -> bool:
    return a.ndim == 4  # one sample (D, H, W, f)


def to_rgb(a: np.ndarray, dataset: str) -> np.ndarray:
    """One sample (*grid, f) -> (h, w, 3) float in [0, 1].

    Images (H, W, 3) as they are; (H, W, 1) through the ERA5 colour map (or grey for other datasets);
    voxels (D, H, W, 1) as the maximum occupancy along D.
    """
    a = np.asarray(a, dtype=np.float32)
    if _is_voxels(a):
        a = a[..., 0].max(axis=0)[..., None]  # (H, W, 1)
    if a.ndim != 3:
        raise ValueError(f"{dataset}: cannot draw an array of shape {a.shape} (expected (*grid, f))")
    a = np.nan_to_num(np.clip(a, 0.0, 1.0))
    if a.shape[-1] == 3:
        return a
    if a.shape[-1] != 1:
        raise ValueError(f"{dataset}: cannot draw {a.shape[-1]} channels (expected 1 or 3)")
    if dataset == "era5":
        return matplotlib.colormaps[FIELD_CMAP](a[..., 0])[..., :3]
    return np.repeat(a, 3, axis=-1)


def _surface(field: np.ndarray, occupancy: np.ndarray) -> np.ndarray:
    """A per-voxel map (D, H, W) seen along D: the value at the first occupied voxel, NaN where none is."""
    occ = occupancy > 0.5
    first = occ.argmax(axis=0)  # (H, W)
    picked = np.take_along_axis(field, first[None], axis=0)[0].astype(np.float32)
    picked[~occ.any(axis=0)] = np.nan
    return picked


def map_to_rgb(m: np.ndarray, kind: str, truth: np.ndarray | None = None, k: int | None = None) -> np.ndarray:
    """An entropy map (viridis) or segmentation map (tab10 per component) -> (h, w, 3); voxel maps as seen from the front."""
    m = np.asarray(m)
    if m.ndim == 3:  # voxels: needs the occupancy to know which voxel is seen
        m = _surface(m, truth[..., 0] if truth is not None else np.ones(m.shape))
    m = m.astype(np.float32)
    empty = np.isnan(m)
    if kind == "entropy":
        hi = math.log(k) if k and k > 1 else (float(np.nanmax(m)) if (~empty).any() else 1.0) or 1.0
        rgb = matplotlib.colormaps["viridis"](np.clip(np.nan_to_num(m) / hi, 0, 1))[..., :3]
    else:
        rgb = matplotlib.colormaps["tab10"](np.nan_to_num(m).astype(int) % 10)[..., :3]
    rgb[empty] = 1.0
    return rgb


# ---------------------------------------------------------------------------------------------- drawing helpers


def _wrap(text: str, width_in: float, fontsize: float) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``fontsize`` points (an average glyph is
    about 0.55 em wide), so long stand-in labels wrap instead of running off the figure."""
    chars = max(12, int(width_in * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.wrap(text, chars, break_long_words=False, break_on_hyphens=False)) or text


def _grid_figure(rows: list[tuple[str, list[np.ndarray]]], title: str, col_titles: list[str] | None = None):
    """One row of pictures per entry: (row label, [rgb, ...])."""
    ncol = max(len(p) for _, p in rows)
    width = 1.3 * ncol + 1.2
    fig, axes = plt.subplots(len(rows), ncol, figsize=(width, 1.35 * len(rows) + 0.7), squeeze=False)
    for r, (label, pics) in enumerate(rows):
        for c in range(ncol):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if c < len(pics):
                ax.imshow(pics[c], interpolation="nearest")
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
            if r == 0 and col_titles and c < len(col_titles) and col_titles[c]:
                ax.set_title(col_titles[c], fontsize=8)
    fig.suptitle(_wrap(title, width - 0.2, 9), fontsize=9)
    fig.tight_layout()
    return fig


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


def _pics(arr: np.ndarray, dataset: str, n: int) -> list[np.ndarray]:
    return [to_rgb(arr[i], dataset) for i in range(min(n, len(arr)))]


# ---------------------------------------------------------------------------------------------- figures


def generation_figure(dataset: str, arrays: dict[str, tuple[Path, dict[str, np.ndarray]]], title: str, out: Path) -> Path:
    """Samples at 1x and at 2x (same latents), one row per model (Figures 15, 17, 19)."""
    k = MAX_COLUMNS // 2
    rows = []
    for model in ordered(arrays, MODEL_ORDER):
        path, a = arrays[model]
        rows.append((model_name(model), _pics(_need(a, "samples_1x", path), dataset, k) + _pics(_need(a, "samples_2x", path), dataset, k)))
    cols = ["1x"] + [""] * (k - 1) + ["2x"] + [""] * (k - 1)
    return _save(_grid_figure(rows, f"Generation at 1x and 2x — {title}", cols), out)


_RECON = re.compile(r"^recon_(1x|2x)(?:_steps(\d+))?$")


def reconstruction_figure(dataset: str, arrays: dict[str, tuple[Path, dict[str, np.ndarray]]], title: str, out: Path) -> Path | None:
    """Ground truth, then each model's reconstructions at 1x and super-reconstructions at 2x (Figures 6, 21, 23)."""
    found: dict[str, list[tuple[str, str, Path, str]]] = {"1x": [], "2x": []}
    truth = None
    for model in ordered(arrays, RECON_ORDER):
        path, a = arrays[model]
        for key in sorted(a, key=lambda s: (len(s), s)):
            m = _RECON.match(key)
            if m:
                name = f"{model_name(model)} ({m.group(2)})" if m.group(2) else model_name(model)
                found[m.group(1)].append((name, model, path, key))
        if truth is None and "ground_truth" in a:
            truth = a["ground_truth"]
    if truth is None or not found["1x"]:
        return None
    rows = [("Ground truth", _pics(truth, dataset, MAX_COLUMNS))]
    for scale in ("1x", "2x"):
        rows += [(f"{name} {scale}", _pics(arrays[model][1][key], dataset, MAX_COLUMNS)) for name, model, _, key in found[scale]]
    return _save(_grid_figure(rows, f"Reconstruction (1x) and super-reconstruction (2x) — {title}"), out)


def completion_figure(dataset: str, arrays: dict[str, tuple[Path, dict[str, np.ndarray]]], title: str, out: Path) -> Path | None:
    """Per task: the observed input (missing region grey), then each model's completion."""
    models = [m for m in ordered(arrays, RECON_ORDER) if any(f"completion_{t}" in arrays[m][1] for t in COMPLETION_TASKS)]
    if not models:
        return None
    first_path, first = arrays[models[0]]
    truth = _need(first, "ground_truth", first_path)
    n = min(MAX_COLUMNS, len(truth))
    rows = [("Ground truth", _pics(truth, dataset, n))]
    for task in COMPLETION_TASKS:
        key = f"completion_{task}"
        if key not in first:
            continue
        mask = _need(first, f"{key}_mask", first_path).astype(bool)  # (*grid), True = observed
        inputs = []
        for pic in _pics(truth, dataset, n):
            pic = pic.copy()
            pic[~mask] = MISSING_GREY
            inputs.append(pic)
        rows.append((f"Input ({task})", inputs))
        rows += [(f"{model_name(m)} ({task})", _pics(arrays[m][1][key], dataset, n)) for m in models if key in arrays[m][1]]
    return _save(_grid_figure(rows, f"Completion (grey = missing) — {title}"), out)


def maps_figure(dataset: str, arrays: dict[str, tuple[Path, dict[str, np.ndarray]]], title: str, out: Path) -> Path | None:
    """VAMoH's mixture: ground truth, reconstruction, per-point entropy and segmentation (Figures 10, 25)."""
    models = [m for m in ordered(arrays, MODEL_ORDER) if "entropy" in arrays[m][1]]
    if not models:
        return None
    rows = []
    for m in models:
        path, a = arrays[m]
        truth = _need(a, "ground_truth", path)
        ent, seg = _need(a, "entropy", path), _need(a, "segmentation", path)
        n = min(MAX_COLUMNS, len(truth))
        k = int(seg.max()) + 1 if seg.size else None
        rows.append(("Ground truth", _pics(truth, dataset, n)))
        if "recon_1x" in a:
            rows.append((f"{model_name(m)} recon.", _pics(a["recon_1x"], dataset, n)))
        rows.append(("Entropy", [map_to_rgb(ent[i], "entropy", truth[i], k) for i in range(n)]))
        rows.append(("Segmentation", [map_to_rgb(seg[i], "segmentation", truth[i]) for i in range(n)]))
    return _save(_grid_figure(rows, f"Mixture entropy and segmentation — {title}"), out)


def psnr_figure(tidy: pd.DataFrame, labels: Labels, out: Path) -> Path | None:
    """Figure 7: PSNR of test reconstructions per model, one panel per dataset; boxes from per-sample
    values when the tidy table has them, else mean ± std error bars."""
    rows = tidy[(tidy["metric"] == keys.PSNR) & tidy["mean"].notna()]
    datasets = ordered(rows["dataset"], DATASET_ORDER)
    if not datasets:
        return None
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, len(datasets), figsize=(3.2 * len(datasets), 3.4), squeeze=False)
        for ax, d in zip(axes[0], datasets):
            sel = rows[rows["dataset"] == d]
            models = ordered(sel["model"], MODEL_ORDER)
            for i, m in enumerate(models):
                r = sel[sel["model"] == m]
                vals = np.asarray([x for v in r["values"] for x in v], dtype=float)
                vals = vals[np.isfinite(vals)]
                colour = PALETTE.get(m, "grey")
                if vals.size > 1:
                    ax.boxplot([vals], positions=[i], widths=0.6, patch_artist=True, boxprops={"facecolor": colour, "alpha": 0.6})
                else:
                    st = combine(r)
                    if st is not None and st.mean is not None and math.isfinite(st.mean):
                        ax.errorbar([i], [st.mean], yerr=[st.std or 0.0], fmt="o", color=colour, capsize=4)
            ax.set_xticks(range(len(models)), [model_name(m) for m in models])
            ax.set_xlim(-0.7, len(models) - 0.3)
            ax.set_ylabel("PSNR (dB)")
            ax.set_title(_wrap(labels(d), 3.0, 8), fontsize=8)
    standin = [dataset_name(d) for d in datasets if labels.is_standin(d)]
    title = "Figure 7: reconstruction PSNR on the test set" + (f" (stand-in data: {', '.join(standin)})" if standin else "")
    fig.suptitle(_wrap(title, 3.2 * len(datasets) - 0.2, 9), fontsize=9)
    fig.tight_layout()
    return _save(fig, out)


def training_curves_figure(histories: dict[tuple[str, str], Path], labels: Labels, out: Path) -> Path | None:
    """Training loss against step, one panel per dataset, one line per model (each model's own objective)."""
    if not histories:
        return None
    datasets = ordered([d for d, _ in histories], DATASET_ORDER)
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.6 * len(datasets), 3.2), squeeze=False)
    for ax, d in zip(axes[0], datasets):
        for m in ordered([m for dd, m in histories if dd == d], MODEL_ORDER):
            h = load_history(histories[(d, m)], d, m)
            x = h["step"] if "step" in h.columns else np.arange(len(h))
            ax.plot(x, h["loss"], label=model_name(m), color=PALETTE.get(m), linewidth=1)
        ax.set_yscale("symlog")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.set_title(_wrap(labels(d), 3.4, 8), fontsize=8)
        ax.legend(fontsize=7)
    standin = [dataset_name(d) for d in datasets if labels.is_standin(d)]
    title = "Training curves" + (f" (stand-in data: {', '.join(standin)})" if standin else "")
    fig.suptitle(_wrap(title, 3.6 * len(datasets) - 0.2, 9), fontsize=9)
    fig.tight_layout()
    return _save(fig, out)


# ---------------------------------------------------------------------------------------------- all of them


def write_figures(tidy: pd.DataFrame, figure_arrays: dict[tuple[str, str], str | Path], histories: dict[tuple[str, str], str | Path],
                  out_dir: str | Path, labels: dict[str, str]) -> list[Path]:
    """Every figure as PNG in ``out_dir``; returns the paths written.

    Per dataset: generation_<d>.png, and where the arrays allow reconstruction_<d>.png, completion_<d>.png,
    mixture_maps_<d>.png. Across datasets: figure7_psnr.png (from the tidy table), training_curves.png.
    """
    out_dir = Path(out_dir)
    t = normalise_tidy(tidy)
    lab = Labels(t, labels)
    by_dataset: dict[str, dict[str, tuple[Path, dict[str, np.ndarray]]]] = {}
    for (d, m), path in figure_arrays.items():
        by_dataset.setdefault(d, {})[m] = (Path(path), load_arrays(path, d, m))
    written: list[Path | None] = []
    for d in ordered(by_dataset, DATASET_ORDER):
        arrays, title = by_dataset[d], lab(d)
        written.append(generation_figure(d, arrays, title, out_dir / f"generation_{d}.png"))
        written.append(reconstruction_figure(d, arrays, title, out_dir / f"reconstruction_{d}.png"))
        written.append(completion_figure(d, arrays, title, out_dir / f"completion_{d}.png"))
        written.append(maps_figure(d, arrays, title, out_dir / f"mixture_maps_{d}.png"))
    written.append(psnr_figure(t, lab, out_dir / "figure7_psnr.png"))
    written.append(training_curves_figure({k: Path(v) for k, v in histories.items()}, lab, out_dir / "training_curves.png"))
    return [p for p in written if p is not None]
