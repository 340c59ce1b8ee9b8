"""The suite's stages (prepare, train, evaluate, aggregate, report) as functions the Snakemake rules call."""
