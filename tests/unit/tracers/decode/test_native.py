"""The native walker against the pure-Python decoder and correlator: the same pages in, the same
drops, paths and counts out.

The pages are made from a real trace (tests/data/recorded/tracefs-bridge3.txt: pings, UDP to a
closed port and a netfilter drop across bridge3), written into the ring-buffer layout with
formats of our own whose fields sit where no kernel puts them, so nothing but the names can
find them. Also: the recorded raw pages of each matrix kernel decode the same both ways.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from netlab.model.loader import load as load_topology
from netlab.plan.planner import layout
from netlab.tracers.decode import native
from netlab.tracers.decode.native import follow
from netlab.tracers.decode.records import Record, parse_stream
from netlab.tracers.decode.ringbuf import EventFormat, RecordDecoder
from netlab.tracers.kernel import symbols
from netlab.tracers.kernel.reasons import parse_format
from netlab.tracers.placement.attribution import ContextCache, LabMap
from netlab.tracers.placement.correlate import Correlator

DATA = Path(__file__).parents[3] / "data" / "recorded"
PAGE = 4096
COMMON = """\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;
"""
KFREE, CONSUME = 21, 22
PATH_IDS = {"net_dev_start_xmit": 23, "netif_rx": 24, "netif_receive_skb": 25}
REASONS = {0: "NOT_SPECIFIED", 2: "NO_SOCKET", 6: "NETFILTER_DROP", 9: "UNHANDLED_PROTO", 11: "OTHERHOST"}


def fmt(name: str, type_id: int, fields: str) -> EventFormat:
    return EventFormat.parse(f'name: {name}\nID: {type_id}\nformat:\n{COMMON}\n{fields}\nprint fmt: ""\n')


FORMATS = [
    # reason before location, protocol last: no kernel's order
    fmt(
        "kfree_skb",
        KFREE,
        "\tfield:enum skb_drop_reason reason;\toffset:8;\tsize:4;\tsigned:0;\n"
        "\tfield:void * skbaddr;\toffset:16;\tsize:8;\tsigned:0;\n"
        "\tfield:void * location;\toffset:24;\tsize:8;\tsigned:0;\n"
        "\tfield:unsigned short protocol;\toffset:32;\tsize:2;\tsigned:0;\n",
    ),
    fmt("consume_skb", CONSUME, "\tfield:void * skbaddr;\toffset:12;\tsize:8;\tsigned:0;\n"),
    *(
        fmt(
            name,
            type_id,
            "\tfield:unsigned int len;\toffset:8;\tsize:4;\tsigned:0;\n"
            "\tfield:void * skbaddr;\toffset:12;\tsize:8;\tsigned:0;\n"
            "\tfield:__data_loc char[] name;\toffset:20;\tsize:4;\tsigned:0;\n",
        )
        for name, type_id in PATH_IDS.items()
    ),
]


class Contexts(ContextCache):
    """Every process is the tracing process (as in the recorded run): nothing is read from /proc."""

    def get(self, pid: int) -> tuple[int | None, bool]:
        return (None, True)


def encode(rec: Record, addresses: dict[str, int]) -> bytes:
    """One record in the layout of FORMATS."""
    skb = int(rec.fields["skbaddr"], 16)
    if rec.event == "kfree_skb":
        reason = {v: k for k, v in REASONS.items()}.get(rec.fields.get("reason", ""), 0)
        loc = addresses.setdefault(rec.fields["location"], 0xFFFFFFFF81000000 + 0x1000 * len(addresses))
        body = struct.pack(
            "<HBBiIiQQH", KFREE, 0, 0, rec.pid, reason, 0, skb, loc, int(rec.fields.get("protocol", "0"))
        )
    elif rec.event == "consume_skb":
        body = struct.pack("<HBBiiQ", CONSUME, 0, 0, rec.pid, 0, skb)
    else:
        name = (rec.fields.get("name") or rec.fields["dev"]).encode() + b"\0"
        body = struct.pack("<HBBiIQI", PATH_IDS[rec.event], 0, 0, rec.pid, 60, skb, (len(name) << 16) | 24) + name
    return body + b"\0" * (-len(body) % 4)


def pages(records: list[Record], addresses: dict[str, int]) -> Iterator[bytes]:
    """Ring-buffer pages holding ``records``, with a time extend wherever a delta is too big."""
    start, data, last = int(records[0].time * 1e9), b"", int(records[0].time * 1e9)
    for rec in records:
        ts = int(rec.time * 1e9)
        body = encode(rec, addresses)
        entry = b""
        delta = ts - last
        if delta >= 1 << 27:
            entry += struct.pack("<II", 30 | ((delta & ((1 << 27) - 1)) << 5), delta >> 27)
            delta = 0
        entry += struct.pack("<I", (len(body) // 4) | (delta << 5)) + body
        if 16 + len(data) + len(entry) > PAGE:
            yield (struct.pack("<QQ", start, len(data)) + data).ljust(PAGE, b"\0")
            start, data = last, b""
        data += entry
        last = ts
    yield (struct.pack("<QQ", start, len(data)) + data).ljust(PAGE, b"\0")


def walker(lib: ctypes.CDLL, mine: LabMap, others: list[LabMap], addresses: dict[str, int]) -> follow.NativeCorrelator:
    """A native correlator over FORMATS whose locations resolve to the texts they were made from."""
    _table, events = follow.specs(FORMATS)
    return follow.NativeCorrelator(
        lib,
        mine,
        others,
        "tracefs",
        events=events,
        symbolize={a: text for text, a in addresses.items()}.__getitem__,
        reasons=REASONS,
    )


def packed(lib: ctypes.CDLL, cpu: int, raw: list[bytes]) -> bytearray:
    """The native decoder's records of pages ``raw`` read on ``cpu``."""
    table, _events = follow.specs(FORMATS)
    reader = follow.NativeDecoder(lib, table, cpu, Contexts())
    return bytearray(b"".join(reader.feed(page) for page in raw))


