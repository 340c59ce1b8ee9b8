"""Segmentation scores of VAMoH's mixture maps (paper Figures 10, 25), with answers computed by hand:
contiguity normalised for balance (kappa), dependence on the input (mean ARI with the other inputs' maps), agreement
with the true parts of the stand-ins (ARI, against k-means on colour), the tables and the verdict."""

from __future__ import annotations

import colorsys
import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from vamoh.eval import keys
from vamoh.eval.maps import kmeans_parts_ari, parts_ari, position_ari, segment_coherence, segment_kappa
from vamoh.eval.tidy import read_tidy, rows_from_metrics, tidy_frame
from vamoh.report.format import DASH
from vamoh.report.summary import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED
from vamoh.report.summary.segmentation import segmentation_claims
from vamoh.report.tables.mixture import mixture_table

try:
    from tests.data_fixtures import TINY, tiny_cfg
except ImportError:  # pragma: no cover - run from inside tests/
    from data_fixtures import TINY, tiny_cfg


def kappa_of(seg, **kw):
    coh, chance = segment_coherence(seg, **kw)
    return segment_kappa(coh, chance)


# ---------------------------------------------------------------------------------------------- kappa


def test_a_contiguous_blob_scores_its_hand_computed_kappa_not_the_balance_bound():
    seg = np.zeros((1, 16, 16), dtype=np.int64)
    seg[0, 7:9, 7:9] = 1  # a 2x2 blob inside the map
    # 16x16: 2 * 16 * 15 = 480 neighbouring pairs; the blob's border crosses 8 of them
    pairs, border = 2 * 16 * 15, 8
    p = np.array([252, 4]) / 256
    chance = float((p**2).sum())
    coherence = (pairs - border) / pairs
    assert coherence - chance == pytest.approx(0.0141, abs=1e-4)  # the old score: bounded by 1 - chance = 0.031
    expected = 1 - border / (pairs * (1 - chance))  # = (coherence - chance) / (1 - chance)
    assert expected == pytest.approx(0.4583, abs=1e-4)
    assert kappa_of(seg)[0] == pytest.approx(expected, rel=1e-12)
    # two halves: 16 border pairs of the 480, chance 1/2
    halves = np.zeros((1, 16, 16), dtype=np.int64)
    halves[0, :, 8:] = 1
    assert kappa_of(halves)[0] == pytest.approx(1 - 16 / (480 * 0.5), rel=1e-12)


def test_contiguous_segments_with_no_shared_border_score_exactly_one_whatever_their_sizes():
    """Valid points in two islands (occupied voxels of two separate pieces), one component each: no neighbouring
    pair disagrees, so kappa is exactly 1, for a 2-point piece beside a 40-point one as for equal pieces."""
    seg = np.zeros((2, 10, 10), dtype=np.int64)
    valid = np.zeros((2, 10, 10), dtype=bool)
    valid[0, 0, 0:2] = True  # 2 points
    valid[0, 3:8, 2:10] = True  # 40 points
    seg[0, 3:8, 2:10] = 1
    valid[1, 0:3, 0:3] = valid[1, 6:9, 6:9] = True  # 9 and 9
    seg[1, 6:9, 6:9] = 1
    coh, chance = segment_coherence(seg, valid=valid)
    assert list(coh) == [1.0, 1.0] and chance[0] == pytest.approx((2 / 42) ** 2 + (40 / 42) ** 2)
    assert list(segment_kappa(coh, chance)) == [1.0, 1.0]


def test_a_checkerboard_scores_below_zero_and_speckle_near_zero():
    yy, xx = np.mgrid[0:16, 0:16]
    board = ((yy + xx) % 2)[None]
    assert kappa_of(board)[0] == -1.0  # coherence 0, chance 1/2
    rng = np.random.default_rng(0)
    speckle = rng.integers(0, 4, size=(64, 32, 32))
    k = kappa_of(speckle)
    assert abs(k.mean()) < 0.01 and np.abs(k).max() < 0.06
    # speckle with unequal shares: still ~0 (the balance is in the chance level)
    skewed = (rng.random((64, 32, 32)) < 0.1).astype(np.int64)
    assert abs(kappa_of(skewed).mean()) < 0.02


