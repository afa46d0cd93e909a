"""Expectations several scenarios share, measured on every kernel of the matrix.

Measured with ``netlab matrix`` on Debian's 5.10, 6.1, 6.12 and 7.2 and the development 6.18.
Two kernel changes run through the whole suite:

* before 5.17 ``skb:kfree_skb`` has no reason field: there the location alone is asserted
  (reason ``None``), which is all dropwatch-era tools ever showed;
* from 7.x ``__udp4_lib_rcv`` is inlined into ``udp_rcv``, so UDP's drops are located there.
"""

from __future__ import annotations

from netlab.testing import Drop, NewBehaviour, by_kernel

NO_REASONS = "<5.17"


def located(function: str, reason: str, node: str | None = None) -> dict[str, Drop]:
    """One drop site on every kernel: the location everywhere, the reason from 5.17 on."""
    return {NO_REASONS: Drop(function, None, node), ">=5.17": Drop(function, reason, node)}


def udp(reason: str, node: str) -> Drop | NewBehaviour:
    """A drop in UDP's receive path, in the function this kernel has it in."""
    return by_kernel(
        {
            NO_REASONS: Drop("__udp4_lib_rcv", None, node),
            "5.17-7.1": Drop("__udp4_lib_rcv", reason, node),
            ">=7.2": Drop("udp_rcv", reason, node),
        }
    )


def since_6_12(function: str, reason: str, node: str) -> dict[str, Drop]:
    """A drop site whose reason came in 6.12's cycle: 6.1 frees the packet there as
    NOT_SPECIFIED, 5.10 names only the location."""
    return {
        NO_REASONS: Drop(function, None, node),
        "5.17-6.11": Drop(function, "NOT_SPECIFIED", node),
        ">=6.12": Drop(function, reason, node),
    }
