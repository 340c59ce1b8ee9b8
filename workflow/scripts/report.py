from vamoh.pipeline import stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    print(stages.report(run_config(snakemake.config), list(snakemake.input.tables) + list(snakemake.input.summary), snakemake.input.figures, snakemake.output[0]))
