rule train:
    """Train one (dataset, model, seed); an interrupted job resumes from train_state.pt when rerun."""
    input:
        data=f"{RES}/data/{{dataset}}.json",
        tracking=f"{RES}/tracking.json",
    output:
        checkpoint=job("checkpoint.pt"),
        history=job("history.csv"),
    log:
        log("train"),
    benchmark:
        bench("train")
    threads: threads_for("train")
    resources:
        mem_mb=res("train", "mem_mb", 4000),
        runtime=res("train", "runtime", 60),
        gpu=res("train", "gpu", 0),
    conda:
        ENV
    script:
        "../scripts/train.py"


rule functaset:
    """Functa stage 2: the modulation of every train and test sample, in an inspectable file."""
    input:
        data=f"{RES}/data/{{dataset}}.json",
        checkpoint=job("checkpoint.pt"),
    output:
        job("modulations.npz"),
    log:
        log("functaset"),
    benchmark:
        bench("functaset")
    threads: threads_for("functaset")
    resources:
        mem_mb=res("functaset", "mem_mb", 4000),
        runtime=res("functaset", "runtime", 60),
        gpu=res("functaset", "gpu", 0),
    conda:
        ENV
    script:
        "../scripts/functaset.py"


rule fit_prior:
    """Functa stage 3: a normalizing flow fitted to the train modulations (generation)."""
    input:
        checkpoint=job("checkpoint.pt"),
        modulations=job("modulations.npz"),
        tracking=f"{RES}/tracking.json",
    output:
        job("fitted.pt"),
    log:
        log("fit_prior"),
    benchmark:
        bench("fit_prior")
    threads: threads_for("fit_prior")
    resources:
        mem_mb=res("fit_prior", "mem_mb", 2000),
        runtime=res("fit_prior", "runtime", 30),
    conda:
        ENV
    script:
        "../scripts/fit_prior.py"
