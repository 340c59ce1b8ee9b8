# VAMoH vs GASP vs Functa: regenerates the paper's Tables 1-5 and figures.
#   snakemake --cores 2                                   # the offline demo (config/config.yaml)
#   snakemake --cores 8 --use-conda --configfile config/paper.yaml
#   snakemake --profile profiles/slurm --configfile config/paper.yaml
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
