"""The ablation target (issue 14): variants as entries of their own, their overrides reaching the model, the
report's statistics and generated answers, and a tiny ablation run end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from vamoh.checks import ConfigError
from vamoh.pipeline.runconfig import RunConfig

ROOT = Path(__file__).resolve().parents[1]
ABLATION_CONFIG = ROOT / "config" / "ablations.yaml"


def tiny_raw(ablations: dict, **changes) -> dict:
    raw = {"run": "abl", "datasets": ["polymnist"], "models": ["vamoh"], "seeds": [0, 1], "device": "cpu", "threads": 1,
           "data": {"source": "standin", "settings": {"polymnist": {"n_train": 32, "n_test": 8}}},
           "model_settings": {"vamoh": {"preset": "tiny"}}, "ablations": ablations,
           "train": {"max_steps": 2, "batch_size": 16, "progress": False}}
    raw.update(changes)
    return raw


MIXTURE = {"mixture": {"model": "vamoh", "question": "Does the mixture help?", "variants": {"K1": {"K": 1}, "K3": {}, "K8": {"K": 8}},
                       "default": "K3", "metrics": ["psnr_leakfree", "fid_test", "samples_per_second"]}}


# ---------------------------------------------------------------------------------------------- entries


def expected_entries(raw: dict) -> dict[str, dict]:
    """Entry name -> overrides, read from the YAML alone: one entry per variant that sets something, the
    model's own entry for the one that sets nothing."""
    out = {m: {} for m in raw["models"]}
    for q, spec in raw["ablations"].items():
        for v, overrides in spec["variants"].items():
            out[f"{spec['model']}-{q}-{v}" if overrides else spec["model"]] = overrides or {}
    return out


def test_ablation_config_expands_into_one_entry_per_variant():
    raw = yaml.safe_load(ABLATION_CONFIG.read_text())
    rc = RunConfig.from_dict(raw)
    expected = expected_entries(raw)
    assert set(rc.entries) == set(expected)
    # the five questions, each variant over >= 3 seeds, on two stand-ins
    assert set(rc.ablations()) == {"mixture", "flow_prior", "point_dropout", "deviations", "centroids"} and len(rc.seeds) >= 3
    assert {"K1", "K2", "K4", "K8"} == set(rc.ablations()["mixture"].variants)
    assert len(rc.ablations()["deviations"].variants) == 8  # the paper, six switches alone, all together
    for name, overrides in expected.items():
        assert dict(rc.entries[name].variant.overrides) == overrides
        for dataset in rc.datasets:
            config, _ = rc.model_config(name, dataset, 0)
            for key, value in overrides.items():
                assert getattr(config, key) == value, (name, dataset, key)
    # generation only where the question needs FID; the shared default keeps it
    assert not rc.entries["vamoh-point_dropout-a0"].generation and not rc.entries["vamoh-centroids-random"].generation
    assert rc.entries["vamoh-mixture-K1"].generation and rc.entries["vamoh"].generation


def test_variant_overrides_apply_on_top_of_the_per_dataset_settings():
    raw = yaml.safe_load(ABLATION_CONFIG.read_text())
    rc = RunConfig.from_dict(raw)
    per_dataset = raw["model_settings"]["vamoh"]["per_dataset"]["shapes3d"]
    base, _ = rc.model_config("vamoh", "shapes3d", 0)
    k1, _ = rc.model_config("vamoh-mixture-K1", "shapes3d", 0)
    assert base.K == per_dataset["K"] and k1.K == 1
    # everything else is the base entry's, the run's seed included
    assert {k: v for k, v in vars(k1).items() if k != "K"} == {k: v for k, v in vars(base).items() if k != "K"}
    original, _ = rc.model_config("vamoh-deviations-original", "polymnist", 2)
    assert original.seed == 2 and original.tanh_categorical_logits and original.weightnet_linear
    assert original.fixed_logistic_scale == 0.1 and original.neighbourhoods_in_fourier_space and original.flow_on_detached_posterior


def test_a_variant_that_sets_nothing_shares_the_model_entry_even_when_the_model_is_not_listed():
    rc = RunConfig.from_dict(tiny_raw({"c": {"model": "vamoh", "variants": {"fps": {}, "random": {"centroid_method": "random"}},
                                             "default": "fps", "generation": False}}, models=["gasp"]))
    assert list(rc.entries) == ["gasp", "vamoh", "vamoh-c-random"]
    assert not rc.entries["vamoh"].generation  # added by a question without generation
    assert rc.ablations()["c"].entries == {"fps": "vamoh", "random": "vamoh-c-random"}


@pytest.mark.parametrize("ablations, quoted", [
    ({"m": {"model": "vamoh", "variants": {"a": {"Kk": 1}, "b": {}}, "default": "b"}}, "ablations.m.variants.a: unknown"),
    ({"m": {"model": "vamoh", "variants": {"a": {"K": "two"}, "b": {}}, "default": "b"}}, "ablations.m.variants.a.K='two'"),
    ({"m": {"model": "vamoh", "variants": {"a": {"seed": 3}, "b": {}}, "default": "b"}}, "'seed'"),
    ({"m": {"model": "vamoh", "variants": {"a": {"K": 1}, "b": {}}, "default": "c"}}, "ablations.m.default='c'"),
    ({"m": {"model": "vamoh", "variants": {"a": {}, "b": {}}, "default": "a"}}, "ablations.m.variants: ['a', 'b']"),
    ({"m": {"model": "vamoh", "variants": {"a": {"K": 1}, "b": {}}, "default": "b", "metrics": ["fidd"]}}, "ablations.m.metrics"),
    ({"bad-name": {"model": "vamoh", "variants": {"a": {"K": 1}, "b": {}}, "default": "b"}}, "bad-name"),
    ({"m": {"model": "vamoh", "variants": {"a-1": {"K": 1}, "b": {}}, "default": "b"}}, "a-1"),
])
def test_a_bad_ablation_is_refused_naming_it(ablations, quoted):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(tiny_raw(ablations)).entries
    assert quoted in str(err.value)


