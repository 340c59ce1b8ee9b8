from vamoh.pipeline.warm import handoff

handoff(snakemake, __file__)  # the job runs in a child of the warm server (vamoh.pipeline.warm), or here when that fails

from vamoh.io import atomic_write_json
from vamoh.pipeline.jobclock import clock
from vamoh.pipeline.scriptlog import logged

with logged(snakemake.log[0]):
    with clock("work"):  # this rule's work is creating the store and the experiment
        from vamoh import tracking

        uri = tracking.init_store(snakemake.params.uri)
        experiment_id = tracking.get_or_create_experiment(uri, snakemake.params.experiment)
    browse = {"server": f"mlflow server --host 127.0.0.1 --port 5000 --backend-store-uri {uri}",
              "runs_view": tracking.runs_view(experiment_id)}  # where the runs are (not MLflow's GenAI landing page)
    atomic_write_json(snakemake.output[0], {"uri": uri, "experiment": snakemake.params.experiment, "experiment_id": experiment_id, **browse})
    print(f"MLflow: start `{browse['server']}`, then open {browse['runs_view']}")
