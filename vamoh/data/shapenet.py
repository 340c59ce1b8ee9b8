"""ShapeNet chairs as 32^3 occupancy grids.

Real format (GASP): a directory of ``*.pt`` files, one (32, 32, 32) occupancy tensor each. Split
(original VAMoH code): sort the file names, first 80% train, next 10% val, the rest test.
Training batches use 4096 random voxels per sample (paper); evaluation uses all 32,768.

Stand-in: procedural chairs: a seat, four legs (optionally braced) or a pedestal with a star
base, a solid, slatted or framed back that may lean, and optional arm rests. Array axes are
(x, y, z) with y pointing up, like ShapeNet's models. It also records each occupied voxel's true part
(seat, back, legs, arms: ``PART_NAMES``; -1 where empty), which the evaluation compares with VAMoH's
segmentation maps.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..checks import DataError, check_finite
from .files import check_array, list_files, load_tensor, require_dir
from .spec import SPLITS, DatasetSpec, RawSplits, SuperResTruth, cap, check_superres_count, fraction_split

if TYPE_CHECKING:
    from .config import DataConfig

S = 32  # voxels per side

SPEC = DatasetSpec(
    name="shapenet",
    label="ShapeNet chairs 32^3",
    kind="voxels",
    coord_system="grid",
    grid_shape=(S, S, S),
    feature_dim=1,
    likelihood="bernoulli",
    formats=("pt",),
    split_rule="sorted file names, 80/10/10 in order",
    standin="synthetic procedural voxel chairs",
    standin_sizes=(800, 100, 100),
    paper_batch_size=22,
    train_points=4096,
    short_name="ShapeNet",
    paper_order=5,
)


PART_NAMES = ("seat", "back", "legs", "arms")  # the stand-in's true parts: label 0..3 per occupied voxel, -1 empty
SEAT, BACK, LEGS, ARMS = range(4)  # legs: legs, stretchers, pedestal column and base; arms: arm rests and their posts


def _box(v: np.ndarray, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, parts: np.ndarray | None = None, part: int = -1) -> None:
    """Fill the voxels whose index lies in [x0, x1) x [y0, y1) x [z0, z1) (clamped to the grid); label them ``part``
    in ``parts`` when given (a later box relabels the voxels it shares with an earlier one).

    The bounds are in 32-voxel units; on a grid of side 32 * f they are scaled by f first, so the box covers the
    same space at every resolution (a voxel is in when its centre is, up to rounding ties)."""
    f = v.shape[0] // S
    lo = [max(0, int(round(a * f))) for a in (x0, y0, z0)]
    hi = [min(S * f, int(round(b * f))) for b in (x1, y1, z1)]
    if all(h > l for l, h in zip(lo, hi)):
        v[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = 1
        if parts is not None:
            parts[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = part


def chair(rng: np.random.Generator, with_parts: bool = False, factor: int = 1) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """One random chair, (32, 32, 32) uint8 occupancy; ``with_parts`` also its parts (32, 32, 32) int8
    (``PART_NAMES``; -1 where empty). ``factor``: the same chair (same random draws) on a grid of side 32 * factor,
    voxel k of an axis covering [k, k + 1) / factor in 32-voxel units."""
    n = S * factor
    v = np.zeros((n, n, n), np.uint8)
    parts = np.full((n, n, n), -1, np.int8)
    w, d = rng.uniform(14, 24), rng.uniform(12, 22)  # seat width (x) and depth (z)
    x0, x1, z0, z1 = 16 - w / 2, 16 + w / 2, 16 - d / 2, 16 + d / 2
    h, t = rng.uniform(9, 15), rng.choice([2, 3])  # seat height and thickness
    _box(v, x0, x1, h, h + t, z0, z1, parts, SEAT)
    if rng.random() < 0.7:  # four legs, sometimes with stretchers between them
        lt = rng.choice([2, 3])
        for lx in (x0, x1 - lt):
            for lz in (z0, z1 - lt):
                _box(v, lx, lx + lt, 0, h, lz, lz + lt, parts, LEGS)
        if rng.random() < 0.4:
            yb = h * rng.uniform(0.25, 0.5)
            _box(v, x0, x1, yb, yb + 1, z0, z0 + lt, parts, LEGS)
            _box(v, x0, x1, yb, yb + 1, z1 - lt, z1, parts, LEGS)
    else:  # pedestal: a column on a star or disc base
        ct = rng.choice([3, 4])
        _box(v, 16 - ct / 2, 16 + ct / 2, 1, h, 16 - ct / 2, 16 + ct / 2, parts, LEGS)
        radius = min(w, d) / 2
        if rng.random() < 0.5:
            _box(v, 16 - radius, 16 + radius, 0, 2, 15, 17, parts, LEGS)
            _box(v, 15, 17, 0, 2, 16 - radius, 16 + radius, parts, LEGS)
        else:
            xx, zz = (np.mgrid[0:n, 0:n] + 0.5) / factor  # voxel centres in 32-voxel units
            disc = (xx - 16) ** 2 + (zz - 16) ** 2 <= radius**2
            v[:, 0 : 2 * factor, :] |= disc[:, None, :].astype(np.uint8)  # (x, y, z): the disc spans x and z
            parts[:, 0 : 2 * factor, :][np.broadcast_to(disc[:, None, :], (n, 2 * factor, n))] = LEGS
    # Back: rises from the rear edge of the seat; a lean shifts its upper rows backwards.
    hb, bt = rng.uniform(8, 15), 2
    lean = rng.uniform(0, 0.35) if rng.random() < 0.5 else 0.0
    style = rng.integers(3)  # 0 solid, 1 vertical slats, 2 frame with a top rail
    for dy in range(int(round(hb))):
        y = h + t + dy
        zb = z1 - bt + lean * dy
        if style == 0:
            _box(v, x0, x1, y, y + 1, zb, zb + bt, parts, BACK)
        else:
            _box(v, x0, x0 + 2, y, y + 1, zb, zb + bt, parts, BACK)
            _box(v, x1 - 2, x1, y, y + 1, zb, zb + bt, parts, BACK)
            if style == 1:
                for sx in np.arange(x0 + 4, x1 - 3, 4):
                    _box(v, sx, sx + 1.5, y, y + 1, zb, zb + bt, parts, BACK)
            elif dy >= hb - 3:
                _box(v, x0, x1, y, y + 1, zb, zb + bt, parts, BACK)
    if rng.random() < 0.4:  # arm rests on posts
        ya = h + t + rng.uniform(4, 7)
        for ax in (x0, x1 - 2):
            _box(v, ax, ax + 2, ya, ya + 1.5, z0 + 1, z1, parts, ARMS)
            _box(v, ax, ax + 2, h + t, ya, z0 + 1, z0 + 3, parts, ARMS)
    return (v, parts) if with_parts else v


def _standin_sizes(cfg: DataConfig) -> dict[str, int]:
    sizes = dict(zip(SPLITS, SPEC.standin_sizes))
    return {s: sizes[s] if getattr(cfg, f"n_{s}") is None else getattr(cfg, f"n_{s}") for s in SPLITS}


def _first_chair(sizes: dict[str, int], split: str) -> int:
    """Index of ``split``'s first chair in the whole stand-in (train, then val, then test)."""
    return sum(sizes[s] for s in SPLITS[: SPLITS.index(split)])


