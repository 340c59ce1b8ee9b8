"""The reliability sweep as a table: bad inputs a user can give (run configs, model and data settings, the `vamoh`
command's arguments, checkpoints, data files), each answered by one clear error that names the key, file or
value, before any work is done where the input is known up front.

Every row is (id, what the user does, the error's type, a regex the message must match). The workflow-level rows
(what `snakemake --configfile` prints) are in test_workflow.py; the loaders' own 37 cases in test_data_errors.py.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from vamoh.checks import CheckpointError, ConfigError, DataError
from vamoh.pipeline import preflight

ROOT = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())
pytestmark = pytest.mark.filterwarnings("ignore::vamoh.data.DataWarning")


def run_config(**changes):
    """tiny.yaml with nested changes ("a.b.c": value), built and checked as the workflow does before any job."""
    from vamoh.pipeline.runconfig import RunConfig

    cfg = copy.deepcopy(TINY)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    rc = RunConfig.from_dict(cfg)
    preflight.check(rc)
    return rc


def vamoh_setting(key, value):
    return lambda: run_config(**{"model_settings.vamoh.overrides": {key: value}})


def with_model(model, key, value):
    return lambda: run_config(**{f"model_settings.{model}": {"preset": "tiny", "overrides": {key: value}}})


def eval_setting(key, value):
    return lambda: run_config(**{"eval": {**TINY["eval"], key: value}})


def data_setting(dataset, key, value):
    def go():
        settings = copy.deepcopy(TINY["data"]["settings"])
        settings.setdefault(dataset, {})[key] = value
        run_config(**{"data.settings": settings})

    return go


CONFIG_CASES = [
    ("unknown dataset", lambda: run_config(datasets=["polymnist", "mnist"]), ConfigError, r"datasets.1: 'mnist' is not one of"),
    ("no datasets", lambda: run_config(datasets=[]), ConfigError, r"config key datasets: \[\] should be non-empty"),
    ("unknown allocator", lambda: run_config(malloc="jemalloc"), ConfigError, r"config key malloc: 'jemalloc' is not one of \['system', 'tuned'\]"),
    ("unknown model", lambda: run_config(models=["vamoh", "vae"]), ConfigError, r"models.1: 'vae' is not one of"),
    ("negative seed", lambda: run_config(seeds=[-1]), ConfigError, r"seeds.0: -1 is less than the minimum of 0"),
    ("duplicate seeds", lambda: run_config(seeds=[0, 0]), ConfigError, r"seeds: \[0, 0\] has non-unique elements"),
    # issue 19: numpy takes seeds modulo 2**32, so these planned identical trainings under two names
    *[(f"seeds {seeds}", (lambda seeds=seeds: run_config(seeds=seeds)), ConfigError,
       rf"config key seeds.{i}={bad}: expected an integer in \[0, 2\*\*32 - 1 = 4294967295\] \(larger seeds alias")
      for seeds, i, bad in (([0, 2**32], 1, 2**32), ([2**32 + 1], 0, 2**32 + 1), ([5, 2**40 + 5], 1, 2**40 + 5))],
    ("seeds not a list", lambda: run_config(seeds=3), ConfigError, r"seeds: 3 is not of type 'array'"),
    ("device gpu", lambda: run_config(device="gpu"), ConfigError, r"device='gpu': expected 'auto', 'cpu' or 'cuda\[:N\]'"),
    ("zero threads", lambda: run_config(threads=0), ConfigError, r"threads: 0 is less than the minimum of 1"),
    ("run name with a slash", lambda: run_config(run="a/b"), ConfigError, r"config key run='a/b': expected a name of letters, digits"),
    # issue 19: the run name is a folder name (results/{run}, reports/{run}, logs/{run}); none of these may escape or mix runs
    *[(f"run name {bad!r}", (lambda bad=bad: run_config(run=bad)), ConfigError,
       rf"config key run={re.escape(repr(bad))}: expected a name of letters, digits, '_', '.' and '-' that starts with a letter or digit")
      for bad in ("..", ".", "", "/tmp/x", "../up", "-dash", ".hidden", "a b", "x" * 101, 7)],
    ("unknown top-level key", lambda: run_config(modelz=["vamoh"]), ConfigError, r"'modelz' was unexpected"),
    ("unknown data source", lambda: run_config(**{"data.source": "web"}), ConfigError, r"data.source: 'web' is not one of"),
    ("settings of an unknown dataset", data_setting("mnist", "n_train", 5), ConfigError, r"data.settings has unknown dataset\(s\) \['mnist'\]"),
    ("bad modality", data_setting("polymnist", "modality", "m9"), ConfigError, r"data.settings.polymnist: data.modality='m9' is not one of"),
    ("no training samples", data_setting("polymnist", "n_train", 0), ConfigError, r"data.settings.polymnist: .*n_train=0"),
    ("no test samples", data_setting("polymnist", "n_test", 0), ConfigError, r"data.settings.polymnist: .*n_test=0"),
    ("shapes3d subset 0", data_setting("shapes3d", "subset", 0.0), ConfigError, r"data.subset=0.0: expected a fraction in \(0, 1\]"),
    ("shapes3d subset 1.5", data_setting("shapes3d", "subset", 1.5), ConfigError, r"data.subset=1.5: expected a fraction in \(0, 1\]"),
    ("unknown resize filter", data_setting("celebahq64", "resize", "cubic"), ConfigError, r"data.resize \(resize_library='pil'\)='cubic' is not one of"),
    ("no antialias with PIL", data_setting("celebahq64", "antialias", False), ConfigError, r"data.antialias=False needs resize_library='torch'"),
    ("misspelt data key", data_setting("polymnist", "nrain", 5), ConfigError, r"data: unknown key\(s\) \['nrain'\]"),
    ("real data without a path", lambda: run_config(**{"data.source": "real"}), ConfigError, r"data.path is required when data.source='real'"),
    ("negative train points", data_setting("shapenet", "train_points", -1), ConfigError, r"data.train_points=-1: expected a number >= 0"),
    ("unknown data format", data_setting("polymnist", "format", "zip"), ConfigError, r"data.format \(polymnist\)='zip' is not one of"),
    ("settings of an unknown model", lambda: run_config(**{"model_settings.vae": {"preset": "tiny"}}), ConfigError, r"model_settings has unknown model\(s\) \['vae'\]"),
    ("unknown preset", lambda: run_config(**{"model_settings.vamoh": {"preset": "huge"}}), ConfigError, r"model_settings.vamoh.preset='huge': vamoh has no preset 'huge'"),
    ("misspelt model key", vamoh_setting("kk", 3), ConfigError, r"model_settings.vamoh: unknown key\(s\) \['kk'\]; allowed keys are"),
    ("K zero", vamoh_setting("K", 0), ConfigError, r"vamoh.K=0: expected a positive integer"),
    ("dim_z text", vamoh_setting("dim_z", "big"), ConfigError, r"model_settings.vamoh.dim_z='big': expected a value of type int"),
    ("negative lr", vamoh_setting("lr", -1.0), ConfigError, r"vamoh.lr=-1.0: expected a finite number > 0"),
    ("unknown centroid method", vamoh_setting("centroid_method", "kmeans"), ConfigError, r"vamoh.centroid_method='kmeans' is not one of"),
    ("unknown flow activation", vamoh_setting("flow_activation", "relu"), ConfigError, r"vamoh.flow_activation='relu' is not one of \['leaky_relu', 'tanh'\]"),
    ("dropout alpha 1.5", vamoh_setting("point_dropout_alpha", 1.5), ConfigError, r"vamoh.point_dropout_alpha=1.5: expected a number in \[0.0, 1.0\]"),
    ("compute dtype float16", vamoh_setting("compute_dtype", "float16"), ConfigError, r"vamoh.compute_dtype='float16' is not one of"),
    ("micro-batch 0", vamoh_setting("microbatch_size", 0), ConfigError, r"vamoh.microbatch_size=0: expected a positive integer or null"),
    ("zero neighbours", vamoh_setting("neighbours", [0, 8]), ConfigError, r"vamoh.neighbours=\[0, 8\]: expected a list of positive integers"),
    ("negative flow layers", vamoh_setting("flow_layers", -1), ConfigError, r"vamoh.flow_layers, warmup_epochs .* must be >= 0"),
    ("GASP R1 weight -1", with_model("gasp", "r1_weight", -1.0), ConfigError, r"gasp.r1_weight=-1.0: expected a number in"),
    ("GASP beta 1.5", with_model("gasp", "betas", [1.5, 0.9]), ConfigError, r"gasp.betas\[0\]=1.5: expected a number in"),
    ("Functa depth 1", with_model("functa", "depth", 1), ConfigError, r"functa.depth=1: expected an integer >= 2"),
    ("Functa latent 1", with_model("functa", "latent_dim", 1), ConfigError, r"functa.latent_dim=1: expected >= 2"),
    ("Functa unknown flow", with_model("functa", "flow", "glow"), ConfigError, r"functa.flow='glow' is not one of"),
    ("Functa inner rates reversed", with_model("functa", "inner_lr_init", [0.5, 0.1]), ConfigError, r"functa.inner_lr_init=\(0.5, 0.1\): expected \(low, high\)"),
    ("misspelt per-dataset key", lambda: run_config(**{"model_settings.vamoh": {"preset": "tiny", "per_dataset": {"polymnist": {"kk": 1}}}}),
     ConfigError, r"model_settings.vamoh: unknown key\(s\) \['kk'\]"),
    # issue 19: one rule for every per-dataset section: a misspelt dataset is refused, not ignored
    *[(f"misspelt dataset in {where}", (lambda where=where, value=value, model=model: run_config(**{f"model_settings.{model}": {"preset": "tiny", where: {"polymnst": value}}})),
       ConfigError, rf"model_settings.{model}.{where} has unknown dataset\(s\) \['polymnst'\]; known: \['celebahq64', 'era5'")
      for where, value in (("per_dataset", {"K": 2}), ("per_dataset_preset", "tiny")) for model in ("vamoh", "gasp")],
    *[(f"K {k}", vamoh_setting("K", k), ConfigError,
       rf"model_settings.vamoh \(entry 'vamoh' on polymnist\): {n} parameters, about {gib} GiB to train .* more than the 64 GiB")
      for k, n, gib in ((10_000_000, "453,010,009,045", "6,750"), (200_000, r"9,060,\d{3},\d{3}", "135"))],
    ("zero epochs", lambda: run_config(**{"train.epochs": 0}), ConfigError, r"train.epochs=0: expected a positive integer or null"),
    ("negative max steps", lambda: run_config(**{"train.max_steps": -5}), ConfigError, r"train.max_steps=-5: expected a positive integer or null"),
    ("batch larger than the data", lambda: run_config(**{"train.batch_size": 100}), ConfigError,
     r"train.batch_size=100 is larger than the 80 training samples of polymnist \(data.settings.polymnist.n_train\)"),
    ("checkpoint every 0", lambda: run_config(**{"train.checkpoint_every": 0}), ConfigError, r"train.checkpoint_every and train.log_every must be positive"),
    ("train lr key", lambda: run_config(**{"train.lr": 0.1}), ConfigError, r"'lr' was unexpected"),
    ("one generated set", eval_setting("num_sets", 1), ConfigError, r"eval.num_sets=1: expected >= 2"),
    ("no generated samples", eval_setting("num_samples", 0), ConfigError, r"eval.num_samples=0: expected a finite number > 0"),
    ("fewer samples than k", eval_setting("num_samples", 3), ConfigError, r"eval.num_samples=3: expected more than eval.prc_neighborhood=3"),
    ("unknown extractor", eval_setting("feature_extractor", "clip"), ConfigError, r"eval.feature_extractor='clip' is not one of"),
    ("unknown timing models", eval_setting("timing_models", "random"), ConfigError, r"eval.timing_models='random' is not one of \['trained', 'paper'\]"),
    ("negative max_real", eval_setting("max_real", -1), ConfigError, r"eval.max_real=-1: expected >= 0"),
    ("timing batch 0", eval_setting("timing_batch_sizes", [0]), ConfigError, r"eval.timing_batch_sizes=\(0,\): expected positive sizes"),
    ("extra steps 0", eval_setting("extra_inference_steps", [0]), ConfigError, r"eval.extra_inference_steps=\(0,\): expected positive integers"),
    ("misspelt eval key", eval_setting("num_sample", 10), ConfigError, r"eval: unknown key\(s\) \['num_sample'\]"),
    ("missing Inception weights", lambda: run_config(eval={**TINY["eval"], "feature_extractor": "inception-v3-compat", "inception_weights": "/nowhere/w.pth"}),
     FileNotFoundError, r"Inception-v3 FID weights not found: /nowhere/w.pth.*config key eval.inception_weights"),
    ("missing suite extractor weights", eval_setting("suite_extractor_weights", "/nowhere/ae.pt"), FileNotFoundError,
     r"suite feature-extractor weights not found: /nowhere/ae.pt \(config key eval.suite_extractor_weights\)"),
    ("memorisation quantile 0.7", eval_setting("memorisation_quantile", 0.7), ConfigError, r"eval.memorisation_quantile=0.7: expected a number in \(0, 0.5\)"),
    ("zero cloud points", eval_setting("pointcloud_points", 0), ConfigError, r"eval.pointcloud_points=0: expected a finite number > 0"),
    ("mlflow file store ./mlruns", lambda: run_config(**{"tracking.uri": "./mlruns"}), ConfigError, r"tracking.uri: tracking_uri='./mlruns': MLflow 3 refuses a plain file store"),
    ("mlflow file: URI", lambda: run_config(**{"tracking.uri": "file:///tmp/mlruns"}), ConfigError, r"tracking.uri: .*MLflow 3 refuses a plain file store"),
    ("in-memory sqlite", lambda: run_config(**{"tracking.uri": "sqlite:///:memory:"}), ConfigError, r"tracking.uri: .*in-memory SQLite store cannot be shared"),
    ("zero figure examples", lambda: run_config(**{"figures.num_examples": 0}), ConfigError, r"figures.num_examples: 0 is less than the minimum of 1"),
    ("negative gpus", lambda: run_config(**{"resources.train": {"gpu": -1}}), ConfigError, r"resources.train.gpu: -1 is less than the minimum of 0"),
    ("unknown resource", lambda: run_config(**{"resources.train": {"cpus": 4}}), ConfigError, r"'cpus' was unexpected"),
    ("budget for an unknown entry", lambda: run_config(**{"train.max_steps_by_entry": {"polymnist": {"vae": 5}}}), ConfigError,
     r"train.max_steps_by_entry.polymnist names \['vae'\], not model entries of this run"),
    ("budget for a dataset not run", lambda: run_config(**{"train.max_steps_by_entry": {"celebahq64": {"vamoh": 5}}}), ConfigError,
     r"train.max_steps_by_entry names the dataset 'celebahq64', which this run does not have"),
    ("zero-step budget", lambda: run_config(**{"train.max_steps_by_entry": {"polymnist": {"vamoh": 0}}}), ConfigError,
     r"train.max_steps_by_entry.polymnist.vamoh: 0 is less than the minimum of 1"),
    ("timing a dataset not run", eval_setting("timing_datasets", ["celebahq64"]), ConfigError,
     r"eval.timing_datasets names \['celebahq64'\], which this run does not have"),
    ("negative timing budget", eval_setting("timing_budget_s", -1.0), ConfigError, r"eval.timing_budget_s=-1.0: expected seconds >= 0"),
    ("per-dataset preset unknown", lambda: run_config(**{"model_settings.vamoh": {"preset": "tiny", "per_dataset_preset": {"polymnist": "huge"}}}),
     ConfigError, r"model_settings.vamoh.preset='huge': vamoh has no preset 'huge'"),
    ("import without an importer", lambda: run_config(imported={"polymnist": {"vamoh": {"path": str(ROOT / "config" / "tiny.yaml")}}}),
     ConfigError, r"imported: vamoh has no importer for published checkpoints"),
    ("import of a missing file", lambda: run_config(imported={"polymnist": {"gasp": {"path": "/nowhere/gasp.pt"}}}), FileNotFoundError,
     r"published checkpoint file not found: /nowhere/gasp.pt \(config key imported.polymnist.gasp.path\)"),
    ("import without a path", lambda: run_config(imported={"polymnist": {"gasp": {"modulations": "x"}}}), ConfigError,
     r"imported.polymnist.gasp: 'path' is a required property"),
    # issue 19: what check-config missed
    ("real data path missing", lambda: run_config(**{"data.settings": {**copy.deepcopy(TINY["data"]["settings"]),
                                                                       "polymnist": {"source": "real", "path": "/nowhere/PolyMNIST"}}}),
     FileNotFoundError, r"polymnist data not found: /nowhere/PolyMNIST \(config key data.settings.polymnist.path\)"),
    ("cache_dir is a file", lambda: run_config(**{"data.cache_dir": str(ROOT / "config" / "tiny.yaml")}), ConfigError,
     r"data.cache_dir='.*tiny.yaml' is a file; expected a directory"),
    *[(f"path with a stand-in ({d})", data_setting(d, "path", f"/data/{d}"), ConfigError,
       rf"data.settings.{d}.path='/data/{d}' is set but the data source is 'standin', so the file would be ignored")
      for d in ("era5", "celebahq64")],
    ("test split smaller than k", data_setting("polymnist", "n_test", 3), ConfigError,
     r"data.settings.polymnist.n_test=3: precision/recall with k=3 \(eval.prc_neighborhood\) needs more than 3 test images"),
    # issue 19, second sweep: accepted by check-config, then a traceback in the first job (or the allocator)
    *[(f"eval.device {dev!r}", eval_setting("device", dev), ConfigError, rf"eval.device={dev!r}: expected 'auto', 'cpu' or 'cuda\[:N\]'")
      for dev in ("tpu", "cuda:x", "")],
    *[(f"tracking.uri {uri}", (lambda uri=uri: run_config(**{"tracking.uri": uri})), ConfigError,
       rf"tracking.uri: tracking_uri='{re.escape(uri)}': unknown scheme '{scheme}'; expected one of \['sqlite', 'http'")
      for uri, scheme in (("foo://bar", "foo"), ("s3://bucket/mlflow", "s3"), ("sqlit:///x.db", "sqlit"))],
    ("cache_dir under a file", lambda: run_config(**{"data.cache_dir": str(ROOT / "config" / "tiny.yaml" / "cache")}), ConfigError,
     r"data.cache_dir='.*tiny.yaml/cache': .*tiny.yaml is a file, so the folder cannot be created"),
    *[(f"eval.num_samples {n:,}", eval_setting("num_samples", n), ConfigError,
       rf"eval.num_samples={n:,}: one generated set of polymnist is {n:,} x 784 points x 3 feature\(s\) = {gib} GiB of float32, more than the 64 GiB")
      for n, gib in ((10**12, "8,761,882.8"), (10**7, "87.6"))],
]


@pytest.mark.parametrize("name, action, error, message", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_run_config(name, action, error, message):
    if name == "device gpu":
        pytest.importorskip("torch")
    with pytest.raises(error, match=message):
        action()


def test_config_key_malloc_sets_the_jobs_allocator_unless_the_user_did():
    from vamoh.pipeline.runconfig import TUNED_GLIBC, RunConfig

    assert run_config(malloc="tuned").job_environment({}) == {"GLIBC_TUNABLES": TUNED_GLIBC}
    assert run_config(malloc="tuned").job_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}) == {}  # the user's own
    assert run_config(malloc="system").job_environment({}) == {}
    cfg = copy.deepcopy(TINY)
    del cfg["malloc"]
    assert RunConfig.from_dict(cfg).job_environment({}) == {}  # the schema's default: the system's allocator


def test_cuda_asked_where_there_is_none():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match=r"device='cuda' but no CUDA device is available; use 'auto' or 'cpu'"):
        run_config(device="cuda")


# ------------------------------------------------------------------------------------------------ the vamoh command


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-step tiny VAMoH on the PolyMNIST stand-in (seed 0, batch 8), and the cache it was trained from."""
    from vamoh.cli import main

    root = tmp_path_factory.mktemp("cli")
    ck = root / "poly.pt"
    assert main(["train", "--dataset", "polymnist", "--preset", "tiny", "--out", str(ck), "--cache-dir", str(root / "cache"),
                 "--batch-size", "8", "--max-steps", "2"]) == 0
    gasp = root / "gasp.pt"
    assert main(["train", "--dataset", "polymnist", "--model", "gasp", "--preset", "tiny", "--out", str(gasp), "--cache-dir",
                 str(root / "cache"), "--batch-size", "8", "--max-steps", "1"]) == 0
    return {"root": root, "ck": ck, "gasp": gasp, "cache": root / "cache"}


