from vamoh.pipeline.warm import handoff

handoff(snakemake, __file__)  # the job runs in a child of the warm server (vamoh.pipeline.warm), or here when that fails

from vamoh.pipeline import stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    w = snakemake.wildcards
    meta = stages.functaset(run_config(snakemake.config), w.dataset, w.model, int(w.seed), snakemake.input.data,
                            snakemake.input.checkpoint, snakemake.output[0], snakemake.threads, tracking=snakemake.input.tracking)
    print(meta["splits"])
