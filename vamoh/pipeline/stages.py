"""One function per rule of data, training, evaluation and timing (the report's: ``report_stages``; the ablations':
``ablation_stages``): glue. Each receives every path it reads and writes (the rule's input, output and params) and its
threads, calls the package code that does the work and writes its outputs atomically; none builds a results path or
branches on a model's or dataset's name. What stages share (MLflow run, data, device, model) is ``vamoh.pipeline.jobs``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ..checks import resolve_device
from ..config import to_dict
from ..io import atomic_write_json, atomic_write_npz, drop_orphan_sidecars
from . import fingerprints
from .jobclock import clock
from .jobs import (EVAL_BATCH, build_model, eval_data, finite_means, job_run, load_data, load_job_model, log_dataset, start_eval_job,
                   superres_truth, timing_lineup, train_tracking)
from .runconfig import RunConfig


def prepare_data(rc: RunConfig, dataset: str, out: str | Path) -> dict[str, Any]:
    """Materialise ``dataset`` once into the cache; ``out`` (json) records where and what it is, with its checksum."""
    from ..data import prepare
    from ..data.cache import prepared_record

    cfg = rc.data_config(dataset)
    with clock("work"):
        path = prepare(cfg, rc.cache_dir)
    record = prepared_record(dataset, cfg, path)
    atomic_write_json(out, record)
    return record


def train(rc: RunConfig, dataset: str, entry: str, seed: int, data_record: str | Path, checkpoint_out: str | Path,
          history_out: str | Path, summary_out: str | Path, state: str | Path, threads: int = 1, *, tracking: str | Path) -> dict[str, Any]:
    """Train one (dataset, entry, seed). ``state`` (train_state.pt, not a declared output, so Snakemake keeps it) is
    resumed when it is this very job's (settings, data checksum, seed); it is removed only once the MLflow run is
    closed, so a job that fails after training (the store locked) resumes at its last step instead of retraining."""
    from ..checkpoint import link_checkpoint, remove_checkpoint
    from ..train import Trainer, training_summary, write_history

    drop_orphan_sidecars(checkpoint_out)  # Snakemake deleted the checkpoint (a forced, changed or failed run), not its sidecar
    torch.set_num_threads(threads)
    splits, record = load_data(data_record, rc.data_config(dataset).train_points)
    net = build_model(rc, entry, dataset, splits["train"].info, seed)
    tcfg = rc.train_config(seed, splits["train"].train_points, dataset, entry)
    identity = {"dataset": dataset, "data_sha256": record["sha256"], "settings": fingerprints.train_settings(rc, dataset, entry, seed)}
    label = type(net).display_label(net.config)
    tags, params = train_tracking(net, tcfg, dataset, entry, label, seed, record)
    t0 = time.perf_counter()
    with job_run(tracking, f"train/{dataset}/{entry}/seed{seed}", tags, params) as run:
        log_dataset(run, record)
        trainer = Trainer(net, splits["train"], tcfg, state, on_log=lambda step, metrics: run.log_metrics(metrics, step),
                          identity=identity, restart_on_mismatch=True)
        with clock("work"):
            history = trainer.fit()
        seconds = time.perf_counter() - t0
        write_history(history, history_out)
        summary = training_summary(net, trainer, dataset, entry, label, seed, record, seconds)
        atomic_write_json(summary_out, summary)
        run.log_history(history)  # the whole curve, also the part before a resume (rows already logged are skipped)
        run.log_artifact(history_out)
        run.log_artifact(summary_out)
        link_checkpoint(state, checkpoint_out)  # with its sha256 sidecar; the state stays until the run is closed
        run.log_checkpoint(checkpoint_out)
    remove_checkpoint(state)
    return summary


def import_checkpoint(rc: RunConfig, dataset: str, entry: str, seed: int, data_record: str | Path, out: str | Path, *, tracking: str | Path) -> dict[str, Any]:
    """A published checkpoint as a suite checkpoint: the model class's importer, its prior fitted when it needs one."""
    from ..train import save_as_suite_checkpoint

    drop_orphan_sidecars(out)
    e = rc.entry(entry)
    source = e.source(dataset)
    splits, _ = load_data(data_record)
    _, preset = rc.model_config(entry, dataset, seed)
    with job_run(tracking, f"import/{dataset}/{entry}/seed{seed}", {"dataset": dataset, "model": entry, "seed": seed, "stage": "import"},
                 {f"source.{k}": v for k, v in source.items()}) as run:
        with clock("work"):
            net = e.cls.import_published(source, splits["train"].info, preset=preset, seed=seed)
            save_as_suite_checkpoint(net, out)
        run.log_checkpoint(out)
    return {"entry": entry, "source": source, "parameters": net.parameter_counts()["total"]}