@pytest.fixture
def lib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ctypes.CDLL:
    """The walker built into a directory of the test's own (no root needed)."""
    monkeypatch.setenv("NETLAB_NATIVE", str(tmp_path / "native"))
    native.load.cache_clear()
    found = native.load()
    native.load.cache_clear()
    if found.lib is None:
        pytest.skip(f"the native walker cannot be built here: {found.why_not}")
    return found.lib


def test_native_and_python_find_the_same_drops_and_paths(lib: ctypes.CDLL) -> None:
    topo, _ = load_topology("bridge3")
    records = sorted(parse_stream((DATA / "tracefs-bridge3.txt").read_text().splitlines()), key=lambda r: r.time)
    records = [r for r in records if r.event in ("kfree_skb", "consume_skb", *PATH_IDS) and "skbaddr" in r.fields]
    addresses: dict[str, int] = {}
    raw = list(pages(records, addresses))
    by_address = {a: text for text, a in addresses.items()}
    symbolize = by_address.__getitem__

    decoder = RecordDecoder(FORMATS, None, symbolize, REASONS, cpu=0)
    decoded = [r for page in raw for r in decoder.feed(page)] + decoder.flush()
    for r in decoded:
        r.context = (None, True)
    python = Correlator(LabMap.of(layout("bridge3", topo)), [LabMap.of(layout("bridge3-b", topo))], "tracefs")
    python.feed(decoded)

    native_run = walker(lib, LabMap.of(layout("bridge3", topo)), [LabMap.of(layout("bridge3-b", topo))], addresses)
    native_run.follow([packed(lib, 0, raw)], Contexts())
    native_run.close()

    assert python.drops, "the recording has drops"
    assert [d.as_dict() for d in native_run.drops] == [d.as_dict() for d in python.drops]
    assert native_run.paths == python.paths
    assert (native_run.records, native_run.unattributed, native_run.ambiguous) == (
        python.records,
        python.unattributed,
        python.ambiguous,
    )
    assert {d.reason for d in native_run.drops} >= {"NO_SOCKET"}


