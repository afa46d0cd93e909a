"""What the CLI prints, from the dicts the Python API returns: no root, no lab."""

from __future__ import annotations

from typing import Any

import pytest

from netlab.cli import render


def _node(node: str, ifname: str, *addresses: str) -> dict[str, object]:
    return {"node": node, "netns": f"bridge3.{node}", "interfaces": [{"name": ifname, "addresses": list(addresses)}]}


UP: dict[str, Any] = {
    "lab": "bridge3",
    "state": "up",
    "nodes": [
        _node("ns-calm1", "calmveth1", "198.51.100.1/24"),
        _node("ns-calm2", "calmveth2", "198.51.100.2/24", "fe80::1/64"),
        _node("host", "calmbr"),
    ],
}


def test_lab_up_is_a_table_and_a_ping_to_try(capsys: pytest.CaptureFixture[str]) -> None:
    render.lab_up(UP, "two namespaces bridged")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "bridge3 is up: two namespaces bridged"
    assert out[1].split() == ["node", "namespace", "interfaces"]
    assert out[3].split() == ["ns-calm2", "bridge3.ns-calm2", "calmveth2", "198.51.100.2/24"]  # no link-local
    assert out[-1] == "try: netlab exec bridge3 ns-calm1 -- ping -c1 198.51.100.2"


def test_a_lab_with_one_addressed_node_suggests_no_ping(capsys: pytest.CaptureFixture[str]) -> None:
    lab = {**UP, "nodes": [_node("ns-calm1", "calmveth1", "198.51.100.1/24")]}
    render.lab_up(lab, "")
    out = capsys.readouterr().out
    assert "try:" not in out and out.startswith("bridge3 is up\n")


def test_status_lists_every_interface_once_under_its_node(capsys: pytest.CaptureFixture[str]) -> None:
    itf = {"name": "calmveth1", "up": True, "operstate": "UP", "addresses": ["198.51.100.1/24"]}
    down = {"name": "eth9", "up": False, "operstate": "DOWN", "addresses": []}
    labs = [{"lab": "bridge3", "state": "up", "source": "topologies/bridge3.yaml", "nodes": [
        {"node": "ns-calm1", "netns": "bridge3.ns-calm1", "interfaces": [itf, down]},
        {"node": "empty", "netns": "bridge3.empty", "interfaces": []},
    ]}]  # fmt: skip
    render.status(labs)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "bridge3 up  topologies/bridge3.yaml"
    assert out[2].split() == ["ns-calm1", "bridge3.ns-calm1", "calmveth1", "up", "198.51.100.1/24"]
    assert out[3].split() == ["eth9", "down"]  # the node's name is not repeated
    assert out[4].split() == ["empty", "bridge3.empty"]


def test_no_labs(capsys: pytest.CaptureFixture[str]) -> None:
    render.status([])
    assert capsys.readouterr().out == "no labs are up\n"


def test_a_trace_names_the_rule_and_says_what_it_could_not_place(capsys: pytest.CaptureFixture[str]) -> None:
    from netlab.tracers.events import DropEvent, Location, TraceResult

    drop = DropEvent(1.0, Location("nft_do_chain"), "NETFILTER_DROP", "host", None, rule="filter/FORWARD policy DROP")
    timer = DropEvent(1.0, Location("__neigh_event_send"), "NEIGH_FAILED", None, None)
    result = TraceResult("tracefs", "bridge3", drops=(drop, drop), unplaced=(timer,), unattributed=4)
    render.trace_result(result)
    out = capsys.readouterr().out
    assert "dropped by: filter/FORWARD policy DROP in node host (2)" in out
    assert "not placed in the lab: 4 drops" in out and "1 x __neigh_event_send NEIGH_FAILED" in out
    assert result.as_dict()["unplaced"] == [{"function": "__neigh_event_send", "reason": "NEIGH_FAILED", "count": 1}]
