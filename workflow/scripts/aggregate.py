from vamoh.pipeline.warm import handoff

handoff(snakemake, __file__)  # the job runs in a child of the warm server (vamoh.pipeline.warm), or here when that fails

from vamoh.pipeline import report_stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    i = snakemake.input
    frame = report_stages.aggregate(run_config(snakemake.config), list(i.metrics), list(i.timing), list(i.references), list(i.data),
                             snakemake.output[0])
    print(f"{len(frame)} rows")
