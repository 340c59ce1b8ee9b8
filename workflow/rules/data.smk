rule init_tracking:
    """Create the MLflow store and experiment once, before any job logs to it (concurrent first writers crash SQLite)."""
    output:
        f"{RES}/tracking.json",
    log:
        f"{LOGS}/init_tracking.log",
    benchmark:
        f"{RES}/benchmarks/init_tracking.tsv"
    params:
        uri=RC.tracking_uri,
        experiment=RC.experiment,
    threads: 1
    resources:
        mem_mb=res("init_tracking", "mem_mb", 1000),
        runtime=res("init_tracking", "runtime", 10),
    conda:
        ENV
    script:
        "../scripts/init_tracking.py"


rule prepare_data:
    """Materialise a dataset (real files or the offline stand-in) once into a checksummed cache."""
    output:
        f"{RES}/data/{{dataset}}.json",
    log:
        f"{LOGS}/data/{{dataset}}.log",
    benchmark:
        f"{RES}/benchmarks/data/{{dataset}}.tsv"
    params:
        settings=lambda wc: fingerprints.data_settings(RC, wc.dataset),
    threads: 1
    resources:
        mem_mb=res("prepare_data", "mem_mb", 2000),
        runtime=res("prepare_data", "runtime", 30),
    conda:
        ENV
    script:
        "../scripts/prepare_data.py"


rule reference:
    """The dataset's reference: the feature extractor (trained on the train split when it is the suite's), the
    real features, the floor (held-out real) and ceiling (noise) rows, and the train-mean reconstruction baseline."""
    input:
        data=f"{RES}/data/{{dataset}}.json",
        tracking=ancient(f"{RES}/tracking.json"),  # where results are logged decides nothing that is computed
    output:
        json=ref("reference.json"),
        features=ref("features.npz"),
        extractor=ref("extractor.pt"),
    log:
        f"{LOGS}/{{dataset}}/reference.log",
    benchmark:
        f"{RES}/benchmarks/{{dataset}}/reference.tsv"
    params:
        settings=fingerprints.reference_settings(RC),
        seed=REFERENCE_SEED,
    threads: threads_for("reference")
    resources:
        mem_mb=res("reference", "mem_mb", 4000),
        runtime=res("reference", "runtime", 60),
        gpu=res("reference", "gpu", 0),
    conda:
        ENV
    script:
        "../scripts/reference.py"