def test_kappa_is_undefined_when_one_component_covers_everything():
    seg = np.zeros((3, 8, 8), dtype=np.int64)
    seg[1, :, 4:] = 1
    seg[2] = 5  # one component, not the first
    k = kappa_of(seg)
    assert np.isnan(k[0]) and np.isnan(k[2]) and np.isfinite(k[1])
    assert np.isnan(segment_kappa(np.array([np.nan]), np.array([0.5])))[0]


# ---------------------------------------------------------------------------------------------- input dependence


def test_a_fixed_partition_by_position_scores_exactly_one_whatever_the_names():
    rng = np.random.default_rng(1)
    base = np.zeros((12, 12), dtype=np.int64)
    base[:6] = 0
    base[6:, :5] = 1
    base[6:, 5:] = 2
    maps = np.stack([rng.permutation(3)[base] for _ in range(7)])  # the same regions, components renamed per sample
    assert (position_ari(maps) == 1.0).all()
    # maps that follow the input (here: random blobs of their own) are far from it
    own = np.stack([(np.add.outer(np.arange(12), np.arange(12)) > rng.integers(4, 20)).astype(np.int64) for _ in range(7)])
    assert position_ari(own).mean() < 0.9
    assert np.isnan(position_ari(maps[:1])).all()  # one sample: no other sample to vote


def test_the_fast_ari_of_position_ari_is_sklearns_to_the_bit():
    from vamoh.eval.maps import _ari

    rng = np.random.default_rng(3)
    for t in range(200):
        n = int(rng.integers(1, 200))
        a = rng.integers(0, int(rng.integers(1, 8)), n)
        b = a.copy() if t % 3 == 0 else (a * 3 + 1) % 7 if t % 5 == 0 else rng.integers(0, int(rng.integers(1, 8)), n)
        assert _ari(a, b) == adjusted_rand_score(a, b)


def test_position_ari_is_the_mean_ari_with_the_other_maps_on_common_valid_points():
    a = np.array([[0, 0, 1, 1]])
    b = np.array([[0, 1, 1, 1]])
    c = np.array([[2, 2, 2, 0]])
    maps = np.stack([a, b, c])  # (3, 1, 4)
    ari = lambda x, y: adjusted_rand_score(x[0], y[0])  # noqa: E731
    expected = [(ari(a, b) + ari(a, c)) / 2, (ari(b, c) + ari(b, a)) / 2, (ari(c, a) + ari(c, b)) / 2]
    np.testing.assert_allclose(position_ari(maps), expected, rtol=1e-12)
    # partners: the next ones in test order, wrapping round
    np.testing.assert_allclose(position_ari(maps, partners=1), [ari(a, b), ari(b, c), ari(c, a)], rtol=1e-12)
    # valid masks: only the points valid in both samples of a pair count
    valid = np.ones(maps.shape, dtype=bool)
    valid[1, 0, 1] = False  # b without its point that disagrees with a
    got = position_ari(maps, valid, partners=1)
    assert got[0] == adjusted_rand_score([0, 1, 1], [0, 1, 1]) == 1.0


# ---------------------------------------------------------------------------------------------- true parts


def test_parts_ari_is_sklearns_on_the_labelled_valid_points():
    seg = np.array([[[0, 0, 1], [1, 2, 2]], [[3, 3, 3], [3, 3, 3]]])
    parts = np.array([[[0, 0, 0], [1, 1, -1]], [[0, 1, 2], [0, 1, 2]]])
    valid = np.ones(seg.shape, dtype=bool)
    valid[0, 0, 0] = False
    got = parts_ari(seg, parts, valid)
    assert got[0] == adjusted_rand_score([0, 0, 1, 1], [0, 1, 1, 2])  # the invalid point and the part -1 are left out
    assert got[1] == adjusted_rand_score([0, 1, 2, 0, 1, 2], [3] * 6) == 0.0


def test_kmeans_baseline_is_sklearn_kmeans_with_k_the_number_of_parts():
    rng = np.random.default_rng(2)
    parts = np.zeros((2, 8, 8), dtype=np.int64)
    parts[:, 4:] = 1
    parts[1, :, 6:] = 2
    colours = np.array([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.1, 0.1, 0.9]])[parts] + rng.normal(0, 0.02, (2, 8, 8, 3))
    got = kmeans_parts_ari(colours, parts)
    assert list(got) == [1.0, 1.0]  # flat colours: k-means finds the parts
    noisy = rng.random((2, 8, 8, 3))
    got = kmeans_parts_ari(noisy, parts)
    for i, k in enumerate((2, 3)):
        pred = KMeans(n_clusters=k, n_init=4, random_state=0).fit_predict(noisy[i].reshape(-1, 3))
        assert got[i] == adjusted_rand_score(parts[i].reshape(-1), pred)