def test_a_variant_reaches_the_model_the_train_stage_builds(tmp_path):
    """jobs.build_model (what stages.train trains) builds the variant's config: K hypergenerators, switches."""
    from vamoh.interface import DataInfo
    from vamoh.pipeline import jobs

    rc = RunConfig.from_dict(tiny_raw({"q": {"model": "vamoh", "variants": {"K1": {"K": 1, "tanh_categorical_logits": True}, "base": {}},
                                             "default": "base"}}))
    info = DataInfo(2, 3, "discretized_logistic", (28, 28))
    variant, base = (jobs.build_model(rc, e, "polymnist", info, 0) for e in ("vamoh-q-K1", "vamoh"))
    assert (variant.config.K, base.config.K) == (1, 3)  # tiny preset: K = 3
    assert variant.num_components == 1 and variant.prior_c.tanh_logits and not base.prior_c.tanh_logits
    z = torch.zeros(2, variant.config.dim_z)
    assert variant.hypernets(z, torch.float32).shape[0] == 1 and base.hypernets(z, torch.float32).shape[0] == 3  # (K, B, P)


def test_dry_run_of_the_ablation_target_lists_every_variant_job(tmp_path):
    raw = yaml.safe_load(ABLATION_CONFIG.read_text())
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-n", "ablations", "--configfile",
                          str(ABLATION_CONFIG)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    entries = expected_entries(raw)
    jobs = len(raw["datasets"]) * len(entries) * len(raw["seeds"])
    counts = {line.split()[0]: int(line.split()[1]) for line in text.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts["train"] == jobs and counts["evaluate"] == jobs
    assert counts["timing"] == len(raw["datasets"]) * len(raw["seeds"]) and counts["ablation_report"] == 1
    assert counts["ablation_measure"] == 1
    trained = {line.split("model=")[1].split(",")[0] for line in text.splitlines() if "wildcards:" in line and "model=" in line}
    assert trained == set(entries)
    assert "results/ablations/shapes3d/vamoh-deviations-original/seed2/checkpoint.pt" in text


# ---------------------------------------------------------------------------------------------- measurements


def test_the_test_elbo_is_the_paper_bound_whatever_the_training_objective(tmp_path):
    """A model trained with the original code's detached-flow objective is scored with the paper's ELBO: the
    same number as the same weights without the switch, and not the surrogate its ``elbo`` returns."""
    from tests.vamoh_fixtures import BlobImages, tiny_model
    from vamoh.eval.ablation_measure import test_elbo_per_point

    data = BlobImages(n=6, size=12)
    batches = [data.batch(torch.arange(0, 3)), data.batch(torch.arange(3, 6))]
    paper = tiny_model(data)
    original = tiny_model(data, flow_on_detached_posterior=True)
    original.load_state_dict(paper.state_dict())
    for net in (paper, original):
        net.flow_active.fill_(True)
    config = original.config
    ours = test_elbo_per_point(original, batches, seed=3)
    assert original.config is config  # restored
    np.testing.assert_allclose(ours, test_elbo_per_point(paper, batches, seed=3), rtol=1e-6)
    torch.manual_seed(3)
    with torch.no_grad():
        surrogate = torch.cat([original.elbo(b)["elbo"] / b.mask.sum(1) for b in batches]).numpy()
    assert not np.allclose(ours, surrogate)
    # the bound per point: the per-sample ELBO over the sample's 144 points
    torch.manual_seed(3)
    with torch.no_grad():
        whole = torch.cat([paper.elbo(b)["elbo"] for b in batches]).numpy()
    np.testing.assert_allclose(ours, whole / 144, rtol=1e-6)


def test_a_model_hook_is_used_for_the_test_elbo():
    from vamoh.eval.ablation_measure import test_elbo_per_point

    class Hooked:
        device = torch.device("cpu")

        def test_elbo_per_point(self, batch, generator=None):
            return batch.features.mean(dim=(1, 2))

    from tests.vamoh_fixtures import BlobImages

    data = BlobImages(n=4, size=8)
    got = test_elbo_per_point(Hooked(), [data.batch(torch.arange(4))], seed=0)
    np.testing.assert_allclose(got, data.features.mean(dim=(1, 2)).numpy())
    assert test_elbo_per_point(object(), [data.batch(torch.arange(4))], seed=0) is None


def test_encoder_is_timed_on_fresh_partial_observations():
    """Every timed call sees another random half of the points, the same sequence for every model."""
    from tests.vamoh_fixtures import BlobImages, tiny_model
    from vamoh.eval.ablation_measure import encoder_timings, observed_subsets

    data = BlobImages(n=2, size=12)
    batch = data.batch(torch.arange(1))
    subsets = observed_subsets(batch, 4, 0.5, seed=0)
    assert all(int(s.mask.sum()) == 72 for s in subsets)
    assert len({tuple(s.mask[0].nonzero().flatten().tolist()) for s in subsets}) == 4
    seen = {}

    class Recorder:
        device = torch.device("cpu")

        def __init__(self, name):
            self.name = name

        def encode(self, coords, features, mask):
            seen.setdefault(self.name, []).append(mask.clone())

    times = encoder_timings({"a": Recorder("a"), "b": Recorder("b"), "none": object()}, batch, repeats=3, warmup=1, seed=0)
    assert set(times) == {"a", "b"} and all(t >= 0 for t in times.values())
    assert len(seen["a"]) == 4 and all(torch.equal(x, y) for x, y in zip(seen["a"], seen["b"]))
    real = encoder_timings({"fps": tiny_model(data)}, batch, repeats=2, warmup=1, seed=0)
    assert real["fps"] > 0


# ---------------------------------------------------------------------------------------------- the report


def welch_reference(a, b) -> float:
    """Welch's t-test from its formula (Welch-Satterthwaite degrees of freedom), two-sided."""
    from scipy.stats import t as student

    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    stat = (a.mean() - b.mean()) / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return float(2 * student.sf(abs(stat), dof))


SYNTHETIC = {  # entry -> metric -> per-seed values
    "vamoh": {"psnr_leakfree": [10.0, 10.1, 9.9], "fid_test": [10.0, 10.2, 9.8]},
    "vamoh-mixture-K1": {"psnr_leakfree": [8.0, 8.1, 7.9], "fid_test": [10.1, 9.7, 10.3]},
    "vamoh-mixture-K8": {"psnr_leakfree": [10.05, 9.85, 10.1], "fid_test": [5.0, 5.1, 4.9]},
}


def synthetic_tidy() -> pd.DataFrame:
    rows = [{"dataset": "polymnist", "model": e, "label": "VAMoH", "kind": "model", "seed": s, "metric": m, "mean": v, "values": "[]",
             "is_standin": True, "data_label": "PolyMNIST (stand-in)", "feature_extractor": "suite-ae" if m == "fid_test" else "",
             "device": "cpu: test"}
            for e, ms in SYNTHETIC.items() for m, vals in ms.items() for s, v in enumerate(vals)]
    rows.append({"dataset": "polymnist", "model": "real_heldout", "kind": "reference", "seed": 0, "metric": "fid_test", "mean": 0.1, "values": "[]"})
    return pd.DataFrame(rows)


def synthetic_summaries() -> list[dict]:
    K = {"vamoh": 3, "vamoh-mixture-K1": 1, "vamoh-mixture-K8": 8}
    return [{"dataset": "polymnist", "model": e, "seed": s, "samples_per_second": 100.0 + s, "seconds": 10.0, "model_config": {"K": K[e]}}
            for e in SYNTHETIC for s in range(3)]


DASH = "—"  # the tables' empty cell
EMPTY_MEASURED = pd.DataFrame(columns=["question", "dataset", "model", "seed", "metric", "value"])


def reference_record(passes: bool = True) -> dict:
    """A reference.json record of the suite extractor, passing or failing its quality gate (+6 dB over the mean image)."""
    quality = {"test_psnr_db": 20.0 if passes else 13.0, "mean_image_psnr_db": 10.0, "gate_db": 6.0, "passes": passes}
    return {"dataset": "polymnist", "extractor": {"kind": "suite", "quality": quality}}


# ---- the statistics, against scipy, statsmodels and closed forms


@pytest.mark.parametrize("x, base", [
    ([8.0, 8.1, 7.9], [10.0, 10.1, 9.9]),
    ([10.1, 9.7, 10.3], [10.0, 10.2, 9.8]),
    ([1.0, 2.5, 2.0, 4.0], [0.5, 0.7, 0.4]),  # unequal sizes and spreads
    ([-14.2, -14.1, -14.3], [-15.5, -15.6, -15.55]),
])
def test_welch_p_values_equal_scipy_and_the_formula(x, base):
    from scipy import stats

    from vamoh.report.ablation_stats import welch

    t = welch(x, base)
    assert t.p == pytest.approx(stats.ttest_ind(x, base, equal_var=False).pvalue, rel=1e-12)
    assert t.p == pytest.approx(welch_reference(x, base), rel=1e-9)
    assert t.diff == pytest.approx(np.mean(x) - np.mean(base)) and t.spread == ""


def test_the_effect_interval_and_hedges_g_have_their_closed_forms():
    """x = [4, 6, 8] against [1, 2, 3], by hand: difference 4; variances 4 and 1, so se² = 4/3 + 1/3 = 5/3 and the
    Welch-Satterthwaite ν = (5/3)² / ((4/3)²/2 + (1/3)²/2) = 50/17; pooled variance (2·4 + 2·1)/4 = 2.5 and
    J = 1 − 3/(4·6 − 9) = 0.8, so g = 0.8 · 4 / √2.5."""
    from scipy import stats

    from vamoh.report.ablation_stats import welch

    t = welch([4.0, 6.0, 8.0], [1.0, 2.0, 3.0])
    assert t.diff == 4.0 and t.dof == pytest.approx(50 / 17, rel=1e-12)
    half = stats.t.ppf(0.975, 50 / 17) * math.sqrt(5 / 3)
    assert (t.low, t.high) == (pytest.approx(4 - half, rel=1e-12), pytest.approx(4 + half, rel=1e-12))
    assert t.g == pytest.approx(0.8 * 4 / math.sqrt(2.5), rel=1e-12)
    # and scipy's own interval of the Welch difference
    ci = stats.ttest_ind([4.0, 6.0, 8.0], [1.0, 2.0, 3.0], equal_var=False).confidence_interval(0.95)
    assert (t.low, t.high) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    # the interval excludes 0 exactly when the unadjusted p is below 0.05
    for x in ([1.5, 2.6, 3.1], [2.5, 3.6, 4.1], [3.0, 3.1, 2.9]):
        w = welch(x, [1.0, 2.0, 3.0])
        assert (w.low > 0 or w.high < 0) == (w.p < 0.05)


def test_corrected_p_values_equal_statsmodels_and_the_hand_computed_ones():
    from statsmodels.stats.multitest import multipletests

    from vamoh.report.ablation_stats import adjust

    p = [0.01, 0.02, 0.03, 0.5]
    # by hand: BH p_(i) · m / i, made monotone from the top: 0.04, 0.04, 0.04, 0.5; Holm p_(i) · (m − i + 1), made
    # monotone from the bottom: 0.04, 0.06, 0.06, 0.5
    np.testing.assert_allclose(adjust(p, "fdr_bh"), [0.04, 0.04, 0.04, 0.5], rtol=1e-12)
    np.testing.assert_allclose(adjust(p, "holm"), [0.04, 0.06, 0.06, 0.5], rtol=1e-12)
    fixed = np.random.default_rng(3).uniform(0, 0.2, 40)
    for method in ("fdr_bh", "holm"):
        np.testing.assert_allclose(adjust(fixed, method), multipletests(fixed, method=method)[1], rtol=1e-12)
    with pytest.raises(ValueError, match="bonferonni.*fdr_bh"):
        adjust(p, "bonferonni")


def test_no_p_value_comes_from_groups_without_spread():
    from scipy import stats

    from vamoh.report.ablation_stats import FEW_SEEDS, NO_SPREAD, welch

    both = welch([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert both.p is None and both.low is None and both.spread == NO_SPREAD and both.diff == 1.0
    same = welch([1.0, 1.0], [1.0, 1.0])
    assert same.p is None and same.spread == NO_SPREAD and same.diff == 0.0
    # one side constant: Welch's test is the one-sample test of the other side against that constant
    one = welch([1.0, 1.0, 1.0], [1.5, 2.0, 2.6])
    assert one.p == pytest.approx(stats.ttest_1samp([1.5, 2.0, 2.6], 1.0).pvalue, rel=1e-9)
    assert "variant has no spread" in one.spread
    assert "default has no spread" in welch([1.5, 2.0, 2.6], [1.0, 1.0, 1.0]).spread
    few = welch([1.0], [2.0, 3.0])
    assert few.p is None and few.spread == FEW_SEEDS and few.diff == -1.5
    assert welch([], [1.0, 2.0]) is None


# ---- the report


def test_significance_marks_follow_the_corrected_welch_tests():
    from statsmodels.stats.multitest import multipletests

    from vamoh.report.ablation_stats import compare, correct
    from vamoh.report.ablation_values import per_seed

    ab = RunConfig.from_dict(tiny_raw(MIXTURE)).ablations()
    values = per_seed(ab, synthetic_tidy(), synthetic_summaries(), EMPTY_MEASURED)
    comps = compare(values[values["question"] == "mixture"], "K3")
    family = correct(comps.values(), "holm")
    pairs = [(v, e, m) for v, e in (("K1", "vamoh-mixture-K1"), ("K8", "vamoh-mixture-K8")) for m in ("psnr_leakfree", "fid_test")]
    raw = [welch_reference(SYNTHETIC[e][m], SYNTHETIC["vamoh"][m]) for _, e, m in pairs]
    assert family == 4  # samples/s is never tested
    for (v, e, m), expected in zip(pairs, multipletests(raw, method="holm")[1]):
        c = comps[("polymnist", v, m)]
        assert c.p == pytest.approx(welch_reference(SYNTHETIC[e][m], SYNTHETIC["vamoh"][m]), rel=1e-9)
        assert c.p_adj == pytest.approx(expected, rel=1e-9) and c.significant == (expected < 0.05)
    assert comps[("polymnist", "K1", "psnr_leakfree")].significant and not comps[("polymnist", "K8", "psnr_leakfree")].significant
    assert comps[("polymnist", "K8", "fid_test")].significant and not comps[("polymnist", "K1", "fid_test")].significant
    speed = comps[("polymnist", "K1", "samples_per_second")]
    assert speed.test is None and speed.p_adj is None and not speed.significant
    assert comps[("polymnist", "K3", "samples_per_second")].mean == pytest.approx(101.0)


def two_question_report(tmp_path, method="fdr_bh", references=None):
    """The mixture question and a centroid question with its encoder timed, written to tmp_path."""
    from vamoh.report.ablations import write_ablation_report

    spec = {**MIXTURE, "c": {"model": "vamoh", "variants": {"fps": {}, "random": {"centroid_method": "random"}}, "default": "fps",
                             "generation": False, "metrics": ["psnr_leakfree", "encoder_ms", "samples_per_second"]}}
    ab = RunConfig.from_dict(tiny_raw(spec)).ablations()
    tidy = synthetic_tidy()
    random_psnr = [10.2, 9.8, 10.05]  # no quality difference to fps (the "vamoh" entry)
    tidy = pd.concat([tidy, pd.DataFrame([{**tidy.iloc[0].to_dict(), "model": "vamoh-c-random", "metric": "psnr_leakfree", "seed": s, "mean": v,
                                           "feature_extractor": ""} for s, v in enumerate(random_psnr)])], ignore_index=True)
    encoder = {"vamoh": [6.0, 6.1, 5.9], "vamoh-c-random": [1.0, 1.1, 0.9]}  # random is far faster
    measured = pd.DataFrame([{"question": "c", "dataset": "polymnist", "model": e, "seed": s, "metric": "encoder_ms", "value": v}
                             for e, vals in encoder.items() for s, v in enumerate(vals)])
    summaries = synthetic_summaries() + [{"dataset": "polymnist", "model": "vamoh-c-random", "seed": s, "samples_per_second": 500.0 + s,
                                          "seconds": 10.0, "model_config": {"centroid_method": "random"}} for s in range(3)]
    refs = {"polymnist": reference_record()} if references is None else references
    written = write_ablation_report(ab, tidy, summaries, measured, tmp_path, {"run": "abl"}, references=refs, method=method)
    return ab, written, random_psnr, encoder


@pytest.mark.parametrize("method", ["fdr_bh", "holm"])
def test_every_test_of_the_report_is_corrected_as_one_family(tmp_path, method):
    from statsmodels.stats.multitest import multipletests

    two_question_report(tmp_path, method)
    tests = pd.read_csv(tmp_path / "ablation_tests.csv", comment="#")
    tested = tests[tests["p"].notna()]
    # K1, K8 x (psnr, FID) and random x (psnr, encoder ms): one family of 6 across both questions
    assert len(tested) == 6 and set(tested["question"]) == {"mixture", "c"}
    np.testing.assert_allclose(tested["p_adjusted"], multipletests(tested["p"], method=method)[1], rtol=1e-9)
    assert (tested["significant"] == (tested["p_adjusted"] < 0.05)).all()
    assert tests[tests["metric"] == "samples_per_second"].empty  # never tested
    name = {"fdr_bh": "Benjamini–Hochberg", "holm": "Holm"}[method]
    doc = (tmp_path / "ablations.md").read_text()
    assert f"{name}-adjusted p < 0.05, over all 6 tests of this report" in doc
    table = pd.read_csv(tmp_path / "ablation_mixture.csv", comment="#").set_index("Variant")
    psnr = [c for c in table.columns if c.startswith("Recon. PSNR")][0]
    k1 = tested[(tested["variant"] == "K1") & (tested["metric"] == "psnr_leakfree")].iloc[0]
    assert table.loc["K1", psnr].endswith("*") == bool(k1["significant"])


def test_speed_never_counts_in_an_answer_and_is_reported_apart(tmp_path):
    from vamoh.report.ablation_answers import verdicts

    ab, written, random_psnr, encoder = two_question_report(tmp_path)
    tests = pd.read_csv(tmp_path / "ablation_tests.csv", comment="#").set_index(["variant", "metric"])
    enc = tests.loc[("random", "encoder_ms")]
    assert enc["kind"] == "speed" and enc["significant"] and not enc["counted_in_answer"] and enc["result"] == "faster"
    assert enc["diff"] == pytest.approx(np.mean(encoder["vamoh-c-random"]) - np.mean(encoder["vamoh"]))
    assert not tests.loc[("random", "psnr_leakfree")]["significant"]
    doc = (tmp_path / "ablations.md").read_text()
    section = doc.split("## c")[1]
    # far faster, no quality difference: the answer calls random no better than fps
    assert "random is not significantly different from the default fps on any quality metric tested" in section
    assert "better" not in section.split("\n- ")[0].split(":", 1)[1]
    speed_line = [line for line in section.splitlines() if "speed, apart from the answer" in line][0]
    assert "Encoder ms / sample against fps" in speed_line and "random −5.000" in speed_line and "faster" in speed_line
    assert "Train samples / s (job wall time), shown only, never tested" in speed_line
    # the speed table is its own file; the quality table has no speed column
    speed = pd.read_csv(tmp_path / "ablation_c_speed.csv", comment="#").set_index("Variant")
    assert speed.loc["random", [c for c in speed.columns if c.startswith("Encoder ms")][0]].endswith("*")
    assert not [c for c in pd.read_csv(tmp_path / "ablation_c.csv", comment="#").columns if "ms" in c or "samples / s" in c]
    # verdicts(): even a significant speed difference counts for nobody
    from vamoh.report.ablation_stats import compare, correct
    from vamoh.report.ablation_values import per_seed

    values = per_seed(ab, synthetic_tidy().iloc[:0], [], pd.DataFrame([{"question": "c", "dataset": "polymnist", "model": e, "seed": s, "metric": "encoder_ms", "value": v}
                                    for e, vals in encoder.items() for s, v in enumerate(vals)]))
    comps = compare(values[values["question"] == "c"], "fps")
    correct(comps.values())
    assert comps[("polymnist", "random", "encoder_ms")].significant
    assert verdicts(ab["c"], comps, ["psnr_leakfree", "encoder_ms", "samples_per_second"]) == {"random": (0, 0)}


def test_report_tables_and_answers_follow_the_numbers(tmp_path):
    from vamoh.report.ablations import report_files, write_ablation_report

    ab = RunConfig.from_dict(tiny_raw(MIXTURE)).ablations()
    written = write_ablation_report(ab, synthetic_tidy(), synthetic_summaries(), EMPTY_MEASURED, tmp_path, {"run": "abl"},
                                    references={"polymnist": reference_record()})
    assert {p.name for p in written} == set(report_files(ab, []))  # no figure arrays given: no pictures
    table = pd.read_csv(tmp_path / "ablation_mixture.csv", comment="#").set_index("Variant")
    psnr = [c for c in table.columns if c.startswith("Recon. PSNR")][0]
    fid = [c for c in table.columns if c.startswith("FID")][0]
    assert table.loc["K1", psnr] == "8.00 ± 0.10 *" and not table.loc["K8", psnr].endswith("*")
    assert table.loc["K8", fid].endswith("*") and not table.loc["K1", fid].endswith("*")
    assert "K3 (default)" in table.index and not table.loc["K3 (default)", psnr].endswith("*")
    assert table.loc["Real held-out (floor)", fid] == "0.10" and table.loc["Real held-out (floor)", psnr] == DASH
    assert list(table["Setting"][:3]) == ["K=1", "K=3", "K=8"]  # what train.json says the checkpoints have
    assert "‡" in fid and table["Dataset"].str.endswith("†").all()
    doc = (tmp_path / "ablations.md").read_text()
    assert "the default K3 is better than K1" in doc
    assert "K8 (better than the default in 1, worse in 0 significant comparisons) is better than the default K3" in doc
    # the effect with its interval, from the tests file
    tests = pd.read_csv(tmp_path / "ablation_tests.csv", comment="#").set_index(["variant", "metric"])
    k1 = tests.loc[("K1", "psnr_leakfree")]
    assert f"K1 is worse on Recon. PSNR, leak-free (dB) (−2.00 [−{abs(k1['ci_low']):.2f}, −{abs(k1['ci_high']):.2f}], p adj. " in doc
    assert "K8 is better on FID tst (−5.00 [" in doc
    assert "no significant difference on the other 1 quality metric counted" in doc
    assert "Train samples / s: " not in doc.split("Best mean")[1].split("\n")[0]  # a speed is never a best
    assert (tmp_path / "ablation_mixture.png").stat().st_size > 0
    # flip the numbers: the marks and the answer flip with them
    flipped = synthetic_tidy()
    k1_psnr = (flipped["model"] == "vamoh-mixture-K1") & (flipped["metric"] == "psnr_leakfree")
    flipped.loc[k1_psnr, "mean"] = [12.0, 12.1, 11.9]
    write_ablation_report(ab, flipped, synthetic_summaries(), EMPTY_MEASURED, tmp_path / "flipped", {}, references={"polymnist": reference_record()})
    doc = (tmp_path / "flipped" / "ablations.md").read_text()
    assert "K1 is better on Recon. PSNR, leak-free (dB) (+2.00" in doc and "the default K3 is better than K1" not in doc


def test_fid_counts_only_behind_a_passing_extractor_and_precision_only_when_noise_gets_none(tmp_path):
    from vamoh.report.summary import NOISE_PRECISION_MAX

    spec = {"mixture": {**MIXTURE["mixture"], "metrics": ["psnr_leakfree", "fid_test", "precision_test"]}}
    ab = RunConfig.from_dict(tiny_raw(spec)).ablations()
    from vamoh.report.ablations import write_ablation_report

    tidy = synthetic_tidy()
    prec = {"vamoh": [0.90, 0.92, 0.91], "vamoh-mixture-K1": [0.60, 0.62, 0.61], "vamoh-mixture-K8": [0.91, 0.90, 0.92]}
    tidy = pd.concat([tidy, pd.DataFrame([{**tidy.iloc[0].to_dict(), "model": e, "metric": "precision_test", "seed": s, "mean": v,
                                           "feature_extractor": "suite-ae"} for e, vals in prec.items() for s, v in enumerate(vals)])],
                     ignore_index=True)

    def run(name, record, noise_precision):
        t = pd.concat([tidy, pd.DataFrame([{"dataset": "polymnist", "model": "noise", "kind": "reference", "seed": 0, "metric": m, "mean": v,
                                            "values": "[]"} for m, v in (("precision_test", noise_precision), ("fid_test", 400.0))])],
                      ignore_index=True)
        write_ablation_report(ab, t, synthetic_summaries(), EMPTY_MEASURED, tmp_path / name, {}, references=record)
        tests = pd.read_csv(tmp_path / name / "ablation_tests.csv", comment="#").set_index(["variant", "metric"])
        return tests, (tmp_path / name / "ablations.md").read_text()

    tests, doc = run("pass", {"polymnist": reference_record(True)}, 0.0)
    assert tests.loc[("K8", "fid_test"), "significant"] and tests.loc[("K1", "precision_test"), "counted_in_answer"]
    assert "K1 is worse on Recon. PSNR, leak-free (dB)" in doc and "Precision tst (−0.300" in doc
    table = pd.read_csv(tmp_path / "pass" / "ablation_mixture.csv", comment="#").set_index("Variant")
    assert table.loc["Uniform noise (ceiling)", [c for c in table.columns if c.startswith("FID")][0]] == "400.00"

    tests, doc = run("fail", {"polymnist": reference_record(False)}, 0.0)
    for key in ("fid_test", "precision_test"):
        row = tests.loc[("K8" if key == "fid_test" else "K1", key)]
        assert math.isnan(row["p"]) and not row["significant"] and not row["counted_in_answer"] and "fails its quality gate" in row["note"]
        assert not math.isnan(row["ci_low"])  # the difference and its interval are still shown
    assert "K8 is better" not in doc and "Not tested, not counted: FID tst, Precision tst (the feature extractor fails its quality gate" in doc
    assert "13.00 dB against 10.00 dB" in doc
    none, _ = run("none", None, 0.0)  # no reference record: the gate is unknown, so nothing is tested on the extractor
    assert math.isnan(none.loc[("K8", "fid_test"), "p"]) and "quality gate is unknown" in none.loc[("K8", "fid_test"), "note"]

    tests, doc = run("noisy", {"polymnist": reference_record(True)}, NOISE_PRECISION_MAX + 0.3)
    assert tests.loc[("K8", "fid_test"), "significant"]  # FID still counts
    assert math.isnan(tests.loc[("K1", "precision_test"), "p"]) and "does not tell noise from data" in tests.loc[("K1", "precision_test"), "note"]


def test_a_metric_saturated_for_every_variant_is_said_so_with_its_floor_and_noise_rows(tmp_path):
    from vamoh.report.ablations import write_ablation_report

    spec = {"mixture": {**MIXTURE["mixture"], "metrics": ["psnr_leakfree", "precision_test"]}}
    ab = RunConfig.from_dict(tiny_raw(spec)).ablations()
    tidy = synthetic_tidy()
    base = tidy.iloc[0].to_dict()
    rows = [{**base, "model": e, "metric": "precision_test", "seed": s, "mean": 1.0, "feature_extractor": "suite-ae"}
            for e in SYNTHETIC for s in range(3)]
    rows += [{"dataset": "polymnist", "model": r, "kind": "reference", "seed": 0, "metric": "precision_test", "mean": v, "values": "[]"}
             for r, v in (("real_heldout", 0.98), ("noise", 0.0))]
    write_ablation_report(ab, pd.concat([tidy, pd.DataFrame(rows)], ignore_index=True), synthetic_summaries(), EMPTY_MEASURED, tmp_path, {},
                          references={"polymnist": reference_record(True)})
    doc = (tmp_path / "ablations.md").read_text()
    assert ("PolyMNIST, Precision tst: 1.000 for every variant on every seed (held-out real images (the floor) 0.980; uniform noise 0.000): "
            "saturated, it cannot rank the variants") in doc
    assert "Uniform noise gets precision 0.00, so the noise row does not expose the extractor as fooled" in doc
    tests = pd.read_csv(tmp_path / "ablation_tests.csv", comment="#").set_index(["variant", "metric"])
    row = tests.loc[("K1", "precision_test")]
    assert math.isnan(row["p"]) and row["note"].startswith("no spread: both sides give one value on every seed, the same value")
    assert "Not tested, not counted: Precision tst (no spread" in doc


def test_each_variant_gets_a_sample_grid_and_a_reconstruction_row(tmp_path):
    """The picture figure tiles figures.npz's arrays: 8x8 samples, then the truth over the reconstruction."""
    from PIL import Image

    from vamoh.report.ablation_figures import pictures_figure

    ab = RunConfig.from_dict(tiny_raw(MIXTURE)).ablations()["mixture"]
    rng = np.random.default_rng(0)
    arrays = {e: {"samples_1x": rng.integers(0, 256, (64, 28, 28, 3), dtype=np.uint8),
                  "ground_truth": rng.integers(0, 256, (8, 28, 28, 3), dtype=np.uint8),
                  "recon_1x": rng.integers(0, 256, (8, 28, 28, 3), dtype=np.uint8)} for e in ("vamoh", "vamoh-mixture-K1")}
    path = pictures_figure(ab, "polymnist", arrays, tmp_path / "p.png", seed=0)  # K8 has no arrays: its panels say so
    img = np.asarray(Image.open(path))
    assert img.shape[1] > 600 and img.shape[0] > 300


def test_measured_metrics_join_the_question_that_measured_them():
    from vamoh.report.ablation_values import per_seed

    ab = RunConfig.from_dict(tiny_raw({
        "c": {"model": "vamoh", "variants": {"fps": {}, "random": {"centroid_method": "random"}}, "default": "fps", "generation": False,
              "metrics": ["encoder_ms", "test_elbo_per_point"]},
        "d": {"model": "vamoh", "variants": {"base": {}, "lin": {"weightnet_linear": True}}, "default": "base", "generation": False,
              "metrics": ["encoder_ms"]}})).ablations()
    measured = pd.DataFrame([
        {"question": "c", "dataset": "polymnist", "model": "vamoh", "seed": 0, "metric": "encoder_ms", "value": 2.0},
        {"question": "d", "dataset": "polymnist", "model": "vamoh", "seed": 0, "metric": "encoder_ms", "value": 3.0},
        {"question": "", "dataset": "polymnist", "model": "vamoh", "seed": 0, "metric": "test_elbo_per_point", "value": -1.5},
    ])
    v = per_seed(ab, synthetic_tidy().iloc[:0], [], measured).set_index(["question", "variant", "metric"])["value"]
    assert v[("c", "fps", "encoder_ms")] == 2.0 and v[("d", "base", "encoder_ms")] == 3.0
    assert v[("c", "fps", "test_elbo_per_point")] == -1.5


def test_measured_rows_round_trip_through_measured_json_exactly(tmp_path):
    """The ablation_measure rule's rows reach the report as ``measure`` returned them: every float to the last bit,
    seeds as ints, a non-finite value as NaN (JSON has none), which per_seed drops like the original."""
    from vamoh.eval.ablation_measure import read_measured, write_measured

    measured = pd.DataFrame([
        {"question": "", "dataset": "polymnist", "model": "vamoh", "seed": 0, "metric": "test_elbo_per_point", "value": -1.2345678901234567},
        {"question": "c", "dataset": "polymnist", "model": "vamoh", "seed": 1, "metric": "encoder_ms", "value": 0.1 + 0.2},
        {"question": "c", "dataset": "polymnist", "model": "vamoh-c-random", "seed": 1, "metric": "encoder_ms", "value": math.nan},
    ])
    about = {"device": {"device": "cpu", "cpu": "test"}, "processor": "", "threads": 1, "encoder_repeats": 2, "encoder_warmup": 1}
    back, record = read_measured(write_measured(tmp_path / "measured.json", measured, about))
    assert record == {"schema": "vamoh.eval.ablation_measured/1", **about}
    assert list(back.columns) == list(measured.columns) and back["seed"].tolist() == [0, 1, 1]
    assert all(isinstance(s, int) for s in back["seed"].tolist())
    assert back["value"].tolist()[:2] == measured["value"].tolist()[:2] and math.isnan(back["value"].iloc[2])
    pd.testing.assert_frame_equal(back, measured)
    empty, _ = read_measured(write_measured(tmp_path / "empty.json", EMPTY_MEASURED, about))
    assert empty.empty and list(empty.columns) == list(EMPTY_MEASURED.columns)


# ---------------------------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_tiny_ablation_runs_end_to_end(tmp_path):
    """`snakemake ablations` on 1 dataset, 2 questions of 2 variants (one without generation), 2 seeds: the report
    with its pictures, and the variant's override in its trained checkpoint and train.json."""
    from vamoh.checkpoint import load_checkpoint

    raw = tiny_raw({"mixture": {"model": "vamoh", "variants": {"K1": {"K": 1}, "K3": {}}, "default": "K3"},
                    "c": {"model": "vamoh", "variants": {"fps": {}, "random": {"centroid_method": "random"}}, "default": "fps",
                          "generation": False, "metrics": ["psnr_leakfree", "encoder_ms", "samples_per_second"]}},
                   eval={"num_samples": 16, "num_sets": 2, "max_real": 32, "extractor_epochs": 1, "timing_repeats": 2,
                         "timing_warmup": 1, "timing_batch_sizes": [1], "completion_samples": 4},
                   figures={"num_examples": 2, "num_samples": 4})
    (tmp_path / "abl.yaml").write_text(yaml.safe_dump(raw))
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "ablations", "--cores", "2",
                          "--configfile", "abl.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    job = tmp_path / "results/abl/polymnist/vamoh-mixture-K1/seed1"
    assert json.loads((job / "train.json").read_text())["model_config"]["K"] == 1
    assert load_checkpoint(job / "checkpoint.pt")["model_config"]["K"] == 1
    assert load_checkpoint(tmp_path / "results/abl/polymnist/vamoh/seed1/checkpoint.pt")["model_config"]["K"] == 3
    rep = tmp_path / "reports/abl"
    table = pd.read_csv(rep / "ablation_mixture.csv", comment="#")
    assert list(table["Variant"][:2]) == ["K1", "K3 (default)"] and list(table["Setting"][:2]) == ["K=1", "K=3"]
    assert "Real held-out (floor)" in list(table["Variant"]) and "Uniform noise (ceiling)" in list(table["Variant"])
    values = pd.read_csv(rep / "ablation_values.csv")
    elbo = values[values["metric"] == "test_elbo_per_point"]
    assert len(elbo) == 4 and np.isfinite(elbo["value"]).all() and (elbo["value"] < 0).all()
    # the measurements come from their own rule's measured.json: the ELBO once per entry, the encoder per question
    measured = json.loads((tmp_path / "results/abl/ablations/measured.json").read_text())["rows"]
    assert sorted({(r["question"], r["metric"]) for r in measured}) == [("", "test_elbo_per_point"), ("c", "encoder_ms")]
    assert set(values["metric"]) >= {"psnr_leakfree", "fid_test", "samples_per_second", "segment_kappa"}
    doc = (rep / "ablations.md").read_text()
    assert "Answer, from the quality metrics (2 seeds" in doc
    # every file the workflow declares, the pictures and the speed table of the timed question among them
    from vamoh.report.ablations import report_files

    ab = RunConfig.from_dict(raw).ablations()
    assert all((rep / name).is_file() for name in report_files(ab, raw["datasets"]))
    assert "ablation_c_speed.csv" in report_files(ab, ["polymnist"]) and "ablation_mixture_speed.csv" in report_files(ab, ["polymnist"])
    assert "![c, PolyMNIST: samples and reconstructions](ablation_c_pictures_polymnist.png)" in doc
    # a variant of a question without generation still draws the figure samples (no FID for it)
    arrays = np.load(tmp_path / "results/abl/polymnist/vamoh-c-random/seed0/figures.npz")
    assert arrays["samples_1x"].shape[0] == raw["figures"]["num_samples"] and arrays["recon_1x"].shape[0] == raw["figures"]["num_examples"]
    fid = pd.read_csv(tmp_path / "results/abl/tidy.csv").query("model == 'vamoh-c-random' and metric == 'fid_test'")["mean"]
    assert fid.isna().all()
    # the extractor's gate was read from reference.json: the notes say whether it passed
    ref = json.loads((tmp_path / "results/abl/polymnist/reference/reference.json").read_text())
    fid_tested = pd.read_csv(rep / "ablation_tests.csv", comment="#").query("metric == 'fid_test'")["p"].notna().all()
    assert fid_tested == ref["extractor"]["quality"]["passes"]


def test_asking_for_ablations_without_questions_says_which_config_has_them():
    rc = RunConfig.from_file(ROOT / "config" / "tiny.yaml")
    assert rc.ablations() == {}
    with pytest.raises(ConfigError, match="no `ablations` section.*config/ablations.yaml"):
        rc.ablations(required=True)


def test_a_variant_that_changed_nothing_is_called_so_and_ties_name_no_best(tmp_path):
    from vamoh.report.ablations import write_ablation_report

    spec = {"mixture": {**MIXTURE["mixture"], "variants": {"K1": {"K": 1}, "K3": {}, "K8": {"K": 8}}}}
    ab = RunConfig.from_dict(tiny_raw(spec)).ablations()
    tidy = synthetic_tidy()
    same = tidy[tidy["model"] == "vamoh"].assign(model="vamoh-mixture-K8")  # K8's numbers := the default's, seed by seed
    tidy = pd.concat([tidy[tidy["model"] != "vamoh-mixture-K8"], same], ignore_index=True)
    summaries = synthetic_summaries()
    for s in summaries:  # a speed never makes two models differ: K8's train.json says it was slower
        s["samples_per_second"] += 50.0 * (s["model"] == "vamoh-mixture-K8")
    write_ablation_report(ab, tidy, summaries, EMPTY_MEASURED, tmp_path, references={"polymnist": reference_record()})
    doc = (tmp_path / "ablations.md").read_text()
    assert "K8 gives exactly the default's numbers on every seed" in doc
    assert "K1 gives exactly" not in doc
    # FID: K1 (10.03) and K3 (10.00) differ, K8 ties K3 as the lowest; PSNR: K8 ties K3 as the highest -> no best at all,
    # and the one metric with a unique best, samples/s (K8), is a speed, never a best
    assert "Best mean" not in doc
    assert "K8 151" in [line for line in doc.splitlines() if "speed, apart from the answer" in line][0]


def test_the_paper_protocol_psnr_is_tested_and_shown_but_never_counted(tmp_path):
    """Its mixture weights see the value they predict (issue 21), which favours more components whatever they learned:
    a significant paper-protocol difference is named, with its direction, and enters no answer; the leak-free one counts."""
    from vamoh.report.ablations import write_ablation_report

    spec = {"mixture": {**MIXTURE["mixture"], "metrics": ["psnr", "psnr_leakfree"]}}
    ab = RunConfig.from_dict(tiny_raw(spec)).ablations()
    tidy = synthetic_tidy()  # psnr_leakfree: K1 clearly below the default K3
    paper = {"vamoh": [15.0, 15.1, 14.9], "vamoh-mixture-K1": [10.0, 10.1, 9.9], "vamoh-mixture-K8": [20.0, 20.1, 19.9]}
    tidy = pd.concat([tidy, pd.DataFrame([{**tidy.iloc[0].to_dict(), "model": e, "metric": "psnr", "seed": s, "mean": v}
                                          for e, vals in paper.items() for s, v in enumerate(vals)])], ignore_index=True)
    write_ablation_report(ab, tidy, synthetic_summaries(), EMPTY_MEASURED, tmp_path, {}, references={"polymnist": reference_record()})
    tests = pd.read_csv(tmp_path / "ablation_tests.csv", comment="#").set_index(["variant", "metric"])
    assert tests.loc[("K8", "psnr"), "significant"] and not tests.loc[("K8", "psnr"), "counted_in_answer"]
    assert tests.loc[("K1", "psnr_leakfree"), "counted_in_answer"]
    doc = (tmp_path / "ablations.md").read_text()
    # K8 wins only on the paper protocol: not better than the default; K1 loses on the leak-free score: counted
    assert "K8 shows no significant difference on the 1 quality metric counted (not counted: higher Recon. PSNR, paper protocol (dB) (+5.00" in doc
    assert "the default K3 is better than K1" in doc and "better than K3" not in doc
    table = pd.read_csv(tmp_path / "ablation_mixture.csv", comment="#").set_index("Variant")
    assert table.loc["K8", [c for c in table.columns if c.startswith("Recon. PSNR, paper")][0]].endswith("*")


def test_reconstruction_scores_are_tested_only_where_the_default_beats_the_train_mean():
    """A default at the train mean's level has learned nothing for its variants to change: its reconstruction and
    completion comparisons are shown, not tested (the summary's margin, CLEAR_MARGIN_DB)."""
    from vamoh.eval import keys
    from vamoh.report.ablation_values import learning_exclusions
    from vamoh.report.summary import CLEAR_MARGIN_DB

    rows = [{"dataset": d, "variant": v, "metric": m, "seed": s, "value": val}
            for d, m, v, vals in (("polymnist", "psnr_leakfree", "K3", [10.2, 10.3, 10.25]), ("polymnist", "psnr_leakfree", "K1", [9.0, 9.1, 9.2]),
                                  ("shapes3d", "psnr_leakfree", "K3", [12.7, 12.6, 12.8]), ("shapes3d", "fid_test", "K3", [90.0, 91.0, 92.0]))
            for s, val in enumerate(vals)]
    refs = {("polymnist", keys.REF_MEAN, "psnr_leakfree"): (10.25, 0.9), ("shapes3d", keys.REF_MEAN, "psnr_leakfree"): (6.58, 0.5),
            ("shapes3d", keys.REF_MEAN, "fid_test"): (600.0, None)}
    out = learning_exclusions(pd.DataFrame(rows), "K3", ["psnr_leakfree", "fid_test"], refs)
    assert set(out) == {("polymnist", "psnr_leakfree")}  # 10.25 < 10.25 + margin; Shapes3D is 6 dB above; FID is not gated here
    assert f"does not beat the train mean by {CLEAR_MARGIN_DB:g} dB here (10.25 against 10.25 dB)" in out[("polymnist", "psnr_leakfree")]
    # exactly at the margin passes
    refs[("polymnist", keys.REF_MEAN, "psnr_leakfree")] = (10.25 - CLEAR_MARGIN_DB, 0.9)
    assert learning_exclusions(pd.DataFrame(rows), "K3", ["psnr_leakfree"], refs) == {}


def test_a_variant_identical_to_the_default_on_every_seed_gets_no_test():
    """A setting that changed nothing in the trained model (Shapes3D's linear weight-net on a one-layer net) gives the
    default's numbers exactly: a p-value of 1 would only dilute the correction's family."""
    from vamoh.report.ablation_stats import IDENTICAL, compare

    rows = [{"dataset": "shapes3d", "variant": v, "metric": "psnr_leakfree", "seed": s, "value": val}
            for v, vals in (("paper", [12.1, 12.7, 13.0]), ("same", [12.1, 12.7, 13.0]), ("other", [12.0, 12.6, 13.5]))
            for s, val in enumerate(vals)]
    comps = compare(pd.DataFrame(rows), "paper")
    same, other = comps[("shapes3d", "same", "psnr_leakfree")], comps[("shapes3d", "other", "psnr_leakfree")]
    assert same.p is None and same.test.spread == IDENTICAL and same.diff == 0.0
    assert other.p is not None and 0 < other.p < 1
