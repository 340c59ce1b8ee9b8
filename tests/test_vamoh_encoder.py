"""PointConv encoder: order invariance, masks, centroid selection."""

import torch

from vamoh.nn.pointconv import PointConvEncoder, build_stages, farthest_point_sampling, knn


def make_encoder(method="fps", seed=0):
    torch.manual_seed(seed)
    stages = build_stages([48, 12, 4], [6, 6, 4], [8, 12, 16], [None, 8, None], [None, 4, None])
    return PointConvEncoder(stages, in_channels=3, coord_dim=2, weightnet_hidden=[8, 8], dim_z=5, centroid_method=method)


def test_output_independent_of_point_order():
    enc = make_encoder()
    torch.manual_seed(1)
    coords = torch.rand(2, 150, 2) * 2 - 1  # continuous coordinates: no distance ties
    feats = torch.rand(2, 150, 3)
    perm = torch.cat([torch.zeros(1, dtype=torch.long), 1 + torch.randperm(149)])  # FPS starts at point 0: keep it first
    m1, v1 = enc(coords, feats)
    m2, v2 = enc(coords[:, perm], feats[:, perm])
    assert torch.allclose(m1, m2, atol=1e-5) and torch.allclose(v1, v2, atol=1e-5)


def test_mask_equals_dropping_the_points():
    enc = make_encoder()
    torch.manual_seed(2)
    coords = torch.rand(3, 200, 2) * 2 - 1
    feats = torch.rand(3, 200, 3)
    # 30% of the points dropped, a different set in each sample
    masks = torch.stack([torch.randperm(200) >= 60 for _ in range(3)])
    mean, logvar = enc(coords, feats, masks)
    assert torch.isfinite(mean).all() and mean.shape == (3, 5)
    for b in range(3):
        keep = masks[b].nonzero().squeeze(1)
        mb, vb = enc(coords[b : b + 1, keep], feats[b : b + 1, keep])
        assert torch.allclose(mean[b], mb[0], atol=1e-5) and torch.allclose(logvar[b], vb[0], atol=1e-5)


def general_path(enc, coords, feats, mask):
    """The encoder through its per-sample conv stack (never the shared-grid fast path), then its head."""
    x = enc._convs_general(coords, feats, mask)
    return enc.head(x.reshape(x.shape[0], -1)).chunk(2, dim=-1)


def test_shared_grid_fast_path_equals_general_path():
    enc = make_encoder()
    coords = (torch.rand(1, 120, 2) * 2 - 1).expand(4, -1, -1)
    feats = torch.rand(4, 120, 3)
    mask = (torch.rand(120) > 0.2)[None].expand(4, -1)
    for m in (None, mask):
        fast = enc(coords, feats, m)  # one plan, weight-net once, M batched products
        general = general_path(enc, coords.contiguous(), feats, m)  # a plan and a weight-net pass per sample
        assert torch.allclose(fast[0], general[0], atol=1e-6) and torch.allclose(fast[1], general[1], atol=1e-6)
    # the expanded shared plan is the per-sample plan
    for (c1, n1), (c2, n2) in zip(enc.plan(coords.contiguous(), None), enc._shared_plan(coords, None)):
        assert torch.equal(c1, c2) and torch.equal(n1, n2)
    # gradients agree too
    w = enc.convs[1].weightnet.layers[0].weight
    g_fast = torch.autograd.grad(enc(coords, feats)[0].sum(), w)[0]
    g_gen = torch.autograd.grad(general_path(enc, coords.contiguous(), feats, None)[0].sum(), w)[0]
    assert torch.allclose(g_fast, g_gen, atol=1e-5)


def test_fps_picks_spread_points_and_respects_mask():
    coords = torch.tensor([[[0.0, 0.0], [0.1, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]])
    idx = farthest_point_sampling(coords, 4)
    assert idx[0, 0] == 0 and idx[0, 1] == 2  # farthest from (0,0) is (1,1)
    assert set(idx[0, 2:].tolist()) == {3, 4}
    mask = torch.tensor([[False, True, True, True, True, True]])
    idx = farthest_point_sampling(coords, 3, mask)
    assert 0 not in idx[0].tolist() and idx[0, 0] == 1


def test_knn_matches_brute_force_and_skips_unobserved():
    torch.manual_seed(3)
    pts = torch.rand(1, 40, 3)
    q = pts[:, :5]
    mask = torch.ones(1, 40, dtype=torch.bool)
    mask[0, 7] = False
    got = knn(q, pts, 4, mask, chunk=2)
    d = torch.cdist(q, pts)[0]
    d[:, 7] = float("inf")
    expected = d.argsort(dim=1)[:, :4]
    assert torch.equal(got[0].sort(1).values, expected.sort(1).values)


def test_fast_centroid_methods_select_observed_distinct_points():
    for method in ("random", "stratified"):
        enc = make_encoder(method)
        coords = torch.rand(2, 100, 2)
        mask = torch.rand(2, 100) > 0.3
        plan = enc.plan(coords, mask)
        cidx = plan[0][0]
        for b in range(2):
            sel = cidx[b].tolist()
            assert len(set(sel)) == len(sel) == 48
            assert mask[b, sel].all()
        mean, _ = enc(coords, torch.rand(2, 100, 3), mask)
        assert torch.isfinite(mean).all()
