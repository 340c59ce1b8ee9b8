"""The evaluation's JSON outputs: ``metrics.json``, ``timing.json`` and ``reference.json``.

A reader (Snakemake, the report, MLflow logging) never sees a half-written file: every write goes
through ``vamoh.io.atomic_write_json`` (temporary file, fsync, rename; strict JSON, non-finite floats
as null). Where a file goes is the caller's business: the workflow passes every path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..checks import DataError, check
from ..io import atomic_write_json
from . import keys


def check_provenance(provenance: dict[str, Any], where: str) -> None:
    """Raise ``DataError`` naming the missing provenance keys."""
    missing = [k for k in keys.REQUIRED_PROVENANCE if k not in provenance]
    check(not missing, f"{where}: provenance lacks {missing}; every output must carry {list(keys.REQUIRED_PROVENANCE)}", DataError)


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
    check(path.is_file(), f"evaluation output {path} is a directory; expected a JSON file", DataError)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a JSON file ({err}); the file is truncated, corrupt or not one of our outputs") from None
    check(isinstance(data, dict), f"{path}: holds a JSON {type(data).__name__}, expected an object", DataError)
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