# ---------------------------------------------------------------------------------------------- the Shapes3D stand-in


def test_shapes3d_standin_parts_agree_with_its_render():
    from vamoh.data import shapes3d

    hues = (0.0, 0.35, 0.65)  # floor, wall, object: far apart on the colour wheel
    images, parts = [], []
    for shape in range(4):
        for scale, orientation in ((0.75, -30.0), (1.25, 30.0), (1.0, 0.0)):
            labels = np.array([*hues, scale, shape, orientation])
            img, part = shapes3d._render(labels, 64, 2)
            np.testing.assert_array_equal(img, shapes3d.render(labels))  # the render is what it was
            images.append(img)
            parts.append(part)
    parts = np.stack(parts)
    assert parts.dtype == np.int8 and set(np.unique(parts)) == {0, 1, 2}
    assert all(set(np.unique(p)) == {shapes3d.WALL, shapes3d.FLOOR, shapes3d.OBJECT} for p in parts)  # every image has all three
    assert (parts[:, 0, :] == shapes3d.WALL).all() and (parts[:, 56:, :] == shapes3d.FLOOR).all()  # wall on top, floor at the bottom
    assert not (parts[:, :34] == shapes3d.FLOOR).any()  # nothing above the horizon is floor
    for img, part in zip(images, parts):
        hsv = np.array([colorsys.rgb_to_hsv(*px) for px in img.reshape(-1, 3) / 255.0]).reshape(64, 64, 3)
        for label, hue in ((shapes3d.FLOOR, hues[0]), (shapes3d.WALL, hues[1]), (shapes3d.OBJECT, hues[2])):
            h = hsv[..., 0][part == label]
            gap = np.minimum(np.abs(h - hue), 1 - np.abs(h - hue))
            assert np.median(gap) < 0.02, (label, np.median(gap))


def test_the_parts_travel_with_the_test_split_through_the_cache(tmp_path):
    from vamoh.data import CACHE_VERSION, load_prepared, prepare, read_meta, write_real_format

    assert CACHE_VERSION >= 2  # v1 caches have no parts: rebuilt
    path = prepare(tiny_cfg("shapes3d"), tmp_path / "cache")
    splits = load_prepared(path)
    test = splits["test"]
    assert test.parts is not None and test.parts.shape == (len(test), 64, 64) and test.parts.dtype == np.int8
    from vamoh.data import shapes3d

    idx = shapes3d._standin_rows(tiny_cfg("shapes3d"))["test"]
    np.testing.assert_array_equal(test.parts, shapes3d.render_rows(idx, with_parts=True)[2])
    assert read_meta(path)["details"]["part_names"] == ["wall", "floor", "object"]
    # real data (here the stand-in written in the real format) and data without parts carry none
    root = write_real_format("shapes3d", tmp_path / "real", **TINY["shapes3d"])
    with pytest.warns(Warning, match="holds 20 rows"):  # a small file: said so, and read
        real = load_prepared(prepare(tiny_cfg("shapes3d", source="real", path=str(root), subset=1.0), tmp_path / "cache"))
    assert real["test"].parts is None
    assert load_prepared(prepare(tiny_cfg("polymnist"), tmp_path / "cache"))["test"].parts is None


def test_face_standin_parts_agree_with_its_drawing():
    from vamoh.data import celeba
    from vamoh.data.registry import build

    for i in range(4):
        img, parts = celeba.face(np.random.default_rng([0, i]), with_parts=True)
        np.testing.assert_array_equal(img, celeba.face(np.random.default_rng([0, i])))  # the drawing is what it was
        assert parts.shape == (128, 128) and parts[0, 0] == celeba.BACKGROUND and parts[64, 64] == celeba.FACE
        assert {celeba.BACKGROUND, celeba.FACE, celeba.HAIR_PART, celeba.CLOTHES} <= set(np.unique(parts))
        assert celeba.CLOTHES in parts[-1] and celeba.CLOTHES not in parts[:64]  # shoulders at the bottom
        for part in (celeba.HAIR_PART, celeba.CLOTHES):  # drawn in one flat colour each: the part is that colour
            assert len(np.unique(img[parts == part], axis=0)) == 1
    raw, _ = build(tiny_cfg("celebahq64", n_test=3))
    assert raw.parts["test"].shape == (3, 64, 64) and raw.meta["part_names"] == ["background", "clothes", "hair", "face"]
    # at 64x64, each pixel is the part most of its 2x2 block shows
    big = np.kron(np.array([[0, 2], [3, 1]]), np.ones((2, 2), dtype=int))[None]
    np.testing.assert_array_equal(celeba.downsample_parts(big, 2), [[[0, 2], [3, 1]]])
    tie = np.array([[[0, 3], [3, 0]]])  # 2 votes each: the later part wins
    assert celeba.downsample_parts(tie, 1)[0, 0, 0] == 3


