"""Neutron intent -> the Linux side: router and DHCP namespaces, the hybrid iptables firewall, table by table."""

from __future__ import annotations

import copy
import ipaddress
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.neutron_data import HOSTS, agent, network, port, subnet
from verifier import ir
from verifier import linux as lx
from verifier.examples import example_source, load_example_json
from verifier.neutron import constants as c
from verifier.neutron.model import Neutron, parse_neutron
from verifier.neutron.render_firewall import ipset_name, ipsets
from verifier.neutron.render_ovs import render_dataplane

ROUTER_A = "71c3e9a5-2d8b-4f64-9e1a-5b7c0d3f2e98"
ROUTER_B = "86d4f0b2-3e9c-4a75-8f2b-6c8d1e4a3f09"
NET_A = "d24963da-5221-481e-adf5-fe033d6e0b4e"
NET_B = "e8f1c2d4-7a3b-4c59-8e16-5d2a9b0f3c71"
NET_C = "3b0c7f57-91d2-4e8a-b6f3-0c5e2d7a9148"
VM_A1 = "6a2f8d4c-0b1e-4c37-9d58-2e7f1a3b5c90"
VM_B1 = "9c3d7e1f-4a2b-4c85-b6d9-7e0f2a1c3b58"
VM_B2 = "b5e2a8d7-1c4f-4e93-8a06-2f7d9c1e3b84"
FIP_A1 = "a9e2c5f8-1b7d-4e36-8a4c-0d9f3b6e2c17"
SG_DEFAULT_A = "1d5a8b3e-6f9c-4d2a-b4e7-0e3f6c9d2a58"
RULE_WEB_22 = "71af0ece-80c4-49a7-b0ee-a747ca689360"
RULE_WEB_80 = "1b72ab43-0042-42d5-92d6-34a06ce6a5c5"
QG_A, QR_A, QR_C = "qg-0b7e3c95-4d", "qr-2d9c6b4e-5f", "qr-4f1e8a2d-6b"
L3 = "neutron-l3-agent-"
OVS = "neutron-openvswi-"

ACCEPT, DROP, RETURN = lx.Verdict("ACCEPT"), lx.Verdict("DROP"), lx.Verdict("RETURN")
ESTABLISHED = lx.MatchState(frozenset({"RELATED", "ESTABLISHED"}))
INVALID = lx.MatchState(frozenset({"INVALID"}))
UDP = lx.MatchProtocol(17)
TCP = lx.MatchProtocol(6)


def seed() -> Neutron:
    return parse_neutron(load_example_json("seed-gre"), example_source("seed-gre"))


@pytest.fixture(scope="module")
def dataplane() -> ir.Dataplane:
    return render_dataplane(seed())


def host(dp: ir.Dataplane, name: str) -> ir.Host:
    h = dp.host(name)
    assert h is not None, name
    return h


def namespace(dp: ir.Dataplane, host_name: str, name: str) -> lx.Namespace:
    ns = host(dp, host_name).namespace(name)
    assert ns is not None, name
    return ns


def rules(nf: lx.Netfilter | None, table: str, chain: str) -> list[tuple[tuple[lx.Match, ...], lx.Target | None]]:
    """(matches, target) of every rule of one chain, in order."""
    assert nf is not None
    t = nf.table(table)
    assert t is not None, table
    ch = t.chain(chain)
    assert ch is not None, (table, chain)
    assert all(r.chain == chain for r in ch.rules)
    return [(r.matches, r.target) for r in ch.rules]


def comment(text: str) -> lx.MatchComment:
    return lx.MatchComment(text)


def ports(direction: str, low: int, high: int | None = None) -> lx.MatchPorts:
    return lx.MatchPorts(direction, ((low, low if high is None else high),))


def physdev_out(dev: str, bridged: bool = True) -> lx.MatchPhysdev:
    return lx.MatchPhysdev(physdev_out=(dev, False), is_bridged=(True, False) if bridged else None)


def physdev_in(dev: str, bridged: bool = True) -> lx.MatchPhysdev:
    return lx.MatchPhysdev(physdev_in=(dev, False), is_bridged=(True, False) if bridged else None)


def jump(chain: str) -> lx.Jump:
    return lx.Jump(chain)


# ---------------------------------------------------------------- router of tenant-a


def test_router_namespaces_live_on_the_network_node(dataplane: ir.Dataplane) -> None:
    names = [ns.name for ns in host(dataplane, "network").namespaces]
    assert names == [f"qdhcp-{NET_C}", f"qdhcp-{NET_A}", f"qdhcp-{NET_B}", f"qrouter-{ROUTER_A}", f"qrouter-{ROUTER_B}"]
    for compute in ("compute1", "compute2"):
        assert host(dataplane, compute).namespaces == ()


def test_router_links_and_addresses(dataplane: ir.Dataplane) -> None:
    ns = namespace(dataplane, "network", f"qrouter-{ROUTER_A}")
    assert [link.name for link in ns.links] == ["lo", QR_A, QR_C, QG_A]
    lo, qr_a, qr_c, qg = ns.links
    assert lo.kind == "loopback" and lo.up and lo.index == 1
    assert (qr_a.kind, qr_a.mac, qr_a.mtu, qr_a.up) == ("ether", "fa:16:3e:a2:5d:0c", 1458, True)
    assert (qr_c.mac, qg.mac, qg.mtu) == ("fa:16:3e:3b:71:e4", "fa:16:3e:d1:09:4a", 1500)
    assert ns.addresses == (
        ir.Address("lo", "127.0.0.1", 8),
        ir.Address(QR_A, "10.0.22.1", 24),
        ir.Address(QR_C, "10.0.33.1", 24),
        ir.Address(QG_A, "203.0.113.11", 24),
        ir.Address(QG_A, "203.0.113.101", 32),
    )


def test_router_routes(dataplane: ir.Dataplane) -> None:
    ns = namespace(dataplane, "network", f"qrouter-{ROUTER_A}")
    assert ns.routes == (
        lx.Route("default", gateway="203.0.113.1", device=QG_A, proto="static"),
        lx.Route("10.0.22.0/24", device=QR_A, scope="link", source="10.0.22.1", proto="kernel"),
        lx.Route("10.0.33.0/24", device=QR_C, scope="link", source="10.0.33.1", proto="kernel"),
        lx.Route("203.0.113.0/24", device=QG_A, scope="link", source="203.0.113.11", proto="kernel"),
    )
    assert ns.routes[0].provenance.neutron_id == ROUTER_A
    assert ns.routes[1].provenance.neutron_id == "2d9c6b4e-5f1a-4e80-a37d-8b2c0e6f1d59"


