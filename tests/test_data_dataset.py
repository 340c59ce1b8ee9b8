"""FunctionDataset: coordinates, batches, grid round trips; the default stand-ins: sizes, splits, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from vamoh.checks import DataError
from vamoh.data import DATASETS, FunctionDataset, load_dataset
from vamoh.pointcloud import to_grid

try:
    from tests.data_fixtures import row_hashes, tiny_cfg
except ImportError:
    from data_fixtures import row_hashes, tiny_cfg


@pytest.fixture(scope="module")
def defaults(tmp_path_factory):
    """All five stand-ins at their default sizes, built once; returns (splits by name, seconds)."""
    cache = tmp_path_factory.mktemp("cache")
    start = time.perf_counter()
    splits = {name: load_dataset({"name": name}, cache) for name in DATASETS}
    return splits, time.perf_counter() - start


def test_all_five_default_standins_build_with_documented_sizes(defaults):
    # (how long they take to build is a benchmark, benchmarks/bench_data.py, not a timed test)
    splits, _ = defaults
    for name, parts in splits.items():
        spec = DATASETS[name]
        assert tuple(len(parts[s]) for s in ("train", "val", "test")) == spec.standin_sizes
        for ds in parts.values():
            assert ds.is_standin and "(stand-in: " in ds.label and ds.spec is spec


def test_default_splits_are_disjoint(defaults):
    splits, _ = defaults
    for name, parts in splits.items():
        hashes = {s: row_hashes(parts[s].arrays()) for s in ("train", "val", "test")}
        assert not hashes["train"] & hashes["test"], name
        assert not hashes["train"] & hashes["val"] and not hashes["val"] & hashes["test"], name
    labels = splits["shapes3d"]
    rows = {s: {tuple(r) for r in labels[s].labels} for s in ("train", "val", "test")}
    assert not rows["train"] & rows["test"] and not rows["train"] & rows["val"]  # distinct factor combinations


def test_standins_are_deterministic_and_seeded(tmp_path):
    a = load_dataset(tiny_cfg("celebahq64"), tmp_path / "a")["train"].arrays()
    b = load_dataset(tiny_cfg("celebahq64"), tmp_path / "b")["train"].arrays()
    c = load_dataset(tiny_cfg("celebahq64", seed=1), tmp_path / "a")["train"].arrays()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_grid_coordinates_span_minus_one_to_one_row_major(defaults):
    splits, _ = defaults
    for name in ("celebahq64", "polymnist", "shapenet"):
        ds = splits[name]["train"]
        shape = ds.grid_shape
        assert ds.coords.shape == (np.prod(shape), len(shape)) and ds.coords.dtype == torch.float32
        assert ds.coords.min() == -1.0 and ds.coords.max() == 1.0
        # Independent expectation: point d = (i, j[, k]) in row-major order sits at 2*(i/(n-1) - 0.5).
        d = 5 * np.prod(shape[1:]) + 3  # index (5, 3[, 0]) / (5, 0, 3) for voxels
        idx = np.unravel_index(d, shape)
        np.testing.assert_allclose(ds.coords[d].numpy(), [2 * (i / (n - 1) - 0.5) for i, n in zip(idx, shape)], atol=1e-6)


def test_era5_coordinates_on_the_unit_sphere(defaults):
    splits, _ = defaults
    ds = splits["era5"]["train"]
    assert ds.coords.shape == (46 * 90, 3)
    np.testing.assert_allclose(ds.coords.norm(dim=1).numpy(), 1.0, atol=1e-6)
    np.testing.assert_array_equal(ds.latitude.numpy(), np.linspace(90, -90, 46))
    np.testing.assert_array_equal(ds.longitude.numpy(), np.linspace(0, 356, 90))
    lat, lon = np.deg2rad(-10.0), np.deg2rad(8.0)  # row 25 (90 - 4*25), column 2
    np.testing.assert_allclose(ds.coords[25 * 90 + 2].numpy(), [np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], atol=1e-6)
    np.testing.assert_allclose(ds.coords[0].numpy(), [0, 0, 1], atol=1e-6)  # the north pole


def test_features_are_in_range_and_grid_round_trips_are_exact(defaults):
    splits, _ = defaults
    for name, parts in splits.items():
        ds = parts["test"]
        idx = [0, 3, len(ds) - 1]
        feats = ds.features(idx)
        assert feats.shape == (3, ds.num_points, ds.spec.feature_dim) and feats.dtype == torch.float32
        assert feats.min() >= 0.0 and feats.max() <= 1.0
        np.testing.assert_array_equal(ds[3].numpy(), feats[1].numpy())
        back = ds.to_arrays(feats)
        stored = ds.arrays(idx)
        if ds.spec.kind == "image":
            assert back.dtype == np.uint8 and back.shape == (3, *ds.grid_shape, 3)
            np.testing.assert_array_equal(back, stored)
            np.testing.assert_array_equal(ds.images_uint8(idx), stored)
            # Same point order as vamoh.pointcloud.to_grid: (B, C, H, W) after a channel move.
            np.testing.assert_array_equal(to_grid(feats, ds.grid_shape).permute(0, 2, 3, 1).mul(255).round().byte().numpy(), stored)
        else:
            assert back.shape == (3, *ds.grid_shape)
            np.testing.assert_array_equal(back, stored.astype(np.float32))


def test_batch_is_a_point_cloud_and_subsets_points_consistently(defaults):
    splits, _ = defaults
    ds = splits["shapes3d"]["train"]
    full = ds.batch([4, 1])
    assert full.coords.shape == (2, 4096, 2) and full.features.shape == (2, 4096, 3)
    assert full.mask.all() and full.grid_shape == (64, 64)
    sub = ds.batch([4, 1], points=100, generator=torch.Generator().manual_seed(0))
    assert sub.coords.shape == (2, 100, 2) and sub.grid_shape == () and sub.mask.shape == (2, 100)
    assert torch.equal(sub.coords[0], sub.coords[1])  # one subset for the whole batch
    # Each kept point's features are the full sample's features at that coordinate.
    where = torch.cdist(sub.coords[0], full.coords[0]).argmin(dim=1)
    assert torch.equal(sub.features, full.features[:, where])
    again = ds.batch([4, 1], points=100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.coords, sub.coords)


def test_voxel_training_batches_use_4096_random_voxels(defaults, tmp_path):
    splits, _ = defaults
    ds = splits["shapenet"]["train"]
    assert ds.train_points == 4096 and ds.info.train_points == 4096
    batch = ds.train_batch(list(range(22)))
    assert batch.coords.shape == (22, 4096, 3) and batch.features.shape == (22, 4096, 1)
    assert ds.batch([0]).features.shape == (1, 32**3, 1)
    every = load_dataset(tiny_cfg("shapenet", train_points=0), tmp_path)["train"]
    assert every.train_points is None and every.train_batch([0]).num_points == 32**3
    some = load_dataset(tiny_cfg("shapenet", train_points=512), tmp_path)["train"]
    assert some.train_batch([0, 1]).coords.shape == (2, 512, 3)


def test_iter_batches_covers_an_epoch_once(defaults):
    splits, _ = defaults
    ds = splits["era5"]["val"]
    seen = [b.batch_size for b in ds.iter_batches(16, generator=torch.Generator().manual_seed(1))]
    assert sum(seen) == len(ds) == 60 and max(seen) == 16


def test_image_only_helpers_refuse_other_kinds(defaults):
    splits, _ = defaults
    with pytest.raises(DataError, match="shapenet holds voxels, not images"):
        splits["shapenet"]["test"].images_uint8([0])
    with pytest.raises(DataError, match=r"features of shape \(2, 10, 3\), expected \(B, 4096, 3\)"):
        splits["celebahq64"]["test"].to_arrays(np.zeros((2, 10, 3)))


def test_function_dataset_is_a_torch_dataset(defaults):
    splits, _ = defaults
    ds = splits["polymnist"]["test"]
    assert isinstance(ds, FunctionDataset) and isinstance(ds, torch.utils.data.Dataset)
    loader = torch.utils.data.DataLoader(ds, batch_size=8)
    first = next(iter(loader))
    assert first.shape == (8, 784, 3)
    torch.testing.assert_close(first, ds.features(range(8)))
    assert ds.labels.shape == (1000, 1)


def test_era5_super_resolution_grid_contains_the_original_points(defaults):
    from vamoh.pointcloud import sphere_coordinates, upsampled_latlon

    splits, _ = defaults
    ds = splits["era5"]["test"]
    lat2, lon2 = upsampled_latlon(ds.latitude, ds.longitude, 2)
    assert (len(lat2), len(lon2)) == (91, 180)  # longitude wraps: 358 lies between 356 and 360 = 0
    fine = sphere_coordinates(lat2, lon2).reshape(91, 180, 3)
    torch.testing.assert_close(fine[::2, ::2].reshape(-1, 3), ds.coords)
