"""The rtnetlink encoders, read back with pyroute2's own decoder: each option of each kind of
step lands in the attribute the kernel reads it from. No root, no kernel (the integration
tests bring up a topology of every link kind on the real one)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netlab.apply import rtnl
from netlab.plan.steps import (
    AddAddress,
    AddRoute,
    CreateBridge,
    CreateDummy,
    CreateMacvlan,
    CreateVeth,
    CreateVlan,
    CreateVxlan,
    PortVlan,
    SetLink,
    SetLoopback,
    SetPortVlans,
    Step,
)

ip = ipaddress.ip_address
net = ipaddress.ip_network
itf = ipaddress.ip_interface

#: every kind of step, with every option it has set and unset
EVERY_KIND: list[Step] = [
    SetLoopback("a", alias="netlab:bridge3"),
    CreateBridge("sw", ifname="br0", ifindex=100, stp=False),
    CreateBridge(
        "sw",
        ifname="br0",
        ifindex=100,
        stp=True,
        forward_delay=0,
        group_fwd_mask=0x4000,
        nf_call_iptables=True,
        nf_call_ip6tables=False,
        nf_call_arptables=True,
        vlan_filtering=True,
        default_pvid=0,
        mac="02:00:00:00:00:01",
        mtu=9000,
    ),
    CreateBridge("sw", ifname="br0", ifindex=100, stp=False, forward_delay=2.5, default_pvid=7),
    CreateVeth("a", ifname="eth0", ifindex=10, peer_node="b", peer_netns="lab.b", peer_ifname="eth1", peer_ifindex=11),
    CreateVeth(
        "sw",
        ifname="p1",
        ifindex=101,
        peer_node="sw",
        peer_netns="lab.sw",
        peer_ifname="p2",
        peer_ifindex=102,
        mac="02:00:00:00:01:01",
        mtu=1400,
        master_ifindex=100,
        peer_mac="02:00:00:00:01:02",
        peer_mtu=1280,
    ),
    CreateDummy("a", ifname="svc0", ifindex=107),
    CreateDummy("a", ifname="svc0", ifindex=107, master_ifindex=100, mac="02:00:00:00:00:07", mtu=1500),
    CreateVlan("a", ifname="v10", ifindex=108, parent_ifindex=101, vlan_id=10),
    CreateVlan("a", ifname="v20", ifindex=109, parent_ifindex=101, vlan_id=4094, protocol="802.1ad", master_ifindex=3),
    CreateMacvlan("a", ifname="mv0", ifindex=104, parent_ifindex=101, mode="private"),
    CreateMacvlan("a", ifname="mv1", ifindex=105, parent_ifindex=101),
    CreateVxlan("a", ifname="vx0", ifindex=102, vni=7),
    CreateVxlan(
        "a",
        ifname="vx0",
        ifindex=102,
        parent_ifindex=100,
        vni=42,
        remote=ip("192.0.2.2"),
        local=ip("192.0.2.1"),
        port=4790,
        learning=False,
        ttl=64,
        master_ifindex=5,
    ),
    CreateVxlan("a", ifname="vx1", ifindex=103, vni=9, group=ip("239.1.1.1"), parent_ifindex=100),
    CreateVxlan("a", ifname="vx6", ifindex=104, vni=7, remote=ip("2001:db8::2"), local=ip("2001:db8::1")),
    SetPortVlans("sw", ifname="a2", ifindex=104, vlans=(PortVlan(10, pvid=True, untagged=True), PortVlan(20))),
    SetPortVlans("sw", ifname="br0", ifindex=100, vlans=(PortVlan(10, untagged=True),), own=True),
    SetLink("a", ifname="eth1", ifindex=11),
    SetLink("a", ifname="p2", ifindex=102, master_ifindex=100),
    AddAddress("a", ifname="eth0", ifindex=10, address=itf("192.0.2.1/24")),
    AddAddress("a", ifname="eth0", ifindex=10, address=itf("198.51.100.7/32")),
    AddAddress("a", ifname="eth0", ifindex=10, address=itf("2001:db8::1/64")),
    AddRoute("a", to=net("0.0.0.0/0"), via=ip("192.0.2.254")),
    AddRoute("a", to=net("203.0.113.0/24"), dev="eth0", dev_ifindex=10),
    AddRoute("a", to=net("203.0.113.0/25"), via=ip("192.0.2.1"), dev="eth0", dev_ifindex=10, metric=100),
    AddRoute("a", to=net("198.51.100.0/24"), type="blackhole"),
    AddRoute("a", to=net("198.51.100.128/25"), type="unreachable", metric=5),
    AddRoute("a", to=net("198.51.100.64/26"), type="prohibit"),
    AddRoute("a", to=net("::/0"), via=ip("2001:db8::fe")),
    AddRoute("a", to=net("2001:db8:1::/48"), via=ip("fe80::1"), dev="eth0", dev_ifindex=10, metric=1024),
]


def fake_fd(netns: str) -> int:
    """A namespace "fd" that only these tests use: the bytes carry the number as given."""
    return 40 + len(netns)


@pytest.mark.parametrize("step", EVERY_KIND, ids=lambda s: f"{type(s).__name__}")
def test_every_step_encodes_to_one_message_pyroute2_reads_back(step: Step) -> None:
    raw = rtnl.ENCODERS[type(step)](step, "lab.a", fake_fd)
    parser = {rtnl.RTM_NEWADDR: ifaddrmsg, rtnl.RTM_NEWROUTE: rtmsg}.get(int.from_bytes(raw[4:6], "little"), ifinfmsg)
    msg = parser(raw)
    msg.decode()
    assert msg["header"]["length"] == len(raw), msg
    assert msg["header"]["flags"] in (rtnl.CREATE, rtnl.CHANGE)


def test_every_kind_of_step_is_encoded() -> None:
    assert {type(s) for s in EVERY_KIND} == set(rtnl.ENCODERS)


def test_a_veth_peer_goes_to_its_namespace_with_its_chosen_index() -> None:
    step = CreateVeth(
        "a", ifname="eth0", ifindex=10, peer_node="b", peer_netns="lab.b", peer_ifname="eth1", peer_ifindex=11
    )
    msg = ifinfmsg(rtnl.ENCODERS[CreateVeth](step, "lab.a", fake_fd))
    msg.decode()
    peer = info_data(msg).get_attr("VETH_INFO_PEER")
    assert (msg["index"], peer["index"], peer.get_attr("IFLA_IFNAME")) == (10, 11, "eth1")
    assert peer.get_attr("IFLA_NET_NS_FD") == fake_fd("lab.b")


def test_a_route_says_its_type_scope_and_gateway() -> None:
    raw = rtnl.ENCODERS[AddRoute](
        AddRoute("a", to=net("198.51.100.0/24"), type="blackhole", metric=5), "lab.a", fake_fd
    )
    msg = rtmsg(raw)
    msg.decode()
    assert (msg["type"], msg["scope"], msg["dst_len"], msg.get_attr("RTA_PRIORITY")) == (6, 0, 24, 5)
    via = rtmsg(rtnl.ENCODERS[AddRoute](AddRoute("a", to=net("::/0"), via=ip("2001:db8::fe")), "lab.a", fake_fd))
    via.decode()
    assert (via["family"], via.get_attr("RTA_GATEWAY"), via.get_attr("RTA_DST")) == (
        socket.AF_INET6,
        "2001:db8::fe",
        None,
    )


def decoded(step: Any) -> Any:
    raw = rtnl.compile_step(step, "unused").raw
    msg = ifinfmsg(raw)
    msg.decode()
    return msg


def info_data(msg: Any) -> Any:
    return msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")


def test_a_vlan_names_its_parent_id_and_protocol() -> None:
    msg = decoded(CreateVlan("a", ifname="v10", ifindex=108, parent_ifindex=101, vlan_id=10, protocol="802.1ad"))
    assert (msg["index"], msg.get_attr("IFLA_IFNAME"), msg.get_attr("IFLA_LINK")) == (108, "v10", 101)
    assert msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_KIND") == "vlan"
    data = info_data(msg)
    assert (data.get_attr("IFLA_VLAN_ID"), data.get_attr("IFLA_VLAN_PROTOCOL")) == (10, 0x88A8)
    assert msg["flags"] & 1 and msg["change"] & 1  # created up


def test_a_dummy_has_a_kind_and_no_data() -> None:
    msg = decoded(CreateDummy("a", ifname="svc0", ifindex=107, master_ifindex=100, mac="02:00:00:00:00:07"))
    assert msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_KIND") == "dummy"
    assert (msg.get_attr("IFLA_MASTER"), msg.get_attr("IFLA_ADDRESS")) == (100, "02:00:00:00:00:07")


def test_a_macvlan_mode_is_the_kernels_number() -> None:
    msg = decoded(CreateMacvlan("a", ifname="mv0", ifindex=104, parent_ifindex=101, mode="private"))
    assert info_data(msg).get_attr("IFLA_MACVLAN_MODE") in (1, "private")


def test_a_vxlan_remote_goes_as_its_group_and_its_underlay_as_link() -> None:
    step = CreateVxlan(
        "a",
        ifname="vx0",
        ifindex=102,
        parent_ifindex=100,
        vni=42,
        remote=ipaddress.ip_address("192.0.2.2"),
        local=ipaddress.ip_address("192.0.2.1"),
        port=4790,
        learning=False,
    )
    msg = decoded(step)
    assert msg.get_attr("IFLA_LINK") is None  # a vxlan's underlay is IFLA_VXLAN_LINK
    data = info_data(msg)
    got = {k: data.get_attr(k) for k in ("IFLA_VXLAN_ID", "IFLA_VXLAN_GROUP", "IFLA_VXLAN_LOCAL", "IFLA_VXLAN_LINK")}
    assert got == {
        "IFLA_VXLAN_ID": 42,
        "IFLA_VXLAN_GROUP": "192.0.2.2",
        "IFLA_VXLAN_LOCAL": "192.0.2.1",
        "IFLA_VXLAN_LINK": 100,
    }
    assert (data.get_attr("IFLA_VXLAN_PORT"), data.get_attr("IFLA_VXLAN_LEARNING")) == (4790, 0)


def test_an_ipv6_vxlan_uses_the_6_attributes() -> None:
    step = CreateVxlan("a", ifname="vx0", ifindex=102, vni=7, remote=ipaddress.ip_address("2001:db8::2"))
    data = info_data(decoded(step))
    assert data.get_attr("IFLA_VXLAN_GROUP6") == "2001:db8::2" and data.get_attr("IFLA_VXLAN_GROUP") is None


def test_port_vlans_are_one_af_bridge_setlink_with_a_vlan_info_each() -> None:
    step = SetPortVlans("sw", ifname="a2", ifindex=104, vlans=(PortVlan(10, pvid=True, untagged=True), PortVlan(20)))
    msg = decoded(step)
    assert (msg["family"], msg["index"], msg["header"]["type"]) == (socket.AF_BRIDGE, 104, 19)  # RTM_SETLINK
    spec = msg.get_attr("IFLA_AF_SPEC")
    infos = [(v["flags"], v["vid"]) for v in spec.get_attrs("IFLA_BRIDGE_VLAN_INFO")]
    assert infos == [(0x2 | 0x4, 10), (0, 20)]
    assert [name for name, _ in spec["attrs"]] == ["IFLA_BRIDGE_VLAN_INFO"] * 2  # no flags: to its master


def test_the_bridges_own_vlans_are_flagged_self() -> None:
    msg = decoded(SetPortVlans("sw", ifname="br0", ifindex=100, vlans=(PortVlan(10),), own=True))
    # attribute 0, IFLA_BRIDGE_FLAGS, which pyroute2 decodes under its other name
    assert msg.get_attr("IFLA_AF_SPEC").get_attr("IFLA_BRIDGE_VLAN_FLAGS") == 2  # BRIDGE_FLAGS_SELF


def test_a_filtering_bridge_asks_for_filtering_and_its_default_pvid() -> None:
    msg = decoded(CreateBridge("sw", ifname="br0", ifindex=100, stp=False, vlan_filtering=True, default_pvid=0))
    data = info_data(msg)
    assert (data.get_attr("IFLA_BR_VLAN_FILTERING"), data.get_attr("IFLA_BR_VLAN_DEFAULT_PVID")) == (1, 0)


def test_a_veths_peer_namespace_fd_is_written_where_pyroute2_put_it(tmp_path: Any) -> None:
    """The cached bytes carry a placeholder where the peer namespace's fd goes; bound to a real
    fd, the bytes are what pyroute2 builds with that fd."""
    step = CreateVeth(
        "a", ifname="eth0", ifindex=10, peer_node="b", peer_netns="lab.b", peer_ifname="eth1", peer_ifindex=11
    )
    message = rtnl.compile_step(step, "lab.a")
    assert message.peer_netns == "lab.b" and message.fd_at is not None

    bound = message.bound(fake_fd)
    assert bound == rtnl.ENCODERS[CreateVeth](step, "lab.a", fake_fd)
    same = CreateVeth(
        "a", ifname="eth0", ifindex=10, peer_node="a", peer_netns="lab.a", peer_ifname="eth1", peer_ifindex=11
    )
    assert rtnl.compile_step(same, "lab.a").fd_at is None  # a peer in the same namespace has no fd
