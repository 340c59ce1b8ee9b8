"""The ablation report: per question of the run config's ``ablations``, tables, figures and an answer.

Every variant of a question is compared with the question's default over the run's seeds. The numbers
come from four places, all per (dataset, entry, seed):

- the tidy table (``vamoh.eval.tidy``): reconstruction and completion PSNR, generation metrics,
  mixture statistics, reconstruction time (the evaluate and timing rules), and the reference stage's
  rows (the held-out real floor, the uniform-noise ceiling, the train-mean baseline);
- the train.json summaries: training samples per second, and the resolved model config, from which
  the table's "setting" column is read (so it shows what the checkpoints were trained with);
- the ablation_measure rule's measured.json (``vamoh.eval.ablation_measure``): the test ELBO per point, and
  the encoder's time on partially observed inputs, where its centroids and neighbourhoods must be recomputed;
- the reference records (reference.json: the feature extractor's quality gate) and the figure arrays
  (figures.npz of each entry's first seed: the sample grids and reconstruction rows).

The parts: the metric registry (``vamoh.eval.ablation_metrics``), the per-seed values and their gates
(``ablation_values``), the statistics (``ablation_stats``: Welch's test per variant and metric, one
multiple-comparison correction over every test of the report), the tables (``ablation_tables``), the
figures (``ablation_figures``) and the prose (``ablation_answers``). This module puts them together:
``write_ablation_report`` writes every file that ``report_files`` names.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..eval.ablation_metrics import question_metrics, speed_metrics
from ..eval.tidy import read_tidy
from ..io import atomic_write_text
from .ablation_answers import answer, saturation_notes, table_notes
from .ablation_figures import ablation_figure, pictures_figure
from .ablation_stats import (
    ALPHA,
    CORRECTION,
    CORRECTIONS,
    LEVEL,
    NO_SPREAD,
    compare,
    correct,
)
from .ablation_tables import MARK, ablation_table, speed_table, test_rows, tests_table
from .ablation_values import (
    extractor_exclusions,
    learning_exclusions,
    per_seed,
    reference_values,
)
from .labels import dataset_name, dataset_order, ordered
from .render import FORMATS, to_markdown, write_table


def report_files(ablations: dict[str, Any], datasets: Iterable[str]) -> list[str]:
    """The file names ``write_ablation_report`` writes (given figure arrays), for the workflow's outputs."""
    out = ["ablations.md", "ablation_values.csv", "ablation_tests.csv"]
    for q, ab in ablations.items():
        out += [f"ablation_{q}.{ext}" for ext in FORMATS] + [f"ablation_{q}.png"]
        if speed_metrics(ab):
            out += [f"ablation_{q}_speed.{ext}" for ext in FORMATS]
        out += [f"ablation_{q}_pictures_{d}.png" for d in datasets]
    return out