def functaset(rc: RunConfig, dataset: str, entry: str, seed: int, data_record: str | Path, checkpoint: str | Path,
              out: str | Path, threads: int = 1, *, tracking: str | Path) -> dict[str, Any]:
    """The prior stage's first half (Functa: the modulation of every train and test sample, in an inspectable file)."""
    torch.set_num_threads(threads)
    splits, record = load_data(data_record)
    net, _ = load_job_model(rc, checkpoint, dataset, entry, seed, resolve_device(rc.raw["device"], "device"), record)
    with job_run(tracking, f"functaset/{dataset}/{entry}/seed{seed}", {"dataset": dataset, "model": entry, "seed": seed, "stage": "functaset"}) as run:
        with clock("work"):
            meta = net.write_prior_data({"train": splits["train"], "test": splits["test"]}, out, batch_size=EVAL_BATCH)
        run.log_metrics({f"{s}_mean_psnr_db": v["mean_psnr_db"] for s, v in meta["splits"].items()}, 0)
    return meta


def fit_prior(rc: RunConfig, dataset: str, entry: str, seed: int, checkpoint: str | Path, prior_data: str | Path,
              out: str | Path, threads: int = 1, *, tracking: str | Path) -> dict[str, Any]:
    """The prior stage's second half (Functa: a normalizing flow on the train modulations), saved into a full checkpoint."""
    from ..checkpoint import with_model_state

    drop_orphan_sidecars(out)
    torch.set_num_threads(threads)
    net, payload = load_job_model(rc, checkpoint, dataset, entry, seed, resolve_device(rc.raw["device"], "device"))
    with job_run(tracking, f"fit_prior/{dataset}/{entry}/seed{seed}", {"dataset": dataset, "model": entry, "seed": seed, "stage": "fit_prior"}) as run:
        with clock("work"):
            stats = net.fit_prior(str(prior_data), seed=seed)
        run.log_metrics(stats, 0)
    with_model_state(out, payload, net, prior_stats=stats)
    return stats


def reference(rc: RunConfig, dataset: str, seed: int, data_record: str | Path, json_out: str | Path, features_out: str | Path,
              extractor_out: str | Path, threads: int = 1, *, tracking: str | Path) -> dict[str, Any]:
    """The dataset's reference: the feature extractor, real features, the floor/ceiling rows, the train-mean baseline."""
    from ..eval.reference import build_reference

    drop_orphan_sidecars(extractor_out)  # an extractor.pt.sha256 of an earlier run's extractor, which Snakemake deleted
    job = start_eval_job(rc, data_record, threads)
    cfg, record = job.cfg, job.record
    with job_run(tracking, f"reference/{dataset}/seed{seed}", {"dataset": dataset, "stage": "reference", "data": record["label"]}) as run:
        log_dataset(run, record)
        with clock("work"):
            rec, arrays = build_reference(job.splits, cfg, seed=seed, device=job.device, extractor_out=extractor_out,
                                          superres=superres_truth(record, len(job.splits["test"]), cfg.superres_samples))
        if not Path(extractor_out).exists():  # Snakemake declares it: write a marker saying none was trained here
            atomic_write_json(extractor_out, {"note": f"no suite extractor was trained for {dataset} ({rec['kind']} data or given weights)"})
        rec.update(data_label=record["label"], is_standin=record["is_standin"], data_sha256=record["sha256"])
        atomic_write_npz(features_out, arrays)
        atomic_write_json(json_out, rec)
        run.log_metrics({f"{m}.{k}": v for m, ms in rec["metrics"].items() for k, v in finite_means(ms).items()}, 0)
        run.log_artifact(json_out)
    return rec


