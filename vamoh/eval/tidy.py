"""The tidy table: one row per (dataset, model, seed, metric[, batch size]), the single input of the tables,
the figures, the summary and MLflow's report run.

``tidy_rows`` turns every evaluation output (metrics.json, timing.json, reference.json) into rows;
``write_tidy`` writes them as CSV; ``read_tidy`` reads the CSV (or a DataFrame of rows) back with typed
columns (``values`` as lists, ``is_standin`` as bool, numbers as floats).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io import atomic_write_text
from . import keys
from .io import read_json

COLUMNS = ["dataset", "model", "label", "kind", "seed", "metric", "split", "mean", "std", "n", "values", "batch_size",
           "is_standin", "data_label", "feature_extractor", "num_samples", "device", "note"]
KIND_MODEL, KIND_REFERENCE = "model", "reference"
CALLS_SUFFIX = "_calls"  # time_<task>_calls: one value per measured call, beside time_<task>'s [q25, median, q75, min, max]  # a trained model's row, or a sanity row of the reference stage
NUMERIC = ("mean", "std", "n", "batch_size", "num_samples")
TEXT = ("dataset", "model", "label", "kind", "metric", "split", "data_label", "feature_extractor", "device", "note")


def _split_of(metric: str) -> str:
    return "train" if metric.endswith("_train") else "test" if metric.endswith("_test") else ""


def _device(prov: dict[str, Any]) -> str:
    d = prov.get(keys.PROV_DEVICE) or {}
    if not isinstance(d, dict):
        return str(d)
    where = d.get("gpu") or d.get("cpu") or ""
    return f"{d.get('device', '')}: {where}".strip(": ")


def _values(entry: dict[str, Any]) -> str:
    return json.dumps([None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v for v in (entry.get("values") or [])])


def _row(prov: dict[str, Any], model: str, label: str, kind: str, metric: str, entry: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {"dataset": prov[keys.PROV_DATASET], "model": model, "label": label, "kind": kind, "seed": prov[keys.PROV_SEED],
            "metric": metric, "split": _split_of(metric), "mean": entry.get("mean"), "std": entry.get("std"), "n": entry.get("n"),
            "values": _values(entry), "batch_size": None, "is_standin": bool(prov[keys.PROV_IS_STANDIN]),
            "data_label": prov.get("data_label", prov[keys.PROV_DATASET]), "feature_extractor": prov.get(keys.PROV_FEATURE_EXTRACTOR, ""),
            "num_samples": prov.get(keys.PROV_NUM_SAMPLES, 0), "device": _device(prov), "note": "", **over}


def rows_from_metrics(path: str | Path) -> list[dict[str, Any]]:
    data = read_json(path, keys.METRICS_SCHEMA)
    prov = data["provenance"]
    model, label = prov[keys.PROV_MODEL], prov.get("label", prov[keys.PROV_MODEL])
    rows = [_row(prov, model, label, KIND_MODEL, m, e) for m, e in data["metrics"].items()]
    for name, metrics in (prov.get("inference_variants") or {}).items():
        steps = keys.split_inference_variant(name)[1]
        rows += [_row(prov, name, keys.inference_variant_label(label, steps), KIND_MODEL, m, e) for m, e in metrics.items()]
    return rows


# What the timing rule timed (eval.timing_models), as each timing row's note begins; the summary reads it back.
TIMED_ARCHITECTURE = {"paper": "untrained, at the paper's architecture", "trained": "the trained model"}


def rows_from_timing(path: str | Path) -> list[dict[str, Any]]:
    """Timing rows: the median seconds per sample (mean column), the inter-quartile range (std column), and
    [q25, median, q75, min, max] in ``values``; one per candidate, task and batch size."""
    data = read_json(path, keys.TIMING_SCHEMA)
    prov = data["provenance"]
    labels = prov.get("labels", {})
    params = prov.get("parameters", {})
    arch = TIMED_ARCHITECTURE.get(prov.get("architecture", "trained"), "")
    rows = []
    for group in data["timing"]["groups"]:
        for cand, st in group["seconds_per_sample"].items():
            entry = {"mean": st["median"], "std": st["iqr"], "n": st["repeats"], "values": [st["q25"], st["median"], st["q75"], st["min"], st["max"]]}
            n_params = params.get(keys.split_inference_variant(cand)[0])
            note = f"{arch}, {n_params:,} parameters" if n_params else arch
            rows.append(_row(prov, cand, labels.get(cand, cand), KIND_MODEL, f"time_{group['task']}", entry,
                             batch_size=group["batch_size"], feature_extractor="", num_samples=0, note=note))
            if st.get("samples"):  # every measured call (seconds per sample): the summary's test of who is faster
                calls = {"mean": st["median"], "std": st["iqr"], "n": len(st["samples"]), "values": st["samples"]}
                rows.append(_row(prov, cand, labels.get(cand, cand), KIND_MODEL, f"time_{group['task']}{CALLS_SUFFIX}", calls,
                                 batch_size=group["batch_size"], feature_extractor="", num_samples=0, note=note))
    return rows


def rows_from_reference(path: str | Path, data_label: str, is_standin: bool) -> list[dict[str, Any]]:
    data = read_json(path, keys.REFERENCE_SCHEMA)
    ext = data.get("extractor") or {}
    gen = data.get("generation") or {}
    prov = {keys.PROV_DATASET: data["dataset"], keys.PROV_SEED: data["seed"], keys.PROV_IS_STANDIN: is_standin, "data_label": data_label,
            keys.PROV_FEATURE_EXTRACTOR: ext.get("label", ""), keys.PROV_NUM_SAMPLES: gen.get("num_samples", 0), keys.PROV_DEVICE: {}}
    q = ext.get("quality") or {}
    quality = ""
    if "margin_db" in q:
        quality = (f"extractor {ext.get('label', '')}: held-out reconstruction {q['test_psnr_db']:.2f} dB vs the train-mean image "
                   f"{q['mean_image_psnr_db']:.2f} dB at {q['resolution']}x{q['resolution']} "
                   f"({'passes' if q['passes'] else 'FAILS'} the +{q['gate_db']:g} dB quality gate)")
    rows = []
    for model, metrics in data["metrics"].items():
        for m, e in metrics.items():
            n_samples = e.get("num_samples")
            if isinstance(n_samples, dict):
                n_samples = n_samples.get(_split_of(m), 0)
            generation = m not in keys.RECONSTRUCTION_KEYS + keys.COMPLETION_KEYS
            rows.append(_row(prov, model, keys.REFERENCE_LABELS.get(model, model), KIND_REFERENCE, m, e,
                             num_samples=n_samples if n_samples is not None else prov[keys.PROV_NUM_SAMPLES],
                             feature_extractor=ext.get("label", "") if generation else "", note=quality if generation else ""))
    sr = data.get("superres") or {}
    if sr and not sr.get("available"):  # the dataset cannot render a 2x truth: one row saying why (no number)
        metric = keys.VOXEL_IOU_SUPERRES if data.get("kind") == "voxels" else keys.PSNR_SUPERRES
        rows.append(_row(prov, keys.REF_UPSAMPLED, keys.REFERENCE_LABELS[keys.REF_UPSAMPLED], KIND_REFERENCE, metric, {"mean": None},
                         num_samples=0, feature_extractor="", note=sr.get("description", "")))
    return rows


def tidy_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def write_tidy(rows: list[dict[str, Any]], path: str | Path) -> pd.DataFrame:
    frame = tidy_frame(rows)
    atomic_write_text(path, frame.to_csv(index=False))
    return frame


def _as_list(v: Any, where: str) -> list[float]:
    if isinstance(v, (list, tuple, np.ndarray)):
        return [float("nan") if x is None else float(x) for x in v]
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return []
    try:
        parsed = json.loads(v)
    except (TypeError, ValueError):
        raise ValueError(f"tidy table, {where}: column 'values' holds {v!r}, expected a JSON list of numbers") from None
    return [float("inf") if x is None else float(x) for x in (parsed or [])]


def _as_bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v) and not (isinstance(v, float) and math.isnan(v))


def read_tidy(tidy: pd.DataFrame | str | Path) -> pd.DataFrame:
    """The tidy table with typed columns; missing optional columns are filled (``label`` from ``model``).

    In ``values``, JSON null stands for a non-finite value; for PSNR that is a perfect reconstruction (inf).
    """
    t = pd.read_csv(tidy) if isinstance(tidy, (str, Path)) else tidy.copy()
    required = ("dataset", "model", "seed", "metric", "mean", "values")
    missing = [c for c in required if c not in t.columns]
    if missing:
        raise ValueError(f"tidy table lacks columns {missing} (has {list(t.columns)})")
    for c in COLUMNS:
        if c not in t.columns:
            t[c] = t["model"] if c == "label" else (KIND_MODEL if c == "kind" else None)
    t["values"] = [_as_list(v, f"row {i} ({d}/{m}/{k})") for i, (v, d, m, k) in enumerate(zip(t["values"], t["dataset"], t["model"], t["metric"]))]
    t["is_standin"] = [_as_bool(v) for v in t["is_standin"]]
    for c in NUMERIC:
        t[c] = pd.to_numeric(t[c], errors="coerce").astype(float)
    for c in TEXT:
        t[c] = t[c].astype(object).where(t[c].notna(), "").astype(str)
    t.loc[t["label"] == "", "label"] = t["model"]
    return t[COLUMNS]


def tidy_from_files(metrics_files: list[str], timing_files: list[str], reference_files: list[str], data_records: list[dict[str, Any]],
                    out: str | Path):
    """One tidy table at ``out`` from every metrics.json, timing.json and reference.json; each reference row labelled
    by its dataset's prepared-data record (real or stand-in)."""
    import json

    records = {r["dataset"]: r for r in data_records}
    rows = []
    for path in metrics_files:
        rows += rows_from_metrics(path)
    for path in timing_files:
        rows += rows_from_timing(path)
    for path in reference_files:
        rec = records[json.loads(Path(path).read_text())["dataset"]]
        rows += rows_from_reference(path, rec["label"], rec["is_standin"])
    return write_tidy(rows, out)