def test_chair_standin_parts_cover_exactly_the_occupied_voxels():
    from vamoh.data import shapenet

    for i in range(6):
        vox, parts = shapenet.chair(np.random.default_rng([0, i]), with_parts=True)
        np.testing.assert_array_equal(vox, shapenet.chair(np.random.default_rng([0, i])))
        np.testing.assert_array_equal(parts >= 0, vox == 1)  # a part for every occupied voxel, none elsewhere
        assert shapenet.SEAT in parts and shapenet.BACK in parts and shapenet.LEGS in parts
        assert set(np.unique(parts[:, 0, :])) <= {-1, shapenet.LEGS}  # the floor layer (y = 0) holds legs or base only


# ---------------------------------------------------------------------------------------------- evaluation, tables, verdict


class FixedPartition(torch.nn.Module):
    """A mixture whose argmax ignores the input: the left third, the middle and the right third of the grid."""

    can_reconstruct = False

    def __init__(self, K: int = 3) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.num_components = K

    @property
    def device(self):
        return self.p.device

    def mixture_maps(self, observed, query_coords=None):
        B, Q = observed.features.shape[:2]
        x = observed.coords[..., -1].contiguous()  # (B, Q) in [-1, 1]
        seg = torch.bucketize(x, torch.tensor([-1 / 3, 1 / 3])).clamp(max=self.num_components - 1)
        return {"entropy": torch.full((B, Q), 0.05), "segmentation": seg.long()}


def _evaluate(name, model, tmp_path, **data_kw):
    from vamoh.data import load_dataset
    from vamoh.eval.config import EvalConfig
    from vamoh.eval.evaluate import EvalData, evaluate_model, write_evaluation

    splits = load_dataset(tiny_cfg(name, **data_kw), tmp_path / "cache")
    data = EvalData.from_split(splits["test"], f"{name} (stand-in)", True, batch_size=3)
    ev = evaluate_model(model, data, EvalConfig(device="cpu"), entry="vamoh", label="VAMoH", seed=0, run="t", generation=False)
    write_evaluation(ev, tmp_path / "metrics.json", tmp_path / "scores.npz")
    return ev


def test_a_fixed_partition_is_scored_saved_recomputed_and_judged_not_reproduced(tmp_path):
    from vamoh.eval.io import read_json
    from vamoh.eval.recompute import compare, recompute_metrics

    ev = _evaluate("shapes3d", FixedPartition(), tmp_path, n_test=7)
    m = read_json(tmp_path / "metrics.json", keys.METRICS_SCHEMA)["metrics"]
    assert m[keys.SEGMENT_POSITION_ARI]["values"] == [1.0] * 7  # the same partition for every input
    assert m[keys.SEGMENT_KAPPA]["mean"] == pytest.approx(1 - 2 * 64 / (2 * 64 * 63 * (1 - m[keys.SEGMENT_CHANCE]["mean"])))
    assert m[keys.SEGMENT_PARTS_ARI]["n"] == 7 and m[keys.SEGMENT_PARTS_ARI_KMEANS]["n"] == 7
    assert m[keys.SEGMENT_PARTS_ARI_KMEANS]["mean"] > m[keys.SEGMENT_PARTS_ARI]["mean"]  # colour finds the parts better
    with np.load(tmp_path / "scores.npz") as z:
        assert all(k in z.files for k in keys.SEGMENTATION_KEYS)
    again = recompute_metrics(tmp_path / "metrics.json")
    assert set(again) >= set(keys.SEGMENTATION_KEYS) and compare(m, again) == []
    t = read_tidy(tidy_frame(rows_from_metrics(tmp_path / "metrics.json")))
    (v,) = segmentation_claims(t, ["shapes3d"])
    assert v.verdict == NOT_REPRODUCED and "partition by position" in v.reason and "k-means" in v.measured
    table = mixture_table(t).frame.iloc[0]
    assert table["Position ARI"].startswith("1.000") and table["Parts ARI"] != DASH and table["k-means ARI (baseline)"] != DASH


