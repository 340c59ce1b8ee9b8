"""The ablation rules' stages: glue between ``workflow/rules/ablations.smk`` and the library.

``ablation_measure`` loads the compared checkpoints and measures what the tidy table lacks
(``vamoh.eval.ablation_measure``); ``ablations`` gathers every input of the report and writes it
(``vamoh.report.ablations``), without loading a model.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch

from ..checks import resolve_device
from .jobclock import clock
from .jobs import eval_data, load_data
from .runconfig import RunConfig


def _summaries(paths: list[str]) -> list[dict[str, Any]]:
    return [json.loads(Path(p).read_text()) for p in paths]


def ablation_measure(rc: RunConfig, train_summaries: list[str], checkpoints: list[str], data_records: list[str],
                     out: str | Path, threads: int = 1) -> Path:
    """measured.json: the test ELBO per point and the encoder's time of every compared checkpoint, and the device,
    threads and timing settings they were measured with.

    ``train_summaries`` and ``checkpoints`` are in the same order, one per (dataset, entry, seed) the questions
    compare: each train.json names its checkpoint's job.
    """
    from ..eval.ablation_measure import ENCODER_KEEP, measure, write_measured
    from ..eval.timing import describe_device
    from ..train import load_model

    torch.set_num_threads(threads)
    cfg = rc.eval_config()
    device = resolve_device(cfg.device, "eval.device")
    jobs = {(s["dataset"], s["model"], int(s["seed"])): c for s, c in zip(_summaries(train_summaries), checkpoints, strict=True)}
    test_batches = {}
    for path in data_records:
        splits, record = load_data(path)
        test_batches[record["dataset"]] = eval_data(splits, record).test_batches
    load = lambda path: load_model(path, device)[0].eval()  # noqa: E731
    with clock("work"):
        measured = measure(rc.ablations(), jobs, test_batches, load, cfg.timing_repeats, cfg.timing_warmup)
    about = {"device": describe_device(device), "processor": platform.processor(), "threads": threads,
             "encoder_repeats": cfg.timing_repeats, "encoder_warmup": cfg.timing_warmup, "encoder_keep": ENCODER_KEEP}
    return write_measured(out, measured, about)


def ablations(rc: RunConfig, tidy_csv: str | Path, train_summaries: list[str], measured_json: str | Path, out_dir: str | Path,
              references: list[str] = (), figure_arrays: list[str] = ()) -> list[Path]:
    """The ablation report (``vamoh.report.ablations``): per question of the config's ``ablations`` its tables,
    figures and a generated answer, and ablations.md holding them all.

    ``train_summaries``: the train.json of every (dataset, entry, seed) the questions compare; ``measured_json``: the
    ablation_measure rule's output; ``references``: each dataset's reference.json (the feature extractor's quality
    gate); ``figure_arrays``: the figures.npz of each compared entry's first seed (its sample grid and reconstruction row).
    """
    from ..eval import keys
    from ..eval.ablation_measure import read_measured
    from ..eval.io import read_json
    from ..report.ablation_answers import report_context
    from ..report.ablations import write_ablation_report
    from ..report.pictures import load_arrays

    summaries = _summaries(train_summaries)
    measured, measurement = read_measured(measured_json)
    records = {}
    for path in references:
        rec = read_json(path, keys.REFERENCE_SCHEMA)
        records[rec["dataset"]] = rec
    arrays = {}
    for path in figure_arrays:
        a = load_arrays(path)
        arrays[(str(a["dataset"]), str(a["model"]))] = a
    context = report_context(rc.run, rc.datasets, rc.seeds, summaries, rc.eval_config(), measurement)
    with clock("work"):
        return write_ablation_report(rc.ablations(), tidy_csv, summaries, measured, out_dir, context, references=records,
                                     arrays=arrays if figure_arrays else None)
