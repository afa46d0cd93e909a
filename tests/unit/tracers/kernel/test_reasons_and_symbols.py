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


def test_module_symbols_below_the_core_are_sorted_in() -> None:
    syms = parse_kallsyms(
        "ffffffffa0000100 t early_fn\t[early]\nffffffff81000000 T _stext\nffffffff81000100 t next_fn\n"
        "ffffffffc0000000 t late_fn\t[late]\nffffffffa0000000 W weak_fn\t[early]\n"
    )
    assert syms.names == ("_stext", "next_fn", "weak_fn", "early_fn", "late_fn")
    assert symbolize(0xFFFFFFFFA0000180, syms) == "early_fn+0x80/0x1fffff00"


def fresh() -> None:
    """Forget the tables read from the real /proc/kallsyms (or a test's)."""
    symbols._core.cache_clear()
    symbols._symbols.cache_clear()


def test_kallsyms_is_read_again_when_a_module_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """A lab's up may load vxlan: an address in it must not be named after the module below;
    the core kernel's symbols are parsed once."""
    kallsyms, modules = tmp_path / "kallsyms", tmp_path / "modules"
    kallsyms.write_text("ffffffff81000000 T _stext\nffffffffc0000000 t nft_pipapo_insert\t[nf_tables]\n")
    modules.write_text("nf_tables 1 0 - Live 0xffffffffc0000000\n")
    monkeypatch.setattr(symbols, "KALLSYMS", kallsyms)
    monkeypatch.setattr(symbols, "MODULES", modules)
    fresh()
    request.addfinalizer(fresh)
    assert symbols.symbolize(0xFFFFFFFFC0100010).startswith("nft_pipapo_insert+")
    kallsyms.write_text(kallsyms.read_text() + "ffffffffc0100000 t vxlan_rcv\t[vxlan]\n")
    modules.write_text(modules.read_text() + "vxlan 1 0 - Live 0xffffffffc0100000\n")
    assert symbols.symbolize(0xFFFFFFFFC0100010) == "vxlan_rcv+0x10"
    modules.write_text(modules.read_text().replace("nf_tables 1 0", "nf_tables 2 3"))  # use counts
    assert symbols._modules() == (("nf_tables", "0xffffffffc0000000"), ("vxlan", "0xffffffffc0100000"))
    kallsyms.write_text(kallsyms.read_text().replace("_stext", "_changed"))
    modules.write_text(
        modules.read_text().replace("vxlan 1", "vxlan 2").replace(" Live 0xffffffffc01", " Live 0xffffffffc02")
    )
    assert symbols.symbolize(0xFFFFFFFF81000010).startswith("_stext+0x10")  # the core is never read again
