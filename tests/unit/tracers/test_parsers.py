"""Tracer output parsing, on recorded output: works where the tool cannot run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netlab.model.loader import load
from netlab.model.topology import Topology
from netlab.tracers import bpftrace, dropwatch, ftrace, headers, perf, tracefs
from netlab.tracers.attribution import LabMap, decode, last_hop
from netlab.tracers.correlate import Correlator
from netlab.tracers.counters import parse_dev, parse_iptables, parse_snmp
from netlab.tracers.events import Call, Location, base_function, devices
from netlab.tracers.reasons import parse_format
from netlab.tracers.records import Record, StreamParser, parse_line, parse_stream
from netlab.tracers.symbols import parse as parse_kallsyms
from netlab.tracers.symbols import symbolize

RECORDED = Path(__file__).resolve().parents[2] / "data" / "recorded"


def test_reasons_come_from_the_format_file() -> None:
    table = parse_format((RECORDED / "kfree_skb.format").read_text())
    assert table[2] == "NOT_SPECIFIED"
    assert {"NO_SOCKET", "NETFILTER_DROP", "UNHANDLED_PROTO", "OTHERHOST"} <= set(table.values())
    assert parse_format('print fmt: "skbaddr=%p", REC->skbaddr') == {}


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


def test_kallsyms_symbolize() -> None:
    syms = parse_kallsyms(
        "ffffffff81000000 T _stext\nffffffff81586000 t __netif_receive_skb_core.constprop.0\n"
        "ffffffff81587040 T netif_rx\nffffffff81600000 d some_data\n"
    )
    assert symbolize(0xFFFFFFFF81586D82, syms) == "__netif_receive_skb_core.constprop.0+0xd82/0x1040"


def test_tracefs_line_and_stack() -> None:
    text = (RECORDED / "tracefs-bridge3.txt").read_text()
    records = list(parse_stream(text.splitlines()))
    assert {r.event for r in records} >= {"kfree_skb", "netif_rx", "net_dev_start_xmit", "netif_receive_skb"}
    drops = [r for r in records if r.event == "kfree_skb"]
    assert drops and all(r.fields["reason"] for r in drops)
    assert any(r.stack for r in drops)


def test_stream_parser_keeps_a_stack_across_chunks() -> None:
    lines = [
        "  x-1 [000] ..s.. 10.000001: kfree_skb: skbaddr=0000000000000001 rx_sk=0 protocol=2048 "
        "location=tcp_v4_rcv+0x1/0x10 reason: NO_SOCKET",
        "  x-1 [000] ..s.. 10.000002: <stack trace>",
    ]
    parser = StreamParser()
    assert parser.feed(lines) == []
    rest = parser.feed([" => tcp_v4_rcv", " => ip_protocol_deliver_rcu"]) + parser.flush()
    assert rest[0].stack == ["tcp_v4_rcv", "ip_protocol_deliver_rcu"]


def test_perf_script() -> None:
    records = perf.parse_script((RECORDED / "perf-script.txt").read_text())
    assert records and records[0].event == "kfree_skb"
    assert records[0].stack[:2] == ["sk_skb_reason_drop", "ping_rcv"]
    assert perf.parse_namespace_events(
        "ping 100/100: PERF_RECORD_NAMESPACES 100/100 - nr: 7 [net: 4/0xeffffffc, uts: ...]"
    ) == {100: 0xEFFFFFFC}


def test_perf_locations_printed_as_addresses_are_symbolized() -> None:
    """6.1 prints kfree_skb's location with %p: perf shows 0xffff..., netlab shows function+offset."""
    syms = parse_kallsyms((RECORDED / "raw" / "6.1.0-50-amd64" / "kallsyms").read_text())
    address = next(a for a, n in zip(syms.addresses, syms.names, strict=True) if n == "__udp4_lib_rcv") + 0x9A2
    rec = Record(1.0, 0, 1, "x", "kfree_skb", {"skbaddr": "ffff1", "location": f"{address:#x}"})
    perf.symbolize_locations([rec], syms)
    assert rec.fields["location"].startswith("__udp4_lib_rcv+0x9a2")