def evaluate(rc: RunConfig, dataset: str, entry: str, seed: int, data_record: str | Path, checkpoint: str | Path,
             reference_json: str | Path | None, reference_features: str | Path | None, metrics_out: str | Path,
             scores_out: str | Path, arrays_out: str | Path, threads: int = 1, *, tracking: str | Path) -> dict[str, float]:
    """metrics.json, scores.npz (what every number is computed from) and figures.npz of one (dataset, entry, seed)."""
    from ..eval.arrays import figure_arrays, figure_sample_count
    from ..eval.evaluate import evaluate_model, write_evaluation
    from ..eval.reference import ReferenceData

    job = start_eval_job(rc, data_record, threads)
    cfg, record = job.cfg, job.record
    net, _ = load_job_model(rc, checkpoint, dataset, entry, seed, job.device, record)
    net.eval()
    e = rc.entry(entry)
    label = type(net).display_label(net.config) + (" (official checkpoint)" if e.imported else "")
    ref = ReferenceData.load(reference_json, reference_features) if reference_json else None
    data = eval_data(job.splits, record)
    with job_run(tracking, f"evaluate/{dataset}/{entry}/seed{seed}", {"dataset": dataset, "model": entry, "label": label, "seed": seed,
                                                                "stage": "evaluate", "data": record["label"]},
                 {f"eval.{k}": v for k, v in to_dict(cfg).items()}) as run:
        log_dataset(run, record)
        with clock("work"):
            ev = evaluate_model(net, data, cfg, entry=entry, label=label, seed=seed, run=rc.run, reference=ref,
                                generation=e.generation, extra_steps=tuple(cfg.extra_inference_steps))
        write_evaluation(ev, metrics_out, scores_out)
        figs = rc.raw["figures"]
        with clock("work"):
            arrays = figure_arrays(net, data, num_samples=figure_sample_count(e, figs["num_samples"]), num_examples=figs["num_examples"],
                                   seed=seed, superres_truth=None if ref is None else ref.superres_truth())
        arrays.update(dataset=dataset, model=entry, label=label, data_label=record["label"])
        atomic_write_npz(arrays_out, arrays)
        run.log_metrics(finite_means(ev.metrics), 0)
        run.log_artifact(metrics_out)
    return ev.provenance["stage_seconds"]


def timing(rc: RunConfig, dataset: str, seed: int, data_record: str | Path, checkpoints: dict[str, str], out: str | Path,
           threads: int = 1, *, tracking: str | Path) -> Path:
    """Tables 2 and 5 for one dataset: every entry that can reconstruct, timed interleaved in one process (the trained
    ``checkpoints``, entry -> path, or untrained paper architectures: ``eval.timing_models``)."""
    from ..eval.speed import evaluate_timing, write_timing_file

    job = start_eval_job(rc, data_record, threads)
    cfg, record = job.cfg, job.record
    data = eval_data(job.splits, record)
    models, labels, candidates, reference_name = timing_lineup(rc, dataset, seed, checkpoints, job)
    with job_run(tracking, f"timing/{dataset}/seed{seed}", {"dataset": dataset, "stage": "timing", "seed": seed, "data": record["label"]}) as run:
        with clock("work"):
            result = evaluate_timing(candidates, data, cfg, job.device, reference=reference_name)
        extra = {"architecture": cfg.timing_models, "parameters": {n: m.parameter_counts()["total"] for n, m in models.items()},
                 "data_label": record["label"]}
        path = write_timing_file(out, result, data, cfg, run=rc.run, seed=seed, device=job.device, labels=labels, extra=extra)
        for g in result["groups"]:
            run.log_metrics({f"{g['task']}.bs{g['batch_size']}.{c}": s["median"] for c, s in g["seconds_per_sample"].items()}, 0)
        run.log_artifact(path)
    return Path(path)
