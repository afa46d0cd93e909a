"""nf_tables as the kernel tells it: trace messages and the ruleset's text."""

from __future__ import annotations

import struct

from netlab.tracers.kernel.nftables import parse_ruleset, parse_trace

RULESET = """\
table inet filt { # handle 5
	chain inp { # handle 1
		type filter hook input priority filter; policy accept;
		udp dport 7777 counter packets 3 bytes 87 drop # handle 2
		udp dport { 1, 2 } drop # handle 3
	}
	set blocked { # handle 4
		type ipv4_addr
		elements = { 192.0.2.1,
			192.0.2.2 }
	}
}
table netdev edge { # handle 6
	chain ingress { # handle 1
		type filter hook ingress device "c-h" priority filter; policy drop;
		udp dport 7779 counter packets 0 bytes 0 drop # handle 2
	}
	chain more { # handle 3
		type filter hook ingress priority filter; policy accept;
		devices = { "x1", x2 }
	}
}
"""


def attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def trace(family: int, **attrs: bytes) -> bytes:
    kinds = {"table": 1, "chain": 2, "handle": 3, "type": 4, "verdict": 5, "id": 6, "iif": 10, "policy": 16}
    body = struct.pack("BBH", family, 0, 0) + b"".join(
        attr(kinds[k] | (0x8000 if k == "verdict" else 0), v) for k, v in attrs.items()
    )
    return struct.pack("IHHII", 16 + len(body), (10 << 8) | 17, 0, 0, 0) + body


def test_the_ruleset_text_gives_each_rule_by_handle_and_each_policy() -> None:
    rs = parse_ruleset(RULESET)
    assert rs.rules[("inet", "filt", "inp", 2)] == "udp dport 7777 counter packets 3 bytes 87 drop"
    assert rs.rules[("inet", "filt", "inp", 3)] == "udp dport { 1, 2 } drop"
    assert ("inet", "filt", "blocked", 4) not in rs.rules  # a set is not a chain
    assert rs.policies == {
        ("inet", "filt", "inp"): "accept",
        ("netdev", "edge", "ingress"): "drop",
        ("netdev", "edge", "more"): "accept",
    }


def test_a_rule_trace_names_table_chain_handle_and_verdict() -> None:
    raw = trace(
        1,
        table=b"filt\0",
        chain=b"inp\0",
        handle=struct.pack(">Q", 2),
        type=struct.pack(">I", 3),
        verdict=attr(1, struct.pack(">i", 0)),
        id=struct.pack(">I", 0xABCD),
        iif=struct.pack(">I", 7),
    )
    event = parse_trace(raw)
    assert event is not None
    assert (event.family, event.table, event.chain, event.handle, event.kind, event.iif) == (
        "inet",
        "filt",
        "inp",
        2,
        "rule",
        7,
    )
    assert event.drops
    assert (
        parse_ruleset(RULESET).describe(event)
        == "inet filt inp handle 2: udp dport 7777 counter packets 3 bytes 87 drop"
    )


def test_verdicts_that_are_not_a_drop_and_a_policy_drop() -> None:
    accept = parse_trace(
        trace(1, table=b"filt\0", chain=b"inp\0", type=struct.pack(">I", 3), verdict=attr(1, struct.pack(">i", 1)))
    )
    jump = parse_trace(
        trace(1, table=b"filt\0", chain=b"inp\0", type=struct.pack(">I", 3), verdict=attr(1, struct.pack(">i", -3)))
    )
    errno_drop = parse_trace(
        trace(1, table=b"t\0", chain=b"c\0", type=struct.pack(">I", 3), verdict=attr(1, struct.pack(">i", 1 << 16)))
    )
    policy = parse_trace(
        trace(5, table=b"edge\0", chain=b"ingress\0", type=struct.pack(">I", 1), policy=struct.pack(">I", 0))
    )
    assert accept and jump and errno_drop and policy
    assert not accept.drops and not jump.drops and errno_drop.drops and policy.drops
    assert parse_ruleset(RULESET).describe(policy) == "netdev edge ingress policy drop"
    assert parse_trace(trace(1, table=b"t\0", type=struct.pack(">I", 9))) is None
