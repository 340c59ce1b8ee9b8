from vamoh.pipeline import stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    frame = stages.aggregate(run_config(snakemake.config), list(snakemake.input.metrics), list(snakemake.input.timing),
                             list(snakemake.input.data), snakemake.output[0])
    print(f"{len(frame)} rows")
