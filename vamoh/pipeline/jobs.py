"""What every stage shares: its MLflow run, its prepared data, its device and threads, the model it loads or builds.

The stages (``vamoh.pipeline.stages``) are glue; the lines they would otherwise each repeat live here, once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..checks import resolve_device
from ..config import to_dict
from .jobclock import clock, timed
from .runconfig import RunConfig

# Test samples per evaluation batch. Small batches keep the inner loops' activations below glibc malloc's mmap
# threshold on CPU, where Functa's evaluation at batch 32 was measured 2-3x slower per sample than at 16.
EVAL_BATCH = 16


def read_tracking(path: str | Path) -> tuple[str, str]:
    """(MLflow tracking URI, experiment name) from the init_tracking rule's tracking.json, which every logging rule
    declares as an input: the store a job logs to is the one that rule created, whatever the job's working directory."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tracking record not found: {path} (run the init_tracking rule)")
    where = json.loads(path.read_text())
    return where["uri"], where["experiment"]


def job_run(tracking_json: str | Path, job: str, tags: dict[str, Any], params: dict[str, Any] | None = None):
    """The MLflow run of one job (``job`` like "train/polymnist/vamoh/seed0") in the store of ``tracking_json``; runs of
    it left RUNNING by a killed earlier attempt are marked interrupted."""
    with clock("tracking"):
        from .. import tracking

    uri, experiment = read_tracking(tracking_json)
    return timed(tracking.job_run(uri, experiment, job, tags=tags, params=params or {}, job_key=job), "tracking")


def read_record(path: str | Path) -> dict[str, Any]:
    """A prepared-data record (the prepare_data rule's json)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"prepared-data record not found: {path} (run the prepare_data rule)")
    return json.loads(path.read_text())


def load_data(record_path: str | Path, train_points: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(splits {train, val, test: FunctionDataset}, the prepared-data record); ``train_points`` as in the data config.

    A deleted cache file (or its checksum record) is rebuilt from the data config the record holds, and must hold the
    recorded arrays (``vamoh.data.cache.ensure_prepared``): the record, and so what Snakemake reruns, is unchanged."""
    with clock("data"):
        from ..data import load_prepared
        from ..data.cache import ensure_prepared

        record = read_record(record_path)
        path = ensure_prepared(record["path"], record["data_config"], record["sha256"], record_path)
        return load_prepared(path, train_points=train_points), record


def eval_data(splits: dict[str, Any], record: dict[str, Any]):
    """The test split in evaluation batches, labelled as the record says (real or stand-in)."""
    from ..eval.evaluate import EvalData

    return EvalData.from_split(splits["test"], record["label"], record["is_standin"], batch_size=EVAL_BATCH)


@dataclass
class EvalJob:
    """The shared start of every evaluation-side stage: threads set, the eval config, the one device, the data."""

    cfg: Any  # vamoh.eval.config.EvalConfig
    device: torch.device
    splits: dict[str, Any]
    record: dict[str, Any]


def start_eval_job(rc: RunConfig, data_record: str | Path, threads: int) -> EvalJob:
    torch.set_num_threads(threads)
    cfg = rc.eval_config()
    device = resolve_device(cfg.device, "eval.device")  # one device rule: the model's tensors live here
    splits, record = load_data(data_record)
    return EvalJob(cfg, device, splits, record)


def log_dataset(run: Any, record: dict[str, Any]) -> None:
    run.log_dataset_input(record["dataset"], is_standin=record["is_standin"], sizes=record["sizes"],
                          checksum=record.get("sha256") or "", label=record["label"], source=record["path"])


def build_model(rc: RunConfig, entry: str, dataset: str, info: Any, seed: int, paper: bool = False):
    """The model of ``entry`` for ``dataset``, initialised from ``seed`` (seed first, build second); ``paper``: the
    paper's architecture, untouched by the run's overrides."""
    from ..train import seed_everything

    config = rc.paper_config(entry, dataset, seed) if paper else rc.model_config(entry, dataset, seed)[0]
    seed_everything(seed)
    return rc.entry(entry).cls(config, info)