def test_dropwatch_output() -> None:
    drops = dropwatch.parse((RECORDED / "dropwatch.txt").read_text())
    assert len(drops) == 4
    assert (drops[0].function, drops[0].location.offset) == ("__netif_receive_skb_core", 0x4A0)
    assert {d.base for d in drops[1:3]} == {"ip_rcv_finish_core"}


def test_dropwatch_packet_alerts_are_placed_by_the_labs_ifindex() -> None:
    """6.1's packet-mode alerts for 3 UDP datagrams to a closed port; then placement: the
    planner numbers bridge3's interfaces once for the whole lab, so an input ifindex names one
    interface, unless another lab that is up has it too."""
    alerts = dropwatch.parse_alerts((RECORDED / "dropwatch-packet-6.1.txt").read_text())
    assert len(alerts) == 3
    assert {(a.location, a.protocol, a.length, a.reason) for a in alerts} == {
        ("__udp4_lib_rcv+0x9a2/0xc30", 0x800, 54, "NO_SOCKET")
    }
    topo, _ = load("bridge3")
    other, _ = load("veth-two-ns")
    mine = LabMap.of("bridge3", topo)
    calmveth2 = next(i for i, end in mine.by_ifindex.items() if end == ("ns-calm2", "calmveth2"))
    ours = [dropwatch.Alert("__udp4_lib_rcv+0x9a2/0xc30", calmveth2, 0x800, 54, None)]
    placed = dropwatch.place([*ours, dropwatch.Alert("x+0x1/0x2", 0, None, None, None)], mine, [])
    assert [(d.node, d.device, d.base, d.reason) for d in placed.drops] == [
        ("ns-calm2", "calmveth2", "__udp4_lib_rcv", None)
    ]
    assert placed.unattributed == 1
    twin = dropwatch.place(ours, mine, [LabMap.of("bridge3-b", topo)])
    assert twin.drops == [] and twin.ambiguous == 1
    assert dropwatch.place(ours, mine, [LabMap.of("veth-two-ns", other)]).drops  # its ifindexes differ


def test_function_and_graph_output() -> None:
    calls = ftrace.parse_function((RECORDED / "function.txt").read_text())
    assert [c.function for c in calls] == ["tcp_sendmsg", "netif_receive_skb", "tcp_recvmsg", "tcp_retransmit_skb"]
    assert calls[0].parent == "inet_sendmsg" and calls[3].pid == 19
    graph = ftrace.parse_graph((RECORDED / "function_graph.txt").read_text())
    assert [c.function for c in graph][:4] == [
        "net_rx_action",
        "__napi_poll",
        "process_backlog",
        "__netif_receive_skb_core.constprop.0",
    ]
    leaf = graph[4]
    assert (leaf.function, leaf.depth, leaf.duration_us) == ("br_handle_frame", 4, 0.345)


WALKS = RECORDED / "ftrace"


@pytest.mark.parametrize("kernel", sorted(p.name for p in WALKS.iterdir() if p.is_dir()))
def test_recorded_walks_hold_seed_003s_walk(kernel: str) -> None:
    """Each kernel's own ``--graph`` output of a 4 KiB TCP flow across bridge3
    (scripts/record_function_walk.py): whatever the kernel calls its functions, and whether it
    allows function_graph in an instance or not, one task's walk is seed 003's."""
    kind, *functions = (WALKS / kernel / "functions.txt").read_text().split()
    text = (WALKS / kernel / "graph.txt").read_text()
    calls = ftrace.parse_graph(text) if kind == "function_graph" else ftrace.parse_function(text)
    traced = {ftrace.seed_name(f) for f in functions}
    assert calls and {ftrace.seed_name(c.function) for c in calls} <= traced
    wanted = [f for f in ftrace.SEED_003_WALK if f in traced]
    assert len(wanted) >= 14, wanted  # all but tcp_queue_rcv, which a compiler may inline
    walks = [ftrace.walk(calls, pid) for pid in {c.pid for c in calls}]
    assert any(ftrace.contains_in_order(w, wanted) for w in walks)
    if kind == "function_graph":  # nesting and durations: the receive side runs inside the sender's transmit
        rcv = next(c for c in calls if c.function == "tcp_v4_rcv")
        assert rcv.depth > 0 and rcv.parent is not None and rcv.duration_us is not None
    plain = ftrace.parse_function((WALKS / kernel / "function.txt").read_text())
    assert {c.function for c in plain} >= {"tcp_sendmsg", "tcp_recvmsg"}


