"""A matrix for people: ``index.html`` and ``summary.md``, scenario x kernel, each cell the
outcome, the drops observed (function, reason, count, the node each was placed on) and the
scenario's time on that kernel; ``reasons.html``, the catalogue of drop reasons x kernel.

The page is what a kernel engineer reads after a run, as they read the netdev CI's: a row is
marked only where the kernels' behaviour changed (:func:`netlab.kernels.matrix.behaviour_groups`:
5.10 naming no reasons is not a change), and says which kernels differ from which; a failed
cell quotes the assertion's first lines; a scenario that passed only on a retry is flaky, never
green; a kernel that logged a WARN, BUG or oops shows the trace. Self-contained (no scripts, no
external assets) so it opens from a CI artifact, and no wider than a laptop for five kernels.
"""

from __future__ import annotations

from html import escape
from typing import Any

from netlab.expect.catalogue import Catalogue


def drop_label(drop: dict[str, Any]) -> str:
    """``function REASON xN`` as a cell shows it (reason ``None``: the kernel has no reasons)."""
    reason = drop.get("reason") or "(no reason)"  # a kernel before 5.17
    return f"{drop.get('location')} {reason} x{drop.get('count', 1)}"


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1em; }
table { border-collapse: collapse; table-layout: fixed; width: 100%; }
th, td { border: 1px solid #ccc; padding: 3px 5px; vertical-align: top; overflow-wrap: anywhere; }
th { background: #f3f3f3; text-align: left; font-weight: 600; }
col.name { width: 24%; }
td.passed { background: #e9f7ec; } td.failed, td.error { background: #fbe3e3; }
td.new { background: #fff4d6; } td.skipped, td.absent { background: #eeeeee; color: #555; }
td.flaky { background: #ffe9c7; }
tr.differs > td:first-child { border-left: 5px solid #d98a00; }
.drops { font-family: ui-monospace, monospace; font-size: 11px; }
.summary, .time, .differ { color: #555; font-size: 12px; }
.differ { color: #8a5a00; }
pre { font-size: 11px; white-space: pre-wrap; margin: 2px 0; }
h2 { font-size: 16px; margin-top: 1.5em; }
"""


def _cell(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return '<td class="absent">-</td>'
    outcome = escape(cell["outcome"])
    drops = "<br>".join(
        escape(drop_label(d)) + (f" @{escape(str(d['node']))}" if d.get("node") else "") for d in cell.get("drops", [])
    )
    seconds = cell.get("seconds")
    time = f" <span class='time'>{seconds:.1f} s</span>" if isinstance(seconds, int | float) else ""
    label = "flaky: passed on a retry" if cell["outcome"] == "flaky" else outcome
    failure = cell.get("failure") if cell["outcome"] in ("failed", "error", "flaky", "new") else None
    why = f"<pre>{escape(failure)}</pre>" if failure else ""
    return f'<td class="{outcome}"><b>{label}</b>{time}<div class="drops">{drops}</div>{why}</td>'


def _kernel_header(k: dict[str, Any]) -> str:
    times = f"boot {k['boot_seconds']:.0f} s, suite {k['suite_seconds']:.0f} s"
    sub = f"{escape(k['release'])}<br>{escape(k['accel'])}, {times}"
    if k.get("error"):
        sub += f"<br><b>{escape(k['error'].splitlines()[0])}</b>"
    if k.get("hangs"):
        sub += f"<br>booted again after {len(k['hangs'])} wedged guest(s)"
    if k.get("kernel_log"):
        sub += f"<br><b><a href='#log-{escape(k['name'])}'>logged a WARN/BUG</a></b>"
    return f"<th>{escape(k['name'])}<br><span class='summary'>{sub}</span></th>"


def _names(kernels: list[dict[str, Any]]) -> dict[str, str]:
    """Release -> the short name a reader knows (``6.1``, ``running``)."""
    return {k["release"]: k["name"] for k in kernels}


def differ_text(groups: list[list[str]], names: dict[str, str]) -> str:
    """``5.10, 6.1 | 6.12, 7.2, running``: which kernels dropped alike, group by group."""
    return " | ".join(", ".join(names.get(r, r) for r in group) for group in groups)


def markdown(matrix: dict[str, Any]) -> str:
    """The table as Markdown: one row per scenario, ``*`` where the kernels' behaviour changed."""
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
            drops = "<br>".join(
                drop_label(d) + (f" @{d['node']}" if d.get("node") else "") for d in cell.get("drops", [])
            )
            cells.append(cell["outcome"] if not drops else f"{cell['outcome']}: {drops}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def html(matrix: dict[str, Any]) -> str:
    """The page for ``matrix`` (as :func:`netlab.kernels.matrix.build` returns it)."""
    kernels = matrix["kernels"]
    names = _names(kernels)
    differing = [row for row in matrix["scenarios"] if row["differs"]]
    flaky = sum(1 for row in matrix["scenarios"] for c in row["cells"].values() if c["outcome"] == "flaky")
    failed = sum(
        1 for row in matrix["scenarios"] for c in row["cells"].values() if c["outcome"] in ("failed", "error", "new")
    )
    head = "".join(_kernel_header(k) for k in kernels)
    rows = []
    for row in matrix["scenarios"]:
        cls = ' class="differs"' if row["differs"] else ""
        short = row["scenario"].split("::", 1)[-1]
        differ = (
            f"<div class='differ'>differs: {escape(differ_text(row.get('groups', []), names))}</div>"
            if row["differs"]
            else ""
        )
        name = f"<b>{escape(short)}</b><div class='summary'>{escape(row['summary'])}</div>{differ}"
        cells = "".join(_cell(row["cells"].get(k["release"])) for k in kernels)
        rows.append(f"<tr{cls}><td title='{escape(row['scenario'])}'>{name}</td>{cells}</tr>")
    logs = "".join(
        f"<h2 id='log-{escape(k['name'])}'>{escape(k['name'])} ({escape(k['release'])}) logged</h2>"
        f"<pre>{escape(k['kernel_log'])}</pre>"
        for k in kernels
        if k.get("kernel_log")
    )
    verdict = f"{failed} failed cells, {flaky} flaky (passed on a retry)" if failed or flaky else "all green"
    cols = "<colgroup><col class='name'>" + "<col>" * len(kernels) + "</colgroup>"
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'><title>netlab kernel matrix</title>"
        f"<style>{_STYLE}</style></head><body>\n"
        f"<h1>netlab kernel matrix</h1><p>{len(matrix['scenarios'])} scenarios on {len(kernels)} kernels: "
        f"{verdict}. {len(differing)} scenarios drop differently on some kernels (marked on the left, with which "
        "kernels drop alike; reasons are compared only between kernels that name them). "
        f"Made {escape(matrix['created'])}. <a href='reasons.html'>The drop reasons, kernel by kernel</a>.</p>\n"
        f"<table>{cols}<tr><th>scenario</th>{head}</tr>\n" + "\n".join(rows) + f"\n</table>{logs}</body></html>\n"
    )


_CELL = {"reproduced": "passed", "defined": "absent", "not defined": "skipped"}


def reasons_html(catalogue: Catalogue) -> str:
    """``reasons.html``: reason x kernel, each cell reproduced (green), defined only, or not
    defined, with the scenarios that reproduce it and whether ``netlab explain`` explains it."""
    head = "".join(
        f"<th>{escape(k.name)}<br><span class='time'>{escape(k.release)}</span></th>" for k in catalogue.kernels
    )
    rows = []
    for row in catalogue.rows:
        scenarios = "<br>".join(escape(s.split("::", 1)[-1]) for s in row.reproduced)
        notes = [] if row.explained else ["not explained by netlab explain yet"]
        if row.unreachable:
            notes.append(f"not reachable in a lab: {row.unreachable}")
        about = f"<div class='drops'>{scenarios}</div>" + "".join(
            f"<div class='summary'>{escape(n)}</div>" for n in notes
        )
        cells = "".join(f"<td class='{_CELL[row.cell(k)]}'>{escape(row.cell(k))}</td>" for k in catalogue.kernels)
        rows.append(f"<tr><td><b>{escape(row.reason)}</b>{about}</td>{cells}</tr>")
    cols = "<colgroup><col class='name'>" + "<col>" * len(catalogue.kernels) + "</colgroup>"
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'><title>netlab drop reasons</title>"
        f"<style>{_STYLE}</style></head><body>\n<h1>Drop reasons</h1><p>{escape(catalogue.summary())}. "
        "Each kernel's reasons are its own table (skb:kfree_skb's format) as its suite ran; reproduced means a "
        "scenario that passed on that kernel asserted a drop with that reason there. "
        "<a href='index.html'>The matrix</a>.</p>\n"
        f"<table>{cols}<tr><th>reason</th>{head}</tr>\n" + "\n".join(rows) + "\n</table></body></html>\n"
    )


def reasons_markdown(catalogue: Catalogue) -> str:
    """The catalogue as a markdown table (for the README): one row per reason defined anywhere."""
    mark = {"reproduced": "yes", "defined": "-", "not defined": ""}
    lines = [
        catalogue.summary() + ".",
        "",
        "| reason | " + " | ".join(k.name for k in catalogue.kernels) + " | scenarios |",
        "| --- | " + " | ".join("---" for _ in catalogue.kernels) + " | --- |",
    ]
    for row in catalogue.rows:
        where = ", ".join(s.split("::", 1)[-1].split("[", 1)[0] for s in row.reproduced)
        if not where and row.unreachable:
            where = f"(not in a lab: {row.unreachable})"
        cells = " | ".join(mark[row.cell(k)] for k in catalogue.kernels)
        lines.append(f"| {row.reason} | {cells} | {where} |")
    return "\n".join(lines) + "\n"