def cli_cases(t):
    root, ck, cache = t["root"], str(t["ck"]), str(t["cache"])
    file_parent = root / "a_file"
    file_parent.write_text("x")
    train = ["train", "--dataset", "polymnist", "--preset", "tiny", "--cache-dir", cache, "--batch-size", "8"]
    fresh = ["train", "--dataset", "polymnist", "--preset", "tiny", "--cache-dir", str(root / "never")]
    return [
        ("--out is a directory", fresh + ["--out", str(root)], r"--out .* is a directory; name a file in it"),
        ("--out under a file", fresh + ["--out", str(file_parent / "x.pt")], r"a_file is a file, not a directory"),
        ("--epochs 0", fresh + ["--out", str(root / "e.pt"), "--epochs", "0"], r"--epochs 0: expected an integer >= 1"),
        ("--max-steps -1", fresh + ["--out", str(root / "e.pt"), "--max-steps", "-1"], r"--max-steps -1: expected an integer >= 1"),
        ("--batch-size 0", fresh + ["--out", str(root / "e.pt"), "--batch-size", "0"], r"--batch-size 0: expected an integer >= 1"),
        ("--seed -1", fresh + ["--out", str(root / "e.pt"), "--seed", "-1"], r"--seed -1: expected an integer >= 0"),
        ("--seed 2**32", fresh + ["--out", str(root / "e.pt"), "--seed", str(2**32)], r"--seed=4294967296: expected an integer in \[0, 2\*\*32 - 1"),
        ("sample --seed -1", ["sample", "--checkpoint", ck, "--seed", "-1", "--out", str(root / "s.npz")], r"--seed=-1: expected an integer in \[0, 2\*\*32 - 1"),
        ("sample --seed 2**33", ["sample", "--checkpoint", ck, "--seed", str(2**33), "--out", str(root / "s.npz")], r"--seed=8589934592: expected an integer in"),
        ("unknown dataset", ["train", "--dataset", "mnist", "--out", str(root / "e.pt")], r"--dataset 'mnist' is not one of"),
        ("unknown preset", fresh + ["--out", str(root / "e.pt"), "--preset", "huge"], r"--preset 'huge': vamoh has no such preset"),
        ("bad --set JSON", fresh + ["--out", str(root / "e.pt"), "--set", "{K: 4}"], r"--set '\{K: 4\}' is not valid JSON"),
        ("--set not an object", fresh + ["--out", str(root / "e.pt"), "--set", "[1]"], r"--set '\[1\]': expected a JSON object"),
        ("--set unknown key", fresh + ["--out", str(root / "e.pt"), "--set", '{"kk": 1}'], r"--set: unknown key\(s\) \['kk'\]"),
        ("batch larger than the data", train + ["--out", str(root / "b.pt"), "--batch-size", "5000"],
         r"batch size 5000 is larger than the 4000 training samples"),
        ("resume with another seed", train + ["--out", ck, "--max-steps", "4", "--seed", "1"], r"belongs to another run.*seed: checkpoint 0, now 1"),
        ("resume with another batch size", train[:-1] + ["16", "--out", ck, "--max-steps", "4"], r"batch_size: checkpoint 8, now 16"),
        ("resume on another dataset", ["train", "--dataset", "celebahq64", "--preset", "tiny", "--cache-dir", cache, "--batch-size", "8",
                                       "--out", ck, "--max-steps", "4"], r"belongs to another run.*dataset: checkpoint 'polymnist', now 'celebahq64'"),
        ("resume with a smaller budget", train + ["--out", ck, "--max-steps", "1"], r"budget: the checkpoint is at step 2, beyond this run's 1 steps"),
        ("resume with another model config", train + ["--out", ck, "--max-steps", "4", "--set", '{"lr": 0.5}'], r"model config lr: checkpoint 0.003, now 0.5"),
        ("sample --n 0", ["sample", "--checkpoint", ck, "--n", "0", "--out", str(root / "s.npz")], r"--n 0: expected an integer >= 1"),
        ("sample --upsample 0", ["sample", "--checkpoint", ck, "--upsample", "0", "--out", str(root / "s.npz")], r"--upsample 0: expected an integer >= 1"),
        ("sample without a model", ["sample", "--out", str(root / "s.npz")], r"exactly one of --checkpoint PATH or --run-id ID"),
        ("sample --run-id without a store", ["sample", "--run-id", "abc", "--out", str(root / "s.npz")], r"--run-id needs --tracking-uri"),
        ("sample from a directory", ["sample", "--checkpoint", str(root), "--out", str(root / "s.npz")], r"is a directory, not a checkpoint file"),
        ("sample from a missing file", ["sample", "--checkpoint", str(root / "none.pt"), "--out", str(root / "s.npz")], r"checkpoint not found"),
        ("reconstruct with GASP", ["reconstruct", "--checkpoint", str(t["gasp"]), "--input", str(root / "img.png"), "--out", str(root / "r.png")],
         r"gasp cannot reconstruct: it has no encoder and no inner loop"),
        ("reconstruct a missing input", ["reconstruct", "--checkpoint", ck, "--input", str(root / "none.png"), "--out", str(root / "r.png")],
         r"--input not found: .*none.png"),
        ("reconstruct with a bad mask", ["reconstruct", "--checkpoint", ck, "--input", str(root / "img.png"), "--mask", "middle",
                                         "--out", str(root / "r.png")], r"--mask 'middle': expected one of \['none', 'centre', 'half', 'outpaint'\]"),
        ("reconstruct from a text file", ["reconstruct", "--checkpoint", ck, "--input", str(file_parent), "--out", str(root / "rt.png")],
         r"--input: cannot decode image .*a_file"),
        # issue 19: the output-path rule (by suffix; nothing written elsewhere than asked)
        *[(f"sample --out {name}", ["sample", "--checkpoint", ck, "--out", str(root / name)],
           rf"--out .*{re.escape(name)}: unknown suffix .*expected one of \['\.npz'\] \(\.npz: the samples array\)") for name in ("x.txt", "x", "x.png")],
        *[(f"reconstruct --out {name}", ["reconstruct", "--checkpoint", ck, "--input", str(root / "img.png"), "--out", str(root / name)],
           rf"--out .*{re.escape(name)}: unknown suffix .*expected one of \['\.png', '\.npz'\]") for name in ("r.jpg", "r.npy", "r")],
        ("recompute a missing file", ["recompute", str(root / "none" / "metrics.json")], r"metrics file not found"),
        # issue 19: a directory where a file is expected, devices, sizes, a path that would be ignored
        ("recompute a directory", ["recompute", str(root)], r"metrics file .* is a directory; expected a file"),
        ("check-config of a directory", ["check-config", str(root)], r"config file .* is a directory; expected a file"),
        ("import a directory", ["import", "gasp", str(root), "--dataset", "polymnist", "--out", str(root / "i.pt")],
         r"published gasp checkpoint .* is a directory; expected a file"),
        ("import modulations of a directory", ["import", "functa", ck, "--modulations", str(root), "--dataset", "polymnist", "--out", str(root / "i.pt")],
         r"--modulations .* is a directory; expected a file"),
        ("reconstruct a directory", ["reconstruct", "--checkpoint", ck, "--input", str(root), "--out", str(root / "r.png")],
         r"--input .* is a directory; expected a file"),
        ("reconstruct with a directory mask", ["reconstruct", "--checkpoint", ck, "--input", str(root / "img.png"), "--mask", str(root),
                                               "--out", str(root / "r.png")], r"--mask .* is a directory; expected a file"),
        *[(f"{cmd} --device {dev}", [cmd, "--checkpoint", ck, "--device", dev, "--out", str(root / ("s.npz" if cmd == "sample" else "r.png"))]
           + (["--input", str(root / "img.png")] if cmd == "reconstruct" else []),
           rf"--device={dev!r}: expected 'auto', 'cpu' or 'cuda\[:N\]'") for cmd in ("sample", "reconstruct") for dev in ("gpu", "cuda:x", "")],
        ("sample --n 10000000", ["sample", "--checkpoint", ck, "--n", "10000000", "--out", str(root / "s.npz")],
         r"--n 10000000 --upsample 1: 10,000,000 x 784 points x 3 feature\(s\) = 87.6 GiB of float32 output .* more than the 2 GiB"),
        ("sample --upsample 1000", ["sample", "--checkpoint", ck, "--n", "16", "--upsample", "1000", "--out", str(root / "s.npz")],
         r"--n 16 --upsample 1000: 16 x 729,054,001 points"),
        ("reconstruct --upsample 1000", ["reconstruct", "--checkpoint", ck, "--input", str(root / "img.png"), "--upsample", "1000",
                                         "--out", str(root / "r.png")], r"--upsample 1000: 1 x 729,054,001 points x 3 feature\(s\) = 8.1 GiB"),
        ("train --cache-dir a file", ["train", "--dataset", "polymnist", "--cache-dir", str(file_parent), "--out", str(root / "e.pt")],
         r"--cache-dir .*a_file is a file; expected a directory"),
        ("train --path with the stand-in", fresh + ["--out", str(root / "e.pt"), "--path", "/data/poly"],
         r"--path /data/poly is given but --source is 'standin', so it would be ignored"),
        ("check-config of a missing file", ["check-config", str(root / "none.yaml")], r"config file not found"),
        ("import for an unknown dataset", ["import", "gasp", str(root / "g.pt"), "--dataset", "mnist", "--out", str(root / "i.pt")],
         r"--dataset 'mnist' is not one of"),
        *second_sweep_cases(t),
    ]


