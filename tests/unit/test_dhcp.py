"""DHCP reachability on the built-in seed-gre example and breakages of its snapshot text.

The example: DHCP servers (qdhcp- namespaces) for net-tenant-a/-b/-c all live on
the network node; vm-a1, vm-b1, vm-b2 are on compute1, vm-a2 and vm-c1 on
compute2, so every DISCOVER crosses a GRE tunnel.  Each test edits the files an
operator would collect (rendered by ``verify render``), reads them back with the
snapshot reader, and states the verdict worked out by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from properties.dhcp import check_dhcp
from verifier.cli import main
from verifier.deployment import Deployment, load_example, load_snapshot
from verifier.verdict import Verdict


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dhcp") / "seed"
    assert main(["render", "--example", "seed-gre", "--out", str(path)]) == 0
    return path


def edited(rendered: Path, tmp_path: Path, file: str, old: str, new: str) -> Deployment:
    """The snapshot with ``old`` (which must occur) replaced by ``new`` in one file."""
    snap = tmp_path / "snap"
    shutil.copytree(rendered, snap)
    target = snap / file
    text = target.read_text()
    assert old in text, f"{old!r} not in {file}"
    target.write_text(text.replace(old, new))
    return load_snapshot(snap)


def failed_vms(v: Verdict) -> set[str]:
    return {name for name in ("vm-a1", "vm-a2", "vm-b1", "vm-b2", "vm-c1") if name in v.summary}


def test_healthy_example_holds() -> None:
    v = check_dhcp(load_example("seed-gre"))
    assert v.status == "holds", (v.summary, v.reasons)
    assert "all 5 VM port(s)" in v.summary
    assert v.stats["ports"] == 5


def test_rendered_snapshot_holds(rendered: Path) -> None:
    assert check_dhcp(load_snapshot(rendered)).status == "holds"


def test_tunnel_flow_missing_on_the_network_node_fails_for_that_networks_vms(rendered: Path, tmp_path: Path) -> None:
    """Without table 3's tun_id=0x266 flow on the network node, tenant-a's frames from the compute
    nodes die in the network node's br-tun (table miss drops): vm-a1 and vm-a2 get no lease; the
    other networks are untouched."""
    flow = "priority=1,tun_id=0x266 actions=mod_vlan_vid:3,resubmit(,10)"
    d = edited(
        rendered,
        tmp_path,
        "hosts/network/ovs-ofctl-dump-flows-br-tun.txt",
        flow,
        "priority=1,tun_id=0x999 actions=drop",
    )
    v = check_dhcp(d)
    assert v.status == "violated"
    assert failed_vms(v) == {"vm-a1", "vm-a2"}
    assert v.counterexamples
    for ex in v.counterexamples:
        last = ex.hops[-1]
        assert (last.host, last.device) == ("network", "br-tun"), ex.outcome
        assert ex.outcome.startswith("dropped")


def test_firewall_without_the_dhcp_client_rules_blocks_one_vm(rendered: Path, tmp_path: Path) -> None:
    """vm-a1's egress chain loses its "Allow DHCP client traffic" rules: its DISCOVER falls to the
    chain's final drop in qbr6a2f8d4c-0b; every other port is fine."""
    snap = tmp_path / "fw"
    shutil.copytree(rendered, snap)
    path = snap / "hosts" / "compute1" / "iptables-save.txt"
    lines = path.read_text().splitlines()
    keep = [x for x in lines if not (x.startswith("-A neutron-openvswi-o6a2f8d4c-0 ") and "Allow DHCP client" in x)]
    assert len(lines) - len(keep) == 2
    path.write_text("\n".join(keep) + "\n")
    v = check_dhcp(load_snapshot(snap))
    assert v.status == "violated"
    assert failed_vms(v) == {"vm-a1"}
    (ex,) = [e for e in v.counterexamples if "reaches no DHCP server" in e.title]
    assert (ex.hops[-1].host, ex.hops[-1].device) == ("compute1", "qbr6a2f8d4c-0b")


def test_vm_port_in_another_networks_vlan_reaches_the_wrong_dhcp_server(rendered: Path, tmp_path: Path) -> None:
    """vm-a1's qvo tagged with B's local VLAN (2) on compute1: its DISCOVER is flooded with B's key and
    reaches B's DHCP server, and A's server never hears it."""
    d = edited(
        rendered,
        tmp_path,
        "hosts/compute1/ovs-vsctl-show.txt",
        "Port qvo6a2f8d4c-0b\n            tag: 1",
        "Port qvo6a2f8d4c-0b\n            tag: 2",
    )
    v = check_dhcp(d)
    assert v.status == "violated"
    assert "vm-a1" in failed_vms(v)
    titles = [c.title for c in v.counterexamples]
    assert any("another network" in t for t in titles)
    assert any("reaches no DHCP server of its network" in t for t in titles)


def test_without_the_compute_nodes_firewall_rules_dhcp_is_unknown_not_violated(rendered: Path, tmp_path: Path) -> None:
    """No iptables-save.txt on compute1: what its qbr firewalls do is unknown, so its VMs' DHCP is
    undecided (never a failure: nothing was seen to drop the DISCOVER)."""
    snap = tmp_path / "no-iptables"
    shutil.copytree(rendered, snap)
    (snap / "hosts" / "compute1" / "iptables-save.txt").unlink()
    v = check_dhcp(load_snapshot(snap))
    assert v.status == "unknown", v.summary
    assert not v.counterexamples
    assert any("vm-a1" in r and "iptables" in r for r in v.reasons)


def test_without_namespace_files_the_reply_is_unknown(rendered: Path, tmp_path: Path) -> None:
    """Only the OVS files of the network node: the DISCOVER is seen to reach each DHCP port, but what
    dnsmasq answers and where the reply goes cannot be known."""
    snap = tmp_path / "ovs-only"
    shutil.copytree(rendered, snap)
    shutil.rmtree(snap / "hosts" / "network" / "netns")
    v = check_dhcp(load_snapshot(snap))
    assert v.status == "unknown"
    assert v.reasons and all("reply is unknown" in r for r in v.reasons)
