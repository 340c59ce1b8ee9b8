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
                       "default": "K3", "metrics": ["psnr", "fid_test", "samples_per_second"]}}


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
    """stages.build_model (what stages.train trains) builds the variant's config: K hypergenerators, switches."""
    from vamoh.interface import DataInfo
    from vamoh.pipeline import stages

    rc = RunConfig.from_dict(tiny_raw({"q": {"model": "vamoh", "variants": {"K1": {"K": 1, "tanh_categorical_logits": True}, "base": {}},
                                             "default": "base"}}))
    info = DataInfo(2, 3, "discretized_logistic", (28, 28))
    variant, base = (stages.build_model(rc, e, "polymnist", info, 0) for e in ("vamoh-q-K1", "vamoh"))
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
    trained = {line.split("model=")[1].split(",")[0] for line in text.splitlines() if "wildcards:" in line and "model=" in line}
    assert trained == set(entries)
    assert "results/ablations/shapes3d/vamoh-deviations-original/seed2/checkpoint.pt" in text


# ---------------------------------------------------------------------------------------------- measurements


def test_the_test_elbo_is_the_paper_bound_whatever_the_training_objective(tmp_path):
    """A model trained with the original code's detached-flow objective is scored with the paper's ELBO: the
    same number as the same weights without the switch, and not the surrogate its ``elbo`` returns."""
    from tests.vamoh_fixtures import BlobImages, tiny_model
    from vamoh.report.ablations import test_elbo_per_point

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
    from vamoh.report.ablations import test_elbo_per_point

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
    from vamoh.report.ablations import encoder_timings, observed_subsets

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
    "vamoh": {"psnr": [10.0, 10.1, 9.9], "fid_test": [10.0, 10.2, 9.8]},
    "vamoh-mixture-K1": {"psnr": [8.0, 8.1, 7.9], "fid_test": [10.1, 9.7, 10.3]},
    "vamoh-mixture-K8": {"psnr": [10.05, 9.85, 10.1], "fid_test": [5.0, 5.1, 4.9]},
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


def test_significance_marks_follow_welch_on_the_per_seed_means():
    from vamoh.report.ablations import compare, per_seed, welch_p

    ab = RunConfig.from_dict(tiny_raw(MIXTURE)).ablations()
    values = per_seed(ab, synthetic_tidy(), synthetic_summaries(), pd.DataFrame(columns=["question", "dataset", "model", "seed", "metric", "value"]))
    comps = compare(values[values["question"] == "mixture"], "K3")
    for v, e in (("K1", "vamoh-mixture-K1"), ("K8", "vamoh-mixture-K8")):
        for m in ("psnr", "fid_test"):
            c = comps[("polymnist", v, m)]
            assert c.p == pytest.approx(welch_reference(SYNTHETIC[e][m], SYNTHETIC["vamoh"][m]), rel=1e-9)
            assert c.diff == pytest.approx(np.mean(SYNTHETIC[e][m]) - np.mean(SYNTHETIC["vamoh"][m]))
            assert c.significant == (c.p < 0.05)
    assert comps[("polymnist", "K1", "psnr")].significant and not comps[("polymnist", "K8", "psnr")].significant
    assert comps[("polymnist", "K8", "fid_test")].significant and not comps[("polymnist", "K1", "fid_test")].significant
    # samples/s from train.json: the same in every variant, so no mark
    assert not comps[("polymnist", "K1", "samples_per_second")].significant
    assert comps[("polymnist", "K3", "samples_per_second")].mean == pytest.approx(101.0)
    # no spread on either side: any difference is significant, none is not
    assert welch_p([1.0, 1.0], [2.0, 2.0]) == 0.0 and welch_p([1.0, 1.0], [1.0, 1.0]) == 1.0 and welch_p([1.0], [2.0, 3.0]) is None