def test_walk_helpers() -> None:
    assert ftrace.seed_name("__netif_receive_skb_core.constprop.0") == "__netif_receive_skb_core"
    assert ftrace.seed_name("__dev_queue_xmit") == "dev_queue_xmit"
    assert ftrace.contains_in_order(["a", "x", "b", "c"], ["a", "b", "c"])
    assert not ftrace.contains_in_order(["b", "a", "c"], ["a", "b", "c"])
    graph = ftrace.parse_graph(
        "   41.914044 |   0)   python-153   |               |  __dev_queue_xmit() {\n"
        "   41.916261 |   0)   python-153   |               |    veth_xmit [veth]() {\n"
        "   41.916339 |   0)   python-153   | ! 104.085 us  |      __netif_rx();\n"
        "   41.916680 |   0)   python-153   | ! 420.518 us  |    } /* veth_xmit [veth] */\n"
        "   41.916690 |   0)   python-153   | ! 549.570 us  |  } /* __dev_queue_xmit */\n"
    )
    assert [(c.function, c.depth, c.parent, c.duration_us, c.pid) for c in graph] == [
        ("__dev_queue_xmit", 0, None, 549.57, 153),
        ("veth_xmit", 1, "__dev_queue_xmit", 420.518, 153),
        ("__netif_rx", 2, "veth_xmit", 104.085, 153),
    ]
    assert ftrace.walk(graph) == ["dev_queue_xmit", "veth_xmit", "netif_rx"]


def test_a_walk_whose_receive_ran_in_another_tasks_softirq_is_followed_on_its_cpu() -> None:
    """The sender queued the segment on CPU 0's backlog; the receiver's softirq, on the same
    CPU, drained it (seen on 5.10 under TCG): not one task has the whole walk, the CPU has."""
    steps = [
        (1.0, 0, 413, "tcp_sendmsg"),
        (1.1, 0, 413, "veth_xmit"),
        (1.2, 0, 413, "netif_rx"),
        (1.3, 1, 77, "ip_rcv"),  # another CPU's work, interleaved in time
        (1.4, 0, 96, "__netif_receive_skb_core"),
        (1.5, 0, 96, "ip_rcv"),
        (1.6, 0, 96, "tcp_v4_rcv"),
    ]
    calls = [Call(time=t, cpu=cpu, pid=pid, function=f) for t, cpu, pid, f in steps]
    wanted = ["tcp_sendmsg", "veth_xmit", "netif_rx", "__netif_receive_skb_core", "ip_rcv", "tcp_v4_rcv"]
    assert not any(ftrace.contains_in_order(ftrace.walk(calls, pid=p), wanted) for p in (413, 96, 77))
    assert ftrace.walk(calls, cpu=0) == wanted
    assert ftrace.walk(calls, cpu=1) == ["ip_rcv"]


