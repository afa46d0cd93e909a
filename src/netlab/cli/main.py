"""The ``netlab`` command: thin commands over the package.

Each command parses its arguments, calls one function of the package and renders the result.
Errors of the package (:class:`~netlab.errors.NetlabError`) become one message on stderr and
the error's exit code (:func:`netlab.cli.commands.guarded`); a traceback therefore always means
a bug in netlab. Imports are lazy so that no command pays for pydantic, pyroute2, scapy or rich
unless it uses them; a plain ``up NAME`` or ``down NAME...`` does not even import this module
(:mod:`netlab.cli.entry`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from netlab.cli import commands
from netlab.errors import NetlabError

F = TypeVar("F", bound=Callable[..., Any])


_err = commands.err


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="kernel-netlab", prog_name="netlab")
def cli() -> None:
    """Reproducible Linux network labs in namespaces, and where the kernel drops packets.

    Labs are built from YAML topologies (netlab topologies lists them). Every object a lab
    creates lives in network namespaces named LAB.NODE, so `ip netns exec` works as usual.
    """


@cli.command()
@click.argument("topology")
@click.option("--instance", help="Bring up another copy under the lab name TOPOLOGY-INSTANCE.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for links to be usable.",
)
@click.option("--dry-run", is_flag=True, help="Print the plan (every step and its undo); touch nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the lab as JSON.")
def up(topology: str, instance: str | None, timeout: float, dry_run: bool, as_json: bool) -> None:
    """Build the lab described by TOPOLOGY (a name on the search path, or a file)."""
    if dry_run:
        from netlab.lab import planned

        click.echo(planned(topology, instance)[3].render())
        return
    commands.up(topology, instance=instance, timeout=timeout, as_json=as_json)


@cli.command()
@click.argument("labs", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Tear down every lab.")
@click.option("--missing-ok", is_flag=True, help="Succeed when the lab is not up.")
def down(labs: Sequence[str], everything: bool, missing_ok: bool) -> None:
    """Tear down LABS: kill what runs inside, remove their namespaces."""
    from netlab.runtime.journal import all_labs

    targets = list(labs) + (all_labs() if everything else [])
    if not targets:
        raise click.UsageError("name a lab (netlab status lists them) or use --all")
    commands.down(targets, missing_ok=missing_ok)


@cli.command()
@click.argument("lab", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(lab: str | None, as_json: bool) -> None:
    """Show labs, their nodes, interfaces and addresses."""
    from netlab.lab import status as lab_status

    labs = lab_status(lab)
    if as_json:
        click.echo(json.dumps(labs, indent=2))
        return
    from netlab.cli import render

    render.status(labs)


def _exec_in(lab: str, node: str, argv: list[str]) -> None:
    from netlab.lab import attach
    from netlab.runtime.netns import enter_for_exec, require_root

    require_root()
    ns = attach(lab).node(node).netns
    enter_for_exec(ns)
    os.environ.update({"NETLAB_LAB": lab, "NETLAB_NODE": node, "NETLAB_NETNS": ns})
    try:
        os.execvp(argv[0], argv)  # noqa: S606 - running the user's own command is the point
    except FileNotFoundError:
        raise NetlabError(f"command not found: {argv[0]}") from None


@cli.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("lab")
@click.argument("node")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(lab: str, node: str, command: Sequence[str]) -> None:
    """Run COMMAND inside NODE of LAB (use -- before the command)."""
    _exec_in(lab, node, list(command))


@cli.command()
@click.argument("lab")
@click.argument("node")
def shell(lab: str, node: str) -> None:
    """Open an interactive shell inside NODE of LAB."""
    _err(f"entering {lab}/{node}; exit to leave")
    _exec_in(lab, node, [os.environ.get("SHELL", "/bin/bash")])


@cli.command()
@click.option("--all", "everything", is_flag=True, help="Also tear down labs that are up and healthy.")
def clean(everything: bool) -> None:
    """Remove what crashed labs left behind (and only that)."""
    from netlab.runtime.netns import require_root
    from netlab.teardown import clean as do_clean
    from netlab.tracers.instance import clean_leftovers

    require_root()
    removed = do_clean(everything=everything)
    for removal in removed:
        click.echo(f"{removal.lab}: removed {len(removal.namespaces)} namespaces")
    instances = clean_leftovers()
    for inst in instances:
        click.echo(f"removed tracefs instance {inst}")
    if not removed and not instances:
        click.echo("nothing to clean")


@cli.command()
@click.argument("files", nargs=-1, required=True)
def validate(files: Sequence[str]) -> None:
    """Check topology FILES (names or paths) without touching the kernel."""
    from netlab.errors import TopologyError
    from netlab.model.loader import load

    failed: list[TopologyError] = []
    for ref in files:
        try:
            topo, source = load(ref)
        except TopologyError as exc:
            failed.append(exc)
            continue
        click.echo(f"{source.file}: ok ({len(topo.nodes)} nodes, {len(topo.links)} links)")
    if failed:
        raise TopologyError([issue for exc in failed for issue in exc.issues])


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to a file.")
def schema(output: str | None) -> None:
    """Print the JSON Schema of the topology format (for editors)."""
    from netlab.model.schema import topology_schema

    text = json.dumps(topology_schema(), indent=2) + "\n"
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)


@cli.command()
def topologies() -> None:
    """List the topologies on the search path."""
    from netlab.model.loader import available

    for name, path in available().items():
        click.echo(f"{name:<16} {path}")


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _size(text: str) -> int:
    """'1M' -> 1048576 (binary units, as iperf and dd use)."""
    number, unit = text.rstrip("KMGkmgBb"), text[len(text.rstrip("KMGkmgBb")) :].upper().rstrip("B")
    try:
        value = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        raise click.BadParameter(f"'{text}' is not a size like 64K, 1M or 1500") from None
    if value <= 0:
        raise click.BadParameter(f"size must be positive, got {text}")
    return int(value)


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise click.BadParameter(f"'{text}' is not a number (0x88b5 or 34997)") from None


@cli.command()
@click.argument("lab")
@click.argument("node")
@click.argument("interface")
@click.argument("recipe")
@click.argument("value", required=False)
@click.option("--count", "-c", type=int, default=1, show_default=True, help="How many frames.")
@click.option("--dst", help="Destination IP address (IP recipes).")
@click.option("--dst-mac", help="Destination MAC; default: the next hop's, found from the lab.")
@click.option("--broadcast", is_flag=True, help="Send to ff:ff:ff:ff:ff:ff (with --dst, e.g. the subnet's broadcast).")
@click.option("--src", help="Source IP address; default: the interface's (any address: spoofing is allowed).")
@click.option(
    "--announce/--no-announce",
    default=True,
    show_default=True,
    help="First have the next hop send a gratuitous ARP, so bridges do not flood the frames to bystanders.",
)
@click.option("--dport", type=click.IntRange(0, 65535), default=9999, show_default=True)
@click.option("--sport", type=click.IntRange(0, 65535), default=40000, show_default=True)
@click.option("--ttl", type=click.IntRange(0, 255), default=64, show_default=True)
@click.option("--tcp-flags", default="S", show_default=True, help="TCP flags for tcp-syn, e.g. SF or FPU.")
@click.option("--payload", type=click.IntRange(0, 9000), default=0, help="Pad the payload to this many bytes.")
@click.option(
    "--bad", type=click.Choice(["ip-csum", "l4-csum", "ihl", "tot-len", "truncated"]), help="Send it malformed."
)
@click.option("--json", "as_json", is_flag=True)
def inject(lab: str, node: str, interface: str, recipe: str, value: str | None, as_json: bool, **options: Any) -> None:
    """Send frames of RECIPE from NODE's INTERFACE (recipes: stp, rstp, ethertype VALUE, pause,
    udp, icmp, tcp-syn). Every frame carries a marker that identifies it in captures and traces."""
    from netlab.lab import attach
    from netlab.runtime.netns import require_root
    from netlab.traffic.inject import inject as do_inject

    require_root()
    count, dst, dst_mac = options.pop("count"), options.pop("dst"), options.pop("dst_mac")
    if recipe == "ethertype":
        if value is None:
            raise click.UsageError("ethertype needs a value, e.g. netlab inject LAB NODE IF ethertype 0x88b5")
        options["ethertype"] = _int(value)
    elif value is not None:
        raise click.UsageError(f"recipe '{recipe}' takes no value (got '{value}')")
    result = do_inject(attach(lab), node, interface, recipe, count=count, dst=dst, dst_mac=dst_mac, **options)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "node": result.node,
                    "interface": result.ifname,
                    "recipe": result.recipe,
                    "sent": result.sent,
                    "run": f"{result.run:08x}",
                    "src_mac": result.src_mac,
                    "dst_mac": result.dst_mac,
                    "dst": result.dst_ip,
                }
            )
        )
        return
    to = f" to {result.dst_ip}" if result.dst_ip else ""
    click.echo(
        f"sent {result.sent} {recipe} frame(s) from {lab}/{node}:{interface}{to}"
        f" (markers {result.run:08x}:0-{result.sent - 1})"
    )


@cli.command()
@click.argument("lab")
@click.argument("node")
@click.argument("interface")
@click.option("-w", "--write", "pcap", type=click.Path(dir_okay=False, writable=True), help="Write a pcap file.")
@click.option("--count", "-c", type=click.IntRange(min=1), help="Stop after this many frames.")
@click.option("--timeout", type=click.FloatRange(min=0), help="Stop after this many seconds.")
@click.option("--filter", "expression", help="tcpdump filter expression, e.g. 'udp port 9999'.")
@click.option("--quiet", "-q", is_flag=True, help="Do not print a line per frame.")
def capture(
    lab: str,
    node: str,
    interface: str,
    pcap: str | None,
    count: int | None,
    timeout: float | None,
    expression: str | None,
    quiet: bool,
) -> None:
    """Capture frames on NODE's INTERFACE (until --count, --timeout or Ctrl-C)."""
    from pathlib import Path

    from netlab.lab import attach
    from netlab.runtime.netns import require_root
    from netlab.traffic.capture import Capture
    from netlab.traffic.describe import summary

    require_root()
    where = Path(pcap) if pcap else None
    with Capture(attach(lab), node, interface, expression=expression, pcap=where, limit=count) as cap:
        _err(f"capturing on {lab}/{node}:{interface}" + (f" ({expression})" if expression else "") + ": ready")
        seen = 0
        try:
            for frame in cap.follow(count, timeout):
                seen += 1
                if not quiet:
                    click.echo(summary(frame))
        except KeyboardInterrupt:
            pass
    _err(f"{seen} frame(s) captured" + (f", written to {pcap}" if pcap else ""))


