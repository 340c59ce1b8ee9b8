from vamoh.pipeline.warm import handoff

handoff(snakemake, __file__)  # the job runs in a child of the warm server (vamoh.pipeline.warm), or here when that fails

from vamoh.pipeline import stages
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    w, i, o = snakemake.wildcards, snakemake.input, snakemake.output
    print(stages.evaluate(run_config(snakemake.config), w.dataset, w.model, int(w.seed), i.data, i.checkpoint, i.reference,
                          i.features, o.metrics, o.scores, o.arrays, snakemake.threads, tracking=snakemake.input.tracking))
