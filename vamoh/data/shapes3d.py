"""Shapes3D: 64x64 RGB renders of a shape in a room over a full grid of six factors.

Real format: ``3dshapes.h5`` with ``images`` (480000, 64, 64, 3) uint8 and ``labels`` (480000, 6)
float64, rows in row-major factor order (orientation fastest). The file is 5.9 GB, so it is read
lazily: only the rows of the requested splits, block by block.

Split (original VAMoH code): shuffle all rows with seed 0, keep the first ``subset`` fraction
(10% by default), cut that 80/10/10 in order. A file with other than 480,000 rows is read with a
``DataWarning``; one too small for the rule (a split would be empty) is a ``DataError``.

Stand-in: a procedural 2-D renderer over the exact factor grid (wall with a room corner that moves
with orientation, floor trapezoid, a shaded cube/cylinder/sphere/capsule scaled by ``scale``), so
labels and split indices follow the h5 convention. It also records each pixel's true part (wall,
floor, object: ``PART_NAMES``), which the evaluation compares with VAMoH's segmentation maps.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..checks import DataError
from .files import check_array, check_count, check_file
from .spec import SPLITS, DatasetSpec, RawSplits, SuperResTruth, cap, check_superres_count, fraction_split

if TYPE_CHECKING:
    from .config import DataConfig

FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
FACTOR_VALUES = (
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.75, 1.25, 8),
    np.arange(4, dtype=np.float64),  # 0 cube, 1 cylinder, 2 sphere, 3 capsule
    np.linspace(-30.0, 30.0, 15),
)
N_IMAGES = math.prod(FACTOR_SIZES)  # 480000
H5_NAME = "3dshapes.h5"
READ_BLOCK = 4096  # rows per sequential read: 50 MB of images

SPEC = DatasetSpec(
    name="shapes3d",
    label="Shapes3D",
    kind="image",
    coord_system="grid",
    grid_shape=(64, 64),
    feature_dim=3,
    likelihood="discretized_logistic",
    formats=("h5",),
    split_rule="shuffle with split_seed (0), keep the first `subset` (10%), 80/10/10 in order",
    standin="synthetic procedural renders over the 3dshapes factor grid",
    standin_sizes=(1000, 125, 125),
    paper_batch_size=64,
    short_name="Shapes3D",
    paper_order=2,
)


def split_indices(n: int, subset: float, seed: int) -> dict[str, np.ndarray]:
    """Row indices of each split for a file of ``n`` rows (the original code's rule)."""
    perm = np.random.RandomState(seed).permutation(n)
    keep = perm[: max(1, int(round(subset * n)))]
    return dict(zip(SPLITS, (keep[idx] for idx in fraction_split(len(keep), (0.8, 0.1, 0.1)))))


def factors_of(index: np.ndarray) -> np.ndarray:
    """Row indices (N,) of the full factor grid -> labels (N, 6) in the h5 convention."""
    codes = np.unravel_index(np.asarray(index), FACTOR_SIZES)
    return np.stack([FACTOR_VALUES[k][c] for k, c in enumerate(codes)], axis=-1)


# ----------------------------------------------------------------------------- stand-in renderer


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """One HSV colour (each in [0, 1]) as RGB (3,)."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


PART_NAMES = ("wall", "floor", "object")  # the stand-in's true parts: label 0, 1, 2 per pixel
WALL, FLOOR, OBJECT = range(3)


def _render(labels: np.ndarray, size: int, supersample: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels (6,) -> image (size, size, 3) uint8 and its parts (size, size) int8 (``PART_NAMES``).

    Rendered at ``supersample`` x and box-averaged; a pixel's part is the part most of its sub-pixels show (a tie
    goes to the later part: object over floor over wall). The object's shadow darkens the floor: it is floor.
    """
    floor_hue, wall_hue, object_hue, scale, shape, orientation = labels
    n = size * supersample
    # Sub-pixel centres in 64-px units, whatever the size: sub-pixel j spans [j, j + 1) * 64 / n, so its centre is
    # j * 64 / n + 32 / n (at size 64 the same floats as j / n * 64 + 0.5 / supersample, the stored renders' rule).
    y, x = np.mgrid[0:n, 0:n].astype(np.float64) / n * 64.0 + 32.0 / n
    theta = math.radians(orientation)
    horizon = 34.0
    part = np.full((n, n), WALL, dtype=np.int8)
    # Wall: the room's back corner slides sideways as the camera turns; the two faces shade differently.
    corner = 32.0 - 0.9 * orientation
    wall = _hsv(wall_hue, 0.8, 0.9)
    img = np.where((x < corner)[..., None], wall * (0.8 + 0.003 * orientation), wall * (0.95 - 0.003 * orientation))
    # Floor: a trapezoid widening towards the viewer, darker near the horizon.
    half_width = 20.0 + (y - horizon) * 1.6
    floor = (y >= horizon) & (np.abs(x - corner * 0.5 - 16.0) <= half_width)
    shade = 0.7 + 0.3 * np.clip((y - horizon) / 30.0, 0, 1)
    img = np.where(floor[..., None], _hsv(floor_hue, 0.8, 0.85) * shade[..., None], img)
    part[floor] = FLOOR
    # Object, standing on the floor at the centre, with a soft shadow.
    s = 9.0 * scale
    base, cx = 54.0, 32.0
    shadow = ((x - cx) / (1.4 * s)) ** 2 + ((y - base) / (0.35 * s)) ** 2 <= 1.0
    img = np.where(shadow[..., None], img * 0.6, img)
    colour = _hsv(object_hue, 0.85, 0.95)
    u = (x - cx) / s  # horizontal position in object units
    if shape == 0:  # cube: front and side faces whose widths follow the rotation, plus a lit top
        c, sn = abs(math.cos(theta)), abs(math.sin(theta))
        left = -(c + sn)
        front = (u >= left) & (u < left + 2 * c) & (y <= base) & (y >= base - 2 * s)
        side = (u >= left + 2 * c) & (u <= c + sn) & (y <= base) & (y >= base - 2 * s)
        top = (u >= left) & (u <= c + sn) & (y < base - 2 * s) & (y >= base - 2.4 * s)
        for mask, light in ((front, 1.0), (side, 0.7), (top, 1.15)):
            img = np.where(mask[..., None], np.clip(colour * light, 0, 1), img)
            part[mask] = OBJECT
    elif shape == 1:  # cylinder: body shaded across its width, elliptic top
        body = (np.abs(u) <= 0.9) & (y <= base) & (y >= base - 2 * s)
        top = (u / 0.9) ** 2 + ((y - (base - 2 * s)) / (0.3 * s)) ** 2 <= 1.0
        img = np.where(body[..., None], colour * (0.55 + 0.45 * np.sqrt(np.clip(1 - (u / 0.9) ** 2, 0, 1)))[..., None], img)
        img = np.where(top[..., None], np.clip(colour * 1.15, 0, 1), img)
        part[body | top] = OBJECT
    elif shape == 2:  # sphere: Lambert shading with light from the upper left
        v = (y - (base - s)) / s
        r2 = u**2 + v**2
        nz = np.sqrt(np.clip(1 - r2, 0, 1))
        light = np.clip(0.25 + 0.75 * (-0.4 * u - 0.4 * v + 0.82 * nz), 0, 1.1)
        img = np.where((r2 <= 1.0)[..., None], np.clip(colour * light[..., None], 0, 1), img)
        part[r2 <= 1.0] = OBJECT
    else:  # capsule: upright rounded rod
        r = 0.6
        v = (y - (base - s)) / s  # -1 at top, +1 at the floor
        core = np.clip(v, -1 + r, 1 - r)
        inside = u**2 + (v - core) ** 2 <= r**2
        img = np.where(inside[..., None], colour * (0.55 + 0.45 * np.sqrt(np.clip(1 - (u / r) ** 2, 0, 1)))[..., None], img)
        part[inside] = OBJECT
    img = img.reshape(size, supersample, size, supersample, 3).mean(axis=(1, 3))
    votes = np.stack([(part == k) for k in range(len(PART_NAMES))], axis=-1).reshape(size, supersample, size, supersample, -1).sum(axis=(1, 3))
    parts = (len(PART_NAMES) - 1 - votes[..., ::-1].argmax(axis=-1)).astype(np.int8)  # argmax's first maximum, counted from the last part
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8), parts


