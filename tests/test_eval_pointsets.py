"""Surface sampling of voxel grids, Chamfer distance and COV / MMD / 1-NNA against hand computations,
closed forms and a numpy brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vamoh.checks import ConfigError, DataError
from vamoh.data.shapenet import chair
from vamoh.eval.keys import COV, MMD, ONE_NNA
from vamoh.eval.pointsets import (
    chamfer_distance,
    cov_mmd_1nna,
    cov_mmd_1nna_from_distances,
    has_surface,
    pairwise_chamfer,
    voxel_surface_points,
)
from vamoh.pointcloud import grid_coordinates


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def numpy_chamfer(a: np.ndarray, b: np.ndarray) -> float:
    sq = ((a[:, None, :].astype(np.float64) - b[None, :, :]) ** 2).sum(-1)  # (n, m)
    return float(sq.min(axis=1).mean() + sq.min(axis=0).mean())


def blob_clouds(n_clouds: int, n_points: int, seed: int, spread: float = 1.0) -> np.ndarray:
    """(n_clouds, n_points, 3): each cloud an anisotropic Gaussian blob with a random centre and scale."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, spread, (n_clouds, 1, 3))
    scales = rng.uniform(0.2, 0.6, (n_clouds, 1, 3))
    return (centres + scales * rng.normal(size=(n_clouds, n_points, 3))).astype(np.float32)


# ----------------------------------------------------------------------------- surface points


def test_single_voxel_points_lie_on_its_six_faces_uniformly():
    S, n = 4, 6000
    occ = torch.zeros(S, S, S)
    occ[1, 2, 3] = 1.0
    centre = grid_coordinates((S, S, S))[1 * S * S + 2 * S + 3].double()  # row-major, as the datasets store grids
    h = 2.0 / (S - 1)
    pts = voxel_surface_points(occ, n, generator=gen(0)).double()
    assert pts.shape == (n, 3) and pts.dtype == torch.float64
    rel = pts - centre  # (n, 3) in [-h/2, h/2]^3
    assert rel.abs().max() <= h / 2 + 1e-6
    on_face = (rel.abs() - h / 2).abs() < 1e-6  # (n, 3): which coordinate is pinned to a face
    assert bool((on_face.sum(dim=1) >= 1).all())  # every point is on the cube's boundary
    counts = [int(((rel[:, a] * s - h / 2).abs() < 1e-6).sum()) for a in range(3) for s in (-1, 1)]
    assert all(850 < c < 1150 for c in counts), counts  # 1000 each, std ~ 29
    face = rel[(rel[:, 0] - h / 2).abs() < 1e-6, 1:]  # points of the +x face: uniform on the square
    assert face.mean(dim=0).abs().max() < 0.03 and float(face.var(dim=0).min()) == pytest.approx(h**2 / 12, rel=0.1)


def test_shared_face_of_two_voxels_is_not_sampled_and_area_weights_hold():
    S, n = 5, 5000
    occ = torch.zeros(S, S, S)
    occ[1, 2, 2] = occ[2, 2, 2] = 1.0
    h = 2.0 / (S - 1)
    pts = voxel_surface_points(occ, n, generator=gen(1)).double()
    x_shared = -1.0 + 1.5 * h  # the face between voxels 1 and 2 along x
    centre_yz = -1.0 + 2 * h
    interior = ((pts[:, 0] - x_shared).abs() < 1e-6) & ((pts[:, 1:] - centre_yz).abs() < h / 2 - 1e-6).all(dim=1)
    assert int(interior.sum()) == 0
    # A 2 x 1 x 1 box: 10 exposed faces of equal area, 2 of them the end caps normal to x.
    caps = ((pts[:, 0] - (-1.0 + 0.5 * h)).abs() < 1e-6) | ((pts[:, 0] - (-1.0 + 2.5 * h)).abs() < 1e-6)
    assert float(caps.double().mean()) == pytest.approx(0.2, abs=0.03)


def test_faces_are_weighted_by_area_on_a_non_cubic_grid():
    # Grid (2, 3, 5): voxel sides h = (2, 1, 0.5). Face areas: x-normal 0.5, y-normal 1, z-normal 2,
    # so the x, y and z face pairs get 1/7, 2/7 and 4/7 of the points.
    occ = torch.zeros(2, 3, 5)
    occ[0, 1, 2] = 1.0
    pts = voxel_surface_points(occ, 7000, generator=gen(2)).double()
    centre = torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64)
    h = torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)
    rel = (pts - centre).abs()
    share = [float(((rel[:, a] - h[a] / 2).abs() < 1e-6).double().mean()) for a in range(3)]
    assert share == pytest.approx([1 / 7, 2 / 7, 4 / 7], abs=0.02)


