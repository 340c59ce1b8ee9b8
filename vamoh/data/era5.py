"""ERA5 surface temperature on a 46x90 lat/lon grid, as functions on the unit sphere.

Real formats: GASP's directories ``{train,val,test}/*.npz`` (latitude (46,), longitude (90,),
temperature (46, 90) kelvin) and the original VAMoH tensors ``tensor_{split}_rnd.pt`` (N, 3, 46, 90)
= [lat, lon, T01]. Features are GASP-normalised: T01 = (T - 202.66) / (320.93 - 202.66).

Stand-in: the real GloSea4 monthly surface-temperature fields bundled in ``iris-sample-data``
(13 ensemble members x 6 months on 145x192), regridded bilinearly to 46x90 and split by ensemble
member so no member appears in two splits. With ``augment`` the splits are filled up to their
sizes with copies of the real fields plus seeded smooth synthetic anomalies; the label says how
many fields of each split are real and how many carry an anomaly.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..checks import DataError
from .files import check_array, list_files, load_npz, load_tensor, require_dir
from .pp import read_pp
from .spec import SPLITS, DatasetSpec, RawSplits, cap

if TYPE_CHECKING:
    from .config import DataConfig

T_MIN, T_MAX = 202.66, 320.93  # kelvin, GASP's normalisation constants
LATITUDE = np.linspace(90.0, -90.0, 46)  # degrees, north to south
LONGITUDE = np.linspace(0.0, 356.0, 90)  # degrees east
GRID_TOL = 1e-3  # degrees; a grid further off than this is a different grid
N_TRAIN_MEMBERS, N_VAL_MEMBERS = 10, 1  # of the 13 GloSea4 members; the remaining 2 are the test split

SPEC = DatasetSpec(
    name="era5",
    label="ERA5 temperature 46x90",
    kind="field",
    coord_system="sphere",
    grid_shape=(46, 90),
    feature_dim=1,
    likelihood="continuous_bernoulli",
    formats=("npz", "pt"),
    split_rule="separate train/val/test directories (npz) or tensor_{split}_rnd.pt files",
    standin="real GloSea4 surface temperature (iris-sample-data) regridded to 46x90; augmented fields add seeded smooth synthetic anomalies",
    standin_sizes=(600, 60, 120),
    paper_batch_size=64,
    storage_dtype="float32",
)


def normalise(kelvin: np.ndarray) -> np.ndarray:
    return ((kelvin - T_MIN) / (T_MAX - T_MIN)).astype(np.float32)


def to_kelvin(t01: np.ndarray) -> np.ndarray:
    """Inverse of the GASP normalisation: (..., ) in [0, 1] -> kelvin."""
    return np.asarray(t01, np.float64) * (T_MAX - T_MIN) + T_MIN


def _clip01(fields: np.ndarray, meta: dict, split: str) -> np.ndarray:
    # The continuous Bernoulli needs data in [0, 1]; a few extreme real temperatures fall just outside.
    outside = float(np.mean((fields < 0) | (fields > 1))) if fields.size else 0.0
    meta.setdefault("clipped_fraction", {})[split] = outside
    return np.clip(fields, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- regridding


def _weights(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear interpolation indices (i0, i1) and weights w of i1 for increasing ``src``."""
    pos = np.interp(dst, src, np.arange(len(src), dtype=np.float64))
    i0 = np.clip(np.floor(pos).astype(int), 0, len(src) - 2)
    return i0, i0 + 1, pos - i0


def regrid(field: np.ndarray, src_lat: np.ndarray, src_lon: np.ndarray, dst_lat: np.ndarray = LATITUDE, dst_lon: np.ndarray = LONGITUDE) -> np.ndarray:
    """Bilinear regridding of (..., len(src_lat), len(src_lon)) to (..., len(dst_lat), len(dst_lon)).

    Longitude is periodic (the column after the last wraps to the first); latitude may run either
    way and is clamped at the poles. Exact for fields that are linear in lat and lon within a cell.
    """
    if src_lat[0] > src_lat[-1]:
        src_lat, field = src_lat[::-1], field[..., ::-1, :]
    src_lon = np.mod(src_lon - src_lon[0], 360.0) + src_lon[0]
    lon_ext = np.concatenate([src_lon, [src_lon[0] + 360.0]])
    field_ext = np.concatenate([field, field[..., :1]], axis=-1)
    a0, a1, wa = _weights(src_lat, np.clip(dst_lat, src_lat[0], src_lat[-1]))
    o0, o1, wo = _weights(lon_ext, np.mod(dst_lon - src_lon[0], 360.0) + src_lon[0])
    rows = field_ext[..., a0, :] * (1 - wa)[:, None] + field_ext[..., a1, :] * wa[:, None]
    return rows[..., o0] * (1 - wo) + rows[..., o1] * wo


# ----------------------------------------------------------------------------- stand-in


