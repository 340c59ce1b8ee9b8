"""The report: the paper's tables (vamoh.report.tables) and figures (vamoh.report.figures) from the suite's results."""

from .figures import write_figures
from .tables import build_tables, write_tables

__all__ = ["build_tables", "write_figures", "write_tables"]
