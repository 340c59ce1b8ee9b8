from vamoh.pipeline import stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    print(stages.summary(run_config(snakemake.config), snakemake.input.tidy, list(snakemake.input.references),
                         snakemake.output.md, snakemake.output.html))
