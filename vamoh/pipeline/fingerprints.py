"""What each job's output depends on, as the text Snakemake stores and compares (the rules' ``settings`` params).

An edited setting reruns exactly the jobs it reaches, and their descendants. A key that changes no output of a job
is left out of its text, so editing it reruns nothing. The evaluation fingerprints take their keys from the typed
config's fields (``vamoh.eval.config.EvalConfig``) minus the exclusions below, each with its reason: a key added to
``EvalConfig`` reaches every evaluation fingerprint unless it is excluded here, on purpose.

These strings are compared with the ones earlier runs stored: a changed text reruns every job it belongs to. Keep
each one byte for byte (the keys, their values as the config gives them, ``canonical``'s formatting) unless a job's
output really changes.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from ..eval.config import EvalConfig

if TYPE_CHECKING:
    from .runconfig import RunConfig

EVAL_KEYS = tuple(f.name for f in fields(EvalConfig))

# the timing job's own keys (rule timing): how Tables 2/5 are measured, and the extra inner-step counts timed
TIMING_KEYS = tuple(k for k in EVAL_KEYS if k.startswith("timing_")) + ("extra_inference_steps",)

# eval keys that change no number of an evaluation job (rule evaluate)
EVALUATE_EXCLUDED = (
    "device",  # where it runs, not what it computes
    *(k for k in TIMING_KEYS if k.startswith("timing_")),  # the timing job's (extra_inference_steps is scored here too)
)

# eval keys that change no output of a dataset's reference stage (rule reference: the feature extractor, the real
# features and the floor/ceiling rows); each is read by the evaluate or timing job only, or changes no number
REFERENCE_EXCLUDED = (
    "device",  # where it runs, not what it computes
    "prc_batch_size",  # memory only: rows of the k-NN distance matrix held at once
    "pointcloud_points", "pointcloud_shapes",  # ShapeNet's 3-D protocol, which the evaluate job samples and compares
    "memorisation_quantile",  # the evaluate job's memorisation test
    *TIMING_KEYS,  # the timing job's
)

EVALUATE_KEYS = tuple(k for k in EVAL_KEYS if k not in EVALUATE_EXCLUDED)
REFERENCE_KEYS = tuple(k for k in EVAL_KEYS if k not in REFERENCE_EXCLUDED)

# train keys that change no checkpoint: the progress bar, the intervals of history rows and checkpoints, TF32 on
# CUDA (results within the run-to-run spread, vamoh.train.TrainConfig), and the per-entry budgets, of which a job's
# own (its max_steps) is put in its text
TRAIN_EXCLUDED = ("progress", "log_every", "checkpoint_every", "max_steps_by_entry", "tf32")
# data keys that change no prepared data: the random points per training sample are drawn in the train job
DATA_EXCLUDED = ("train_points",)


def _check_exclusions() -> None:
    """An excluded key that is no longer a field (renamed, removed) would silently exclude nothing: refuse it."""
    stale = sorted(set(EVALUATE_EXCLUDED + REFERENCE_EXCLUDED) - set(EVAL_KEYS))
    if stale:
        raise RuntimeError(f"vamoh.pipeline.fingerprints excludes {stale}, which are not EvalConfig fields; update the exclusions")


_check_exclusions()


def canonical(obj: Any) -> str:
    """A stable text of a settings dict (sorted keys), what Snakemake stores and compares."""
    return json.dumps(obj, sort_keys=True, default=str)


def data_settings(rc: RunConfig, dataset: str) -> str:
    from ..config import to_dict

    return canonical({k: v for k, v in to_dict(rc.data_config(dataset)).items() if k not in DATA_EXCLUDED})


def train_settings(rc: RunConfig, dataset: str, entry: str, seed: int) -> str:
    from ..config import to_dict

    config, preset = rc.model_config(entry, dataset, seed)
    train = {k: v for k, v in rc.raw["train"].items() if k not in TRAIN_EXCLUDED}
    train["max_steps"] = rc.train_config(seed, None, dataset, entry).max_steps  # this job's own budget only
    return canonical({"model": to_dict(config), "preset": preset, "train": train, "seed": seed,
                      "train_points": rc.data_config(dataset).train_points})


def reference_settings(rc: RunConfig) -> str:
    """Every reference key, the ones the config leaves out as null (the text of a config that sets nothing new
    stays the same)."""
    cfg = rc.raw["eval"]
    return canonical({k: cfg.get(k) for k in REFERENCE_KEYS})


def eval_settings(rc: RunConfig) -> str:
    """The eval keys the config sets, and the figures' (the evaluate job draws the figures' samples and examples)."""
    cfg = {k: v for k, v in rc.raw["eval"].items() if k in EVALUATE_KEYS}
    return canonical({"eval": cfg, "figures": rc.raw["figures"]})


def timing_settings(rc: RunConfig) -> str:
    return canonical({k: v for k, v in rc.raw["eval"].items() if k in TIMING_KEYS})