def test_a_recycled_address_starts_a_new_packet_in_both(lib: ctypes.CDLL) -> None:
    """The reuse rule (a hop the lab cannot reach from the path so far starts a new packet) is
    Python's decision in both pipelines; the walker asks for it once per distinct step."""
    topo, _ = load_topology("bridge3")
    other, _ = load_topology("veth-two-ns")

    def rec(t: float, event: str, **fields: str) -> Record:
        return Record(t, 0, 1, "pytest", event, {"skbaddr": "ffff1", **fields}, context=(None, True))

    records = [
        rec(1.0, "net_dev_start_xmit", name="calmveth2"),
        rec(1.1, "netif_rx", name="calmveth2_peer"),
        rec(2.0, "net_dev_start_xmit", name="veth1"),
        rec(2.1, "netif_receive_skb", name="veth2"),
        rec(2.2, "kfree_skb", location="tcp_v4_rcv+0x1/0x10", reason="NO_SOCKET", protocol="2048"),
    ] * 3
    records = [
        Record(i * 0.5, *(r.cpu, r.pid, r.comm, r.event, r.fields), context=r.context) for i, r in enumerate(records)
    ]
    addresses: dict[str, int] = {}
    raw = list(pages(records, addresses))
    native_run = walker(lib, LabMap.of(layout("bridge3", topo)), [LabMap.of(layout("veth-two-ns", other))], addresses)
    native_run.follow([packed(lib, 0, raw)], Contexts())
    python = Correlator(LabMap.of(layout("bridge3", topo)), [LabMap.of(layout("veth-two-ns", other))], "tracefs")
    python.feed(records)
    assert native_run.drops == python.drops == []
    assert native_run.unattributed == python.unattributed == 3


def test_records_of_two_cpus_are_followed_in_time_order(lib: ctypes.CDLL) -> None:
    """A packet sent on one CPU and dropped on another is one path only if the CPUs' records
    are merged by time."""
    topo, _ = load_topology("veth-two-ns")

    def rec(t: float, cpu: int, event: str, **fields: str) -> Record:
        return Record(t, cpu, 7, "x", event, {"skbaddr": "ffff2", **fields})

    cpu0 = [rec(1.0, 0, "net_dev_start_xmit", name="veth1")]
    cpu1 = [
        rec(1.5, 1, "netif_receive_skb", name="veth2"),
        rec(2.0, 1, "kfree_skb", location="ip_rcv_core+0x10/0x300", reason="OTHERHOST", protocol="2048"),
    ]
    addresses: dict[str, int] = {}
    runs = [packed(lib, cpu, list(pages(recs, addresses))) for cpu, recs in ((1, cpu1), (0, cpu0))]
    (drop,) = walker(lib, LabMap.of(layout("veth-two-ns", topo)), [], addresses).follow(runs, Contexts())
    assert (drop.node, drop.device, drop.reason, drop.base) == ("ns2", "veth2", "OTHERHOST", "ip_rcv_core")
    assert [(h.device, h.node, h.time) for h in drop.path] == [("veth1", "ns1", 1.0), ("veth2", "ns2", 1.5)]
    assert drop.packet.protocol == 2048


@pytest.mark.parametrize("release", sorted(p.name for p in (DATA / "raw").iterdir() if p.is_dir()))
def test_recorded_pages_of_each_kernel_decode_the_same_both_ways(lib: ctypes.CDLL, release: str) -> None:
    """The raw pages recorded in each matrix kernel: the walker's records carry what the
    Python decoder's do (5.10 without a reason field, 6.11+ with rx_sk before location)."""
    d = DATA / "raw" / release
    kfree_text = (d / "skb.kfree_skb.format").read_text()
    formats = [EventFormat.parse(kfree_text), EventFormat.parse((d / "net.netif_receive_skb.format").read_text())]
    syms = symbols.parse((d / "kallsyms").read_text())
    reasons = parse_format(kfree_text)
    table, events = follow.specs(formats)
    for raw in sorted(d.glob("cpu*.raw")):
        data = raw.read_bytes()
        python = RecordDecoder(formats, None, lambda a: f"{a:x}", reasons, cpu=0)
        expected = [r for off in range(0, len(data), PAGE) for r in python.feed(data[off : off + PAGE])]
        expected += python.flush()
        reader = follow.NativeDecoder(lib, table, 0, Contexts())
        packed = b"".join(reader.feed(data[off : off + PAGE]) for off in range(0, len(data), PAGE))
        got = [native.Rec.from_buffer_copy(packed, i) for i in range(0, len(packed), follow.REC_SIZE)]
        assert len(got) == len(expected)
        for mine, theirs in zip(got, expected, strict=True):
            assert events[mine.event] == theirs.event
            assert mine.pid == theirs.pid
            assert abs(mine.ts / 1e9 - theirs.time) < 1e-6
            assert f"{mine.skb:x}" == theirs.fields["skbaddr"]
            if theirs.event == "kfree_skb":
                assert f"{mine.location:x}" == theirs.fields["location"]
                if "reason" in theirs.fields:
                    assert reasons.get(mine.reason) == theirs.fields["reason"]
                else:
                    assert mine.reason == native.NO_REASON
                assert symbols.symbolize(mine.location, syms)
            else:
                assert mine.name.decode() == theirs.fields["name"]
