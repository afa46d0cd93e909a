"""The planner is pure: same topology, same plan; every object planned once, in order."""

from __future__ import annotations

from netlab.model.loader import load, load_text
from netlab.plan.planner import plan
from netlab.plan.steps import (
    AddAddress,
    AddRoute,
    CreateBridge,
    CreateDummy,
    CreateMacvlan,
    CreateNamespace,
    CreateVeth,
    CreateVlan,
    CreateVxlan,
    LoadNftables,
    Phase,
    PortVlan,
    RestoreFirewall,
    SetLink,
    SetPortVlans,
    WriteSysctl,
)


def test_bridge3_plan() -> None:
    topo, _ = load("bridge3")
    p = plan(topo, "bridge3")
    assert p.netns == {"ns-calm1": "bridge3.ns-calm1", "ns-calm2": "bridge3.ns-calm2", "host": "bridge3.host"}
    kinds = [type(s).__name__ for s in p.ordered()]
    assert kinds[:3] == ["CreateNamespace"] * 3
    veths = [s for s in p.steps if isinstance(s, CreateVeth)]
    # the bridge-port end is created (so its master is set in the same message)
    assert {(v.node, v.ifname, v.master_ifindex) for v in veths} == {
        ("host", "calmveth1_peer", p.ifindex[("host", "calmbr")]),
        ("host", "calmveth2_peer", p.ifindex[("host", "calmbr")]),
    }
    assert {(s.node, s.ifname) for s in p.steps if isinstance(s, SetLink)} == {
        ("ns-calm1", "calmveth1"),
        ("ns-calm2", "calmveth2"),
    }
    fw = next(s for s in p.steps if isinstance(s, RestoreFirewall))
    assert fw.text == "*filter\n:FORWARD DROP\n-A FORWARD -i calmbr -j ACCEPT\nCOMMIT\n"


def test_plan_is_deterministic_and_instance_scoped() -> None:
    topo, _ = load("routed3")
    assert plan(topo, "a") == plan(topo, "a")
    assert set(plan(topo, "a").netns.values()).isdisjoint(plan(topo, "b").netns.values())


def test_ifindexes_unique_in_the_whole_lab() -> None:
    """One count for the lab, so an ifindex alone (all dropwatch reports) names one interface."""
    topo, _ = load("linear50")
    p = plan(topo, "l")
    real = [idx for (_node, ifname), idx in p.ifindex.items() if ifname != "lo"]
    assert len(real) == len(set(real)) and min(real) == 100
    assert {idx for (_node, ifname), idx in p.ifindex.items() if ifname == "lo"} == {1}
    assert len([s for s in p.steps if isinstance(s, CreateBridge)]) == 50
    assert len([s for s in p.steps if isinstance(s, CreateVeth)]) == 99


def test_phases_order_dependencies() -> None:
    topo, _ = load("routed3")
    ordered = plan(topo, "r").ordered()
    phases = [s.phase for s in ordered]
    assert phases == sorted(phases)
    first_route = next(i for i, s in enumerate(ordered) if isinstance(s, AddRoute))
    last_addr = max(i for i, s in enumerate(ordered) if isinstance(s, AddAddress))
    assert last_addr < first_route


def test_ipv6_off_disables_before_links_and_interface_sysctls_wait() -> None:
    topo, _ = load_text(
        "name: t\nipv6: false\nnodes:\n  a:\n    sysctls:\n      net.ipv4.conf.eth0.rp_filter: 1\n"
        "      net.ipv4.ip_forward: 1\n  b: {}\nlinks: [{endpoints: [a:eth0, b:eth0]}]\n"
    )
    p = plan(topo, "t")
    sysctls = {s.key: s.phase for s in p.steps if isinstance(s, WriteSysctl)}
    assert sysctls["net.ipv6.conf.all.disable_ipv6"] == Phase.EARLY_SYSCTLS
    assert sysctls["net.ipv4.ip_forward"] == Phase.EARLY_SYSCTLS
    assert sysctls["net.ipv4.conf.eth0.rp_filter"] == Phase.LATE_SYSCTLS


def test_default_route_family_follows_gateway() -> None:
    topo, _ = load("routed3")
    routes = [s for s in plan(topo, "r").steps if isinstance(s, AddRoute) and s.node == "client"]
    assert sorted(str(r.to) for r in routes) == ["0.0.0.0/0", "::/0"]


def test_render_lists_every_step_and_undo() -> None:
    topo, _ = load("bridge3")
    text = plan(topo, "bridge3").render()
    assert "create network namespace bridge3.host" in text
    assert "undo: kill processes left in bridge3.host, unmount /run/netns/bridge3.host" in text
    assert text.count("\n") >= len(plan(topo, "bridge3").steps)


def test_every_step_has_an_origin_in_the_file() -> None:
    topo, _ = load("routed3")
    for step in plan(topo, "r").steps:
        assert step.origin, step
    assert all(isinstance(s, CreateNamespace) for s in plan(topo, "r").ordered()[:4])


