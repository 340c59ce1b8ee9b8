"""The Snakemake workflow: lint, config validation, the paper config's DAG on real-format files,
the tiny config end to end (asserting on the tables it writes), and resume of an interrupted job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snake(args, cwd, timeout=900, check=True):
    out = subprocess.run(SNAKEMAKE + ["-s", str(ROOT / "Snakefile"), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-6000:]}")
    return out


def write_config(path: Path, base: str, **changes) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / base).read_text())
    for key, value in changes.items():
        cfg[key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_lint_is_clean(tmp_path):
    out = snake(["--lint", "--configfile", str(ROOT / "config/tiny.yaml")], ROOT, timeout=300, check=False)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    assert "Congratulations" in text, text[-4000:]


@pytest.mark.parametrize(
    "changes, quoted",
    [
        ({"datasets": ["polymnist", "mnist"]}, "mnist"),
        ({"modelz": ["vamoh"]}, "modelz"),
        ({"model_settings": {"vamoh": {"preset": "tiny", "overrides": {"K": 0}}}}, "vamoh.K=0"),
        ({"eval": {"num_sets": 1}}, "eval.num_sets=1"),
        ({"data": {"source": "standin", "settings": {"polymnist": {"modality": "m9"}}}}, "m9"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, changes, quoted):
    cfg = write_config(tmp_path / "bad.yaml", "tiny.yaml", **changes)
    out = snake(["-n", "--configfile", str(cfg)], tmp_path, timeout=300, check=False)
    assert out.returncode != 0
    assert quoted in out.stdout + out.stderr
    assert not (tmp_path / "results").exists()


def test_paper_config_dry_run_on_real_format_files(tmp_path):
    from vamoh.data import write_real_format

    paths = {name: str(write_real_format(name, tmp_path / "data" / name, n_train=8, n_val=2, n_test=2))
             for name in ("celebahq64", "shapes3d", "polymnist", "era5", "shapenet")}
    cfg = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    for name, path in paths.items():
        cfg["data"]["settings"][name]["path"] = path
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(cfg))
    out = snake(["-n", "--configfile", str(tmp_path / "paper.yaml")], tmp_path, timeout=300)
    text = out.stdout
    for rule, count in (("train", 15), ("evaluate", 15), ("functaset", 5), ("fit_prior", 5), ("timing", 5), ("prepare_data", 5)):
        assert any(line.split()[:2] == [rule, str(count)] for line in text.splitlines()), (rule, text[-3000:])
    # the paper config asks for GPUs on the heavy rules
    assert "gpu=1" in text


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny config end to end in a scratch directory (shared by the assertions below)."""
    work = tmp_path_factory.mktemp("tiny")
    t0 = time.perf_counter()
    snake(["--cores", "2", "--configfile", str(ROOT / "config/tiny.yaml")], work, timeout=1500)
    return work, time.perf_counter() - t0


def test_tiny_run_writes_paper_tables(tiny_run):
    work, _ = tiny_run
    rep = work / "reports" / "tiny"
    for table in ("table1", "table2", "table3", "table4", "table5", "reconstruction"):
        for ext in ("csv", "md", "tex", "html"):
            assert (rep / f"{table}.{ext}").stat().st_size > 0
    t1 = pd.read_csv(rep / "table1.csv", comment="#")
    row = t1[t1.iloc[:, 0].astype(str).str.startswith("PolyMNIST")]
    assert len(row) >= 3  # one row per model
    md1 = (rep / "table1.md").read_text()
    assert "stand-in" in md1 and "not Inception" in md1 or "‡" in md1
    t2 = (rep / "table2.md").read_text()
    assert "0.00453" in t2  # the paper's VAMoH PolyMNIST reconstruction time beside ours
    assert "0.05932" in t2  # ... and Functa (10) on ERA5
    tidy = pd.read_csv(work / "results" / "tiny" / "tidy.csv")
    times = tidy[(tidy.metric == "time_reconstruction") & (tidy.batch_size == 1)]
    assert set(times.model) == {"vamoh", "functa3", "functa10"}
    assert (times["mean"] > 0).all()
    fid = tidy[(tidy.metric == "fid_train") & (tidy.dataset == "polymnist")]
    assert set(fid.model) == {"vamoh", "gasp", "functa"} and fid["mean"].notna().all()
    psnr = tidy[(tidy.metric == "psnr") & (tidy.dataset == "polymnist")]
    assert set(psnr.dropna(subset=["mean"]).model) == {"vamoh", "functa"}  # GASP cannot reconstruct
    t3 = (rep / "table3.md").read_text()
    assert "dim_z" in t3 or "dim z" in t3.lower()
    figures = list((rep / "figures").glob("*.png"))
    assert len(figures) >= 8


def test_tiny_run_logs_to_mlflow_and_reruns_nothing(tiny_run):
    from vamoh import tracking

    work, _ = tiny_run
    uri = f"sqlite:///{work / 'results' / 'tiny' / 'mlflow.db'}"
    assert len(tracking.run_ids(uri, "vamoh-suite-tiny", kind="report")) == 1
    assert len(tracking.run_ids(uri, "vamoh-suite-tiny", kind="job")) >= 9 + 9 + 3  # train, evaluate, fit_prior
    out = snake(["-n", "--cores", "2", "--configfile", str(ROOT / "config/tiny.yaml")], work, timeout=300)
    assert "Nothing to be done" in out.stdout + out.stderr


def test_interrupted_training_resumes(tmp_path):
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


def test_snakemake_report_has_every_table_and_figure(tiny_run):
    work, _ = tiny_run
    snake(["--report", "report.zip", "--configfile", str(ROOT / "config/tiny.yaml")], work, timeout=600)
    import zipfile

    with zipfile.ZipFile(work / "report.zip") as z:
        names = z.namelist()
        text = "".join(z.read(n).decode("utf-8", "replace") for n in names if n.endswith((".html", ".js")))
    assert sum(n.endswith(".png") for n in names) >= 8
    for table in ("table1", "table2", "table3", "table4", "table5"):
        assert any(n.endswith(f"{table}.html") for n in names), table
    assert "train</strong> split" in text or "train split" in text  # Table 1's caption is rendered
    assert "stand-in" in text
