"""Tracing from the command line: ``doctor`` (which tracers can run here), ``trace`` (a live
table of a lab's drops) and ``symbolize``."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path

import click

from netlab import host
from netlab.cli import commands, render
from netlab.lab import attach
from netlab.tracers.base import TraceOptions, Tracer
from netlab.tracers.kernel.symbols import symbolize as lookup
from netlab.tracers.registry import DEFAULT, get
from netlab.tracers.registry import doctor as check
from netlab.tracing.trace import Trace


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
@click.argument("lab", required=False)
@click.option(
    "--host",
    "whole_host",
    is_flag=True,
    help="Trace the whole machine instead of a lab: every network namespace, changing nothing"
    " (tracefs, perf or bpftrace), with each interface's rx_dropped/tx_dropped delta.",
)
@click.option("--netns", help="With --host: only this namespace (a name of ip netns, 'host', or comm[pid]).")
@click.option("--dev", help="With --host: only drops on, and the counters of, this interface.")
@click.option(
    "--tracer",
    "tracer_name",
    help=f"See netlab doctor (default: {DEFAULT}; with --pcap, bpftrace where it runs: it reads the"
    " markers and headers that match drops to frames).",
)
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
@click.option(
    "--pcap",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every frame the lab's interfaces saw to this pcapng, each dropped one with a"
    " comment naming node, device, location, reason and rule (Wireshark: frame.comment).",
)
def trace(
    lab: str | None,
    whole_host: bool,
    netns: str | None,
    dev: str | None,
    tracer_name: str | None,
    stack: bool,
    graph: bool,
    count: bool,
    duration: float | None,
    as_json: bool,
    pcap: Path | None,
) -> None:
    """Trace drops in LAB, or the whole machine (--host): node, device, location, reason, count (live until Ctrl-C)."""

    if whole_host:
        if lab is not None:
            raise click.UsageError("give a LAB or --host, not both")
        if graph or pcap is not None:
            raise click.UsageError("--graph and --pcap trace a lab, not the whole host")
        trace_host(tracer_name or DEFAULT, netns, dev, TraceOptions(stack=stack, count=count), duration, as_json)
        return
    if lab is None:
        raise click.UsageError("give a LAB to trace (netlab status lists them), or --host for the whole machine")
    if netns is not None or dev is not None:
        raise click.UsageError("--netns and --dev narrow --host; a lab's drops already say node and device")
    if graph:
        if tracer_name not in (None, "ftrace"):
            raise click.UsageError(f"--graph is the ftrace tracer's, not {tracer_name}'s")
        if stack:
            raise click.UsageError("--graph and --stack do not go together: the graph is the call stack")
        tracer_name = "ftrace"
    if tracer_name is None:
        preferred = get("bpftrace")
        tracer = preferred if pcap is not None and preferred.found.usable else get(DEFAULT)
    else:
        tracer = get(tracer_name)
    trace_lab(lab, tracer, TraceOptions(stack=stack, graph=graph, count=count), duration, as_json, pcap)


def trace_lab(
    lab: str, tracer: Tracer, options: TraceOptions, duration: float | None, as_json: bool, pcap: Path | None
) -> None:
    """``netlab trace LAB``: the live table, then the result (and the pcapng, with ``pcap``)."""
    running = Trace(tracer, attach(lab), options, capture=pcap is not None).start()
    commands.err(
        f"tracing {lab} with {tracer.name}" + (f" for {duration:g}s" if duration else "; Ctrl-C stops") + ": ready"
    )
    try:
        _follow(running, duration, as_json)
    finally:
        result = running.stop()
    if pcap is not None:
        commands.err(running.write_pcap(pcap))
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        render.trace_result(result)


def _follow(session: Trace, duration: float | None, as_json: bool) -> None:
    """The live table of drops until ``duration`` passes or Ctrl-C."""
    deadline = time.monotonic() + duration if duration else None
    try:
        with render.live_drops(enabled=not as_json) as show:
            while deadline is None or time.monotonic() < deadline:
                show(session.poll())
                time.sleep(0.2)
    except KeyboardInterrupt:
        pass


def trace_host(
    tracer_name: str, netns: str | None, dev: str | None, options: TraceOptions, duration: float | None, as_json: bool
) -> None:
    """``netlab trace --host``: the machine's drops by namespace and device, beside the
    interfaces' own drop counters (see :mod:`netlab.host`)."""
    if tracer_name not in host.TRACERS:
        raise click.UsageError(
            f"--host traces with {', '.join(host.TRACERS)} only: they change nothing on the machine"
            f" ({tracer_name} could load a module or needs a lab)"
        )
    machine = host.Host(netns)
    session = Trace(get(tracer_name), machine, options).start()
    where = f"namespace {netns}" if netns else f"{len(machine.nodes)} network namespaces"
    commands.err(
        f"tracing the host ({where}{f', device {dev}' if dev else ''}) with {tracer_name}"
        + (f" for {duration:g}s" if duration else "; Ctrl-C stops")
        + ": ready"
    )
    try:
        _follow(session, duration, as_json)
    finally:
        result = session.stop()
    moved = machine.counter_deltas()
    if dev is not None:
        result = dataclasses.replace(result, drops=tuple(d for d in result.drops if d.device == dev), totals={})
        moved = [c for c in moved if c.ifname == dev]
    if as_json:
        data = result.as_dict()
        data["counters"] = [dataclasses.asdict(c) for c in moved]
        click.echo(json.dumps(data, indent=2))
    else:
        render.host_result(result, moved)


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
