"""What tracers read of the kernel itself: drop-reason names from the format file, kallsyms."""

from __future__ import annotations

from pathlib import Path

from netlab.tracers.kernel.reasons import parse_format
from netlab.tracers.kernel.symbols import parse as parse_kallsyms
from netlab.tracers.kernel.symbols import symbolize

RECORDED = Path(__file__).resolve().parents[3] / "data" / "recorded"


def test_reasons_come_from_the_format_file() -> None:
    table = parse_format((RECORDED / "kfree_skb.format").read_text())
    assert table[2] == "NOT_SPECIFIED"
    assert {"NO_SOCKET", "NETFILTER_DROP", "UNHANDLED_PROTO", "OTHERHOST"} <= set(table.values())
    assert parse_format('print fmt: "skbaddr=%p", REC->skbaddr') == {}


def test_kallsyms_symbolize() -> None:
    syms = parse_kallsyms(
        "ffffffff81000000 T _stext\nffffffff81586000 t __netif_receive_skb_core.constprop.0\n"
        "ffffffff81587040 T netif_rx\nffffffff81600000 d some_data\n"
    )
    assert symbolize(0xFFFFFFFF81586D82, syms) == "__netif_receive_skb_core.constprop.0+0xd82/0x1040"