def test_interior_of_a_solid_block_is_never_sampled():
    S = 7
    occ = torch.zeros(S, S, S)
    occ[2:5, 2:5, 2:5] = 0.9  # a 3 x 3 x 3 block, centred on the grid's centre voxel (3, 3, 3)
    h = 2.0 / (S - 1)
    pts = voxel_surface_points(occ, 4000, generator=gen(3)).double()
    # Every point is on the block's boundary: its largest |coordinate| is 1.5 voxels from the centre.
    assert torch.allclose(pts.abs().max(dim=1).values, torch.full((4000,), 1.5 * h, dtype=torch.float64), atol=1e-6)


def test_threshold_is_strict_and_empty_grids_are_refused():
    occ = torch.zeros(3, 4, 4, 4)
    occ[0, 1, 1, 1] = 0.51
    occ[1, 2, 2, 2] = 0.5  # not above 0.5: sample 1 is empty
    occ[2, 0, 0, 0] = 1.0
    assert has_surface(occ).tolist() == [True, False, True]
    assert bool(has_surface(occ[0])) and not bool(has_surface(occ[1]))
    with pytest.raises(DataError, match=r"sample\(s\) \[1\] \(1 of 3\).*threshold 0.5.*has_surface"):
        voxel_surface_points(occ, 16, generator=gen(0))
    assert voxel_surface_points(occ[1], 16, threshold=0.4, generator=gen(0)).shape == (16, 3)
    with pytest.raises(ConfigError, match="n_points=0"):
        voxel_surface_points(occ[0], 0)
    with pytest.raises(DataError, match="expected \\(S, S, S\\) or \\(B, S, S, S\\)"):
        voxel_surface_points(torch.ones(4, 4), 8)


def test_batched_sampling_equals_sample_by_sample_with_one_generator():
    grids = torch.from_numpy(np.stack([chair(np.random.default_rng(i)) for i in range(3)]))  # uint8 (3, 32, 32, 32)
    batched = voxel_surface_points(grids, 256, generator=gen(7))
    g = gen(7)
    one_by_one = torch.stack([voxel_surface_points(grid, 256, generator=g) for grid in grids])
    assert batched.shape == (3, 256, 3) and torch.equal(batched, one_by_one)
    assert not torch.equal(batched, voxel_surface_points(grids, 256, generator=gen(8)))


# ----------------------------------------------------------------------------- Chamfer


def test_chamfer_on_tiny_clouds_equals_hand_computation():
    # a -> b: nearest squared distances 0 and 1 -> mean 0.5; b -> a: 0 -> total 0.5.
    assert chamfer_distance([[0.0, 0, 0], [1, 0, 0]], [[0.0, 0, 0]]) == 0.5
    a = [[0.0, 0, 0], [2, 0, 0]]
    b = [[0.0, 1, 0], [3, 0, 0], [0, 0, 4]]
    # a -> b: (0,0,0): min(1, 9, 16) = 1; (2,0,0): min(5, 1, 20) = 1 -> mean 1.
    # b -> a: (0,1,0): 1; (3,0,0): 1; (0,0,4): min(16, 20) = 16 -> mean 6.  CD = 7.
    assert chamfer_distance(a, b) == 7.0
    assert chamfer_distance(np.array(a, dtype=np.float32), np.array(b, dtype=np.float32)) == 7.0


def test_chamfer_is_zero_on_itself_symmetric_and_equals_numpy():
    clouds = blob_clouds(2, 300, seed=0)
    a, b = clouds[0], clouds[1][:170]
    assert chamfer_distance(a, a) == 0.0
    assert chamfer_distance(a, b) == chamfer_distance(b, a)
    assert chamfer_distance(a, b) == pytest.approx(numpy_chamfer(a, b), rel=1e-5)
    assert chamfer_distance(a.astype(np.float64), b.astype(np.float64)) == pytest.approx(numpy_chamfer(a, b), rel=1e-12)


def test_pairwise_chamfer_equals_pairs_and_does_not_depend_on_batch_size():
    a, b = blob_clouds(5, 40, seed=1), blob_clouds(7, 30, seed=2)
    expected = np.array([[numpy_chamfer(x, y) for y in b] for x in a])
    for batch_size in (1, 3, 16):
        assert np.allclose(pairwise_chamfer(a, b, batch_size).numpy(), expected, rtol=1e-5)
    sym = pairwise_chamfer(a, None, batch_size=2)
    assert torch.equal(sym, sym.T) and bool((sym.diagonal() == 0).all())
    assert np.allclose(sym.numpy(), [[numpy_chamfer(x, y) for y in a] for x in a], rtol=1e-5)
    with pytest.raises(DataError, match="point dims differ"):
        pairwise_chamfer(a, b[:, :, :2])