def _variant(root: Path, name: str, ck: str, **changes) -> str:
    """The trained checkpoint with ``changes`` to its payload (``model_state`` may be a function of the state)."""
    payload = torch.load(ck, weights_only=True)
    if callable(changes.get("model_state")):
        changes["model_state"] = changes["model_state"](dict(payload["model_state"]))
    path = root / "variants" / name
    path.parent.mkdir(exist_ok=True)
    torch.save({**payload, **changes}, path)  # no sidecar: a file from elsewhere (it loads with a CheckpointWarning)
    return str(path)


def second_sweep_cases(t):
    """issue 19, second outside sweep: each of these was a traceback, a message of several lines, a silently cast or
    NaN model, a store created where none was, or an error only after the work was done."""
    root, ck = t["root"], str(t["ck"])
    out = str(root / "s.npz")
    sample = lambda path: ["sample", "--checkpoint", path, "--out", out]  # noqa: E731
    floats = lambda f: (lambda st: {k: f(v) if v.is_floating_point() else v for k, v in st.items()})  # noqa: E731
    text = root / "store.txt"
    text.write_text("not a database")
    wide = root / "wide.png"
    from PIL import Image

    Image.fromarray(np.zeros((14, 28, 3), np.uint8)).save(wide)
    npz = next(Path(t["cache"]).glob("*.npz"))
    return [
        # checkpoints of the wrong form: the payload's types, dtypes, values and version
        ("checkpoint config a list", sample(_variant(root, "cfg.pt", ck, model_config=[1, 2])), r"cfg\.pt: model_config is a list, expected a dict"),
        ("checkpoint data_info a str", sample(_variant(root, "info.pt", ck, data_info="polymnist")), r"info\.pt: data_info is a str, expected a dict"),
        ("checkpoint data_info foreign keys", sample(_variant(root, "info2.pt", ck, data_info={"x": 1})),
         r"info2\.pt: data_info has keys \['x'\], expected \['coord_dim', 'feature_dim', 'grid_shape', 'likelihood'\]"),
        ("checkpoint state a list", sample(_variant(root, "st.pt", ck, model_state=[1, 2])), r"st\.pt: model_state is a list, expected a state dict"),
        ("checkpoint step a str", sample(_variant(root, "step.pt", ck, step="x")), r"step\.pt: step is a str, expected an integer"),
        ("checkpoint negative step", sample(_variant(root, "step2.pt", ck, step=-3)), r"step2\.pt: step -3, expected an integer >= 0"),
        ("checkpoint format 99", sample(_variant(root, "fmt.pt", ck, format_version=99)), r"fmt\.pt: format_version 99, expected 1\.\.2"),
        ("checkpoint float16 weights", sample(_variant(root, "f16.pt", ck, model_state=floats(lambda v: v.half()))),
         r"f16\.pt: model_state\['rff\.B'\] is torch\.float16, expected torch\.float32 \(\d+ tensor\(s\) of another dtype; the model is not cast silently\)"),
        ("checkpoint float64 weights", sample(_variant(root, "f64.pt", ck, model_state=floats(lambda v: v.double()))),
         r"f64\.pt: model_state\['rff\.B'\] is torch\.float64, expected torch\.float32"),
        ("checkpoint integer weights", sample(_variant(root, "int.pt", ck, model_state=floats(lambda v: v.long()))),
         r"int\.pt: model_state\['rff\.B'\] is torch\.int64, expected torch\.float32"),
        ("checkpoint NaN weights", sample(_variant(root, "nan.pt", ck, model_state=floats(lambda v: torch.full_like(v, float("nan"))))),
         r"nan\.pt: model_state\['rff\.B'\] holds 64 NaN/inf value\(s\) of 64, expected finite weights"),
        ("checkpoint inf weight", sample(_variant(root, "inf.pt", ck, model_state=lambda st: {**st, "rff.B": st["rff.B"].index_fill(0, torch.tensor([3]), float("inf"))})),
         r"inf\.pt: model_state\['rff\.B'\] holds 2 NaN/inf value\(s\) of 64"),
        ("checkpoint missing tensor (torch's message, one line)", sample(_variant(root, "miss.pt", ck, model_state=lambda st: {k: v for k, v in st.items() if k != "rff.B"})),
         r"miss\.pt does not match its model config: Error\(s\) in loading state_dict for VAMoH: Missing key\(s\) in state_dict: \"rff\.B\""),
        ("checkpoint a numpy .npz", sample(str(npz)), r"\.npz is a numpy \.npz archive \(arrays, e\.g\. a data cache or scores file\), not a checkpoint"),
        # outputs that cannot be written: refused before the work (as root os.access says yes to /proc)
        ("sample --out in /proc", ["sample", "--checkpoint", ck, "--out", "/proc/x.npz"], r"--out /proc/x\.npz: (cannot write in /proc|/proc is not writable)"),
        ("train --out in /proc", ["train", "--dataset", "polymnist", "--preset", "tiny", "--cache-dir", str(root / "never"), "--out", "/proc/x.pt"],
         r"--out /proc/x\.pt: (cannot write in /proc|/proc is not writable)"),
        ("train --cache-dir in /proc", ["train", "--dataset", "polymnist", "--preset", "tiny", "--cache-dir", "/proc/cache", "--out", str(root / "e.pt")],
         r"--cache-dir /proc/cache: (cannot write in /proc|/proc is not writable)"),
        # the store of --run-id: a scheme MLflow does not know, a missing database (MLflow created an empty one), not a database
        ("--tracking-uri foo://", ["sample", "--run-id", "abc", "--tracking-uri", "foo://bar", "--out", out],
         r"tracking_uri='foo://bar': unknown scheme 'foo'; expected one of \['sqlite'"),
        ("--tracking-uri of a missing store", ["sample", "--run-id", "abc", "--tracking-uri", f"sqlite:///{root / 'gone' / 'mlflow.db'}", "--out", out],
         r"--tracking-uri sqlite:///.*gone/mlflow\.db: the SQLite store .*gone/mlflow\.db does not exist; expected the mlflow\.db a run logged to"),
        ("--tracking-uri of a text file", ["sample", "--run-id", "abc", "--tracking-uri", f"sqlite:///{text}", "--out", out],
         r"store\.txt is not an SQLite database \(it starts with b'not a da'\)"),
        # an input image of another aspect ratio than the model's grid was stretched
        ("reconstruct a 28x14 image", ["reconstruct", "--checkpoint", ck, "--input", str(wide), "--out", str(root / "r.png")],
         r"--input .*wide\.png: an image of 28x14 pixels, but the model's grid is 28x28; resizing would stretch it"),
    ]