def test_bpftrace_event_lines_and_headers() -> None:
    frame = (
        b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
        b"\x45\x00\x00\x28\x00\x01\x00\x00\x40\x11\x00\x00\xc6\x33\x64\x01\xc6\x33\x64\x02"
        b"\x9c\x40\x27\x0f\x00\x14\x00\x00NLMK\x00\x00\x12\x34\x00\x00\x00\x05"
    )
    escaped = "".join(f"\\x{b:02x}" for b in frame)
    line = f"D 123000000000 4026532246 100 calmveth2 3 ffffffff81ff5a1b 2048 42 netlab 1 54 {escaped}"
    pkt = headers.packet_of(bpftrace.unescape(escaped), 2048)
    assert (pkt.src, pkt.dst, pkt.sport, pkt.dport, pkt.l4, pkt.marker, pkt.ttl) == (
        "198.51.100.1",
        "198.51.100.2",
        40000,
        9999,
        "udp",
        "00001234:5",
        64,
    )
    (drop,) = bpftrace.parse_events(line + "\n", {4026532246: "ns2"})
    assert (drop.node, drop.device, drop.packet.dst, drop.packet.dport, drop.packet.marker) == (
        "ns2",
        "calmveth2",
        "198.51.100.2",
        9999,
        "00001234:5",
    )
    assert (drop.comm, drop.packet.length) == ("netlab", 54)
    assert str(drop.packet) == "udp 198.51.100.1:40000 > 198.51.100.2:9999 ttl 64 len 54"
    syn = bytes.fromhex("4500002c0001000040060000c6336401c6336402") + bytes.fromhex("9c400007000000000000000060120000")
    tcp = headers.packet_of(syn, 0x0800, link=False)
    assert (tcp.l4, tcp.tcp_flags, tcp.dport) == ("tcp", "SYN,ACK", 7)
    echo = bytes.fromhex("450000540001000001010000c6336401cb007102") + bytes.fromhex("0b000000")
    icmp = headers.packet_of(echo, 0x0800, link=False)
    assert (icmp.l4, icmp.icmp_type, icmp.icmp_code, icmp.ttl) == ("icmp", 11, 0, 1)
    network_only = headers.packet_of(frame[14:], 0x0800, link=False)
    assert (network_only.src, network_only.dport) == ("198.51.100.1", 9999)
    prog = bpftrace.program([11, 22], "events")
    assert "$ns == 11 || $ns == 22" in prog and bpftrace.READY in prog
    assert "count()" in bpftrace.program([11], "count")
    (row,) = bpftrace.parse_counts("@drops[11, 74, __netif_receive_skb_core.constprop.0]: 5\n", {11: "ns2"})
    assert (row[0], row[2].base, row[3]) == ("ns2", "__netif_receive_skb_core", 5)


def test_counters_parsers() -> None:
    dev = parse_dev("Inter-| Receive\n face |bytes packets errs drop\n  eth0: 10 2 0 1 0 0 0 0 20 3 0 0 0 0 0 0\n")
    assert dev[("dev:eth0", "rx_dropped")] == 1 and dev[("dev:eth0", "tx_packets")] == 3
    snmp = parse_snmp("Udp: InDatagrams NoPorts\nUdp: 5 2\n", "snmp")
    assert snmp[("snmp:Udp", "NoPorts")] == 2
    ipt = parse_iptables("*filter\n:FORWARD DROP [7:420]\n[3:180] -A FORWARD -i calmbr -j ACCEPT\nCOMMIT\n")
    assert ipt[("iptables:filter/FORWARD", "policy DROP")] == 7
    assert ipt[("iptables:filter/FORWARD", "-i calmbr -j ACCEPT")] == 3


def test_path_decoding_resolves_repeated_names() -> None:
    """Every node has an eth0: a multi-hop path still places each hop; a one-hop one cannot."""
    topo, _ = load("routed3")
    text = json.dumps(topo.model_dump(mode="json"))
    for old, new in (
        ("c-r1", "eth0"),
        ("r1-c", "eth0"),
        ("r1-r2", "eth1"),
        ("r2-r1", "eth0"),
        ("r2-s", "eth1"),
        ("s-r2", "eth0"),
    ):
        text = text.replace(f'"{old}"', f'"{new}"').replace(f':{old}"', f':{new}"')
    m = LabMap.of("routed3", Topology.model_validate(json.loads(text), strict=False))
    hops = [
        ("net_dev_start_xmit", "eth0"),
        ("netif_rx", "eth0"),
        ("netif_receive_skb", "eth0"),
        ("net_dev_start_xmit", "eth1"),
        ("netif_rx", "eth0"),
        ("netif_receive_skb", "eth0"),
    ]
    (only,) = decode(m, hops)
    assert only[0] == ("client", "eth0") and only[-1] == ("r2", "eth0")
    assert last_hop(m, hops[:1]) == "ambiguous"  # eth0 alone could be any node
    assert last_hop(m, hops[:2]) == "ambiguous"  # client->r1 or r1->client: names cannot tell