def glosea4_files() -> list[Path]:
    import iris_sample_data

    folder = Path(iris_sample_data.__file__).parent / "sample_data" / "GloSea4"
    files = sorted(folder.glob("ensemble_*.pp"))
    if not files:
        raise FileNotFoundError(f"GloSea4 sample fields not found in {folder}: is iris-sample-data installed completely?")
    return files


@lru_cache(maxsize=1)
def glosea4_fields() -> dict[str, np.ndarray]:
    """Real fields by ensemble member: {"000": (6, 46, 90) kelvin, ...} (cached: treat as read-only)."""
    members: dict[str, np.ndarray] = {}
    for path in glosea4_files():
        fields = read_pp(path)
        data = np.stack([regrid(f.data.astype(np.float64), f.latitude, f.longitude) for f in fields])
        if np.isnan(data).any():
            raise DataError(f"{path}: missing values in the sample temperature fields")
        members[re.sub(r"\D", "", path.stem)] = data
    return members


def _smooth_anomaly(rng: np.random.Generator) -> np.ndarray:
    """A smooth random field on the sphere, (46, 90) kelvin: a sum of a few Gaussian bumps.

    Bumps in 3-D around points on the sphere have no seam at the date line and no pole artefact.
    """
    la, lo = np.meshgrid(np.deg2rad(LATITUDE), np.deg2rad(LONGITUDE), indexing="ij")
    xyz = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], -1)
    out = np.zeros(la.shape)
    for _ in range(int(rng.integers(3, 7))):
        centre = rng.normal(size=3)
        centre /= np.linalg.norm(centre)
        width = rng.uniform(0.25, 0.6)
        out += rng.normal(0.0, 3.0) * np.exp(-np.sum((xyz - centre) ** 2, -1) / (2 * width**2))
    return out


def build_standin(cfg: DataConfig) -> RawSplits:
    members = glosea4_fields()
    names = sorted(members)
    groups = {
        "train": names[:N_TRAIN_MEMBERS],
        "val": names[N_TRAIN_MEMBERS : N_TRAIN_MEMBERS + N_VAL_MEMBERS],
        "test": names[N_TRAIN_MEMBERS + N_VAL_MEMBERS :],
    }
    sizes = dict(zip(SPLITS, SPEC.standin_sizes))
    meta: dict = {"members": groups, "augmented": {}, "real_fields": {}}
    arrays = {}
    for k, split in enumerate(SPLITS):
        real = np.concatenate([members[m] for m in groups[split]])  # (n_real, 46, 90) kelvin
        n = getattr(cfg, f"n_{split}")
        n = (sizes[split] if cfg.augment else len(real)) if n is None else n
        if not cfg.augment:
            n = min(n, len(real))
        rng = np.random.default_rng([cfg.seed, k])
        out = np.empty((n, 46, 90), np.float64)
        for j in range(n):
            # The first pass over the real fields is unaltered; later copies get an anomaly.
            out[j] = real[j % len(real)] + (_smooth_anomaly(rng) if j >= len(real) else 0.0)
        meta["augmented"][split] = max(0, n - len(real))
        meta["real_fields"][split] = min(n, len(real))
        arrays[split] = _clip01(normalise(out), meta, split)
    if any(meta["augmented"].values()):
        meta["standin_note"] = "fields beyond the 78 real GloSea4 fields are real fields plus seeded smooth synthetic anomalies"
    return RawSplits(arrays, extra={"latitude": LATITUDE.copy(), "longitude": LONGITUDE.copy()}, meta=meta)


def standin_label(cfg: DataConfig, raw: RawSplits) -> str:
    """One line with the counts of the built splits, e.g. "... 78 real fields; 540 of 600 train, ...
    fields are real fields + seeded smooth synthetic anomalies"."""
    sizes, augmented = raw.sizes(), raw.meta["augmented"]
    real = sum(raw.meta["real_fields"].values())
    head = f"real GloSea4 surface temperature (iris-sample-data) regridded to 46x90, {real} real fields"
    counts = [f"{augmented[s]} of {sizes[s]} {s}" for s in SPLITS if augmented[s]]
    tail = f"{', '.join(counts)} fields are real fields + seeded smooth synthetic anomalies" if counts else "no field altered"
    return f"{SPEC.label} (stand-in: {head}; {tail})"


# ----------------------------------------------------------------------------- real formats


def detect_format(root: Path) -> str:
    if any(root.glob("tensor_*_rnd.pt")):
        return "pt"
    return "npz"