def load_job_model(rc: RunConfig, checkpoint: str | Path, dataset: str, entry: str, seed: int, device: Any,
                   record: dict[str, Any] | None = None):
    """(model, payload) of ``checkpoint``, after checking that it is this job's: a checkpoint of another dataset,
    model entry, seed or data (one copied over another, a stale file) is refused naming what differs, not evaluated."""
    from ..checks import CheckpointError
    from ..data import DATASETS
    from ..train import load_model

    net, payload = load_model(checkpoint, device)
    e = rc.entry(entry)
    ident = payload.get("identity") or {}
    problems = []
    if payload["model_name"] != e.model:
        problems.append(f"model: checkpoint {payload['model_name']!r}, job {e.model!r}")
    if ident.get("dataset", dataset) != dataset:
        problems.append(f"dataset: checkpoint {ident['dataset']!r}, job {dataset!r}")
    info = {k: v for k, v in payload["data_info"].items() if k != "train_points"}
    expected = {k: v for k, v in to_dict(DATASETS[dataset].info).items() if k != "train_points"}
    if json.loads(json.dumps(info, default=str)) != json.loads(json.dumps(expected, default=str)):
        problems.append(f"data: checkpoint built for {info}, {dataset} is {expected}")
    if not e.imported:
        if "seed" in ident and ident["seed"] != seed:
            problems.append(f"seed: checkpoint {ident['seed']}, job {seed}")
        if record is not None and ident.get("data_sha256", record["sha256"]) != record["sha256"]:
            problems.append(f"data sha256: checkpoint trained on {str(ident['data_sha256'])[:16]}..., job's data {record['sha256'][:16]}...")
        if "settings" in ident:
            saved = json.loads(ident["settings"]).get("model", {})
            now = json.loads(json.dumps(to_dict(rc.model_config(entry, dataset, seed)[0]), default=str))
            differ = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
            if differ:
                problems.append(f"model config of entry {entry!r}: " + ", ".join(f"{k} checkpoint {saved.get(k)!r}, job {now.get(k)!r}" for k in differ[:5]))
    if problems:
        raise CheckpointError(f"checkpoint {checkpoint} is not the one of this job ({dataset}, {entry}, seed {seed}), so it is not "
                              f"used: {'; '.join(problems)}. Rerun the job's training (or restore the right file)")
    return net, payload


def superres_truth(record: dict[str, Any], num_test: int, samples: int) -> Any:
    """The first ``samples`` test samples rendered at 2x by the data layer (or why it cannot), from the data config the
    prepared data was built with."""
    from ..data.config import make_config
    from ..data.registry import superres_truth as render

    return render(make_config(record["data_config"]), "test", min(samples, num_test))


def finite_means(metrics: dict[str, dict[str, Any]]) -> dict[str, float]:
    """{key: mean} of the metric entries whose mean is a finite number (what MLflow can hold)."""
    import math

    return {k: v["mean"] for k, v in metrics.items() if isinstance(v.get("mean"), (int, float)) and math.isfinite(v["mean"])}


def timed_entries(rc: RunConfig) -> list[str]:
    """The entries Tables 2 and 5 time: every trained (not imported) entry whose model can reconstruct."""
    return [name for name, e in rc.entries.items() if e.cls.can_reconstruct and not e.imported]


def timing_lineup(rc: RunConfig, dataset: str, seed: int, checkpoints: dict[str, str], job: EvalJob):
    """(models, labels, candidates, reference) of the timing stage: every timed entry, loaded from its trained
    checkpoint (``eval.timing_models: trained``) or built untrained at the paper's architecture (``paper``), the
    inference variants of those with an inner loop ("<entry>@<steps>"), each one's display label, and the entry the
    others' speed-ups are read against (the first without an inner loop)."""
    from ..eval import keys
    from ..eval.speed import timing_candidates as candidates_of

    models: dict[str, Any] = {}
    for name in timed_entries(rc):
        if job.cfg.timing_models == "trained":
            models[name] = load_job_model(rc, checkpoints[name], dataset, name, seed, job.device, job.record)[0].eval()
        else:
            models[name] = build_model(rc, name, dataset, job.splits["train"].info, seed, paper=True).to(job.device).eval()
    labels = {name: type(m).display_label(m.config) for name, m in models.items()}
    candidates = candidates_of(models, tuple(job.cfg.extra_inference_steps))
    for name in candidates:
        base, steps = keys.split_inference_variant(name)
        if steps is not None:
            labels[name] = keys.inference_variant_label(labels[base], steps)
    reference = next((n for n, m in models.items() if not getattr(m, "inference_steps", False)), None)
    return models, labels, candidates, reference


def train_tracking(net: Any, tcfg: Any, dataset: str, entry: str, label: str, seed: int, record: dict[str, Any]):
    """(tags, params) of a training job's MLflow run: what was trained on what, the model and training config, and
    the device used (config 'auto' resolved) beside the config's value."""
    tags = {"dataset": dataset, "model": entry, "label": label, "seed": seed, "stage": "train", "data": record["label"],
            "is_standin": record["is_standin"]}
    params = {**{f"model.{k}": v for k, v in to_dict(net.config).items()}, **{f"train.{k}": v for k, v in to_dict(tcfg).items()},
              "train.device": str(resolve_device(tcfg.device, "train.device")), "train.device_requested": tcfg.device}
    return tags, params
