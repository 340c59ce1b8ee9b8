from vamoh.io import atomic_write_json
from vamoh.pipeline.scriptlog import logged, run_config

with logged(snakemake.log[0]):
    from vamoh import tracking

    rc = run_config(snakemake.config)
    uri = tracking.init_store(rc.tracking_uri)
    experiment_id = tracking.get_or_create_experiment(uri, rc.experiment)
    atomic_write_json(snakemake.output[0], {"uri": uri, "experiment": rc.experiment, "experiment_id": experiment_id})
