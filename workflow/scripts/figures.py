from vamoh.pipeline import stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    print(stages.figures(run_config(snakemake.config), snakemake.input.tidy, snakemake.output.figures))
