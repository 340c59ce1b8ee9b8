# Validation, paths and helpers shared by every rule file.
import sys
from pathlib import Path

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

from vamoh.interface import get_model_class
from vamoh.pipeline.runconfig import RunConfig

RC = RunConfig.from_dict(config)
RC.check()  # every typed config is built now: a bad key stops the workflow before any job
RUN = RC.run
RES = f"results/{RUN}"
LOGS = f"logs/{RUN}"
REP = f"reports/{RUN}"
ENV = "../envs/vamoh.yaml"


wildcard_constraints:
    dataset="|".join(RC.datasets),
    model="|".join(RC.models),
    seed=r"\d+",


def job(path):
    """results/{run}/{dataset}/{model}/seed{seed}/<path>"""
    return f"{RES}/{{dataset}}/{{model}}/seed{{seed}}/{path}"


def log(name):
    return f"{LOGS}/{{dataset}}/{{model}}/seed{{seed}}/{name}.log"


def bench(name):
    return f"{RES}/benchmarks/{{dataset}}/{{model}}/seed{{seed}}/{name}.tsv"


def has_prior_stage(model):
    return get_model_class(model).separate_prior_stage


def can_reconstruct(model):
    return get_model_class(model).can_reconstruct


def final_checkpoint(wc):
    """The checkpoint a model is evaluated from: after its prior stage when it has one."""
    name = "fitted.pt" if has_prior_stage(wc.model) else "checkpoint.pt"
    return f"{RES}/{wc.dataset}/{wc.model}/seed{wc.seed}/{name}"


def res(rule, key, default):
    """Per-rule resources from the config's `resources` section."""
    return RC.resources(rule).get(key, default)


def threads_for(rule):
    return RC.resources(rule).get("threads", config["threads"])


def metrics_files():
    return [f"{RES}/{d}/{m}/seed{s}/metrics.json" for d in RC.datasets for m in RC.models for s in RC.seeds]


def figure_files():
    return [f"{RES}/{d}/{m}/seed{s}/figures.npz" for d in RC.datasets for m in RC.models for s in RC.seeds]


def history_files():
    return [f"{RES}/{d}/{m}/seed{s}/history.csv" for d in RC.datasets for m in RC.models for s in RC.seeds]


def timing_files():
    if not any(can_reconstruct(m) for m in RC.models):
        return []
    return [f"{RES}/{d}/timing/seed{s}/timing.json" for d in RC.datasets for s in RC.seeds]


def timing_checkpoints(wc):
    return {m: f"{RES}/{wc.dataset}/{m}/seed{wc.seed}/{'fitted.pt' if has_prior_stage(m) else 'checkpoint.pt'}"
            for m in RC.models if can_reconstruct(m)}


TABLES = ["table1", "table2", "table3", "table4", "table5", "reconstruction"]


def all_outputs():
    return [f"{REP}/{t}.md" for t in TABLES] + [f"{REP}/figures", f"{RES}/report.done"]