def test_the_vamoh_command_refuses_bad_arguments_with_one_line(trained, capsys):
    from PIL import Image

    from vamoh.cli import main

    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(trained["root"] / "img.png")
    cases = cli_cases(trained)
    assert len(cases) >= 30
    for name, argv, message in cases:
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, f"{name}: exit {code}, stderr {err!r}"
        assert re.search(message, err), f"{name}: {err!r} does not match {message!r}"
        assert err.count("\n") == 1 and "Traceback" not in err, f"{name}: {err!r}"
    assert not (trained["root"] / "never").exists()  # bad arguments were refused before the data was prepared
    assert not (trained["root"] / "gone").exists()  # reading a run from a missing store created no store


def test_check_config_names_the_yaml_line(tmp_path, capsys):
    from vamoh.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("run: x\ndatasets: [polymnist\n  models: x\n")
    assert main(["check-config", str(bad)]) == 2
    assert re.search(rf"{re.escape(str(bad))}, line 3, column \d+: not valid YAML", capsys.readouterr().err)


# ------------------------------------------------------------------------------------------------ checkpoints


class _Exploit:
    """A pickle that runs a shell command when loaded (what a crafted checkpoint can do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def checkpoint_cases(tmp_path: Path):
    from vamoh.checkpoint import save_checkpoint

    crafted = tmp_path / "crafted.pt"
    marker = tmp_path / "pwned"
    torch.save({"format_version": 2, "model_name": _Exploit(marker)}, crafted)
    truncated = tmp_path / "truncated.pt"
    save_checkpoint(truncated, {"model_name": "vamoh", "model_config": {}, "data_info": {}, "model_state": {"w": torch.zeros(1000)}, "step": 0})
    truncated.write_bytes(truncated.read_bytes()[:300])
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    incomplete = tmp_path / "incomplete.pt"
    save_checkpoint(incomplete, {"model_name": "vamoh", "model_config": {}, "data_info": {}, "step": 0})
    text = tmp_path / "text.pt"
    text.write_text("hello")
    return marker, [
        ("missing", tmp_path / "none.pt", FileNotFoundError, r"checkpoint not found"),
        ("a directory", tmp_path, CheckpointError, r"is a directory, not a checkpoint file"),
        ("crafted pickle", crafted, CheckpointError, r"holds objects other than tensors and plain data \(it names posix.system\), so it was refused unread"),
        ("truncated", truncated, CheckpointError, r"is truncated or corrupt"),
        ("another program's file", foreign, CheckpointError, r"is not a checkpoint of this suite \(no format_version\)"),
        ("lacks the weights", incomplete, CheckpointError, r"lacks the key 'model_state'"),
        ("a text file", text, CheckpointError, r"is truncated or corrupt"),
    ]


def test_bad_checkpoints_are_refused_unread(tmp_path):
    from vamoh.checkpoint import load_checkpoint

    marker, cases = checkpoint_cases(tmp_path)
    for name, path, error, message in cases:
        with pytest.raises(error, match=message):
            load_checkpoint(path)
    assert not marker.exists(), "the crafted checkpoint ran its command"
    # the same file through the trainer's resume and the CLI
    from vamoh.cli import main

    assert main(["sample", "--checkpoint", str(tmp_path / "crafted.pt"), "--out", str(tmp_path / "s.npz")]) == 2
    assert not marker.exists()


def test_checkpoint_of_another_architecture_is_named(trained, tmp_path):
    from vamoh.train import load_model

    payload = torch.load(trained["ck"], weights_only=True)
    payload["model_config"]["K"] = 5  # the weights are for K = 3
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match=r"mismatch.pt does not match its model config"):
        load_model(tmp_path / "mismatch.pt")


# ------------------------------------------------------------------------------------------------ data files


def test_data_file_errors_show_where_values_differ(tmp_path):
    from vamoh.data import load_dataset

    for split in ("train", "test"):
        (tmp_path / split).mkdir()
        np.savez(tmp_path / split / "0.npz", latitude=np.linspace(90, -90, 46), longitude=np.linspace(-180, 176, 90),
                 temperature=np.full((46, 90), 280.0, np.float32))
    with pytest.raises(DataError) as err:
        load_dataset({"name": "era5", "source": "real", "path": str(tmp_path)}, tmp_path / "cache")
    text = str(err.value)
    assert "longitude" in text and "-180" in text and "0" in text  # the differing values, not two identical roundings
    assert not list((tmp_path / "cache").glob("*.lock"))  # a failed preparation leaves no lock file


def test_count_of_bad_inputs_in_this_sweep(trained, tmp_path):
    """At least 90 bad inputs are covered here (the issue's sweep size), each with its own message."""
    n = len(CONFIG_CASES) + 1 + len(cli_cases(trained)) + 1 + len(checkpoint_cases(tmp_path)[1]) + 1 + 1
    assert n >= 90, n


def test_a_diverging_training_is_one_line_from_the_command(tmp_path, capsys, monkeypatch):
    """A NaN loss stops training with one line naming the step and the checkpoint kept (it printed a traceback)."""
    from vamoh.cli import main
    from vamoh.model import VAMoH

    monkeypatch.setattr(VAMoH, "training_step", lambda self, batch, opts, step, epoch=0: {"loss": float("nan")})
    code = main(["train", "--dataset", "polymnist", "--preset", "tiny", "--out", str(tmp_path / "d.pt"), "--cache-dir",
                 str(tmp_path / "cache"), "--batch-size", "8", "--max-steps", "3"])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # above it only the progress bar
    assert code == 2 and last.startswith("vamoh train: error: vamoh: non-finite {'loss': nan} at step 0 (epoch 0); stopped without saving")
    assert last.endswith("no checkpoint was written yet") and "Traceback" not in err


# ------------------------------------------------------------------------------------------------ issue 19: nothing silently wrong


def test_the_largest_seed_is_accepted():
    from vamoh.pipeline.runconfig import RunConfig

    assert RunConfig.from_dict({**copy.deepcopy(TINY), "seeds": [0, 2**32 - 1]}).seeds == [0, 4294967295]


@pytest.mark.parametrize("name", ["demo", "paper-2", "a.b_c", "R1", "x" * 100])
def test_safe_run_names_are_accepted(name):
    from vamoh.pipeline.runconfig import RunConfig

    rc = RunConfig.from_dict({**copy.deepcopy(TINY), "run": name})
    assert rc.results == Path("results") / name and rc.results.parts == ("results", name)


def test_check_config_refuses_a_run_name_that_escapes_the_folder(tmp_path, capsys):
    """`run: ..` passed check-config and the DAG then wrote results into the working directory's root."""
    from vamoh.cli import main

    for bad in ("..", ".", "../../etc"):
        cfg = tmp_path / "c.yaml"
        cfg.write_text(yaml.safe_dump({**copy.deepcopy(TINY), "run": bad}))
        assert main(["check-config", str(cfg)]) == 2
        err = capsys.readouterr().err
        assert f"config key run={bad!r}: expected a name" in err and err.count("\n") == 1


def test_a_run_config_built_without_the_schema_still_refuses_unsafe_names():
    from vamoh.pipeline.runconfig import RunConfig

    with pytest.raises(ConfigError, match=r"run='\.\.': expected a name"):
        RunConfig({**copy.deepcopy(TINY), "run": ".."})
    with pytest.raises(ConfigError, match=r"ablations key='\.\.': expected a name"):
        RunConfig({**copy.deepcopy(TINY), "ablations": {"..": {"model": "vamoh", "variants": {"a": {}, "b": {"K": 1}}, "default": "a"}}})


# ---- images are decoded by bit depth and upright, in the two loaders and `vamoh reconstruct` alike


def _pattern(h=28, w=28):
    """An asymmetric 8-bit pattern: a bright top-left quarter, mid-grey elsewhere (rotations and flips all differ)."""
    img = np.full((h, w), 100, np.uint8)
    img[: h // 2, : w // 3] = 230
    return img


def _save_16bit(path, grey16):
    from PIL import Image

    Image.fromarray(grey16.astype(np.uint16)).save(path)  # a 16-bit greyscale PNG (PIL mode I;16)


def _save_exif_rotated_jpeg(path, upright):
    """``upright`` stored rotated 90 degrees counter-clockwise, with EXIF orientation 6 ("rotate 90 CW to display")."""
    from PIL import Image

    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1))).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, quality=100, exif=exif.tobytes())


