"""What tracers read of the kernel itself: drop-reason names from the format file, kallsyms."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.tracers.kernel import symbols
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


def test_kallsyms_is_read_again_when_a_module_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lab's up may load vxlan: an address in it must not be named after the module below."""
    kallsyms, modules = tmp_path / "kallsyms", tmp_path / "modules"
    kallsyms.write_text("ffffffff81000000 T _stext\nffffffffc0000000 t nft_pipapo_insert\t[nf_tables]\n")
    modules.write_text("nf_tables 1 0 - Live 0xffffffffc0000000\n")
    monkeypatch.setattr(symbols, "KALLSYMS", kallsyms)
    monkeypatch.setattr(symbols, "MODULES", modules)
    assert symbols.symbolize(0xFFFFFFFFC0100010).startswith("nft_pipapo_insert+")
    kallsyms.write_text(kallsyms.read_text() + "ffffffffc0100000 t vxlan_rcv\t[vxlan]\n")
    modules.write_text(modules.read_text() + "vxlan 1 0 - Live 0xffffffffc0100000\n")
    assert symbols.symbolize(0xFFFFFFFFC0100010) == "vxlan_rcv+0x10"
    modules.write_text(modules.read_text().replace("nf_tables 1 0", "nf_tables 2 3"))  # use counts
    assert symbols._modules() == (("nf_tables", "0xffffffffc0000000"), ("vxlan", "0xffffffffc0100000"))