def write_ablation_report(ablations: dict[str, Any], tidy: pd.DataFrame | str | Path, summaries: list[dict[str, Any]],
                          measured: pd.DataFrame, out_dir: str | Path, context: dict[str, Any] | None = None,
                          references: dict[str, dict[str, Any]] | None = None, arrays: dict[tuple[str, str], dict[str, np.ndarray]] | None = None,
                          method: str = CORRECTION) -> list[Path]:
    """``out_dir``: per question ``ablation_<q>.{csv,md,tex,html}`` (quality), ``ablation_<q>_speed.*`` (where it has
    speed metrics), ``ablation_<q>.png`` (every number) and, given ``arrays``, ``ablation_<q>_pictures_<dataset>.png``
    (samples and reconstructions); the per-seed numbers ``ablation_values.csv``; every test ``ablation_tests.csv``;
    and ``ablations.md`` with every answer, table and figure.

    ``references``: dataset -> its reference.json record (the extractor's quality gate); without one a dataset's
    FID, precision and recall are shown but not tested. ``arrays``: (dataset, entry) -> figures.npz arrays (of the seed
    ``context["figure_seed"]``, named in the pictures' titles).
    ``method``: the multiple-comparison correction over every test of the report (``CORRECTIONS``).
    """
    if method not in CORRECTIONS:
        raise ValueError(f"unknown multiple-comparison correction {method!r}; expected one of {sorted(CORRECTIONS)}")
    context = dict(context or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = read_tidy(tidy)
    values = per_seed(ablations, t, summaries, measured)
    standin = sorted(set(t[t["is_standin"]]["dataset"]))
    summ = {(s["dataset"], s["model"], int(s["seed"])): s for s in summaries}
    refs = reference_values(t, {k for ab in ablations.values() for k in question_metrics(ab)})
    datasets = ordered(values["dataset"], dataset_order())
    # every question's comparisons first: the correction runs over all of the report's tests at once
    per_q: dict[str, tuple[pd.DataFrame, dict, dict]] = {}
    for q, ab in ablations.items():
        vals = values[values["question"] == q].copy()
        vals.attrs["standin"] = standin
        excluded = {**learning_exclusions(vals, ab.default, question_metrics(ab), refs),
                    **extractor_exclusions(sorted(set(vals["dataset"])), question_metrics(ab), references, refs)}
        per_q[q] = (vals, compare(vals, ab.default, excluded), excluded)
    family = correct([c for _, comps, _ in per_q.values() for c in comps.values()], method)
    name, controls = CORRECTIONS[method]
    tests = pd.DataFrame([r for q, ab in ablations.items() for r in test_rows(q, ab, per_q[q][1])])
    written = [atomic_write_text(out_dir / "ablation_values.csv", values.to_csv(index=False)),
               atomic_write_text(out_dir / "ablation_tests.csv", f"# correction: {name} ({method}) over {family} tests\n" + tests.to_csv(index=False))]
    run = context.get("run", "")
    doc = [f"# Ablations{f' (run {run})' if run else ''}", "",
           "Generated by `snakemake ablations` (`vamoh.report.ablations`) from the tidy table, the train.json summaries, the reference "
           "records and the ablation stage's measurements; every sentence below is a template filled from the numbers.", ""]
    doc += [f"- {line}" for line in context.get("about", [])]
    doc += [f"- Statistics: each variant against its question's default, per dataset and metric, by Welch's two-sided t-test on the "
            f"per-seed means. Effect: the difference of means (variant − default) with its {LEVEL:.0%} Welch interval "
            f"(Welch–Satterthwaite degrees of freedom), and Hedges' g (pooled SD, small-sample corrected) beside it. Correction: "
            f"{name} ({method}, statsmodels' multipletests) over all {family} tests of this report, controlling {controls}; "
            f"a difference is significant, and marked {MARK}, where its adjusted p < {ALPHA}. No test where a side has fewer than 2 "
            f"seeds or neither side varies over seeds ({NO_SPREAD}); where one side is constant the test is one-sample, said so. "
            f"The intervals are per comparison (not adjusted), so an interval that excludes 0 can belong to a difference that is "
            f"not significant after the correction.",
            "- Answers count only quality metrics with a direction (ELBO, leak-free reconstruction and completion PSNR, FID, "
            "precision, recall, and parts ARI where a question shows it) that pass their gates; the paper-protocol reconstruction "
            "PSNR is tested and shown, never counted (its mixture weights see the values they predict). Reconstruction and "
            "completion scores are tested only where the question's default beats the train mean on them by "
            "the summary's margin: a model at the train mean's level has learned nothing for its variants to change. "
            "Speed is reported apart and never makes a variant better: the encoder's time is measured "
            "with the variants interleaved in one process, training samples per second come from job wall time and are shown only.",
            "- FID, precision and recall are tested only where the feature extractor passes the reference stage's quality gate, and "
            "precision and recall only where uniform noise gets (almost) no precision, as in the demo's summary; the held-out real "
            "floor, the uniform-noise ceiling and the train mean stand beside the variants in every table."]
    for q, ab in ablations.items():
        vals, comps, excluded = per_q[q]
        metrics = question_metrics(ab)
        notes = table_notes(vals, t, ab, context, metrics, method, family, excluded, refs)
        table = ablation_table(ab, vals, comps, summ, [n for n in notes if not n.startswith(("Encoder ms", "Train samples", "Recon. ms", "Speed is"))], refs)
        written += write_table(table, out_dir)
        lines = answer(ab, vals, comps, family, method) + saturation_notes(vals, refs, excluded)
        doc += ["", f"## {ab.question}", ""] + [f"{'' if i == 0 else '- '}{line}" for i, line in enumerate(lines)]
        doc += ["", to_markdown(table)]
        if speed_metrics(ab):
            speed = speed_table(ab, vals, comps, summ, [n for n in notes if n.startswith((MARK, "Encoder ms", "Train samples", "Recon. ms", "Speed",
                                                                                           "Computed on"))])
            written += write_table(speed, out_dir)
            doc += ["", to_markdown(speed)]
        tests_md = tests_table(ab, comps, method)
        if not tests_md.frame.empty:
            doc += ["", f"<details><summary>Every comparison of this question ({len(tests_md.frame)})</summary>", "", to_markdown(tests_md),
                    "</details>"]
        written.append(ablation_figure(ab, vals, comps, out_dir / f"ablation_{q}.png", refs, method))
        doc += ["", f"![{q}](ablation_{q}.png)"]
        if arrays is not None:
            for d in ordered(set(datasets) | {dd for dd, _ in arrays}, dataset_order()):
                own = {e: a for (dd, e), a in arrays.items() if dd == d}
                written.append(pictures_figure(ab, d, own, out_dir / f"ablation_{q}_pictures_{d}.png", context.get("figure_seed")))
                doc += ["", f"![{q}, {dataset_name(d)}: samples and reconstructions](ablation_{q}_pictures_{d}.png)"]
    written.append(atomic_write_text(out_dir / "ablations.md", "\n".join(doc).rstrip() + "\n"))
    return written
