"""The rtnetlink encoders, read back with pyroute2's own decoder: no root, no kernel."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from netlab.apply.rtnl import Encoder
from netlab.plan.steps import CreateBridge, CreateDummy, CreateMacvlan, CreateVlan, CreateVxlan, PortVlan, SetPortVlans
from netlab.pyroute import ifinfmsg


def decoded(step: Any) -> Any:
    raw = Encoder().encode(step, "unused")
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
