"""Acting inside a lab's nodes from the command line: ``exec``, ``shell``, and traffic
(``inject``, ``capture``, ``flow``, ``ping``)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from netlab.cli import commands
from netlab.errors import NetlabError
from netlab.lab import attach
from netlab.runtime.netns import enter_for_exec, require_root
from netlab.traffic.capture import Capture
from netlab.traffic.describe import summary
from netlab.traffic.flow import tcp_flow
from netlab.traffic.inject import inject as do_inject
from netlab.traffic.ping import ping as do_ping


def _exec_in(lab: str, node: str, argv: list[str]) -> None:

    require_root()
    ns = attach(lab).node(node).netns
    enter_for_exec(ns)
    os.environ.update({"NETLAB_LAB": lab, "NETLAB_NODE": node, "NETLAB_NETNS": ns})
    try:
        os.execvp(argv[0], argv)  # noqa: S606 - running the user's own command is the point
    except FileNotFoundError:
        raise NetlabError(f"command not found: {argv[0]}") from None


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("lab")
@click.argument("node")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(lab: str, node: str, command: Sequence[str]) -> None:
    """Run COMMAND inside NODE of LAB (use -- before the command)."""
    _exec_in(lab, node, list(command))


@click.command()
@click.argument("lab")
@click.argument("node")
def shell(lab: str, node: str) -> None:
    """Open an interactive shell inside NODE of LAB."""
    commands.err(f"entering {lab}/{node}; exit to leave")
    _exec_in(lab, node, [os.environ.get("SHELL", "/bin/bash")])


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


@click.command()
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


@click.command()
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

    require_root()
    where = Path(pcap) if pcap else None
    with Capture(attach(lab), node, interface, expression=expression, pcap=where, limit=count) as cap:
        commands.err(f"capturing on {lab}/{node}:{interface}" + (f" ({expression})" if expression else "") + ": ready")
        seen = 0
        try:
            for frame in cap.follow(count, timeout):
                seen += 1
                if not quiet:
                    click.echo(summary(frame))
        except KeyboardInterrupt:
            pass
    commands.err(f"{seen} frame(s) captured" + (f", written to {pcap}" if pcap else ""))


@click.command()
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


@click.command()
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

    require_root()
    result = do_ping(attach(lab), node, dst, count=count, interval=interval, timeout=timeout, size=size)
    click.echo(json.dumps(result.as_dict()) if as_json else f"--- {dst} ping from {node} ---\n{result.summary()}")
    if result.received == 0:
        sys.exit(1)  # as ping: no reply at all is a failure
