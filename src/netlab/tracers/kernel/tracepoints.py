"""The tracepoints a packet's life is read from, named once for every tracer that uses them.

A drop is ``skb:kfree_skb``; a delivered packet ends in ``skb:consume_skb``; its path is the
device events in between. tracefs names them ``system/event`` (a directory), perf
``system:event``; correlation sees the bare event name.
"""

from __future__ import annotations

DROP = ("skb", "kfree_skb")
FREE = ("skb", "consume_skb")
PATH = (("net", "net_dev_start_xmit"), ("net", "netif_rx"), ("net", "netif_receive_skb"))
ALL = (DROP, FREE, *PATH)

#: the events correlation treats as hops (``net_dev_queue`` appears in older recordings)
PATH_NAMES = frozenset({name for _system, name in PATH} | {"net_dev_queue"})


def tracefs_path(point: tuple[str, str]) -> str:
    """``skb/kfree_skb``: where the event lives under ``events/``."""
    return "/".join(point)


def perf_name(point: tuple[str, str]) -> str:
    """``skb:kfree_skb``: how perf names it."""
    return ":".join(point)
