# VAMoH vs GASP vs Functa: regenerates the paper's Tables 1-5 and figures.
#   snakemake --cores 2                                   # the offline demo (config/config.yaml)
#   snakemake --cores 8 --use-conda --configfile config/paper.yaml
#   snakemake --profile profiles/slurm --configfile config/paper.yaml
import os

from snakemake.utils import min_version

min_version("9.0")


# The config a user names is the config: config/config.yaml (the demo) is read only when no --configfile
# is given. Snakemake would otherwise merge the user's file into the demo's, key by key.
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/ablations.smk"

# config key malloc: the jobs Snakemake starts inherit this process's environment (the warm server too: vamoh.pipeline.warm)
os.environ.update(RC.job_environment(os.environ))


rule all:
    input:
        all_outputs(),
    default_target: True


# `resources` may only name rules of this workflow: a misspelt or removed rule name would otherwise be
# ignored silently and its jobs would run with the small defaults.
_unknown_resources = sorted(set(RC.raw["resources"]) - {r.name for r in workflow.rules})
if _unknown_resources:
    from vamoh.checks import ConfigError

    raise ConfigError(f"resources names no rule of this workflow: {_unknown_resources}; "
                      f"rules: {sorted(r.name for r in workflow.rules)}")

if workflow.is_main_process:  # what will run, before any job (the jobs' own processes re-read this file silently)
    import sys

    from vamoh.pipeline.plan import plan_lines

    print("\n".join(plan_lines(RC)), file=sys.stderr)
