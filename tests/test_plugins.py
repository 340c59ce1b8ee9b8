"""A new dataset and a new baseline are two files each: the module, and the run config that names it under ``plugins``.

The toy modules below are written to a temporary folder, as a user would write them; nothing in the suite is edited.
Each check runs in a child process, so the registrations never reach the registries of this test session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# File 1 of the dataset: its spec, its stand-in and its (absent) real format, registered on import.
TOY_DATA = '''
"""Toy: 8x8 colour gradients, a dataset added by a plugin."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from vamoh.data import register_dataset
from vamoh.data.spec import DatasetSpec, RawSplits

SPEC = DatasetSpec(name="toygrid", label="Toy gradients 8x8", kind="image", coord_system="grid", grid_shape=(8, 8),
                   feature_dim=3, likelihood="discretized_logistic", formats=("npy",), split_rule="first 80% train",
                   standin="seeded random colour gradients", standin_sizes=(24, 0, 8), paper_batch_size=8,
                   short_name="Toy", paper_order=6)
SUPERRES_UNAVAILABLE = "the toy gradients have no finer render"


def build_standin(cfg) -> RawSplits:
    rng = np.random.default_rng(cfg.seed)
    ramp = np.linspace(0.0, 1.0, 8)[None, :, None, None] * np.ones((1, 8, 8, 3))
    def split(n):
        colours = rng.uniform(0, 1, (n, 1, 1, 3))
        return (255 * ramp * colours).round().astype(np.uint8)
    n_train, n_val, n_test = (cfg.n_train or 24), (cfg.n_val or 0), (cfg.n_test or 8)
    return RawSplits({"train": split(n_train), "val": split(n_val), "test": split(n_test)})


def detect_format(root: Path) -> str:
    return "npy"


def load_real(cfg, fmt: str) -> RawSplits:
    raise FileNotFoundError("the toy dataset has no real files")


def write_real(cfg, out_dir: Path, fmt: str) -> Path:
    raise FileNotFoundError("the toy dataset has no real files")


register_dataset(sys.modules[__name__])
'''

# File 1 of the baseline: its config, presets and model class, registered on import. A per-point mean plus noise.
TOY_MODEL = '''
"""ToyMean: a baseline added by a plugin; it learns the mean function and samples it with Gaussian noise."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vamoh.interface import FunctionModel, register_model


@dataclass
class ToyMeanConfig:
    hidden: int = 16
    lr: float = 1e-2
    batch_size: int = 8
    noise: float = 0.05


@register_model
class ToyMean(FunctionModel):
    model_name = "toymean"
    label = "Toy mean"
    paper_order = 4
    curves = ("loss", "mean squared error")
    config_class = ToyMeanConfig
    presets = {"tiny": ToyMeanConfig(), "toygrid": ToyMeanConfig(), "polymnist": ToyMeanConfig(hidden=32)}

    def __init__(self, config, info):
        super().__init__(config, info)
        self.net = nn.Sequential(nn.Linear(info.coord_dim, config.hidden), nn.Tanh(), nn.Linear(config.hidden, info.feature_dim))

    def make_optimizers(self):
        return {"net": torch.optim.Adam(self.parameters(), lr=self.config.lr)}

    def training_step(self, batch, optimizers, step, epoch=0):
        loss = ((self.net(batch.coords) - batch.features) ** 2).mean()
        optimizers["net"].zero_grad()
        loss.backward()
        optimizers["net"].step()
        return {"loss": float(loss)}

    def sample(self, n, coords, generator=None):
        mean = self.net(coords)[None].expand(n, -1, -1)
        noise = torch.randn(mean.shape, generator=generator).to(coords.device)
        return (mean + self.config.noise * noise).clamp(0, 1)

    def reconstruct(self, observed, query_coords=None):  # the mean function: reads no observed value (leak-free)
        coords = observed.coords if query_coords is None else query_coords
        mean = self.net(coords)
        return (mean if mean.dim() == 3 else mean[None].expand(observed.coords.shape[0], -1, -1)).clamp(0, 1)
'''


def _write_plugins(folder: Path) -> dict[str, str]:
    (folder / "toy_data.py").write_text(textwrap.dedent(TOY_DATA))
    (folder / "toy_model.py").write_text(textwrap.dedent(TOY_MODEL))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _toy_config(folder: Path, **changes) -> Path:
    """File 2 of each: the run config naming the plugins, a tiny run of both toys beside a built-in dataset and model."""
    raw = {"run": "toy", "plugins": ["toy_data", "toy_model"], "datasets": ["toygrid", "polymnist"], "models": ["vamoh", "toymean"],
           "seeds": [0], "device": "cpu", "threads": 1, "data": {"source": "standin", "settings": {"polymnist": {"n_train": 16, "n_test": 8}}},
           "model_settings": {"vamoh": {"preset": "tiny"}, "toymean": {"preset": "tiny"}}, "train": {"max_steps": 2, "batch_size": 8, "progress": False},
           "eval": {"num_samples": 8, "num_sets": 2, "max_real": 16, "extractor_epochs": 1, "timing_repeats": 2, "timing_warmup": 1,
                    "timing_batch_sizes": [1], "completion_samples": 2},
           "figures": {"num_examples": 2, "num_samples": 4}}
    raw.update(changes)
    path = folder / "toy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_toy_dataset_and_baseline_plan_the_tiny_dag(tmp_path):
    """Two module files and one config: the dry run plans training and evaluation of the toy model on the toy data (and
    beside the built-in ones), and the plan names the toy dataset's display name from its spec."""
    env = _write_plugins(tmp_path)
    config = _toy_config(tmp_path)
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-n", "--configfile", config.name],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    for wildcards in ("dataset=toygrid, model=toymean", "dataset=toygrid, model=vamoh", "dataset=polymnist, model=toymean"):
        assert wildcards in text.replace("\n", " ").replace("  ", " ") or wildcards.replace(", ", ",") in text, wildcards
    stats = dict(line.split()[:2] for line in text.split("Job stats:")[1].split("total")[0].splitlines()[3:] if line.strip())
    assert stats["train"] == "4" and stats["evaluate"] == "4" and stats["prepare_data"] == "2"
    assert "timing" not in stats or stats["timing"] == "2"  # VAMoH reconstructs on both datasets; the toy cannot


