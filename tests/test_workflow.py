"""The Snakemake workflow as a user runs it: lint, config validation, the user's config replacing the demo's
(from the repository root), the tiny config end to end (asserting on the tables it writes), reruns of exactly
what a changed setting touches, bitwise-reproducible runs, forced retraining, and resume of an interrupted job."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snake(args, cwd, timeout=900, check=True, snakefile=ROOT / "Snakefile"):
    if "--configfile" in args:  # snakemake reads every word after --configfile up to the next option as a config file
        following = args[args.index("--configfile") + 1:]
        assert len(following) == 1 or following[1].startswith("-"), f"targets must come before --configfile: {args}"
    out = subprocess.run(SNAKEMAKE + ["-s", str(snakefile), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-6000:]}")
    return out


def write_config(path: Path, base: str, **changes) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / base).read_text())
    for key, value in changes.items():
        cfg[key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


def job_counts(text: str) -> dict[str, int]:
    """The dry run's "Job stats" table as {rule: count}."""
    counts = {}
    block = text.split("Job stats:", 1)[-1]
    for line in block.splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def test_lint_is_clean(tmp_path):
    out = snake(["--lint", "--configfile", str(ROOT / "config/tiny.yaml"), "--directory", str(tmp_path)], ROOT, timeout=300, check=False)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    assert "Congratulations" in text, text[-4000:]


