"""Data-layer checks: balanced PolyMNIST splits, honest stand-in labels, the wrapping ERA5 super-
resolution grid, file counts that differ from the real datasets, empty splits, cache records,
the effective train_points and the import order of vamoh.data."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import vamoh.data
from vamoh.checks import ConfigError, DataError
from vamoh.data import DataWarning, load_dataset, load_prepared, prepare, read_meta, read_record, write_real_format
from vamoh.data import celeba, polymnist, shapes3d
from vamoh.data.registry import build
from vamoh.pointcloud import query_grid, sphere_coordinates, upsampled_latlon

try:
    from tests.data_fixtures import TINY, tiny_cfg
except ImportError:
    from data_fixtures import TINY, tiny_cfg

LAT, LON = np.linspace(90, -90, 46), np.linspace(0, 356, 90)


def real(name: str, path: Path, **overrides):
    return build(tiny_cfg(name, source="real", path=str(path), **overrides))


@contextlib.contextmanager
def no_data_warning():
    """A block in which a DataWarning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        yield


# ----------------------------------------------------------------------------- 1. PolyMNIST balance


@pytest.mark.parametrize("n_train, n_test", [(600, 100), (25, 13)])
def test_polymnist_standin_splits_hold_every_digit_equally_often(n_train, n_test):
    raw, _ = build(tiny_cfg("polymnist", n_train=n_train, n_test=n_test))
    for split, n in (("train", n_train), ("test", n_test)):
        counts = np.bincount(raw.labels[split][:, 0], minlength=10)
        assert counts.sum() == n and len(counts) == 10
        assert counts.max() - counts.min() <= 1, (split, counts.tolist())
    again, _ = build(tiny_cfg("polymnist", n_train=n_train, n_test=n_test))
    np.testing.assert_array_equal(again.arrays["train"], raw.arrays["train"])  # deterministic


