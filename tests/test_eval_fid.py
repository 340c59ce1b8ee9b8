"""Generation metrics: torch-fidelity through the suite's wrapper vs independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import torch_fidelity

from vamoh.eval import keys
from vamoh.eval.extractors import SUITE_EXTRACTOR, ExtractorConfig, save_extractor, train_extractor
from vamoh.eval.fid import FidelityScorer, RealSet, evaluate_generation, generation_metrics, set_seed, suite_spec

TINY = ExtractorConfig(input_size=16, feature_dim=8, channels=(8, 16, 16), epochs=3, batch_size=16, seed=0)


def blob_images(n: int, seed: int, size: int = 28) -> np.ndarray:
    """uint8 (n, size, size, 3): one coloured Gaussian blob per image at a random place, on a dark background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(6, size - 6, 2)
        r = rng.uniform(3, 6)
        colour = rng.uniform(80, 255, 3)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))[..., None]
        out[i] = np.clip(20 + blob * colour + rng.normal(0, 4, (size, size, 3)), 0, 255).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("fid")
    train = blob_images(48, seed=1)
    model = train_extractor(train, TINY, dataset="blobs")
    save_extractor(model, root / "blobs.pt", "blobs")
    spec = suite_spec(root / "blobs.pt")
    scorer = FidelityScorer(spec, root / "cache", device="cpu", batch_size=16, kid_subset_size=16, kid_subsets=10)
    return {"root": root, "train": train, "spec": spec, "scorer": scorer}


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """Independent Fréchet distance in float64 with scipy's matrix square root."""
    f1, f2 = f1.astype(np.float64), f2.astype(np.float64)
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def test_fid_equals_independent_frechet_distance(setup):
    scorer = setup["scorer"]
    gen, real = blob_images(40, seed=2), blob_images(40, seed=3)
    gen[..., 0] = np.clip(gen[..., 0].astype(int) + 40, 0, 255)  # a visible difference so FID is not ~0
    ours = generation_metrics(gen, RealSet("blobs", "test", real), scorer)[keys.FID]
    f_gen, f_real = scorer.features(gen).numpy(), scorer.features(real).numpy()
    assert f_gen.shape == (40, TINY.feature_dim)
    reference = frechet_distance(f_gen, f_real)
    assert reference > 1e-3, reference
    # Relative 1e-4 (stricter than absolute 1e-4 here: the small extractor's FIDs are O(0.01-1)).
    assert ours == pytest.approx(reference, rel=1e-4, abs=1e-9)


def test_wrapper_agrees_with_calculate_metrics(setup):
    """Scoring with torch-fidelity's pieces equals its one-call API on the same inputs."""
    from vamoh.eval.fid import UInt8Images

    scorer, spec = setup["scorer"], setup["spec"]
    gen, real = blob_images(32, seed=4), blob_images(32, seed=5)
    ours = generation_metrics(gen, RealSet("blobs", "agree", real), scorer)
    theirs = torch_fidelity.calculate_metrics(
        input1=UInt8Images(gen), input2=UInt8Images(real), fid=True, kid=True, prc=True, cuda=False,
        feature_extractor=SUITE_EXTRACTOR, feature_extractor_weights_path=spec.weights_path,
        kid_subset_size=16, kid_subsets=10, batch_size=16, cache=False, save_cpu_ram=True, verbose=False,
    )  # fmt: skip
    assert ours[keys.FID] == pytest.approx(theirs[torch_fidelity.KEY_METRIC_FID], rel=1e-6, abs=1e-9)
    assert ours[keys.KID] == pytest.approx(theirs[torch_fidelity.KEY_METRIC_KID_MEAN], rel=1e-6, abs=1e-9)
    assert ours[keys.PRECISION] == theirs[torch_fidelity.KEY_METRIC_PRECISION]
    assert ours[keys.RECALL] == theirs[torch_fidelity.KEY_METRIC_RECALL]


def test_identical_sets_give_zero_fid_and_full_precision_recall(setup):
    images = blob_images(32, seed=6)
    m = generation_metrics(images, RealSet("blobs", "same", images.copy()), setup["scorer"])
    assert abs(m[keys.FID]) < 1e-6
    assert m[keys.PRECISION] == 1.0
    assert m[keys.RECALL] == 1.0