def test_router_nat_table(dataplane: ir.Dataplane) -> None:
    nf = namespace(dataplane, "network", f"qrouter-{ROUTER_A}").netfilter
    metadata = (
        lx.MatchAddress("dst", "169.254.169.254/32"),
        lx.MatchInterface("in", "qr-+"),
        TCP,
        ports("dst", 80),
    )
    dnat = lx.Nat("DNAT", "10.0.22.202")
    assert rules(nf, "nat", "PREROUTING") == [((), jump(L3 + "PREROUTING"))]
    assert rules(nf, "nat", "OUTPUT") == [((), jump(L3 + "OUTPUT"))]
    assert rules(nf, "nat", "POSTROUTING") == [((), jump(L3 + "POSTROUTING")), ((), jump("neutron-postrouting-bottom"))]
    assert rules(nf, "nat", L3 + "PREROUTING") == [
        (metadata, lx.Nat("REDIRECT", ports="9697")),
        ((lx.MatchAddress("dst", "203.0.113.101/32"),), dnat),
    ]
    assert rules(nf, "nat", L3 + "OUTPUT") == [((lx.MatchAddress("dst", "203.0.113.101/32"),), dnat)]
    assert rules(nf, "nat", L3 + "POSTROUTING") == [
        ((lx.MatchInterface("out", QG_A, negated=True), lx.MatchState(frozenset({"DNAT"}), negated=True)), ACCEPT)
    ]
    assert rules(nf, "nat", "neutron-postrouting-bottom") == [((comment(c.COMMENT_SNAT_OUT),), jump(L3 + "snat"))]
    snat_gw = lx.Nat("SNAT", "203.0.113.11", random_fully=True)
    assert rules(nf, "nat", L3 + "snat") == [
        ((), jump(L3 + "float-snat")),
        ((lx.MatchInterface("out", QG_A),), snat_gw),
        ((lx.MatchMark(0x2, 0xFFFF, negated=True), lx.MatchState(frozenset({"DNAT"}))), snat_gw),
    ]
    assert rules(nf, "nat", L3 + "float-snat") == [
        ((lx.MatchAddress("src", "10.0.22.202/32"),), lx.Nat("SNAT", "203.0.113.101", random_fully=True))
    ]
    t = nf.table("nat") if nf else None
    assert t is not None
    assert [ch.name for ch in t.chains] == [
        "PREROUTING",
        "INPUT",
        "OUTPUT",
        "POSTROUTING",
        L3 + "OUTPUT",
        L3 + "POSTROUTING",
        L3 + "PREROUTING",
        L3 + "float-snat",
        L3 + "snat",
        "neutron-postrouting-bottom",
    ]
    fip_rules = [r for r in t.chains[6].rules if isinstance(r.target, lx.Nat) and r.target.kind == "DNAT"]
    assert [r.provenance.neutron_id for r in fip_rules] == [FIP_A1]
    assert all(r.provenance.file == c.PROVENANCE_FILE for ch in t.chains for r in ch.rules)


def test_router_mangle_table(dataplane: ir.Dataplane) -> None:
    nf = namespace(dataplane, "network", f"qrouter-{ROUTER_A}").netfilter
    scope = 0xFFFF0000
    assert rules(nf, "mangle", L3 + "PREROUTING") == [
        ((), jump(L3 + "mark")),
        ((), jump(L3 + "scope")),
        ((lx.MatchMark(0, scope, connection=True, negated=True),), lx.ConnMark("restore", nfmask=scope, ctmask=scope)),
        ((), jump(L3 + "floatingip")),
        (
            (lx.MatchAddress("dst", "169.254.169.254/32"), lx.MatchInterface("in", "qr-+"), TCP, ports("dst", 80)),
            lx.SetMark(0x1, 0xFFFF),
        ),
    ]
    assert rules(nf, "mangle", L3 + "mark") == [((lx.MatchInterface("in", QG_A),), lx.SetMark(0x2, 0xFFFF))]
    noscope = lx.SetMark(0x4000000, scope)
    assert rules(nf, "mangle", L3 + "scope") == [
        ((lx.MatchInterface("in", dev),), noscope) for dev in (QR_A, QR_C, QG_A)
    ]
    assert rules(nf, "mangle", L3 + "floatingip") == []
    save = lx.ConnMark("save", nfmask=scope, ctmask=scope)
    assert rules(nf, "mangle", L3 + "float-snat") == [((lx.MatchMark(0, scope, connection=True),), save)]
    assert rules(nf, "mangle", L3 + "POSTROUTING") == [
        ((lx.MatchInterface("out", QG_A), lx.MatchMark(0, scope, connection=True)), save)
    ]
    for builtin in ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"):
        assert rules(nf, "mangle", builtin) == [((), jump(L3 + builtin))]


def test_router_filter_and_raw_tables(dataplane: ir.Dataplane) -> None:
    nf = namespace(dataplane, "network", f"qrouter-{ROUTER_A}").netfilter
    assert rules(nf, "filter", "INPUT") == [((), jump(L3 + "INPUT"))]
    assert rules(nf, "filter", "FORWARD") == [((), jump("neutron-filter-top")), ((), jump(L3 + "FORWARD"))]
    assert rules(nf, "filter", "OUTPUT") == [((), jump("neutron-filter-top")), ((), jump(L3 + "OUTPUT"))]
    assert rules(nf, "filter", "neutron-filter-top") == [((), jump(L3 + "local"))]
    assert rules(nf, "filter", L3 + "INPUT") == [
        ((lx.MatchMark(0x1, 0xFFFF),), ACCEPT),
        ((TCP, ports("dst", 9697)), DROP),
    ]
    assert rules(nf, "filter", L3 + "FORWARD") == [((), jump(L3 + "scope"))]
    # No address scopes: every device carries the noscope mark; qg- is exempt while SNAT is on.
    not_noscope = lx.MatchMark(0x4000000, 0xFFFF0000, negated=True)
    assert rules(nf, "filter", L3 + "scope") == [
        ((lx.MatchInterface("out", QR_A), not_noscope), DROP),
        ((lx.MatchInterface("out", QR_C), not_noscope), DROP),
    ]
    assert rules(nf, "raw", "PREROUTING") == [((), jump(L3 + "PREROUTING"))]
    assert rules(nf, "raw", L3 + "PREROUTING") == []
    assert nf is not None and [t.name for t in nf.tables] == ["mangle", "raw", "filter", "nat"]


