from vamoh.pipeline.warm import handoff

handoff(snakemake, __file__)  # the job runs in a child of the warm server (vamoh.pipeline.warm), or here when that fails

from vamoh.pipeline import ablation_stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    i = snakemake.input
    print(ablation_stages.ablation_measure(run_config(snakemake.config), list(i.summaries), list(i.checkpoints), list(i.data),
                                           snakemake.output[0], snakemake.threads))