def render(labels: np.ndarray, size: int = 64, supersample: int = 2) -> np.ndarray:
    """Labels (6,) -> image (size, size, 3) uint8. Rendered at ``supersample`` x and box-averaged; the scene spans the
    image whatever ``size`` is (pixel k of a ``size`` render covers [k, k + 1) * 64 / size in 64-px units)."""
    return _render(labels, size, supersample)[0]


def render_parts(labels: np.ndarray, size: int = 64, supersample: int = 2) -> np.ndarray:
    """Labels (6,) -> the render's true parts (size, size) int8: 0 wall, 1 floor, 2 object (``PART_NAMES``)."""
    return _render(labels, size, supersample)[1]


def render_rows(index: np.ndarray, with_parts: bool = False) -> tuple[np.ndarray, ...]:
    """Row indices (N,) -> images (N, 64, 64, 3) uint8, labels (N, 6) float64[, parts (N, 64, 64) int8]."""
    labels = factors_of(index)
    done = [_render(l, 64, 2) for l in labels]
    images = np.stack([d[0] for d in done]) if done else np.zeros((0, 64, 64, 3), np.uint8)
    if not with_parts:
        return images, labels
    parts = np.stack([d[1] for d in done]) if done else np.zeros((0, 64, 64), np.int8)
    return images, labels, parts


