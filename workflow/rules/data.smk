rule init_tracking:
    """Create the MLflow store and experiment once, before any job logs to it (concurrent first writers crash SQLite)."""
    output:
        f"{RES}/tracking.json",
    log:
        f"{LOGS}/init_tracking.log",
    benchmark:
        f"{RES}/benchmarks/init_tracking.tsv"
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
    threads: 1
    resources:
        mem_mb=res("prepare_data", "mem_mb", 2000),
        runtime=res("prepare_data", "runtime", 30),
    conda:
        ENV
    script:
        "../scripts/prepare_data.py"