def test_router_of_tenant_b_has_its_own_fip_and_gateway(dataplane: ir.Dataplane) -> None:
    nf = namespace(dataplane, "network", f"qrouter-{ROUTER_B}").netfilter
    assert rules(nf, "nat", L3 + "float-snat") == [
        ((lx.MatchAddress("src", "10.0.22.202/32"),), lx.Nat("SNAT", "203.0.113.102", random_fully=True))
    ]
    assert rules(nf, "nat", L3 + "OUTPUT") == [
        ((lx.MatchAddress("dst", "203.0.113.102/32"),), lx.Nat("DNAT", "10.0.22.202"))
    ]


# ---------------------------------------------------------------- DHCP


def test_dhcp_namespaces(dataplane: ir.Dataplane) -> None:
    ns = namespace(dataplane, "network", f"qdhcp-{NET_A}")
    assert [link.name for link in ns.links] == ["lo", "tap15865c29-9b"]
    assert ns.links[1].mac == "fa:16:3e:4e:8b:21" and ns.links[1].up
    assert ns.addresses == (ir.Address("lo", "127.0.0.1", 8), ir.Address("tap15865c29-9b", "10.0.22.201", 24))
    assert ns.routes == (
        lx.Route("default", gateway="10.0.22.1", device="tap15865c29-9b", proto="static"),
        lx.Route("10.0.22.0/24", device="tap15865c29-9b", scope="link", source="10.0.22.201", proto="kernel"),
    )
    others = {
        NET_B: ("tap57a9e3c1-2b", "10.0.22.2", "10.0.22.1"),
        NET_C: ("tape1b4d7f0-3a", "10.0.33.2", "10.0.33.1"),
    }
    for net, (device, ip, gateway) in others.items():
        other = namespace(dataplane, "network", f"qdhcp-{net}")
        assert other.addresses[1] == ir.Address(device, ip, 24)
        assert other.routes is not None and other.routes[0] == lx.Route(
            "default", gateway=gateway, device=device, proto="static"
        )


def test_dhcp_checksum_rule_goes_through_the_wrapped_chain(dataplane: ir.Dataplane) -> None:
    nf = namespace(dataplane, "network", f"qdhcp-{NET_A}").netfilter
    wrap = "neutron-dhcp-age-"
    assert rules(nf, "mangle", "POSTROUTING") == [((), jump(wrap + "POSTROUTING"))]
    assert rules(nf, "mangle", wrap + "POSTROUTING") == [
        ((UDP, ports("dst", 68)), lx.NoEffect("CHECKSUM --checksum-fill"))
    ]
    assert nf is not None and [t.name for t in nf.tables] == ["mangle", "raw", "filter", "nat"]
    assert rules(nf, "nat", "PREROUTING") == [((), jump(wrap + "PREROUTING"))]
    every = [r for t in nf.tables for ch in t.chains for r in ch.rules]
    assert sum(1 for r in every if not isinstance(r.target, lx.Jump)) == 1


# ---------------------------------------------------------------- hybrid firewall of vm-a1


def test_hybrid_plug_devices_and_bridge(dataplane: ir.Dataplane) -> None:
    c1 = host(dataplane, "compute1")
    links = {link.name: link for link in c1.links}
    assert links["tap6a2f8d4c-0b"].master == "qbr6a2f8d4c-0b"
    assert links["tap6a2f8d4c-0b"].mac == "fe:16:3e:19:65:62"
    assert links["qvb6a2f8d4c-0b"].master == "qbr6a2f8d4c-0b" and links["qvb6a2f8d4c-0b"].peer == "qvo6a2f8d4c-0b"
    assert links["qvo6a2f8d4c-0b"].peer == "qvb6a2f8d4c-0b" and links["qvo6a2f8d4c-0b"].master == "ovs-system"
    assert links["qbr6a2f8d4c-0b"].master is None and all(link.up for link in c1.links)
    br_int = c1.bridge("br-int")
    assert br_int is not None
    assert {p.name: p.mac for p in br_int.of_ports}["qvo6a2f8d4c-0b"] == links["qvo6a2f8d4c-0b"].mac
    bridges = {b.name: b for b in c1.linux_bridges or ()}
    assert sorted(bridges) == ["qbr6a2f8d4c-0b", "qbr9c3d7e1f-4a", "qbrb5e2a8d7-1c"]
    assert bridges["qbr6a2f8d4c-0b"].interfaces == ("qvb6a2f8d4c-0b", "tap6a2f8d4c-0b")
    assert host(dataplane, "network").linux_bridges == () and host(dataplane, "network").links == ()


def test_vm_a1_chains(dataplane: ir.Dataplane) -> None:
    nf = host(dataplane, "compute1").netfilter
    i, o, s = OVS + "i6a2f8d4c-0", OVS + "o6a2f8d4c-0", OVS + "s6a2f8d4c-0"
    dhcp_server = (UDP, ports("src", 67), ports("dst", 68))
    dhcp_client = (UDP, ports("src", 68), ports("dst", 67))
    tail = [
        ((INVALID, comment(c.COMMENT_INVALID_DROP)), DROP),
        ((comment(c.COMMENT_UNMATCHED),), jump(OVS + "sg-fallback")),
    ]
    assert rules(nf, "filter", i) == [
        ((ESTABLISHED, comment(c.COMMENT_ALLOW_ASSOC)), RETURN),
        ((lx.MatchAddress("dst", "10.0.22.202/32"), *dhcp_server), RETURN),
        ((lx.MatchAddress("dst", "255.255.255.255/32"), *dhcp_server), RETURN),
        ((lx.MatchSet("NIPv41d5a8b3e-6f9c-4d2a-b4e7-", ("src",)),), RETURN),
        ((TCP, ports("dst", 80)), RETURN),
        ((TCP, ports("dst", 22)), RETURN),
        *tail,
    ]
    assert rules(nf, "filter", o) == [
        (
            (
                lx.MatchAddress("src", "0.0.0.0/32"),
                lx.MatchAddress("dst", "255.255.255.255/32"),
                *dhcp_client,
                comment(c.COMMENT_DHCP_CLIENT),
            ),
            RETURN,
        ),
        ((), jump(s)),
        ((*dhcp_client, comment(c.COMMENT_DHCP_CLIENT)), RETURN),
        ((*dhcp_server, comment(c.COMMENT_DHCP_SPOOF)), DROP),
        ((ESTABLISHED, comment(c.COMMENT_ALLOW_ASSOC)), RETURN),
        ((), RETURN),  # egress any, from both groups, written once
        *tail,
    ]
    assert rules(nf, "filter", s) == [
        (
            (lx.MatchAddress("src", "10.0.22.202/32"), lx.MatchMac("fa:16:3e:19:65:62"), comment(c.COMMENT_PAIR_ALLOW)),
            RETURN,
        ),
        ((comment(c.COMMENT_PAIR_DROP),), DROP),
    ]
    by_rule = {r.provenance.neutron_id: r for r in (nf.table("filter").chain(i).rules if nf else ())}  # type: ignore[union-attr]
    assert by_rule[f"{VM_A1},{RULE_WEB_22}"].matches == (TCP, ports("dst", 22))
    assert by_rule[f"{VM_A1},{RULE_WEB_80}"].matches == (TCP, ports("dst", 80))