@cli.command()
@click.argument("lab")
@click.argument("src")
@click.argument("dst")
@click.option("--bytes", "size", default="1M", show_default=True, help="How much to send (64K, 1M, 1G).")
@click.option("--to", "address", help="Connect to this address (default: DST's first address).")
@click.option("--port", type=click.IntRange(1, 65535), default=5201, show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def flow(
    lab: str, src: str, dst: str, size: str, address: str | None, port: int, timeout: float, as_json: bool
) -> None:
    """Run a TCP flow from node SRC to node DST over real kernel sockets and verify every byte."""
    from netlab.lab import attach
    from netlab.runtime.netns import require_root
    from netlab.traffic.flow import tcp_flow

    require_root()
    result = tcp_flow(attach(lab), src, dst, _size(size), address=address, port=port, timeout=timeout)
    if as_json:
        click.echo(json.dumps(result.as_dict()))
    else:
        state = "verified" if result.verified else "CORRUPTED"
        click.echo(
            f"{src} -> {dst} ({result.address}:{result.port}): {result.bytes_received} of {result.bytes_sent} bytes"
            f" {state} in {result.seconds:.3f} s ({result.throughput_mbit:.1f} Mbit/s),"
            f" {result.retransmissions} retransmissions, rtt {result.rtt_ms:.2f} ms"
        )
    if not result.verified:
        raise NetlabError("the received stream differs from what was sent")


@cli.command()
@click.argument("lab")
@click.argument("node")
@click.argument("dst")
@click.option("--count", "-c", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--interval", "-i", type=click.FloatRange(min=0.001), default=0.2, show_default=True, help="Seconds.")
@click.option("--timeout", "-W", type=click.FloatRange(min=0.001), default=1.0, show_default=True, help="Per reply.")
@click.option("--size", "-s", type=click.IntRange(8, 65000), default=56, show_default=True, help="Payload bytes.")
@click.option("--json", "as_json", is_flag=True)
def ping(lab: str, node: str, dst: str, count: int, interval: float, timeout: float, size: int, as_json: bool) -> None:
    """ICMP echo from NODE to DST (IPv4 or IPv6), each request answered or timed out before the next."""
    from netlab.lab import attach
    from netlab.runtime.netns import require_root
    from netlab.traffic.ping import ping as do_ping

    require_root()
    result = do_ping(attach(lab), node, dst, count=count, interval=interval, timeout=timeout, size=size)
    click.echo(json.dumps(result.as_dict()) if as_json else f"--- {dst} ping from {node} ---\n{result.summary()}")
    if result.received == 0:
        sys.exit(1)  # as ping: no reply at all is a failure


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def doctor(as_json: bool) -> None:
    """Say, for every tracer, whether it can run on this machine and exactly why not."""
    from netlab.tracers.registry import doctor as check

    rows = check()
    if as_json:
        click.echo(
            json.dumps(
                [{"tracer": n, "usable": p.usable, "detail": p.detail, "summary": s} for n, s, p in rows], indent=2
            )
        )
        return
    from netlab.cli import render

    render.table(("tracer", "usable", "detail"), [(n, "yes" if p.usable else "no", p.detail) for n, _s, p in rows])


@cli.command()
@click.argument("lab")
@click.option("--tracer", "tracer_name", default="tracefs", show_default=True, help="See netlab doctor.")
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
    import time as _time

    from netlab.cli import render
    from netlab.lab import attach
    from netlab.tracers.base import TraceOptions
    from netlab.tracers.registry import get

    if graph:
        if tracer_name not in ("tracefs", "ftrace"):  # tracefs: the default, not a choice
            raise click.UsageError(f"--graph is the ftrace tracer's, not {tracer_name}'s")
        if stack:
            raise click.UsageError("--graph and --stack do not go together: the graph is the call stack")
        tracer_name = "ftrace"
    tracer = get(tracer_name)
    options = TraceOptions(stack=stack, graph=graph, count=count)
    tracer.check(options)
    tracer.require()
    handle = attach(lab)
    session = tracer.start(handle, options)
    _err(f"tracing {lab} with {tracer_name}" + (f" for {duration:g}s" if duration else "; Ctrl-C stops") + ": ready")
    deadline = _time.monotonic() + duration if duration else None
    try:
        with render.live_drops(enabled=not as_json) as show:
            while deadline is None or _time.monotonic() < deadline:
                show(session.poll())
                _time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        result = session.stop()
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        render.trace_result(result)


@cli.command()
@click.argument("addresses", nargs=-1, required=True)
def symbolize(addresses: Sequence[str]) -> None:
    """Turn kernel addresses (0xffffffff81586d82) into function+offset from /proc/kallsyms."""
    from netlab.tracers.symbols import symbolize as lookup

    for address in addresses:
        try:
            value = int(address, 16)
        except ValueError:
            raise click.BadParameter(f"'{address}' is not a hex address") from None
        click.echo(f"{address} {lookup(value)}")


@cli.group()
def report() -> None:
    """Work with scenario reports (pytest --netlab-report PATH)."""


@report.command(name="diff")
@click.argument("old", type=click.Path(exists=True, dir_okay=False))
@click.argument("new", type=click.Path(exists=True, dir_okay=False))
def report_diff(old: str, new: str) -> None:
    """What changed from report OLD to NEW: new, vanished and moved drops, scenario by scenario.

    Exits 1 when something changed (like diff), 0 when the kernels behave the same.
    """
    from pathlib import Path

    from netlab.expect.report import diff, load

    lines = diff(load(Path(old)), load(Path(new)))
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("no differences")
    sys.exit(1 if lines else 0)


@cli.command()
@click.argument("reasons", nargs=-1)
@click.option("--list", "list_all", is_flag=True, help="List the explained reasons.")
def explain(reasons: Sequence[str], list_all: bool) -> None:
    """Explain drop REASONS in plain words: what the kernel checked, causes, how to confirm and fix."""
    from netlab.workshop.explain import explain as lookup
    from netlab.workshop.explain import explanations

    if list_all or not reasons:
        for name, e in sorted(explanations().items()):
            click.echo(f"{name:<26} {e.what}")
        return
    click.echo("\n".join(lookup(r).render() for r in reasons), nl=False)


@cli.command()
@click.argument("topology")
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "dot", "mermaid"]), default="svg", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to a file.")
def graph(topology: str, fmt: str, output: str | None) -> None:
    """Draw TOPOLOGY: namespaces as clusters, bridges, veth pairs with names and addresses."""
    from netlab.model.loader import load
    from netlab.workshop.graph import render

    topo, _ = load(topology)
    data = render(topo, fmt)
    if output:
        with open(output, "wb") as f:
            f.write(data)
        click.echo(f"wrote {output}")
    elif fmt in ("svg", "dot", "mermaid"):
        click.echo(data.decode(), nl=False)
    else:
        raise click.UsageError("--format png needs -o FILE")


