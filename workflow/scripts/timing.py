from vamoh.pipeline.warm import handoff

handoff(snakemake, __file__)  # the job runs in a child of the warm server (vamoh.pipeline.warm), or here when that fails

from vamoh.pipeline import stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    w = snakemake.wildcards
    checkpoints = {k: v for k, v in snakemake.input.items() if k not in ("data", "tracking")}
    print(stages.timing(run_config(snakemake.config), w.dataset, int(w.seed), snakemake.input.data, checkpoints,
                        snakemake.output[0], snakemake.threads, tracking=snakemake.input.tracking))
