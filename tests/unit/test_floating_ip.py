"""Floating IPs and SNAT on the built-in seed-gre example and hand-made breakages of it.

The example: router-tenant-a (gateway 203.0.113.11, qrouter-71c3e9a5... on the
network node) routes net-tenant-a and net-tenant-c; router-tenant-b (gateway
203.0.113.12) routes net-tenant-b.  Floating IPs 203.0.113.101 -> vm-a1
(10.0.22.202) and 203.0.113.102 -> vm-b1 (10.0.22.202, the other tenant).
vm-a1 and vm-b1 carry the "web" groups (tcp 22 and 80 from 0.0.0.0/0);
vm-a2, vm-b2 and vm-c1 have no floating IP and only their default group.
"""

from __future__ import annotations

import dataclasses

import pytest

from properties.floating_ip import check_floating_ip
from verifier import ir
from verifier.deployment import Deployment, load_example
from verifier.linux import Nat
from verifier.neutron.model import Neutron
from verifier.neutron.render_ovs import render_dataplane
from verifier.verdict import Verdict

ROUTER_A = "qrouter-71c3e9a5-2d8b-4f64-9e1a-5b7c0d3f2e98"
WEB_GROUPS = ("2e6b9c4f-7a0d-4e3b-85f8-1f4a7d0e3b69", "4a8d1e6b-9c2f-4a5d-a7b0-3b6c9f2a5d81")


@pytest.fixture(scope="module")
def seed() -> Deployment:
    return load_example("seed-gre")


@pytest.fixture(scope="module")
def healthy(seed: Deployment) -> Verdict:
    return check_floating_ip(seed)


def without_nat(d: Deployment, namespace: str, kind: str, address: str, chain: str) -> Deployment:
    """The deployment with the ``-j <kind> --to-... <address>`` rules of one namespace's nat ``chain`` removed."""
    hosts = []
    removed = 0
    for h in d.dataplane.hosts:
        namespaces = []
        for ns in h.namespaces:
            if ns.name == namespace and ns.netfilter is not None:
                tables = []
                for t in ns.netfilter.tables:
                    chains = []
                    for c in t.chains:
                        if t.name != "nat" or c.name != chain:
                            chains.append(c)
                            continue
                        keep = tuple(
                            r
                            for r in c.rules
                            if not (isinstance(r.target, Nat) and r.target.kind == kind and r.target.address == address)
                        )
                        removed += len(c.rules) - len(keep)
                        chains.append(dataclasses.replace(c, rules=keep))
                    tables.append(dataclasses.replace(t, chains=tuple(chains)))
                ns = dataclasses.replace(ns, netfilter=dataclasses.replace(ns.netfilter, tables=tuple(tables)))
            namespaces.append(ns)
        hosts.append(dataclasses.replace(h, namespaces=tuple(namespaces)))
    assert removed, f"no {kind} rule to {address} in {namespace}"
    return dataclasses.replace(d, dataplane=ir.Dataplane(tuple(hosts)))


def rerendered(d: Deployment, neutron: Neutron) -> Deployment:
    """The deployment the agents would program for an edited neutron.json."""
    return dataclasses.replace(d, neutron=neutron, dataplane=render_dataplane(neutron))


def titles(v: Verdict) -> list[str]:
    """What failed: each counterexample is titled by its failure (reasons hold only the undecided)."""
    assert not v.reasons, v.reasons
    return [c.title for c in v.counterexamples]


def probes(v: Verdict) -> list[str]:
    return [f.text for f in v.findings if f.kind == "floating-ip probes"]


def test_healthy_example_holds_with_probe_summary(healthy: Verdict) -> None:
    """Both floating IPs work both ways; the web groups let tcp/22 and tcp/80 in, the dataplane everything."""
    v = healthy
    assert v.status == "holds", (v.summary, v.reasons)
    assert v.exit_code == 0
    assert v.stats["floating_ips"] == 2
    assert v.stats["routed_vms"] == 3  # vm-a2, vm-b2, vm-c1
    texts = probes(v)
    assert len(texts) == 2
    for fip, vm in (("203.0.113.101", "vm-a1"), ("203.0.113.102", "vm-b1")):
        (text,) = [t for t in texts if t.startswith(f"{fip} -> {vm} (10.0.22.202)")]
        assert "with security groups tcp/22, tcp/80 (blocked: tcp/443, udp/53, icmp echo)" in text
        assert "the dataplane alone lets through all probes" in text
    assert "tcp/22, tcp/80 (blocked" in v.summary
    assert not [f for f in v.findings if f.kind == "unsolicited inbound"]
    assert v.assumptions and any("conntrack" in a for a in v.assumptions)


