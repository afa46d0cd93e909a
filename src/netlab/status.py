"""What labs are up, and what their interfaces are now: ``netlab status``, from the journals and
one link and one address dump per node (no model, no validation)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from netlab.runtime import journal, netlink, netns


@dataclass(frozen=True)
class LiveAddress:
    """An address seen on a live interface."""

    ifname: str
    address: str
    prefixlen: int

    def __str__(self) -> str:
        return f"{self.address}/{self.prefixlen}"


@dataclass(frozen=True)
class LiveInterface:
    """A live interface of a node."""

    index: int
    name: str
    up: bool
    carrier: bool
    operstate: str
    addresses: tuple[LiveAddress, ...]


def live_interfaces(netns_name: str) -> list[LiveInterface]:
    """The interfaces of a namespace as the kernel has them now (one link and one address dump)."""
    from netlab.runtime import queries  # lazy: pyroute2, which a lab's up and down never need

    with contextlib.closing(netlink.open_route_socket(netns_name)) as sock:
        links = netlink.dump_links(sock)
        addrs = queries.dump_addresses(sock)
    out = []
    for index, link in sorted(links.items()):
        mine = tuple(LiveAddress(link.ifname, a, p) for i, a, p in addrs if i == index)
        out.append(LiveInterface(index, link.ifname, link.up, link.carrier, link.operstate, mine))
    return out


def status(name: str | None = None) -> list[dict[str, Any]]:
    """Labs with their state, nodes, interfaces and addresses, ready for JSON."""
    names = [name] if name else journal.all_labs()
    out: list[dict[str, Any]] = []
    for lab in names:
        written = journal.read(lab)
        if written is None:
            raise journal.not_up(lab)
        entry: dict[str, Any] = {
            "lab": lab,
            "state": written.state,
            "source": written.header.get("source"),
            "nodes": [],
        }
        for node, ns in written.header.get("netns", {}).items():
            item: dict[str, Any] = {"node": node, "netns": ns, "interfaces": []}
            if written.state == "up" and netns.exists(ns):
                for itf in live_interfaces(ns):
                    item["interfaces"].append(
                        {
                            "name": itf.name,
                            "index": itf.index,
                            "up": itf.up,
                            "carrier": itf.carrier,
                            "operstate": itf.operstate,
                            "addresses": [str(a) for a in itf.addresses],
                        }
                    )
            entry["nodes"].append(item)
        out.append(entry)
    return out