def test_forward_input_and_sg_chain_jumps(dataplane: ir.Dataplane) -> None:
    nf = host(dataplane, "compute1").netfilter
    taps = ["tap6a2f8d4c-0b", "tap9c3d7e1f-4a", "tapb5e2a8d7-1c"]
    suffixes = ["6a2f8d4c-0", "9c3d7e1f-4", "b5e2a8d7-1"]
    assert rules(nf, "filter", "FORWARD") == [((), jump("neutron-filter-top")), ((), jump(OVS + "FORWARD"))]
    assert rules(nf, "filter", "INPUT") == [((), jump(OVS + "INPUT"))]
    assert rules(nf, "filter", OVS + "FORWARD") == [
        ((m(tap), comment(c.COMMENT_VM_INT_SG)), jump(OVS + "sg-chain"))
        for tap in taps
        for m in (physdev_out, physdev_in)
    ]
    assert rules(nf, "filter", OVS + "INPUT") == [
        ((physdev_in(tap), comment(c.COMMENT_INPUT_TO_SG)), jump(OVS + "o" + sfx)) for tap, sfx in zip(taps, suffixes)
    ]
    assert rules(nf, "filter", OVS + "sg-chain") == [
        *(
            ((m(tap), comment(c.COMMENT_SG_TO_VM_SG)), jump(OVS + d + sfx))
            for tap, sfx in zip(taps, suffixes)
            for m, d in ((physdev_out, "i"), (physdev_in, "o"))
        ),
        ((), ACCEPT),
    ]
    assert rules(nf, "filter", OVS + "sg-fallback") == [((comment(c.COMMENT_UNMATCH_DROP),), DROP)]
    assert nf is not None and [t.name for t in nf.tables] == ["raw", "filter", "nat"]


def test_conntrack_zones_per_port_from_4097(dataplane: ir.Dataplane) -> None:
    nf = host(dataplane, "compute1").netfilter
    got = rules(nf, "raw", OVS + "PREROUTING")
    expected = []
    for zone, port_id in enumerate(sorted([VM_A1, VM_B1, VM_B2]), start=4097):
        qvb, tap = "qvb" + port_id[:11], "tap" + port_id[:11]
        note = comment(f"Set zone for {port_id}")
        target = lx.Conntrack(zone=zone)
        expected += [
            ((physdev_in(qvb, bridged=False), note), target),
            ((lx.MatchInterface("in", qvb), note), target),
            ((physdev_in(tap, bridged=False), note), target),
        ]
    assert got == expected
    assert rules(nf, "raw", "PREROUTING") == [((), jump(OVS + "PREROUTING"))]
    zones_c2 = {r[1] for r in rules(host(dataplane, "compute2").netfilter, "raw", OVS + "PREROUTING")}
    assert zones_c2 == {lx.Conntrack(zone=4097), lx.Conntrack(zone=4098)}


def test_nat_short_circuit_for_every_port(dataplane: ir.Dataplane) -> None:
    nf = host(dataplane, "compute1").netfilter
    got = rules(nf, "nat", OVS + "PREROUTING")
    assert got[:2] == [
        ((physdev_out("tap6a2f8d4c-0b", bridged=False), comment(c.COMMENT_TRUSTED_ACCEPT)), ACCEPT),
        ((physdev_in("tap6a2f8d4c-0b", bridged=False), comment(c.COMMENT_TRUSTED_ACCEPT)), ACCEPT),
    ]
    assert len(got) == 6


def test_trusted_network_ports_are_accepted_on_the_network_node(dataplane: ir.Dataplane) -> None:
    nf = host(dataplane, "network").netfilter
    forward = rules(nf, "filter", OVS + "FORWARD")
    trusted = sorted(p.id for p in seed().ports_on("network"))
    assert forward == [
        ((m("tap" + port_id[:11]), comment(c.COMMENT_TRUSTED_ACCEPT)), ACCEPT)
        for port_id in trusted
        for m in (physdev_out, physdev_in)
    ]
    assert rules(nf, "filter", OVS + "sg-chain") == [((), ACCEPT)]
    assert rules(nf, "raw", OVS + "PREROUTING") == []


def test_ipsets_hold_fixed_ips_of_every_member(dataplane: ir.Dataplane) -> None:
    sets = ipsets(seed())
    assert sets[ipset_name(SG_DEFAULT_A)] == ("10.0.22.202/32", "10.0.22.203/32")
    assert ipset_name(SG_DEFAULT_A) == "NIPv41d5a8b3e-6f9c-4d2a-b4e7-"


def test_rendering_is_deterministic_with_provenance(dataplane: ir.Dataplane) -> None:
    again = render_dataplane(seed())
    assert again == dataplane
    assert repr(again) == repr(dataplane)


def test_every_rule_and_route_has_render_provenance(dataplane: ir.Dataplane) -> None:
    for h in dataplane.hosts:
        spaces = [h.root_namespace(), *h.namespaces]
        for ns in spaces:
            for route in ns.routes or ():
                assert route.provenance.file == c.PROVENANCE_FILE and route.provenance.neutron_id
            for t in ns.netfilter.tables if ns.netfilter else ():
                for ch in t.chains:
                    for r in ch.rules:
                        assert r.provenance.file == c.PROVENANCE_FILE, r
                        assert r.provenance.neutron_id, r


# ---------------------------------------------------------------- edge cases on small deployments


def _sg(sg_id: str, rules_: list[dict[str, Any]], stateful: bool = True) -> dict[str, Any]:
    return {"id": sg_id, "name": sg_id[:4], "project_id": "p1", "stateful": stateful, "security_group_rules": rules_}


