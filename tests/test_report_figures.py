"""Figures from synthetic figures.npz files, histories and a tidy table: every PNG written and valid."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from vamoh.report import figures  # noqa: E402
from vamoh.report.figures import load_arrays, map_to_rgb, to_rgb, write_figures  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N = 3  # samples per array
# dataset -> (grid, channels); small grids keep the test fast
GRIDS = {"polymnist": ((8, 8), 3), "era5": ((6, 12), 1), "shapenet": ((6, 6, 6), 1)}


def _arrays(model: str, grid: tuple[int, ...], f: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    g2 = tuple(2 * s - 1 for s in grid)  # the suite's 2x grid keeps the original points
    a = {"samples_1x": rng.random((N, *grid, f), dtype=np.float32), "samples_2x": rng.random((N, *g2, f), dtype=np.float32)}
    if model == "gasp":
        return a
    a["ground_truth"] = rng.random((N, *grid, f), dtype=np.float32)
    for suffix in ("_steps3", "_steps10") if model == "functa" else ("",):
        a["recon_1x" + suffix] = rng.random((N, *grid, f), dtype=np.float32)
        a["recon_2x" + suffix] = rng.random((N, *g2, f), dtype=np.float32)
    if len(grid) == 2:
        for task in ("centre", "half", "outpaint"):
            mask = np.ones(grid, bool)
            mask[grid[0] // 3: 2 * grid[0] // 3] = False
            a[f"completion_{task}_mask"] = mask
            a[f"completion_{task}"] = rng.random((N, *grid, f), dtype=np.float32)
    if model == "vamoh":
        a["entropy"] = rng.random((N, *grid), dtype=np.float32)
        a["segmentation"] = rng.integers(0, 3, (N, *grid))
    return a


def _tidy() -> pd.DataFrame:
    rows = []
    for d in GRIDS:
        for m, vals in (("vamoh", [30.0, 31.0, 29.5, 32.0]), ("functa", [])):
            rows.append(dict(dataset=d, model=m, seed=0, metric="psnr", split="", mean=30.0, std=1.0, n=4, values=json.dumps(vals),
                             batch_size=None, is_standin=d != "era5", data_label=f"{d} label", feature_extractor="", num_samples=0,
                             device="cpu"))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    arrays, histories = {}, {}
    for d, (grid, f) in GRIDS.items():
        for m in ("gasp", "functa", "vamoh"):
            arrays[(d, m)] = root / f"{d}_{m}_figures.npz"
            np.savez_compressed(arrays[(d, m)], **_arrays(m, grid, f, rng))
            histories[(d, m)] = root / f"{d}_{m}_history.csv"
            steps = np.arange(20)
            pd.DataFrame({"step": steps, "epoch": steps // 5, "seconds": steps * 0.1, "loss": 100.0 / (1 + steps) - 3}).to_csv(
                histories[(d, m)], index=False)
    return root, arrays, histories


def test_every_figure_is_a_valid_png(inputs, tmp_path, monkeypatch):
    _, arrays, histories = inputs
    titles: dict[str, str] = {}
    save = figures._save

    def record(fig, path):  # every text of the figure, to check the stand-in labelling
        titles[path.name] = " ".join([fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes])
        return save(fig, path)

    monkeypatch.setattr(figures, "_save", record)
    paths = write_figures(_tidy(), arrays, histories, tmp_path / "figs", {"polymnist": "PolyMNIST (stand-in: synthetic digits)"})
    expected = {f"{kind}_{d}.png" for d in GRIDS for kind in ("generation", "reconstruction", "mixture_maps")}
    expected |= {"completion_polymnist.png", "completion_era5.png", "figure7_psnr.png", "training_curves.png"}
    assert {p.name for p in paths} == expected
    for p in paths:
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 1000, p
        img = mpimg.imread(p)
        assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50, p
        assert img.std() > 0, f"{p} is blank"
    assert "PolyMNIST (stand-in: synthetic digits)" in titles["generation_polymnist.png"]
    assert "stand-in data" in titles["reconstruction_shapenet.png"]  # no given label: the tidy flag adds it
    assert "stand-in" not in titles["generation_era5.png"]
    for name in ("figure7_psnr.png", "training_curves.png"):
        assert "stand-in data: PolyMNIST, ShapeNet" in titles[name]


def test_missing_npz_names_the_file(inputs, tmp_path):
    root, arrays, histories = inputs
    missing = root / "nowhere" / "figures.npz"
    with pytest.raises(FileNotFoundError, match=r"\(shapenet, vamoh\).*nowhere/figures\.npz"):
        write_figures(_tidy(), {**arrays, ("shapenet", "vamoh"): missing}, histories, tmp_path, {})
    with pytest.raises(FileNotFoundError, match="nowhere/history.csv"):
        write_figures(_tidy(), {}, {("era5", "gasp"): root / "nowhere" / "history.csv"}, tmp_path, {})


def test_missing_array_names_key_and_file(tmp_path):
    path = tmp_path / "figures.npz"
    np.savez(path, samples_1x=np.zeros((1, 4, 4, 3), np.float32))
    assert set(load_arrays(path, "polymnist", "gasp")) == {"samples_1x"}
    with pytest.raises(KeyError, match=r"figures\.npz.*samples_2x"):
        write_figures(_tidy(), {("polymnist", "gasp"): path}, {}, tmp_path / "out", {})


def test_to_rgb_per_kind():
    img = np.random.default_rng(1).random((4, 5, 3), dtype=np.float32)
    assert np.array_equal(to_rgb(img, "celebahq64"), img)
    vox = np.zeros((3, 4, 4, 1), np.float32)
    vox[2, 1, 3, 0] = 0.9  # one occupied voxel deep inside: seen in the max projection
    proj = to_rgb(vox, "shapenet")
    assert proj.shape == (4, 4, 3) and np.allclose(proj[1, 3], 0.9) and proj.sum() == pytest.approx(0.9 * 3)
    field = to_rgb(np.full((2, 3, 1), 0.5, np.float32), "era5")
    assert field.shape == (2, 3, 3) and np.allclose(field[0, 0], matplotlib.colormaps[figures.FIELD_CMAP](0.5)[:3])


def test_voxel_maps_show_the_first_occupied_voxel():
    occ = np.zeros((3, 2, 2, 1), np.float32)
    occ[1, 0, 0] = occ[2, 0, 0] = 1.0  # (0, 0) seen at depth 1; (1, 1) empty
    occ[0, 1, 1] = 1.0
    seg = np.zeros((3, 2, 2), int)
    seg[1, 0, 0], seg[2, 0, 0], seg[0, 1, 1] = 2, 1, 0
    rgb = map_to_rgb(seg, "segmentation", occ)
    tab = matplotlib.colormaps["tab10"]
    assert np.allclose(rgb[0, 0], tab(2)[:3]) and np.allclose(rgb[1, 1], tab(0)[:3])
    assert np.allclose(rgb[0, 1], 1.0)  # empty column drawn white


def test_long_titles_wrap_inside_the_figure():
    from vamoh.report.figures import _grid_figure

    pics = [np.zeros((8, 8, 3))] * 3
    label = "CelebA-HQ 64 (stand-in: procedural faces, not the paper's data; autoencoder features, not Inception)"
    fig = _grid_figure([("VAMoH", pics), ("GASP", pics)], f"Reconstruction (1x) and super-reconstruction (2x) — {label}")
    fig.canvas.draw()
    box, title = fig.bbox, fig.texts[0]
    extent = title.get_window_extent(fig.canvas.get_renderer())
    assert "\n" in title.get_text()  # it had to wrap: on one line it is far wider than the 5.1-inch figure
    assert extent.x0 >= box.x0 and extent.x1 <= box.x1 and extent.y1 <= box.y1, (extent, box)
    figures.plt.close(fig)
