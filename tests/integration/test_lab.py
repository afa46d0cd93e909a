"""Labs on the real kernel: every shipped topology builds, works and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from netlab import bringup, teardown
from netlab.errors import NetlabError
from netlab.lab import Lab, attach
from netlab.pytest_plugin.plugin import LabFactory
from netlab.runtime import journal, netns
from netlab.status import status
from tests import hoststate

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.stem for p in (ROOT / "topologies").glob("*.yaml"))


def ping(lab: Lab, node: str, address: str) -> bool:
    proc = lab.node(node).run(["ping", "-c1", "-W1", "-n", address], timeout=10)
    return proc.returncode == 0


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_topology_up_and_down(netlab_up: LabFactory, name: str) -> None:
    lab = netlab_up(name)
    names = [node.netns for node in lab.nodes.values()]
    assert all(netns.exists(n) for n in names)
    for node in lab.nodes.values():
        seen = {i.name: i for i in node.interfaces()}
        for ifname in lab.topology.nodes[node.name].interfaces:
            assert seen[ifname].up, f"{node.name}:{ifname} is down"
    lab.down()
    assert not any(netns.exists(n) for n in names)
    assert journal.read(lab.name) is None


def test_bridge3_forwards_only_because_of_the_forward_rule(netlab_up: LabFactory) -> None:
    lab = netlab_up("bridge3")
    host = lab.node("host")
    assert host.sysctl("net.bridge.bridge-nf-call-iptables") == "1"
    assert ping(lab, "ns-calm1", "198.51.100.2")
    host.run(["iptables", "-w", "-D", "FORWARD", "-i", "calmbr", "-j", "ACCEPT"], check=True)
    assert not ping(lab, "ns-calm1", "198.51.100.2")
    host.run(["iptables", "-w", "-A", "FORWARD", "-i", "calmbr", "-j", "ACCEPT"], check=True)
    assert ping(lab, "ns-calm1", "198.51.100.2")


def test_routed3_reaches_server_over_ipv4_and_ipv6(netlab_up: LabFactory) -> None:
    lab = netlab_up("routed3")
    assert ping(lab, "client", "203.0.113.2")
    assert ping(lab, "client", "2001:db8:3::2")
    trace = lab.node("client").run(["ping", "-c1", "-W1", "-t", "2", "-n", "203.0.113.2"])
    assert trace.returncode != 0  # two routers need TTL 3


def test_veth_same_ns_and_two_ns(netlab_up: LabFactory) -> None:
    same = netlab_up("veth-same-ns")
    assert ping(same, "ns1", "198.51.100.2")
    two = netlab_up("veth-two-ns")
    assert ping(two, "ns1", "198.51.100.2")


def test_two_instances_coexist(netlab_up: LabFactory) -> None:
    a = netlab_up("bridge3")
    b = netlab_up("bridge3")
    assert a.name != b.name
    assert ping(a, "ns-calm1", "198.51.100.2")
    assert ping(b, "ns-calm1", "198.51.100.2")
    a.down()
    assert ping(b, "ns-calm1", "198.51.100.2")


def test_root_namespace_untouched_by_up_and_down(netlab_up: LabFactory) -> None:
    before = hoststate.snapshot()
    lab = netlab_up("bridge3")
    assert ping(lab, "ns-calm1", "198.51.100.2")
    lab.down()
    assert hoststate.diff(before, hoststate.snapshot()) == []


def test_same_interface_names_as_host_are_fine(netlab_up: LabFactory) -> None:
    from netlab.model.loader import load_text

    topo, _ = load_text(
        "name: hostnames\nipv6: false\nnodes:\n  a: {interfaces: {eth0: {addresses: [198.51.100.1/24]}}}\n"
        "  b: {interfaces: {lo2: {addresses: [198.51.100.2/24]}}}\nlinks: [{endpoints: [a:eth0, b:lo2]}]\n"
    )
    lab = netlab_up(topo)
    assert ping(lab, "a", "198.51.100.2")


def test_down_kills_processes_left_in_the_lab(netlab_up: LabFactory) -> None:
    lab = netlab_up("veth-two-ns")
    proc = lab.node("ns2").popen(["sleep", "300"])
    removal = lab.down()
    assert proc.pid in removal.killed
    assert proc.wait(timeout=5) != 0


def test_attach_and_status(netlab_up: LabFactory) -> None:
    lab = netlab_up("bridge3")
    again = attach(lab.name)
    assert again.nodes.keys() == lab.nodes.keys()
    (entry,) = status(lab.name)
    assert entry["state"] == "up"
    addrs = {i["name"]: i["addresses"] for n in entry["nodes"] for i in n["interfaces"] if n["node"] == "ns-calm1"}
    assert addrs["calmveth1"] == ["198.51.100.1/24"]


def test_with_block_tears_down_on_error() -> None:
    import netlab

    names: list[str] = []
    with pytest.raises(RuntimeError), netlab.up("veth-two-ns", instance="withblock") as lab:
        names = [n.netns for n in lab.nodes.values()]
        raise RuntimeError("test body failed")
    assert names and not any(netns.exists(n) for n in names)


def test_ownership_check_spares_a_foreign_namespace(netlab_up: LabFactory) -> None:
    lab = netlab_up("veth-two-ns")
    victim = lab.node("ns1").netns
    # someone replaces our namespace with their own under the same name
    netns.remove(victim)
    netns.create(victim)
    try:
        removal = lab.down()
        assert victim in removal.skipped
        assert netns.exists(victim)
    finally:
        netns.remove(victim)


def test_nftables_ruleset_filters_bridged_traffic(netlab_up: LabFactory) -> None:
    """Each node's nft ruleset is loaded in its namespace and in effect: the bridge family on the
    bridge host (UDP to 9999 dropped as it enters the bridge), the inet family in a host (UDP to
    7777 dropped at input); each rule's counter says how many."""
    from netlab.traffic.inject import inject

    lab = netlab_up(Path(__file__).parents[1] / "data" / "nftables-bridge.yaml")
    inject(lab, "a", "a-h", "udp", dst="198.51.100.2", dport=9999, count=2)
    inject(lab, "a", "a-h", "udp", dst="198.51.100.2", dport=7777, count=3)
    bridged = lab.node("h").run(["nft", "list", "ruleset"], check=True).stdout
    assert "udp dport 9999 counter packets 2" in bridged, bridged
    hosted = lab.node("b").run(["nft", "list", "ruleset"], check=True).stdout
    assert "udp dport 7777 counter packets 3" in hosted, hosted
    assert "table" not in lab.node("a").run(["nft", "list", "ruleset"], check=True).stdout