def test_voxels_are_scored_on_the_occupied_voxels_against_k_means_on_their_coordinates(tmp_path):
    from vamoh.eval.io import read_json
    from vamoh.eval.recompute import compare, recompute_metrics

    _evaluate("shapenet", FixedPartition(), tmp_path, n_test=3)
    m = read_json(tmp_path / "metrics.json", keys.METRICS_SCHEMA)["metrics"]
    assert m[keys.SEGMENT_PARTS_ARI]["n"] == 3 and m[keys.SEGMENT_PARTS_ARI_KMEANS]["n"] == 3
    assert all(np.isfinite(m[keys.SEGMENT_POSITION_ARI]["values"]))
    assert compare(m, recompute_metrics(tmp_path / "metrics.json")) == []


def test_without_parts_the_part_scores_are_absent_and_one_component_leaves_kappa_undefined(tmp_path):
    from vamoh.eval.io import read_json
    from vamoh.eval.recompute import compare, recompute_metrics

    _evaluate("polymnist", FixedPartition(K=1), tmp_path, n_test=5)
    m = read_json(tmp_path / "metrics.json", keys.METRICS_SCHEMA)["metrics"]
    for k in (keys.SEGMENT_PARTS_ARI, keys.SEGMENT_PARTS_ARI_KMEANS):
        assert m[k]["mean"] is None and m[k]["n"] == 0  # not applicable, not NaN
    assert m[keys.SEGMENT_KAPPA]["mean"] is None and "undefined" in m[keys.SEGMENT_KAPPA]["note"]
    assert m[keys.SEGMENT_COHERENCE]["mean"] == 1.0  # what made K = 1 look best
    with np.load(tmp_path / "scores.npz") as z:
        assert keys.SEGMENT_PARTS_ARI not in z.files and np.isnan(z[keys.SEGMENT_KAPPA]).all()
    assert compare(m, recompute_metrics(tmp_path / "metrics.json")) == []
    t = read_tidy(tidy_frame(rows_from_metrics(tmp_path / "metrics.json")))
    row = mixture_table(t).frame.iloc[0]
    assert row["Contiguity κ"] == "undefined" and row["Parts ARI"] == DASH
    (v,) = segmentation_claims(t, ["polymnist"])
    assert v.verdict == NOT_REPRODUCED and "nothing is segmented" in v.reason


def _row(d, metric, values, model="vamoh", seed=0):
    values = [float(v) for v in values]
    finite = [v for v in values if np.isfinite(v)]
    return dict(dataset=d, model=model, label="VAMoH", kind="model", seed=seed, metric=metric, split="",
                mean=float(np.mean(finite)) if finite else None, std=0.0, n=len(finite), values=json.dumps(finite),
                batch_size=None, is_standin=True, data_label=f"{d} (stand-in)", feature_extractor="", num_samples=0, device="cpu: test", note="")


def _seg_rows(d, kappa, position, entropy=0.2, parts=None, kmeans=None, n=60, seed=0):
    rng = np.random.default_rng(seed)
    noise = lambda s: rng.normal(0, s, n)  # noqa: E731
    rows = [_row(d, keys.SEGMENT_COHERENCE, 0.9 + noise(0.01)), _row(d, keys.SEGMENT_CHANCE, 0.4 + noise(0.01)),
            _row(d, keys.MIXTURE_ENTROPY, entropy + noise(0.01)),
            _row(d, keys.SEGMENT_KAPPA, kappa if np.ndim(kappa) else kappa + noise(0.02)),
            _row(d, keys.SEGMENT_POSITION_ARI, position if np.ndim(position) else position + noise(0.02))]
    if parts is not None:
        rows += [_row(d, keys.SEGMENT_PARTS_ARI, parts + noise(0.02)), _row(d, keys.SEGMENT_PARTS_ARI_KMEANS, kmeans + noise(0.02))]
    return rows