def _check_grid(what: str, name: str, found: np.ndarray, expected: np.ndarray, rule: str) -> None:
    """Refuse a grid further than GRID_TOL from GASP's, saying where it differs and by how much."""
    found = np.asarray(found, np.float64).reshape(-1)
    if found.shape != expected.shape:
        raise DataError(f"{what}: {name} grid has {found.size} values, expected {expected.size} (GASP's {rule})")
    diff = np.where(np.isfinite(found), np.abs(found - expected), np.inf)
    bad = np.flatnonzero(diff > GRID_TOL)
    if len(bad):
        i = int(bad[0])
        raise DataError(
            f"{what}: {name} grid does not match GASP's {rule}: first difference at index {i}: "
            f"found {found[i]:.10g}, expected {expected[i]:.10g}; {len(bad)} of {found.size} values differ, "
            f"max abs difference {np.max(diff):.6g} degrees (tolerance {GRID_TOL})"
        )


def _read_npz_split(directory: Path) -> np.ndarray:
    files = list_files(directory, (".npz",), "ERA5 npz split")
    out = np.empty((len(files), 46, 90), np.float64)
    for i, path in enumerate(files):
        z = load_npz(path, ("latitude", "longitude", "temperature"), "ERA5")
        check_array(f"ERA5 {path} key 'temperature'", z["temperature"], (46, 90), ("f", "i", "u"))
        _check_grid(f"ERA5 {path}", "latitude", z["latitude"], LATITUDE, "linspace(90, -90, 46)")
        _check_grid(f"ERA5 {path}", "longitude", z["longitude"], LONGITUDE, "linspace(0, 356, 90)")
        t = z["temperature"].astype(np.float64)
        bad = int(np.sum(~np.isfinite(t)))
        if bad:
            raise DataError(f"ERA5 {path} key 'temperature': {bad} NaN/inf values of {t.size}, expected finite temperatures in kelvin")
        if not (100.0 < t.min() and t.max() < 400.0):
            raise DataError(f"ERA5 {path} key 'temperature': values in [{t.min():.2f}, {t.max():.2f}], expected kelvin (roughly 180..340)")
        out[i] = t
    return out


def _read_pt_split(path: Path) -> np.ndarray:
    x = load_tensor(path, "ERA5")
    check_array(f"ERA5 {path}", x, (None, 3, 46, 90), ("f",))
    x = x.double().numpy()
    if len(x):
        # Channels 0/1 repeat the grid in every sample (degrees); check the first sample.
        _check_grid(f"ERA5 {path} channel 0", "latitude", x[0, 0, :, 0], LATITUDE, "linspace(90, -90, 46)")
        _check_grid(f"ERA5 {path} channel 1", "longitude", x[0, 1, 0, :], LONGITUDE, "linspace(0, 356, 90)")
    bad = int(np.sum(~np.isfinite(x[:, 2])))
    if bad:
        raise DataError(f"ERA5 {path} channel 2 (T01): {bad} NaN/inf values, expected finite normalised temperatures")
    return x[:, 2]


def load_real(cfg: DataConfig, fmt: str) -> RawSplits:
    root = require_dir(cfg.path, "ERA5 data directory")
    meta: dict = {"format": fmt, "root": str(root)}
    arrays = {}
    for split in SPLITS:
        n = getattr(cfg, f"n_{split}")
        if fmt == "npz":
            directory = root / split
            if not directory.is_dir():
                if split == "val":  # GASP ships val, but a user may have only train/test
                    arrays[split] = np.zeros((0, 46, 90), np.float32)
                    continue
                raise FileNotFoundError(f"ERA5 {split} directory not found: {directory} (expected {root}/{{train,val,test}}/*.npz; config key data.path)")
            t01 = normalise(_read_npz_split(directory))
        else:
            path = root / f"tensor_{split}_rnd.pt"
            if not path.is_file():
                if split == "val":
                    arrays[split] = np.zeros((0, 46, 90), np.float32)
                    continue
                raise FileNotFoundError(f"ERA5 tensor file not found: {path} (config key data.path)")
            t01 = _read_pt_split(path)
        arrays[split] = _clip01(cap(t01, n), meta, split)
    return RawSplits(arrays, extra={"latitude": LATITUDE.copy(), "longitude": LONGITUDE.copy()}, meta=meta)


def write_real(cfg: DataConfig, out_dir: Path, fmt: str) -> Path:
    """The stand-in as GASP npz directories or VAMoH tensor files; returns the directory for data.path."""
    raw = build_standin(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        t01 = raw.arrays[split]
        if fmt == "npz":
            (out_dir / split).mkdir(exist_ok=True)
            for i, field in enumerate(t01):
                np.savez(out_dir / split / f"{i:05d}.npz", latitude=LATITUDE, longitude=LONGITUDE, temperature=to_kelvin(field).astype(np.float32))
        else:
            lat = np.broadcast_to(LATITUDE[:, None], (46, 90))
            lon = np.broadcast_to(LONGITUDE[None, :], (46, 90))
            x = np.stack([np.stack([lat, lon, f]) for f in t01]) if len(t01) else np.zeros((0, 3, 46, 90))
            torch.save(torch.from_numpy(x.astype(np.float32)), out_dir / f"tensor_{split}_rnd.pt")
    return out_dir
