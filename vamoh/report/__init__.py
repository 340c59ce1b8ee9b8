"""The report: the paper's tables (vamoh.report.tables) and figures (vamoh.report.figures) from the suite's results.

The names below are imported on first use: a job that needs one part of the report (the tables, the ablation
report) does not pay for matplotlib and seaborn.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"write_figures": ".figures", "build_tables": ".tables", "write_tables": ".tables"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
