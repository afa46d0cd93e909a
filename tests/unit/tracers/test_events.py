"""Trace results as data: function names as the kernel's compilers spell them."""

from __future__ import annotations

from pathlib import Path

from netlab.tracers.events import Location, base_function

RECORDED = Path(__file__).resolve().parents[2] / "data" / "recorded"


def test_base_function_strips_compiler_suffixes() -> None:
    assert base_function("__netif_receive_skb_core.constprop.0") == "__netif_receive_skb_core"
    assert base_function("tcp_v4_rcv") == "tcp_v4_rcv"
    assert base_function("foo.isra.0.cold") == "foo"
    loc = Location.parse("__netif_receive_skb_core.constprop.0+0x7e6/0x1040")
    assert (loc.function, loc.offset, loc.size, loc.base) == (
        "__netif_receive_skb_core.constprop.0",
        0x7E6,
        0x1040,
        "__netif_receive_skb_core",
    )


def test_a_location_whose_numbers_are_cut_short_keeps_its_function() -> None:
    """dropwatch on 6.1 once printed ``.../0x``: the drop is still counted, at its function."""
    assert Location.parse("__udp4_lib_rcv+0x8bd/0x") == Location("__udp4_lib_rcv", 0x8BD, None)
    assert Location.parse("__udp4_lib_rcv+0x/0x10") == Location("__udp4_lib_rcv", 0, 0x10)
    assert Location.parse("udp_rcv") == Location("udp_rcv", 0, None)
