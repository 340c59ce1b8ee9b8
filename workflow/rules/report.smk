import os

rule aggregate:
    """One tidy table (dataset, model, seed, metric, ...) from every metrics.json, timing.json and reference.json."""
    input:
        metrics=per_job("metrics.json"),
        timing=timing_files(),
        references=expand(ref("reference.json", "{dataset}"), dataset=RC.datasets),
        data=expand(f"{RES}/data/{{dataset}}.json", dataset=RC.datasets),
    output:
        f"{RES}/tidy.csv",
    log:
        f"{LOGS}/aggregate.log",
    benchmark:
        f"{RES}/benchmarks/aggregate.tsv"
    threads: 1
    resources:
        mem_mb=res("aggregate", "mem_mb", 1000),
        runtime=res("aggregate", "runtime", 10),
    conda:
        ENV
    script:
        "../scripts/aggregate.py"


rule tables:
    """Paper-style Tables 1-5 (CSV, Markdown, LaTeX, HTML) with the paper's values beside ours; Table 3 from
    what the checkpoints were trained with."""
    input:
        tidy=f"{RES}/tidy.csv",
        summaries=per_job("train.json", trained_only=True),
    output:
        expand(f"{REP}/{{table}}.{{ext}}", table=TABLES, ext=["csv", "md", "tex"]),
        [report(f"{REP}/{t}.html", caption=f"../report/{t}.rst", category="Tables") for t in TABLES],
    log:
        f"{LOGS}/tables.log",
    benchmark:
        f"{RES}/benchmarks/tables.tsv"
    params:
        out_dir=lambda w, output: os.path.dirname(output[0]),  # where every table's files go (the outputs above: one set per table)
    threads: 1
    resources:
        mem_mb=res("tables", "mem_mb", 1000),
        runtime=res("tables", "runtime", 10),
    conda:
        ENV
    script:
        "../scripts/tables.py"


rule figures:
    """Generation grids (1x, 2x), reconstructions beside Functa's, completion, entropy and segmentation
    maps, the PSNR distribution (Figure 7) and training curves."""
    input:
        tidy=f"{RES}/tidy.csv",
        arrays=per_job("figures.npz"),
        histories=per_job("history.csv", trained_only=True),
        summaries=per_job("train.json", trained_only=True),
        data=expand(f"{RES}/data/{{dataset}}.json", dataset=RC.datasets),
    output:
        figures=report(directory(f"{REP}/figures"), patterns=["{name}.png"], caption="../report/figures.rst", category="Figures"),
    log:
        f"{LOGS}/figures.log",
    benchmark:
        f"{RES}/benchmarks/figures.tsv"
    threads: 1
    resources:
        mem_mb=res("figures", "mem_mb", 2000),
        runtime=res("figures", "runtime", 20),
    conda:
        ENV
    script:
        "../scripts/figures.py"


rule summary:
    """One page: each claim of the paper, its evidence, what this run measured with its spread, and a verdict."""
    input:
        tidy=f"{RES}/tidy.csv",
        references=expand(ref("reference.json", "{dataset}"), dataset=RC.datasets),
        summaries=per_job("train.json", trained_only=True),
        data=expand(f"{RES}/data/{{dataset}}.json", dataset=RC.datasets),
    output:
        md=f"{REP}/summary.md",
        html=report(f"{REP}/summary.html", caption="../report/summary.rst", category="Summary"),
    log:
        f"{LOGS}/summary.log",
    threads: 1
    resources:
        mem_mb=res("summary", "mem_mb", 1000),
        runtime=res("summary", "runtime", 10),
    conda:
        ENV
    script:
        "../scripts/summary.py"


rule report:
    """An MLflow report run holding Tables 1-5 and the figures."""
    input:
        tables=rules.tables.output,
        summary=rules.summary.output,
        figures=rules.figures.output.figures,
        tracking=f"{RES}/tracking.json",
    output:
        f"{RES}/report.done",
    log:
        f"{LOGS}/report.log",
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb", 1000),
        runtime=res("report", "runtime", 10),
    conda:
        ENV
    script:
        "../scripts/report.py"