def test_correlator_infers_the_bridge_and_attributes_drops() -> None:
    topo, _ = load("bridge3")
    records = sorted(parse_stream((RECORDED / "tracefs-bridge3.txt").read_text().splitlines()), key=lambda r: r.time)
    c = Correlator(LabMap.of("bridge3", topo), [], "tracefs")
    c.feed(records)
    assert any(devices(p) == ["calmveth1", "calmveth1_peer", "calmbr", "calmveth2_peer", "calmveth2"] for p in c.paths)
    udp = [d for d in c.drops if d.base == "__udp4_lib_rcv"]
    assert udp and udp[0].node == "ns-calm2" and udp[0].reason == "NO_SOCKET"
    assert udp[0].stack[0] == "__udp4_lib_rcv"


def test_a_path_another_lab_explains_needs_our_process_context() -> None:
    topo, _ = load("bridge3")
    records = sorted(parse_stream((RECORDED / "tracefs-bridge3.txt").read_text().splitlines()), key=lambda r: r.time)
    for r in records:
        r.context = (None, False)  # not our process, not in our namespaces
    c = Correlator(LabMap.of("bridge3", topo), [LabMap.of("bridge3-other", topo)], "tracefs")
    c.feed(records)
    assert c.drops == [] and c.ambiguous > 0
    # kept placed as this lab would place them, for what netlab sent to settle
    assert c.contested and {d.node for d in c.contested if d.base == "__udp4_lib_rcv"} == {"ns-calm2"}
    for r in records:
        r.context = (None, True)  # the tracing process drove the traffic
    c2 = Correlator(LabMap.of("bridge3", topo), [LabMap.of("bridge3-other", topo)], "tracefs")
    c2.feed(records)
    assert c2.drops and c2.ambiguous == 0


def test_another_labs_packet_on_a_recycled_address_is_not_ours() -> None:
    """Our ICMP reply's free went unseen (a deferred free), its skb address was reused by a SYN
    of another lab that dies there: the SYN's own hops start a new path, so the drop is not ours
    even though our own process drove both labs (the CI failure this guards against)."""
    topo, _ = load("bridge3")
    other, _ = load("veth-two-ns")

    def rec(t: float, event: str, **fields: str) -> Record:
        return Record(t, 0, 1, "pytest", event, {"skbaddr": "0xffff1", **fields}, context=(None, True))

    records = [
        rec(1.0, "net_dev_start_xmit", name="calmveth2"),
        rec(1.1, "netif_rx", name="calmveth2_peer"),
        rec(1.2, "net_dev_start_xmit", name="calmveth1_peer"),
        rec(1.3, "netif_receive_skb", name="calmveth1"),  # ...and then freed without a tracepoint
        rec(2.0, "net_dev_start_xmit", name="veth1"),
        rec(2.1, "netif_receive_skb", name="veth2"),
        rec(2.2, "kfree_skb", location="tcp_v4_rcv+0x1", reason="NO_SOCKET", protocol="2048"),
    ]
    c = Correlator(LabMap.of("bridge3", topo), [LabMap.of("veth-two-ns", other)], "tracefs")
    c.feed(records)
    assert c.drops == [] and c.unattributed == 1
    theirs = Correlator(LabMap.of("veth-two-ns", other), [LabMap.of("bridge3", topo)], "tracefs")
    theirs.feed(records)
    assert [(d.node, d.device) for d in theirs.drops] == [("ns2", "veth2")]
    # which needs the kernel to pass the other lab's path events to our trace
    flt = tracefs.name_filter(LabMap.of("bridge3", topo), [LabMap.of("veth-two-ns", other)])
    assert flt is not None and 'name == "veth1"' in flt and 'name == "calmveth1"' in flt
    without = Correlator(LabMap.of("bridge3", topo), [LabMap.of("veth-two-ns", other)], "tracefs")
    without.feed(r for r in records if r.fields.get("name") not in ("veth1", "veth2"))
    assert [d.node for d in without.drops] == ["ns-calm1"]  # what a filter of our names alone gave


def test_line_regex_ignores_noise() -> None:
    assert parse_line("# tracer: nop") is None
    assert parse_line("garbage") is None