# ----------------------------------------------------------------------------- COV, MMD, 1-NNA


def test_identical_sets_give_full_coverage_zero_mmd_and_zero_1nna():
    clouds = blob_clouds(12, 50, seed=3)
    out = cov_mmd_1nna(clouds, clouds.copy())
    # 1-NNA is 0, not 0.5: every shape's only nearest neighbour (distance 0) is its twin in the other set.
    assert out == {COV: 1.0, MMD: 0.0, ONE_NNA: 0.0}


def test_far_apart_sets_give_the_closed_form():
    # Clouds of n copies of one point: CD(p, q) = 2 |p - q|^2. References at x = 0..R-1, generated
    # shapes at x = 100..100+G-1: every generated shape's nearest reference is the last one (COV = 1/R),
    # MMD = mean_i 2 (100 - i)^2, and every shape's nearest neighbour is in its own set (1-NNA = 1).
    R, G, n = 6, 4, 5

    def point_clouds(xs):
        return np.stack([np.tile([[x, 0.0, 0.0]], (n, 1)) for x in xs])

    out = cov_mmd_1nna(point_clouds(100.0 + np.arange(G)), point_clouds(np.arange(R, dtype=float)))
    assert out[COV] == 1 / R
    assert out[MMD] == pytest.approx(np.mean([2 * (100.0 - i) ** 2 for i in range(R)]), rel=1e-12)
    assert out[ONE_NNA] == 1.0


def test_same_distribution_gives_1nna_near_half_and_a_shift_gives_near_one():
    ref = blob_clouds(30, 40, seed=4)
    same = cov_mmd_1nna(blob_clouds(30, 40, seed=5), ref)
    shifted = cov_mmd_1nna(blob_clouds(30, 40, seed=6) + np.float32(2.0), ref)
    assert 0.3 <= same[ONE_NNA] <= 0.7, same
    assert shifted[ONE_NNA] >= 0.9 and shifted[MMD] > same[MMD] and shifted[COV] < same[COV], (same, shifted)


def test_1nna_ties_count_fractionally_and_cov_mmd_from_matrices():
    # G = 2, R = 1, every distance 1: each generated shape has one generated and one reference nearest
    # neighbour (counts 1/2), the reference shape only generated ones (counts 0): the generated set's accuracy
    # is 1/2, the reference set's 0, and the balanced 1-NNA their mean, 1/4.
    out = cov_mmd_1nna_from_distances(np.ones((2, 1)), np.ones((2, 2)), np.ones((1, 1)))
    assert out == {COV: 1.0, MMD: 1.0, ONE_NNA: pytest.approx(1 / 4, abs=1e-15)}
    # COV counts distinct nearest references; MMD averages each reference's nearest generated distance.
    d_gr = np.array([[1.0, 5.0, 9.0], [2.0, 3.0, 9.0]])
    out = cov_mmd_1nna_from_distances(d_gr, np.array([[0, 7.0], [7.0, 0]]), np.full((3, 3), 8.0))
    assert out[COV] == 1 / 3 and out[MMD] == pytest.approx((1 + 3 + 9) / 3)


def test_1nna_of_unequal_indistinguishable_sets_stays_at_one_half():
    # G = 10 generated and R = 40 reference points from one distribution (empty generated shapes dropped): the
    # leave-one-out 1-NN's plain accuracy over the union is biased towards the larger set, about
    # (G^2 + R^2) / (G + R)^2 = 0.68; the balanced accuracy 1-NNA reports averages 0.5 over many draws
    rng = np.random.default_rng(11)
    G, R, draws = 10, 40, 300
    balanced, plain = [], []
    for _ in range(draws):
        pts = rng.normal(size=(G + R, 2))
        d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
        balanced.append(cov_mmd_1nna_from_distances(d[:G, G:], d[:G, :G], d[G:, G:])[ONE_NNA])
        np.fill_diagonal(d, np.inf)
        nearest_is_ref = d.argmin(axis=1) >= G
        plain.append(np.mean(np.r_[~nearest_is_ref[:G], nearest_is_ref[G:]]))  # independent plain 1-NN accuracy
    assert abs(np.mean(balanced) - 0.5) < 0.02, np.mean(balanced)
    assert abs(np.mean(plain) - (G**2 + R**2) / (G + R) ** 2) < 0.02, np.mean(plain)
    # with equal sets the two agree exactly (the protocol's case): 20 and 20
    pts = rng.normal(size=(40, 2))
    d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
    got = cov_mmd_1nna_from_distances(d[:20, 20:], d[:20, :20], d[20:, 20:])[ONE_NNA]
    np.fill_diagonal(d, np.inf)
    nearest_is_ref = d.argmin(axis=1) >= 20
    assert got == pytest.approx(np.mean(np.r_[~nearest_is_ref[:20], nearest_is_ref[20:]]), abs=1e-15)


