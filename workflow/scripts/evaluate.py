from vamoh.pipeline import stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    w = snakemake.wildcards
    print(stages.evaluate(run_config(snakemake.config), w.dataset, w.model, int(w.seed), snakemake.input.data,
                          snakemake.input.checkpoint, snakemake.output.metrics, snakemake.output.arrays))
