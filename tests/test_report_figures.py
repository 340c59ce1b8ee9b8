"""Figures from figures.npz files (synthetic, and the real arrays of a tiny model), histories and a tidy table:
every PNG written and valid, voxels drawn upright, entropy scaled by ln K with a colour bar and a legend."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vamoh.report import figures, pictures  # noqa: E402
from vamoh.report.figures import write_figures  # noqa: E402
from vamoh.report.pictures import load_arrays, render_voxels, to_rgb  # noqa: E402

try:
    from vamoh_fixtures import BlobImages, tiny_model
except ImportError:  # tests/ imported as a package
    from tests.vamoh_fixtures import BlobImages, tiny_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N = 3  # samples per array
# dataset -> (grid, channels, kind); small grids keep the test fast
GRIDS = {"polymnist": ((8, 8), 3, "image"), "era5": ((6, 12), 1, "field"), "shapenet": ((6, 6, 6), 1, "voxels")}
LABELS = {"vamoh": "VAMoH", "gasp": "GASP", "functa": "Functa (3)", "functa10": "Functa (10)"}


def _pic(rng, n, grid, f, kind):
    x = rng.random((n, *grid, f), dtype=np.float32)
    return np.rint(x * 255).astype(np.uint8) if kind == "image" else x.astype(np.float16)


def _arrays(d: str, model: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    grid, f, kind = GRIDS[d]
    g2 = tuple(2 * s - 1 for s in grid)  # the suite's 2x grid keeps the original points
    a = {"dataset": np.array(d), "model": np.array(model), "label": np.array(LABELS[model]), "data_label": np.array(f"{d} label")}
    if model != "functa10":
        a.update(samples_1x=_pic(rng, N, grid, f, kind), samples_2x=_pic(rng, N, g2, f, kind))
    if model == "gasp":
        return a
    a["ground_truth"] = _pic(rng, N, grid, f, kind)
    a["recon_1x"], a["recon_2x"] = _pic(rng, N, grid, f, kind), _pic(rng, N, g2, f, kind)
    for task in ("centre", "half", "outpaint"):
        mask = np.ones(grid, bool)
        mask[grid[0] // 3: 2 * grid[0] // 3] = False
        a[f"completion_{task}_mask"] = mask
        a[f"completion_{task}"] = _pic(rng, N, grid, f, kind)
    if model == "vamoh":
        a["entropy"] = rng.random((N, *grid), dtype=np.float32)
        a["segmentation"] = rng.integers(0, 3, (N, *grid)).astype(np.int16)
        a["num_components"] = np.array(3)
    return a


def _tidy() -> pd.DataFrame:
    rows = []
    for d in GRIDS:
        for m, vals in (("vamoh", [30.0, 31.0, 29.5, 32.0]), ("functa", []), ("mean_image", [20.0, 21.0])):
            rows.append(dict(dataset=d, model=m, label=LABELS.get(m, "Train mean (baseline)"), seed=0, metric="psnr", mean=30.0,
                             values=json.dumps(vals)))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    arrays, histories = [], []
    for d in GRIDS:
        for m in LABELS:
            path = root / f"{d}_{m}_figures.npz"
            np.savez_compressed(path, **_arrays(d, m, rng))
            arrays.append(path)
            hist = root / f"{d}_{m}_history.csv"
            steps = np.arange(20)
            pd.DataFrame({"step": steps, "loss": 100.0 / (1 + steps) - 3, "elbo_per_point": -3 + 2 * (1 - np.exp(-steps / 5)),
                          "psnr": 10 + steps / 2, "loss_d": 1.0 + 0 * steps, "loss_g": 0.7 + 0 * steps}).to_csv(hist, index=False)
            histories.append(({"dataset": d, "model": m, "model_name": m.rstrip("0123456789"), "label": LABELS[m]}, hist))
    return root, arrays, histories


def test_every_figure_is_a_valid_png(inputs, tmp_path, monkeypatch):
    _, arrays, histories = inputs
    titles: dict[str, str] = {}
    save = figures.save

    def record(fig, path):  # every text of the figure, to check the stand-in labelling
        titles[path.name] = " ".join([fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes])
        return save(fig, path)

    monkeypatch.setattr(figures, "save", record)
    labels = {"polymnist": "PolyMNIST (stand-in: synthetic digits)", "shapenet": "ShapeNet (stand-in: chairs)", "era5": "ERA5"}
    paths = write_figures(_tidy(), arrays, histories, tmp_path / "figs", labels)
    expected = {f"generation_{d}_{m}.png" for d in GRIDS for m in ("gasp", "functa", "vamoh")}
    expected |= {f"{kind}_{d}.png" for d in GRIDS for kind in ("reconstruction", "completion", "mixture_maps")}
    expected |= {"figure7_psnr.png", "training_curves.png"}
    assert {p.name for p in paths} == expected
    for p in paths:
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 1000, p
        img = mpimg.imread(p)
        assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50, p
        assert img.std() > 0, f"{p} is blank"
    assert "PolyMNIST (stand-in: synthetic digits)" in titles["generation_polymnist_vamoh.png"]
    assert "stand-in" not in titles["generation_era5_gasp.png"]
    for name in ("figure7_psnr.png", "training_curves.png"):
        assert "stand-in data: PolyMNIST, ShapeNet" in titles[name]


def test_missing_files_are_named(inputs, tmp_path):
    root, arrays, histories = inputs
    with pytest.raises(FileNotFoundError, match=r"nowhere/figures\.npz"):
        write_figures(_tidy(), [*arrays, root / "nowhere" / "figures.npz"], histories, tmp_path, {})
    with pytest.raises(FileNotFoundError, match="nowhere/history.csv"):
        write_figures(_tidy(), [], [(histories[0][0], root / "nowhere" / "history.csv")], tmp_path, {})
    with pytest.raises(ValueError, match="cannot read figure arrays"):
        bad = tmp_path / "bad.npz"
        bad.write_bytes(b"not a zip")
        load_arrays(bad)


def test_to_rgb_per_kind():
    img = np.random.default_rng(1).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    assert np.allclose(to_rgb(img, "image"), img / 255.0)
    field = to_rgb(np.full((2, 3, 1), 0.5, np.float16), "field")
    assert field.shape == (2, 3, 3) and np.allclose(field[0, 0], matplotlib.colormaps[pictures.FIELD_CMAP](0.5)[:3])


def test_voxels_are_rendered_upright_and_thresholded():
    empty = np.zeros((16, 16, 16), np.float32)
    assert (render_voxels(empty) == 1.0).all()  # nothing above the threshold: a white picture
    pole = empty.copy()
    pole[7:9, :, 7:9] = 0.9  # a vertical pole (y is up in ShapeNet's axes)
    slab = empty.copy()
    slab[:, 7:9, 7:9] = 0.9  # the same pole lying along x
    faint = empty.copy()
    faint[7:9, :, 7:9] = 0.4  # below the 0.5 threshold: not drawn
    assert (render_voxels(faint) == 1.0).all()

    def extent(pic):
        ys, xs = np.nonzero((pic < 1.0).any(-1))
        return ys.max() - ys.min() + 1, xs.max() - xs.min() + 1

    h, w = extent(render_voxels(pole))
    assert h > 3 * w, (h, w)  # drawn standing up
    h2, w2 = extent(render_voxels(slab))
    assert w2 > 2 * h2, (h2, w2)


def test_entropy_maps_are_scaled_by_ln_k_with_colour_bar_and_legend(tmp_path):
    """With uniform mixture weights every point's entropy is ln K: the stored map must read 1 everywhere (it was
    scaled by ln(components that ever win)); the figure has a colour bar from 0 to 1 and a legend of the K components."""
    from vamoh.eval.arrays import figure_arrays
    from vamoh.eval.evaluate import EvalData

    data = BlobImages(n=4, size=8, seed=0)
    model = tiny_model(data, K=4)
    for net in (model.prior_c, model.posterior_c):
        torch.nn.init.zeros_(net.layers[-1].weight)
        torch.nn.init.zeros_(net.layers[-1].bias)
    ev = EvalData("blobs", "blobs", True, "image", data.grid_shape, False, [data.batch(torch.arange(4))])
    arrays = figure_arrays(model, ev, num_samples=4, num_examples=4, seed=0)
    np.testing.assert_allclose(arrays["entropy"], 1.0, rtol=1e-5)
    assert int(arrays["num_components"]) == 4 and math.isclose(np.log(4), 1.3862943611198906)
    arrays.update(dataset=np.array("blobs"), model=np.array("vamoh"), label=np.array("VAMoH"))
    captured = {}
    save = figures.save
    figures.save = lambda fig, path: captured.setdefault("fig", fig) and save(fig, path)
    try:
        figures.maps_figure({"vamoh": arrays}, "blobs", tmp_path / "maps.png")
    finally:
        figures.save = save
    fig = captured["fig"]
    bars = [ax for ax in fig.axes if ax.get_ylabel() == "H(π) / ln K"]
    assert len(bars) == 1 and bars[0].get_ylim() == (0.0, 1.0)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [f"component {k}" for k in range(4)]


def test_long_titles_wrap_inside_the_figure():
    from vamoh.report.pictures import grid_figure

    pics = [np.zeros((8, 8, 3))] * 3
    label = "CelebA-HQ 64 (stand-in: procedural faces, not the paper's data; autoencoder features, not Inception)"
    fig = grid_figure([("VAMoH", pics), ("GASP", pics)], f"Reconstruction (1x) and super-reconstruction (2x) — {label}", "image")
    fig.canvas.draw()
    box, title = fig.bbox, fig.texts[0]
    extent = title.get_window_extent(fig.canvas.get_renderer())
    assert "\n" in title.get_text()  # it had to wrap: on one line it is far wider than the figure
    assert extent.x0 >= box.x0 and extent.x1 <= box.x1 and extent.y1 <= box.y1, (extent, box)
    figures.plt.close(fig)