def test_interleave_classes_takes_classes_round_robin_within_the_split_rule():
    labels = polymnist._mnist()[1]
    train = polymnist.interleave_classes(labels, "train")
    test = polymnist.interleave_classes(labels, "test")
    assert len(train) == 4000 and len(test) == 1000 and not set(train) & set(test)
    # Row j is the (j // 10)-th member of class j % 10, in file order, for the first 400 (train) / last 100 (test).
    for j in (0, 9, 10, 123, 3999):
        assert labels[train[j]] == j % 10 and train[j] == np.flatnonzero(labels == j % 10)[j // 10]
    assert test[17] == np.flatnonzero(labels == 7)[400 + 1]


def test_polymnist_real_layout_follows_the_same_selection(tmp_path):
    root = write_real_format("polymnist", tmp_path, fmt="png", n_train=20, n_test=10)
    digits = sorted(int(p.name.split(".")[1]) for p in (root / "train" / "m1").iterdir())
    assert digits == sorted(list(range(10)) * 2)  # 20 files: every digit twice
    with pytest.warns(DataWarning):
        raw, _ = real("polymnist", root, format="png")
    standin, _ = build(tiny_cfg("polymnist"))
    np.testing.assert_array_equal(raw.labels["train"], standin.labels["train"])
    np.testing.assert_array_equal(raw.arrays["train"], standin.arrays["train"])


# ----------------------------------------------------------------------------- 2. stand-in labels


def test_era5_label_counts_the_augmented_fields():
    raw, facts = build(tiny_cfg("era5", n_train=None, n_val=None, n_test=None))
    label = facts["label"]
    # 10 / 1 / 2 GloSea4 members x 6 months are real; the default 600 / 60 / 120 are filled with anomalies.
    assert raw.meta["augmented"] == {"train": 540, "val": 54, "test": 108}
    assert "78 real fields" in label and "540 of 600 train, 54 of 60 val, 108 of 120 test fields are real fields + seeded smooth synthetic anomalies" in label
    assert label.startswith("ERA5 temperature 46x90 (stand-in: real GloSea4") and "\n" not in label
    raw, facts = build(tiny_cfg("era5", augment=False, n_train=None, n_val=None, n_test=None))
    assert raw.sizes() == {"train": 60, "val": 6, "test": 12}
    assert "78 real fields" in facts["label"] and "synthetic" not in facts["label"] and "anomal" not in facts["label"]
    # Small splits need no anomaly even with augment: the label must not claim one.
    _, facts = build(tiny_cfg("era5", augment=True))
    assert "13 real fields" in facts["label"] and "synthetic" not in facts["label"]
    _, facts = build(tiny_cfg("era5", n_train=70))
    assert "10 of 70 train fields are real fields + seeded smooth synthetic anomalies" in facts["label"]


@pytest.mark.parametrize(
    "name, says, never",
    [("celebahq64", "synthetic", "real"), ("shapes3d", "synthetic", "real"), ("shapenet", "synthetic", "real"), ("polymnist", "real", "synthetic")],
)
def test_standin_labels_say_what_is_real_and_what_synthetic(name, says, never):
    _, facts = build(tiny_cfg(name))
    label = facts["label"].lower()
    assert "stand-in" in label and says in label and never not in label and "\n" not in label


# ----------------------------------------------------------------------------- 3. ERA5 super-resolution grid


@pytest.mark.parametrize("s, shape", [(2, (91, 180)), (3, (46 * 3 - 2, 270))])
def test_sphere_query_grid_wraps_longitude_and_keeps_the_nodes(s, shape):
    fine, fine_shape = query_grid((46, 90), s, sphere=True)
    assert fine_shape == shape and fine.shape == (shape[0] * shape[1], 3)
    coarse, _ = query_grid((46, 90), 1, sphere=True)
    torch.testing.assert_close(coarse, sphere_coordinates(torch.from_numpy(LAT), torch.from_numpy(LON)), atol=1e-6, rtol=0)
    # Every s-th latitude and longitude is an original node.
    torch.testing.assert_close(fine.reshape(*shape, 3)[::s, ::s].reshape(-1, 3), coarse, atol=1e-6, rtol=0)
    # No point twice: the pole rows collapse to one point by geometry, every other point is distinct.
    inner = fine.reshape(*shape, 3)[1:-1].reshape(-1, 3).double()
    assert len(torch.unique(torch.round(inner * 1e5), dim=0)) == len(inner)


def test_upsampled_latlon_wraps_longitude_but_not_latitude():
    lat, lon = upsampled_latlon(torch.from_numpy(LAT), torch.from_numpy(LON), 2)
    np.testing.assert_allclose(lat.numpy(), np.linspace(90, -90, 91), atol=1e-9)
    np.testing.assert_allclose(lon.numpy(), np.arange(0, 360, 2.0), atol=1e-9)  # 358 is there, 360 (= 0) is not
    lat, lon = upsampled_latlon(torch.from_numpy(LAT), torch.linspace(-180, 176, 90, dtype=torch.float64), 2)
    np.testing.assert_allclose(lon.numpy(), np.arange(-180, 180, 2.0), atol=1e-9)
    with pytest.raises(DataError, match=r"longitudes 0\.0\.\.360\.0 degrees: expected a global grid"):
        upsampled_latlon(torch.from_numpy(LAT), torch.linspace(0, 360, 91, dtype=torch.float64), 2)


# ----------------------------------------------------------------------------- 4. counts other than the real dataset's


def test_shapes3d_row_count_other_than_480000_is_reported_and_recorded(tmp_path):
    path = write_real_format("shapes3d", tmp_path, **TINY["shapes3d"])
    with pytest.warns(DataWarning, match=r"Shapes3D: .*3dshapes\.h5 holds 20 rows, expected 480,000"):
        raw, _ = real("shapes3d", path, subset=1.0)
    assert len(raw.meta["warnings"]) == 1 and "holds 20 rows, expected 480,000" in raw.meta["warnings"][0]
    with pytest.warns(DataWarning):
        cached = prepare(tiny_cfg("shapes3d", source="real", path=str(path), subset=1.0), tmp_path / "cache")
    assert "expected 480,000" in read_meta(cached)["details"]["warnings"][0]


def test_shapes3d_row_count_of_the_real_file_is_silent(tmp_path, monkeypatch):
    path = write_real_format("shapes3d", tmp_path, **TINY["shapes3d"])
    monkeypatch.setattr(shapes3d, "N_IMAGES", 20)  # pretend the 20-row file is the full dataset
    with no_data_warning():
        raw, _ = real("shapes3d", path, subset=1.0)
    assert "warnings" not in raw.meta


def test_shapes3d_split_that_would_be_empty_is_an_error(tmp_path):
    path = write_real_format("shapes3d", tmp_path, **TINY["shapes3d"])
    # 10% of 20 rows = 2, cut 80/10/10 -> 1 / 0 / 1.
    with pytest.warns(DataWarning), pytest.raises(DataError, match=r"3dshapes\.h5 holds 20 rows \(expected 480,000\); data\.subset=0\.1 .* gives train 1, val 0, test 1: the val split would be empty"):
        real("shapes3d", path, subset=0.1)
    with pytest.warns(DataWarning):
        raw, _ = real("shapes3d", path, subset=0.1, n_val=0)  # no validation asked for: fine
    assert raw.sizes() == {"train": 1, "val": 0, "test": 1}


def test_celeba_and_polymnist_counts_are_reported(tmp_path, monkeypatch):
    root = write_real_format("celebahq64", tmp_path / "faces", **TINY["celebahq64"])
    with pytest.warns(DataWarning, match=r"CelebA-HQ image folder: .*faces holds 10 images, expected 30,000"):
        raw, _ = real("celebahq64", root)
    assert "expected 30,000" in raw.meta["warnings"][0]
    monkeypatch.setattr(celeba, "REAL_COUNT", 10)
    with no_data_warning():
        real("celebahq64", root)
    root = write_real_format("polymnist", tmp_path / "poly", fmt="pt", **TINY["polymnist"])
    with pytest.warns(DataWarning) as got:
        raw, _ = real("polymnist", root)
    messages = [str(w.message) for w in got]
    assert raw.meta["warnings"] == messages and len(messages) == 2
    assert re.search(r"PolyMNIST train: .*train/m1\.pt holds 20 images, expected 60,000", messages[0])
    assert re.search(r"PolyMNIST test: .*test/m1\.pt holds 10 images, expected 10,000", messages[1])


# ----------------------------------------------------------------------------- 5. ERA5 grid messages


def era5_dir(root: Path, **grid) -> Path:
    for split in ("train", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
        arrays = {"latitude": LAT, "longitude": LON, "temperature": np.full((46, 90), 280.0, np.float32), **grid}
        np.savez(root / split / "00000.npz", **arrays)
    return root


def test_era5_longitudes_from_minus_180_say_where_they_differ(tmp_path):
    root = era5_dir(tmp_path, longitude=np.linspace(-180, 176, 90))
    with pytest.raises(DataError, match=r"00000\.npz: longitude grid does not match GASP's linspace\(0, 356, 90\): first difference at index 0: found -180, expected 0; 90 of 90 values differ, max abs difference 180 degrees"):
        real("era5", root)


def test_era5_grid_message_shows_a_small_difference_exactly(tmp_path):
    lon = LON.copy()
    lon[37] += 0.01
    with pytest.raises(DataError, match=r"longitude grid .* first difference at index 37: found 148\.01, expected 148; 1 of 90 values differ, max abs difference 0\.01 degrees \(tolerance 0\.001\)"):
        real("era5", era5_dir(tmp_path / "a", longitude=lon))
    lat = LAT.copy()
    lat[45] = np.nan
    with pytest.raises(DataError, match=r"latitude grid .* first difference at index 45: found nan, expected -90; 1 of 46 values differ, max abs difference inf"):
        real("era5", era5_dir(tmp_path / "b", latitude=lat))
    with pytest.raises(DataError, match=r"latitude grid has 45 values, expected 46"):
        real("era5", era5_dir(tmp_path / "c", latitude=LAT[:45]))


def test_era5_tensor_grid_message_names_the_channel(tmp_path):
    x = np.zeros((2, 3, 46, 90), np.float32)
    x[:, 0] = LAT[:, None]
    x[:, 1] = np.linspace(-180, 176, 90)[None, :]
    x[:, 2] = 0.5
    for split in ("train", "test"):
        torch.save(torch.from_numpy(x), tmp_path / f"tensor_{split}_rnd.pt")
    with pytest.raises(DataError, match=r"tensor_train_rnd\.pt channel 1 \(sample 0 of 2\): longitude grid .* first difference at index 0: found -180, expected 0"):
        real("era5", tmp_path)


# ----------------------------------------------------------------------------- 6. cache records


def test_the_data_identity_is_its_arrays_not_the_file_bytes(tmp_path):
    """Two builds of the same data are usually two different files (the build time is in the meta) but the
    same data: the content checksum agrees, computed independently from the arrays; different data differs.
    (Two bitwise-identical runs recorded different data checksums.)"""
    import json

    from vamoh.data.cache import arrays_sha256

    a = prepare(tiny_cfg("polymnist"), tmp_path / "a")
    b = prepare(tiny_cfg("polymnist"), tmp_path / "b")
    ra, rb = read_record(a), read_record(b)
    assert ra["content_sha256"] == rb["content_sha256"]  # two builds: the same data
    # the same arrays with another build time in the meta: another file, the same data
    with np.load(a, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta_json"]))
    meta["build_seconds"] += 1.0
    rebuilt = {**arrays, "meta_json": np.array(json.dumps(meta, sort_keys=True))}
    np.savez(tmp_path / "rebuilt.npz", **rebuilt)
    assert hashlib.sha256((tmp_path / "rebuilt.npz").read_bytes()).hexdigest() != ra["sha256"]  # the file differs...
    assert arrays_sha256(rebuilt) == ra["content_sha256"]  # ...the data does not
    with np.load(a, allow_pickle=False) as z:
        h = hashlib.sha256()
        for name in sorted(k for k in z.files if k != "meta_json"):
            h.update(f"{name}|{z[name].dtype.str}|{z[name].shape}|".encode() + np.ascontiguousarray(z[name]).tobytes())
    assert ra["content_sha256"] == h.hexdigest()
    c = prepare(tiny_cfg("polymnist", modality="m2"), tmp_path / "c")
    assert read_record(c)["content_sha256"] != ra["content_sha256"]


def test_read_record_returns_the_checksum_of_the_cache_file(tmp_path):
    path = prepare(tiny_cfg("shapenet"), tmp_path)
    record = read_record(path)
    assert set(record) == {"sha256", "content_sha256", "bytes", "file", "meta"}
    data = path.read_bytes()
    assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["bytes"] == len(data) and record["file"] == path.name
    assert record["meta"] == read_meta(path) and record["meta"]["sizes"] == {"train": 8, "val": 1, "test": 1}
    side = path.with_name(path.name + ".json")
    side.write_text('{"bytes": 3, "file": "x", "meta": {}}')
    with pytest.raises(DataError, match=r"checksum record .*\.npz\.json lacks key\(s\) \['sha256', 'content_sha256'\]"):
        read_record(path)
    side.unlink()
    with pytest.raises(DataError, match=r"its checksum record .* is missing"):
        read_record(path)


# ----------------------------------------------------------------------------- 7. import order


def _imports(path: Path, package: str) -> set[str]:
    """The vamoh.data modules ``path`` imports anywhere (functions included), except under TYPE_CHECKING."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                continue
            if isinstance(child, ast.ImportFrom):
                if child.level == 1:
                    found.update([child.module] if child.module else [a.name for a in child.names])
                elif child.level == 0 and (child.module or "").startswith(package + "."):
                    found.add(child.module[len(package) + 1 :].split(".")[0])
            elif isinstance(child, ast.Import):
                found.update(a.name[len(package) + 1 :].split(".")[0] for a in child.names if a.name.startswith(package + "."))
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m.split(".")[0] for m in found}


def test_data_package_has_no_import_cycle():
    folder = Path(vamoh.data.__file__).parent
    graph = {p.stem: _imports(p, "vamoh.data") - {"__init__"} for p in folder.glob("*.py") if p.stem != "__init__"}
    # the config checks names against the registry's storage in spec, never the registry (which imports the dataset
    # modules, which name the config): spec <- config <- dataset modules <- registry
    assert "spec" in graph["config"] and "registry" not in graph["config"] and not {"celeba", "era5"} & graph["config"]
    # Depth-first search for a back edge.
    state: dict[str, int] = {}

    def cycle_from(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (found := cycle_from(nxt, path + [node])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = cycle_from(start, [])
            assert found is None, f"import cycle in vamoh.data: {' -> '.join(found)}"


def test_config_module_imports_first_in_a_fresh_interpreter():
    code = "import vamoh.data.config as c; from vamoh.data import make_config, DataConfig, DATASETS, get_spec, load_prepared, prepare, write_real_format, read_record, DataWarning; print(sorted(DATASETS))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['celebahq64', 'era5', 'polymnist', 'shapenet', 'shapes3d']"


# ----------------------------------------------------------------------------- 8. train_points reaches the dataset's info


def test_dataset_info_carries_the_effective_train_points(tmp_path):
    path = prepare(tiny_cfg("shapenet"), tmp_path)
    for asked, effective in ((None, 4096), (0, None), (512, 512), (10**6, None)):
        ds = load_prepared(path, train_points=asked)["train"]
        assert ds.info.train_points == effective and ds.train_points == effective, asked
        assert ds.info.coord_dim == 3 and ds.info.grid_shape == (32, 32, 32) and ds.info.likelihood == "bernoulli"
    assert load_dataset(tiny_cfg("shapenet", train_points=100), tmp_path)["train"].info.train_points == 100
    poly = load_dataset(tiny_cfg("polymnist"), tmp_path)["train"]
    assert poly.info.train_points is None and poly.train_batch([0]).num_points == 28 * 28
    with pytest.raises(ConfigError, match=r"train_points=-3: expected a number >= 0"):
        load_prepared(path, train_points=-3)


# ----------------------------------------------------------------------------- 9. empty and short splits


def test_real_split_that_comes_out_empty_is_an_error(tmp_path):
    chairs = tmp_path / "chairs"
    chairs.mkdir()
    torch.save(torch.zeros(32, 32, 32), chairs / "a.pt")  # one file: 80/10/10 gives 0 / 0 / 1
    with pytest.raises(DataError, match=rf"ShapeNet chairs 32\^3: the train split is empty after loading data\.path={chairs} "):
        real("shapenet", chairs, n_train=None, n_val=None, n_test=None)
    poly = write_real_format("polymnist", tmp_path / "poly", fmt="pt", **TINY["polymnist"])
    torch.save(torch.zeros(0, 3, 28, 28), poly / "test" / "m1.pt")
    with pytest.warns(DataWarning), pytest.raises(DataError, match=rf"PolyMNIST: the test split is empty after loading data\.path={poly}"):
        real("polymnist", poly)


def test_fewer_samples_than_asked_for_are_reported(tmp_path):
    chairs = write_real_format("shapenet", tmp_path, **TINY["shapenet"])  # 10 files: 8 / 1 / 1
    with pytest.warns(DataWarning, match=rf"data\.n_test=5 asked for, data\.path={chairs} gives 1 test samples"):
        raw, _ = real("shapenet", chairs, n_test=5)
    assert raw.sizes()["test"] == 1 and "n_test=5" in raw.meta["warnings"][0]
    with pytest.warns(DataWarning, match=r"data\.n_train=4500 asked for, the stand-in gives 4000 train samples"):
        build(tiny_cfg("polymnist", n_train=4500))
