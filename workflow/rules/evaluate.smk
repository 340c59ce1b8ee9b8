rule evaluate:
    """Generation (FID / KID / precision / recall / density / coverage on train and test embeddings),
    reconstruction PSNR, completion, mixture statistics, what every number is computed from (scores.npz),
    and the arrays the figures show, for one (dataset, model, seed)."""
    input:
        data=f"{RES}/data/{{dataset}}.json",
        checkpoint=final_checkpoint,
        reference=ref("reference.json"),
        features=ref("features.npz"),
        tracking=ancient(f"{RES}/tracking.json"),  # where results are logged decides nothing that is computed
    output:
        metrics=job("metrics.json"),
        scores=job("scores.npz"),
        arrays=job("figures.npz"),
    log:
        log("evaluate"),
    benchmark:
        bench("evaluate")
    params:
        settings=fingerprints.eval_settings(RC),
    threads: threads_for("evaluate")
    resources:
        mem_mb=res("evaluate", "mem_mb", 4000),
        runtime=res("evaluate", "runtime", 60),
        gpu=res("evaluate", "gpu", 0),
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule timing:
    """Tables 2 and 5: reconstruction and super-reconstruction time of every model that can reconstruct,
    measured interleaved in one process (VAMoH, Functa (3), Functa (10))."""
    input:
        unpack(timing_checkpoints),
        data=f"{RES}/data/{{dataset}}.json",
        tracking=ancient(f"{RES}/tracking.json"),  # where results are logged decides nothing that is computed
    output:
        f"{RES}/{{dataset}}/timing/seed{{seed}}/timing.json",
    log:
        f"{LOGS}/{{dataset}}/timing/seed{{seed}}.log",
    benchmark:
        f"{RES}/benchmarks/{{dataset}}/timing/seed{{seed}}.tsv"
    params:
        settings=timing_settings,
    threads: threads_for("timing")
    resources:
        mem_mb=res("timing", "mem_mb", 4000),
        runtime=res("timing", "runtime", 30),
        gpu=res("timing", "gpu", 0),
    conda:
        ENV
    script:
        "../scripts/timing.py"
