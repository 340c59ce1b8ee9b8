# The ablation target: `snakemake ablations --configfile config/ablations.yaml`. Every variant of every
# question in the config's `ablations` is an entry of RC.entries ("vamoh-mixture-K1", ...), trained and
# evaluated by the same train / evaluate / timing rules as any model, under results/{run}/{dataset}/{entry}/.
# These rules only gather those outputs into the report.
import json

ABLATIONS = RC.ablations()
# (dataset, entry, seed) of every job an ablation question compares, each shared entry once
ABLATION_JOBS = [(d, e, s) for d in RC.datasets for e in dict.fromkeys(e for ab in ABLATIONS.values() for e in ab.entries.values())
                 for s in RC.seeds]
# what the report depends on beyond its input files: the questions, and the timing settings of the encoder timing
ABLATION_SETTINGS = json.dumps({"ablations": config.get("ablations", {}), "timing": RC.timing_settings()}, sort_keys=True)


rule ablations:
    """Target: the ablation report, reports/{run}/ablations.md and one table and figure per question (a run
    config without `ablations` is refused here, naming the config to use)."""
    input:
        lambda wc: [f"{REP}/ablations.md"]
        + [f"{REP}/ablation_{q}.{ext}" for q in RC.ablations(required=True) for ext in ("csv", "md", "tex", "html", "png")],


rule ablation_report:
    """Per question: a table (mean +- std over seeds, the default marked, a significance mark), a figure
    and an answer generated from the numbers; from the tidy table, the train.json summaries and, for the
    test ELBO and the encoder's time, the checkpoints."""
    input:
        tidy=f"{RES}/tidy.csv",
        summaries=[f"{RES}/{d}/{e}/seed{s}/train.json" for d, e, s in ABLATION_JOBS],
        checkpoints=[f"{RES}/{d}/{e}/seed{s}/" + ("fitted.pt" if ENTRIES[e].prior_stage else "checkpoint.pt") for d, e, s in ABLATION_JOBS],
        data=expand(f"{RES}/data/{{dataset}}.json", dataset=RC.datasets),
    output:
        index=f"{REP}/ablations.md",
        values=f"{REP}/ablation_values.csv",
        tables=expand(f"{REP}/ablation_{{q}}.{{ext}}", q=list(ABLATIONS), ext=["csv", "md", "tex"]),
        html=[report(f"{REP}/ablation_{q}.html", caption="../report/ablations.rst", category="Ablations") for q in ABLATIONS],
        figures=[report(f"{REP}/ablation_{q}.png", caption="../report/ablations.rst", category="Ablations") for q in ABLATIONS],
    log:
        f"{LOGS}/ablations.log",
    benchmark:
        f"{RES}/benchmarks/ablations.tsv"
    params:
        settings=lambda wc: ABLATION_SETTINGS,
    threads: threads_for("ablation_report")
    resources:
        mem_mb=res("ablation_report", "mem_mb", 2000),
        runtime=res("ablation_report", "runtime", 30),
    conda:
        ENV
    script:
        "../scripts/ablations.py"