def test_metrics_are_invariant_to_the_order_of_shapes():
    gen_c, ref_c = blob_clouds(9, 30, seed=7), blob_clouds(11, 30, seed=8)
    base = cov_mmd_1nna(gen_c, ref_c)
    rng = np.random.default_rng(0)
    permuted = cov_mmd_1nna(gen_c[rng.permutation(9)], ref_c[rng.permutation(11)])
    assert permuted[COV] == base[COV] and permuted[ONE_NNA] == base[ONE_NNA]
    assert permuted[MMD] == pytest.approx(base[MMD], rel=1e-12)


def test_voxel_chairs_resampled_are_recognised_as_their_own_twins():
    grids = np.stack([chair(np.random.default_rng([3, i])) for i in range(8)])  # (8, 32, 32, 32)
    ref = voxel_surface_points(torch.from_numpy(grids), 256, generator=gen(0))
    again = voxel_surface_points(torch.from_numpy(grids), 256, generator=gen(1))  # new points on the same shapes
    d_gr = pairwise_chamfer(again, ref)
    assert torch.equal(d_gr.argmin(dim=1), torch.arange(8))  # every chair's nearest reference is itself
    out = cov_mmd_1nna(again, ref)
    assert out[COV] == 1.0 and out[ONE_NNA] == 0.0 and 0.0 < out[MMD] < float(d_gr.diagonal().max()) + 1e-12


def test_bad_matrices_raise_one_clear_error():
    with pytest.raises(DataError, match=r"d_gen_gen: shape \(3, 3\), expected \(2, 2\)"):
        cov_mmd_1nna_from_distances(np.ones((2, 1)), np.ones((3, 3)), np.ones((1, 1)))
    with pytest.raises(DataError, match="d_ref_ref: contains NaN"):
        cov_mmd_1nna_from_distances(np.ones((2, 1)), np.ones((2, 2)), np.full((1, 1), np.nan))


class _VoxelToy(torch.nn.Module):
    """Generates either nothing (every voxel empty) or the first test shapes themselves."""

    def __init__(self, shapes: torch.Tensor | None) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.shapes = shapes  # (n, P, 1) or None for empty

    @property
    def device(self):
        return self.p.device

    def sample(self, n, coords, generator=None):
        if self.shapes is None:
            return torch.zeros(n, coords.shape[0], 1)
        out, self.shapes = self.shapes[:n], self.shapes[n:]
        return out


@pytest.mark.parametrize("generates", ["nothing", "the test shapes"])
def test_shapenet_protocol_scores_are_recomputable_from_what_is_saved(tmp_path, generates):
    """Every COV / MMD / 1-NNA number comes back from the saved scores, including the all-empty case, whose
    numbers are a rule (a tiny CI model generated only empty shapes and its numbers were not recomputable)."""
    from vamoh.data import load_dataset
    from vamoh.eval.config import EvalConfig
    from vamoh.eval.evaluate import EvalData, pointset_scores
    from vamoh.eval.recompute import pointset_metrics_from_scores

    splits = load_dataset({"name": "shapenet", "n_train": 4, "n_test": 6}, tmp_path / "cache")
    data = EvalData.from_split(splits["test"], "ShapeNet (stand-in)", True, batch_size=3)
    test = torch.cat([b.features for b in data.first(6)])
    model = _VoxelToy(None if generates == "nothing" else test.clone())
    metrics, saved = pointset_scores(model, data, EvalConfig(pointcloud_points=64, device="cpu"), seed=0)
    again = pointset_metrics_from_scores(saved)
    for k in (COV, MMD, ONE_NNA):
        key = {COV: "cov_cd", MMD: "mmd_cd", ONE_NNA: "1nna_cd"}[k]
        assert again[key]["values"] == metrics[key]["values"]
    if generates == "nothing":
        assert metrics["cov_cd"]["values"] == [0.0] and metrics["1nna_cd"]["values"] == [1.0]
        assert metrics["mmd_cd"]["values"] == [float("inf")] and metrics["cov_cd"]["num_empty_generated"] == 6
    else:  # the same shapes, resampled: every reference shape is covered and matched closely
        assert metrics["cov_cd"]["values"][0] > 0.5 and metrics["1nna_cd"]["values"][0] < 1.0
    # a kept shape without its distances is refused, not scored by the empty rule
    if generates == "nothing":
        saved["pointsets_generated_kept"][0] = True
        with pytest.raises(DataError, match="no Chamfer distances saved"):
            pointset_metrics_from_scores(saved)
