"""What the suite knows about one dataset, independent of where its files come from.

A ``DatasetSpec`` is pure data: the model code reads ``spec.info`` (a ``DataInfo``) and never the
dataset's name. The functions that read real files or build the offline stand-in live in one
module per dataset (``shapes3d.py``, ``polymnist.py``, ...) and are found through ``registry.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..interface import DataInfo

SPLITS = ("train", "val", "test")
MODALITIES = ("m0", "m1", "m2", "m3", "m4")  # PolyMNIST's five modalities (the config and the loader share them)


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # registry key, e.g. "shapes3d"
    label: str  # human name of the real dataset, e.g. "Shapes3D"
    kind: str  # "image" | "voxels" | "field"
    coord_system: str  # "grid" (regular grid in [-1, 1]^d) | "sphere" (unit sphere, ERA5)
    grid_shape: tuple[int, ...]  # (H, W), (S, S, S) or (lat, lon)
    feature_dim: int  # 3 for RGB, 1 for occupancy or temperature
    likelihood: str  # one of vamoh.interface.LIKELIHOODS
    formats: tuple[str, ...]  # real file formats the loader reads; the first is the auto-detect fallback
    split_rule: str  # how the real files are split into train/val/test (REFERENCE.md section 4)
    standin: str  # what the offline stand-in is made of, saying what is real and what synthetic (the "stand-in" label)
    standin_sizes: tuple[int, int, int]  # default (n_train, n_val, n_test) of the stand-in
    paper_batch_size: int  # Table 3 of the paper; the loader benchmark uses it
    feature_range: tuple[float, float] = (0.0, 1.0)  # every feature lies in this closed interval
    train_points: int | None = None  # random points per training batch; None = every point
    storage_dtype: str = "uint8"  # dtype of the cached arrays (uint8 pixels/voxels, float32 fields)
    short_name: str = ""  # the name in table rows and figure titles, e.g. "CelebA-HQ 64" ("" = ``name``)
    paper_order: int = 1000  # position of the dataset's row in the paper's Tables 2, 3 and 5 (unlisted datasets after)
    paper_key: str = ""  # the dataset's key among the paper's numbers (``vamoh.eval.paper``; "" = ``name``)

    @property
    def coord_dim(self) -> int:
        # ERA5 lives on the unit sphere embedded in R^3, whatever its (lat, lon) grid shape.
        return 3 if self.coord_system == "sphere" else len(self.grid_shape)

    @property
    def num_points(self) -> int:
        return math.prod(self.grid_shape)

    @property
    def info(self) -> DataInfo:
        return DataInfo(coord_dim=self.coord_dim, feature_dim=self.feature_dim, likelihood=self.likelihood, grid_shape=self.grid_shape, kind=self.kind)

    @property
    def display_name(self) -> str:
        return self.short_name or self.name

    def display_label(self, is_standin: bool) -> str:
        """E.g. "ShapeNet chairs 32^3 (stand-in: synthetic procedural voxel chairs)"."""
        return f"{self.label} (stand-in: {self.standin})" if is_standin else self.label


@dataclass
class RawSplits:
    """A dataset as compact arrays, before it becomes point clouds.

    ``arrays[split]``: (N, H, W, 3) uint8 for images, (N, S, S, S) uint8 for voxels, (N, 46, 90)
    float32 in [0, 1] for ERA5. ``labels[split]``: optional per-sample labels (N, k). ``extra``:
    arrays shared by all splits (ERA5 latitude/longitude in degrees). ``meta``: JSON-able facts
    (source files, resize method, stand-in recipe) recorded in the cache; ``meta["warnings"]``
    lists the ``DataWarning`` messages raised while building (a file count other than the real
    dataset's, fewer samples than asked for). ``parts[split]``: optional true part labels per point
    (N, *grid) int8 (-1 = no part, e.g. an empty voxel), only from stand-ins that render them
    (their names in ``meta["part_names"]``); real data has none.
    """

    arrays: dict[str, np.ndarray]
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    parts: dict[str, np.ndarray] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        return {s: int(self.arrays[s].shape[0]) for s in SPLITS}


@dataclass(frozen=True)
class SuperResTruth:
    """The ground truth for super-resolution of a few samples of one split (``registry.superres_truth``).

    ``values``: the samples rendered at ``factor`` times the stored resolution on every grid axis, in the
    stored format: images (N, factor*H, factor*W, 3) uint8, voxels (N, factor*S, factor*S, factor*S) uint8.
    Cell-centred: fine cell k on an axis covers the area of stored cell k // factor, so block-averaging
    factor^d fine cells gives (approximately: see each dataset's ``render_superres``) the stored sample.
    None when the dataset has no finer render (real files, real MNIST digits, GloSea4 fields).
    ``description``: how the values were rendered, or why there are none.
    """

    values: np.ndarray | None
    description: str


def check_superres_count(label: str, split: str, count: int, size: int) -> None:
    """A super-resolution request for ``count`` samples of a split holding ``size``: a ``ValueError`` naming both
    when ``count`` exceeds ``size`` (``registry.superres_truth`` has already checked that it is >= 1)."""
    if count > size:
        raise ValueError(f"superres_truth: count={count} exceeds the {size} sample(s) of the {label} stand-in's {split} split")


def fraction_split(n: int, fractions: tuple[float, ...]) -> list[np.ndarray]:
    """Consecutive index blocks of ``n`` items: every block but the last gets floor(f*n), the last the rest.

    (10, (0.8, 0.1, 0.1)) -> [0..7], [8], [9]; the rule the original code applies to sorted files.
    """
    bounds = [0]
    for f in fractions[:-1]:
        bounds.append(bounds[-1] + int(math.floor(f * n + 1e-9)))
    bounds.append(n)
    return [np.arange(bounds[i], bounds[i + 1]) for i in range(len(fractions))]


def cap(indices: np.ndarray, n: int | None) -> np.ndarray:
    """The first ``n`` of ``indices`` (all when ``n`` is None)."""
    return indices if n is None else indices[:n]


# The registry's storage: name -> spec, filled by ``vamoh.data.registry.register_dataset`` (the package's
# ``__init__`` registers the five datasets; a plugin module registers its own). Kept in this leaf module so that the
# data config can check names against it without importing the dataset modules, which import the config.
DATASETS: dict[str, DatasetSpec] = {}
