# Validation, paths and helpers shared by every rule file.
import json

from vamoh.pipeline import fingerprints, preflight
from vamoh.pipeline.configfile import load_yaml
from vamoh.pipeline.jobs import timed_entries
from vamoh.pipeline.runconfig import RunConfig

# Validated against the package's schema (workflow/schemas/config.schema.yaml links to it) and every typed
# config built now: a bad key, value or missing file stops the workflow before any job, in one line.
for _configfile in workflow.configfiles:  # Snakemake keeps the last of a key given twice: refuse it, naming the line
    load_yaml(_configfile)
RC = RunConfig.from_dict(config)
preflight.check(RC)  # (the Snakefile checks `resources` against its rules, then prints the plan)
RUN = RC.run
RES = f"results/{RUN}"
LOGS = f"logs/{RUN}"
REP = f"reports/{RUN}"
ENV = "../envs/vamoh.yaml"
ENTRIES = RC.entries  # every model the run trains: the configured models and their declared variants (Functa (10))
REFERENCE_SEED = RC.seeds[0]


wildcard_constraints:
    dataset="|".join(RC.datasets),
    model="|".join(ENTRIES),
    seed=r"\d+",


def job(path):
    """results/{run}/{dataset}/{model}/seed{seed}/<path>"""
    return f"{RES}/{{dataset}}/{{model}}/seed{{seed}}/{path}"


def log(name):
    return f"{LOGS}/{{dataset}}/{{model}}/seed{{seed}}/{name}.log"


def bench(name):
    return f"{RES}/benchmarks/{{dataset}}/{{model}}/seed{{seed}}/{name}.tsv"


def ref(name, dataset="{dataset}"):
    """results/{run}/{dataset}/reference/<name>: the dataset's reference stage."""
    return f"{RES}/{dataset}/reference/{name}"


def final_checkpoint(wc):
    """The checkpoint an entry is evaluated from: imported, or trained and after its prior stage when it has one."""
    return f"{RES}/{wc.dataset}/{wc.model}/seed{wc.seed}/{ENTRIES[wc.model].final_checkpoint}"


def res(rule, key, default):
    """Per-rule resources from the config's `resources` section."""
    return RC.resources(rule).get(key, default)


def threads_for(rule):
    return RC.resources(rule).get("threads", RC.raw["threads"])


def per_job(name, trained_only=False):
    """One path per (dataset, entry, seed) of the run (``trained_only``: without imported checkpoints)."""
    return [f"{RES}/{d}/{m}/seed{s}/{name}" for d, m in RC.jobs() if not (trained_only and ENTRIES[m].imported) for s in RC.seeds]


def imported_source(wc):
    """The published files an imported entry reads (Snakemake inputs, so a replaced file re-imports)."""
    files = ENTRIES[wc.model].source(wc.dataset) or {}
    return [files[k] for k in ("path", "modulations") if files.get(k)]


def timing_files():
    if not timed_entries(RC):
        return []
    timed = RC.eval_config().timing_datasets or RC.datasets
    # untrained paper architectures take the same time whatever the seed: timed once, under the first seed
    seeds = RC.seeds if RC.eval_config().timing_models == "trained" else RC.seeds[:1]
    return [f"{RES}/{d}/timing/seed{s}/timing.json" for d in RC.datasets if d in timed for s in seeds]


def timing_checkpoints(wc):
    """The trained checkpoints timed (none when eval.timing_models is 'paper': untrained paper architectures)."""
    if RC.eval_config().timing_models != "trained":
        return {}
    return {m: f"{RES}/{wc.dataset}/{m}/seed{wc.seed}/checkpoint.pt" for m in timed_entries(RC)}


def timing_settings(wc):
    settings = fingerprints.timing_settings(RC)
    if RC.eval_config().timing_models == "paper":  # the architectures timed are the paper presets
        settings += "".join(str(RC.paper_config(m, wc.dataset, int(wc.seed))) for m in timed_entries(RC))
    return settings


from vamoh.report.tables import TABLE_NAMES as TABLES  # the report's tables (output file stems), from their registry


def all_outputs():
    # beside the reports, what `vamoh recompute` re-derives every number from (scores.npz, the reference features)
    # and each training's curve: deleting one of them makes its job rerun instead of leaving it missing
    recompute_inputs = (per_job("scores.npz") + per_job("history.csv", trained_only=True)
                        + expand(ref("features.npz", "{dataset}"), dataset=RC.datasets))
    return [f"{REP}/{t}.md" for t in TABLES] + [f"{REP}/summary.md", f"{REP}/figures", f"{RES}/report.done"] + recompute_inputs
