from vamoh.pipeline.warm import handoff

handoff(snakemake, __file__)  # the job runs in a child of the warm server (vamoh.pipeline.warm), or here when that fails

from vamoh.pipeline import report_stages
from vamoh.pipeline.scriptlog import logged

with logged(snakemake.log[0]):
    where = report_stages.init_tracking(snakemake.params.uri, snakemake.params.experiment, snakemake.output[0])
    print(f"MLflow: start `{where['server']}`, then open {where['runs_view']}")
