from vamoh.pipeline.warm import handoff

handoff(snakemake, __file__)  # the job runs in a child of the warm server (vamoh.pipeline.warm), or here when that fails

from pathlib import Path

from vamoh.pipeline import stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    i = snakemake.input
    written = stages.ablations(run_config(snakemake.config), i.tidy, list(i.summaries), list(i.checkpoints), list(i.data),
                               Path(snakemake.output.index).parent, snakemake.threads, list(i.references), list(i.arrays))
    print(f"{len(written)} files")
