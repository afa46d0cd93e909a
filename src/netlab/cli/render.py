"""How labs look in a terminal (rich). Only the CLI imports this."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


@contextlib.contextmanager
def progress(title: str, *, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A transient status line on a terminal; silent when output is piped."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _msg: None
        return
    with errors.status(title) as status:
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
    title = f"[bold]{lab['lab']}[/] is up" + (f": {description.strip()}" if description else "")
    console.print(title)
    table = Table(box=None, show_header=True, pad_edge=False)
    table.add_column("node")
    table.add_column("namespace")
    table.add_column("interfaces")
    for node in lab["nodes"]:
        table.add_row(node["node"], node["netns"], _interfaces(node))
    console.print(table)
    first, target = _ping_hint(lab)
    if first and target:
        console.print(f"try: netlab exec {lab['lab']} {first} -- ping -c1 {target}")


def _ping_hint(lab: dict[str, Any]) -> tuple[str | None, str | None]:
    addressed = [
        (n["node"], a.split("/")[0])
        for n in lab["nodes"]
        for i in n["interfaces"]
        if i["name"] != "lo"
        for a in i["addresses"]
        if not a.startswith("fe80:")
    ]
    if len(addressed) < 2:
        return None, None
    src = addressed[0][0]
    for node, addr in addressed:
        if node != src:
            return src, addr
    return None, None


def status(labs: list[dict[str, Any]]) -> None:
    """``netlab status``: one table per lab."""
    if not labs:
        console.print("no labs are up")
        return
    for lab in labs:
        state = lab["state"]
        color = {"up": "green", "crashed": "red"}.get(state, "yellow")
        console.print(f"[bold]{lab['lab']}[/] [{color}]{state}[/]  {lab.get('source') or ''}")
        table = Table(box=None, pad_edge=False)
        for col in ("node", "namespace", "interface", "state", "addresses"):
            table.add_column(col)
        for node in lab["nodes"]:
            first = True
            for itf in node["interfaces"]:
                state_text = itf["operstate"].lower() if itf["up"] else "down"
                table.add_row(
                    node["node"] if first else "",
                    node["netns"] if first else "",
                    itf["name"],
                    state_text,
                    ", ".join(itf["addresses"]),
                )
                first = False
            if first:
                table.add_row(node["node"], node["netns"], "", "", "")
        console.print(table)
