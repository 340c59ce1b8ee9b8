from vamoh.pipeline import stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    i = snakemake.input
    print(stages.figures(run_config(snakemake.config), i.tidy, list(i.arrays), list(i.histories), list(i.summaries), list(i.data),
                         snakemake.output.figures))