def test_bridge_as_the_selftests_make_it() -> None:
    """forward_delay 0 with STP off (bridge_brouter.sh) and nf_call_arptables, which needs br_netfilter."""
    from netlab.model.topology import Topology
    from netlab.plan.planner import modules_needed

    topo = Topology.model_validate(
        {
            "name": "brouter",
            "nodes": {
                "a": {},
                "h": {"bridges": {"br0": {"ports": ["h-a"], "forward_delay": 0, "nf_call_arptables": True}}},
            },
            "links": [{"endpoints": ["a:a-h", "h:h-a"]}],
        }
    )
    (bridge,) = [s for s in plan(topo, "b").steps if isinstance(s, CreateBridge)]
    assert (bridge.forward_delay, bridge.nf_call_arptables) == (0, True)
    assert "nf_call_arptables=1" in bridge.describe()
    assert "br_netfilter" in {need.module for need in modules_needed(topo)}


def test_stacked_interfaces_come_after_their_parents_and_ports_get_their_vlans() -> None:
    topo, _ = load("vlans")
    p = plan(topo, "v")
    ordered = p.ordered()
    at = {(getattr(s, "node", None), getattr(s, "ifname", None), type(s).__name__): i for i, s in enumerate(ordered)}
    vlan = next(s for s in p.steps if isinstance(s, CreateVlan))
    assert (vlan.node, vlan.ifname, vlan.vlan_id, vlan.parent_ifindex) == ("h1", "v10", 10, p.ifindex[("h1", "trunk1")])
    # the parent (the peer end of a veth made from sw) exists before the vlan, the vlan before its address
    assert at[("sw", "t1", "CreateVeth")] < at[("h1", "v10", "CreateVlan")] < at[("h1", "v10", "AddAddress")]
    assert any(isinstance(s, CreateDummy) and s.ifname == "svc1" for s in p.steps)
    bridge = next(s for s in p.steps if isinstance(s, CreateBridge))
    assert bridge.vlan_filtering and bridge.default_pvid == 0
    vlans = {s.ifname: s.vlans for s in p.steps if isinstance(s, SetPortVlans)}
    assert vlans["t1"] == (PortVlan(10), PortVlan(20))
    assert vlans["a2"] == (PortVlan(10, pvid=True, untagged=True),)
    # a port's VLANs are set once it is a port: after the veth that made it one
    assert at[("sw", "a2", "CreateVeth")] < at[("sw", "a2", "SetPortVlans")]
    assert {m.module for m in p.modules} >= {"8021q", "dummy", "bridge", "veth"}


def test_a_vlan_on_a_vlan_is_made_after_it_whatever_the_file_order() -> None:
    topo = load_text(
        """
name: qinq
nodes:
  a:
    vlans:
      inner: {parent: outer, id: 20}
      outer: {parent: eth0, id: 100, protocol: 802.1ad}
  b: {}
links:
  - endpoints: [a:eth0, b:eth0]
"""
    )[0]
    made = [s.ifname for s in plan(topo, "q").ordered() if isinstance(s, CreateVlan)]
    assert made == ["outer", "inner"]


def test_vxlan_and_macvlan_are_planned_with_their_underlay() -> None:
    topo, _ = load("overlay")
    p = plan(topo, "o")
    vx = {s.node: s for s in p.steps if isinstance(s, CreateVxlan)}
    assert vx["h1"].parent_ifindex == p.ifindex[("h1", "ul1")]
    assert (vx["h1"].vni, str(vx["h1"].remote), str(vx["h1"].local), vx["h1"].port) == (
        42,
        "192.0.2.2",
        "192.0.2.1",
        4789,
    )
    (mv,) = [s for s in p.steps if isinstance(s, CreateMacvlan)]
    assert (mv.node, mv.mode, mv.parent_ifindex, mv.mac) == (
        "h2",
        "bridge",
        p.ifindex[("h2", "ul2")],
        "02:00:00:00:02:12",
    )
    # tracers find every interface by the ifindex the planner gave it
    assert {("h1", "vx1"), ("h2", "vx2"), ("h2", "mv2")} <= set(p.ifindex)
    real = [i for (_n, ifname), i in p.ifindex.items() if ifname != "lo"]
    assert len(real) == len(set(real))


def test_a_ruleset_that_hooks_devices_is_loaded_once_they_exist() -> None:
    """A netdev chain names its device, which older kernels want to exist already; any other
    ruleset is loaded before the first interface appears."""
    topo, _ = load("nftables")
    ordered = plan(topo, "n").ordered()
    loads = {s.node: i for i, s in enumerate(ordered) if isinstance(s, LoadNftables)}
    c_link = max(i for i, s in enumerate(ordered) if isinstance(s, CreateVeth) and "c-h" in (s.ifname, s.peer_ifname))
    first_link = min(i for i, s in enumerate(ordered) if isinstance(s, CreateVeth))
    last_address = max(i for i, s in enumerate(ordered) if isinstance(s, AddAddress))
    assert c_link < last_address < loads["c"]
    assert all(loads[n] < first_link for n in ("b", "d", "h"))
