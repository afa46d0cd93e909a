"""What netlab sent, given to drops whose tracer could not read the packet."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from netlab.findings import sent as findings_sent
from netlab.findings.draft import Draft
from netlab.headers import Packet
from netlab.runtime import journal
from netlab.tracers.events import DropEvent, Hop, Location
from netlab.traffic import sent

UDP = Packet(
    protocol=0x0800, src="198.51.100.1", dst="198.51.100.2", sport=40000, dport=9999, l4="udp", marker="1a2b3c4d:*"
)
ICMP = Packet(protocol=0x0800, src="198.51.100.1", dst="198.51.100.2", l4="icmp", icmp_type=8, icmp_code=0)


@pytest.fixture(autouse=True)
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETLAB_RUN_DIR", str(tmp_path))


def dropped(first: str = "veth1", node: str = "ns1") -> DropEvent:
    path = (Hop(1.0, "net_dev_start_xmit", first, node), Hop(1.1, "netif_receive_skb", "veth2", "ns2"))
    return DropEvent(1.2, Location("__udp4_lib_rcv"), "NO_SOCKET", "ns2", "veth2", Packet(protocol=0x0800), path=path)


def test_a_drop_from_the_interface_netlab_sent_from_gets_its_headers() -> None:
    start = time.time()
    sent.append("lab", "ns1", "veth1", UDP)
    result = Draft(drops=[dropped(), dropped(first="veth9")])
    findings_sent.describe(result, sent.between("lab", start, time.time()))
    assert result.drops[0].packet == UDP
    assert result.drops[1].packet == Packet(protocol=0x0800)  # came from elsewhere
    assert sent.between("lab", start, time.time())[0].packet == UDP


def test_two_kinds_from_one_interface_or_outside_the_window_say_nothing() -> None:
    sent.append("lab", "ns1", "veth1", UDP)
    later = time.time()
    result = Draft(drops=[dropped()])
    findings_sent.describe(result, sent.between("lab", later, time.time()))
    assert result.drops[0].packet.dst is None
    sent.append("lab", "ns1", "veth1", ICMP)
    sent.append("lab", "ns1", "veth1", UDP)
    findings_sent.describe(result, sent.between("lab", later, time.time()))
    assert result.drops[0].packet.dst is None


def test_a_malformed_line_is_skipped() -> None:
    sent.append("lab", "ns1", "veth1", UDP)
    with open(journal.sent_path("lab"), "a") as f:
        f.write('{"time": "x"}\nnot json\n')
    assert [s.packet for s in sent.between("lab", 0, time.time() + 1)] == [UDP]


def test_a_contested_drop_is_claimed_when_this_lab_sent_from_its_first_interface() -> None:
    """Two copies of one topology share device names; `netlab trace` in one terminal and
    `netlab inject` in another leave no process context to tell them apart, the sent log does."""
    start = time.time()
    sent.append("lab", "ns1", "veth1", UDP)
    result = Draft(ambiguous=2, contested=[dropped(), dropped(first="veth9")])
    findings_sent.settle(result, sent.between("lab", start, time.time()), "lab", start, time.time())
    assert [d.path[0].device for d in result.drops] == ["veth1"]
    assert [d.path[0].device for d in result.contested] == ["veth9"] and result.ambiguous == 1


def test_a_contested_drop_stays_contested_when_the_other_lab_sent_from_that_name_too() -> None:
    start = time.time()
    sent.append("lab", "ns1", "veth1", UDP)
    sent.append("lab-copy", "ns1", "veth1", UDP)
    journal.run_dir().joinpath("lab-copy.journal").touch()  # a lab that is up
    result = Draft(ambiguous=1, contested=[dropped()])
    findings_sent.settle(result, sent.between("lab", start, time.time()), "lab", start, time.time())
    assert result.drops == [] and result.ambiguous == 1
