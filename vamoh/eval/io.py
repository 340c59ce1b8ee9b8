"""Atomic JSON outputs: ``metrics.json`` and ``timing.json`` per (run, dataset, model, seed).

A reader (Snakemake, the report, MLflow logging) never sees a half-written file: every write goes
through ``vamoh.io.atomic_write_text`` (temporary file in the same directory, fsync, ``os.replace``).
On top of it, JSON here is strict: non-finite floats become null.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..checks import DataError, check
from ..io import atomic_write_text  # the project's temp-file + fsync + os.replace helper
from . import keys


def _finite_or_none(value: Any) -> Any:
    """JSON has no inf/nan: non-finite floats become ``None`` (a perfect reconstruction's PSNR is inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy / torch scalars
        return _finite_or_none(value.item())
    return value


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Atomically write ``data`` as indented JSON; inf/nan become null."""
    text = json.dumps(_finite_or_none(data), indent=2, sort_keys=False, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def check_provenance(provenance: dict[str, Any], where: str) -> None:
    """Raise ``DataError`` naming the missing provenance keys."""
    missing = [k for k in keys.REQUIRED_PROVENANCE if k not in provenance]
    check(not missing, f"{where}: provenance lacks {missing}; every output must carry {list(keys.REQUIRED_PROVENANCE)}", DataError)


def output_dir(root: str | Path, run: str, dataset: str, model: str, seed: int) -> Path:
    """``root/<run>/<dataset>/<model>/seed<seed>``: where metrics.json and timing.json of one evaluation go."""
    return Path(root) / str(run) / str(dataset) / str(model) / f"seed{int(seed)}"


def write_metrics(path: str | Path, metrics: dict[str, dict[str, Any]], provenance: dict[str, Any]) -> Path:
    """Write ``metrics.json``: every key of ``keys.METRIC_KEYS``, absent ones as not applicable.

    ``metrics`` maps a metric key to an entry ``{"mean", "std", "n", "values", ...}`` (see
    ``metric_entry``). Unknown keys are refused so a typo cannot create a new column.
    """
    check_provenance(provenance, str(path))
    unknown = sorted(set(metrics) - set(keys.METRIC_KEYS))
    check(not unknown, f"{path}: unknown metric key(s) {unknown}; expected keys from vamoh.eval.keys.METRIC_KEYS", DataError)
    full = {k: metrics.get(k, not_applicable()) for k in keys.METRIC_KEYS}
    return atomic_write_json(path, {"schema": keys.METRICS_SCHEMA, "provenance": provenance, "metrics": full})


def write_timing(path: str | Path, timing: dict[str, Any], provenance: dict[str, Any]) -> Path:
    """Write ``timing.json``: ``timing`` as built by ``vamoh.eval.timing.timing_record``."""
    check_provenance(provenance, str(path))
    return atomic_write_json(path, {"schema": keys.TIMING_SCHEMA, "provenance": provenance, "timing": timing})


def read_json(path: str | Path, schema: str | None = None) -> dict[str, Any]:
    """Read one of our JSON outputs; with ``schema`` check its tag."""
    path = Path(path)
    check(path.exists(), f"evaluation output not found: {path}", DataError)
    data = json.loads(path.read_text(encoding="utf-8"))
    if schema is not None:
        check(data.get("schema") == schema, f"{path}: schema {data.get('schema')!r}, expected {schema!r}", DataError)
    return data


def metric_entry(values: Any, *, n: int | None = None, **extra: Any) -> dict[str, Any]:
    """One metric as ``{"mean", "std", "n", "values", **extra}`` from a 1-d sequence of numbers.

    ``std`` is the sample standard deviation (ddof=1) when there are two or more values, else 0.
    ``values`` is kept verbatim (five per-set numbers for generation; per-sample lists are passed
    as ``values=None`` by callers that do not want them in the file, with ``n`` given).
    """
    import numpy as np

    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    check(arr.size > 0, "metric_entry: no values", DataError)
    with np.errstate(invalid="ignore"):  # inf values (perfect PSNR) give mean inf, std nan -> null
        mean = float(arr.mean())
        std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": mean, "std": std, "n": int(n if n is not None else arr.size), "values": [float(v) for v in arr], **extra}


def not_applicable(note: str = "not applicable to this model/dataset") -> dict[str, Any]:
    return {"mean": None, "std": None, "n": 0, "values": [], "note": note}