def test_missing_dnat_rule_is_violated(seed: Deployment) -> None:
    """Without the DNAT rule 203.0.113.101 is just an address of router-a: probes end in its own stack."""
    v = check_floating_ip(without_nat(seed, ROUTER_A, "DNAT", "10.0.22.202", "neutron-l3-agent-PREROUTING"))
    assert v.status == "violated", v.summary
    assert len(titles(v)) == 1
    (reason,) = titles(v)
    assert reason.startswith("floating IP 203.0.113.101 -> vm-a1")
    assert "nothing from outside reaches the VM through the floating IP, even without security groups" in reason
    assert "203.0.113.102" not in " ".join(titles(v))
    (ex,) = v.counterexamples
    assert ex.source.startswith("uplink eth1 of br-ex on network")
    assert ex.packet["ip_dst"] == int.from_bytes(bytes([203, 0, 113, 101]), "big")
    assert ex.hops[-1].device == ROUTER_A and ex.hops[-1].out_port == "(local stack)"
    assert "router 71c3e9a5" in ex.outcome and "itself" in ex.outcome
    # the other floating IP still works
    assert any(t.startswith("203.0.113.102 -> vm-b1") and "tcp/22, tcp/80" in t for t in probes(v))


def test_missing_float_snat_rule_leaves_with_gateway_address(seed: Deployment) -> None:
    """Without the float-snat rule vm-a1's traffic falls through to the router's SNAT: source 203.0.113.11."""
    v = check_floating_ip(without_nat(seed, ROUTER_A, "SNAT", "203.0.113.101", "neutron-l3-agent-float-snat"))
    assert v.status == "violated", v.summary
    (reason,) = titles(v)
    assert reason.startswith("floating IP 203.0.113.101 -> vm-a1 (10.0.22.202): outbound")
    assert "leaves the cloud with source 203.0.113.11, not 203.0.113.101" in reason
    (ex,) = v.counterexamples
    assert ex.source.startswith("vm vm-a1")
    assert ex.hops[0].device.startswith("qbr") and ex.hops[-1].device == ROUTER_A
    assert ex.hops[-1].out_port == "qg-0b7e3c95-4d"
    assert "external network" in ex.outcome
    # inbound still works: the probe summary is unchanged
    assert any(t.startswith("203.0.113.101 -> vm-a1") and "tcp/22, tcp/80 (blocked" in t for t in probes(v))


def test_security_groups_with_only_port_22_still_hold(seed: Deployment) -> None:
    """The web groups lose their tcp/80 rule: still holds, only tcp/22 gets through with security groups."""
    assert seed.neutron is not None
    groups = tuple(
        dataclasses.replace(g, rules=tuple(r for r in g.rules if r.port_range_min != 80)) if g.id in WEB_GROUPS else g
        for g in seed.neutron.security_groups
    )
    v = check_floating_ip(rerendered(seed, dataclasses.replace(seed.neutron, security_groups=groups)))
    assert v.status == "holds", (v.summary, v.reasons)
    texts = probes(v)
    assert len(texts) == 2
    for text in texts:
        assert "with security groups tcp/22 (blocked: tcp/80, tcp/443, udp/53, icmp echo)" in text
        assert "the dataplane alone lets through all probes" in text


def test_no_security_group_opening_is_violated(seed: Deployment) -> None:
    """vm-a1 loses the web group: the NAT works (dataplane alone lets all through) but nothing reaches it."""
    assert seed.neutron is not None
    ports = tuple(
        dataclasses.replace(p, security_groups=tuple(g for g in p.security_groups if g not in WEB_GROUPS))
        if p.name == "vm-a1"
        else p
        for p in seed.neutron.ports
    )
    v = check_floating_ip(rerendered(seed, dataclasses.replace(seed.neutron, ports=ports)))
    assert v.status == "violated"
    (reason,) = titles(v)
    assert reason.startswith("floating IP 203.0.113.101 -> vm-a1")
    assert "nothing from outside reaches the VM with security groups applied" in reason
    assert "the dataplane alone lets through all probes" in reason
    (ex,) = v.counterexamples
    assert ex.hops[-1].device == "qbr6a2f8d4c-0b"  # dropped by vm-a1's own firewall


