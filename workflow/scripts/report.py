from vamoh.pipeline.warm import handoff

handoff(snakemake, __file__)  # the job runs in a child of the warm server (vamoh.pipeline.warm), or here when that fails

from vamoh.pipeline import report_stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    print(report_stages.report(run_config(snakemake.config), list(snakemake.input.tables) + list(snakemake.input.summary), snakemake.input.figures, snakemake.output[0], tracking=snakemake.input.tracking))
