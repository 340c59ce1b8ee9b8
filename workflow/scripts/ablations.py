from vamoh.pipeline.warm import handoff

handoff(snakemake, __file__)  # the job runs in a child of the warm server (vamoh.pipeline.warm), or here when that fails

from pathlib import Path

from vamoh.pipeline import ablation_stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    i = snakemake.input
    written = ablation_stages.ablations(run_config(snakemake.config), i.tidy, list(i.summaries), i.measured,
                                        Path(snakemake.output.index).parent, list(i.references), list(i.arrays))
    print(f"{len(written)} files")
