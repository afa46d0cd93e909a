"""Where a packet from a node should go at layer 2, found from the lab rather than the wire.

To build an Ethernet frame for ``--dst 198.51.100.2`` we need the next hop's MAC. Instead of
sending ARP or a ping (traffic that would show up in the very traces a user is reading), we
ask the node's routing table for the next hop, find which node of the lab owns that address,
and read that interface's MAC in its namespace. The one frame netlab does send on its own is
the next hop's gratuitous ARP (:func:`announcement`), which no host drops.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import socket
import struct
from dataclasses import dataclass

from scapy.layers.l2 import ARP, Ether

from netlab.errors import NetlabError
from netlab.lab import Lab, Node
from netlab.runtime import netlink, queries
from netlab.runtime.netns import entered

SIOCGIFHWADDR = 0x8927


def interface_mac(netns: str, ifname: str) -> str:
    """The MAC of ``ifname`` inside ``netns``."""
    with entered(netns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            info = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, struct.pack("256s", ifname.encode()[:15]))
        except OSError:
            raise NetlabError(f"no interface '{ifname}' in namespace {netns}") from None
    return ":".join(f"{b:02x}" for b in info[18:24])


def interface_exists(netns: str, ifname: str) -> bool:
    """True when ``ifname`` exists in ``netns``."""
    with entered(netns):
        try:
            socket.if_nametoindex(ifname)
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class Route:
    """How a node reaches an address: out of ``ifname`` via ``next_hop`` (the address itself when direct)."""

    ifname: str
    next_hop: str
    source: str | None


def route_to(node: Node, address: str) -> Route:
    """Ask the node's kernel (RTM_GETROUTE) how it reaches ``address``."""

    with contextlib.closing(netlink.open_route_socket(node.netns)) as sock:
        try:
            oif, gateway, source = queries.route_get(sock, address)
        except OSError as exc:
            raise NetlabError(f"node '{node.name}' has no route to {address}: {exc.strerror}") from None
    with entered(node.netns):
        ifname = socket.if_indextoname(oif)
    return Route(ifname=ifname, next_hop=gateway or address, source=source)


def owner_of(lab: Lab, address: str) -> tuple[str, str] | None:
    """The (node, ifname) of the lab that has ``address`` configured."""
    ip = ipaddress.ip_address(address)
    for node_name, node in lab.topology.nodes.items():
        for ifname, iface in node.interfaces.items():
            if any(a.ip == ip for a in iface.addresses):
                return node_name, ifname
    return None


@dataclass(frozen=True)
class NextHop:
    """Where a frame goes first: the lab interface that has the next hop's address."""

    node: str
    ifname: str
    address: str
    mac: str


def next_hop(lab: Lab, node: Node, address: str) -> tuple[NextHop, Route]:
    """The next hop of a frame from ``node`` to ``address`` (its MAC is what the frame must
    carry), and the route it follows."""
    route = route_to(node, address)
    owner = owner_of(lab, route.next_hop)
    if owner is None:
        raise NetlabError(
            f"cannot find the MAC of next hop {route.next_hop}: no node of lab '{lab.name}' has that address",
            hint="pass --dst-mac",
        )
    owner_node, owner_if = owner
    mac = interface_mac(lab.node(owner_node).netns, owner_if)
    return NextHop(owner_node, owner_if, route.next_hop, mac), route


def announcement(hop: NextHop) -> bytes | None:
    """A gratuitous ARP from ``hop`` (None for an IPv6 next hop): every bridge on its way learns
    where the MAC is, and every host consumes it (none drops it), so the frames that follow go
    to the next hop alone instead of being flooded to bystanders, who would drop them as
    OTHERHOST in the very trace a user is reading."""
    ip = ipaddress.ip_address(hop.address)
    if ip.version != 4:
        return None
    arp = ARP(op="who-has", hwsrc=hop.mac, psrc=hop.address, hwdst="00:00:00:00:00:00", pdst=hop.address)
    return bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=hop.mac) / arp).ljust(60, b"\0")
