"""Loading shipped topologies, the search path and the schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netlab.errors import TopologyError
from netlab.model.loader import available, load, load_text, resolve
from netlab.model.schema import topology_schema

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted((ROOT / "topologies").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_topologies_validate(path: Path) -> None:
    topo, source = load(path)
    assert topo.name == path.stem
    assert source.file == str(path)


def test_required_shipped_topologies_exist() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"bridge3", "veth-same-ns", "veth-two-ns", "linear50", "routed3"} <= names


def test_resolve_by_name_and_by_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve("bridge3").name == "bridge3.yaml"
    own = tmp_path / "mine.yaml"
    own.write_text("name: mine\nnodes: {a: {}}\n")
    assert resolve(str(own)) == own
    monkeypatch.setenv("NETLAB_PATH", str(tmp_path))
    assert resolve("mine") == own
    assert "mine" in available()


def test_unknown_name_lists_known_topologies() -> None:
    with pytest.raises(TopologyError, match=r"no topology named 'nope'.*bridge3"):
        resolve("nope")


def test_missing_file() -> None:
    with pytest.raises(TopologyError, match="no such topology file"):
        resolve("/nonexistent/x.yaml")


def test_bridge3_is_the_seed_example() -> None:
    topo, _ = load("bridge3")
    assert set(topo.nodes) == {"ns-calm1", "ns-calm2", "host"}
    host = topo.nodes["host"]
    assert host.bridges["calmbr"].ports == ["calmveth1_peer", "calmveth2_peer"]
    assert host.sysctls["net.bridge.bridge-nf-call-iptables"] == "1"
    assert host.iptables["filter"] == [":FORWARD DROP", "-A FORWARD -i calmbr -j ACCEPT"]


def test_linear50_matches_its_generator() -> None:
    import runpy

    gen = runpy.run_path(str(ROOT / "topologies" / "generators" / "linear.py"))
    assert gen["linear"](50) == (ROOT / "topologies" / "linear50.yaml").read_text()
    topo, _ = load("linear50")
    assert len(topo.nodes) == 51
    assert len(topo.nodes["fabric"].bridges) == 50


def test_all_issues_reported_at_once() -> None:
    text = "name: t\nnodes:\n  a: {bogus: 1}\n  b: {other: 2}\n"
    with pytest.raises(TopologyError) as info:
        load_text(text, "x.yaml")
    assert [str(i.position) for i in info.value.issues] == ["x.yaml:3:7", "x.yaml:4:7"]


def test_values_are_normalised() -> None:
    topo, _ = load_text(
        "name: t\nnodes:\n  a:\n    interfaces: {eth0: {mac: '02:AB:00:00:00:01'}}\n"
        "    sysctls: {net.ipv4.ip_forward: true}\n  b: {}\nlinks: [{endpoints: [a:eth0, b:eth0]}]\n"
    )
    assert topo.nodes["a"].interfaces["eth0"].mac == "02:ab:00:00:00:01"
    assert topo.nodes["a"].sysctls["net.ipv4.ip_forward"] == "1"


def test_schema_is_json_and_describes_the_format() -> None:
    schema = topology_schema()
    json.dumps(schema)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "nodes"}
    assert "Bridge" in schema["$defs"]


def test_model_roundtrips_through_json() -> None:
    from netlab.model.topology import Topology

    topo, _ = load("routed3")
    again = Topology.model_validate(json.loads(json.dumps(topo.model_dump(mode="json"))), strict=False)
    assert again == topo


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_per_interface_sysctls_of_interfaces_the_lab_makes_are_accepted(family: str) -> None:
    """conf and neigh keys of a veth end and of a bridge, which exist only once the lab is up
    (the neighbour tables have default/ and one directory per interface, but no all/)."""
    keys = [
        f"net.{family}.conf.eth0.forwarding",
        f"net.{family}.neigh.eth0.retrans_time_ms",
        f"net.{family}.neigh.br0.mcast_solicit",
        f"net.{family}.neigh.default.ucast_solicit",
    ]
    sysctls = "".join(f"      {k}: 1\n" for k in keys)
    topo, _ = load_text(
        f"name: t\nnodes:\n  a:\n    bridges: {{br0: {{}}}}\n    sysctls:\n{sysctls}  b: {{}}\n"
        "links: [{endpoints: [a:eth0, b:eth0]}]\n"
    )
    assert sorted(topo.nodes["a"].sysctls) == sorted(keys)
