from vamoh.pipeline.warm import handoff

handoff(snakemake, __file__)  # the job runs in a child of the warm server (vamoh.pipeline.warm), or here when that fails

from vamoh.pipeline import report_stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    i = snakemake.input
    print(report_stages.summary(run_config(snakemake.config), i.tidy, list(i.references), snakemake.output.md, snakemake.output.html,
                         list(i.summaries), list(i.data)))
