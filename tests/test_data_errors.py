"""Bad input: each case gives one clear error naming the file or key, what was found, what was expected."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from vamoh.checks import ConfigError, DataError
from vamoh.data import load_dataset, write_real_format
from vamoh.data.pp import read_pp, write_pp
from vamoh.data.registry import build

try:
    from tests.data_fixtures import tiny_cfg
except ImportError:
    from data_fixtures import tiny_cfg

LAT, LON = np.linspace(90, -90, 46), np.linspace(0, 356, 90)

# The fixtures hold far fewer files than the real datasets (a DataWarning, tested in test_data_checks.py).
pytestmark = pytest.mark.filterwarnings("ignore::vamoh.data.DataWarning")


def real(name: str, path: Path, **overrides):
    return build(tiny_cfg(name, source="real", path=str(path), **overrides))


def era5_dir(tmp_path: Path, **sample) -> Path:
    """A GASP ERA5 directory whose first train file has the given keys (defaults are valid)."""
    arrays = {"latitude": LAT, "longitude": LON, "temperature": np.full((46, 90), 280.0, np.float32), **sample}
    for split in ("train", "test"):
        (tmp_path / split).mkdir(parents=True, exist_ok=True)
        np.savez(tmp_path / split / "00000.npz", **{k: v for k, v in arrays.items() if v is not None})
    return tmp_path


def h5_file(tmp_path: Path, **datasets) -> Path:
    path = tmp_path / "3dshapes.h5"
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f[key] = value
    return path


# --------------------------------------------------------------------- paths and directories


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"ShapeNet chairs 32\^3 data not found: {tmp_path}/nowhere \(config key data.path\)"):
        real("shapenet", tmp_path / "nowhere")


def test_empty_directory(tmp_path):
    with pytest.raises(DataError, match=rf"no \.pt files in {tmp_path} \(found an empty directory\)"):
        real("shapenet", tmp_path)


def test_missing_polymnist_modality_folder(tmp_path):
    root = write_real_format("polymnist", tmp_path, fmt="png", n_train=2, n_test=1)
    for p in (root / "train" / "m2").iterdir():
        p.unlink()
    (root / "train" / "m2").rmdir()
    with pytest.raises(FileNotFoundError, match=r"PolyMNIST modality folder not found: .*train/m2"):
        real("polymnist", root, modality="m2", format="png")


# --------------------------------------------------------------------- Shapes3D h5


def test_wrong_h5_key(tmp_path):
    path = h5_file(tmp_path, imgs=np.zeros((4, 64, 64, 3), np.uint8), labels=np.zeros((4, 6)))
    with pytest.raises(DataError, match=r"3dshapes\.h5 lacks key\(s\) \['images'\]; found keys \['imgs', 'labels'\]"):
        real("shapes3d", path)


def test_wrong_h5_dtype(tmp_path):
    path = h5_file(tmp_path, images=np.zeros((4, 64, 64, 3), np.float32), labels=np.zeros((4, 6)))
    with pytest.raises(DataError, match=r"key 'images': dtype float32, expected unsigned integer"):
        real("shapes3d", path)


def test_wrong_h5_shape(tmp_path):
    path = h5_file(tmp_path, images=np.zeros((4, 32, 32, 3), np.uint8), labels=np.zeros((4, 6)))
    with pytest.raises(DataError, match=r"key 'images': shape \(4, 32, 32, 3\), expected \('N', 64, 64, 3\)"):
        real("shapes3d", path)


def test_truncated_h5(tmp_path):
    path = write_real_format("shapes3d", tmp_path, n_train=4, n_val=1, n_test=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match=r"3dshapes\.h5 .*truncated or corrupt"):
        real("shapes3d", path, subset=1.0)


# --------------------------------------------------------------------- ShapeNet / PolyMNIST tensors and images


def test_wrong_voxel_shape(tmp_path):
    torch.save(torch.zeros(16, 16, 16), tmp_path / "a.pt")
    with pytest.raises(DataError, match=r"a\.pt: shape \(16, 16, 16\), expected \(32, 32, 32\)"):
        real("shapenet", tmp_path)


def test_corrupt_torch_file(tmp_path):
    torch.save(torch.zeros(32, 32, 32), tmp_path / "a.pt")
    (tmp_path / "a.pt").write_bytes((tmp_path / "a.pt").read_bytes()[:300])
    with pytest.raises(DataError, match=r"cannot read .*a\.pt as a torch\.save file .*truncated or corrupt"):
        real("shapenet", tmp_path)


def test_polymnist_tensor_out_of_range(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split).mkdir()
        torch.save(torch.full((3, 3, 28, 28), 255.0), tmp_path / split / "m1.pt")
    with pytest.raises(DataError, match=r"m1\.pt: values in \[255, 255\], expected \[0, 1\]"):
        real("polymnist", tmp_path)


def test_polymnist_png_of_the_wrong_size(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split / "m1").mkdir(parents=True)
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / split / "m1" / "0.7.png")
    with pytest.raises(DataError, match=r"image .*0\.7\.png has shape \(32, 32, 3\), expected \(28, 28, 3\)"):
        real("polymnist", tmp_path, format="png")


def test_corrupt_image(tmp_path):
    (tmp_path / "face.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match=r"cannot decode image .*face\.jpg"):
        real("celebahq64", tmp_path)


# --------------------------------------------------------------------- ERA5


def test_nan_temperatures(tmp_path):
    t = np.full((46, 90), 280.0, np.float32)
    t[3, 4] = np.nan
    with pytest.raises(DataError, match=r"00000\.npz key 'temperature': 1 NaN/inf values of 4140"):
        real("era5", era5_dir(tmp_path, temperature=t))


def test_mismatched_latitude_grid(tmp_path):
    # South to north: all 46 values differ, the first at index 0 and by the most (180 degrees).
    with pytest.raises(DataError, match=r"00000\.npz: latitude grid does not match GASP's linspace\(90, -90, 46\): first difference at index 0: found -90, expected 90; 46 of 46 values differ, max abs difference 180 degrees"):
        real("era5", era5_dir(tmp_path, latitude=LAT[::-1].copy()))


def test_missing_npz_key(tmp_path):
    with pytest.raises(DataError, match=r"00000\.npz lacks key\(s\) \['temperature'\]; found keys \['latitude', 'longitude'\]"):
        real("era5", era5_dir(tmp_path, temperature=None))


def test_celsius_instead_of_kelvin(tmp_path):
    with pytest.raises(DataError, match=r"values in \[15\.00, 15\.00\], expected kelvin"):
        real("era5", era5_dir(tmp_path, temperature=np.full((46, 90), 15.0)))


def test_truncated_npz(tmp_path):
    root = era5_dir(tmp_path)
    f = root / "train" / "00000.npz"
    f.write_bytes(f.read_bytes()[:200])
    with pytest.raises(DataError, match=r"cannot read .*00000\.npz as an \.npz file .*truncated or corrupt"):
        real("era5", root)


def test_era5_tensor_of_the_wrong_shape(tmp_path):
    torch.save(torch.zeros(2, 3, 45, 90), tmp_path / "tensor_train_rnd.pt")
    with pytest.raises(DataError, match=r"tensor_train_rnd\.pt: shape \(2, 3, 45, 90\), expected \('N', 3, 46, 90\)"):
        real("era5", tmp_path)


def test_truncated_pp_file(tmp_path):
    write_pp(tmp_path / "f.pp", [(np.zeros((3, 4), np.float32), 0.0, 1.0, 0.0, 1.0)])
    (tmp_path / "f.pp").write_bytes((tmp_path / "f.pp").read_bytes()[:-10])
    with pytest.raises(DataError, match=r"f\.pp: field 0: data record claims 48 bytes"):
        read_pp(tmp_path / "f.pp")


# --------------------------------------------------------------------- names


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.name='cifar10' is not one of \['celebahq64', 'era5', 'polymnist', 'shapenet', 'shapes3d'\]"):
        load_dataset({"name": "cifar10"}, tmp_path)


def test_unknown_modality(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.modality='m5' is not one of \['m0', 'm1', 'm2', 'm3', 'm4'\]"):
        load_dataset({"name": "polymnist", "modality": "m5"}, tmp_path)


def test_unknown_format_for_write_real_format(tmp_path):
    with pytest.raises(ConfigError, match=r"format='png' is not one of \['npz', 'pt'\] for era5"):
        write_real_format("era5", tmp_path, fmt="png")