@pytest.mark.parametrize(
    "changes, quoted",
    [
        ({"datasets": ["polymnist", "mnist"]}, "mnist"),
        ({"modelz": ["vamoh"]}, "'modelz' was unexpected"),
        ({"model_settings": {"vamoh": {"preset": "tiny", "overrides": {"K": 0}}}}, "vamoh.K=0"),
        ({"eval": {"num_sets": 1}}, "eval.num_sets=1"),
        ({"data": {"source": "standin", "settings": {"polymnist": {"modality": "m9"}}}}, "m9"),
        ({"seeds": [0, 0]}, "seeds"),
        ({"tracking": {"uri": "./mlruns"}}, "tracking.uri"),
        ({"resources": {"evaluate_generation": {"mem_mb": 1000}}}, "resources names no rule of this workflow: ['evaluate_generation']"),
        # issue 19: a run name that escapes results/, aliasing seeds, a misspelt per-dataset key
        ({"run": ".."}, "config key run='..': expected a name of letters, digits"),
        ({"seeds": [0, 4294967296]}, "config key seeds.1=4294967296: expected an integer in [0, 2**32 - 1"),
        ({"model_settings": {"vamoh": {"preset": "tiny", "per_dataset": {"polymnst": {"K": 2}}}}},
         "model_settings.vamoh.per_dataset has unknown dataset(s) ['polymnst']"),
    ],
)
def test_bad_config_stops_before_any_job_in_a_few_lines(tmp_path, changes, quoted):
    cfg = write_config(tmp_path / "bad.yaml", "tiny.yaml", **changes)
    out = snake(["-n", "--configfile", str(cfg)], tmp_path, timeout=300, check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert quoted in text
    assert len(text.splitlines()) < 30, text  # one message, not a schema dump or a long traceback
    assert not (tmp_path / "results").exists()


def test_a_key_given_twice_stops_the_workflow(tmp_path):
    """Snakemake's YAML reading keeps the last of two equal keys; the workflow refuses the file, naming the line."""
    cfg = tmp_path / "dup.yaml"
    cfg.write_text((ROOT / "config" / "tiny.yaml").read_text() + "\nrun: second\n")
    out = snake(["-n", "--configfile", str(cfg)], tmp_path, timeout=300, check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and re.search(r"dup\.yaml, line \d+, column 1: not valid YAML \(duplicate key 'run' \(first on line \d+\)", text), text[-3000:]
    assert not (tmp_path / "results").exists()


def paper_config_on_real_format_files(tmp_path: Path) -> Path:
    """config/paper.yaml with the data paths pointed at tiny files written in each dataset's real format, and the
    Inception weights at a placeholder file (a dry run checks that they exist, not what they hold)."""
    from vamoh.data import write_real_format

    cfg = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    for name in ("celebahq64", "shapes3d", "polymnist", "era5", "shapenet"):
        cfg["data"]["settings"][name]["path"] = str(write_real_format(name, tmp_path / "data" / name, n_train=8, n_val=2, n_test=4))
    weights = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    weights.write_bytes(b"placeholder")
    cfg["eval"]["inception_weights"] = str(weights)
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_paper_config_replaces_the_demo_config_from_the_repository_root(tmp_path):
    """Run from the repository root, where config/config.yaml exists: --configfile must replace it, not be merged
    into it (which trained VAMoH with the demo's K 3, dim_z 16, 8 epochs at batch 32 and eval.max_real 600)."""
    paper = paper_config_on_real_format_files(tmp_path)
    work = tmp_path / "work"
    out = snake(["-n", "--directory", str(work), "--configfile", str(paper)], ROOT, timeout=300, snakefile=Path("Snakefile"))
    text = out.stdout + out.stderr
    assert "extended by additional config" not in text
    assert re.search(r"vamoh\s+preset celebahq64\s+K=10 dim_z=64 hypernet_hidden=\[256,512\] generator_hidden=\[64,64,64\] "
                     r"flow_layers=80 epochs=1000 batch_size=64 lr=0.0001 warmup_epochs=200 compute_dtype=float32", text), text[:3000]
    assert "preset polymnist   K=4 dim_z=16" in text
    assert re.search(r"functa10\s+preset celebahq64\s+width=512 depth=15 latent_dim=128 inner_steps=10", text)
    assert "train overrides" not in text  # nothing of the demo's train section leaked in
    assert "extractor inception-v3-compat, 5 sets x 10000 samples, max_real=all" in text
    counts = job_counts(out.stdout)
    assert counts["train"] == 20 and counts["evaluate"] == 20  # 5 datasets x (VAMoH, GASP, Functa (3), Functa (10))
    for rule, n in (("prepare_data", 5), ("reference", 5), ("functaset", 5), ("fit_prior", 5), ("timing", 5)):
        assert counts[rule] == n, (rule, counts)
    assert "gpu=1" in out.stdout  # the paper config asks for GPUs on the heavy rules
    assert not (ROOT / "results" / "paper").exists() and (work / ".snakemake").exists()


def test_without_configfile_the_demo_config_is_used(tmp_path):
    out = snake(["-n", "--directory", str(tmp_path)], ROOT, timeout=300, snakefile=Path("Snakefile"))
    assert "vamoh plan: run 'demo'" in out.stderr + out.stdout


def test_missing_inception_weights_stop_the_dry_run(tmp_path):
    paper = paper_config_on_real_format_files(tmp_path)
    cfg = yaml.safe_load(paper.read_text())
    cfg["eval"]["inception_weights"] = str(tmp_path / "nowhere.pth")
    paper.write_text(yaml.safe_dump(cfg))
    out = snake(["-n", "--directory", str(tmp_path / "w"), "--configfile", str(paper)], ROOT, timeout=300, check=False)
    assert out.returncode != 0 and "Inception-v3 FID weights not found" in out.stdout + out.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny config end to end in a scratch directory (shared by the assertions below)."""
    work = tmp_path_factory.mktemp("tiny")
    t0 = time.perf_counter()
    snake(["--cores", "2", "--configfile", str(ROOT / "config/tiny.yaml")], work, timeout=1500)
    return work, time.perf_counter() - t0


def test_every_job_of_the_tiny_run_says_where_its_time_went(tiny_run):
    """Each benchmarked job's log ends with its jobclock line (vamoh.pipeline.jobclock), whose measured work fits in the
    job's wall time in Snakemake's benchmark file; benchmarks/bench_demo.py splits the run's time with these."""
    from benchmarks.bench_demo import summarise

    from vamoh.pipeline.runconfig import TUNED_GLIBC

    work, _ = tiny_run
    rows, total, allocators = summarise("tiny", work)
    # config/tiny.yaml has malloc: tuned, so every job started with the tuned glibc (or with the user's own setting)
    assert allocators == [os.environ.get("GLIBC_TUNABLES", TUNED_GLIBC)]
    assert {"train", "evaluate", "reference", "prepare_data", "timing", "functaset", "fit_prior"} <= {r["rule"] for r in rows}
    for r in rows:
        assert r["clocked"] == r["jobs"], r["rule"]  # every job wrote its line
        assert 0 < r["work_s"] < r["seconds"], r  # work measured, and inside the job's wall time
        assert r["process_s"] <= r["seconds"] + 1.0, r  # the process lives inside Snakemake's job
    train = next(r for r in rows if r["rule"] == "train")
    assert train["data_s"] > 0 and train["tracking_s"] > 0


def test_tiny_run_writes_paper_tables(tiny_run):
    work, _ = tiny_run
    rep = work / "reports" / "tiny"
    for table in ("table1", "table2", "table3", "table4", "table5", "reconstruction", "completion_scores", "superresolution", "mixture", "pointsets"):
        for ext in ("csv", "md", "tex", "html"):
            assert (rep / f"{table}.{ext}").stat().st_size > 0
    t1 = pd.read_csv(rep / "table1.csv", comment="#")
    rows = t1[t1.iloc[:, 0].astype(str).str.startswith("PolyMNIST")]
    assert set(rows["Model"]) == {"GASP", "Functa (3)", "VAMoH", "Real held-out (floor)", "Uniform noise (ceiling)", "Train mean (baseline)",
                                  "One real image repeated (collapse)", "Real held-out, blurred"}
    summary = (rep / "summary.md").read_text()
    assert "Interval (n, method)" in summary and "Flow prior" in summary
    md1 = (rep / "table1.md").read_text()
    assert "stand-in" in md1 and "‡" in md1
    t2 = (rep / "table2.md").read_text()
    assert "0.00453" in t2  # the paper's VAMoH PolyMNIST reconstruction time beside ours
    assert "0.05932" in t2  # ... and Functa (10) on ERA5
    tidy = pd.read_csv(work / "results" / "tiny" / "tidy.csv")
    times = tidy[(tidy.metric == "time_reconstruction") & (tidy.batch_size == 1)]
    assert set(times.label) == {"VAMoH", "Functa (3)", "Functa (10)"}
    assert (times["mean"] > 0).all()
    fid = tidy[(tidy.metric == "fid_train") & (tidy.dataset == "polymnist")]
    assert set(fid.dropna(subset=["mean"]).model) == {"vamoh", "gasp", "functa", "real_heldout", "noise", "mean_image", "collapsed", "blurred"}
    psnr = tidy[(tidy.metric == "psnr") & (tidy.dataset == "polymnist")]
    assert set(psnr.dropna(subset=["mean"]).model) == {"vamoh", "functa", "functa10", "mean_image"}  # GASP cannot reconstruct
    t3 = (rep / "table3.md").read_text()
    assert "(6 steps)" in t3  # what was trained: train.max_steps = 6, not the preset's 2 epochs
    figures = list((rep / "figures").glob("*.png"))
    assert len(figures) >= 15


def test_tiny_run_numbers_are_recomputable(tiny_run):
    from vamoh.cli import main

    work, _ = tiny_run
    files = sorted(str(p) for p in (work / "results" / "tiny").glob("*/*/seed0/metrics.json"))
    assert len(files) == 12
    assert main(["recompute", *files]) == 0


def test_tiny_run_logs_to_mlflow_and_reruns_nothing(tiny_run):
    from vamoh import tracking

    work, _ = tiny_run
    uri = f"sqlite:///{work / 'results' / 'tiny' / 'mlflow.db'}"
    assert len(tracking.run_ids(uri, "vamoh-suite-tiny", kind="report")) == 1
    record = json.loads((work / "results" / "tiny" / "tracking.json").read_text())
    # the address of the experiment's runs table (MLflow's bare address opens its GenAI overview)
    assert record["runs_view"] == f"http://127.0.0.1:5000/#/experiments/{record['experiment_id']}/runs"
    assert record["server"].endswith(f"--backend-store-uri {record['uri']}")
    assert record["runs_view"] in (work / "logs" / "tiny" / "init_tracking.log").read_text()
    # train, evaluate, functaset, fit_prior, reference, timing: every job with a number has a run
    assert len(tracking.run_ids(uri, "vamoh-suite-tiny", kind="job")) == 12 + 12 + 3 + 3 + 3 + 3
    out = snake(["-n", "--cores", "2", "--configfile", str(ROOT / "config/tiny.yaml")], work, timeout=300)
    assert "Nothing to be done" in out.stdout + out.stderr


@pytest.mark.parametrize(
    "change, expected",
    [
        # a data setting: that dataset's preparation and everything downstream of it, no other dataset
        (("data", {"source": "standin", "settings": {"polymnist": {"n_train": 80, "n_test": 21}, "era5": {"n_train": 40, "n_val": 8, "n_test": 16},
                                                     "shapenet": {"n_train": 40, "n_val": 8, "n_test": 16}}}),
         {"prepare_data": 1, "reference": 1, "train": 4, "evaluate": 4, "timing": 1, "functaset": 1, "fit_prior": 1}),
        # a model setting: that model's training on every dataset and what uses it, no data preparation
        (("model_settings", {"vamoh": {"preset": "tiny", "overrides": {"lr": 0.002}}, "gasp": {"preset": "tiny"}, "functa": {"preset": "tiny"}}),
         {"train": 3, "evaluate": 3, "timing": 3}),
        # an evaluation setting: the references and the evaluations, no training, no timing
        (("eval", {**yaml.safe_load((ROOT / "config/tiny.yaml").read_text())["eval"], "num_samples": 20}),
         {"reference": 3, "evaluate": 12}),
    ],
    ids=["data", "model", "eval"],
)
def test_a_changed_setting_reruns_exactly_what_it_touches(tiny_run, tmp_path, change, expected):
    work, _ = tiny_run
    key, value = change
    cfg = write_config(tmp_path / "changed.yaml", "tiny.yaml", **{key: value})
    out = snake(["-n", "--configfile", str(cfg)], work, timeout=300)
    counts = job_counts(out.stdout)
    for rule in ("prepare_data", "reference", "train", "functaset", "fit_prior", "evaluate", "timing"):
        assert counts.get(rule, 0) == expected.get(rule, 0), (rule, counts)
    for rule in ("aggregate", "tables", "figures", "report"):
        assert counts.get(rule, 0) == 1, (rule, counts)


def _small(tmp_path: Path, run: str) -> Path:
    return write_config(tmp_path / f"{run}.yaml", "tiny.yaml", run=run, datasets=["polymnist"], models=["vamoh", "functa"])


def _states(run_dir: Path) -> dict[str, dict]:
    return {str(p.relative_to(run_dir)): torch.load(p, weights_only=True)["model_state"] for p in sorted(run_dir.glob("*/*/seed0/*.pt"))}


def test_the_same_config_and_seed_give_bitwise_the_same_run(tmp_path):
    """Two from-scratch runs in two processes: every checkpoint and every number identical (model initialisation
    was unseeded: 12 checkpoints and 43 of 126 metric values differed)."""
    results = []
    for i in range(2):
        work = tmp_path / f"run{i}"
        work.mkdir()
        snake(["results/same/tidy.csv", "--cores", "2", "--configfile", str(_small(tmp_path, "same"))], work, timeout=900)
        results.append(work / "results" / "same")
    a, b = (_states(r) for r in results)
    assert set(a) == set(b) and len(a) == 4  # vamoh, functa, functa10 checkpoints and functa's fitted one
    for name in a:
        for k in a[name]:
            assert torch.equal(a[name][k], b[name][k]), (name, k)
    metrics = [[json.loads(p.read_text())["metrics"] for p in sorted(r.glob("polymnist/*/seed0/metrics.json"))] for r in results]
    assert metrics[0] == metrics[1]
    # and the same data: its recorded identity is the arrays' checksum, not the file's (the build time in the file differs)
    records = [json.loads((r / "data" / "polymnist.json").read_text()) for r in results]
    assert records[0]["sha256"] == records[1]["sha256"]


def test_forced_retraining_starts_from_scratch(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    cfg = _small(tmp_path, "force")
    target = "results/force/polymnist/vamoh/seed0/checkpoint.pt"
    snake([target, "--cores", "1", "--configfile", str(cfg)], work, timeout=600)
    first = torch.load(work / target, weights_only=True)
    assert not (work / target).with_name("train_state.pt").exists()  # the state became the checkpoint
    snake([target, "--cores", "1", "--force", "--configfile", str(cfg)], work, timeout=600)
    log = (work / "logs/force/polymnist/vamoh/seed0/train.log").read_text()
    assert "resuming" not in log.split("vamoh plan")[-1]
    second = torch.load(work / target, weights_only=True)
    assert second["step"] == first["step"] == 6
    assert all(torch.equal(first["model_state"][k], second["model_state"][k]) for k in first["model_state"])


def test_interrupted_training_resumes_and_mlflow_holds_the_whole_curve(tmp_path):
    from vamoh import tracking

    cfg = write_config(tmp_path / "resume.yaml", "tiny.yaml", run="resume", datasets=["polymnist"], models=["vamoh"],
                       train={"max_steps": 400, "batch_size": 16, "checkpoint_every": 5, "log_every": 5, "progress": False})
    target = "results/resume/polymnist/vamoh/seed0/checkpoint.pt"
    state = tmp_path / "results/resume/polymnist/vamoh/seed0/train_state.pt"
    proc = subprocess.Popen(SNAKEMAKE + ["-s", str(ROOT / "Snakefile"), target, "--cores", "1", "--configfile", str(cfg)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert state.exists(), "training never wrote its first checkpoint"
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)  # an abrupt interruption (node failure, scancel)
    proc.wait()
    assert not (tmp_path / target).exists()
    # a killed snakemake leaves its lock: the user unlocks, then reruns the same command
    snake(["--unlock", "--configfile", str(cfg)], tmp_path, timeout=300)
    snake([target, "--cores", "1", "--rerun-incomplete", "--configfile", str(cfg)], tmp_path, timeout=600)
    log = (tmp_path / "logs/resume/polymnist/vamoh/seed0/train.log").read_text()
    assert "resuming from" in log and "at step" in log, log[-2000:]
    history = pd.read_csv(tmp_path / "results/resume/polymnist/vamoh/seed0/history.csv")
    assert history.step.max() == 400
    # MLflow: the killed job's run is marked interrupted, the resumed run holds every logged step
    uri = f"sqlite:///{tmp_path / 'results' / 'resume' / 'mlflow.db'}"
    client = tracking.client(uri)
    runs = [client.get_run(r) for r in tracking.run_ids(uri, "vamoh-suite-resume", kind="job")]
    train_runs = [r for r in runs if r.data.tags.get("vamoh.job") == "train/polymnist/vamoh/seed0"]
    assert sorted(r.info.status for r in train_runs) == ["FINISHED", "KILLED"]
    done = next(r for r in train_runs if r.info.status == "FINISHED")
    steps = sorted(m.step for m in client.get_metric_history(done.info.run_id, "loss"))
    assert steps == sorted(history.step.tolist())


def test_snakemake_report_has_every_table_and_figure(tiny_run):
    work, _ = tiny_run
    snake(["--report", "report.zip", "--configfile", str(ROOT / "config/tiny.yaml")], work, timeout=600)
    import zipfile

    with zipfile.ZipFile(work / "report.zip") as z:
        names = z.namelist()
        text = "".join(z.read(n).decode("utf-8", "replace") for n in names if n.endswith((".html", ".js")))
    assert sum(n.endswith(".png") for n in names) >= 15
    for table in ("table1", "table2", "table3", "table4", "table5", "mixture"):
        assert any(n.endswith(f"{table}.html") for n in names), table
    assert "train</strong> split" in text or "train split" in text  # Table 1's caption is rendered
    assert "stand-in" in text


def test_a_published_checkpoint_gets_an_official_row(tmp_path):
    """config key `imported`: a released Functa (written here in DeepMind's format) is imported, its flow fitted on the
    released modulations, and evaluated like the trained models: an "official checkpoint, our evaluator" row."""
    import dill
    import numpy as np

    try:
        from test_importers import functa_checkpoint
    except ImportError:
        from tests.test_importers import functa_checkpoint

    ckpt = functa_checkpoint(width=8, depth=3, latent=4)
    ckpt["config"]["dataset"]["resolution"] = 28
    params, mods = tmp_path / "celeba_params_4_latents.npz", tmp_path / "modulations.npz"
    rng = np.random.default_rng(0)
    with open(params, "wb") as f:
        dill.dump(ckpt, f)
    with open(mods, "wb") as f:
        dill.dump({"train": {"modulation": rng.normal(0, 1, (24, 4)).astype(np.float32), "psnr": np.full(24, 20.0, np.float32)}}, f)
    cfg = write_config(tmp_path / "official.yaml", "tiny.yaml", run="official", datasets=["polymnist"], models=["vamoh", "functa"],
                       imported={"polymnist": {"functa": {"path": str(params), "modulations": str(mods)}}})
    plan = snake(["-n", "--configfile", str(cfg)], tmp_path, timeout=300)
    assert f"functa-official imported from {params} (+ {mods})" in plan.stderr + plan.stdout
    counts = job_counts(plan.stdout)
    assert counts["import_checkpoint"] == 1 and counts["train"] == 3  # vamoh, functa, functa10: the official one is not trained
    snake(["reports/official/table1.md", "reports/official/reconstruction.md", "--cores", "2", "--configfile", str(cfg)], tmp_path, timeout=900)
    t1 = (tmp_path / "reports/official/table1.md").read_text()
    rec = (tmp_path / "reports/official/reconstruction.md").read_text()
    assert "Functa (3) (official checkpoint)" in t1 and "Functa (3) (official checkpoint)" in rec
    payload = torch.load(tmp_path / "results/official/polymnist/functa-official/seed0/imported.pt", weights_only=True)
    assert payload["imported_from"]["files"][0]["name"] == params.name


@pytest.mark.parametrize("tracking", [{"experiment": "renamed-experiment"}, {"uri": "sqlite:///elsewhere.db"}], ids=["experiment", "uri"])
def test_where_results_are_logged_reruns_no_computation(tiny_run, tmp_path, tracking):
    """Renaming the MLflow experiment or moving the store re-creates the tracking record and the report run only:
    every job reads the record (its tracking URI) but its outputs do not depend on it, so no training (days of GPU
    time at paper scale), evaluation or reference reruns."""
    work, _ = tiny_run
    cfg = write_config(tmp_path / "tracking.yaml", "tiny.yaml", tracking=tracking)
    out = snake(["-n", "--configfile", str(cfg)], work, timeout=300)
    counts = job_counts(out.stdout)
    assert counts.get("init_tracking", 0) == 1 and counts.get("report", 0) == 1, counts
    for rule in ("prepare_data", "reference", "train", "functaset", "fit_prior", "evaluate", "timing", "aggregate", "tables", "figures", "summary"):
        assert counts.get(rule, 0) == 0, (rule, counts)


@pytest.mark.parametrize("name, rule", [("polymnist/vamoh/seed0/scores.npz", "evaluate"), ("polymnist/vamoh/seed0/history.csv", "train"),
                                        ("polymnist/reference/features.npz", "reference")], ids=["scores", "history", "features"])
def test_a_deleted_intermediate_output_reruns_its_job(tiny_run, tmp_path, name, rule):
    """What `vamoh recompute` reads and each training's curve are final targets: a deleted one reruns its job (and what
    depends on it) instead of staying missing behind "Nothing to be done"."""
    work, _ = tiny_run
    path = work / "results" / "tiny" / name
    aside = tmp_path / path.name
    path.rename(aside)  # a rename keeps the file's mtime, so putting it back leaves the run as it was
    try:
        out = snake(["-n", "--configfile", str(ROOT / "config/tiny.yaml")], work, timeout=300)
        counts = job_counts(out.stdout)
        assert counts.get(rule, 0) == 1, counts
        assert counts.get("prepare_data", 0) == 0, counts
    finally:
        aside.rename(path)