@cli.command()
@click.argument("lab_dir", type=click.Path(exists=True))
@click.option("--instance", help="The instance you brought the lab up as.")
def check(lab_dir: str, instance: str | None) -> None:
    """Check your running lab against a workshop lab (labs/NN-name): what is right, what is still wrong."""
    from pathlib import Path

    from netlab.runtime.netns import require_root
    from netlab.workshop.checks import run

    require_root()
    spec, outcomes = run(Path(lab_dir), instance)
    click.echo(spec.title)
    for o in outcomes:
        mark = "ok  " if o.ok else "FAIL"
        click.echo(f"  {mark} {o.name}: {o.detail}")
        if not o.ok and o.hint:
            click.echo(f"       hint: {o.hint}")
    wrong = [o for o in outcomes if not o.ok]
    if wrong:
        click.echo(f"{len(wrong)} of {len(outcomes)} checks still wrong")
        sys.exit(1)
    click.echo(f"all {len(outcomes)} checks pass")


def _add_kernel_commands() -> None:
    from netlab.cli.kernels import kernels, matrix, vm

    for command in (kernels, matrix, vm):
        cli.add_command(command)


_add_kernel_commands()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the click CLI, turning netlab errors into a message and an exit code (what the
    ``netlab`` command runs for everything :mod:`netlab.cli.entry` does not take itself)."""

    def run() -> None:
        try:
            cli.main(args=list(argv) if argv is not None else None, prog_name="netlab", standalone_mode=False)
        except click.exceptions.Abort:
            _err("aborted")
            sys.exit(130)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)

    commands.guarded(run)