def test_the_verdict_needs_contiguity_input_dependence_low_entropy_and_parts_beyond_kmeans():
    frame = pd.DataFrame(
        _seg_rows("polymnist", 0.85, 0.3)  # contiguous, input-dependent, low entropy: reproduced
        + _seg_rows("era5", 0.85, np.ones(60))  # a fixed partition by position: not reproduced
        + _seg_rows("shapes3d", 0.85, 0.5, parts=0.4, kmeans=0.8)  # segments, but colour k-means finds the parts better
        + _seg_rows("celebahq64", 0.85, 0.5, parts=0.9, kmeans=0.6)  # and beats it
        + _seg_rows("shapenet", 0.5, 0.5)  # kappa's interval straddles the margin
        + [_row("mnist_old", keys.SEGMENT_COHERENCE, [0.9] * 5), _row("mnist_old", keys.MIXTURE_ENTROPY, [0.1] * 5)]  # before the scores
    )
    t = read_tidy(frame)
    got = {v.dataset: v for v in segmentation_claims(t, ["polymnist", "era5", "shapes3d", "celebahq64", "shapenet", "mnist_old"])}
    assert got["polymnist"].verdict == REPRODUCED
    assert got["era5"].verdict == NOT_REPRODUCED and "partition by position" in got["era5"].reason
    assert got["shapes3d"].verdict == NOT_REPRODUCED and "parts ARI above the k-means baseline" in got["shapes3d"].reason
    assert "true parts ARI = 0.40" in got["shapes3d"].measured and "vs k-means on colour 0.79" in got["shapes3d"].measured
    assert got["celebahq64"].verdict == REPRODUCED and "above k-means" in got["celebahq64"].reason
    assert got["shapenet"].verdict == INCONCLUSIVE
    assert got["mnist_old"].verdict == NOT_TESTABLE
    for v in got.values():
        if v.verdict != NOT_TESTABLE:
            assert "κ above 0.5" in v.reason and "position ARI below 0.9" in v.reason


def test_ablation_tables_print_kappa_and_a_dash_where_one_component_leaves_it_undefined(tmp_path):
    from vamoh.pipeline.runconfig import RunConfig
    from vamoh.eval.ablation_metrics import STANDARD
    from vamoh.report.ablations import write_ablation_report

    assert "segment_kappa" in STANDARD and "segment_coherence" not in STANDARD
    raw = {"run": "abl", "datasets": ["polymnist"], "models": ["vamoh"], "seeds": [0, 1, 2], "device": "cpu", "threads": 1,
           "data": {"source": "standin", "settings": {"polymnist": {"n_train": 32, "n_test": 8}}},
           "model_settings": {"vamoh": {"preset": "tiny"}}, "train": {"max_steps": 2, "batch_size": 16, "progress": False},
           "ablations": {"mixture": {"model": "vamoh", "question": "Does the mixture help?", "variants": {"K1": {"K": 1}, "K3": {}},
                                     "default": "K3", "metrics": ["segment_kappa", "segment_coherence"]}}}
    ab = RunConfig.from_dict(raw).ablations()
    rows = []
    for s in range(3):
        rows += [_row("polymnist", keys.SEGMENT_COHERENCE, [1.0], model="vamoh-mixture-K1", seed=s),
                 dict(_row("polymnist", keys.SEGMENT_KAPPA, [], model="vamoh-mixture-K1", seed=s), mean=None),  # not applicable
                 _row("polymnist", keys.SEGMENT_COHERENCE, [0.9 + 0.01 * s], seed=s), _row("polymnist", keys.SEGMENT_KAPPA, [0.8 + 0.01 * s], seed=s)]
    summaries = [{"dataset": "polymnist", "model": e, "seed": s, "samples_per_second": 1.0, "seconds": 1.0, "model_config": {"K": k}}
                 for e, k in (("vamoh", 3), ("vamoh-mixture-K1", 1)) for s in range(3)]
    measured = pd.DataFrame(columns=["question", "dataset", "model", "seed", "metric", "value"])
    write_ablation_report(ab, pd.DataFrame(rows), summaries, measured, tmp_path, {})
    table = pd.read_csv(tmp_path / "ablation_mixture.csv", comment="#").set_index("Variant")
    kappa = [c for c in table.columns if c.startswith("Segment contiguity κ")][0]
    raw_coh = [c for c in table.columns if c.startswith("Segment coherence (raw)")][0]
    assert table.loc["K1", kappa] == DASH and table.loc["K3 (default)", kappa].startswith("0.810")
    assert table.loc["K1", raw_coh].startswith("1.000")  # still there on request, said to be raw
    md = (tmp_path / "ablation_mixture.md").read_text()
    assert "undefined" in md and "K = 1" in md
