"""How labs look on the command line. Only the CLI imports this.

On a terminal, rich draws tables and a status line. When output goes to a pipe or a file the
same rows are printed as plain aligned columns, for scripts and logs, and rich is not even
imported (it is a third of `netlab up`'s start-up cost on a small VM).
"""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from netlab.tracers.events import reason_text


def _tty(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> None:
    """Print rows under headers: a rich table on a terminal, aligned columns otherwise."""
    if _tty(sys.stdout):
        from rich.console import Console  # lazy: rich is slow to import, and only a terminal needs it
        from rich.table import Table

        grid = Table(box=None, pad_edge=False, title=title, title_justify="left")
        for h in headers:
            grid.add_column(h)
        for row in rows:
            grid.add_row(*row)
        Console(highlight=False).print(grid)
        return
    if title:
        print(title)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    for line in [list(headers), *map(list, rows)]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


@contextlib.contextmanager
def progress(title: str, *, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A transient status line on a terminal; silent when stderr is not one."""
    if not enabled or not _tty(sys.stderr):
        yield lambda _msg: None
        return
    from rich.console import Console  # lazy: rich is slow to import, and only a terminal needs it

    with Console(stderr=True).status(title) as status:
        yield lambda msg: status.update(f"{title}: {msg}")


def _interfaces(node: dict[str, Any]) -> str:
    parts = []
    for itf in node["interfaces"]:
        if itf["name"] == "lo" and len(itf["addresses"]) <= 1:
            continue
        addrs = ", ".join(a for a in itf["addresses"] if not a.startswith("fe80:"))
        parts.append(f"{itf['name']} {addrs}".strip())
    return "; ".join(parts)


def lab_up(lab: dict[str, Any], description: str) -> None:
    """The summary after ``netlab up``: what is where, and what to try next."""
    title = f"{lab['lab']} is up" + (f": {description.strip()}" if description else "")
    rows = [(n["node"], n["netns"], _interfaces(n)) for n in lab["nodes"]]
    table(("node", "namespace", "interfaces"), rows, title=title)
    first, target = _ping_hint(lab)
    if first and target:
        print(f"try: netlab exec {lab['lab']} {first} -- ping -c1 {target}")


def _ping_hint(lab: dict[str, Any]) -> tuple[str | None, str | None]:
    addressed = [
        (n["node"], a.split("/")[0])
        for n in lab["nodes"]
        for i in n["interfaces"]
        if i["name"] != "lo"
        for a in i["addresses"]
        if not a.startswith("fe80:")
    ]
    src = addressed[0][0] if addressed else None
    for node, addr in addressed:
        if node != src:
            return src, addr
    return None, None


def status(labs: list[dict[str, Any]]) -> None:
    """``netlab status``: one table per lab."""
    if not labs:
        print("no labs are up")
        return
    for lab in labs:
        rows: list[tuple[str, ...]] = []
        for node in lab["nodes"]:
            first = True
            for itf in node["interfaces"]:
                state = itf["operstate"].lower() if itf["up"] else "down"
                label = (node["node"], node["netns"]) if first else ("", "")
                rows.append((*label, itf["name"], state, ", ".join(itf["addresses"])))
                first = False
            if first:
                rows.append((node["node"], node["netns"], "", "", ""))
        title = f"{lab['lab']} {lab['state']}  {lab.get('source') or ''}".rstrip()
        table(("node", "namespace", "interface", "state", "addresses"), rows, title=title)


@contextlib.contextmanager
def live_drops(*, enabled: bool = True) -> Iterator[Callable[[Sequence[Any]], None]]:
    """Show drops as they come: a live table on a terminal, one line per drop otherwise."""
    counts: Counter[tuple[str, str, str, str]] = Counter()
    if not enabled:
        yield lambda _drops: None
        return
    if not _tty(sys.stdout):

        def plain(drops: Sequence[Any]) -> None:
            for d in drops:
                print(f"{d.node or '?'} {d.device or '-'} {d.location} {reason_text(d.reason)} {d.packet}", flush=True)

        yield plain
        return
    from rich.live import Live  # lazy: rich is slow to import, and only a terminal needs it
    from rich.table import Table

    last: dict[tuple[str, str, str, str], str] = {}

    def render() -> Table:
        grid = Table(title="drops (Ctrl-C stops)", title_justify="left")
        for col in ("node", "device", "location", "reason", "count", "last packet"):
            grid.add_column(col)
        for key, n in counts.most_common(30):
            grid.add_row(*key, str(n), last.get(key, ""))
        return grid

    with Live(render(), refresh_per_second=4, transient=True) as live:

        def update(drops: Sequence[Any]) -> None:
            for d in drops:
                key = (d.node or "?", d.device or "-", d.base, reason_text(d.reason))
                counts[key] += 1
                last[key] = " ".join(filter(None, (str(d.packet) if d.packet.src else "", d.comm, d.rule)))
            if drops:
                live.update(render())

        yield update


def call_walk(result: Any, limit: int = 400) -> None:
    """The function tracer's calls as the kernel nested them, one line per call."""
    calls = result.calls
    print(f"{result.lab}: {len(calls)} calls in {result.seconds:.1f}s ({result.tracer})")
    for call in calls[:limit]:
        took = f"{call.duration_us:10.3f} us" if call.duration_us is not None else " " * 13
        via = f"  <- {call.parent}" if call.parent and not call.depth else ""
        print(f"{call.time:14.6f}  cpu{call.cpu} {call.pid:>7}  {took}  {'  ' * call.depth}{call.function}{via}")
    if len(calls) > limit:
        print(f"... {len(calls) - limit} more (--json has them all)")
    for note in result.notes:
        print(f"note: {note}")


def trace_result(result: Any) -> None:
    """The end-of-trace summary; points to ``netlab explain`` for each reason."""
    if result.calls and not result.drops:
        call_walk(result)
        return
    rows = [(n or "?", d or "-", f, reason_text(r), str(c)) for n, d, f, r, c in result.summary()]
    title = f"{result.lab}: {result.total_drops} drops in {result.seconds:.1f}s ({result.tracer})"
    table(("node", "device", "function", "reason", "count"), rows, title=title)
    for node, rule, count in result.rules():
        print(f"dropped by: {rule} in node {node} ({count})")
    if result.unattributed:
        kinds = ", ".join(f"{n} x {f} {reason_text(r)}" for f, r, n in result.unplaced_summary()[:5])
        print(
            f"not placed in the lab: {result.unattributed} drops with no device path of the lab's and no lab"
            f" process (anywhere on this machine, so not all the lab's){': ' + kinds if kinds else ''}"
        )
    _trailer(result)


def _trailer(result: Any) -> None:
    """Notes, lost events and where to read about each reason, after a result's tables."""
    for note in result.notes:
        print(f"note: {note}")
    if result.lost:
        print(f"lost: {result.lost} events were not recorded")
    reasons = sorted({r for _n, _d, _f, r, _c in result.summary() if r is not None})
    if reasons:
        print(f"why: netlab explain {' '.join(reasons)}")


def host_result(result: Any, moved: Sequence[Any]) -> None:
    """The end of a whole-machine trace: drops by namespace, device, location and reason, with
    what the tracer read of the packets, then the interfaces whose drop counters moved."""
    examples: dict[tuple[Any, ...], str] = {}
    for d in result.drops:
        key = (d.node, d.device, d.base, d.reason)
        if key not in examples and d.packet.src is not None:
            examples[key] = str(d.packet)
    rows = [
        (n or "?", d or "-", f, reason_text(r), str(c), examples.get((n, d, f, r), ""))
        for n, d, f, r, c in result.summary()
    ]
    title = f"the host: {result.total_drops} drops in {result.seconds:.1f}s ({result.tracer})"
    table(("netns", "device", "function", "reason", "count", "a packet"), rows, title=title)
    if moved:
        counters = [(c.node, c.ifname, f"{c.rx_dropped:+d}", f"{c.tx_dropped:+d}") for c in moved]
        table(("netns", "device", "rx_dropped", "tx_dropped"), counters, title="drop counters that moved")
    if result.unattributed:
        kinds = ", ".join(f"{n} x {f} {reason_text(r)}" for f, r, n in result.unplaced_summary()[:5])
        print(f"no device path: {result.unattributed} drops not placed in a namespace{': ' + kinds if kinds else ''}")
    _trailer(result)
