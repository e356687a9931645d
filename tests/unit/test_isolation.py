"""Tenant isolation on the built-in seed-gre example and hand-made breakages of it.

The example (verifier/examples/seed_gre): tenant-a (GRE key 0x266) has vm-a1 on
compute1 and vm-a2 on compute2; tenant-b (0x123, the same CIDR) has vm-b1 and
vm-b2 on compute1; tenant-c (0x359) has vm-c1 on compute2; DHCP and router
ports live on the network node.  Local VLANs: compute1 A=1 B=2; compute2 C=1
A=2; network C=1 public=2 A=3 B=4.  Each test states the verdict worked out by
hand and why.

Most tests here break the OVS side, so they run on the example's OVS files only
(routers and DHCP servers are then endpoints, VMs end at their qvo devices);
the tests at the end run on the whole example, routers and firewalls included.
"""

from __future__ import annotations

import dataclasses

import pytest

from models.network import OvsNetwork
from properties.isolation import check_isolation
from support.mutate import lvid, ovs_only, replace_flows, set_tag
from verifier.deployment import Deployment, load_example
from verifier.verdict import Verdict

A, B, C = 0x266, 0x123, 0x359
VM_A1 = "qvo6a2f8d4c-0b"
VM_A2 = "qvo8e4b1f07-2c"
VM_B1 = "qvo9c3d7e1f-4a"
VM_C1 = "qvof7c0e3a6-9b"


@pytest.fixture(scope="module")
def seed() -> Deployment:
    d = load_example("seed-gre")
    return dataclasses.replace(d, dataplane=ovs_only(d.dataplane))


@pytest.fixture(scope="module")
def full() -> Deployment:
    return load_example("seed-gre")


def check(d: Deployment, **kw: object) -> Verdict:
    return check_isolation(d, **kw)  # type: ignore[arg-type]


def with_dataplane(d: Deployment, dp: object) -> Deployment:
    return dataclasses.replace(d, dataplane=dp)  # type: ignore[arg-type]


def pairs(v: Verdict) -> set[tuple[str, str]]:
    return {tuple(ex.title.split(":")[0].split(" -> ")) for ex in v.counterexamples}  # type: ignore[misc]


def test_healthy_example_holds(seed: Deployment) -> None:
    """Every VM reaches only its own network's ports: holds, with three projects."""
    v = check(seed)
    assert v.status == "holds", v.summary
    assert v.exit_code == 0
    assert "3 projects" in v.summary
    assert v.assumptions and v.coverage


def test_vm_tagged_with_another_networks_vlan_is_violated_both_ways(seed: Deployment) -> None:
    """vm-a1's qvo carries B's local VLAN on compute1: NORMAL floods its frames to vm-b1/vm-b2
    and B's frames to it.  Violated A -> B and B -> A, same host, no tunnel involved."""
    dp = set_tag(seed.dataplane, "compute1", "br-int", VM_A1, lvid(seed.dataplane, "compute1", VM_B1))
    v = check(with_dataplane(seed, dp))
    assert v.status == "violated"
    assert pairs(v) == {("tenant-a", "tenant-b"), ("tenant-b", "tenant-a")}
    ex = next(e for e in v.counterexamples if e.title.startswith("tenant-a"))
    assert ex.hops[0].host == "compute1" and ex.hops[0].in_port == VM_A1
    assert "qvo" in (ex.hops[-1].out_port or "")
    assert ex.hops[-1].replay.startswith("ovs-appctl ofproto/trace --names br-int '")


