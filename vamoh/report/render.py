"""One table, four formats: CSV, Markdown, LaTeX and HTML, each with its title and notes.

The notes (stand-in data, non-Inception feature extractors, devices, sample counts) are part of
every format, so that no copy of a table can lose them: CSV carries them as leading ``# `` lines
(read the table back with ``pd.read_csv(path, comment="#")``), LaTeX and HTML below the table.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..io import atomic_write_text

FORMATS = ("csv", "md", "tex", "html")


@dataclass
class ReportTable:
    """A finished table: ``frame`` holds display strings (one flat header row), ``notes`` plain text."""

    name: str  # file stem, e.g. "table1"
    title: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)


EMPTY = pd.DataFrame({"Note": ["no results for this table in the tidy table"]})


def _frame(t: ReportTable) -> pd.DataFrame:
    """The table's cells, or a one-cell placeholder when no run produced its metrics."""
    return EMPTY if t.frame.empty or len(t.frame.columns) == 0 else t.frame


def to_csv(t: ReportTable) -> str:
    head = "".join(f"# {line}\n" for line in [t.title, *t.notes])
    return head + _frame(t).to_csv(index=False)


def _md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(t: ReportTable) -> str:
    frame = _frame(t)
    cols = [_md_cell(c) for c in frame.columns]
    lines = [f"**{_md_cell(t.title)}**", "", "| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    lines += [""] + [f"{_md_cell(n)}  " for n in t.notes]
    return "\n".join(lines).rstrip() + "\n"


# LaTeX: escape the specials first, then spell the few non-ASCII symbols the tables use.
_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_TEX_SYMBOL = {"±": r"$\pm$", "†": r"\dag{}", "‡": r"\ddag{}", "×": r"$\times$", "—": "---", "–": "--", "↓": r"$\downarrow$",
               "↑": r"$\uparrow$", "σ": r"$\sigma$", "≠": r"$\neq$", "³": r"$^3$", "≥": r"$\geq$", "≤": r"$\leq$"}


def tex_escape(text: object) -> str:
    out = []
    for ch in str(text):
        out.append(_TEX_SPECIAL.get(ch) or _TEX_SYMBOL.get(ch) or ch)
    return "".join(out)


def to_latex(t: ReportTable) -> str:
    frame = _frame(t)
    ncol = len(frame.columns)
    lines = [
        r"% needs \usepackage{booktabs}",
        r"\begin{table}[ht]",
        r"\centering",
        r"\caption{" + tex_escape(t.title) + "}",
        r"\label{tab:" + t.name + "}",
        r"\resizebox{\linewidth}{!}{%",
        r"\begin{tabular}{" + "l" * ncol + "}",
        r"\toprule",
        " & ".join(tex_escape(c) for c in frame.columns) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(tex_escape(v) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}}"]
    if t.notes:
        lines.append(r"\par\smallskip\footnotesize")
        lines += [tex_escape(n) + r"\\" for n in t.notes]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_html(t: ReportTable) -> str:
    def e(text: str) -> str:  # element text: quotes need no escaping, and keeping them keeps the text greppable
        return html.escape(text, quote=False)

    frame = _frame(t)
    head = "".join(f"<th>{e(str(c))}</th>" for c in frame.columns)
    body = "\n".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in frame.itertuples(index=False))
    notes = "\n".join(f'<p class="note">{e(n)}</p>' for n in t.notes)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>' + e(t.title) + "</title>\n"
        "<style>table{border-collapse:collapse;font-family:sans-serif;font-size:90%}"
        "th,td{border:1px solid #bbb;padding:2px 6px;text-align:left}p.note{font-size:85%;margin:2px 0}</style>"
        "</head><body>\n"
        f'<table id="{html.escape(t.name)}">\n<caption>{e(t.title)}</caption>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n'
        f"{notes}\n</body></html>\n"
    )


_WRITERS = {"csv": to_csv, "md": to_markdown, "tex": to_latex, "html": to_html}


def write_table(t: ReportTable, out_dir: str | Path) -> list[Path]:
    """``out_dir/<name>.{csv,md,tex,html}``, each written atomically."""
    return [atomic_write_text(Path(out_dir) / f"{t.name}.{ext}", _WRITERS[ext](t)) for ext in FORMATS]
