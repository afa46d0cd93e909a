"""Wait, boundedly, until a freshly built lab is usable.

"Usable" means every veth end and every STP-less bridge with ports is administratively up,
has carrier (IFF_LOWER_UP) and operstate UP. The last one matters: until the kernel's
linkwatch marks a device operationally up, it also has not swapped in the device's real qdisc,
and packets sent through it are dropped by the placeholder ``noop`` qdisc. Addresses need no
wait: IPv4 is usable at once and IPv6 addresses are added with NODAD.

A bridge without an address needs only carrier: it sends nothing itself, so its own
qdisc does not matter, and the kernel's linkwatch, rate-limited to once a second for such
events, may take that long to mark it UP.

A bridge with STP on is left out: its ports take 2 x forward_delay to forward, which is the
behaviour a lab with STP exists to show, not something ``up`` should hide by waiting.
"""

from __future__ import annotations

import socket

from netlab.errors import ReadyTimeoutError
from netlab.plan.steps import Plan
from netlab.runtime import wait
from netlab.runtime.netlink import dump_links


def _not_ready(plan: Plan, sockets: dict[str, socket.socket], pending: set[str]) -> list[str]:
    """What is not usable yet; nodes found ready leave ``pending`` and are not asked again."""
    missing: list[str] = []
    for want in plan.readiness:
        if want.node not in pending:
            continue
        before = len(missing)
        links = dump_links(sockets[want.node])
        checks = [(i, True) for i in want.carrier] + [(i, False) for i in want.carrier_only]
        for (ifname, index), operstate in checks:
            state = links.get(index)
            if state is None:
                missing.append(f"{want.node}:{ifname} (gone)")
            elif not (state.up and state.carrier and (state.operstate == "UP" or not operstate)):
                flags = "up" if state.up else "down"
                carrier = "carrier" if state.carrier else "no carrier"
                missing.append(f"{want.node}:{ifname} ({flags}, {carrier}, operstate {state.operstate})")
        if len(missing) == before:
            pending.discard(want.node)
    return missing


def wait_usable(plan: Plan, sockets: dict[str, socket.socket], timeout: float) -> None:
    """Return once the lab is usable; raise :class:`ReadyTimeoutError` naming what is not."""
    pending = {r.node for r in plan.readiness if r.carrier or r.carrier_only}
    missing = wait.LINKS_USABLE.within(timeout).poll(lambda: _not_ready(plan, sockets, pending), lambda left: not left)
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise ReadyTimeoutError(
            f"lab '{plan.lab}' not usable after {timeout:g}s: {shown}",
            hint="raise --timeout, or check the exec commands of the topology",
        )