def test_tunnel_key_mapped_to_the_wrong_vlan_on_one_host(seed: Deployment) -> None:
    """compute2's br-tun maps A's key to C's local VLAN: vm-a1's flood from compute1 arrives
    with key 0x266 and is delivered to vm-c1 (A -> C).  Those arrivals also teach compute2's
    table 20 that A's MACs sit behind compute1 with key 0x266, so vm-c1's unicast to such a MAC
    leaves with A's key (C -> A, through a learned entry; C's floods still use C's key)."""
    c_vlan = lvid(seed.dataplane, "compute2", VM_C1)
    dp = replace_flows(
        seed.dataplane,
        "compute2",
        "br-tun",
        f"table=3,priority=1,tun_id={A:#x}",
        [f"table=3,priority=1,tun_id={A:#x} actions=mod_vlan_vid:{c_vlan},resubmit(,10)"],
    )
    v = check(with_dataplane(seed, dp))
    assert v.status == "violated"
    assert pairs(v) == {("tenant-a", "tenant-c"), ("tenant-c", "tenant-a")}
    c_to_a = next(e for e in v.counterexamples if e.title.startswith("tenant-c"))
    assert c_to_a.assumptions and "learned entry" in c_to_a.assumptions[0]
    ex = next(e for e in v.counterexamples if e.title.startswith("tenant-a"))
    assert not ex.assumptions
    assert ex.hops[0].host == "compute1"
    assert any(h.host == "compute2" and h.device == "br-tun" for h in ex.hops)
    assert ex.outcome.startswith("delivered to vm vm-c1")


def test_flood_with_the_wrong_tunnel_key(seed: Deployment) -> None:
    """compute1 floods A's VLAN with B's key: the network node maps it to B's VLAN and hands
    vm-a1's broadcast to B's DHCP and router ports.  Violated A -> B only."""
    a_vlan = lvid(seed.dataplane, "compute1", VM_A1)
    dp = replace_flows(
        seed.dataplane,
        "compute1",
        "br-tun",
        f"table=22,priority=1,dl_vlan={a_vlan}",
        [f"table=22,priority=1,dl_vlan={a_vlan} actions=strip_vlan,load:{B:#x}->NXM_NX_TUN_ID[],output:2,output:3"],
    )
    v = check(with_dataplane(seed, dp))
    assert v.status == "violated"
    assert pairs(v) == {("tenant-a", "tenant-b")}


def test_violation_only_through_a_learned_entry(seed: Deployment) -> None:
    """compute2 also maps B's key into A's VLAN.  B's floods from compute1 then reach vm-a2
    (B -> A by flooding), and frames arriving that way teach br-tun table 20 that B's MACs
    sit behind compute1 with key B: vm-a2's unicast to such a MAC leaves with key B and reaches
    B's ports.  A -> B exists only through that learned entry, which the counterexample states."""
    a_vlan = lvid(seed.dataplane, "compute2", VM_A2)
    dp = replace_flows(
        seed.dataplane,
        "compute2",
        "br-tun",
        "",
        [f"table=3,priority=1,tun_id={B:#x} actions=mod_vlan_vid:{a_vlan},resubmit(,10)"],
    )
    v = check(with_dataplane(seed, dp))
    assert v.status == "violated"
    assert pairs(v) == {("tenant-a", "tenant-b"), ("tenant-b", "tenant-a")}
    a_to_b = next(e for e in v.counterexamples if e.title.startswith("tenant-a"))
    assert a_to_b.assumptions and "learned entry" in a_to_b.assumptions[0]
    assert a_to_b.setup and a_to_b.setup[0].startswith("ovs-ofctl add-flow br-tun 'cookie=")


def test_unsupported_action_on_a_reachable_path_is_unknown(seed: Deployment) -> None:
    """A flow with an action the models do not know (bundle) catches vm-a1's traffic first:
    nothing can be proved about where it goes, so the verdict is unknown and names the flow."""
    dp = replace_flows(
        seed.dataplane,
        "compute1",
        "br-int",
        "",
        ["table=0,priority=50,in_port=2,ip actions=bundle(eth_src,0,hrw,ofport,members:1,3)"],
    )
    v = check(with_dataplane(seed, dp))
    assert v.status == "unknown"
    assert v.exit_code == 3
    assert any("bundle" in r for r in v.reasons)


def test_unsupported_action_on_an_unreachable_flow_does_not_matter(seed: Deployment) -> None:
    """The same flow for an in_port nothing uses is never reached: isolation still holds."""
    dp = replace_flows(
        seed.dataplane,
        "compute1",
        "br-int",
        "",
        ["table=0,priority=50,in_port=999,ip actions=bundle(eth_src,0,hrw,ofport,members:1,3)"],
    )
    assert check(with_dataplane(seed, dp)).status == "holds"