def test_a_cached_up_sends_the_requests_pyroute2_built_without_importing_it(tmp_path: Path) -> None:
    """The plan cache keeps the netlink requests of a lab that came up; the next `netlab up` of
    the file sends those (with this run's namespace fds in place) and never imports pyroute2."""
    copy = tmp_path / "veth-two-ns.yaml"
    copy.write_bytes((ROOT / "topologies" / "veth-two-ns.yaml").read_bytes())
    env = {**os.environ, "NETLAB_PLAN_CACHE": str(tmp_path / "plans")}
    script = (
        "import sys, netlab\n"
        f"lab = netlab.up({str(copy)!r}, instance='reqcache')\n"
        "ok = lab.node('ns1').run(['ping', '-c1', '-W2', '198.51.100.2']).returncode == 0\n"
        "lab.down()\n"
        "print('pyroute2' in sys.modules, ok)\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True)
        for _ in range(2)
    ]
    assert [r.stdout.split() for r in runs] == [["True", "True"], ["False", "True"]], [r.stderr for r in runs]


def test_a_file_built_before_comes_up_from_its_cached_plan(
    netlab_up: LabFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second `up` of the same bytes neither loads nor plans the file, and the lab is the same."""
    monkeypatch.setenv("NETLAB_PLAN_CACHE", str(tmp_path / "plans"))
    copy = tmp_path / "bridge3.yaml"
    copy.write_bytes((ROOT / "topologies" / "bridge3.yaml").read_bytes())
    first = bringup.build(copy, instance="cached")
    teardown.down(first.name)
    assert first.topology is not None  # planned afresh
    assert len(list((tmp_path / "plans").iterdir())) == 1

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("planned again")

    monkeypatch.setattr("netlab.bringup.plan", refuse)
    again = bringup.build(copy, instance="cached")
    teardown.down(again.name)
    assert again.topology is None and again.summary() == first.summary()
    second = netlab_up(copy, instance="cached")
    assert ping(second, "ns-calm1", "198.51.100.2")
    assert second.topology.nodes["host"].bridges["calmbr"].ports == ["calmveth1_peer", "calmveth2_peer"]


def test_a_node_takes_an_xdp_program_and_gives_it_back(netlab_up: LabFactory) -> None:
    """``node.xdp`` attaches netlab's own two-instruction program in generic mode, and None
    takes it off; a wrong name or verdict is one clear error."""
    node = netlab_up("veth-two-ns").node("ns2")
    node.xdp("veth2", "pass")
    assert "xdpgeneric" in node.run(["ip", "link", "show", "veth2"], check=True).stdout
    node.xdp("veth2", None)
    assert "xdp" not in node.run(["ip", "link", "show", "veth2"], check=True).stdout
    with pytest.raises(NetlabError, match="ns2 has no interface nosuch"):
        node.xdp("nosuch", "drop")
    with pytest.raises(NetlabError, match="XDP action 'tx': one of aborted, drop, pass, redirect"):
        node.xdp("veth2", "tx")
