"""Neutron device, namespace and tunnel-port names, both directions."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier.neutron import naming

PORT_ID = "1234abcd-ef56-4789-8abc-def012345678"


def test_device_names_are_prefix_plus_eleven_characters_of_the_port_id() -> None:
    assert naming.tap_name(PORT_ID) == "tap1234abcd-ef"
    assert naming.qbr_name(PORT_ID) == "qbr1234abcd-ef"
    assert naming.qvb_name(PORT_ID) == "qvb1234abcd-ef"
    assert naming.qvo_name(PORT_ID) == "qvo1234abcd-ef"
    assert naming.qr_name(PORT_ID) == "qr-1234abcd-ef"
    assert naming.qg_name(PORT_ID) == "qg-1234abcd-ef"
    assert naming.tap_name("15865c29-9b3e-4f2a-8c1d-7e6f5a4b3c21") == "tap15865c29-9b"
    assert all(len(naming.device_name(role, PORT_ID)) == 14 for role in naming.DEVICE_PREFIXES)


def test_parse_device_name() -> None:
    assert naming.parse_device_name("qvo1234abcd-ef") == ("qvo", "1234abcd-ef")
    assert naming.parse_device_name("qr-1234abcd-ef") == ("qr", "1234abcd-ef")
    assert naming.parse_device_name("qg-1234abcd-ef") == ("qg", "1234abcd-ef")
    assert naming.parse_device_name("tap15865c29-9b") == ("tap", "15865c29-9b")
    for other in ("eth0", "patch-tun", "tap-vm1", "qvo1234abcd-e", "qvo1234abcd-efg", "gre-0a000002", "int-br-ex"):
        assert naming.parse_device_name(other) is None, other
    assert naming.device_belongs_to("qvo1234abcd-ef", PORT_ID)
    assert not naming.device_belongs_to("qvo1234abcd-ee", PORT_ID)


@given(st.uuids(version=4), st.sampled_from(sorted(naming.DEVICE_PREFIXES)))
def test_device_name_round_trip(port_uuid: uuid.UUID, role: str) -> None:
    port_id = str(port_uuid)
    name = naming.device_name(role, port_id)
    assert naming.parse_device_name(name) == (role, port_id[:11])
    assert naming.device_belongs_to(name, port_id)


def test_namespaces() -> None:
    net = "d24963da-5221-481e-adf5-fe033d6e0b4e"
    assert naming.dhcp_namespace(net) == "qdhcp-" + net
    assert naming.router_namespace(net) == "qrouter-" + net
    assert naming.parse_namespace("qdhcp-" + net) == ("qdhcp", net)
    assert naming.parse_namespace("qrouter-" + net) == ("qrouter", net)
    assert naming.parse_namespace("qdhcp-xyz") is None
    assert naming.parse_namespace("fip-" + net) is None


def test_tunnel_port_names_follow_get_tunnel_name() -> None:
    assert naming.tunnel_port_name("gre", "10.0.0.2") == "gre-0a000002"
    assert naming.tunnel_port_name("vxlan", "10.10.10.12") == "vxlan-0a0a0a0c"
    assert naming.parse_tunnel_port_name("gre-0a000002") == ("gre", ipaddress.IPv4Address("10.0.0.2"))
    six = naming.tunnel_port_name("gre", "2001:db8::1")
    digest = hashlib.blake2b(b"2001:db8::1", digest_size=20).digest()
    assert six == "gre-" + base64.b32encode(digest)[:11].decode().lower()
    assert len(six) == 15 and len(naming.tunnel_port_name("vxlan", "2001:db8::1")) == 15
    assert naming.parse_tunnel_port_name(six) == ("gre", None)
    assert naming.parse_tunnel_port_name("patch-int") is None
    assert naming.parse_tunnel_port_name("gre-xyz") is None


@given(st.ip_addresses(v=4), st.sampled_from(["gre", "vxlan", "geneve"]))
def test_ipv4_tunnel_name_round_trip(ip: ipaddress.IPv4Address, tunnel_type: str) -> None:
    name = naming.tunnel_port_name(tunnel_type, str(ip))
    assert len(name) <= naming.DEVICE_NAME_MAX_LEN
    assert naming.parse_tunnel_port_name(name) == (tunnel_type, ip)


@pytest.mark.parametrize("bridge", ["br-ex", "br-eth1", "br-provider"])
def test_physical_patch_names(bridge: str) -> None:
    assert naming.int_patch_name(bridge) == "int-" + bridge
    assert naming.phy_patch_name(bridge) == "phy-" + bridge
    assert naming.parse_patch_name("int-" + bridge) == ("int", bridge)
    assert naming.parse_patch_name("phy-" + bridge) == ("phy", bridge)


def test_long_bridge_names_are_hashed_like_get_interface_name() -> None:
    bridge = "br-physnet-provider1"
    digest = hashlib.sha1(bridge.encode()).hexdigest()[:6]
    assert naming.int_patch_name(bridge) == "int-br-ph" + digest
    assert naming.phy_patch_name(bridge) == "phy-br-ph" + digest
    assert len(naming.int_patch_name(bridge)) == 15
    assert naming.INT_PEER_PATCH_PORT == "patch-tun" and naming.TUN_PEER_PATCH_PORT == "patch-int"