def render_superres(cfg: DataConfig, split: str, count: int, factor: int) -> SuperResTruth:
    """The first ``count`` samples of the stand-in's ``split`` rendered at ``64 * factor`` px from the same factor labels,
    with the stored renders' 2x2 supersampling: (count, 64 * factor, 64 * factor, 3) uint8, cell-centred.

    Block-averaging ``factor`` x ``factor`` pixels gives the stored render up to its own sampling and rounding:
    tests/test_data_superres.py measures the difference (0..255 levels) and bounds it. Costs ``factor**2`` times the
    stored render per sample (the same 2x2 sub-pixels per output pixel).
    """
    rows = _standin_rows(cfg)[split]
    check_superres_count(SPEC.label, split, count, len(rows))
    size = 64 * factor
    values = np.stack([_render(labels, size, 2)[0] for labels in factors_of(rows[:count])])
    return SuperResTruth(values, f"Shapes3D scenes rendered from the same factor labels at {size}x{size} with 2x2 "
                                 f"supersampling (box-averaged), as the stored 64x64 ones are")


def _standin_rows(cfg: DataConfig) -> dict[str, np.ndarray]:
    sizes = dict(zip(SPLITS, SPEC.standin_sizes))
    rows = split_indices(N_IMAGES, cfg.subset, cfg.split_seed)
    # cfg.seed picks which rows of each split the stand-in renders (the split itself is split_seed's).
    rng = np.random.default_rng(cfg.seed)
    out = {}
    for split in SPLITS:
        n = getattr(cfg, f"n_{split}")
        n = sizes[split] if n is None else n
        out[split] = rows[split] if cfg.seed == 0 else rng.permutation(rows[split])
        out[split] = out[split][:n]
    return out


def build_standin(cfg: DataConfig) -> RawSplits:
    arrays, labels, parts = {}, {}, {}
    for split, rows in _standin_rows(cfg).items():
        arrays[split], labels[split], parts[split] = render_rows(rows, with_parts=True)
    return RawSplits(arrays, labels, meta={"factor_names": list(FACTOR_NAMES), "part_names": list(PART_NAMES)}, parts=parts)


# ----------------------------------------------------------------------------- real format


def detect_format(root: Path) -> str:
    return "h5"


def _h5_path(path: str) -> Path:
    p = check_file(path, "Shapes3D file", "data.path")
    if p.is_dir():
        p = p / H5_NAME
        check_file(p, "Shapes3D file", "data.path")
    return p


