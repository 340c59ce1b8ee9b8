rule train:
    """Train one (dataset, model, seed); an interrupted job resumes from train_state.pt when rerun, a forced or
    changed one starts over. train.json records what was trained (Table 3 is built from it)."""
    input:
        data=f"{RES}/data/{{dataset}}.json",
        tracking=ancient(f"{RES}/tracking.json"),  # where results are logged decides nothing that is computed
    output:
        checkpoint=job("checkpoint.pt"),
        history=job("history.csv"),
        summary=job("train.json"),
    log:
        log("train"),
    benchmark:
        bench("train")
    params:
        settings=lambda wc: fingerprints.train_settings(RC, wc.dataset, wc.model, int(wc.seed)),
        state=job("train_state.pt"),  # the running state beside the outputs: not declared, so an interrupted job keeps it
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
    """A separate prior stage, first half (Functa: the modulation of every train and test sample, in an inspectable file)."""
    input:
        data=f"{RES}/data/{{dataset}}.json",
        checkpoint=job("checkpoint.pt"),
        tracking=ancient(f"{RES}/tracking.json"),  # where results are logged decides nothing that is computed
    output:
        job("modulations.npz"),
        job("modulations.json"),  # its metadata, written beside it (baselines.functa.functaset.metadata_path)
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
    """A separate prior stage, second half (Functa: a normalizing flow fitted to the train modulations)."""
    input:
        checkpoint=job("checkpoint.pt"),
        modulations=job("modulations.npz"),
        tracking=ancient(f"{RES}/tracking.json"),  # where results are logged decides nothing that is computed
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


rule import_checkpoint:
    """A published checkpoint (config key `imported`) as the entry "<model>-official": read by the model's importer,
    its generative prior fitted when it needs one, evaluated like every trained model."""
    input:
        imported_source,
        data=f"{RES}/data/{{dataset}}.json",
        tracking=ancient(f"{RES}/tracking.json"),  # where results are logged decides nothing that is computed
    output:
        job("imported.pt"),
    log:
        log("import"),
    params:
        source=lambda wc: json.dumps(ENTRIES[wc.model].source(wc.dataset), sort_keys=True),
    threads: 1
    resources:
        mem_mb=res("import_checkpoint", "mem_mb", 4000),
        runtime=res("import_checkpoint", "runtime", 30),
    conda:
        ENV
    script:
        "../scripts/import_checkpoint.py"
