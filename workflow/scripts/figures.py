from vamoh.pipeline.warm import handoff

handoff(snakemake, __file__)  # the job runs in a child of the warm server (vamoh.pipeline.warm), or here when that fails

from vamoh.pipeline import report_stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    i = snakemake.input
    print(report_stages.figures(run_config(snakemake.config), i.tidy, list(i.arrays), list(i.histories), list(i.summaries), list(i.data),
                         snakemake.output.figures))