def test_the_cli_reads_the_same_plugins(tmp_path):
    """`vamoh check-config` (the same config code as the workflow) accepts the toy config, and the registries see the
    toys in their places: the dataset's name and order from its spec, the model's order from its class."""
    env = _write_plugins(tmp_path)
    config = _toy_config(tmp_path)
    out = subprocess.run([sys.executable, "-m", "vamoh.cli", "check-config", str(config)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "valid" in out.stdout and "toymean" in out.stdout
    probe = ("from vamoh.plugins import load_plugins; load_plugins(['toy_data', 'toy_model'])\n"
             "from vamoh.report.labels import dataset_name, dataset_order, model_order\n"
             "print(dataset_order()[-1], dataset_name('toygrid'), model_order().index('toymean') == model_order().index('vamoh') + 1)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["toygrid", "Toy", "True"], out.stderr[-2000:]


def test_a_config_naming_an_unregistered_dataset_or_a_missing_plugin_is_refused(tmp_path):
    env = _write_plugins(tmp_path)
    for changes, message in (({"plugins": ["toy_model"]}, "toygrid"), ({"plugins": ["toy_data", "no_such_plugin"]}, "no_such_plugin")):
        config = _toy_config(tmp_path, **changes)
        out = subprocess.run([sys.executable, "-m", "vamoh.cli", "check-config", str(config)], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]


@pytest.mark.slow
def test_the_toys_run_the_whole_dag_through_the_warm_server(tmp_path):
    """The tiny DAG for real with both toys. Jobs run in children of the warm server, which imported the report before any
    job loaded the run's plugins: orders and claim lists read at import left the toy model after the reference rows and
    dropped the toy dataset's out-painting claim (seen by a newcomer's run, and only with the server)."""
    import pandas as pd

    import re
    import shutil
    import signal
    import tempfile

    env = _write_plugins(tmp_path)
    env.pop("VAMOH_WARM", None)
    env.pop("SLURM_JOB_ID", None)
    home = Path(tempfile.mkdtemp(prefix="vp"))  # a short folder of its own for the server's socket and log
    env["TMPDIR"] = str(home)
    config = _toy_config(tmp_path, datasets=["toygrid"])
    try:
        out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2", "--configfile", config.name],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        served = " ".join(p.read_text() for p in home.glob("vamoh-warm-*.log"))
    finally:
        for pid in re.findall(r"serving on .* \(pid (\d+)\)", " ".join(p.read_text() for p in home.glob("vamoh-warm-*.log"))):
            try:
                os.kill(int(pid), signal.SIGTERM)
            except ProcessLookupError:
                pass
        shutil.rmtree(home, ignore_errors=True)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert "serving on" in served  # the jobs ran in the warm server's children
    rep = tmp_path / "reports" / "toy"
    recon = pd.read_csv(rep / "reconstruction.csv", comment="#")
    models = [m for m in recon["Model"] if isinstance(m, str)]
    assert models.index("VAMoH") < models.index("Toy mean") < models.index("Train mean (baseline)"), models
    table3 = pd.read_csv(rep / "table3.csv", comment="#").columns  # the paper has no column for a plugin's dataset
    assert any(c.startswith("Toy") and c.endswith("(ours)") for c in table3) and not any(c.startswith("Toy") and c.endswith("(paper)") for c in table3)
    summary = (rep / "summary.md").read_text()
    outpaint = [line for line in summary.splitlines() if "everything outside a central patch" in line]
    assert any("| Toy" in line for line in outpaint), outpaint


@pytest.mark.parametrize("kind", ["dataset", "model"])
def test_the_schema_files_lists_are_the_registries(kind):
    """The schema file's enums (what a reader of the file sees) list exactly the built-in registries' names; validation
    itself takes the names from the registries, so a plugin's names are accepted too."""
    from vamoh.data import DATASETS
    from vamoh.interface import available_models
    from vamoh.pipeline.configfile import SCHEMA

    schema = yaml.safe_load(SCHEMA.read_text())["properties"]
    if kind == "dataset":
        assert schema["datasets"]["items"]["enum"] == list(DATASETS)
    else:
        assert sorted(schema["models"]["items"]["enum"]) == available_models()
        assert sorted(schema["ablations"]["additionalProperties"]["properties"]["model"]["enum"]) == available_models()