def test_decode_image_by_bit_depth_and_orientation(tmp_path):
    from vamoh.data.files import decode_image, open_rgb

    grey = _pattern().astype(np.uint16) * 257  # the 8-bit pattern at 16 bits: 230 -> 59110, 100 -> 25700
    _save_16bit(tmp_path / "g16.png", grey)
    assert decode_image(tmp_path / "g16.png", "t").dtype == np.uint16
    np.testing.assert_array_equal(open_rgb(tmp_path / "g16.png", "t"), np.repeat(_pattern()[..., None], 3, -1))  # not 255 everywhere
    _save_16bit(tmp_path / "dark16.png", np.full((4, 4), 257 * 3))
    assert (open_rgb(tmp_path / "dark16.png", "t") == 3).all()
    _save_exif_rotated_jpeg(tmp_path / "r.jpg", _pattern())
    got = open_rgb(tmp_path / "r.jpg", "t")[..., 0].astype(int)
    assert got.shape == (28, 28) and np.abs(got - _pattern()).max() <= 6  # upright (JPEG rounding only)
    from PIL import Image

    Image.fromarray(np.ones((4, 4), np.float32)).save(tmp_path / "f.tif")
    Image.fromarray(np.full((4, 4), 70000, np.int32)).save(tmp_path / "i.tif")
    for bad in ("f.tif", "i.tif"):
        with pytest.raises(DataError, match=rf"t: image .*{bad} is in PIL mode '(F|I)' \(32-bit integer or float, no defined range\)"):
            decode_image(tmp_path / bad, "t")


def test_polymnist_and_celeba_loaders_read_16_bit_and_exif_images(tmp_path):
    from vamoh.data import polymnist
    from vamoh.data.celeba import load_real as celeba_load

    try:
        from tests.data_fixtures import tiny_cfg
    except ImportError:
        from data_fixtures import tiny_cfg
    expected = np.repeat(_pattern()[..., None], 3, -1)
    for split in ("train", "test"):
        folder = tmp_path / "poly" / split / "m1"
        folder.mkdir(parents=True)
        for i in range(2):
            _save_16bit(folder / f"{i}.{i}.png", _pattern().astype(np.uint16) * 257)
        _save_exif_rotated_jpeg(folder / "x.jpg", _pattern())  # not a PNG: ignored by the PNG reader
    raw = polymnist.load_real(tiny_cfg("polymnist", source="real", path=str(tmp_path / "poly"), n_train=None, n_test=None), "png")
    np.testing.assert_array_equal(raw.arrays["train"][0], expected)
    faces = tmp_path / "faces"
    faces.mkdir()
    big = np.kron(_pattern(), np.ones((4, 4), np.uint8))  # 112 x 112
    for i in range(9):
        _save_16bit(faces / f"{i:05d}.png", big.astype(np.uint16) * 257)
    _save_exif_rotated_jpeg(faces / "00009.jpg", big)
    raw = celeba_load(tiny_cfg("celebahq64", source="real", path=str(faces), n_train=None, n_test=None), "folder")
    images = np.concatenate([raw.arrays["train"], raw.arrays["test"]])
    assert images.shape[0] == 10
    # the 16-bit files: the pattern's two levels survive (230 top-left, 100 bottom-right), not white
    assert images[0, 2, 2, 0] == 230 and images[0, -3, -3, 0] == 100
    # the EXIF-rotated JPEG is used upright: its bright quarter is top-left like the others
    rotated = images[9].astype(int)
    assert rotated[2, 2, 0] > 200 and rotated[-3, -3, 0] < 130 and rotated[2, -3, 0] < 130


def test_reconstruct_reads_16_bit_and_exif_images(trained, tmp_path):
    from vamoh.infer import read_input
    from vamoh.train import load_model

    model, _ = load_model(trained["ck"])
    expected = np.repeat(_pattern()[..., None], 3, -1) / 255.0
    _save_16bit(tmp_path / "in16.png", _pattern().astype(np.uint16) * 257)
    got = read_input(tmp_path / "in16.png", model.info).reshape(28, 28, 3).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    _save_16bit(tmp_path / "in16_56.png", np.kron(_pattern(), np.ones((2, 2), np.uint8)).astype(np.uint16) * 257)  # resized
    got = read_input(tmp_path / "in16_56.png", model.info).reshape(28, 28, 3).numpy()
    assert abs(got[3, 3, 0] - 230 / 255) < 0.02 and abs(got[-3, -3, 0] - 100 / 255) < 0.02
    _save_exif_rotated_jpeg(tmp_path / "r.jpg", _pattern())
    got = read_input(tmp_path / "r.jpg", model.info).reshape(28, 28, 3).numpy()
    assert np.abs(got - expected).max() <= 6 / 255


