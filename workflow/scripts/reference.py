from vamoh.pipeline.warm import handoff

handoff(snakemake, __file__)  # the job runs in a child of the warm server (vamoh.pipeline.warm), or here when that fails

from vamoh.pipeline import stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    out = snakemake.output
    rec = stages.reference(run_config(snakemake.config), snakemake.wildcards.dataset, int(snakemake.params.seed), snakemake.input.data,
                           out.json, out.features, out.extractor, snakemake.threads, tracking=snakemake.input.tracking)
    print({k: v for k, v in rec.items() if k != "metrics"})
