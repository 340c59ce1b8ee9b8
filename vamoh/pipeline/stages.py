"""One function per Snakemake rule. Each reads its inputs, does one stage, writes its outputs atomically.

Paths follow DESIGN.md: results/{run}/{dataset}/{model}/seed{seed}/ holds checkpoint.pt, metrics.json,
timing.json and figures.npz; results/{run}/data/{dataset}.json points at the prepared dataset.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checks import ConfigError, DataError
from ..config import to_dict
from ..interface import FunctionModel, get_model_class
from ..io import atomic_write, atomic_write_json, atomic_write_text
from .. import pointcloud
from ..train import Trainer, load_model
from .runconfig import RunConfig


def _tracking(rc: RunConfig):
    try:
        from .. import tracking
    except ImportError:  # pragma: no cover - mlflow is a dependency
        return None
    return tracking


def _job_run(rc: RunConfig, run_name: str, tags: dict[str, Any], params: dict[str, Any]):
    tracking = _tracking(rc)
    if tracking is None:
        return nullcontext(None)
    return tracking.job_run(rc.tracking_uri, rc.experiment, run_name, tags=tags, params=params)


# ---------------------------------------------------------------------------------------------- data


def prepare_data(rc: RunConfig, dataset: str, out: str | Path) -> dict[str, Any]:
    """Materialise ``dataset`` once into the cache; ``out`` (json) records where and what it is."""
    from ..data import DATASETS, prepare, read_meta

    cfg = rc.data_config(dataset)
    path = prepare(cfg, rc.cache_dir)
    meta = read_meta(path)
    spec = DATASETS[dataset]
    record = {"dataset": dataset, "path": str(Path(path).resolve()), "source": cfg.source, "is_standin": cfg.source == "standin",
              "label": spec.display_label(cfg.source == "standin"), "data_config": to_dict(cfg),
              "sha256": meta.get("sha256"), "sizes": meta.get("sizes", meta.get("split_sizes"))}
    atomic_write_json(out, record)
    return record


def load_data(manifest: str | Path, points_per_sample: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(splits {train, val, test: FunctionDataset}, manifest record)."""
    from ..data import load_prepared

    manifest = Path(manifest)
    if not manifest.exists():
        raise FileNotFoundError(f"prepared-data record not found: {manifest} (run the prepare_data rule)")
    record = json.loads(manifest.read_text())
    return load_prepared(record["path"]), record


# ---------------------------------------------------------------------------------------------- training


def build_for(rc: RunConfig, model: str, dataset: str, info) -> FunctionModel:
    config, _ = rc.model_config(model, dataset)
    return get_model_class(model)(config, info)


def train(rc: RunConfig, dataset: str, model: str, seed: int, data_manifest: str | Path, out: str | Path,
          history_out: str | Path) -> dict[str, Any]:
    """Train one (dataset, model, seed); resumable.

    The running checkpoint lives beside the declared output (train_state.pt): snakemake deletes the
    outputs of an interrupted job, not that file, so a rerun resumes from it. The declared
    checkpoint is written (atomically) only when training is complete.
    """
    torch.set_num_threads(rc.raw["threads"])
    splits, record = load_data(data_manifest)
    train_set = splits["train"]
    net = build_for(rc, model, dataset, train_set.spec.info)
    tcfg = rc.train_config(seed, train_set.spec.train_points)
    state = Path(out).with_name("train_state.pt")
    tags = {"dataset": dataset, "model": model, "seed": seed, "stage": "train", "data": record["label"],
            "is_standin": record["is_standin"]}
    params = {**{f"model.{k}": v for k, v in to_dict(net.config).items()}, **{f"train.{k}": v for k, v in to_dict(tcfg).items()}}
    t0 = time.perf_counter()
    with _job_run(rc, f"train/{dataset}/{model}/seed{seed}", tags, params) as run:
        log = (lambda step, metrics: run.log_metrics(metrics, step)) if run is not None else None
        trainer = Trainer(net, train_set, tcfg, state, on_log=log)
        history = trainer.fit()
        _write_history(history, history_out)
        if run is not None:
            run.log_artifact(history_out)
    shutil.copyfile(state, str(out) + ".tmp")
    Path(str(out) + ".tmp").replace(out)
    return {"steps": trainer.step, "seconds": time.perf_counter() - t0}


