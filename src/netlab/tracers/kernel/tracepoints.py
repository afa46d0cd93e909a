"""The tracepoints a packet's life is read from, named once for every tracer that uses them.

A drop is ``skb:kfree_skb``; a delivered packet ends in ``skb:consume_skb``; its path is the
device events in between. The transmit side is read twice: ``net_dev_queue`` when a packet is
handed to a device, before its qdisc and tc egress, and ``net_dev_start_xmit`` when the driver
gets it; a packet the qdisc drops has only the first, and that is what places it on the device
that sent it. tracefs names them ``system/event`` (a directory), perf
``system:event``; correlation sees the bare event name.
"""

from __future__ import annotations

DROP = ("skb", "kfree_skb")
FREE = ("skb", "consume_skb")
PATH = (("net", "net_dev_queue"), ("net", "net_dev_start_xmit"), ("net", "netif_rx"), ("net", "netif_receive_skb"))
ALL = (DROP, FREE, *PATH)

#: the events correlation treats as hops
PATH_NAMES = frozenset(name for _system, name in PATH)


def tracefs_path(point: tuple[str, str]) -> str:
    """``skb/kfree_skb``: where the event lives under ``events/``."""
    return "/".join(point)


def perf_name(point: tuple[str, str]) -> str:
    """``skb:kfree_skb``: how perf names it."""
    return ":".join(point)
