"""Tracepoint text (tracefs, perf script) parsed into records, on recorded output."""

from __future__ import annotations

from pathlib import Path

from netlab.tracers.decode.records import StreamParser, parse_line, parse_stream

RECORDED = Path(__file__).resolve().parents[3] / "data" / "recorded"


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


def test_line_regex_ignores_noise() -> None:
    assert parse_line("# tracer: nop") is None
    assert parse_line("garbage") is None
