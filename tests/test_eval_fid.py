"""Generation metrics: torch-fidelity through the suite's wrapper vs independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import torch_fidelity

from vamoh.eval import keys
from vamoh.eval.extractors import SUITE_EXTRACTOR, ExtractorConfig, save_extractor, train_extractor
from vamoh.eval.fid import FidelityScorer, SetMetricSettings, evaluate_generation, generation_metrics, prc_subset_index, set_seed, suite_spec

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
    scorer = FidelityScorer(spec, device="cpu", batch_size=16, settings=SetMetricSettings(kid_subset_size=16, kid_subsets=10))
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
    ours = generation_metrics(gen, real, scorer)[keys.FID]
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
    ours = generation_metrics(gen, real, scorer)
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
    m = generation_metrics(images, images.copy(), setup["scorer"])
    assert abs(m[keys.FID]) < 1e-6
    assert m[keys.PRECISION] == 1.0
    assert m[keys.RECALL] == 1.0


def test_shifted_set_lowers_precision(setup):
    scorer = setup["scorer"]
    real = blob_images(40, seed=7)
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
    ours = generation_metrics(gen, real, scorer)
    fg, fr = scorer.features(gen).double().numpy(), scorer.features(real).double().numpy()

    def radii(f):  # distance to the 3rd nearest other point
        d = np.linalg.norm(f[:, None] - f[None], axis=-1)
        return np.sort(d, axis=1)[:, 3]

    d_gr = np.linalg.norm(fg[:, None] - fr[None], axis=-1)  # (gen, real)
    precision = (d_gr <= radii(fr)[None, :] + 1e-6).any(axis=1).mean()
    recall = (d_gr.T <= radii(fg)[None, :] + 1e-6).any(axis=1).mean()
    assert ours[keys.PRECISION] == pytest.approx(precision, abs=1 / 30 + 1e-9)
    assert ours[keys.RECALL] == pytest.approx(recall, abs=1 / 30 + 1e-9)


def test_features_do_not_depend_on_batch_size_or_order(setup):
    """Generated and real features are each extracted once; the same images give the same features in any batch."""
    scorer = setup["scorer"]
    images = blob_images(24, seed=11)
    whole = scorer.features(images)
    old = scorer.batch_size
    scorer.batch_size = 5
    try:
        torch.testing.assert_close(scorer.features(images), whole)
        torch.testing.assert_close(scorer.features(images[::-1].copy()), whole.flip(0))
    finally:
        scorer.batch_size = old


def test_density_and_coverage_of_identical_and_disjoint_sets(setup):
    scorer = setup["scorer"]
    images = blob_images(32, seed=16)
    same = generation_metrics(images, images.copy(), scorer)
    assert same[keys.DENSITY] == pytest.approx(1.0) and same[keys.COVERAGE] == 1.0
    far = generation_metrics(np.zeros_like(images), images, scorer)  # black images: nowhere near a blob
    assert far[keys.COVERAGE] == 0.0 and far[keys.DENSITY] == 0.0


def test_evaluate_generation_reports_mean_std_over_five_sets(setup):
    calls = []

    def sampler(n, seed):
        calls.append(seed)
        return blob_images(n, seed=seed % 1000)

    scorer = setup["scorer"]
    reals = {"train": scorer.features(setup["train"]), "test": scorer.features(blob_images(24, 13))}
    out, evidence = evaluate_generation(sampler, reals, scorer, num_samples=20, num_sets=5, seed=3)
    assert set(out) == set(keys.GENERATION_KEYS)
    assert calls == [set_seed(3, i) for i in range(5)] and len(set(calls)) == 5
    assert evidence["gen_features"].shape == (5, 20, TINY.feature_dim)
    assert list(evidence["set_seeds"]) == calls
    np.testing.assert_array_equal(evidence["prc_index_train"], prc_subset_index(48, 20, 3))
    for k, entry in out.items():
        assert len(entry["values"]) == 5
        assert entry["mean"] == pytest.approx(np.mean(entry["values"]))
        assert entry["std"] == pytest.approx(np.std(entry["values"], ddof=1))
        assert entry["feature_extractor"] == setup["spec"].label
        assert entry["num_samples"] == 20
        assert entry["prc_num_real"] == {"train": 20, "test": 20}  # equal-sized sets for precision/recall
    assert all(0.0 <= v <= 1.0 for v in out[keys.PRECISION_TRAIN]["values"])
    # every number is a function of the saved features: set 2 against the train split, recomputed by hand
    from vamoh.eval.fid import set_metrics

    feats = torch.from_numpy(evidence["gen_features"][2])
    again = set_metrics(feats, reals["train"], reals["train"][torch.from_numpy(evidence["prc_index_train"])], scorer.settings)
    assert again[keys.FID] == out[keys.FID_TRAIN]["values"][2] and again[keys.RECALL] == out[keys.RECALL_TRAIN]["values"][2]


def test_precision_recall_do_not_depend_on_batch_size(setup):
    scorer = setup["scorer"]
    gen, real = scorer.features(blob_images(30, seed=14)), scorer.features(blob_images(30, seed=15))
    from vamoh.eval.fid import set_metrics

    whole = set_metrics(gen, real, real, scorer.settings)
    small = set_metrics(gen, real, real, SetMetricSettings(kid_subset_size=16, kid_subsets=10, prc_batch_size=7))
    assert {k: small[k] for k in (keys.PRECISION, keys.RECALL, keys.DENSITY, keys.COVERAGE)} == {k: whole[k] for k in (keys.PRECISION, keys.RECALL, keys.DENSITY, keys.COVERAGE)}


def test_precision_recall_need_more_samples_than_k(setup):
    """A real split smaller than k gave torch's 'kthvalue(): selected number k out of range'; now one clear error."""
    from vamoh.checks import DataError
    from vamoh.eval.fid import set_metrics

    scorer = setup["scorer"]
    real = scorer.features(blob_images(3, seed=17))
    with pytest.raises(DataError, match=r"k=3 needs more than 3 samples per set; got 20 generated, 3 real"):
        set_metrics(scorer.features(blob_images(20, seed=18)), real, real, scorer.settings)