# ---- ERA5 units and grids: one validation for the loaders and `vamoh reconstruct --input`

LAT, LON = np.linspace(90, -90, 46), np.linspace(0, 356, 90)


def _era5_file(path, temperature, latitude=LAT, longitude=LON):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, latitude=latitude, longitude=longitude, temperature=np.asarray(temperature, np.float32))
    return path


def _era5_real(root):
    from vamoh.data.registry import build

    try:
        from tests.data_fixtures import tiny_cfg
    except ImportError:
        from data_fixtures import tiny_cfg
    return build(tiny_cfg("era5", source="real", path=str(root), n_train=None, n_val=None, n_test=None))[0]


def _hot(fraction):
    """A 280 K field whose first ``fraction`` of points are at 330 K (above GASP's 320.93 K ceiling)."""
    t = np.full(46 * 90, 280.0)
    t[: int(round(fraction * t.size))] = 330.0
    return t.reshape(46, 90)


@pytest.mark.parametrize("fraction", [0.083, 0.02, 1.0])
def test_era5_npz_clipping_more_than_one_percent_is_refused(tmp_path, fraction):
    for split in ("train", "test"):
        _era5_file(tmp_path / split / "00000.npz", 280.0 * np.ones((46, 90)))
    _era5_file(tmp_path / "test" / "00001.npz", _hot(fraction))
    pct = f"{100 * round(fraction * 4140) / 4140:.2f}%"
    with pytest.raises(DataError, match=rf"ERA5 .*test/00001\.npz key 'temperature': {re.escape(pct)} of the values lie outside GASP's range "
                                        rf"\[202\.66, 320\.93\] K .*330\.00 K.*at most 1% may be clipped"):
        _era5_real(tmp_path)


def test_era5_npz_clipping_below_one_percent_warns_and_is_recorded(tmp_path):
    from vamoh.data import DataWarning

    for split in ("train", "test"):
        _era5_file(tmp_path / split / "00000.npz", _hot(0.005))
    with pytest.warns(DataWarning, match=r"ERA5 .*train/\*\.npz: 0\.51% of the values lie outside GASP's range"):
        raw = _era5_real(tmp_path)
    assert raw.arrays["train"].max() == 1.0 and raw.meta["clipped_fraction"]["train"] == pytest.approx(21 / 4140)
    assert any("0.51%" in w for w in raw.meta["warnings"])


def _pt_file(root, split, t01, latitude=None):
    lat = np.broadcast_to(LAT[:, None], (46, 90)) if latitude is None else latitude
    x = np.stack([np.stack([lat, np.broadcast_to(LON[None, :], (46, 90)), t]) for t in t01])
    torch.save(torch.from_numpy(x.astype(np.float32)), root / f"tensor_{split}_rnd.pt")


def test_era5_tensor_in_kelvin_or_with_a_later_sample_flipped_is_refused(tmp_path):
    ok = np.full((3, 46, 90), 0.5)
    _pt_file(tmp_path, "test", ok)
    _pt_file(tmp_path, "train", np.full((3, 46, 90), 280.0))  # kelvin where T01 belongs: was the constant 1.0
    with pytest.raises(DataError, match=r"tensor_train_rnd\.pt channel 2 \(T01\): 100\.00% of the values lie outside .*is this kelvin rather than T01"):
        _era5_real(tmp_path)
    _pt_file(tmp_path, "train", ok)
    x = torch.load(tmp_path / "tensor_train_rnd.pt")
    x[2, 0] = x[2, 0].flip(0)  # sample 2 upside down; sample 0 is fine
    torch.save(x, tmp_path / "tensor_train_rnd.pt")
    with pytest.raises(DataError, match=r"tensor_train_rnd\.pt channel 0 \(sample 2 of 3\): latitude grid does not match GASP's linspace\(90, -90, 46\)"):
        _era5_real(tmp_path)
    x = torch.load(tmp_path / "tensor_train_rnd.pt")
    x[2, 0] = x[0, 0]
    x[1, 1, 5, 7] += 1.0  # one longitude of sample 1 off by a degree
    torch.save(x, tmp_path / "tensor_train_rnd.pt")
    with pytest.raises(DataError, match=r"channel 1 \(sample 1 of 3\): longitude grid .*first difference at index 7"):
        _era5_real(tmp_path)


@pytest.mark.parametrize("case, make, message", [
    ("Celsius", lambda p: _era5_file(p, np.full((46, 90), 15.0)), r"values in \[15\.00, 15\.00\], expected kelvin"),
    ("flipped latitude", lambda p: _era5_file(p, _hot(0), latitude=LAT[::-1]), r"latitude grid does not match GASP's linspace\(90, -90, 46\)"),
    ("no grid", lambda p: np.savez(p, temperature=np.full((46, 90), 280.0)), r"lacks key\(s\) \['latitude', 'longitude'\]"),
    ("+80 K", lambda p: _era5_file(p, _hot(0.083)), r"8\.31% of the values lie outside GASP's range"),
    ("one NaN", lambda p: _era5_file(p, np.where(np.arange(4140).reshape(46, 90) == 9, np.nan, 280.0)), r"1 NaN/inf values of 4140"),
])
def test_reconstruct_reads_era5_input_as_the_loader_does(tmp_path, case, make, message):
    from vamoh.data import DATASETS
    from vamoh.infer import read_input

    path = tmp_path / "field.npz"
    make(path)
    with pytest.raises(DataError, match=message):
        read_input(path, DATASETS["era5"].info)


def test_reconstruct_era5_input_in_range_is_normalised(tmp_path):
    from vamoh.data import DATASETS
    from vamoh.infer import read_input

    t = np.linspace(210.0, 310.0, 4140).reshape(46, 90)
    got = read_input(_era5_file(tmp_path / "f.npz", t), DATASETS["era5"].info).reshape(46, 90).numpy()
    np.testing.assert_allclose(got, (t - 202.66) / (320.93 - 202.66), atol=1e-5)


# ---- non-finite values are refused where data enters, with the file and the count


def test_non_finite_inputs_and_masks_are_refused(tmp_path):
    from vamoh.data import DATASETS
    from vamoh.infer import completion_mask, read_input

    vox = DATASETS["shapenet"].info
    S = vox.grid_shape
    np.save(tmp_path / "allnan.npy", np.full(S, np.nan, np.float32))  # became an empty grid
    with pytest.raises(DataError, match=rf"--input .*allnan\.npy: {np.prod(S)} NaN/inf values of {np.prod(S)}"):
        read_input(tmp_path / "allnan.npy", vox)
    t = torch.ones(S)
    t[0, 0, :3] = float("inf")
    torch.save(t, tmp_path / "inf.pt")
    with pytest.raises(DataError, match=r"--input .*inf\.pt: 3 NaN/inf values of"):
        read_input(tmp_path / "inf.pt", vox)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"--input: .*obj\.npy holds Python objects \(dtype object\), expected a numeric array"):
        read_input(tmp_path / "obj.npy", vox)
    mask = np.ones((28, 28))
    mask[:2] = np.nan  # counted as observed before
    np.save(tmp_path / "m.npy", mask)
    with pytest.raises(DataError, match=r"--mask .*m\.npy: 56 NaN/inf values of 784"):
        completion_mask(str(tmp_path / "m.npy"), (28, 28))
    np.save(tmp_path / "m_ok.npy", np.arange(784).reshape(28, 28) % 2)
    assert completion_mask(str(tmp_path / "m_ok.npy"), (28, 28)).sum() == 392


def test_non_finite_loader_inputs_are_counted(tmp_path):
    try:
        from tests.data_fixtures import tiny_cfg
    except ImportError:
        from data_fixtures import tiny_cfg
    from vamoh.data.registry import build

    for split in ("train", "test"):
        (tmp_path / "p" / split).mkdir(parents=True)
        x = torch.full((4, 3, 28, 28), 0.5)
        x[1, 0, 0, :2] = float("nan")
        torch.save(x, tmp_path / "p" / split / "m1.pt")
    with pytest.raises(DataError, match=r"PolyMNIST .*train/m1\.pt: 2 NaN/inf values of 9408"):
        build(tiny_cfg("polymnist", source="real", path=str(tmp_path / "p")))
    (tmp_path / "s").mkdir()
    for i in range(3):
        v = torch.zeros(32, 32, 32)
        v[0, 0, 0] = float("nan") if i == 0 else 0
        torch.save(v, tmp_path / "s" / f"{i:05d}.pt")
    with pytest.raises(DataError, match=r"ShapeNet .*00000\.pt: 1 NaN/inf values of 32768"):
        build(tiny_cfg("shapenet", source="real", path=str(tmp_path / "s"), n_train=None, n_val=None, n_test=None))


# ---- outputs go exactly where asked, and the printed path is the written path


