from vamoh.pipeline.warm import handoff

handoff(snakemake, __file__)  # the job runs in a child of the warm server (vamoh.pipeline.warm), or here when that fails

from pathlib import Path

from vamoh.pipeline import stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    print(stages.tables(run_config(snakemake.config), snakemake.input.tidy, list(snakemake.input.summaries),
                        Path(snakemake.output[0]).parent))