def _rule(rule_id: str, sg_id: str, direction: str, **extra: Any) -> dict[str, Any]:
    return {"id": rule_id, "security_group_id": sg_id, "direction": direction, "ethertype": "IPv4", **extra}


SG1 = "11111111-1111-4111-8111-111111111111"
SG2 = "22222222-2222-4222-8222-222222222222"


def small(**port_extra: Any) -> dict[str, Any]:
    return {
        "agents": [agent("c1", HOSTS["c1"], ovs_hybrid_plug=True)],
        "networks": [network(1, 100)],
        "subnets": [subnet(1, "10.1.0.0/24")],
        "ports": [port(1, 1, "c1", ["10.1.0.5"], **port_extra)],
        "security_groups": [
            _sg(
                SG1,
                [
                    _rule("r1", SG1, "ingress", protocol="icmp", port_range_min=8, port_range_max=0),
                    _rule("r2", SG1, "ingress", protocol="tcp", port_range_min=1000, port_range_max=2000),
                    _rule("r3", SG1, "ingress", protocol="udp", remote_ip_prefix="192.0.2.0/24"),
                    _rule("r4", SG1, "egress", protocol="17", port_range_min=53, port_range_max=53),
                    _rule("r5", SG1, "egress", remote_ip_prefix="198.51.100.7"),
                    _rule("r6", SG1, "egress", protocol="udplite", port_range_min=9, port_range_max=9),
                    _rule("r7", SG1, "egress", remote_group_id=SG1, protocol="tcp", port_range_min=5, port_range_max=5),
                ],
            ),
            _sg(SG2, [_rule("s1", SG2, "egress")], stateful=False),
        ],
    }


def render(obj: dict[str, Any]) -> ir.Dataplane:
    return render_dataplane(parse_neutron(obj, "test.json"))


PORT1 = "00000001-aaaa-4bbb-8ccc-000000000001"


def test_rule_translation_protocols_ports_prefixes_and_remote_groups() -> None:
    nf = host(render(small(security_groups=[SG1])), "c1").netfilter
    ingress = rules(nf, "filter", OVS + "i" + PORT1[:10])
    assert ingress[3:6] == [
        ((lx.MatchProtocol(1), lx.MatchIcmp(8, 0)), RETURN),
        ((TCP, ports("dst", 1000, 2000)), RETURN),
        ((lx.MatchAddress("src", "192.0.2.0/24"), UDP), RETURN),
    ]
    egress = rules(nf, "filter", OVS + "o" + PORT1[:10])
    assert egress[5:9] == [
        ((UDP, ports("dst", 53)), RETURN),
        ((lx.MatchAddress("dst", "198.51.100.7/32"),), RETURN),
        ((lx.MatchProtocol(136), ports("dst", 9)), RETURN),
        ((TCP, ports("dst", 5), lx.MatchSet(ipset_name(SG1), ("dst",))), RETURN),
    ]


def test_stateless_first_group_means_notrack() -> None:
    nf = host(render(small(security_groups=[SG2])), "c1").netfilter
    targets = {t for _m, t in rules(nf, "raw", OVS + "PREROUTING")}
    assert targets == {lx.Conntrack(notrack=True)}
    notes = [m for ms, _t in rules(nf, "raw", OVS + "PREROUTING") for m in ms if isinstance(m, lx.MatchComment)]
    assert notes[0].text == f"Make {PORT1} stateless"


def test_allowed_address_pairs_come_first_in_the_spoof_chain() -> None:
    pairs = [{"ip_address": "10.1.0.100"}, {"ip_address": "10.9.0.0/16", "mac_address": "fa:16:3e:aa:bb:cc"}]
    nf = host(render(small(allowed_address_pairs=pairs)), "c1").netfilter
    spoof = rules(nf, "filter", OVS + "s" + PORT1[:10])
    pair = comment(c.COMMENT_PAIR_ALLOW)
    assert spoof == [
        ((lx.MatchAddress("src", "10.1.0.100/32"), lx.MatchMac("fa:16:3e:00:00:01"), pair), RETURN),
        ((lx.MatchAddress("src", "10.9.0.0/16"), lx.MatchMac("fa:16:3e:aa:bb:cc"), pair), RETURN),
        ((lx.MatchAddress("src", "10.1.0.5/32"), lx.MatchMac("fa:16:3e:00:00:01"), pair), RETURN),
        ((comment(c.COMMENT_PAIR_DROP),), DROP),
    ]


def test_port_security_disabled_gets_accept_rules_only() -> None:
    nf = host(render(small(port_security_enabled=False)), "c1").netfilter
    tap = "tap" + PORT1[:11]
    accept = comment(c.COMMENT_PORT_SEC_ACCEPT)
    assert rules(nf, "filter", OVS + "FORWARD") == [
        ((physdev_out(tap), accept), ACCEPT),
        ((physdev_in(tap), accept), ACCEPT),
    ]
    assert rules(nf, "filter", OVS + "INPUT") == [((physdev_in(tap), accept), ACCEPT)]
    assert rules(nf, "raw", OVS + "PREROUTING") == []
    assert len(rules(nf, "nat", OVS + "PREROUTING")) == 2
    chains = [ch.name for t in (nf.tables if nf else ()) for ch in t.chains]
    assert not any(name.startswith((OVS + "i", OVS + "o", OVS + "s0")) for name in chains)


def test_native_firewall_host_gets_no_iptables() -> None:
    obj = small()
    obj["agents"] = [agent("c1", HOSTS["c1"], ovs_hybrid_plug=False)]
    obj["ports"][0]["binding:vif_details"] = {"ovs_hybrid_plug": False}
    h = host(render(obj), "c1")
    assert h.netfilter == lx.Netfilter(()) and h.links == () and h.linux_bridges == ()