def test_shifted_set_lowers_precision(setup):
    scorer = setup["scorer"]
    real = RealSet("blobs", "shift", blob_images(40, seed=7))
    same_dist = generation_metrics(blob_images(40, seed=8), real, scorer)
    shifted = generation_metrics(255 - blob_images(40, seed=8), real, scorer)  # inverted: off the real manifold
    assert shifted[keys.PRECISION] < same_dist[keys.PRECISION]
    assert shifted[keys.PRECISION] <= 0.1
    assert shifted[keys.FID] > same_dist[keys.FID]


def test_precision_recall_match_a_handwritten_knn_rule(setup):
    """Improved precision/recall with k = 3, written out with numpy on the same features."""
    scorer = setup["scorer"]
    gen, real = blob_images(30, seed=9), blob_images(30, seed=10)
    gen[..., 1] = np.clip(gen[..., 1].astype(int) + 30, 0, 255)
    ours = generation_metrics(gen, RealSet("blobs", "knn", real), scorer)
    fg, fr = scorer.features(gen).double().numpy(), scorer.features(real).double().numpy()

    def radii(f):  # distance to the 3rd nearest other point
        d = np.linalg.norm(f[:, None] - f[None], axis=-1)
        return np.sort(d, axis=1)[:, 3]

    d_gr = np.linalg.norm(fg[:, None] - fr[None], axis=-1)  # (gen, real)
    precision = (d_gr <= radii(fr)[None, :] + 1e-6).any(axis=1).mean()
    recall = (d_gr.T <= radii(fg)[None, :] + 1e-6).any(axis=1).mean()
    assert ours[keys.PRECISION] == pytest.approx(precision, abs=1 / 30 + 1e-9)
    assert ours[keys.RECALL] == pytest.approx(recall, abs=1 / 30 + 1e-9)


def test_real_features_are_cached_once(setup):
    scorer = setup["scorer"]
    real = RealSet("blobs", "cached", blob_images(24, seed=11))
    name = real.cache_name(setup["spec"])
    feats1, stats1 = scorer.real_features(real)
    files = sorted(p.name for p in (setup["root"] / "cache").glob(f"{name}*"))
    assert files == [f"{name}-{SUITE_EXTRACTOR}-features-bottleneck.pt", f"{name}-{SUITE_EXTRACTOR}-stat-fid-bottleneck.pt"]
    # A second call must read the cache: break the extractor and it still works.
    forward = scorer.extractor.forward
    scorer.extractor.forward = lambda x: (_ for _ in ()).throw(AssertionError("features recomputed"))
    try:
        feats2, stats2 = scorer.real_features(real)
    finally:
        scorer.extractor.forward = forward
    assert torch.equal(feats1, feats2)
    np.testing.assert_array_equal(stats1["sigma"], stats2["sigma"])
    # Other images, other cache entry.
    other = RealSet("blobs", "cached", blob_images(24, seed=12))
    assert other.cache_name(setup["spec"]) != name


def test_evaluate_generation_reports_mean_std_over_five_sets(setup):
    calls = []

    def sampler(n, seed):
        calls.append(seed)
        return blob_images(n, seed=seed % 1000)

    out = evaluate_generation(sampler, RealSet("blobs", "train", setup["train"]), RealSet("blobs", "test", blob_images(24, 13)), setup["scorer"], num_samples=20, num_sets=5, seed=3)
    assert set(out) == set(keys.GENERATION_KEYS)
    assert calls == [set_seed(3, i) for i in range(5)] and len(set(calls)) == 5
    for k, entry in out.items():
        assert len(entry["values"]) == 5
        assert entry["mean"] == pytest.approx(np.mean(entry["values"]))
        assert entry["std"] == pytest.approx(np.std(entry["values"], ddof=1))
        assert entry["feature_extractor"] == setup["spec"].label
        assert entry["num_samples"] == 20
        assert entry["prc_num_real"] == {"train": 20, "test": 20}  # equal-sized sets for precision/recall
    assert all(0.0 <= v <= 1.0 for v in out[keys.PRECISION_TRAIN]["values"])


def test_precision_recall_do_not_depend_on_batch_size(setup):
    scorer = setup["scorer"]
    gen, real = scorer.features(blob_images(30, seed=14)), scorer.features(blob_images(30, seed=15))
    whole = scorer.prc_values(gen, real)
    old = scorer.prc_batch_size
    scorer.prc_batch_size = 7
    try:
        assert scorer.prc_values(gen, real) == whole
    finally:
        scorer.prc_batch_size = old
