# The ablation target: `snakemake ablations --configfile config/ablations.yaml`. Every variant of every
# question in the config's `ablations` is an entry of RC.entries ("vamoh-mixture-K1", ...), trained and
# evaluated by the same train / evaluate / timing rules as any model, under results/{run}/{dataset}/{entry}/.
# These rules only gather those outputs into the report: ablation_measure measures what only the checkpoints
# give, ablation_report writes the report.
import json

from vamoh.report.ablations import report_files as ablation_report_files

ABLATIONS = RC.ablations()
# (dataset, entry, seed) of every job an ablation question compares, each shared entry once
ABLATION_JOBS = [(d, e, s) for d in RC.datasets for e in dict.fromkeys(e for ab in ABLATIONS.values() for e in ab.entries.values())
                 for s in RC.seeds]
# what the measurements depend on beyond their input files: the questions (which metrics, which entries), and the
# timing settings of the encoder timing; the report depends on the questions (the timing settings reach it through
# measured.json)
ABLATION_MEASURE_SETTINGS = json.dumps({"ablations": config.get("ablations", {}), "timing": fingerprints.timing_settings(RC)}, sort_keys=True)
ABLATION_SETTINGS = json.dumps({"ablations": config.get("ablations", {})}, sort_keys=True)
# what the report writes (vamoh.report.ablations.report_files: one list for this rule and the report)
ABLATION_FILES = ablation_report_files(ABLATIONS, RC.datasets)


rule ablations:
    """Target: the ablation report, reports/{run}/ablations.md and per question its tables, figures and sample
    pictures (a run config without `ablations` is refused here, naming the config to use)."""
    input:
        lambda wc: [f"{REP}/{name}" for name in ablation_report_files(RC.ablations(required=True), RC.datasets)],


rule ablation_measure:
    """What the tidy table lacks and only the checkpoints give: the test ELBO per point of every compared job, and
    the encoder's time on partially observed inputs, each question's variants interleaved in one process per
    (dataset, seed); with the device and threads they were measured on (vamoh.eval.ablation_measure)."""
    input:
        summaries=[f"{RES}/{d}/{e}/seed{s}/train.json" for d, e, s in ABLATION_JOBS],
        checkpoints=[f"{RES}/{d}/{e}/seed{s}/{ENTRIES[e].final_checkpoint}" for d, e, s in ABLATION_JOBS],
        data=expand(f"{RES}/data/{{dataset}}.json", dataset=RC.datasets),
    output:
        f"{RES}/ablations/measured.json",
    log:
        f"{LOGS}/ablation_measure.log",
    benchmark:
        f"{RES}/benchmarks/ablation_measure.tsv"
    params:
        settings=lambda wc: ABLATION_MEASURE_SETTINGS,
    threads: threads_for("ablation_measure")
    resources:
        mem_mb=res("ablation_measure", "mem_mb", 2000),
        runtime=res("ablation_measure", "runtime", 30),
        gpu=res("ablation_measure", "gpu", 0),
    conda:
        ENV
    script:
        "../scripts/ablation_measure.py"


rule ablation_report:
    """Per question: a quality table (mean +- std over seeds, the default marked, the reference rows beside, a mark
    where a Welch test survives the report-wide correction), a speed table apart, every comparison with its
    interval, a figure of every number, a sample grid and reconstruction row per variant, and an answer
    generated from the quality numbers; from the tidy table, the train.json summaries, the reference records,
    the figure arrays and, for the test ELBO and the encoder's time, ablation_measure's measured.json."""
    input:
        tidy=f"{RES}/tidy.csv",
        summaries=[f"{RES}/{d}/{e}/seed{s}/train.json" for d, e, s in ABLATION_JOBS],
        measured=f"{RES}/ablations/measured.json",
        references=[ref("reference.json", d) for d in RC.datasets],
        arrays=[f"{RES}/{d}/{e}/seed{s}/figures.npz" for d, e, s in ABLATION_JOBS if s == RC.seeds[0]],
    output:
        index=f"{REP}/ablations.md",
        tables=[f"{REP}/{name}" for name in ABLATION_FILES if name.endswith((".csv", ".md", ".tex")) and name != "ablations.md"],
        html=[report(f"{REP}/{name}", caption="../report/ablations.rst", category="Ablations") for name in ABLATION_FILES if name.endswith(".html")],
        figures=[report(f"{REP}/{name}", caption="../report/ablations.rst", category="Ablations") for name in ABLATION_FILES if name.endswith(".png")],
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
