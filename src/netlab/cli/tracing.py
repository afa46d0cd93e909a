"""Tracing from the command line: ``doctor`` (which tracers can run here), ``trace`` (a live
table of a lab's drops) and ``symbolize``."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import click

from netlab.cli import commands, render
from netlab.findings.trace import Trace
from netlab.lab import attach
from netlab.tracers.base import TraceOptions
from netlab.tracers.kernel.symbols import symbolize as lookup
from netlab.tracers.registry import DEFAULT, get
from netlab.tracers.registry import doctor as check


@click.command()
@click.option("--json", "as_json", is_flag=True)
def doctor(as_json: bool) -> None:
    """Say, for every tracer, whether it can run on this machine and exactly why not."""

    rows = check()
    if as_json:
        click.echo(
            json.dumps(
                [{"tracer": n, "usable": p.usable, "detail": p.detail, "summary": s} for n, s, p in rows], indent=2
            )
        )
        return

    render.table(("tracer", "usable", "detail"), [(n, "yes" if p.usable else "no", p.detail) for n, _s, p in rows])


@click.command()
@click.argument("lab")
@click.option("--tracer", "tracer_name", default=DEFAULT, show_default=True, help="See netlab doctor.")
@click.option("--stack", is_flag=True, help="Record the kernel stack of each drop.")
@click.option(
    "--graph",
    is_flag=True,
    help="Each packet's walk through the seeds' functions (tcp_sendmsg ... veth_xmit ... tcp_v4_rcv),"
    " nested, with durations: function_graph via the ftrace tracer.",
)
@click.option(
    "--count",
    is_flag=True,
    help="Count drops in the kernel instead of reporting each: exact under any load (bpftrace).",
)
@click.option("--duration", type=click.FloatRange(min=0.1), help="Stop after this many seconds (default: Ctrl-C).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON at the end.")
def trace(
    lab: str, tracer_name: str, stack: bool, graph: bool, count: bool, duration: float | None, as_json: bool
) -> None:
    """Trace drops in LAB: node, device, kernel location, reason, count (live table until Ctrl-C)."""

    if graph:
        if tracer_name not in (DEFAULT, "ftrace"):  # the default is not a choice
            raise click.UsageError(f"--graph is the ftrace tracer's, not {tracer_name}'s")
        if stack:
            raise click.UsageError("--graph and --stack do not go together: the graph is the call stack")
        tracer_name = "ftrace"
    tracer = get(tracer_name)
    options = TraceOptions(stack=stack, graph=graph, count=count)
    tracer.check(options)
    tracer.require()
    handle = attach(lab)
    session = Trace(tracer, handle, options)
    commands.err(
        f"tracing {lab} with {tracer_name}" + (f" for {duration:g}s" if duration else "; Ctrl-C stops") + ": ready"
    )
    deadline = time.monotonic() + duration if duration else None
    try:
        with render.live_drops(enabled=not as_json) as show:
            while deadline is None or time.monotonic() < deadline:
                show(session.poll())
                time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        result = session.stop()
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        render.trace_result(result)


@click.command()
@click.argument("addresses", nargs=-1, required=True)
def symbolize(addresses: Sequence[str]) -> None:
    """Turn kernel addresses (0xffffffff81586d82) into function+offset from /proc/kallsyms."""

    for address in addresses:
        try:
            value = int(address, 16)
        except ValueError:
            raise click.BadParameter(f"'{address}' is not a hex address") from None
        click.echo(f"{address} {lookup(value)}")