def router_deployment() -> dict[str, Any]:
    """A router with two interfaces, ECMP and plain extra routes, a gateway outside its subnet, SNAT off."""
    obj = small()
    ext = network(9, None, "flat", "public")
    ext["router:external"] = True
    ext["subnets"] = ["s9", "s10"]
    obj["networks"] += [ext, network(2, 200)]
    gw_subnet = subnet(9, "203.0.113.0/24")
    gw_subnet["gateway_ip"] = "198.51.100.1"
    extra_subnet = subnet(10, "192.0.2.0/24")
    extra_subnet["network_id"] = ext["id"]
    obj["subnets"] += [gw_subnet, extra_subnet, subnet(2, "10.2.0.0/24")]
    obj["agents"][0]["configurations"]["bridge_mappings"] = {"public": "br-ex"}
    rid = "rrrrrrrr-0000-4000-8000-000000000001"
    obj["routers"] = [
        {
            "id": rid,
            "name": "r",
            "admin_state_up": True,
            "external_gateway_info": {
                "network_id": ext["id"],
                "enable_snat": False,
                "external_fixed_ips": [{"subnet_id": "s9", "ip_address": "203.0.113.5"}],
            },
            "routes": [
                {"destination": "172.16.0.0/16", "nexthop": "10.1.0.50"},
                {"destination": "172.16.0.0/16", "nexthop": "10.2.0.50"},
                {"destination": "172.17.0.0/16", "nexthop": "10.2.0.60"},
                {"destination": "172.18.0.0/16", "nexthop": "10.99.0.1"},
            ],
        }
    ]
    obj["ports"] += [
        port(20, 1, "c1", ["10.1.0.1"], "network:router_interface", device_id=rid),
        port(21, 2, "c1", ["10.2.0.1"], "network:router_interface", device_id=rid),
        port(22, 9, "c1", ["203.0.113.5"], "network:router_gateway", device_id=rid),
    ]
    obj["ports"][-1]["fixed_ips"][0]["subnet_id"] = "s9"
    return obj


def test_router_extra_routes_ecmp_onlink_gateway_and_snat_off() -> None:
    dp = render(router_deployment())
    ns = host(dp, "c1").namespaces[0]
    qr1, qr2, qg = "qr-00000014-aa", "qr-00000015-aa", "qg-00000016-aa"
    assert ns.routes == (
        lx.Route("default", gateway="198.51.100.1", device=qg, proto="static"),
        lx.Route("10.1.0.0/24", device=qr1, scope="link", source="10.1.0.1", proto="kernel"),
        lx.Route("10.2.0.0/24", device=qr2, scope="link", source="10.2.0.1", proto="kernel"),
        lx.Route(
            "172.16.0.0/16",
            nexthops=(lx.NextHop("10.1.0.50", qr1), lx.NextHop("10.2.0.50", qr2)),
            proto="static",
        ),
        lx.Route("172.17.0.0/16", gateway="10.2.0.60", device=qr2, proto="static"),
        lx.Route("192.0.2.0/24", device=qg, scope="link", proto="static"),
        lx.Route("198.51.100.1/32", device=qg, scope="link", proto="static"),
        lx.Route("203.0.113.0/24", device=qg, scope="link", source="203.0.113.5", proto="kernel"),
    )
    br_int = host(dp, "c1").bridge("br-int")
    assert br_int is not None and any("10.99.0.1" in note for note in br_int.notes)
    nf = ns.netfilter
    snat_gw = lx.Nat("SNAT", "203.0.113.5", random_fully=True)
    assert rules(nf, "nat", L3 + "snat") == [
        ((), jump(L3 + "float-snat")),
        ((lx.MatchMark(0x2, 0xFFFF, negated=True), lx.MatchState(frozenset({"DNAT"}))), snat_gw),
    ]
    assert rules(nf, "mangle", L3 + "POSTROUTING") == []
    # With SNAT off the qg- device gets its scope DROP rule too.
    assert [m[0] for m, _t in rules(nf, "filter", L3 + "scope")] == [
        lx.MatchInterface("out", qr1),
        lx.MatchInterface("out", qr2),
        lx.MatchInterface("out", qg),
    ]


def test_router_without_gateway_has_no_nat_rules_but_metadata() -> None:
    obj = router_deployment()
    obj["routers"][0].pop("external_gateway_info")
    obj["ports"] = obj["ports"][:-1]
    ns = host(render(obj), "c1").namespaces[0]
    nf = ns.netfilter
    assert rules(nf, "nat", L3 + "snat") == [((), jump(L3 + "float-snat"))]
    assert rules(nf, "nat", L3 + "POSTROUTING") == []
    assert [t for _m, t in rules(nf, "nat", L3 + "PREROUTING")] == [lx.Nat("REDIRECT", ports="9697")]
    assert ns.routes is not None and not any(r.destination == "default" for r in ns.routes)


def test_dhcp_namespace_gateway_outside_the_subnet_and_disabled_subnets() -> None:
    obj = small()
    obj["subnets"][0]["gateway_ip"] = "10.200.0.1"
    obj["ports"].append(port(30, 1, "c1", ["10.1.0.2"], "network:dhcp"))
    ns = host(render(obj), "c1").namespaces[0]
    dev = "tap0000001e-aa"
    assert ns.routes == (
        lx.Route("default", gateway="10.200.0.1", device=dev, proto="static"),
        lx.Route("10.1.0.0/24", device=dev, scope="link", source="10.1.0.2", proto="kernel"),
        lx.Route("10.200.0.1/32", device=dev, scope="link", proto="static"),
    )
    obj["subnets"][0]["enable_dhcp"] = False
    assert host(render(obj), "c1").namespaces == ()


# ---------------------------------------------------------------- iptables-restore --test


def _format_text(nf: lx.Netfilter) -> str:
    """``iptables-save`` text: the snapshot writer's when there is one, else the minimal one below."""
    try:
        from verifier.snapshot.iptables import format_iptables_save  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return minimal_iptables_save(nf)
    text = format_iptables_save(nf)
    assert isinstance(text, str)
    return text


_PROTO = {1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 132: "sctp", 136: "udplite"}
_STATES = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")


def _not(negated: bool) -> str:
    return "! " if negated else ""


