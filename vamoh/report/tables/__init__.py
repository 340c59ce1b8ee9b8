"""The paper's Tables 1-5, the reconstruction, completion, super-resolution, mixture and point-set tables, regenerated
from the suite's tidy table: one module per table (or per pair that shares a builder), and here the registry of them.

Every table puts the paper's value beside ours ("X (ours)" next to "X (paper)") and says, in the table
itself, which rows use stand-in data (dagger on the dataset) and which generation metrics use features
other than Inception (double dagger), plus the devices, sample counts and seeds behind our numbers.
Each table also carries the reference rows a number needs to be read at this scale: the floor
(held-out real images) and ceiling (noise) of generation, and the train-mean baseline of reconstruction;
a model outside them is flagged in the table.

TABLES is the one list of the report's tables: its names are the output file stems (``{name}.{csv,md,tex,html}``),
which the workflow reads (workflow/rules/common.smk) to declare the tables rule's outputs, in the order they are
built and written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ...eval.tidy import read_tidy
from ..render import ReportTable, write_table
from .completion import completion_table
from .generation import table1, table4
from .mixture import mixture_table
from .pointsets import pointsets_table
from .reconstruction import reconstruction_table
from .superres import superres_table
from .table3 import table3
from .timing import table2, table5

# A builder reads the run's tidy table and its train.json records (only Table 3 reads the latter).
TableBuilder = Callable[[pd.DataFrame, list[dict[str, Any]]], ReportTable]

TABLES: dict[str, TableBuilder] = {
    "table1": lambda t, summaries: table1(t),
    "table2": lambda t, summaries: table2(t),
    "table3": lambda t, summaries: table3(summaries, t),
    "table4": lambda t, summaries: table4(t),
    "table5": lambda t, summaries: table5(t),
    "reconstruction": lambda t, summaries: reconstruction_table(t),
    "completion_scores": lambda t, summaries: completion_table(t),
    "superresolution": lambda t, summaries: superres_table(t),
    "mixture": lambda t, summaries: mixture_table(t),
    "pointsets": lambda t, summaries: pointsets_table(t),
}
TABLE_NAMES: tuple[str, ...] = tuple(TABLES)

__all__ = ["TABLES", "TABLE_NAMES", "TableBuilder", "build_tables", "write_tables"]


def build_tables(tidy: pd.DataFrame | str | Path, summaries: list[dict[str, Any]]) -> list[ReportTable]:
    """Every registered table, in registry order. A builder must name its table as the registry does: the name is the
    file the workflow declares, so a mismatch would leave a declared output unwritten."""
    t = read_tidy(tidy)
    out = []
    for name, build in TABLES.items():
        table = build(t, summaries)
        if table.name != name:
            raise ValueError(f"the builder registered as {name!r} made the table {table.name!r}")
        out.append(table)
    return out


def write_tables(tidy: pd.DataFrame | str | Path, summaries: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """``{name}.{csv,md,tex,html}`` in ``out_dir`` for every name of TABLE_NAMES; returns the paths."""
    paths: list[Path] = []
    for t in build_tables(tidy, summaries):
        paths += write_table(t, out_dir)
    return paths