def build_standin(cfg: DataConfig) -> RawSplits:
    sizes = _standin_sizes(cfg)
    arrays, parts = {}, {}
    for split in SPLITS:
        n, offset = sizes[split], _first_chair(sizes, split)
        # Chair i of the whole stand-in has its own seed, so split sizes do not change other chairs.
        done = [chair(np.random.default_rng([cfg.seed, offset + i]), with_parts=True) for i in range(n)]
        arrays[split] = np.stack([c[0] for c in done]) if n else np.zeros((0, S, S, S), np.uint8)
        parts[split] = np.stack([c[1] for c in done]) if n else np.zeros((0, S, S, S), np.int8)
    return RawSplits(arrays, meta={"part_names": list(PART_NAMES)}, parts=parts)


def render_superres(cfg: DataConfig, split: str, count: int, factor: int) -> SuperResTruth:
    """The first ``count`` chairs of the stand-in's ``split`` built from the same random draws on a grid of side
    ``32 * factor``: (count, 32 * factor, 32 * factor, 32 * factor) uint8 occupancy, cell-centred.

    Occupancy at both resolutions is the boxes' point sample at voxel centres, so a fine block's mean is the
    fraction of the stored voxel a box covers (sampled); thresholding it at 1/2 gives the stored voxel except where a
    box edge falls near its middle (a rounding tie). tests/test_data_superres.py measures the agreement.
    Costs about ``factor**3`` times the stored chair per sample (the grid has that many voxels).
    """
    sizes = _standin_sizes(cfg)
    check_superres_count(SPEC.label, split, count, sizes[split])
    first = _first_chair(sizes, split)
    values = np.stack([chair(np.random.default_rng([cfg.seed, first + i]), factor=factor) for i in range(count)])
    side = S * factor
    return SuperResTruth(values, f"procedural voxel chairs built from the same random draws (the same boxes, in the same "
                                 f"space) on a {side}^3 grid, occupied where a voxel's centre is inside a box, as the stored "
                                 f"{S}^3 ones are")


# ----------------------------------------------------------------------------- real format


def detect_format(root: Path) -> str:
    return "pt"


def load_real(cfg: DataConfig, fmt: str) -> RawSplits:
    root = require_dir(cfg.path, "ShapeNet voxel directory")
    files = list_files(root, (".pt",), "ShapeNet voxel directory")
    blocks = dict(zip(SPLITS, fraction_split(len(files), (0.8, 0.1, 0.1))))
    arrays = {}
    for split in SPLITS:
        idx = cap(blocks[split], getattr(cfg, f"n_{split}"))
        out = np.empty((len(idx), S, S, S), np.uint8)
        for j, i in enumerate(idx):
            x = load_tensor(files[i], "ShapeNet")
            check_array(f"ShapeNet {files[i]}", x, (S, S, S), ("b", "u", "i", "f"))
            check_finite(f"ShapeNet {files[i]}", x, "occupancy in [0, 1]")
            x = x.float()
            if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
                raise DataError(f"ShapeNet {files[i]}: values in [{x.min().item():.3g}, {x.max().item():.3g}], expected occupancy in [0, 1]")
            out[j] = (x > 0.5).numpy()
        arrays[split] = out
    return RawSplits(arrays, meta={"root": str(root), "files": len(files)})


def write_real(cfg: DataConfig, out_dir: Path, fmt: str) -> Path:
    """The stand-in as one ``{i:05d}.pt`` bool tensor per chair, train then val then test (sorting restores the split)."""
    raw = build_standin(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    i = 0
    for split in SPLITS:
        for vox in raw.arrays[split]:
            torch.save(torch.from_numpy(vox.astype(bool)), out_dir / f"{i:05d}.pt")
            i += 1
    return out_dir