def test_report_tables_and_answers_follow_the_numbers(tmp_path):
    from vamoh.report.ablations import write_ablation_report

    ab = RunConfig.from_dict(tiny_raw(MIXTURE)).ablations()
    measured = pd.DataFrame(columns=["question", "dataset", "model", "seed", "metric", "value"])
    write_ablation_report(ab, synthetic_tidy(), synthetic_summaries(), measured, tmp_path, {"run": "abl"})
    table = pd.read_csv(tmp_path / "ablation_mixture.csv", comment="#").set_index("Variant")
    psnr = [c for c in table.columns if c.startswith("Recon. PSNR")][0]
    fid = [c for c in table.columns if c.startswith("FID")][0]
    assert table.loc["K1", psnr] == "8.00 ± 0.10 *" and not table.loc["K8", psnr].endswith("*")
    assert table.loc["K8", fid].endswith("*") and not table.loc["K1", fid].endswith("*")
    assert "K3 (default)" in table.index and not table.loc["K3 (default)", psnr].endswith("*")
    assert list(table["Setting"]) == ["K=1", "K=3", "K=8"]  # what train.json says the checkpoints have
    assert "‡" in fid and table["Dataset"].str.endswith("†").all()
    doc = (tmp_path / "ablations.md").read_text()
    assert "the default K3 is better than K1" in doc
    assert "K8 (better than the default in 1, worse in 0 significant comparisons) is better than the default K3" in doc
    assert "K1 is worse on Recon. PSNR (dB) (−2.00, p " in doc and "K8 is better on FID tst (−5.00, p " in doc
    assert "within the seeds' spread on the other 2 metrics" in doc
    assert (tmp_path / "ablation_mixture.png").stat().st_size > 0
    # flip the numbers: the marks and the answer flip with them
    flipped = synthetic_tidy()
    k1_psnr = (flipped["model"] == "vamoh-mixture-K1") & (flipped["metric"] == "psnr")
    flipped.loc[k1_psnr, "mean"] = [12.0, 12.1, 11.9]
    write_ablation_report(ab, flipped, synthetic_summaries(), measured, tmp_path / "flipped", {})
    doc = (tmp_path / "flipped" / "ablations.md").read_text()
    assert "K1 is better on Recon. PSNR (dB) (+2.00" in doc and "the default K3 is better than K1" not in doc


def test_measured_metrics_join_the_question_that_measured_them():
    from vamoh.report.ablations import per_seed

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


# ---------------------------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_tiny_ablation_runs_end_to_end(tmp_path):
    """`snakemake ablations` on 1 dataset, 2 variants of one question, 2 seeds: the report, and the variant's
    override in its trained checkpoint and train.json."""
    from vamoh.checkpoint import load_checkpoint

    raw = tiny_raw({"mixture": {"model": "vamoh", "variants": {"K1": {"K": 1}, "K3": {}}, "default": "K3"}},
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
    assert list(table["Variant"]) == ["K1", "K3 (default)"] and list(table["Setting"]) == ["K=1", "K=3"]
    values = pd.read_csv(rep / "ablation_values.csv")
    elbo = values[values["metric"] == "test_elbo_per_point"]
    assert len(elbo) == 4 and np.isfinite(elbo["value"]).all() and (elbo["value"] < 0).all()
    assert set(values["metric"]) >= {"psnr", "fid_test", "samples_per_second", "segment_kappa"}
    assert "Answer, from the numbers (2 seeds" in (rep / "ablations.md").read_text()


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
    write_ablation_report(ab, tidy, summaries, pd.DataFrame(columns=["question", "dataset", "model", "seed", "metric", "value"]), tmp_path)
    doc = (tmp_path / "ablations.md").read_text()
    assert "K8 gives exactly the default's numbers on every seed" in doc
    assert "K1 gives exactly" not in doc
    # FID: K1 (10.03) and K3 (10.00) differ, K8 ties K3 as the lowest -> no best named for FID
    best = doc.split("Best mean:")[1].split("\n")[0]
    assert "FID" not in best and "Recon. PSNR (dB): " not in best and "Train samples / s: K8" in best