def _matches_text(matches: tuple[lx.Match, ...]) -> list[str]:
    proto = next((m.protocol for m in matches if isinstance(m, lx.MatchProtocol)), None)
    out: list[str] = []
    module_open = False
    for m in matches:
        in_proto_module = isinstance(m, lx.MatchIcmp) or (isinstance(m, lx.MatchPorts) and not m.multiport)
        if in_proto_module and not module_open:
            out.append(f"-m {_PROTO[proto or 0]}")
        module_open = in_proto_module
        if isinstance(m, lx.MatchAddress):
            out.append(f"{_not(m.negated)}{'-s' if m.direction == 'src' else '-d'} {m.network}")
        elif isinstance(m, lx.MatchInterface):
            out.append(f"{_not(m.negated)}{'-i' if m.direction == 'in' else '-o'} {m.name}")
        elif isinstance(m, lx.MatchProtocol):
            out.append(f"{_not(m.negated)}-p {_PROTO.get(m.protocol, m.protocol)}")
        elif isinstance(m, lx.MatchPorts):
            spans = ",".join(f"{a}" if a == b else f"{a}:{b}" for a, b in m.ranges)
            word = {"src": "sport", "dst": "dport", "any": "port"}[m.direction]
            if m.multiport:
                out.append(f"-m multiport {_not(m.negated)}--{word}s {spans}")
            else:
                out.append(f"{_not(m.negated)}--{word} {spans}")
        elif isinstance(m, lx.MatchIcmp):
            out.append(f"{_not(m.negated)}--icmp-type {m.type}" + ("" if m.code is None else f"/{m.code}"))
        elif isinstance(m, lx.MatchPhysdev):
            words = ["-m physdev"]
            if m.physdev_in:
                words.append(f"{_not(m.physdev_in[1])}--physdev-in {m.physdev_in[0]}")
            if m.physdev_out:
                words.append(f"{_not(m.physdev_out[1])}--physdev-out {m.physdev_out[0]}")
            if m.is_bridged:
                words.append(f"{_not(m.is_bridged[1])}--physdev-is-bridged")
            out.append(" ".join(words))
        elif isinstance(m, lx.MatchMac):
            out.append(f"-m mac {_not(m.negated)}--mac-source {m.mac}")
        elif isinstance(m, lx.MatchSet):
            out.append(f"-m set {_not(m.negated)}--match-set {m.name} {','.join(m.flags)}")
        elif isinstance(m, lx.MatchState):
            states = ",".join(sorted(m.states, key=_STATES.index))
            module = "conntrack --ctstate" if m.conntrack else "state --state"
            head, flag = module.split()
            out.append(f"-m {head} {_not(m.negated)}{flag} {states}")
        elif isinstance(m, lx.MatchMark):
            out.append(f"-m {'connmark' if m.connection else 'mark'} {_not(m.negated)}--mark {m.value:#x}/{m.mask:#x}")
        elif isinstance(m, lx.MatchComment):
            out.append(f'-m comment --comment "{m.text}"')
        else:
            raise AssertionError(f"the renderer never writes {m!r}")
    return out


def _target_text(t: lx.Target) -> str:
    if isinstance(t, lx.Verdict):
        return f"-j {t.kind}"
    if isinstance(t, lx.Jump):
        return f"-j {t.chain}"
    if isinstance(t, lx.Nat):
        text = {
            "REDIRECT": f"-j REDIRECT --to-ports {t.ports}",
            "DNAT": f"-j DNAT --to-destination {t.address}",
            "SNAT": f"-j SNAT --to-source {t.address}",
        }[t.kind]
        return text + (" --random-fully" if t.random_fully else "")
    if isinstance(t, lx.SetMark):
        return f"-j MARK --set-xmark {t.value:#x}/{t.mask:#x}"
    if isinstance(t, lx.ConnMark):
        return f"-j CONNMARK --{t.mode}-mark --nfmask {t.nfmask:#x} --ctmask {t.ctmask:#x}"
    if isinstance(t, lx.Conntrack):
        return "-j CT --notrack" if t.notrack else f"-j CT --zone {t.zone}"
    if isinstance(t, lx.NoEffect):
        return f"-j {t.text}"
    raise AssertionError(f"the renderer never writes {t!r}")


def minimal_iptables_save(nf: lx.Netfilter) -> str:
    """Just enough of ``iptables-save`` for the constructs the renderer writes."""
    lines: list[str] = []
    for table in nf.tables:
        lines.append(f"*{table.name}")
        lines += [f":{ch.name} {ch.policy or '-'} [0:0]" for ch in table.chains]
        for ch in table.chains:
            for r in ch.rules:
                assert r.target is not None
                lines.append(" ".join([f"-A {r.chain}", *_matches_text(r.matches), _target_text(r.target)]))
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def _can_use_netns() -> bool:
    return os.geteuid() == 0 and all(shutil.which(t) for t in ("ip", "iptables-restore", "ipset"))


