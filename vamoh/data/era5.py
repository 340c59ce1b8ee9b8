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

from ..checks import DataError, check_finite
from .files import check_array, list_files, load_npz, load_tensor, require_dir, warn_data
from .pp import read_pp
from .spec import SPLITS, DatasetSpec, RawSplits, cap

if TYPE_CHECKING:
    from .config import DataConfig

T_MIN, T_MAX = 202.66, 320.93  # kelvin, GASP's normalisation constants
LATITUDE = np.linspace(90.0, -90.0, 46)  # degrees, north to south
LONGITUDE = np.linspace(0.0, 356.0, 90)  # degrees east
GRID_TOL = 1e-3  # degrees; a grid further off than this is a different grid
KELVIN_PLAUSIBLE = (100.0, 400.0)  # kelvin; values outside are another unit (Celsius, T01), not temperatures in kelvin
CLIP_TOL = 1e-4  # in T01 (about 0.01 K): float rounding at GASP's range ends is not clipping
CLIP_ERROR = 0.01  # real data: more than 1% of a file's values outside GASP's range is an error; any at all a warning
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
    short_name="ERA5",
    paper_order=4,
)

# Why ``registry.superres_truth`` has no finer render of this stand-in (see ``spec.SuperResTruth``).
SUPERRES_UNAVAILABLE = ("the ERA5 stand-in's fields are real GloSea4 model output (145x192 points, 1.25 x 1.875 degrees) "
                        "regridded bilinearly to a 46x90 grid of 4-degree nodes from pole to pole; no 2x truth is "
                        "provided: a node grid has no cell-centred 2x grid whose blocks average to it")


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


def read_field_npz(path: Path, what: str = "ERA5") -> np.ndarray:
    """One GASP ``.npz`` field as (46, 90) float64 kelvin: its keys, its latitude/longitude grid (GASP's, north to south,
    so a flipped grid is refused rather than used upside down), finite values and a kelvin range all checked.
    The loader and ``vamoh reconstruct --input`` both read fields with this."""
    z = load_npz(path, ("latitude", "longitude", "temperature"), what)
    check_array(f"{what} {path} key 'temperature'", z["temperature"], (46, 90), ("f", "i", "u"))
    _check_grid(f"{what} {path}", "latitude", z["latitude"], LATITUDE, "linspace(90, -90, 46)")
    _check_grid(f"{what} {path}", "longitude", z["longitude"], LONGITUDE, "linspace(0, 356, 90)")
    t = z["temperature"].astype(np.float64)
    check_finite(f"{what} {path} key 'temperature'", t, "finite temperatures in kelvin")
    low, high = KELVIN_PLAUSIBLE
    if not (low < t.min() and t.max() < high):
        raise DataError(f"{what} {path} key 'temperature': values in [{t.min():.2f}, {t.max():.2f}], expected kelvin (roughly 180..340)")
    return t


def check_t01(what: str, t01: np.ndarray, meta: dict | None = None) -> np.ndarray:
    """GASP-normalised fields clipped to [0, 1] (the continuous Bernoulli's support), refusing what clipping would hide.

    Non-finite values are refused with their count. The fraction of values outside [0, 1] (beyond ``CLIP_TOL``) is
    an error above ``CLIP_ERROR`` (1%): a field in another unit (kelvin where T01 is expected), offset or scaled is
    refused rather than flattened; any smaller fraction is a ``DataWarning`` naming it (and recorded in ``meta``).
    """
    check_finite(what, t01, "finite normalised temperatures")
    t01 = np.asarray(t01)
    if not t01.size:
        return t01.astype(np.float32)
    outside = float(np.mean((t01 < -CLIP_TOL) | (t01 > 1 + CLIP_TOL)))
    if outside:
        lo, hi = to_kelvin(t01.min()), to_kelvin(t01.max())
        text = (f"{what}: {outside:.2%} of the values lie outside GASP's range [{T_MIN}, {T_MAX}] K (T01 in [0, 1]) and would be "
                f"clipped; found {lo:.2f}..{hi:.2f} K (T01 {float(t01.min()):.4g}..{float(t01.max()):.4g})")
        if outside > CLIP_ERROR:
            hint = " (T01 values above 1 everywhere: is this kelvin rather than T01 = (T - 202.66) / 118.27?)" if t01.min() > 1 else ""
            raise DataError(f"{text}; at most {CLIP_ERROR:.0%} may be clipped{hint}")
        warn_data(meta if meta is not None else {}, text)
    return np.clip(t01, 0.0, 1.0).astype(np.float32)


def _read_npz_split(directory: Path) -> np.ndarray:
    files = list_files(directory, (".npz",), "ERA5 npz split")
    out = np.empty((len(files), 46, 90), np.float64)
    for i, path in enumerate(files):
        out[i] = read_field_npz(path)
        t01 = normalise(out[i])
        if np.mean((t01 < -CLIP_TOL) | (t01 > 1 + CLIP_TOL)) > CLIP_ERROR:
            check_t01(f"ERA5 {path} key 'temperature'", t01)  # the file is named; smaller fractions are counted per split
    return out


def _check_grid_channel(what: str, x: np.ndarray, channel: int) -> None:
    """Channel 0 (latitude) or 1 (longitude) of every sample of an (N, 3, 46, 90) tensor, against GASP's grid."""
    name, expected, rule = (("latitude", LATITUDE, "linspace(90, -90, 46)") if channel == 0 else ("longitude", LONGITUDE, "linspace(0, 356, 90)"))
    grid = LATITUDE[:, None] if channel == 0 else LONGITUDE[None, :]
    dev = np.abs(x[:, channel] - grid)
    dev = np.where(np.isfinite(dev), dev, np.inf)
    bad = np.flatnonzero(dev.max(axis=(1, 2)) > GRID_TOL)
    if len(bad):
        s = int(bad[0])
        if channel == 0:
            col = int(np.argmax(dev[s].max(axis=0)))
            found = x[s, 0, :, col]
        else:
            row = int(np.argmax(dev[s].max(axis=1)))
            found = x[s, 1, row, :]
        _check_grid(f"{what} channel {channel} (sample {s} of {len(x)})", name, found, expected, rule)


def _read_pt_split(path: Path) -> np.ndarray:
    x = load_tensor(path, "ERA5")
    check_array(f"ERA5 {path}", x, (None, 3, 46, 90), ("f",))
    x = x.double().numpy()
    if len(x):
        # Channels 0/1 repeat the grid in every sample (degrees); every sample is checked.
        _check_grid_channel(f"ERA5 {path}", x, 0)
        _check_grid_channel(f"ERA5 {path}", x, 1)
    check_finite(f"ERA5 {path} channel 2 (T01)", x[:, 2], "finite normalised temperatures")
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
        where = f"ERA5 {root / split}/*.npz" if fmt == "npz" else f"ERA5 {root / f'tensor_{split}_rnd.pt'} channel 2 (T01)"
        t01 = cap(t01, n)
        check_t01(where, t01, meta)  # an error above CLIP_ERROR, a warning below
        arrays[split] = _clip01(t01, meta, split)
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
