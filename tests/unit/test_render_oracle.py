"""The rendered seed-gre hosts loaded into real Open vSwitch (userspace sandbox).

Checks that OVS accepts every rendered bridge and flow, that ``dump-flows``
gives back exactly the rendered flows, that the OpenFlow 1.3 actions the
native driver sends dump as the text the renderer writes, and a few traces
through br-int and br-tun.  Skipped when Open vSwitch is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.ovs_sandbox import OvsSandbox
from verifier import ir
from verifier.examples import example_source, load_example_json
from verifier.header import ETH_TYPE_ARP, ETH_TYPE_IP, parse_mac
from verifier.neutron.model import parse_neutron
from verifier.neutron.render_ovs import render_dataplane
from verifier.snapshot.flows import parse_dump_flows, port_resolver

pytestmark = pytest.mark.oracle

SEG_A, SEG_B = 614, 291
BROADCAST = 0xFFFFFFFFFFFF


@pytest.fixture(scope="module")
def dataplane() -> ir.Dataplane:
    return render_dataplane(parse_neutron(load_example_json("seed-gre"), example_source("seed-gre")))


def _sandbox(dataplane: ir.Dataplane, host_name: str) -> Iterator[OvsSandbox]:
    ok, reason = OvsSandbox.available()
    if not ok:
        pytest.skip(f"real Open vSwitch unavailable: {reason}")
    host = dataplane.host(host_name)
    assert host is not None
    with OvsSandbox() as ovs:
        for b in host.bridges:
            ovs.add_bridge(b)
            ovs.load_flows(b.name, b.flows)
        assert ovs.unresolved_patches == []
        yield ovs


@pytest.fixture(scope="module")
def compute1(dataplane: ir.Dataplane) -> Iterator[OvsSandbox]:
    yield from _sandbox(dataplane, "compute1")


@pytest.fixture(scope="module")
def compute2(dataplane: ir.Dataplane) -> Iterator[OvsSandbox]:
    yield from _sandbox(dataplane, "compute2")


@pytest.fixture(scope="module")
def network(dataplane: ir.Dataplane) -> Iterator[OvsSandbox]:
    yield from _sandbox(dataplane, "network")


@pytest.mark.parametrize("host_name", ["compute1", "compute2", "network"])
def test_ovs_dumps_back_exactly_the_rendered_flows(
    dataplane: ir.Dataplane, host_name: str, request: pytest.FixtureRequest
) -> None:
    ovs: OvsSandbox = request.getfixturevalue(host_name)
    host = dataplane.host(host_name)
    assert host is not None
    for b in host.bridges:
        assert ovs.port_numbers(b.name) == {p.name: p.number for p in b.of_ports}
        flows, skipped = parse_dump_flows(ovs.dump_flows(b.name), f"{host_name}/{b.name}", port_resolver({}))
        assert skipped == []
        assert sorted(flows, key=repr) == sorted(b.flows, key=repr), b.name


def test_native_openflow13_actions_dump_as_the_rendered_text(dataplane: ir.Dataplane, compute1: OvsSandbox) -> None:
    """What os-ken sends (push_vlan/set_field/goto_table) reads back, in OpenFlow 1.0, as rendered."""
    tun = dataplane.host("compute1").bridge("br-tun")  # type: ignore[union-attr]
    assert tun is not None
    cookie = tun.flows[0].cookie
    native = [
        f"cookie={cookie:#x},table=3,priority=1,tun_id={SEG_A:#x},"
        "actions=push_vlan:0x8100,set_field:4097->vlan_vid,goto_table:10",
        f"cookie={cookie:#x},table=22,priority=1,vlan_vid=0x1001,"
        f"actions=pop_vlan,set_field:{SEG_A:#x}->tun_id,output:2,output:3",
        f"cookie={cookie:#x},table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=goto_table:22",
    ]
    compute1.vsctl("add-br", "br-native", "--", "set", "Bridge", "br-native", "fail_mode=secure")
    try:
        for line in native:
            compute1.ofctl("-O", "OpenFlow13", "add-flow", "br-native", line)
        flows, _ = parse_dump_flows(compute1.dump_flows("br-native"), "native", port_resolver({}))
    finally:
        compute1.vsctl("--if-exists", "del-br", "br-native")
    assert len(flows) == 3 and all(f in tun.flows for f in flows)


def _arp(src_mac: str, spa: str, tpa: str) -> dict[str, int]:
    return {
        "eth_src": parse_mac(src_mac),
        "eth_dst": BROADCAST,
        "eth_type": ETH_TYPE_ARP,
        "ip_proto": 1,
        "ip_src": int.from_bytes(bytes(int(x) for x in spa.split("."))),
        "ip_dst": int.from_bytes(bytes(int(x) for x in tpa.split("."))),
        "arp_sha": parse_mac(src_mac),
    }


def test_vm_broadcast_leaves_through_every_gre_tunnel_with_its_key(compute1: OvsSandbox) -> None:
    result = compute1.trace("br-int", _arp("fa:16:3e:19:65:62", "10.0.22.202", "10.0.22.1"), "qvo6a2f8d4c-0b")
    tunnels = {e.port: e.tunnel for e in result.outputs if e.tunnel is not None}
    assert set(tunnels) == {"gre-0a0a0a0b", "gre-0a0a0a0d"}
    assert {t.tun_id for t in tunnels.values() if t is not None} == {SEG_A}
    # Tenant B's VMs on the same host (other local VLAN) see nothing.
    assert not {"qvo9c3d7e1f-4a", "qvob5e2a8d7-1c"} & set(result.ports)


def test_spoofed_arp_and_spoofed_mac_are_dropped(compute1: OvsSandbox) -> None:
    spoofed_ip = compute1.trace("br-int", _arp("fa:16:3e:19:65:62", "10.0.22.99", "10.0.22.1"), "qvo6a2f8d4c-0b")
    assert spoofed_ip.dropped
    packet = {
        "eth_src": parse_mac("fa:16:3e:00:00:99"),
        "eth_dst": BROADCAST,
        "eth_type": ETH_TYPE_IP,
        "ip_src": 0x0A0016CA,
        "ip_dst": 0xFFFFFFFF,
        "ip_proto": 17,
        "ip_ttl": 64,
        "tp_src": 68,
        "tp_dst": 67,
    }
    assert compute1.trace("br-int", packet, "qvo6a2f8d4c-0b").dropped


def test_gre_ingress_reaches_only_the_networks_present_on_the_host(compute2: OvsSandbox) -> None:
    frame = _arp("fa:16:3e:19:65:62", "10.0.22.202", "10.0.22.203")
    tunnel = {"tun_src": 0x0A0A0A0C, "tun_dst": 0x0A0A0A0D}
    to_a = compute2.trace("br-tun", {**frame, **tunnel, "tun_id": SEG_A}, "gre-0a0a0a0c")
    assert "qvo8e4b1f07-2c" in to_a.ports and "qvof7c0e3a6-9b" not in to_a.ports
    assert compute2.trace("br-tun", {**frame, **tunnel, "tun_id": SEG_B}, "gre-0a0a0a0c").dropped


def test_dhcp_request_from_a_tunnel_reaches_the_dhcp_tap(network: OvsSandbox) -> None:
    packet = {
        "eth_src": parse_mac("fa:16:3e:19:65:62"),
        "eth_dst": BROADCAST,
        "eth_type": ETH_TYPE_IP,
        "ip_src": 0,
        "ip_dst": 0xFFFFFFFF,
        "ip_proto": 17,
        "ip_ttl": 64,
        "tp_src": 68,
        "tp_dst": 67,
        "tun_id": SEG_A,
        "tun_src": 0x0A0A0A0C,
        "tun_dst": 0x0A0A0A0B,
    }
    result = network.trace("br-tun", packet, "gre-0a0a0a0c")
    assert "tap15865c29-9b" in result.ports
    assert not {"tap57a9e3c1-2b", "tape1b4d7f0-3a", "qg-0b7e3c95-4d"} & set(result.ports)