def _write_history(history: list[dict[str, float]], path: str | Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(history)
    atomic_write_text(path, frame.to_csv(index=False))


def functaset(rc: RunConfig, dataset: str, seed: int, data_manifest: str | Path, checkpoint: str | Path, out: str | Path) -> dict[str, Any]:
    """Functa's second stage: the modulation of every train and test sample, in an inspectable .npz (+ .json)."""
    from baselines.functa.functaset import write_functaset

    torch.set_num_threads(rc.raw["threads"])
    splits, _ = load_data(data_manifest)
    net, _ = load_model(checkpoint)
    return write_functaset(net, {"train": splits["train"], "test": splits["test"]}, out)


def fit_prior(rc: RunConfig, dataset: str, model: str, seed: int, checkpoint: str | Path, modulations: str | Path, out: str | Path) -> dict[str, Any]:
    """Functa's third stage: the normalizing flow on the train modulations, saved into a full checkpoint."""
    from ..checkpoint import save_checkpoint

    torch.set_num_threads(rc.raw["threads"])
    net, payload = load_model(checkpoint)
    with _job_run(rc, f"fit_prior/{dataset}/{model}/seed{seed}", {"dataset": dataset, "model": model, "seed": seed, "stage": "fit_prior"}, {}) as run:
        stats = net.fit_prior(str(modulations), seed=seed)
        if run is not None:
            run.log_metrics(stats, 0)
    payload = {**payload, "model_state": net.state_dict(), "prior_stats": stats}
    payload.pop("format_version", None)
    save_checkpoint(out, payload)
    return stats


# ---------------------------------------------------------------------------------------------- evaluation


def eval_inputs(splits: dict[str, Any], record: dict[str, Any], max_test: int | None = None, batch_size: int = 32):
    """What vamoh.eval needs from the prepared data: real image arrays and fully observed test batches."""
    from ..eval.pipeline import EvalInputs

    train_set, test_set = splits["train"], splits["test"]
    spec = test_set.spec
    n_test = len(test_set) if max_test is None else min(len(test_set), max_test)
    batches = [test_set.batch(torch.arange(s, min(s + batch_size, n_test))) for s in range(0, n_test, batch_size)]
    images = spec.kind == "image"
    return EvalInputs(
        dataset=spec.name, is_standin=bool(record["is_standin"]), kind=spec.kind, grid_shape=tuple(spec.grid_shape),
        real_train=train_set.images_uint8() if images else None, real_test=test_set.images_uint8() if images else None,
        test_batches=batches,
    )


def query_grid(spec: Any, upsample: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Coordinates (Q, c) of the dataset's grid refined ``upsample`` times (the original points are a subset)."""
    return pointcloud.query_grid(tuple(spec.grid_shape), upsample, sphere=spec.coord_system == "sphere")


def _grid(features: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """(B, Q, f) -> (B, *shape, f) float32 in [0, 1]."""
    return features.detach().float().cpu().clamp(0, 1).reshape(features.shape[0], *shape, features.shape[-1]).numpy()


def figure_arrays(net: FunctionModel, splits: dict[str, Any], n: int, seed: int, functa_steps: tuple[int, ...] = (3, 10)) -> dict[str, np.ndarray]:
    """Arrays for the figures: samples at 1x and 2x from the same latents, reconstructions and super-
    reconstructions of the first test samples, completions, and VAMoH's entropy/segmentation maps."""
    from ..eval.completion import COMPLETION_TASKS, observed_mask

    test = splits["test"]
    spec = test.spec
    out: dict[str, np.ndarray] = {}
    q1, s1 = query_grid(spec, 1)
    q2, s2 = query_grid(spec, 2)
    for tag, q, shape in (("samples_1x", q1, s1), ("samples_2x", q2, s2)):
        g = torch.Generator().manual_seed(seed)
        try:
            out[tag] = _grid(net.sample(n, q, generator=g), shape)
        except RuntimeError as err:  # e.g. Functa without a fitted prior
            raise DataError(f"{net.model_name}: sampling failed: {err}") from None
    if not net.can_reconstruct:
        return out
    n = min(n, len(test))
    batch = test.batch(torch.arange(n))
    out["ground_truth"] = _grid(batch.features, s1)
    variants = {"": {}}
    if net.model_name == "functa":
        variants = {f"_steps{s}": {"steps": s} for s in functa_steps}
    for suffix, kw in variants.items():
        out["recon_1x" + suffix] = _grid(net.reconstruct(batch, None, **kw), s1)
        out["recon_2x" + suffix] = _grid(net.reconstruct(batch, q2, **kw), s2)
    if spec.kind != "voxels":
        for task in COMPLETION_TASKS:
            mask = observed_mask(task, tuple(spec.grid_shape))
            out[f"completion_{task}_mask"] = mask.reshape(s1).numpy()
            out[f"completion_{task}"] = _grid(net.reconstruct(batch.with_mask(mask), None), s1)
    maps = getattr(net, "mixture_maps", None)
    if maps is not None:
        m = maps(batch)
        out["entropy"] = m["entropy"].reshape(n, *s1).cpu().numpy()
        out["segmentation"] = m["segmentation"].reshape(n, *s1).cpu().numpy()
    return out


def evaluate(rc: RunConfig, dataset: str, model: str, seed: int, data_manifest: str | Path, checkpoint: str | Path,
             metrics_out: str | Path, arrays_out: str | Path) -> dict[str, Any]:
    """metrics.json (generation, reconstruction, completion) and figures.npz for one (dataset, model, seed)."""
    from ..eval.pipeline import evaluate_model

    torch.set_num_threads(rc.raw["threads"])
    cfg = rc.eval_config()
    splits, record = load_data(data_manifest)
    net, _ = load_model(checkpoint, "cuda" if cfg.device.startswith("cuda") else "cpu")
    net.eval()
    inputs = eval_inputs(splits, record, cfg.completion_samples)
    with _job_run(rc, f"evaluate/{dataset}/{model}/seed{seed}", {"dataset": dataset, "model": model, "seed": seed, "stage": "evaluate",
                                                                 "data": record["label"]}, {f"eval.{k}": v for k, v in to_dict(cfg).items()}) as run:
        path, seconds = evaluate_model(net, model, inputs, cfg, run=rc.run, seed=seed, out_root=Path(metrics_out).parents[4])
        if Path(path).resolve() != Path(metrics_out).resolve():
            shutil.move(str(path), metrics_out)
        arrays = figure_arrays(net, splits, rc.raw["figures"]["num_examples"], seed)
        buf = __import__("io").BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write(arrays_out, lambda f: f.write(buf.getbuffer()))
        if run is not None:
            metrics = json.loads(Path(metrics_out).read_text())["metrics"]
            run.log_metrics({k: v["mean"] for k, v in metrics.items() if v.get("mean") is not None and math.isfinite(v["mean"])}, 0)
            run.log_artifact(metrics_out)
    return seconds


class _Steps:
    """A Functa model seen through reconstruct() with a fixed number of inner steps (Functa (3), Functa (10))."""

    def __init__(self, net: FunctionModel, steps: int) -> None:
        self.net, self.steps = net, steps

    def reconstruct(self, observed, query_coords=None):
        return self.net.reconstruct(observed, query_coords, steps=self.steps)


def timing(rc: RunConfig, dataset: str, seed: int, data_manifest: str | Path, checkpoints: dict[str, str], out: str | Path) -> Path:
    """Tables 2 and 5 for one dataset: every model that can reconstruct, timed interleaved in one process."""
    from ..eval.pipeline import evaluate_timing

    torch.set_num_threads(rc.raw["threads"])
    cfg = rc.eval_config()
    splits, record = load_data(data_manifest)
    inputs = eval_inputs(splits, record, max(cfg.timing_batch_sizes))
    device = "cuda" if cfg.device.startswith("cuda") else "cpu"
    candidates: dict[str, Any] = {}
    model_of: dict[str, str] = {}
    for name, ckpt in checkpoints.items():
        net, _ = load_model(ckpt, device)
        net.eval()
        if not net.can_reconstruct:
            continue
        if name == "functa":
            for s in (3, 10):
                candidates[f"functa{s}"] = _Steps(net, s)
                model_of[f"functa{s}"] = "timing"
        else:
            candidates[name] = net
            model_of[name] = "timing"
    if not candidates:
        raise ConfigError(f"timing for {dataset}: none of the models {sorted(checkpoints)} can reconstruct")
    root = Path(out).parents[4]
    paths = evaluate_timing(candidates, inputs, cfg, run=rc.run, seed=seed, out_root=root,
                            reference="vamoh" if "vamoh" in candidates else None, model_of=model_of)
    first = paths[0]
    if Path(first).resolve() != Path(out).resolve():
        shutil.copyfile(first, out)
    for p in paths:
        if Path(p).resolve() != Path(out).resolve():
            Path(p).unlink(missing_ok=True)
    return Path(out)


# ---------------------------------------------------------------------------------------------- aggregate

TIDY_COLUMNS = ["dataset", "model", "seed", "metric", "split", "mean", "std", "n", "values", "batch_size",
                "is_standin", "data_label", "feature_extractor", "num_samples", "device"]


def aggregate(rc: RunConfig, metrics_files: list[str], timing_files: list[str], manifests: list[str], out: str | Path):
    """One tidy table (one row per dataset x model x seed x metric) from every metrics.json and timing.json.

    Generation metrics keep their five per-set values; timing rows hold the median seconds per
    sample (mean column) with the inter-quartile range (std column holds the IQR), one per
    candidate, task and batch size.
    """
    import pandas as pd

    from ..eval import keys
    from ..eval.io import read_json

    labels = {}
    for m in manifests:
        rec = json.loads(Path(m).read_text())
        labels[rec["dataset"]] = rec["label"]
    rows = []
    for path in metrics_files:
        data = read_json(path, keys.METRICS_SCHEMA)
        prov = data["provenance"]
        for metric, entry in data["metrics"].items():
            split = "train" if metric.endswith("_train") else "test" if metric.endswith("_test") else ""
            rows.append({"dataset": prov["dataset"], "model": prov["model"], "seed": prov["seed"], "metric": metric, "split": split,
                         "mean": entry.get("mean"), "std": entry.get("std"), "n": entry.get("n"),
                         "values": json.dumps(entry.get("values") or []), "batch_size": None,
                         "is_standin": prov["is_standin"], "data_label": labels.get(prov["dataset"], prov["dataset"]),
                         "feature_extractor": prov["feature_extractor"], "num_samples": prov["num_samples"], "device": prov["device"]})
    for path in timing_files:
        data = read_json(path, keys.TIMING_SCHEMA)
        prov = data["provenance"]
        for group in data["timing"]["groups"]:
            for cand, stats in group["seconds_per_sample"].items():
                rows.append({"dataset": prov["dataset"], "model": cand, "seed": prov["seed"], "metric": f"time_{group['task']}",
                             "split": "", "mean": stats["median"], "std": stats["iqr"], "n": stats["repeats"],
                             "values": json.dumps([stats["q25"], stats["median"], stats["q75"], stats["min"], stats["max"]]),
                             "batch_size": group["batch_size"], "is_standin": prov["is_standin"],
                             "data_label": labels.get(prov["dataset"], prov["dataset"]), "feature_extractor": "",
                             "num_samples": 0, "device": prov["device"]})
    frame = pd.DataFrame(rows, columns=TIDY_COLUMNS)
    atomic_write_text(out, frame.to_csv(index=False))
    return frame


# ---------------------------------------------------------------------------------------------- tables, figures, report


def table3_configs(rc: RunConfig) -> dict[str, dict[str, Any]]:
    """The VAMoH configs actually used, per dataset (Table 3 is regenerated from these)."""
    if "vamoh" not in rc.models:
        return {}
    out = {}
    for d in rc.datasets:
        cfg, _ = rc.model_config("vamoh", d)
        out[d] = {**to_dict(cfg), "train_steps_cap": rc.raw["train"].get("max_steps")}
    return out


def tables(rc: RunConfig, tidy_csv: str | Path, first_output: str | Path) -> list[Path]:
    import pandas as pd

    from ..report.tables import write_tables

    tidy = pd.read_csv(tidy_csv)
    return write_tables(tidy, table3_configs(rc), Path(first_output).parent)


def figures(rc: RunConfig, tidy_csv: str | Path, out_dir: str | Path) -> list[Path]:
    import pandas as pd

    from ..report.figures import write_figures

    tidy = pd.read_csv(tidy_csv)
    arrays, histories = {}, {}
    for d in rc.datasets:
        for m in rc.models:
            for s in rc.seeds[:1]:  # figures show the first seed
                arrays[(d, m)] = rc.job_dir(d, m, s) / "figures.npz"
                histories[(d, m)] = rc.job_dir(d, m, s) / "history.csv"
    labels = {d: json.loads((rc.results / "data" / f"{d}.json").read_text())["label"] for d in rc.datasets}
    return write_figures(tidy, arrays, histories, Path(out_dir), labels)


def report(rc: RunConfig, table_files: list[str], figures_dir: str | Path, out: str | Path) -> str:
    """The MLflow report run: every table file and figure as artifacts of one run."""
    from .. import tracking

    figure_files = sorted(Path(figures_dir).glob("*.png"))
    run_id = tracking.report_run(rc.tracking_uri, rc.experiment, tables=table_files, figures=figure_files)
    atomic_write_json(out, {"report_run_id": run_id, "tracking_uri": rc.tracking_uri, "experiment": rc.experiment})
    return run_id