def test_missing_flow_dump_makes_paths_through_it_unknown(seed: Deployment) -> None:
    """Without compute2's br-tun flows, what arrives there from compute1 is undecided."""
    d = dataclasses.replace(seed, flows_missing=frozenset({("compute2", "br-tun")}))
    v = check(d)
    assert v.status == "unknown"
    assert any("compute2" in r and "br-tun" in r for r in v.reasons)
    assert any("no flow dump" in c for c in v.coverage)


def test_one_project_is_vacuous(seed: Deployment) -> None:
    """With only tenant-a's VMs there is no pair of projects to isolate: vacuous, not holds."""
    assert seed.neutron is not None
    keep = {
        p.id for p in seed.neutron.ports if not (p.device_owner.startswith("compute:") and p.project_id != "tenant-a")
    }
    neutron = dataclasses.replace(seed.neutron, ports=tuple(p for p in seed.neutron.ports if p.id in keep))
    v = check(dataclasses.replace(seed, neutron=neutron))
    assert v.status == "vacuous"
    assert v.exit_code == 3


# ---------------------------------------------------------------- without neutron.json


def test_segments_without_neutron_healthy_holds(seed: Deployment) -> None:
    v = check(dataclasses.replace(seed, neutron=None))
    assert v.status == "holds", v.summary
    assert "segments" in v.summary


def test_segments_without_neutron_see_a_wrong_key_mapping(seed: Deployment) -> None:
    """The wrong t3 mapping on compute2 lets segment 0x266 reach a port of segment 0x359."""
    c_vlan = lvid(seed.dataplane, "compute2", VM_C1)
    dp = replace_flows(
        seed.dataplane,
        "compute2",
        "br-tun",
        f"table=3,priority=1,tun_id={A:#x}",
        [f"table=3,priority=1,tun_id={A:#x} actions=mod_vlan_vid:{c_vlan},resubmit(,10)"],
    )
    v = check(dataclasses.replace(seed, neutron=None, dataplane=dp))
    assert v.status == "violated"
    assert any("tun_id=0x266" in a and "tun_id=0x359" in b for a, b in pairs(v))


def test_segments_without_neutron_cannot_see_a_port_in_the_wrong_vlan(seed: Deployment) -> None:
    """A port tagged into B's VLAN is, for the dataplane alone, a member of B's segment: holds.
    This is why neutron.json matters, and the verdict says so in its assumptions."""
    dp = set_tag(seed.dataplane, "compute1", "br-int", VM_A1, lvid(seed.dataplane, "compute1", VM_B1))
    v = check(dataclasses.replace(seed, neutron=None, dataplane=dp))
    assert v.status == "holds"
    assert any("neutron.json" in a for a in v.assumptions)


def test_symmetry_does_not_change_the_answer(seed: Deployment) -> None:
    """The same verdicts with and without port-symmetry reduction (wrong-key scenario)."""
    c_vlan = lvid(seed.dataplane, "compute2", VM_C1)
    dp = replace_flows(
        seed.dataplane,
        "compute2",
        "br-tun",
        f"table=3,priority=1,tun_id={A:#x}",
        [f"table=3,priority=1,tun_id={A:#x} actions=mod_vlan_vid:{c_vlan},resubmit(,10)"],
    )
    d = with_dataplane(seed, dp)
    plain = OvsNetwork(d.dataplane, classify=_classifier(d), symmetry=False)
    assert pairs(check(d, net=plain)) == pairs(check(d)) == {("tenant-a", "tenant-c"), ("tenant-c", "tenant-a")}


def _classifier(d: Deployment):  # type: ignore[no-untyped-def]
    from models.endpoints import NeutronClassifier

    assert d.neutron is not None
    return NeutronClassifier(d.neutron)


def test_networks_joined_by_their_projects_router_are_routing_not_a_leak() -> None:
    """In the benchmark region every project routes its two networks through its own router: traffic
    between them is what the router is for, so it is neither a violation nor a cross-network leak."""
    from bench.region import region
    from verifier.neutron.model import parse_neutron
    from verifier.neutron.render_ovs import render_dataplane

    neutron = parse_neutron(region(3, 15), "region")
    d = dataclasses.replace(load_example("seed-gre"), neutron=neutron, dataplane=render_dataplane(neutron))
    v = check(d)
    assert v.status == "holds", v.summary
    assert not [f for f in v.findings if f.kind == "cross-network leak"]
    assert v.stats["candidates"] == 0
