"""Send frames from a node's interface: recipes by name, or any bytes / scapy packets."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from netlab import marker
from netlab.errors import NetlabError
from netlab.headers import packet_of
from netlab.lab import Lab
from netlab.traffic import recipes
from netlab.traffic import sent as sent_log
from netlab.traffic.packet import PacketSocket
from netlab.traffic.resolve import NextHop, announcement, interface_exists, interface_mac, next_hop


@dataclass(frozen=True)
class Injection:
    """What was sent: enough to find these frames again in captures and traces."""

    node: str
    ifname: str
    recipe: str
    run: int
    sent: int
    src_mac: str
    dst_mac: str | None
    dst_ip: str | None
    markers: tuple[marker.Marker, ...] = field(repr=False)


def send(lab: Lab, node: str, ifname: str, frames: Iterable[bytes | Any]) -> int:
    """Send raw frames (bytes or scapy packets) on ``node:ifname`` over one socket."""
    ns = lab.node(node).netns
    if not interface_exists(ns, ifname):
        raise NetlabError(f"node '{node}' of lab '{lab.name}' has no interface '{ifname}'")
    with PacketSocket.sender(ns, ifname) as sock:
        return sock.send(bytes(f) for f in frames)


def _announce(lab: Lab, hop: NextHop) -> None:
    """The next hop's gratuitous ARP, sent from its own interface (IPv4 next hops only)."""
    frame = announcement(hop)
    if frame is not None:
        with PacketSocket.sender(lab.node(hop.node).netns, hop.ifname) as sock:
            sock.send([frame])


def _record(lab: Lab, node: str, ifname: str, frame: bytes, run: int) -> None:
    """Log what was sent (its headers, read from the frame itself) for tracers that cannot read
    packets (:mod:`netlab.traffic.sent`)."""
    kind = int.from_bytes(frame[12:14], "big")
    facts = packet_of(frame, kind if kind >= 0x600 else 0)  # below 0x600: an 802.3 length
    sent_log.append(lab.name, node, ifname, replace(facts, marker=f"{run:08x}:*"))


def _source(src: str, dst: str | None, recipe_name: str, needs_ip: bool) -> str:
    """A chosen (possibly spoofed) source address, checked against the recipe and ``dst``."""
    try:
        spoofed = ipaddress.ip_address(src)
    except ValueError:
        raise NetlabError(f"bad source address '{src}'") from None
    if not needs_ip:
        raise NetlabError(f"recipe '{recipe_name}' has no IP header for --src")
    if dst is not None and spoofed.version != ipaddress.ip_address(dst).version:
        raise NetlabError(f"--src {src} and --dst {dst} are of different IP versions")
    return src


def inject(
    lab: Lab,
    node: str,
    ifname: str,
    recipe_name: str,
    *,
    count: int = 1,
    dst: str | None = None,
    dst_mac: str | None = None,
    run: int | None = None,
    src: str | None = None,
    broadcast: bool = False,
    announce: bool = True,
    **options: Any,
) -> Injection:
    """Build ``count`` frames of a recipe from ``node:ifname`` and send them.

    For IP recipes the destination MAC is the next hop's, found from the lab (no ARP request is
    sent) unless ``dst_mac`` forces one (e.g. another host's MAC, to see an OTHERHOST drop) or
    ``broadcast`` sends to ff:ff:ff:ff:ff:ff. The source address is the interface's, or ``src``
    (any address: a spoofed source is the point of some tests). Where the next hop was found
    from the lab, it first ``announce``-s itself (a gratuitous ARP, consumed by every host), so
    that bridges on the way deliver the frames to it alone rather than flooding bystanders.
    """
    if count <= 0:
        raise NetlabError(f"count must be at least 1, got {count}")
    if broadcast:
        if dst_mac is not None:
            raise NetlabError("give --broadcast or --dst-mac, not both")
        dst_mac = recipes.BROADCAST
    the_recipe = recipes.recipe(recipe_name)
    handle = lab.node(node)
    if not interface_exists(handle.netns, ifname):
        raise NetlabError(f"node '{node}' of lab '{lab.name}' has no interface '{ifname}'")
    src_ip = None
    if dst is not None:
        try:
            version = ipaddress.ip_address(dst).version
        except ValueError:
            raise NetlabError(f"bad address '{dst}'") from None
        if the_recipe.needs_ip:
            found = handle.addresses(ifname, version) or handle.addresses(None, version)
            src_ip = found[0] if found else None
            if dst_mac is None:
                hop, route = next_hop(lab, handle, dst)
                dst_mac, src_ip = hop.mac, route.source or src_ip
                if announce:
                    _announce(lab, hop)
    elif the_recipe.needs_ip:
        raise NetlabError(f"recipe '{recipe_name}' needs --dst ADDRESS")
    if src is not None:
        src_ip = _source(src, dst, recipe_name, the_recipe.needs_ip)
    spec = recipes.FrameSpec(
        src_mac=interface_mac(handle.netns, ifname),
        run=run if run is not None else marker.new_run(),
        count=count,
        dst_mac=dst_mac,
        src_ip=src_ip,
        dst_ip=dst,
        **options,
    )
    frames = recipes.build(recipe_name, spec)
    with PacketSocket.sender(handle.netns, ifname) as sock:
        sent = sock.send(frames)
    _record(lab, node, ifname, frames[0], spec.run)
    return Injection(
        node=node,
        ifname=ifname,
        recipe=recipe_name,
        run=spec.run,
        sent=sent,
        src_mac=spec.src_mac,
        dst_mac=dst_mac,
        dst_ip=dst,
        markers=tuple(marker.Marker(spec.run, i) for i in range(count)),
    )
