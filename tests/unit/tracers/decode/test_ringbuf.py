"""The binary ring-buffer decoder: synthetic pages for the layout, recorded pages per kernel.

The recordings (tests/data/recorded/raw/RELEASE/, made by scripts/record_raw_trace.py inside
each matrix kernel) hold 3 UDP datagrams to a closed port in bridge3. Each kernel lays out
``skb:kfree_skb`` differently (5.10: no reason; 6.11+: rx_sk before location), which is what
the decoder must survive by reading fields by name.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from netlab.tracers.decode.records import Record
from netlab.tracers.decode.ringbuf import EventFormat, RecordDecoder, entries
from netlab.tracers.events import base_function
from netlab.tracers.kernel import symbols
from netlab.tracers.kernel.reasons import parse_format

RAW = Path(__file__).parents[3] / "data" / "recorded" / "raw"
KERNELS = sorted(p.name for p in RAW.iterdir() if p.is_dir())
PAGE = 4096

FORMAT = """name: demo
ID: 7
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:__data_loc char[] name;\toffset:16;\tsize:4;\tsigned:0;
\tfield:int delta;\toffset:20;\tsize:4;\tsigned:1;

print fmt: "skbaddr=%p"
"""


def record(pid: int, skb: int, name: bytes, delta: int) -> bytes:
    body = struct.pack("<HBBiQIi", 7, 0, 0, pid, skb, (len(name) << 16) | 24, delta) + name
    return body + b"\0" * (-len(body) % 4)


def page(*chunks: bytes, ts: int = 1_000) -> bytes:
    data = b"".join(chunks)
    return (struct.pack("<QQ", ts, len(data)) + data).ljust(PAGE, b"\0")


def header(type_len: int, delta: int) -> bytes:
    return struct.pack("<I", type_len | (delta << 5))


def test_fields_are_found_by_name_with_their_kind() -> None:
    fmt = EventFormat.parse(FORMAT)
    assert (fmt.name, fmt.id) == ("demo", 7)
    assert fmt.fields["name"].kind == "data_loc" and fmt.fields["delta"].signed
    assert fmt.fields["skbaddr"].offset == 8


def test_short_long_extended_and_padded_entries() -> None:
    short = record(42, 0xFFFF888001, b"eth0\0", -3)
    long_ = record(43, 0xFFFF888002, b"veth-long-name\0", 5)
    raw = page(
        header(len(short) // 4, 10) + short,  # type_len holds the length
        header(30, 7) + struct.pack("<I", 1),  # time extend: (1 << 27) + 7
        header(0, 0) + struct.pack("<I", len(long_) + 4) + long_,  # length in array[0]
        header(29, 0) + struct.pack("<I", 8) + b"\0" * 8,  # padding
    )
    found = list(entries(raw))
    assert [e.ts for e in found] == [1_010, 1_010 + (1 << 27) + 7]
    fmt = EventFormat.parse(FORMAT)
    names = [fmt.fields["name"].read(e.data) for e in found]
    assert names == ["eth0", "veth-long-name"]
    assert fmt.fields["delta"].read(found[0].data) == -3


def test_decoder_makes_records_like_the_text_parser() -> None:
    fmt = EventFormat.parse(FORMAT)
    body = record(42, 0xFFFF888001, b"eth0\0", 1)
    dec = RecordDecoder([fmt], None, lambda a: f"{a:#x}", {}, cpu=1)
    assert dec.feed(page(header(len(body) // 4, 5) + body)) == []  # held until we know no stack follows
    (rec,) = dec.flush()
    assert isinstance(rec, Record)
    assert (rec.event, rec.pid, rec.cpu, rec.device) == ("demo", 42, 1, "eth0")
    assert rec.skbaddr == "ffff888001"


def test_an_empty_or_short_page_has_no_entries() -> None:
    assert list(entries(b"")) == []
    assert list(entries(page())) == []


@pytest.mark.parametrize("release", KERNELS)
def test_recorded_udp_to_a_closed_port(release: str) -> None:
    d = RAW / release
    kfree_text = (d / "skb.kfree_skb.format").read_text()
    formats = [EventFormat.parse(kfree_text), EventFormat.parse((d / "net.netif_receive_skb.format").read_text())]
    stack = EventFormat.parse((d / "ftrace.kernel_stack.format").read_text())
    syms = symbols.parse((d / "kallsyms").read_text())
    reasons = parse_format(kfree_text)
    records: list[Record] = []
    for raw in sorted(d.glob("cpu*.raw")):
        data = raw.read_bytes()
        dec = RecordDecoder(formats, stack, lambda a: symbols.symbolize(a, syms), reasons, cpu=int(raw.stem[3:]))
        for off in range(0, len(data), PAGE):
            records += dec.feed(data[off : off + PAGE])
        records += dec.flush()
    drops = [r for r in records if r.event == "kfree_skb"]
    udp = [r for r in drops if base_function(r.fields["location"].split("+")[0]) in ("__udp4_lib_rcv", "udp_rcv")]
    assert len(udp) == 3, [r.fields for r in drops]
    for r in udp:
        assert r.fields.get("reason") == ("NO_SOCKET" if reasons else None)
        assert any(frame.split("+")[0] in ("__udp4_lib_rcv", "udp_rcv") for frame in r.stack)
    assert any(r.event == "netif_receive_skb" and r.device == "calmveth2" for r in records)


@pytest.mark.parametrize("release", KERNELS)
def test_reason_table_of_each_kernel(release: str) -> None:
    """The reason names come from each kernel's own format: none before 5.17."""
    table = parse_format((RAW / release / "skb.kfree_skb.format").read_text())
    if release.startswith("5.10."):
        assert table == {}
        return
    assert "NO_SOCKET" in table.values() and "NOT_SPECIFIED" in table.values()
    assert len(set(table.values())) == len(table)