@pytest.fixture
def netns() -> Iterator[Callable[[list[str], str | None], subprocess.CompletedProcess[str]]]:
    """A throwaway network namespace; yields a runner of commands inside it."""
    if not _can_use_netns():
        pytest.skip("needs root, ip, iptables-restore and ipset")
    name = f"rt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)

    def run(cmd: list[str], text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", name, *cmd], input=text, text=True, capture_output=True)

    try:
        yield run
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _check_restore(dp: ir.Dataplane, neutron: Neutron, run: Callable[..., subprocess.CompletedProcess[str]]) -> int:
    for set_name in ipsets(neutron):
        created = run(["ipset", "create", "-exist", set_name, "hash:net", "family", "inet"])
        assert created.returncode == 0, created.stderr
    checked = 0
    for h in dp.hosts:
        for where, nf in [("root", h.netfilter), *((ns.name, ns.netfilter) for ns in h.namespaces)]:
            if nf is None or not nf.tables:
                continue
            text = _format_text(nf)
            result = run(["iptables-restore", "--test"], text)
            assert result.returncode == 0, f"{h.name} {where}: {result.stderr}\n{text}"
            checked += 1
    return checked


def test_every_rendered_ruleset_passes_iptables_restore_test(
    dataplane: ir.Dataplane, netns: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    assert _check_restore(dataplane, seed(), netns) == 8


def test_edge_case_rulesets_pass_iptables_restore_test(netns: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    objs = [small(security_groups=[SG1, SG2]), small(port_security_enabled=False), router_deployment()]
    for obj in objs:
        neutron = parse_neutron(obj, "test.json")
        assert _check_restore(render_dataplane(neutron), neutron, netns) >= 1


def test_rendered_rulesets_read_back_through_the_snapshot_parser(dataplane: ir.Dataplane) -> None:
    """Rendered rules are what the snapshot reader makes of the same text (both ways through iptables-save)."""
    iptables = pytest.importorskip("verifier.snapshot.iptables")
    for h in dataplane.hosts:
        for nf in [h.netfilter, *(ns.netfilter for ns in h.namespaces)]:
            assert nf is not None
            text = iptables.format_iptables_save(nf)
            assert iptables.parse_iptables_save(text, "rendered") == nf
            assert minimal_iptables_save(nf) == text


def test_minimal_formatter_spells_what_iptables_save_prints(dataplane: ir.Dataplane) -> None:
    text = minimal_iptables_save(host(dataplane, "compute1").netfilter or lx.Netfilter(()))
    assert (
        "-A neutron-openvswi-i6a2f8d4c-0 -d 10.0.22.202/32 -p udp -m udp --sport 67 --dport 68 -j RETURN"
        in text.split("\n")
    )


# ---------------------------------------------------------------- random deployments


@st.composite
def deployments_with_l3(draw: st.DrawFn) -> dict[str, Any]:
    """Small deployments: VMs with security groups, DHCP ports, a router with a gateway and floating IPs."""
    hosts = sorted(draw(st.sets(st.sampled_from(sorted(HOSTS)), min_size=1)))
    n_networks = draw(st.integers(1, 3))
    networks = [network(i, 100 + i) for i in range(1, n_networks + 1)]
    ext = network(9, None, "flat", "public")
    ext["router:external"] = True
    networks.append(ext)
    subnets = [subnet(i, f"10.{i}.0.0/24") for i in range(1, n_networks + 1)] + [subnet(9, "203.0.113.0/24")]
    groups = [f"{g:08x}-5555-4555-8555-555555555555" for g in range(1, 4)]
    sgs = []
    for g in groups:
        rules_ = []
        for k in range(draw(st.integers(0, 4))):
            proto = draw(st.sampled_from([None, "tcp", "udp", "icmp", "6", "132"]))
            low = draw(st.one_of(st.none(), st.integers(0, 255)))
            extra: dict[str, Any] = {"protocol": proto}
            if proto is not None and low is not None:
                extra.update(port_range_min=low, port_range_max=low + draw(st.integers(0, 3)))
            if draw(st.booleans()):
                extra["remote_group_id"] = draw(st.sampled_from(groups))
            elif draw(st.booleans()):
                extra["remote_ip_prefix"] = draw(st.sampled_from(["0.0.0.0/0", "192.0.2.0/24", "10.1.0.7/32"]))
            rules_.append(
                _rule(
                    f"{g[:8]}-{k:04x}-4000-8000-000000000000", g, draw(st.sampled_from(["ingress", "egress"])), **extra
                )
            )
        sgs.append(_sg(g, rules_, stateful=draw(st.booleans())))
    ports = []
    for number in range(1, draw(st.integers(0, 8)) + 1):
        net = draw(st.integers(1, n_networks))
        owner = draw(st.sampled_from(["compute:nova", "compute:nova", "network:dhcp"]))
        extra = {"admin_state_up": draw(st.booleans()) or draw(st.booleans())}
        if owner == "compute:nova":
            secure = draw(st.booleans()) or draw(st.booleans())
            extra["port_security_enabled"] = secure
            if secure:
                extra["security_groups"] = draw(st.lists(st.sampled_from(groups), max_size=2, unique=True))
                if draw(st.booleans()):
                    extra["allowed_address_pairs"] = [{"ip_address": f"10.{net}.0.200"}]
        ports.append(port(number, net, draw(st.sampled_from(hosts)), [f"10.{net}.0.{number + 1}"], owner, **extra))
    obj: dict[str, Any] = {
        "agents": [agent(h, HOSTS[h], ovs_hybrid_plug=True, bridge_mappings={"public": "br-ex"}) for h in hosts],
        "networks": networks,
        "subnets": subnets,
        "ports": ports,
        "security_groups": sgs,
    }
    if draw(st.booleans()):
        rid = "rrrrrrrr-0000-4000-8000-000000000001"
        l3 = draw(st.sampled_from(hosts))
        obj["routers"] = [
            {
                "id": rid,
                "name": "r",
                "external_gateway_info": {
                    "network_id": ext["id"],
                    "enable_snat": draw(st.booleans()),
                    "external_fixed_ips": [{"subnet_id": "s9", "ip_address": "203.0.113.2"}],
                },
            }
        ]
        obj["ports"] += [
            port(100 + i, i, l3, [f"10.{i}.0.1"], "network:router_interface", device_id=rid)
            for i in range(1, n_networks + 1)
        ]
        obj["ports"].append(port(200, 9, l3, ["203.0.113.2"], "network:router_gateway", device_id=rid))
        obj["ports"][-1]["fixed_ips"][0]["subnet_id"] = "s9"
        vms = [p for p in ports if p["device_owner"] == "compute:nova"]
        obj["floatingips"] = [
            {
                "id": f"ffffffff-0000-4000-8000-{k:012x}",
                "floating_ip_address": f"203.0.113.{100 + k}",
                "floating_network_id": ext["id"],
                "fixed_ip_address": vm["fixed_ips"][0]["ip_address"],
                "port_id": vm["id"],
                "router_id": rid,
            }
            for k, vm in enumerate(vms[:2])
        ]
    return obj


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=deployments_with_l3())
def test_random_deployments_render_one_chain_set_per_vm_port(obj: dict[str, Any]) -> None:
    neutron = parse_neutron(copy.deepcopy(obj), "random.json")
    dp = render_dataplane(neutron)
    assert render_dataplane(neutron) == dp
    for h in dp.hosts:
        nf = h.netfilter
        assert nf is not None
        chains = [ch.name for t in nf.tables if t.name == "filter" for ch in t.chains]
        assert len(chains) == len(set(chains))
        vms = [p for p in neutron.ports_on(h.name) if p.device_owner.startswith("compute:")]
        raw = [r for t in nf.tables if t.name == "raw" for ch in t.chains for r in ch.rules]
        zones = {r.target.zone for r in raw if isinstance(r.target, lx.Conntrack) and r.target.zone is not None}
        # Every filtered port takes the next zone; a stateless one shows --notrack instead of it.
        secure = sorted((p for p in vms if p.port_security_enabled), key=lambda p: p.id)
        assert zones == {z for z, p in enumerate(secure, start=4097) if not _stateless(neutron, p)}
        for p in vms:
            mine = [n for n in chains if n.startswith(OVS) and n[len(OVS) + 1 :] == p.id[:10] and n[len(OVS)] in "ios"]
            assert sorted(n[len(OVS)] for n in mine) == (["i", "o", "s"] if p.port_security_enabled else [])
        for ns in h.namespaces:
            assert ns.netfilter is not None and ns.routes is not None
            for a in ns.addresses:
                assert ns.link(a.interface) is not None
            if ns.name.startswith("qrouter-"):
                fips = [a for a in ns.addresses if a.prefixlen == 32]
                nat = rules(ns.netfilter, "nat", L3 + "float-snat")
                assert len(nat) == len(fips)
                for a in fips:
                    assert ipaddress.ip_address(a.address) in ipaddress.ip_network("203.0.113.0/24")


def _stateless(neutron: Neutron, p: Any) -> bool:
    groups = [g for g in neutron.security_groups if g.id in p.security_groups]
    return bool(groups) and bool(groups[0].rules) and not groups[0].stateful
