"""A matrix for people: ``index.html`` and ``summary.md``, scenario x kernel, each cell the
outcome and the drops observed.

The page is self-contained (no scripts, no external assets) so it can be opened from a CI
artifact; the Markdown is the same table for a README or a pull request. Rows where kernels
differ are marked, since those are what a kernel upgrade changes.
"""

from __future__ import annotations

from html import escape
from typing import Any

from netlab.kernels.matrix import drop_label

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 4px 6px; vertical-align: top; }
th { background: #f3f3f3; text-align: left; }
td.passed { background: #e9f7ec; } td.failed, td.error { background: #fbe3e3; }
td.new { background: #fff4d6; } td.skipped { background: #eeeeee; color: #555; }
tr.differs > td:first-child { border-left: 5px solid #d98a00; }
.drops { font-family: ui-monospace, monospace; font-size: 12px; white-space: nowrap; }
.summary { color: #555; font-size: 12px; }
"""


def _cell(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return '<td class="absent">-</td>'
    outcome = escape(cell["outcome"])
    drops = "<br>".join(escape(drop_label(d)) for d in cell.get("drops", []))
    return f'<td class="{outcome}"><b>{outcome}</b><div class="drops">{drops}</div></td>'


def _kernel_header(k: dict[str, Any]) -> str:
    times = f"boot {k['boot_seconds']:.0f} s, suite {k['suite_seconds']:.0f} s"
    sub = f"{escape(k['release'])}<br>{escape(k['accel'])}, {times}"
    if k.get("error"):
        sub += f"<br><b>{escape(k['error'].splitlines()[0])}</b>"
    if k.get("hangs"):
        sub += f"<br>booted again after {len(k['hangs'])} wedged guest(s)"
    return f"<th>{escape(k['name'])}<br><span class='summary'>{sub}</span></th>"


def markdown(matrix: dict[str, Any]) -> str:
    """The table as Markdown: one row per scenario, ``*`` where kernels differ."""
    kernels = matrix["kernels"]
    head = "| scenario | " + " | ".join(f"{k['name']} ({k['release']})" for k in kernels) + " |"
    lines = [head, "|" + " --- |" * (len(kernels) + 1)]
    for row in matrix["scenarios"]:
        name = row["scenario"].split("::", 1)[-1] + (" *" if row["differs"] else "")
        cells = []
        for k in kernels:
            cell = row["cells"].get(k["release"])
            if cell is None:
                cells.append("-")
                continue
            drops = "<br>".join(drop_label(d) for d in cell.get("drops", []))
            cells.append(cell["outcome"] if not drops else f"{cell['outcome']}: {drops}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def html(matrix: dict[str, Any]) -> str:
    """The page for ``matrix`` (as :func:`netlab.kernels.matrix.build` returns it)."""
    kernels = matrix["kernels"]
    differing = sum(1 for row in matrix["scenarios"] if row["differs"])
    head = "".join(_kernel_header(k) for k in kernels)
    rows = []
    for row in matrix["scenarios"]:
        cls = ' class="differs"' if row["differs"] else ""
        name = f"{escape(row['scenario'])}<div class='summary'>{escape(row['summary'])}</div>"
        cells = "".join(_cell(row["cells"].get(k["release"])) for k in kernels)
        rows.append(f"<tr{cls}><td>{name}</td>{cells}</tr>")
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'><title>netlab kernel matrix</title>"
        f"<style>{_STYLE}</style></head><body>\n"
        f"<h1>netlab kernel matrix</h1><p>{len(matrix['scenarios'])} scenarios on {len(kernels)} kernels; "
        f"{differing} behave differently across kernels (marked on the left). Made {escape(matrix['created'])}.</p>\n"
        f"<table><tr><th>scenario</th>{head}</tr>\n" + "\n".join(rows) + "\n</table></body></html>\n"
    )
