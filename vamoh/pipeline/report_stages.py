"""The stages that bracket a run: the MLflow store before any job (``init_tracking``), and after the jobs the report's
(``workflow/rules/report.smk``): the tidy table, the tables, the figures, the summary and the MLflow report run. The
ablation report's are in ``ablation_stages``."""

from __future__ import annotations

import json
from pathlib import Path

from ..io import atomic_write_json
from .jobclock import clock
from .jobs import read_record, read_tracking
from .runconfig import RunConfig


def init_tracking(uri: str, experiment: str, out: str | Path) -> dict[str, str]:
    """The MLflow store and experiment, once before any job logs; ``out`` (tracking.json) is where every job finds them,
    with the command that serves them and the address of the runs (not MLflow's GenAI landing page)."""
    with clock("work"):  # this rule's work is creating the store and the experiment
        from .. import tracking

        uri = tracking.init_store(uri)
        experiment_id = tracking.get_or_create_experiment(uri, experiment)
    where = {"uri": uri, "experiment": experiment, "experiment_id": experiment_id,
             "server": f"mlflow server --host 127.0.0.1 --port 5000 --backend-store-uri {uri}", "runs_view": tracking.runs_view(experiment_id)}
    atomic_write_json(out, where)
    return where


def aggregate(rc: RunConfig, metrics_files: list[str], timing_files: list[str], reference_files: list[str], data_records: list[str],
              out: str | Path):
    """One tidy table from every metrics.json, timing.json and reference.json."""
    from ..eval.tidy import tidy_from_files

    with clock("work"):
        return tidy_from_files(metrics_files, timing_files, reference_files, [read_record(p) for p in data_records], out)


def tables(rc: RunConfig, tidy_csv: str | Path, train_summaries: list[str], out_dir: str | Path) -> list[Path]:
    """Tables 1-5 and the reconstruction table; Table 3 from what the checkpoints were trained with."""
    from ..report.tables import write_tables

    with clock("work"):
        return write_tables(tidy_csv, [json.loads(Path(p).read_text()) for p in train_summaries], Path(out_dir))


def figures(rc: RunConfig, tidy_csv: str | Path, arrays: list[str], histories: list[str], train_summaries: list[str],
            data_records: list[str], out_dir: str | Path) -> list[Path]:
    from ..report.figures import write_figures

    summaries = [json.loads(Path(p).read_text()) for p in train_summaries]
    labels = {r["dataset"]: r["label"] for r in map(read_record, data_records)}
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


def report(rc: RunConfig, files: list[str], figures_dir: str | Path, out: str | Path, *, tracking: str | Path) -> str:
    """The MLflow report run in the store of ``tracking`` (tracking.json): every table file, the summary and every
    figure as artifacts of one run."""
    from .. import tracking as mlflow_store

    uri, experiment = read_tracking(tracking)
    with clock("work"):  # this rule's work is the logging
        run_id = mlflow_store.report_run(uri, experiment, tables=files, figures=sorted(Path(figures_dir).glob("*.png")))
    atomic_write_json(out, {"report_run_id": run_id, "tracking_uri": uri, "experiment": experiment})
    return run_id