def _read_rows(images, rows: np.ndarray) -> np.ndarray:
    """images[rows] for an h5 dataset, reading block by block in file order (never the whole file)."""
    out = np.empty((len(rows), *images.shape[1:]), images.dtype)
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    start = 0
    while start < len(sorted_rows):
        block = sorted_rows[start] // READ_BLOCK
        stop = np.searchsorted(sorted_rows, (block + 1) * READ_BLOCK)
        wanted = sorted_rows[start:stop]
        if len(wanted) > READ_BLOCK // 16:  # dense: one sequential read of the block is cheaper
            lo = block * READ_BLOCK
            chunk = images[lo : min(lo + READ_BLOCK, images.shape[0])]
            out[order[start:stop]] = chunk[wanted - lo]
        else:  # sparse: h5py point selection needs increasing, unique indices
            uniq, inverse = np.unique(wanted, return_inverse=True)
            out[order[start:stop]] = images[uniq.tolist()][inverse]
        start = stop
    return out


def _check_split_sizes(path: Path, n_rows: int, rows: dict[str, np.ndarray], cfg: DataConfig) -> None:
    """The 80/10/10 rule on ``n_rows`` must leave every split a row, unless its n_* asks for none."""
    empty = [s for s in SPLITS if len(rows[s]) == 0 and getattr(cfg, f"n_{s}") != 0]
    if empty:
        found = ", ".join(f"{s} {len(rows[s])}" for s in SPLITS)
        raise DataError(
            f"Shapes3D: {path} holds {n_rows:,} rows (expected {N_IMAGES:,}); data.subset={cfg.subset} of them split 80/10/10 "
            f"gives {found}: the {'/'.join(empty)} split would be empty (use a larger subset or file; n_val: 0 runs without validation)"
        )


def load_real(cfg: DataConfig, fmt: str) -> RawSplits:
    import h5py

    path = _h5_path(cfg.path)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"Shapes3D: cannot open {path} as HDF5 ({err}); the file is truncated or corrupt") from None
    with f:
        missing = [k for k in ("images", "labels") if k not in f]
        if missing:
            raise DataError(f"Shapes3D: {path} lacks key(s) {missing}; found keys {sorted(f.keys())}, expected ['images', 'labels']")
        groups = [k for k in ("images", "labels") if not isinstance(f[k], h5py.Dataset)]
        if groups:
            raise DataError(f"Shapes3D: {path} key(s) {groups} are HDF5 groups (holding {sorted(f[groups[0]].keys())[:5]}), expected datasets (arrays)")
        images, labels = f["images"], f["labels"]
        check_array(f"Shapes3D {path} key 'images'", images, (None, 64, 64, 3), ("u",))
        check_array(f"Shapes3D {path} key 'labels'", labels, (images.shape[0], 6), ("f",))
        if images.dtype != np.uint8:
            raise DataError(f"Shapes3D {path} key 'images': dtype {images.dtype}, expected uint8")
        meta = {"file": str(path), "rows": int(images.shape[0]), "factor_names": list(FACTOR_NAMES)}
        check_count(meta, "Shapes3D", path, int(images.shape[0]), N_IMAGES, "rows")
        rows = split_indices(images.shape[0], cfg.subset, cfg.split_seed)
        _check_split_sizes(path, int(images.shape[0]), rows, cfg)
        arrays, labs = {}, {}
        try:
            for split in SPLITS:
                r = cap(rows[split], getattr(cfg, f"n_{split}"))
                arrays[split] = _read_rows(images, r)
                labs[split] = _read_rows(labels, r).astype(np.float64)
        except OSError as err:
            raise DataError(f"Shapes3D: reading {path} failed ({err}); the file is truncated or corrupt") from None
    return RawSplits(arrays, labs, meta=meta)


def write_real(cfg: DataConfig, out_dir: Path, fmt: str) -> Path:
    """A small ``3dshapes.h5`` holding the stand-in's rows in file (factor-grid) order."""
    import h5py

    rows = np.sort(np.concatenate(list(_standin_rows(cfg).values())))
    images, labels = render_rows(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / H5_NAME
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images)
        f.create_dataset("labels", data=labels)
    return path
