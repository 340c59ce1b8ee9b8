"""Samples as pictures, and the drawing helpers every figure shares (PNG, Agg backend).

One function turns any sample into a picture (``to_rgb``): images as they are, ERA5 fields through a
temperature colour map in kelvin, voxel grids thresholded at 0.5 and rendered upright as a depth-shaded oblique
view. The figures themselves are ``vamoh.report.figures`` and ``vamoh.report.ablation_figures``.
"""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..io import atomic_write  # noqa: E402

FIELD_CMAP = "RdYlBu_r"  # ERA5 temperature
MISSING_GREY = 0.6


# ---------------------------------------------------------------------------------------------- inputs


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of one figures.npz; a clear error naming the file when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"figure arrays not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read figure arrays {path}: {err}") from None


def load_history(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training history not found: {path}")
    frame = pd.read_csv(path)
    if "loss" not in frame.columns:
        raise ValueError(f"{path}: no column 'loss' (has {list(frame.columns)})")
    return frame


# ---------------------------------------------------------------------------------------------- arrays -> pictures


def float01(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else np.nan_to_num(np.clip(a.astype(np.float32), 0.0, 1.0))


def render_voxels(occupancy: np.ndarray, size: int = 96, threshold: float = 0.5) -> np.ndarray:
    """An upright, depth-shaded oblique view of a voxel grid (X, Y, Z) with y up -> (size, size, 3) in [0, 1].

    Occupied voxels (> ``threshold``) are rotated 35° about the vertical axis and tilted 20° towards the
    viewer, projected orthographically and z-buffered; nearer voxels are brighter. White background.
    """
    occ = np.asarray(occupancy, dtype=np.float32)
    out = np.ones((size, size, 3), np.float32)
    idx = np.argwhere(occ > threshold)
    if idx.size == 0:
        return out
    n = np.array(occ.shape, dtype=np.float32)
    p = (idx + 0.5) / n * 2 - 1  # centres in [-1, 1]^3: (x, y, z), y up
    a, b = math.radians(35), math.radians(20)
    x = p[:, 0] * math.cos(a) + p[:, 2] * math.sin(a)
    z = -p[:, 0] * math.sin(a) + p[:, 2] * math.cos(a)
    y = p[:, 1] * math.cos(b) - z * math.sin(b)
    depth = p[:, 1] * math.sin(b) + z * math.cos(b)  # larger = nearer the viewer
    scale = (size - 4) / 3.6
    u = np.clip(np.round(x * scale + size / 2).astype(int), 0, size - 2)
    v = np.clip(np.round(-y * scale + size / 2).astype(int), 0, size - 2)
    zbuf = np.full((size, size), -np.inf, np.float32)
    for du in (0, 1):  # splat each voxel on 2x2 pixels
        for dv in (0, 1):
            np.maximum.at(zbuf, (v + dv, u + du), depth)
    hit = np.isfinite(zbuf)
    shade = 0.25 + 0.75 * (zbuf - depth.min()) / max(float(depth.max() - depth.min()), 1e-6)
    base = np.array([0.30, 0.45, 0.75], np.float32)
    out[hit] = base * shade[hit, None] + (1 - base) * 0.15
    return np.clip(out, 0, 1)


def to_rgb(a: np.ndarray, kind: str) -> np.ndarray:
    """One sample (*grid, f) -> (h, w, 3) float in [0, 1]: images as they are, fields through the temperature
    colour map (normalised scale), voxels rendered upright."""
    x = float01(a)
    if kind == "voxels":
        return render_voxels(x[..., 0])
    if x.ndim != 3:
        raise ValueError(f"cannot draw an array of shape {x.shape} (expected (*grid, f))")
    if x.shape[-1] == 3:
        return x
    if kind == "field":
        return matplotlib.colormaps[FIELD_CMAP](x[..., 0])[..., :3]
    return np.repeat(x, 3, axis=-1)


def kind_of(arrays: dict[str, np.ndarray]) -> str:
    some = next(arrays[k] for k in ("ground_truth", "samples_1x") if k in arrays)
    if some.ndim == 5:
        return "voxels"
    return "image" if some.shape[-1] == 3 else "field"


# ---------------------------------------------------------------------------------------------- drawing helpers


def wrap(text: str, width_in: float, fontsize: float) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``fontsize`` points (an average glyph is
    about 0.55 em wide), so long stand-in labels wrap instead of running off the figure."""
    chars = max(12, int(width_in * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.wrap(text, chars, break_long_words=False, break_on_hyphens=False)) or text


def save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


def off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def mosaic(pics: list[np.ndarray], cols: int, pad: int = 1) -> np.ndarray:
    """Pictures (h, w, 3) tiled ``cols`` per row on a white background."""
    h, w = pics[0].shape[:2]
    rows = math.ceil(len(pics) / cols)
    out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), np.float32)
    for i, p in enumerate(pics):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = p
    return out


def layout(fig, kind: str) -> None:
    """tight_layout, leaving a strip on the right for the temperature colour bar of field figures."""
    from ..data import to_kelvin

    if kind != "field":
        fig.tight_layout()
        return
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    cax = fig.add_axes((0.9, 0.2, 0.018, 0.6))
    sm = matplotlib.cm.ScalarMappable(cmap=FIELD_CMAP, norm=matplotlib.colors.Normalize(float(to_kelvin(0.0)), float(to_kelvin(1.0))))
    fig.colorbar(sm, cax=cax).set_label("temperature (K)", fontsize=8)
    cax.tick_params(labelsize=7)


def grid_figure(rows: list[tuple[str, list[np.ndarray]]], title: str, kind: str, col_titles: list[str] | None = None):
    """One row of pictures per entry: (row label, [rgb, ...])."""
    ncol = max(len(p) for _, p in rows)
    aspect = rows[0][1][0].shape[1] / rows[0][1][0].shape[0]
    width = 1.3 * aspect * ncol + 1.6 + (0.8 if kind == "field" else 0)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(width, 1.35 * len(rows) + 0.8), squeeze=False)
    for r, (label, pics) in enumerate(rows):
        for c in range(ncol):
            ax = axes[r, c]
            off(ax)
            if c < len(pics):
                ax.imshow(pics[c], interpolation="nearest")
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
            if r == 0 and col_titles and c < len(col_titles) and col_titles[c]:
                ax.set_title(col_titles[c], fontsize=8)
    fig.suptitle(wrap(title, width - 0.2, 9), fontsize=9)
    layout(fig, kind)
    return fig
