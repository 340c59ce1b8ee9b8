"""The ablation questions' own measurements: what the tidy table lacks and only the checkpoints give.

- the test ELBO per point (``test_elbo_per_point``): the paper's bound per test sample over its number of points;
- the encoder's time on partially observed inputs (``encoder_timings``), where centroids and neighbourhoods must be
  recomputed every call, the question's variants interleaved in one process so they share the machine's load.

``measure`` runs both for every question of a run; ``write_measured`` and ``read_measured`` carry its rows through
measured.json (the ``ablation_measure`` rule's output) to the report, which never loads a model. The rows go
through JSON unchanged: floats are written by ``repr`` (exact), seeds stay ints, and a non-finite value comes back
as NaN, which the report drops exactly as it drops a non-finite measurement.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..io import atomic_write_json
from .ablation_metrics import ENCODER_KEEP, question_metrics
from .io import read_json

MEASURED_SCHEMA = "vamoh.eval.ablation_measured/1"  # measured.json: the rows of ``measure`` and how they were measured
COLUMNS = ["question", "dataset", "model", "seed", "metric", "value"]


def test_elbo_per_point(net: Any, batches: Iterable[Any], seed: int) -> np.ndarray | None:
    """Per test sample, the model's test bound per observed point (nats per point; ``test_elbo_per_point``, the
    paper's eq. 16 whatever the training objective), one z per sample drawn from ``seed``; None for a model
    without one."""
    hook = getattr(net, "test_elbo_per_point", None)
    if not callable(hook):
        return None
    g = torch.Generator().manual_seed(seed)
    return np.concatenate([hook(b, generator=g).detach().cpu().numpy() for b in batches])


def observed_subsets(batch: Any, count: int, keep: float, seed: int) -> list[Any]:
    """``count`` copies of ``batch``, each observing its own random ``keep`` fraction of every sample's points."""
    g = torch.Generator().manual_seed(seed)
    D = batch.num_points
    n_keep = max(1, int(round(keep * D)))
    out = []
    for _ in range(count):
        mask = torch.zeros(batch.batch_size, D, dtype=torch.bool)
        for i in range(batch.batch_size):
            mask[i, torch.randperm(D, generator=g)[:n_keep]] = True
        out.append(batch.with_mask(mask))
    return out


def encoder_timings(nets: dict[str, Any], batch: Any, repeats: int, warmup: int, seed: int, keep: float = ENCODER_KEEP) -> dict[str, float]:
    """Median seconds per sample of each model's ``encode`` on ``batch`` observed at a fresh random ``keep``
    fraction of its points every call, measured interleaved (``vamoh.eval.timing.time_interleaved``).

    A fresh subset every call is the case where centroid selection is paid (partial observations, point
    dropout): a fully observed grid's farthest-point plan is cached after the first call. Every model sees
    the same sequence of subsets. Models without ``encode`` are left out.
    """
    from .timing import time_interleaved

    subsets = observed_subsets(batch, warmup + repeats, keep, seed)
    calls = {}
    device = None
    for name, net in nets.items():
        if not callable(getattr(net, "encode", None)):
            continue
        device = net.device
        inputs = iter([s.to(device) for s in subsets])

        def call(net=net, inputs=inputs) -> None:
            b = next(inputs)
            with torch.no_grad():
                net.encode(b.coords, b.features, b.mask)

        calls[name] = call
    if not calls:
        return {}
    stats = time_interleaved(calls, repeats, warmup, device)
    return {name: s.median / batch.batch_size for name, s in stats.items()}


def measure(ablations: dict[str, Any], jobs: dict[tuple[str, str, int], Any], test_batches: dict[str, list[Any]],
            load: Any, repeats: int, warmup: int) -> pd.DataFrame:
    """The questions' own measurements, rows (question, dataset, model, seed, metric, value).

    ``jobs``: (dataset, entry, seed) -> checkpoint; ``load(checkpoint)`` -> the model, ready to run;
    ``test_batches``: dataset -> its test batches. The test ELBO is measured once per entry (question "");
    the encoder is timed per question, its variants interleaved per (dataset, seed).
    """
    wanted = {e for ab in ablations.values() if "test_elbo_per_point" in question_metrics(ab) for e in ab.entries.values()}
    rows = []
    for (d, e, s), ckpt in jobs.items():
        if e not in wanted:
            continue
        vals = test_elbo_per_point(load(ckpt), test_batches[d], seed=s)
        if vals is not None:
            rows.append({"question": "", "dataset": d, "model": e, "seed": s, "metric": "test_elbo_per_point", "value": float(np.mean(vals))})
    for q, ab in ablations.items():
        if "encoder_ms" not in question_metrics(ab):
            continue
        for d, s in sorted({(d, s) for (d, _, s) in jobs}):
            nets = {e: load(jobs[(d, e, s)]) for e in dict.fromkeys(ab.entries.values()) if (d, e, s) in jobs}
            first = test_batches[d][0].samples(0, 1)
            for e, sec in encoder_timings(nets, first, repeats, warmup, seed=s).items():
                rows.append({"question": q, "dataset": d, "model": e, "seed": s, "metric": "encoder_ms", "value": sec * 1e3})
    return pd.DataFrame(rows, columns=COLUMNS)


def write_measured(path: str | Path, measured: pd.DataFrame, about: dict[str, Any]) -> Path:
    """measured.json: ``measure``'s rows, and ``about`` how they were measured (the device record, threads, the
    encoder's repeats and warm-up calls), which the report names."""
    rows = [{"question": str(q), "dataset": str(d), "model": str(m), "seed": int(s), "metric": str(k), "value": float(v)}
            for q, d, m, s, k, v in measured[COLUMNS].itertuples(index=False)]
    return atomic_write_json(path, {"schema": MEASURED_SCHEMA, **about, "rows": rows})


def read_measured(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(``measure``'s rows as it returned them, the rest of the record) from measured.json; a value stored as null
    (JSON has no NaN or inf) comes back as NaN."""
    record = read_json(path, MEASURED_SCHEMA)
    rows = [{**r, "value": math.nan if r["value"] is None else float(r["value"])} for r in record.pop("rows")]
    return pd.DataFrame(rows, columns=COLUMNS), record