def test_outputs_are_written_where_asked_and_printed(trained, tmp_path, capsys):
    from PIL import Image

    from vamoh.cli import main

    ck = str(trained["ck"])
    for name in ("S.NPZ", "s.npz"):  # numpy's savez would have written S.NPZ.npz
        assert main(["sample", "--checkpoint", ck, "--n", "2", "--out", str(tmp_path / name)]) == 0
        assert capsys.readouterr().out.strip().endswith(f"-> {tmp_path / name}")
        assert np.load(tmp_path / name)["samples"].shape == (2, 28, 28, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["S.NPZ", "s.npz"]
    Image.fromarray(np.full((28, 28, 3), 90, np.uint8)).save(tmp_path / "in.png")
    before = {p.name for p in tmp_path.iterdir()}
    recon = ["reconstruct", "--checkpoint", ck, "--input", str(tmp_path / "in.png"), "--mask", "centre", "--upsample", "1"]
    assert main(recon + ["--out", str(tmp_path / "r.npz")]) == 0  # was: the arrays, then overwritten by the PNG figure
    printed = [line.removeprefix("wrote ") for line in capsys.readouterr().out.split("\n") if line]
    assert printed == [str(tmp_path / "r.npz")]
    with np.load(tmp_path / "r.npz") as z:
        assert z["recon_1x"].shape == (28, 28, 3)
    assert main(recon + ["--out", str(tmp_path / "f.PNG")]) == 0
    printed = sorted(line.removeprefix("wrote ") for line in capsys.readouterr().out.split("\n") if line)
    assert printed == sorted([str(tmp_path / "f.PNG"), str(tmp_path / "f.npz")])
    assert (tmp_path / "f.PNG").read_bytes()[:4] == b"\x89PNG"
    assert {p.name for p in tmp_path.iterdir()} - before == {"r.npz", "f.PNG", "f.npz"}
    for bad in ("q.jpg", "t.txt"):  # a .jpg held PNG bytes
        assert main(recon + ["--out", str(tmp_path / bad)]) == 2
        assert not (tmp_path / bad).exists() and not (tmp_path / bad).with_suffix(".npz").exists()


# ---- stale state: a cache is not reused after its real source files changed


@pytest.mark.parametrize("change", ["replace", "add", "remove", "touch"])
def test_cache_of_changed_real_files_is_rebuilt_with_a_warning(tmp_path, change):
    import warnings

    from PIL import Image

    from vamoh.data import DataWarning, load_dataset

    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(10):
        Image.fromarray(np.full((64, 64, 3), 10 * i, np.uint8)).save(faces / f"{i:05d}.png")
    cfg = {"name": "celebahq64", "source": "real", "path": str(faces), "n_train": None, "n_test": None}
    cache = faces / "cache"  # inside the data folder: the cache's own files are not sources
    def pixels(splits):
        return np.concatenate([splits[s]._data.numpy() for s in ("train", "test")])

    first = pixels(load_dataset(cfg, cache))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        warnings.filterwarnings("ignore", message=".*expected 30,000")  # the small folder's count warning
        again = pixels(load_dataset(cfg, cache))  # unchanged files: the cache is reused, silently
    np.testing.assert_array_equal(first, again)
    if change == "replace":
        Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(faces / "00000.png")
    elif change == "add":
        Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(faces / "00010.png")
    elif change == "remove":
        (faces / "00009.png").unlink()
    else:  # same bytes, newer time: possibly other content at the same size
        st = (faces / "00003.png").stat()
        os.utime(faces / "00003.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.warns(DataWarning, match=rf"cache .*celebahq64-real.*: the source files at the configured path changed since it was built"):
        now = load_dataset(cfg, cache)
    if change == "replace":
        assert (pixels(now) == 200).any() and not (first == 200).any()
    assert len(list(cache.glob("*.npz"))) == 1  # rebuilt in place, not beside


# ---- checkpoints: a sha256 sidecar verified on every load; the checkpoint evaluated is the job's own


def _tiny_payload():
    return {"model_name": "vamoh", "model_config": {}, "data_info": {}, "model_state": {"w": torch.arange(4000.0)}, "step": 3}


@pytest.mark.parametrize("damage", ["flip a bit early", "flip a bit in the weights", "flip the last bit", "truncate", "append a byte"])
def test_a_damaged_checkpoint_is_refused_by_its_checksum(tmp_path, damage):
    from vamoh.checkpoint import checksum_path, load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "c.pt", _tiny_payload())
    side = checksum_path(path)
    import hashlib

    assert side.read_text() == f"{hashlib.sha256(path.read_bytes()).hexdigest()}  c.pt\n"  # sha256sum's format
    data = bytearray(path.read_bytes())
    if damage.startswith("flip"):
        i = {"flip a bit early": 100, "flip a bit in the weights": len(data) // 2, "flip the last bit": len(data) - 1}[damage]
        data[i] ^= 0x01
    elif damage == "truncate":
        data = data[: len(data) - 7]
    else:
        data += b"\0"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"checkpoint .*c\.pt is truncated or corrupt: its sha256 [0-9a-f]{16}\.\.\. does not match "
                                             r"[0-9a-f]{16}\.\.\. recorded in c\.pt\.sha256"):
        load_checkpoint(path)


def test_checkpoint_sidecar_survives_rewrites_moves_and_is_optional_for_legacy_files(tmp_path):
    from vamoh.checkpoint import checksum_path, load_checkpoint, move_checkpoint, save_checkpoint
    from vamoh.checks import CheckpointWarning

    a = save_checkpoint(tmp_path / "a.pt", _tiny_payload())
    old = a.read_bytes()
    save_checkpoint(a, {**_tiny_payload(), "step": 4})  # a rewrite: the sidecar follows
    assert load_checkpoint(a)["step"] == 4
    # killed between the sidecar's first write and the rename: the old file still verifies (new + previous listed)
    new_digest = checksum_path(a).read_text().split()[0]
    import hashlib

    a.write_bytes(old)
    checksum_path(a).write_text(f"{new_digest}  a.pt\n{hashlib.sha256(old).hexdigest()}  a.pt\n")
    assert load_checkpoint(a)["step"] == 3
    save_checkpoint(a, {**_tiny_payload(), "step": 5})
    stale = save_checkpoint(tmp_path / "dst.pt", {**_tiny_payload(), "step": 9})
    moved = move_checkpoint(a, stale)  # the rule's train_state.pt -> checkpoint.pt
    assert load_checkpoint(moved)["step"] == 5 and not checksum_path(a).exists() and not a.exists()
    torch.save({**_tiny_payload(), "format_version": 2}, tmp_path / "legacy.pt")  # no sidecar
    with pytest.warns(CheckpointWarning, match=r"legacy\.pt has no legacy\.pt\.sha256 checksum beside it .* its integrity is not verified"):
        assert load_checkpoint(tmp_path / "legacy.pt")["step"] == 3


def test_cli_checkpoints_carry_a_checksum_and_a_flipped_bit_is_one_line(trained, tmp_path, capsys):
    import shutil

    from vamoh.checkpoint import checksum_path
    from vamoh.cli import main

    assert checksum_path(trained["ck"]).is_file()
    copy_ = tmp_path / "poly.pt"
    shutil.copy(trained["ck"], copy_)
    shutil.copy(checksum_path(trained["ck"]), checksum_path(copy_))
    data = bytearray(copy_.read_bytes())
    data[len(data) // 3] ^= 0x10
    copy_.write_bytes(bytes(data))
    assert main(["sample", "--checkpoint", str(copy_), "--out", str(tmp_path / "s.npz")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"poly\.pt is truncated or corrupt: its sha256 .* recorded in poly\.pt\.sha256", err) and err.count("\n") == 1
    assert not (tmp_path / "s.npz").exists()


def test_a_checkpoint_from_mlflow_comes_with_its_checksum(trained, tmp_path):
    import warnings

    from vamoh import tracking
    from vamoh.checkpoint import checksum_path, load_checkpoint

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.init_store(uri)
    with tracking.job_run(uri, "sums", "train/polymnist/vamoh/seed0") as run:
        run.log_checkpoint(trained["ck"])
    local = tracking.download_checkpoint(uri, run.run_id, tmp_path / "dl")
    assert checksum_path(local).read_text() == checksum_path(trained["ck"]).read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # verified, so no "not verified" warning
        load_checkpoint(local)
    data = bytearray(local.read_bytes())
    data[-100] ^= 1
    local.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"is truncated or corrupt: its sha256"):
        load_checkpoint(local)


def test_a_checkpoint_of_another_job_is_not_evaluated(trained, tmp_path):
    import json

    from vamoh.checkpoint import load_checkpoint, save_checkpoint
    from vamoh.data import read_record
    from vamoh.pipeline.runconfig import RunConfig
    from vamoh.pipeline.jobs import load_job_model

    rc = RunConfig.from_dict(copy.deepcopy(TINY))
    ck = trained["ck"]  # vamoh (tiny preset) on polymnist, seed 0
    cache = next(trained["cache"].glob("polymnist-*.npz"))
    record = {"sha256": read_record(cache)["content_sha256"]}
    payload = load_checkpoint(ck)
    payload.pop("format_version")

    def variant(name, **identity):
        return save_checkpoint(tmp_path / name, {**payload, "identity": {**payload["identity"], **identity}})

    bad = [
        ("era5 job", ck, "era5", "vamoh", 0, r"dataset: checkpoint 'polymnist', job 'era5'; data: checkpoint built for .*era5 is"),
        ("another model entry", ck, "polymnist", "gasp", 0, r"model: checkpoint 'vamoh', job 'gasp'"),
        ("another seed", ck, "polymnist", "vamoh", 1, r"seed: checkpoint 0, job 1"),
        ("CelebA-HQ copied over", variant("celeba.pt", dataset="celebahq64"), "polymnist", "vamoh", 0, r"dataset: checkpoint 'celebahq64', job 'polymnist'"),
        ("other data", variant("data.pt", data_sha256="0" * 64), "polymnist", "vamoh", 0, r"data sha256: checkpoint trained on 0000000000000000\.\.\."),
        ("other model config", variant("cfg.pt", settings=json.dumps({"model": {"K": 99}})), "polymnist", "vamoh", 0,
         r"model config of entry 'vamoh': K checkpoint 99, job 3"),
    ]
    for name, path, dataset, entry, seed, message in bad:
        with pytest.raises(CheckpointError, match=rf"checkpoint .* is not the one of this job \({dataset}, {entry}, seed {seed}\), so it is not used: {message}"):
            load_job_model(rc, path, dataset, entry, seed, "cpu", record)
    net, _ = load_job_model(rc, ck, "polymnist", "vamoh", 0, "cpu", record)  # its own job: accepted
    assert net.model_name == "vamoh"


def test_cuda_device_for_the_command_where_there_is_none(trained, tmp_path, capsys):
    from vamoh.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for dev in ("cuda", "cuda:1"):
        assert main(["sample", "--checkpoint", str(trained["ck"]), "--device", dev, "--out", str(tmp_path / "s.npz")]) == 2
        assert f"--device={dev!r} but no CUDA device is available; use 'auto' or 'cpu'" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(trained["ck"]), "--device", "auto", "--n", "1", "--out", str(tmp_path / "s.npz")]) == 0


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", r"not a UTF-8 text file \(byte 0: invalid start byte\); expected a YAML run config"),
    (b"run: a\nseeds: [0]\nrun: b\n", r"line 3, column 1: not valid YAML \(duplicate key 'run' \(first on line 1\); give each key once\)"),
    (b"eval:\n  num_sets: 2\n  num_sets: 5\n", r"line 3, column 3: not valid YAML \(duplicate key 'num_sets' \(first on line 2\)"),
])
def test_check_config_refuses_binary_files_and_duplicate_keys(tmp_path, capsys, content, message):
    from vamoh.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(content)
    assert main(["check-config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and err.count("\n") == 1, err


def test_check_config_says_an_empty_config_is_the_full_demo(tmp_path, capsys):
    from vamoh.cli import main

    for text in ("", "# nothing\n", "{}\n"):
        (tmp_path / "e.yaml").write_text(text)
        assert main(["check-config", str(tmp_path / "e.yaml")]) == 0
        out = capsys.readouterr().out
        assert "valid (it sets nothing, so it means the full demo: every default of the schema)" in out and "run 'demo': 5 datasets" in out
    (tmp_path / "s.yaml").write_text("run: small\n")
    assert main(["check-config", str(tmp_path / "s.yaml")]) == 0
    assert "it sets nothing" not in capsys.readouterr().out


def test_recompute_names_damaged_or_foreign_saved_files(tmp_path, capsys):
    import json

    from vamoh.cli import main

    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"schema": "vamoh.eval.metrics/2", "metrics": {}, "provenance": {"scores": "scores.npz", "data_range": 1.0}}))
    np.savez(tmp_path / "scores.npz", schema=np.array("vamoh.eval.scores/1"), recon_mse=np.ones(3))  # lacks the completion arrays
    cases = [("foreign scores", None, r"scores\.npz: no array 'completion_centre_mse' \(it holds \['recon_mse', 'schema'\]\)")]
    full = (tmp_path / "scores.npz").read_bytes()
    cases += [("truncated scores", full[: len(full) // 2], r"scores\.npz: cannot read it as the evaluation's \.npz .*truncated, corrupt")]
    cases += [("text scores", b"hello", r"scores\.npz: cannot read it as the evaluation's \.npz")]
    for name, content, message in cases:
        if content is not None:
            (tmp_path / "scores.npz").write_bytes(content)
        assert main(["recompute", str(metrics)]) == 2, name
        err = capsys.readouterr().err
        assert re.search(message, err) and err.count("\n") == 1, (name, err)
    for content, message in ((b"{truncated", r"metrics\.json: not a JSON file"), (b"[1, 2]", r"metrics\.json: holds a JSON list, expected an object"),
                             (b'{"schema": "vamoh.eval.metrics/2"}', r"metrics\.json: no 'provenance'/'metrics'")):
        metrics.write_bytes(content)
        assert main(["recompute", str(metrics)]) == 2
        err = capsys.readouterr().err
        assert re.search(message, err) and err.count("\n") == 1, err


# ---- loader messages


def test_loader_messages_for_groups_duplicates_and_small_images(tmp_path):
    import h5py
    from PIL import Image

    from vamoh.data import DataWarning
    from vamoh.data.registry import build

    try:
        from tests.data_fixtures import tiny_cfg
    except ImportError:
        from data_fixtures import tiny_cfg
    h5 = tmp_path / "3dshapes.h5"
    with h5py.File(h5, "w") as f:
        f.create_group("images").create_dataset("x", data=np.zeros(3))
        f["labels"] = np.zeros((3, 6))
    with pytest.raises(DataError, match=r"Shapes3D: .*3dshapes\.h5 key\(s\) \['images'\] are HDF5 groups \(holding \['x'\]\), expected datasets"):
        build(tiny_cfg("shapes3d", source="real", path=str(h5)))
    for split in ("train", "test"):
        folder = tmp_path / "poly" / split / "m1"
        folder.mkdir(parents=True)
        for name in ("0.3.png", "1.4.png", "1.7.png"):
            Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(folder / name)
    with pytest.raises(DataError, match=r"PolyMNIST: 1\.4\.png and 1\.7\.png in .*train/m1 share the sample index 1"):
        build(tiny_cfg("polymnist", source="real", path=str(tmp_path / "poly"), format="png"))
    faces = tmp_path / "faces"
    faces.mkdir()
    for i, side in enumerate([4, 128, 32, 100, 64, 70, 80, 90, 128, 128]):
        Image.fromarray(np.full((side, side, 3), 100, np.uint8)).save(faces / f"{i:05d}.png")
    with pytest.warns(DataWarning, match=r"CelebA-HQ: 2 image\(s\) smaller than 64x64 were upsampled \(the smallest, .*00000\.png, is 4 px"):
        raw, _ = build(tiny_cfg("celebahq64", source="real", path=str(faces), n_train=None, n_test=None))
    assert raw.meta["upsampled"] == 2


@pytest.mark.parametrize("dataset, rule", [("shapes3d", r"shuffle with split_seed \(0\), keep the first `subset`"), ("celebahq64", r"first 90% train")])
def test_a_too_small_split_points_at_what_sets_its_size(dataset, rule):
    """Shapes3D's test split is 10% of data.subset: the message pointed at n_test, which can only make it smaller."""
    from vamoh.eval.config import eval_config_from_dict
    from vamoh.eval.reference import check_generation_sizes

    with pytest.raises(DataError, match=rf"{dataset}: the test split has 2 images, .*comes from the data \(.*{rule}.*\), which "
                                        rf"data.settings.{dataset}.n_test can only cap"):
        check_generation_sizes(100, 2, eval_config_from_dict({}), dataset)
    check_generation_sizes(100, 4, eval_config_from_dict({}), dataset)  # k = 3: four are enough


# ---- issue 19, second outside sweep: inputs read by the command and the loaders, errors the libraries raise


def test_reconstruct_reads_voxels_as_the_loader_does(tmp_path):
    """A voxel grid of values outside [0, 1] was thresholded silently (the ShapeNet loader refuses it); an image given
    to a voxel model got torch's several-line unpickling message."""
    from vamoh.infer import read_input
    from vamoh.interface import DataInfo

    info = DataInfo(coord_dim=3, feature_dim=1, likelihood="bernoulli", grid_shape=(4, 4, 4), kind="voxels")
    for name, values, found in (("two.npy", np.full((4, 4, 4), 2.0), r"\[2, 2\]"), ("negative.npy", -np.ones((4, 4, 4)), r"\[-1, -1\]")):
        np.save(tmp_path / name, values)
        with pytest.raises(DataError, match=rf"--input .*{name}: values in {found}, expected occupancy in \[0, 1\]"):
            read_input(tmp_path / name, info)
    torch.save(torch.full((4, 4, 4), 3), tmp_path / "three.pt")
    with pytest.raises(DataError, match=r"three\.pt: values in \[3, 3\], expected occupancy in \[0, 1\]"):
        read_input(tmp_path / "three.pt", info)
    np.save(tmp_path / "ok.npy", np.eye(4)[None].repeat(4, 0) * 0.9)
    assert read_input(tmp_path / "ok.npy", info).sum().item() == 16  # in range: > 0.5 is occupied, as the loader reads it
    (tmp_path / "img.png").write_bytes(b"\x89PNG\r\n")
    with pytest.raises(DataError, match=r"img\.png: a voxels model reads an \(4, 4, 4\) occupancy grid from a \.pt or \.npy file, not \.png"):
        read_input(tmp_path / "img.png", info)


@pytest.mark.parametrize("content, found", [(b"\x89PNG\r\n\x1a\nrest", r"is not an \.npz archive \(it starts with b'\\x89PNG"),
                                            (b"", r"is empty"), (b"\x80\x04K\x01.", r"is not an \.npz archive \(it starts with b'\\x80")])
def test_an_npz_that_is_not_one_is_named_as_such(tmp_path, content, found):
    """numpy called a PNG 'pickled (object) data' and an empty file 'No data left in file'."""
    from vamoh.data.files import load_npz

    path = tmp_path / "field.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"ERA5: .*field\.npz {found}.*, expected a numpy \.npz holding \['temperature'\]"):
        load_npz(path, ("temperature",), "ERA5")


@pytest.mark.parametrize("error, shown", [
    (PermissionError(13, "Permission denied", "/data/x.pt"), r"/data/x\.pt: Permission denied"),
    (IsADirectoryError(21, "Is a directory", "/data"), r"/data: Is a directory"),
    (OSError(28, "No space left on device", "/results/c.pt"), r"/results/c\.pt: No space left on device"),
    (FileNotFoundError(2, "No such file or directory", "/a", None, "/b"), r"/a -> /b: No such file or directory"),
    (ValueError("line one\n\tline two"), r"line one line two"),
])
def test_any_os_error_or_several_line_message_is_one_line_naming_the_file(monkeypatch, capsys, error, shown):
    """An OSError (a permission, a full disk, a file that is a folder) escaped the command as a traceback, and a library's
    message of several lines (torch's state-dict errors) was printed as it was."""
    import vamoh.cli as cli

    def fail(args):
        raise error

    monkeypatch.setattr(cli, "cmd_datasets", fail)
    assert cli.main(["datasets"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"vamoh datasets: error: {shown}\n", err), err
