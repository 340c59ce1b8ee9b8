"""What a run will do, in a few lines: printed by the workflow when it starts and by ``vamoh check-config``.

A researcher who starts a paper run sees, before any job, the settings each model will be trained and
evaluated with (the resolved presets and overrides), so a config that is not the one they meant is
caught before hours of compute, not after.
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import fingerprints
from .runconfig import RunConfig

# the settings shown per model, when its config has them (the rest are summarised by the settings hash)
SHOWN = ("K", "dim_z", "width", "depth", "latent_dim", "inner_steps", "hypernet_hidden", "generator_hidden", "function_hidden",
         "flow_layers", "epochs", "batch_size", "lr", "lr_g", "lr_d", "warmup_epochs", "compute_dtype")


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "[" + ",".join(map(str, v)) + "]"
    return str(v)


def plan_lines(rc: RunConfig) -> list[str]:
    """One header line, one line per (dataset, model entry) with its resolved settings, one line for evaluation."""
    from ..config import to_dict

    seeds = rc.seeds
    lines = [f"vamoh plan: run {rc.run!r}: {len(rc.datasets)} datasets x {len(rc.entries)} models x {len(seeds)} seeds "
             f"(data source {rc.raw['data']['source']!r}, device {rc.raw['device']!r})"]
    train = {k: v for k, v in rc.raw["train"].items() if k in ("epochs", "max_steps", "batch_size") and v is not None}
    if train:
        lines.append("  train overrides for every model: " + " ".join(f"{k}={_value(v)}" for k, v in train.items()))
    for dataset in rc.datasets:
        data = rc.data_config(dataset)
        sizes = " ".join(f"{k}={getattr(data, k)}" for k in ("n_train", "n_test") if getattr(data, k) is not None)
        lines.append(f"  {dataset}: {data.source} data{' ' + data.path if data.path else ''}{' ' + sizes if sizes else ''}")
        for name, entry in rc.entries.items():
            if entry.imported:
                source = entry.source(dataset)
                if source is not None:
                    lines.append(f"    {name:<10} imported from {source['path']}" + (f" (+ {source['modulations']})" if source.get("modulations") else ""))
                continue
            config, preset = rc.model_config(name, dataset, seeds[0])
            d = to_dict(config)
            for key in ("epochs", "batch_size"):  # what the trainer will use: train.* wins over the model's own
                if key in train and key in d:
                    d[key] = f"{_value(train[key])}(train.{key})"
            budget = rc.train_config(seeds[0], None, dataset, name).max_steps
            if budget is not None:
                d["max_steps"] = budget
                if "epochs" not in train:  # with train.epochs null the trainer runs exactly max_steps steps
                    d.pop("epochs", None)
            shown = " ".join(f"{k}={_value(d[k])}" for k in (*SHOWN, "max_steps") if k in d)
            digest = hashlib.sha256(fingerprints.train_settings(rc, dataset, name, seeds[0]).encode()).hexdigest()[:8]
            lines.append(f"    {name:<10} preset {preset:<11} {shown} [settings {digest}]")
    ev = rc.eval_config()
    lines.append(f"  evaluation: extractor {ev.feature_extractor}, {ev.num_sets} sets x {ev.num_samples} samples, "
                 f"max_real={ev.max_real or 'all'}, timing {ev.timing_models} models, batch sizes {list(ev.timing_batch_sizes)}")
    return lines
