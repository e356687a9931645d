"""Neutron intent -> dataplane IR: the seed-gre example table by table, edge cases, random deployments."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from support.neutron_data import HOSTS, agent, deployments, network, port, subnet
from verifier import ir
from verifier.examples import example_source, load_example_json
from verifier.neutron import constants as c
from verifier.neutron import naming
from verifier.neutron.model import Neutron, parse_neutron
from verifier.neutron.render_ovs import render_dataplane
from verifier.snapshot.flow_writer import format_dump
from verifier.snapshot.flows import parse_dump_flows, parse_flow, port_resolver

NET_A = "d24963da-5221-481e-adf5-fe033d6e0b4e"
NET_B = "e8f1c2d4-7a3b-4c59-8e16-5d2a9b0f3c71"
NET_C = "3b0c7f57-91d2-4e8a-b6f3-0c5e2d7a9148"
NET_PUBLIC = "9a6f3a2e-6c1b-4f0e-9d62-2b8f4c7e1a05"
SEG_A, SEG_B, SEG_C = 614, 291, 857
VM_A1 = "6a2f8d4c-0b1e-4c37-9d58-2e7f1a3b5c90"
VM_B1 = "9c3d7e1f-4a2b-4c85-b6d9-7e0f2a1c3b58"
DHCP_A = "15865c29-9b3e-4f2a-8c1d-7e6f5a4b3c21"
GRE = {"network": "gre-0a0a0a0b", "compute1": "gre-0a0a0a0c", "compute2": "gre-0a0a0a0d"}


def seed() -> Neutron:
    return parse_neutron(load_example_json("seed-gre"), example_source("seed-gre"))


@pytest.fixture(scope="module")
def dataplane() -> ir.Dataplane:
    return render_dataplane(seed())


def bridge(dp: ir.Dataplane, host: str, name: str) -> ir.Bridge:
    h = dp.host(host)
    assert h is not None, host
    b = h.bridge(name)
    assert b is not None, (host, name)
    return b


def expect(b: ir.Bridge, text: str) -> ir.Flow:
    """A flow written as add-flows text (port names allowed; the bridge's cookie unless given)."""
    if "cookie=" not in text:
        text = f"cookie={b.flows[0].cookie:#x}, {text}"
    return parse_flow(text, port_resolver({p.name: p.number for p in b.of_ports}), ir.NO_PROVENANCE)


def has(b: ir.Bridge, text: str) -> bool:
    return expect(b, text) in b.flows


def table(b: ir.Bridge, number: int) -> list[ir.Flow]:
    return [f for f in b.flows if f.table == number]


def tag_of(b: ir.Bridge, device: str) -> int | None:
    port = b.ovsdb_port(device)
    assert port is not None, device
    return port.tag


# ---------------------------------------------------------------- topology


def test_hosts_bridges_and_tunnel_addresses(dataplane: ir.Dataplane) -> None:
    assert [h.name for h in dataplane.hosts] == ["compute1", "compute2", "network"]
    names = {h.name: [b.name for b in h.bridges] for h in dataplane.hosts}
    assert names == {
        "compute1": ["br-int", "br-tun"],
        "compute2": ["br-int", "br-tun"],
        "network": ["br-ex", "br-int", "br-tun"],
    }
    network = dataplane.host("network")
    assert network is not None and network.addresses == (ir.Address("eth2", "10.10.10.11", 24),)
    for b in (bridge(dataplane, "network", n) for n in ("br-ex", "br-int", "br-tun")):
        assert (b.fail_mode, b.datapath_type) == ("secure", "system")
        assert b.port_number(b.name) == c.OFPP_LOCAL and b.interface(b.name) == ir.Interface(b.name, "internal")


def test_full_mesh_of_gre_ports_with_neutron_options(dataplane: ir.Dataplane) -> None:
    local = {"network": "10.10.10.11", "compute1": "10.10.10.12", "compute2": "10.10.10.13"}
    for host, ip in local.items():
        tun = bridge(dataplane, host, "br-tun")
        gre = sorted(p.name for p in tun.ports if p.name.startswith("gre-"))
        assert gre == sorted(name for h, name in GRE.items() if h != host)
        for name in gre:
            remote = str(ipaddress.IPv4Address(int(name[4:], 16)))
            assert tun.interface(name) == ir.Interface(
                name,
                "gre",
                (
                    ("df_default", "true"),
                    ("egress_pkt_mark", "0"),
                    ("in_key", "flow"),
                    ("local_ip", ip),
                    ("out_key", "flow"),
                    ("remote_ip", remote),
                ),
            )
        assert tun.interface("patch-int") == ir.Interface("patch-int", "patch", (("peer", "patch-tun"),))
        assert tun.port_number("patch-int") == 1
        integration = bridge(dataplane, host, "br-int")
        assert integration.interface("patch-tun") == ir.Interface("patch-tun", "patch", (("peer", "patch-int"),))
        patch_tun = ir.Interface("patch-tun", "patch", (("peer", "patch-int"),))
        assert integration.ovsdb_port("patch-tun") == ir.Port("patch-tun", (patch_tun,))


def test_physical_bridge_patch_pair_and_nic(dataplane: ir.Dataplane) -> None:
    ex = bridge(dataplane, "network", "br-ex")
    integration = bridge(dataplane, "network", "br-int")
    assert ex.interface("phy-br-ex") == ir.Interface("phy-br-ex", "patch", (("peer", "int-br-ex"),))
    assert integration.interface("int-br-ex") == ir.Interface("int-br-ex", "patch", (("peer", "phy-br-ex"),))
    assert ex.ovsdb_port("eth1") == ir.Port("eth1", (ir.Interface("eth1"),))
    assert [p.name for p in ex.of_ports] == ["eth1", "phy-br-ex", "br-ex"]
    assert bridge(dataplane, "compute1", "br-int").port_number("int-br-ex") is None


def test_devices_on_br_int(dataplane: ir.Dataplane) -> None:
    c1 = bridge(dataplane, "compute1", "br-int")
    vm = c1.ovsdb_port("qvo6a2f8d4c-0b")
    assert vm is not None and vm.interfaces == (ir.Interface("qvo6a2f8d4c-0b"),) and vm.trunks == ()
    network = bridge(dataplane, "network", "br-int")
    dhcp = network.ovsdb_port("tap15865c29-9b")
    assert dhcp is not None and dhcp.interfaces == (ir.Interface("tap15865c29-9b", "internal"),)
    # Internal ports carry the Neutron port's MAC.
    macs = {p.name: p.mac for p in network.of_ports}
    assert macs["tap15865c29-9b"] == "fa:16:3e:4e:8b:21"
    assert macs["qr-2d9c6b4e-5f"] == "fa:16:3e:a2:5d:0c" and macs["qg-0b7e3c95-4d"] == "fa:16:3e:d1:09:4a"
    routers = sorted(p.name for p in network.ports if p.name[:3] in ("qr-", "qg-"))
    assert routers == ["qg-0b7e3c95-4d", "qg-d3f6b9a2-8e", "qr-2d9c6b4e-5f", "qr-4f1e8a2d-6b", "qr-c8a1f5e3-7d"]
    # Floating-IP ports are never plugged; nothing of the network node's is on a compute node.
    assert not any(p.name.startswith(("tap1a8d5f2c", "qg-", "qr-", "tap")) for p in c1.ports)


# ---------------------------------------------------------------- local VLANs


def test_local_vlans_are_per_host(dataplane: ir.Dataplane) -> None:
    network = bridge(dataplane, "network", "br-int")
    c1 = bridge(dataplane, "compute1", "br-int")
    c2 = bridge(dataplane, "compute2", "br-int")
    # Networks with a local port, in order of network id: C (3b..), public (9a..), A (d2..), B (e8..).
    assert tag_of(network, "tape1b4d7f0-3a") == 1
    assert tag_of(network, "qg-0b7e3c95-4d") == tag_of(network, "qg-d3f6b9a2-8e") == 2
    assert tag_of(network, "tap15865c29-9b") == tag_of(network, "qr-2d9c6b4e-5f") == 3
    assert tag_of(network, "tap57a9e3c1-2b") == 4
    assert tag_of(c1, "qvo6a2f8d4c-0b") == 1 and tag_of(c1, "qvo9c3d7e1f-4a") == tag_of(c1, "qvob5e2a8d7-1c") == 2
    assert tag_of(c2, "qvof7c0e3a6-9b") == 1 and tag_of(c2, "qvo8e4b1f07-2c") == 2
    # Tenant A's network has a different local VLAN on each host; only the GRE key is global.
    assert {tag_of(network, "tap15865c29-9b"), tag_of(c1, "qvo6a2f8d4c-0b"), tag_of(c2, "qvo8e4b1f07-2c")} == {1, 2, 3}


def test_dhcp_tap_carries_tenant_a_lvid_on_the_network_node(dataplane: ir.Dataplane) -> None:
    network = bridge(dataplane, "network", "br-int")
    tun = bridge(dataplane, "network", "br-tun")
    lvid = tag_of(network, naming.tap_name(DHCP_A))
    assert lvid == 3
    assert has(tun, f"table=3,priority=1,tun_id={SEG_A:#x} actions=mod_vlan_vid:{lvid},resubmit(,10)")


# ---------------------------------------------------------------- br-tun


def test_br_tun_table_3_maps_gre_key_to_the_local_vlan(dataplane: ir.Dataplane) -> None:
    tun = bridge(dataplane, "compute1", "br-tun")
    assert has(tun, f"table=3,priority=1,tun_id={SEG_A:#x} actions=mod_vlan_vid:1,resubmit(,10)")
    assert has(tun, f"table=3,priority=1,tun_id={SEG_B:#x} actions=mod_vlan_vid:2,resubmit(,10)")
    assert has(tun, "table=3,priority=0 actions=drop")
    assert len(table(tun, 3)) == 3


def test_openflow_13_spelling_of_table_3_means_the_same(dataplane: ir.Dataplane) -> None:
    tun = bridge(dataplane, "compute1", "br-tun")
    of13 = expect(
        tun, f"table=3,priority=1,tun_id={SEG_A:#x} actions=push_vlan:0x8100,set_field:4097->vlan_vid,goto_table:10"
    )
    assert of13 in tun.flows
    of13_flood = expect(tun, "table=22,priority=1,dl_vlan=1 actions=pop_vlan,set_field:0x266->tun_id,output:2,output:3")
    assert of13_flood in tun.flows


def test_br_tun_table_22_floods_to_both_other_hosts(dataplane: ir.Dataplane) -> None:
    tun = bridge(dataplane, "compute1", "br-tun")
    flood = f"strip_vlan,load:{SEG_A:#x}->NXM_NX_TUN_ID[],output:{GRE['network']},output:{GRE['compute2']}"
    assert has(tun, f"table=22,priority=1,dl_vlan=1 actions={flood}")
    assert has(tun, "table=22,priority=0 actions=drop")
    flows = [f for f in table(tun, 22) if f.priority == 1]
    assert len(flows) == 2
    for f in flows:
        outputs = {tun.port_name(a.port) for a in f.actions if isinstance(a, ir.Output)}
        assert outputs == {GRE["network"], GRE["compute2"]}


def test_no_flows_for_a_network_without_a_local_port(dataplane: ir.Dataplane) -> None:
    for host, absent in (("compute2", SEG_B), ("compute1", SEG_C)):
        tun = bridge(dataplane, host, "br-tun")
        t3 = [f for f in table(tun, 3) if (m := f.match_value("tun_id")) is not None and m.value == absent]
        assert t3 == []
        loads = [a for f in table(tun, 22) for a in f.actions if isinstance(a, ir.SetField) and a.field == "tun_id"]
        assert absent not in {a.value for a in loads}
    # ...but the network node has all three tenant networks.
    keys = {f.match_value("tun_id").value for f in table(bridge(dataplane, "network", "br-tun"), 3) if f.priority}  # type: ignore[union-attr]
    assert keys == {SEG_A, SEG_B, SEG_C}


def test_br_tun_default_tables(dataplane: ir.Dataplane) -> None:
    tun = bridge(dataplane, "compute2", "br-tun")
    for text in (
        "table=0,priority=1,in_port=patch-int actions=resubmit(,2)",
        f"table=0,priority=1,in_port={GRE['network']} actions=resubmit(,3)",
        f"table=0,priority=1,in_port={GRE['compute1']} actions=resubmit(,3)",
        "table=0,priority=0 actions=drop",
        "table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,20)",
        "table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,22)",
        "table=4,priority=0 actions=drop",
        "table=6,priority=0 actions=drop",
        "table=20,priority=0 actions=resubmit(,22)",
    ):
        assert has(tun, text), text
    assert table(tun, 21) == [] and not any(f.priority == 1 for f in table(tun, 2))
    assert len(table(tun, 0)) == 4 and len(table(tun, 2)) == 2 and len(table(tun, 20)) == 1


def test_learn_flows_carry_the_agent_cookie(dataplane: ir.Dataplane) -> None:
    tun = bridge(dataplane, "compute1", "br-tun")
    cookie = tun.flows[0].cookie
    assert cookie and all(
        f.cookie == cookie for h in dataplane.hosts if h.name == "compute1" for b in h.bridges for f in b.flows
    )
    learn = (
        f"learn(table=20,hard_timeout=300,priority=1,cookie={cookie:#x},NXM_OF_VLAN_TCI[0..11],"
        "NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],"
        "output:OXM_OF_IN_PORT[]),output:patch-int"
    )
    for match in ("", ",arp,arp_tha=ff:ff:ff:ff:ff:ff", ",icmp6,icmp_type=134", ",icmp6,icmp_type=136"):
        priority = 2 if match else 1
        assert has(tun, f"cookie={cookie:#x},table=10,priority={priority}{match} actions={learn}"), match
    spec = next(a for a in table(tun, 10)[0].actions if isinstance(a, ir.Learn)).spec
    assert (spec.table, spec.priority, spec.hard_timeout, spec.idle_timeout, spec.cookie) == (20, 1, 300, 0, cookie)
    other = bridge(dataplane, "compute2", "br-tun").flows[0].cookie
    assert other != cookie


# ---------------------------------------------------------------- br-int


def test_br_int_default_pipeline(dataplane: ir.Dataplane) -> None:
    b = bridge(dataplane, "compute1", "br-int")
    for text in (
        "table=0,priority=65535,dl_vlan=4095 actions=drop",
        "table=0,priority=0 actions=resubmit(,58)",
        "table=23,priority=0 actions=drop",
        "table=24,priority=0 actions=drop",
        "table=30,priority=0 actions=resubmit(,58)",
        "table=31,priority=0 actions=resubmit(,58)",
        "table=58,priority=0 actions=resubmit(,59)",
        "table=59,priority=0 actions=resubmit(,60)",
        "table=60,priority=1 actions=NORMAL",
        "table=62,priority=3 actions=NORMAL",
    ):
        assert has(b, text), text
    assert {f.table for f in b.flows} == {0, 23, 24, 25, 30, 31, 58, 59, 60, 62}


def test_anti_spoofing_flows_for_the_vm_qvo_port(dataplane: ir.Dataplane) -> None:
    b = bridge(dataplane, "compute1", "br-int")
    qvo = "qvo6a2f8d4c-0b"
    for text in (
        f"table=0,priority=10,arp,in_port={qvo} actions=resubmit(,24)",
        f"table=0,priority=10,icmp6,in_port={qvo},icmp_type=136 actions=resubmit(,24)",
        f"table=0,priority=9,in_port={qvo} actions=resubmit(,25)",
        f"table=24,priority=2,arp,in_port={qvo},arp_spa=10.0.22.202 actions=resubmit(,25)",
        f"table=24,priority=2,icmp6,in_port={qvo},icmp_type=136,nd_target=fe80::f816:3eff:fe19:6562 actions=resubmit(,58)",
        f"table=25,priority=2,in_port={qvo},dl_src=fa:16:3e:19:65:62 actions=resubmit(,30)",
    ):
        assert has(b, text), text
    port = b.port_number(qvo)
    mine = [f for f in b.flows if (m := f.match_value("in_port")) is not None and m.value == port]
    assert len(mine) == 6
    assert all(f.provenance.neutron_id == VM_A1 for f in mine)


def test_no_anti_spoofing_for_network_owned_ports(dataplane: ir.Dataplane) -> None:
    b = bridge(dataplane, "network", "br-int")
    assert table(b, 25) == [] and [f.priority for f in table(b, 24)] == [0]
    assert not any(f.priority in (9, 10) for f in table(b, 0))


def test_external_network_flows_on_the_network_node(dataplane: ir.Dataplane) -> None:
    integration = bridge(dataplane, "network", "br-int")
    ex = bridge(dataplane, "network", "br-ex")
    lvid = tag_of(integration, "qg-0b7e3c95-4d")
    assert lvid == 2
    assert has(
        integration,
        f"table=0,priority=3,in_port=int-br-ex,vlan_tci=0x0000/0x1fff actions=mod_vlan_vid:{lvid},resubmit(,58)",
    )
    assert has(integration, "table=0,priority=2,in_port=int-br-ex actions=drop")
    assert has(ex, f"table=0,priority=4,in_port=phy-br-ex,dl_vlan={lvid} actions=strip_vlan,NORMAL")
    assert has(ex, "table=0,priority=2,in_port=phy-br-ex actions=drop")
    assert has(ex, "table=0,priority=0 actions=NORMAL")
    assert len(ex.flows) == 3


def test_provenance_names_release_and_neutron_objects(dataplane: ir.Dataplane) -> None:
    tun = bridge(dataplane, "compute1", "br-tun")
    for f in tun.flows:
        assert f.provenance.file == "render:neutron 28.0.1" and f.provenance.neutron_id
        assert f.provenance.text.startswith(f"cookie={f.cookie:#x}, duration=0.0s, table={f.table},")
    t3 = [f for f in table(tun, 3) if f.priority == 1]
    assert {f.provenance.neutron_id for f in t3} == {NET_A, NET_B}
    # Each rendered line reads back as the flow it produced.
    for f in tun.flows:
        assert parse_flow(f.provenance.text, port_resolver({}), ir.NO_PROVENANCE) == f


def test_rendering_is_deterministic(dataplane: ir.Dataplane) -> None:
    again = render_dataplane(seed())
    assert again == dataplane
    texts = [f.provenance.text for h in dataplane.hosts for b in h.bridges for f in b.flows]
    assert texts == [f.provenance.text for h in again.hosts for b in h.bridges for f in b.flows]


def test_rendered_flows_survive_the_dump_writer(dataplane: ir.Dataplane) -> None:
    for host in dataplane.hosts:
        for b in host.bridges:
            flows, skipped = parse_dump_flows(format_dump(b.flows), "dump.txt", port_resolver({}))
            assert skipped == [] and sorted(flows, key=repr) == sorted(b.flows, key=repr)


# ---------------------------------------------------------------- small deployments


def render(obj: dict[str, Any]) -> ir.Dataplane:
    return render_dataplane(parse_neutron(obj, "test.json"))


def two_hosts(*ports: dict[str, Any], **conf: Any) -> dict[str, Any]:
    return {
        "agents": [agent("c1", HOSTS["c1"], **conf), agent("c2", HOSTS["c2"], **conf)],
        "networks": [network(1, 101), network(2, 102)],
        "subnets": [subnet(1, "10.1.0.0/24"), subnet(2, "10.2.0.0/24")],
        "ports": list(ports),
    }


def test_admin_down_port_is_on_the_dead_vlan_with_a_drop_flow() -> None:
    dp = render(two_hosts(port(1, 1, "c1", ["10.1.0.5"], admin_state_up=False), port(2, 2, "c1", ["10.2.0.5"])))
    b = bridge(dp, "c1", "br-int")
    dead = naming.qvo_name(f"{1:08x}-aaaa")
    assert b.ovsdb_port(dead) == ir.Port(dead, (ir.Interface(dead),), tag=4095)
    assert has(b, f"table=0,priority=2,in_port={dead} actions=drop")
    number = b.port_number(dead)
    assert [f for f in b.flows if (m := f.match_value("in_port")) and m.value == number and f.priority != 2] == []
    # The dead port's network gets no local VLAN: the live port's network gets 1, and br-tun knows only it.
    assert tag_of(b, naming.qvo_name(f"{2:08x}-aaaa")) == 1
    keys = [f.match_value("tun_id") for f in table(bridge(dp, "c1", "br-tun"), 3) if f.priority == 1]
    assert [k.value for k in keys if k] == [102]


def test_binding_failed_internal_port_stays_as_created() -> None:
    dhcp = port(1, 1, "c1", ["10.1.0.2"], owner="network:dhcp")
    dhcp["binding:vif_type"] = "binding_failed"
    dp = render(two_hosts(dhcp))
    b = bridge(dp, "c1", "br-int")
    name = naming.tap_name(dhcp["id"])
    assert b.ovsdb_port(name) == ir.Port(name, (ir.Interface(name, "internal"),), 4095, (4095,), "trunk")
    assert has(b, f"table=0,priority=2,in_port={name} actions=drop")


def test_unbound_ports_and_hosts_without_agent_or_bound_port_are_not_rendered() -> None:
    obj = two_hosts(
        port(1, 1, "", ["10.1.0.5"]),
        port(2, 1, "c9", ["10.1.0.6"], **{"binding:vif_type": "binding_failed"}),
    )
    dp = render(obj)
    assert [h.name for h in dp.hosts] == ["c1", "c2"]
    assert all(p.tag is None for h in dp.hosts for b in h.bridges for p in b.ports)


def test_host_with_a_bound_port_but_no_agent_gets_br_int_only() -> None:
    dp = render(
        {
            "networks": [network(1, 101)],
            "subnets": [subnet(1, "10.1.0.0/24")],
            "ports": [port(1, 1, "c7", ["10.1.0.5"])],
        }
    )
    host = dp.host("c7")
    assert host is not None and [b.name for b in host.bridges] == ["br-int"] and host.addresses == ()
    assert tag_of(bridge(dp, "c7", "br-int"), naming.qvo_name(f"{1:08x}-aaaa")) == 1


def test_without_hybrid_plug_the_tap_sits_on_br_int() -> None:
    vm = port(1, 1, "c1", ["10.1.0.5"])
    vm["binding:vif_details"] = {"ovs_hybrid_plug": False}
    b = bridge(render(two_hosts(vm)), "c1", "br-int")
    tap = naming.tap_name(vm["id"])
    assert b.ovsdb_port(tap) == ir.Port(tap, (ir.Interface(tap),), tag=1)
    assert {p.name: p.mac for p in b.of_ports}[tap] == "fe:16:3e:00:00:01"
    assert has(b, f"table=24,priority=2,arp,in_port={tap},arp_spa=10.1.0.5 actions=resubmit(,25)")


def test_port_security_disabled_means_no_anti_spoofing() -> None:
    b = bridge(render(two_hosts(port(1, 1, "c1", ["10.1.0.5"], port_security_enabled=False))), "c1", "br-int")
    assert table(b, 25) == [] and [f.priority for f in table(b, 24)] == [0]


def test_allowed_address_pairs_and_ipv6() -> None:
    obj = two_hosts(
        port(
            1,
            1,
            "c1",
            ["10.1.0.5", "2001:db8::5"],
            allowed_address_pairs=[
                {"ip_address": "10.1.0.0/28", "mac_address": "fa:16:3e:aa:bb:cc"},
                {"ip_address": "2001:db8:1::/64"},
            ],
        )
    )
    obj["subnets"].append(
        {"id": "s1v6", "network_id": obj["networks"][0]["id"], "cidr": "2001:db8::/64", "ip_version": 6}
    )
    obj["ports"][0]["fixed_ips"][1]["subnet_id"] = "s1v6"
    b = bridge(render(obj), "c1", "br-int")
    qvo = naming.qvo_name(obj["ports"][0]["id"])
    for text in (
        f"table=24,priority=2,arp,in_port={qvo},arp_spa=10.1.0.5 actions=resubmit(,25)",
        f"table=24,priority=2,arp,in_port={qvo},arp_spa=10.1.0.0/28 actions=resubmit(,25)",
        f"table=24,priority=2,icmp6,in_port={qvo},icmp_type=136,nd_target=2001:db8::5 actions=resubmit(,58)",
        f"table=24,priority=2,icmp6,in_port={qvo},icmp_type=136,nd_target=2001:db8:1::/64 actions=resubmit(,58)",
        f"table=24,priority=2,icmp6,in_port={qvo},icmp_type=136,nd_target=fe80::f816:3eff:fe00:1 actions=resubmit(,58)",
        f"table=24,priority=2,icmp6,in_port={qvo},icmp_type=136,nd_target=fe80::f816:3eff:feaa:bbcc actions=resubmit(,58)",
        f"table=25,priority=2,in_port={qvo},dl_src=fa:16:3e:00:00:01 actions=resubmit(,30)",
        f"table=25,priority=2,in_port={qvo},dl_src=fa:16:3e:aa:bb:cc actions=resubmit(,30)",
    ):
        assert has(b, text), text
    assert len(table(b, 24)) == 7 and len(table(b, 25)) == 2


def test_an_ipv4_any_address_pair_removes_arp_and_na_protection() -> None:
    vm = port(1, 1, "c1", ["10.1.0.5"], allowed_address_pairs=[{"ip_address": "0.0.0.0/0"}])
    b = bridge(render(two_hosts(vm)), "c1", "br-int")
    qvo = naming.qvo_name(vm["id"])
    assert [f.priority for f in table(b, 24)] == [0]
    assert [f.priority for f in table(b, 0) if f.match_value("in_port")] == [9]
    assert has(b, f"table=25,priority=2,in_port={qvo},dl_src=fa:16:3e:00:00:01 actions=resubmit(,30)")


def test_vlan_provider_network_on_a_physical_bridge() -> None:
    obj = {
        "agents": [agent("c1", None, (), bridge_mappings={"physnet1": "br-eth1"})],
        "networks": [network(1, 200, "vlan", "physnet1")],
        "subnets": [subnet(1, "10.1.0.0/24")],
        "ports": [port(1, 1, "c1", ["10.1.0.5"])],
    }
    dp = render(obj)
    assert [b.name for b in dp.hosts[0].bridges] == ["br-eth1", "br-int"]
    integration = bridge(dp, "c1", "br-int")
    phys = bridge(dp, "c1", "br-eth1")
    assert has(integration, "table=0,priority=3,in_port=int-br-eth1,dl_vlan=200 actions=mod_vlan_vid:1,resubmit(,58)")
    assert has(phys, "table=0,priority=4,in_port=phy-br-eth1,dl_vlan=1 actions=mod_vlan_vid:200,NORMAL")
    assert phys.port_number("eth1") == 1 and integration.port_number("patch-tun") is None


def test_vxlan_uses_table_4_and_vxlan_ports() -> None:
    obj = two_hosts(port(1, 1, "c1", ["10.1.0.5"]), tunnel_types=("vxlan",))
    obj["networks"] = [network(1, 5001, "vxlan"), network(2, 5002, "vxlan")]
    tun = bridge(render(obj), "c1", "br-tun")
    assert tun.interface("vxlan-c0000202") is not None
    assert tun.interface("vxlan-c0000202").type == "vxlan"  # type: ignore[union-attr]
    assert has(tun, "table=0,priority=1,in_port=vxlan-c0000202 actions=resubmit(,4)")
    assert has(tun, "table=4,priority=1,tun_id=0x1389 actions=mod_vlan_vid:1,resubmit(,10)")
    assert has(
        tun, "table=22,priority=1,dl_vlan=1 actions=strip_vlan,load:0x1389->NXM_NX_TUN_ID[],output:vxlan-c0000202"
    )


def test_arp_responder_tables_and_l2pop_note() -> None:
    dp = render(two_hosts(port(1, 1, "c1", ["10.1.0.5"]), l2_population=True, arp_responder_enabled=True))
    tun = bridge(dp, "c1", "br-tun")
    assert has(tun, "table=2,priority=1,arp,dl_dst=ff:ff:ff:ff:ff:ff actions=resubmit(,21)")
    assert has(tun, "table=21,priority=0 actions=resubmit(,22)")
    assert any("l2_population" in note for note in bridge(dp, "c1", "br-int").notes)


def test_tunnel_interface_can_be_named_by_the_agent() -> None:
    dp = render(two_hosts(tunnel_interface="bond0.42"))
    host = dp.host("c1")
    assert host is not None and host.addresses == (ir.Address("bond0.42", "192.0.2.1", 24),)


def test_unplugged_device_owners_are_noted() -> None:
    dp = render(two_hosts(port(1, 1, "c1", ["10.1.0.5"], owner="network:router_ha_interface")))
    notes = bridge(dp, "c1", "br-int").notes
    assert any("network:router_ha_interface" in n for n in notes)


# ---------------------------------------------------------------- random deployments


def _device(p: dict[str, Any]) -> str:
    owner = p["device_owner"]
    if owner == "network:dhcp":
        return naming.tap_name(p["id"])
    if owner == "network:router_interface":
        return naming.qr_name(p["id"])
    hybrid = p["binding:vif_details"].get("ovs_hybrid_plug") is not False
    return naming.qvo_name(p["id"]) if hybrid else naming.tap_name(p["id"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deployments())
def test_random_deployments_map_every_tag_to_its_segmentation_id(obj: dict[str, Any]) -> None:
    neutron = parse_neutron(obj, "random.json")
    dp = render_dataplane(neutron)
    assert dp == render_dataplane(neutron)
    tunnel_table = c.TUN_TABLE[obj["networks"][0]["provider:network_type"]]
    for host in dp.hosts:
        integration, tun = host.bridge("br-int"), host.bridge("br-tun")
        assert integration is not None and tun is not None
        peers = [p for p in tun.ports if p.interfaces[0].type in ("gre", "vxlan")]
        assert len(peers) == len(dp.hosts) - 1
        lvid_of: dict[str, int] = {}
        for p in obj["ports"]:
            if p["binding:host_id"] != host.name:
                continue
            device = integration.ovsdb_port(_device(p))
            assert device is not None
            if p.get("admin_state_up") is False:
                assert device.tag == c.DEAD_VLAN_TAG
                assert has(integration, f"table=0,priority=2,in_port={device.name} actions=drop")
                continue
            assert device.tag is not None and 1 <= device.tag <= c.MAX_VLAN_TAG
            assert lvid_of.setdefault(p["network_id"], device.tag) == device.tag
            segid = neutron.network(p["network_id"]).segmentation_id
            assert segid is not None
            to_lvid = [f for f in table(tun, tunnel_table) if ir.SetVlanVid(device.tag) in f.actions]
            assert len(to_lvid) == 1 and to_lvid[0].match_value("tun_id") == ir.FieldMatch(
                "tun_id", segid, (1 << 64) - 1
            )
            flood = [
                f
                for f in table(tun, 22)
                if f.match_value("vlan_tci") == ir.FieldMatch("vlan_tci", 0x1000 | device.tag, 0x1FFF)
            ]
            if peers:
                assert len(flood) == 1 and ir.SetField("tun_id", segid, (1 << 64) - 1) in flood[0].actions
                assert {a.port for a in flood[0].actions if isinstance(a, ir.Output)} == {
                    tun.port_number(p.name) for p in peers
                }
            else:
                assert flood == []
        assert len(set(lvid_of.values())) == len(lvid_of)
        # br-tun knows exactly the networks with a live local device.
        keys = {f.match_value("tun_id").value for f in table(tun, tunnel_table) if f.priority == 1}  # type: ignore[union-attr]
        assert keys == {neutron.network(n).segmentation_id for n in lvid_of}


def test_network_without_provider_fields_gets_a_local_vlan_but_no_segment_flows() -> None:
    obj = two_hosts(port(1, 1, "c1", ["10.1.0.5"]))
    for key in ("provider:network_type", "provider:segmentation_id", "provider:physical_network"):
        obj["networks"][0].pop(key)
    dp = render(obj)
    b = bridge(dp, "c1", "br-int")
    assert tag_of(b, naming.qvo_name(obj["ports"][0]["id"])) == 1
    assert [f.priority for f in table(bridge(dp, "c1", "br-tun"), 3)] == [0]
    assert any("provider:network_type" in note for note in b.notes)
