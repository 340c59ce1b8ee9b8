"""One function per Snakemake rule: glue between the workflow and the package.

Each stage receives every path it reads and writes (Snakemake's ``input``/``output``) and its thread
count, calls the package code that does the work, and writes its outputs atomically. No stage builds a
results path, branches on a model's or dataset's name, or knows where another stage writes.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checks import resolve_device
from ..config import to_dict
from ..io import atomic_write, atomic_write_json, atomic_write_text, drop_orphan_sidecars
from .jobclock import clock, timed
from .runconfig import RunConfig


# ---------------------------------------------------------------------------------------------- helpers


def _job_run(rc: RunConfig, job: str, tags: dict[str, Any], params: dict[str, Any] | None = None):
    """The MLflow run of one job (``job`` like "train/polymnist/vamoh/seed0"); runs of it left RUNNING by a
    killed earlier attempt are marked interrupted."""
    with clock("tracking"):
        from .. import tracking

    return timed(tracking.job_run(rc.tracking_uri, rc.experiment, job, tags=tags, params=params or {}, job_key=job), "tracking")


def _record(path: str | Path) -> dict[str, Any]:
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

        record = _record(record_path)
        path = ensure_prepared(record["path"], record["data_config"], record["sha256"], record_path)
        return load_prepared(path, train_points=train_points), record


# Test samples per evaluation batch. Small batches keep the inner loops' activations below glibc malloc's mmap
# threshold on CPU, where Functa's evaluation at batch 32 was measured 2-3x slower per sample than at 16.
EVAL_BATCH = 16


def _eval_data(splits: dict[str, Any], record: dict[str, Any]):
    from ..eval.evaluate import EvalData

    return EvalData.from_split(splits["test"], record["label"], record["is_standin"], batch_size=EVAL_BATCH)


def _log_dataset(run: Any, record: dict[str, Any]) -> None:
    if run is not None:
        run.log_dataset_input(record["dataset"], is_standin=record["is_standin"], sizes=record["sizes"],
                              checksum=record.get("sha256") or "", label=record["label"], source=record["path"])


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


# ---------------------------------------------------------------------------------------------- data


def prepare_data(rc: RunConfig, dataset: str, out: str | Path) -> dict[str, Any]:
    """Materialise ``dataset`` once into the cache; ``out`` (json) records where and what it is, with its checksum."""
    from ..data import prepare, read_record

    cfg = rc.data_config(dataset)
    with clock("work"):
        path = prepare(cfg, rc.cache_dir)
    cache = read_record(path)
    meta = cache["meta"]
    record = {"dataset": dataset, "path": str(Path(path).resolve()), "source": cfg.source, "is_standin": bool(meta["is_standin"]),
              "label": meta["label"], "data_config": to_dict(cfg), "sha256": cache["content_sha256"], "file_sha256": cache["sha256"], "bytes": cache["bytes"],
              "sizes": meta["sizes"], "warnings": meta.get("details", {}).get("warnings", [])}
    details = meta.get("details") or {}
    if (details.get("augmented") or {}).get("test"):  # test samples that are copies of a few real sources (ERA5's stand-in)
        record["test_sources"] = {"real": int(details["real_fields"]["test"]), "augmented": int(details["augmented"]["test"]),
                                  "rule": "test sample j is a copy of real source j mod real"}
    atomic_write_json(out, record)
    return record


# ---------------------------------------------------------------------------------------------- training


def build_model(rc: RunConfig, entry: str, dataset: str, info: Any, seed: int, paper: bool = False):
    """The model of ``entry`` for ``dataset``, initialised from ``seed`` (seed first, build second); ``paper``: the
    paper's architecture, untouched by the run's overrides."""
    from ..train import seed_everything

    config = rc.paper_config(entry, dataset, seed) if paper else rc.model_config(entry, dataset, seed)[0]
    seed_everything(seed)
    return rc.entry(entry).cls(config, info)


def train(rc: RunConfig, dataset: str, entry: str, seed: int, data_record: str | Path, checkpoint_out: str | Path,
          history_out: str | Path, summary_out: str | Path, threads: int = 1) -> dict[str, Any]:
    """Train one (dataset, entry, seed); an interrupted job resumes.

    The running state lives beside the declared output (train_state.pt), which Snakemake does not delete
    when a job is interrupted, so a rerun resumes from it; it is resumed only when it belongs to this very
    job (the same settings, data checksum and seed), otherwise training starts over. When training is
    complete the state is put at the declared checkpoint too, and removed only once the job's MLflow run is
    closed: a forced rerun finds no state and retrains, while a job that fails after its training (the store
    locked through every retry while logging the checkpoint or closing the run) leaves the finished state, so
    its rerun resumes at the last step instead of training again; Snakemake deletes the failed job's outputs.
    """
    from ..checkpoint import link_checkpoint, remove_checkpoint
    from ..train import Trainer

    drop_orphan_sidecars(checkpoint_out)  # Snakemake deleted the checkpoint (a forced, changed or failed run), not its sidecar
    torch.set_num_threads(threads)
    splits, record = load_data(data_record, rc.data_config(dataset).train_points)
    train_set = splits["train"]
    net = build_model(rc, entry, dataset, train_set.info, seed)
    tcfg = rc.train_config(seed, train_set.train_points, dataset, entry)
    state = Path(checkpoint_out).with_name("train_state.pt")
    identity = {"dataset": dataset, "data_sha256": record["sha256"], "settings": rc.train_settings(dataset, entry, seed)}
    label = type(net).display_label(net.config)
    tags = {"dataset": dataset, "model": entry, "label": label, "seed": seed, "stage": "train", "data": record["label"],
            "is_standin": record["is_standin"]}
    params = {**{f"model.{k}": v for k, v in to_dict(net.config).items()}, **{f"train.{k}": v for k, v in to_dict(tcfg).items()},
              # the device used (config 'auto' resolved) beside the config's value
              "train.device": str(resolve_device(tcfg.device, "train.device")), "train.device_requested": tcfg.device}
    t0 = time.perf_counter()
    with _job_run(rc, f"train/{dataset}/{entry}/seed{seed}", tags, params) as run:
        _log_dataset(run, record)
        live = (lambda step, metrics: run.log_metrics(metrics, step)) if run is not None else None
        trainer = Trainer(net, train_set, tcfg, state, on_log=live, identity=identity, restart_on_mismatch=True)
        with clock("work"):
            history = trainer.fit()
        seconds = time.perf_counter() - t0
        _write_history(history, history_out)
        summary = training_summary(net, trainer, dataset, entry, label, seed, record, seconds)
        atomic_write_json(summary_out, summary)
        if run is not None:
            run.log_history(history)  # the whole curve, also the part before a resume (rows already logged are skipped)
            run.log_artifact(history_out)
            run.log_artifact(summary_out)
        link_checkpoint(state, checkpoint_out)  # with its sha256 sidecar; the state stays until the run is closed
        if run is not None:
            run.log_checkpoint(checkpoint_out)
    remove_checkpoint(state)
    return summary


def training_summary(net: Any, trainer: Any, dataset: str, entry: str, label: str, seed: int, record: dict[str, Any],
                     seconds: float) -> dict[str, Any]:
    """What was trained (train.json): the resolved config, the budget actually run and the architecture sizes.

    Table 3 and the summary are built from these, so they describe the checkpoints, not today's config.
    """
    cfg = to_dict(net.config)
    steps = trainer.step
    return {
        "dataset": dataset, "model": entry, "model_name": net.model_name, "label": label, "seed": seed,
        "model_config": cfg,
        "train_config": trainer.recorded_config(),
        "batch_size": trainer.batch_size,
        "steps": steps,
        "steps_per_epoch": trainer.steps_per_epoch,
        "epochs": steps / trainer.steps_per_epoch,
        "num_train": len(trainer.data),
        "points_per_sample": trainer.config.points_per_sample,
        "parameters": net.parameter_counts(),
        "seconds": seconds,
        "resumed_from_step": trainer.resumed_from,
        "samples_per_second": steps * trainer.batch_size / seconds if seconds > 0 else None,
        "device": str(trainer.device),
        "data_label": record["label"],
        "data_sha256": record["sha256"],
        "final": trainer.history[-1] if trainer.history else {},
        "tail_means": tail_means(trainer.history),
    }


def tail_means(history: list[dict[str, float]], share: float = 0.2) -> dict[str, float]:
    """The mean of every numeric history column over the last ``share`` of the logged steps (at least one row):
    what a learned-gate reads (e.g. a discriminator's accuracy at the end of training), less noisy than one row."""
    if not history:
        return {}
    tail = history[-max(1, int(round(len(history) * share))):]
    out = {}
    for k in tail[-1]:
        vals = [float(r[k]) for r in tail if isinstance(r.get(k), (int, float)) and math.isfinite(float(r[k]))]
        if vals:
            out[k] = sum(vals) / len(vals)
    return out


def _write_history(history: list[dict[str, float]], path: str | Path) -> None:
    import pandas as pd

    atomic_write_text(path, pd.DataFrame(history).to_csv(index=False))


def import_checkpoint(rc: RunConfig, dataset: str, entry: str, seed: int, data_record: str | Path, out: str | Path) -> dict[str, Any]:
    """A published checkpoint as a suite checkpoint: the model class's importer, its prior fitted when it needs one."""
    from baselines.gasp.importer import save_as_suite_checkpoint

    drop_orphan_sidecars(out)
    e = rc.entry(entry)
    source = e.source(dataset)
    splits, record = load_data(data_record)
    _, preset = rc.model_config(entry, dataset, seed)
    with _job_run(rc, f"import/{dataset}/{entry}/seed{seed}", {"dataset": dataset, "model": entry, "seed": seed, "stage": "import"},
                  {f"source.{k}": v for k, v in source.items()}) as run:
        with clock("work"):
            net = e.cls.import_published(source, splits["train"].info, preset=preset, seed=seed)
            save_as_suite_checkpoint(net, out)
        if run is not None:
            run.log_checkpoint(out)
    return {"entry": entry, "source": source, "parameters": net.parameter_counts()["total"]}


def functaset(rc: RunConfig, dataset: str, entry: str, seed: int, data_record: str | Path, checkpoint: str | Path,
              out: str | Path, threads: int = 1) -> dict[str, Any]:
    """The prior stage's first half (Functa: the modulation of every train and test sample, in an inspectable file)."""

    torch.set_num_threads(threads)
    splits, record = load_data(data_record)
    net, _ = load_job_model(rc, checkpoint, dataset, entry, seed, resolve_device(rc.raw["device"], "device"), record)
    with _job_run(rc, f"functaset/{dataset}/{entry}/seed{seed}", {"dataset": dataset, "model": entry, "seed": seed, "stage": "functaset"}) as run:
        with clock("work"):
            meta = net.write_prior_data({"train": splits["train"], "test": splits["test"]}, out, batch_size=EVAL_BATCH)
        if run is not None:
            run.log_metrics({f"{s}_mean_psnr_db": v["mean_psnr_db"] for s, v in meta["splits"].items()}, 0)
    return meta


def fit_prior(rc: RunConfig, dataset: str, entry: str, seed: int, checkpoint: str | Path, prior_data: str | Path,
              out: str | Path, threads: int = 1) -> dict[str, Any]:
    """The prior stage's second half (Functa: a normalizing flow on the train modulations), saved into a full checkpoint."""
    from ..checkpoint import save_checkpoint

    drop_orphan_sidecars(out)
    torch.set_num_threads(threads)
    net, payload = load_job_model(rc, checkpoint, dataset, entry, seed, resolve_device(rc.raw["device"], "device"))
    with _job_run(rc, f"fit_prior/{dataset}/{entry}/seed{seed}", {"dataset": dataset, "model": entry, "seed": seed, "stage": "fit_prior"}) as run:
        with clock("work"):
            stats = net.fit_prior(str(prior_data), seed=seed)
        if run is not None:
            run.log_metrics(stats, 0)
    payload = {**payload, "model_state": {k: v.cpu() for k, v in net.state_dict().items()}, "prior_stats": stats}
    payload.pop("format_version", None)
    save_checkpoint(out, payload)
    return stats


# ---------------------------------------------------------------------------------------------- evaluation


def reference(rc: RunConfig, dataset: str, seed: int, data_record: str | Path, json_out: str | Path, features_out: str | Path,
              extractor_out: str | Path, threads: int = 1) -> dict[str, Any]:
    """The dataset's reference: the feature extractor, real features, the floor/ceiling rows, the train-mean baseline."""
    from ..eval.reference import build_reference

    drop_orphan_sidecars(extractor_out)  # an extractor.pt.sha256 of an earlier run's extractor, which Snakemake deleted
    torch.set_num_threads(threads)
    cfg = rc.eval_config()
    device = resolve_device(cfg.device, "eval.device")
    splits, record = load_data(data_record)
    with _job_run(rc, f"reference/{dataset}/seed{seed}", {"dataset": dataset, "stage": "reference", "data": record["label"]}) as run:
        _log_dataset(run, record)
        with clock("work"):
            rec, arrays = build_reference(splits, cfg, seed=seed, device=device, extractor_out=extractor_out,
                                          superres=_superres_truth(record, len(splits["test"]), cfg.superres_samples))
        if not Path(extractor_out).exists():  # Snakemake declares it: write a marker saying none was trained here
            atomic_write_json(extractor_out, {"note": f"no suite extractor was trained for {dataset} ({rec['kind']} data or given weights)"})
        rec.update(data_label=record["label"], is_standin=record["is_standin"], data_sha256=record["sha256"])
        buf = __import__("io").BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write(features_out, lambda f: f.write(buf.getbuffer()))
        atomic_write_json(json_out, rec)
        if run is not None:
            run.log_metrics({f"{m}.{k}": e["mean"] for m, ms in rec["metrics"].items() for k, e in ms.items() if _finite(e.get("mean"))}, 0)
            run.log_artifact(json_out)
    return rec


def _superres_truth(record: dict[str, Any], num_test: int, samples: int) -> Any:
    """The first ``samples`` test samples rendered at 2x by the data layer (or why it cannot), from the data config the
    prepared data was built with."""
    from ..data.config import make_config
    from ..data.registry import superres_truth

    return superres_truth(make_config(record["data_config"]), "test", min(samples, num_test))


def _finite(x: Any) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def evaluate(rc: RunConfig, dataset: str, entry: str, seed: int, data_record: str | Path, checkpoint: str | Path,
             reference_json: str | Path | None, reference_features: str | Path | None, metrics_out: str | Path,
             scores_out: str | Path, arrays_out: str | Path, threads: int = 1) -> dict[str, float]:
    """metrics.json, scores.npz (what every number is computed from) and figures.npz of one (dataset, entry, seed)."""
    from ..eval.arrays import figure_arrays
    from ..eval.evaluate import evaluate_model, write_evaluation
    from ..eval.reference import ReferenceData

    torch.set_num_threads(threads)
    cfg = rc.eval_config()
    device = resolve_device(cfg.device, "eval.device")  # one device rule: the model's tensors live here
    splits, record = load_data(data_record)
    net, _ = load_job_model(rc, checkpoint, dataset, entry, seed, device, record)
    net.eval()
    e = rc.entry(entry)
    label = type(net).display_label(net.config) + (" (official checkpoint)" if e.imported else "")
    ref = ReferenceData.load(reference_json, reference_features) if reference_json else None
    data = _eval_data(splits, record)
    with _job_run(rc, f"evaluate/{dataset}/{entry}/seed{seed}", {"dataset": dataset, "model": entry, "label": label, "seed": seed,
                                                                 "stage": "evaluate", "data": record["label"]},
                  {f"eval.{k}": v for k, v in to_dict(cfg).items()}) as run:
        _log_dataset(run, record)
        with clock("work"):
            ev = evaluate_model(net, data, cfg, entry=entry, label=label, seed=seed, run=rc.run, reference=ref,
                                generation=e.generation, extra_steps=tuple(cfg.extra_inference_steps))
        write_evaluation(ev, metrics_out, scores_out)
        figs = rc.raw["figures"]
        # samples for the figures whenever the model can draw them without a separate prior stage, even for an entry
        # whose generation metrics are off (an ablation question without FID still shows each variant's samples)
        samples = figs["num_samples"] if e.generation or not e.cls.separate_prior_stage else 0
        with clock("work"):
            arrays = figure_arrays(net, data, num_samples=samples, num_examples=figs["num_examples"], seed=seed,
                                   superres_truth=None if ref is None else ref.superres_truth())
        arrays.update(dataset=np.array(dataset), model=np.array(entry), label=np.array(label), data_label=np.array(record["label"]))
        buf = __import__("io").BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write(arrays_out, lambda f: f.write(buf.getbuffer()))
        if run is not None:
            run.log_metrics({k: v["mean"] for k, v in ev.metrics.items() if _finite(v.get("mean"))}, 0)
            run.log_artifact(metrics_out)
    return ev.provenance["stage_seconds"]


def timing(rc: RunConfig, dataset: str, seed: int, data_record: str | Path, checkpoints: dict[str, str], out: str | Path,
           threads: int = 1) -> Path:
    """Tables 2 and 5 for one dataset: every entry that can reconstruct, timed interleaved in one process.

    ``eval.timing_models``: "trained" times the trained checkpoints (``checkpoints``, entry -> path);
    "paper" times untrained models at the dataset's paper architecture (Table 3's VAMoH preset, Functa at
    width 512, depth 15), whose speed does not depend on their weights.
    """
    from ..eval.evaluate import evaluate_timing, timing_candidates, write_timing_file

    torch.set_num_threads(threads)
    cfg = rc.eval_config()
    device = resolve_device(cfg.device, "eval.device")
    splits, record = load_data(data_record)
    data = _eval_data(splits, record)
    models: dict[str, Any] = {}
    labels: dict[str, str] = {}
    architecture = cfg.timing_models
    for name, e in rc.entries.items():
        if not e.cls.can_reconstruct or e.imported:  # Tables 2/5 time the models the run trains
            continue
        if architecture == "trained":
            net, _ = load_job_model(rc, checkpoints[name], dataset, name, seed, device, record)
        else:
            net = build_model(rc, name, dataset, splits["train"].info, seed, paper=True).to(device)
        models[name] = net.eval()
        labels[name] = type(net).display_label(net.config)
    candidates = timing_candidates(models, tuple(cfg.extra_inference_steps))
    for name in candidates:
        if "@" in name:
            base, steps = name.split("@")
            labels[name] = f"{labels[base]}, run {steps} steps"
    reference_name = next((n for n, m in models.items() if not getattr(m, "inference_steps", False)), None)
    with _job_run(rc, f"timing/{dataset}/seed{seed}", {"dataset": dataset, "stage": "timing", "seed": seed, "data": record["label"]}) as run:
        with clock("work"):
            result = evaluate_timing(candidates, data, cfg, device, reference=reference_name)
        extra = {"architecture": architecture, "parameters": {n: m.parameter_counts()["total"] for n, m in models.items()},
                 "data_label": record["label"]}
        path = write_timing_file(out, result, data, cfg, run=rc.run, seed=seed, device=device, labels=labels, extra=extra)
        if run is not None:
            for g in result["groups"]:
                run.log_metrics({f"{g['task']}.bs{g['batch_size']}.{c}": s["median"] for c, s in g["seconds_per_sample"].items()}, 0)
            run.log_artifact(path)
    return Path(path)


# ---------------------------------------------------------------------------------------------- aggregate, tables, figures


def aggregate(rc: RunConfig, metrics_files: list[str], timing_files: list[str], reference_files: list[str], data_records: list[str],
              out: str | Path):
    """One tidy table from every metrics.json, timing.json and reference.json."""
    from ..eval.tidy import rows_from_metrics, rows_from_reference, rows_from_timing, write_tidy

    records = {r["dataset"]: r for r in map(_record, data_records)}
    rows = []
    for path in metrics_files:
        rows += rows_from_metrics(path)
    for path in timing_files:
        rows += rows_from_timing(path)
    for path in reference_files:
        ref = json.loads(Path(path).read_text())
        rec = records[ref["dataset"]]
        rows += rows_from_reference(path, rec["label"], rec["is_standin"])
    with clock("work"):
        return write_tidy(rows, out)


def tables(rc: RunConfig, tidy_csv: str | Path, train_summaries: list[str], out_dir: str | Path) -> list[Path]:
    """Tables 1-5 and the reconstruction table; Table 3 from what the checkpoints were trained with."""
    from ..report.tables import write_tables

    summaries = [json.loads(Path(p).read_text()) for p in train_summaries]
    with clock("work"):
        return write_tables(tidy_csv, summaries, Path(out_dir))


def figures(rc: RunConfig, tidy_csv: str | Path, arrays: list[str], histories: list[str], train_summaries: list[str],
            data_records: list[str], out_dir: str | Path) -> list[Path]:
    from ..report.figures import write_figures

    summaries = [json.loads(Path(p).read_text()) for p in train_summaries]
    labels = {r["dataset"]: r["label"] for r in map(_record, data_records)}
    with clock("work"):
        return write_figures(tidy_csv, [Path(p) for p in arrays], list(zip(summaries, map(Path, histories))), Path(out_dir), labels)


def summary(rc: RunConfig, tidy_csv: str | Path, references: list[str], out_md: str | Path, out_html: str | Path,
            trained: list[str] = (), data_records: list[str] = ()) -> list[Path]:
    """The one-page summary: each claim of the paper, what was measured, a verdict by a fixed rule (its learned-gates
    read what was trained, train.json; its intervals cluster test samples by source, from the data records)."""
    from ..report.summary import write_summary

    refs, runs, data = ([json.loads(Path(p).read_text()) for p in files] for files in (references, trained, data_records))
    with clock("work"):
        return write_summary(tidy_csv, refs, out_md, out_html, f"Summary of run '{rc.run}': the paper's claims, measured", runs, data)


def report(rc: RunConfig, files: list[str], figures_dir: str | Path, out: str | Path) -> str:
    """The MLflow report run: every table file, the summary and every figure as artifacts of one run."""
    from .. import tracking

    figure_files = sorted(Path(figures_dir).glob("*.png"))
    with clock("work"):  # this rule's work is the logging
        run_id = tracking.report_run(rc.tracking_uri, rc.experiment, tables=files, figures=figure_files)
    atomic_write_json(out, {"report_run_id": run_id, "tracking_uri": rc.tracking_uri, "experiment": rc.experiment})
    return run_id



# ---------------------------------------------------------------------------------------------- ablations


def ablations(rc: RunConfig, tidy_csv: str | Path, train_summaries: list[str], checkpoints: list[str], data_records: list[str],
              out_dir: str | Path, threads: int = 1, references: list[str] = (), figure_arrays: list[str] = ()) -> list[Path]:
    """The ablation report (``vamoh.report.ablations``): per question of the config's ``ablations`` its tables,
    figures and a generated answer, and ablations.md holding them all.

    ``train_summaries`` and ``checkpoints`` are in the same order, one per (dataset, entry, seed) the
    questions compare; the checkpoints give what the tidy table lacks (the test ELBO, the encoder's time).
    ``references``: each dataset's reference.json (the feature extractor's quality gate); ``figure_arrays``: the
    figures.npz of each compared entry's first seed (its sample grid and reconstruction row).
    """
    from ..eval import keys
    from ..eval.io import read_json
    from ..report.figures import load_arrays

    import platform

    from ..eval.timing import describe_device
    from ..report.ablations import measure, write_ablation_report
    from ..train import load_model

    torch.set_num_threads(threads)
    cfg = rc.eval_config()
    device = resolve_device(cfg.device, "eval.device")
    summaries = [json.loads(Path(p).read_text()) for p in train_summaries]
    jobs = {(s["dataset"], s["model"], int(s["seed"])): c for s, c in zip(summaries, checkpoints, strict=True)}
    test_batches = {}
    for path in data_records:
        splits, record = load_data(path)
        test_batches[record["dataset"]] = _eval_data(splits, record).test_batches
    load = lambda path: load_model(path, device)[0].eval()  # noqa: E731
    with clock("work"):
        measured = measure(rc.ablations(), jobs, test_batches, load, cfg.timing_repeats, cfg.timing_warmup)
    dev = describe_device(device)
    train_hours = sum(s["seconds"] for s in summaries) / 3600
    context = {
        "run": rc.run, "encoder_repeats": cfg.timing_repeats, "encoder_warmup": cfg.timing_warmup,
        "device": f"{dev.get('device', '')}: {dev.get('gpu') or dev.get('cpu') or platform.processor()}, {threads} thread(s) per job",
        "generation": f"{cfg.num_samples} generated samples x {cfg.num_sets} sets per seed",
        "about": [f"Datasets {rc.datasets}, seeds {rc.seeds}, {len(jobs)} trained (dataset, variant, seed) jobs; their training took "
                  f"{train_hours:.2f} h in all (train.json's training seconds: the training loop, without each job's startup, "
                  f"data loading and logging, which the run's Snakemake benchmarks include).",
                  f"Evaluation: {cfg.num_samples} generated samples x {cfg.num_sets} sets, feature extractor '{cfg.feature_extractor}', "
                  f"completion on {cfg.completion_samples} test samples; device {dev.get('device', '')}."],
    }
    context["figure_seed"] = rc.seeds[0]
    records = {}
    for path in references:
        rec = read_json(path, keys.REFERENCE_SCHEMA)
        records[rec["dataset"]] = rec
    arrays = {}
    for path in figure_arrays:
        a = load_arrays(path)
        arrays[(str(a["dataset"]), str(a["model"]))] = a
    with clock("work"):
        return write_ablation_report(rc.ablations(), tidy_csv, summaries, measured, out_dir, context, references=records,
                                     arrays=arrays if figure_arrays else None)
