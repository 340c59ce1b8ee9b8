from vamoh.pipeline import stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    print(stages.prepare_data(run_config(snakemake.config), snakemake.wildcards.dataset, snakemake.output[0]))