def test_no_floating_ips_holds_through_router_snat(seed: Deployment) -> None:
    """Without floating IPs every VM is routed and leaves with its router's gateway address: holds."""
    assert seed.neutron is not None
    neutron = dataclasses.replace(
        seed.neutron,
        floatingips=(),
        ports=tuple(p for p in seed.neutron.ports if p.device_owner != "network:floatingip"),
    )
    v = check_floating_ip(rerendered(seed, neutron))
    assert v.status == "holds", (v.summary, v.reasons)
    assert v.stats["floating_ips"] == 0
    assert v.stats["routed_vms"] == 5
    assert not probes(v)


def test_no_floating_ips_and_no_routers_is_vacuous(seed: Deployment) -> None:
    assert seed.neutron is not None
    v = check_floating_ip(
        dataclasses.replace(seed, neutron=dataclasses.replace(seed.neutron, floatingips=(), routers=()))
    )
    assert v.status == "vacuous"
    assert v.exit_code == 3


def test_missing_router_snat_is_violated_for_routed_vms(seed: Deployment) -> None:
    """Without router-a's SNAT rules vm-a2 and vm-c1 leave with their fixed addresses, not 203.0.113.11."""
    v = check_floating_ip(without_nat(seed, ROUTER_A, "SNAT", "203.0.113.11", "neutron-l3-agent-snat"))
    assert v.status == "violated"
    assert len(titles(v)) == 2
    assert any(r.startswith("vm-a2 (10.0.22.203) behind router router-tenant-a") for r in titles(v))
    assert any(r.startswith("vm-c1 (10.0.33.10) behind router router-tenant-a") for r in titles(v))
    assert all("leaves the cloud with source 10.0." in r and "not 203.0.113.11" in r for r in titles(v))


def test_unsolicited_inbound_is_a_finding_not_a_violation(seed: Deployment) -> None:
    """vm-a2 gets the web group: outside hosts reach its fixed IP through router-a (no NAT needed)."""
    assert seed.neutron is not None
    ports = tuple(
        dataclasses.replace(p, security_groups=(*p.security_groups, WEB_GROUPS[0])) if p.name == "vm-a2" else p
        for p in seed.neutron.ports
    )
    v = check_floating_ip(rerendered(seed, dataclasses.replace(seed.neutron, ports=ports)))
    assert v.status == "holds", (v.summary, v.reasons)
    (finding,) = [f for f in v.findings if f.kind == "unsolicited inbound"]
    assert finding.text.startswith("vm-a2 (10.0.22.203) has no floating IP, yet tcp/22, tcp/80 from outside")
    assert "NAT is not a firewall" in finding.text


def test_vlan_external_network_is_probed_tagged(seed: Deployment) -> None:
    """With a vlan external network (segment 100) the probes arrive tagged 100 and still get through;
    a dataplane rendered for vlan but checked against a flat neutron.json drops the untagged probes at br-int."""
    assert seed.neutron is not None
    networks = tuple(
        dataclasses.replace(n, network_type="vlan", segmentation_id=100) if n.router_external else n
        for n in seed.neutron.networks
    )
    vlan = dataclasses.replace(seed.neutron, networks=networks)
    v = check_floating_ip(rerendered(seed, vlan))
    assert v.status == "holds", (v.summary, v.reasons)
    assert all("tcp/22, tcp/80 (blocked" in t for t in probes(v))
    mismatched = check_floating_ip(dataclasses.replace(seed, dataplane=render_dataplane(vlan)))
    assert mismatched.status == "violated"
    assert len(mismatched.counterexamples) == 2
    for ex in mismatched.counterexamples:
        assert ex.packet["vlan_tci"] == 0
        assert ex.hops[-1].device == "br-int" and ex.outcome.startswith("dropped")


def test_without_the_compute_nodes_firewall_rules_the_answer_is_unknown(seed: Deployment) -> None:
    """No iptables on compute1 (vm-a1 and vm-b1 live there): whether probes reach those VMs is
    undecided, which must come out unknown, never as "nothing reaches the VM"."""
    hosts = tuple(dataclasses.replace(h, netfilter=None) if h.name == "compute1" else h for h in seed.dataplane.hosts)
    v = check_floating_ip(dataclasses.replace(seed, dataplane=ir.Dataplane(hosts)))
    assert v.status == "unknown", v.summary
    assert not v.counterexamples
    assert any("203.0.113.101" in r for r in v.reasons)
