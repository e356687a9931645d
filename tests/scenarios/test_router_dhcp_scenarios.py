"""Router, DHCP and floating-IP scenarios built with the real components, checked by the properties.

README: router/DHCP scenarios
=============================

Each scenario starts from the built-in ``seed-gre`` example (its
``neutron.json``, possibly edited the way an operator's API calls would
change it) rendered as Neutron's agents program it, and builds it for real:

* the OVS side in one userspace OVS sandbox per host (``support.ovs_network.
  OvsHosts``, as the isolation scenarios do), broken with ordinary
  ``ovs-vsctl``/``ovs-ofctl`` commands;
* the Linux side in real network namespaces (``support.netns_lab.Lab``): one
  lab namespace per qrouter-/qdhcp- namespace of the network node, holding
  its interfaces (veths with the IR's names, MACs and MTUs, their peers in
  one wire namespace per host standing for br-int), addresses,
  routes (``Lab.apply_ir``) and iptables (``iptables-restore`` of the
  rendered rules); and one lab namespace per host standing for its root
  namespace, loaded with the host's rendered iptables (the hybrid firewall
  on the compute hosts).  Broken with ordinary ``iptables`` commands run
  inside them.

The snapshot is then collected *from the real components*: OVS files from
the switches (``support.collect.collect_snapshot``); ``ip addr``, ``ip
route`` (table main, as docs/snapshot.md's collection and the rendered
snapshot have it) and ``iptables-save`` of every qrouter-/qdhcp- namespace
from the kernel, written under the namespace's *Neutron* name (the lab's
kernel names are ``vl-<random>-<name>``, so nothing on the machine is
touched); each host's ``iptables-save.txt`` from its stand-in root
namespace.  Only the hosts' root ``ip-addr.txt``/``ip-route.txt`` and
``brctl-show.txt`` stay rendered (no qbr/qvb/tap devices are built).  The
properties (``check_dhcp``, ``check_floating_ip``, ``check_isolation``)
read that snapshot; each verdict is compared with one worked out by hand in
the test's docstring.

Seed facts used below (network node = ``network``): router-tenant-a
(``qrouter-71c3e9a5-...``) has ``qr-2d9c6b4e-5f`` 10.0.22.1/24 on
net-tenant-a (GRE key 0x266, local VLAN 3 on the network node),
``qr-4f1e8a2d-6b`` 10.0.33.1/24 on net-tenant-c (0x359) and
``qg-0b7e3c95-4d`` 203.0.113.11/24 + FIP 203.0.113.101/32 -> vm-a1
10.0.22.202 (compute1, ``qvo6a2f8d4c-0b``, VLAN 1; security groups default
and "web": tcp 22 and 80 from anywhere).  router-tenant-b has FIP
203.0.113.102 -> vm-b1.  DHCP: ``tap15865c29-9b`` (net-tenant-a, 10.0.22.201),
``tap57a9e3c1-2b`` (net-tenant-b), ``tape1b4d7f0-3a`` (net-tenant-c).
vm-a2 (compute2) is the other tenant-a VM, vm-c1 (compute2) the tenant-c VM.

Run time: about 5 s per scenario class (sandboxes 0.45 s, eight lab
namespaces 0.5 s, collection 0.2 s, the three properties up to 4 s), 35 s
for the module; the terminal summary prints the steps.
"""

from __future__ import annotations

import copy
import functools
import io
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from linux.conftest import require_netns

from oracle.conftest import require_ovs
from properties.dhcp import check_dhcp
from properties.floating_ip import check_floating_ip
from properties.isolation import check_isolation
from support.collect import collect_snapshot
from support.netns_lab import Lab, LabError
from support.ovs_network import OvsHosts
from verifier import ir
from verifier.cli import main
from verifier.deployment import Deployment, load_snapshot
from verifier.neutron.model import Neutron, parse_neutron
from verifier.neutron.render_firewall import ipsets
from verifier.neutron.render_ovs import render_dataplane
from verifier.snapshot.writer import snapshot_files
from verifier.verdict import Counterexample, Verdict

pytestmark = pytest.mark.oracle

NET, C1, C2 = "network", "compute1", "compute2"
A, B, C = "tenant-a", "tenant-b", "tenant-c"
ROUTER_A = "qrouter-71c3e9a5-2d8b-4f64-9e1a-5b7c0d3f2e98"
ROUTER_B = "qrouter-86d4f0b2-3e9c-4a75-8f2b-6c8d1e4a3f09"
DHCP_NS_A = "qdhcp-d24963da-5221-481e-adf5-fe033d6e0b4e"
QR_A, QR_C, QG_A = "qr-2d9c6b4e-5f", "qr-4f1e8a2d-6b", "qg-0b7e3c95-4d"
QR_A_PORT_ID = "2d9c6b4e"
VM_A1_QVO = "qvo6a2f8d4c-0b"
KEY_A = 0x266
FIP_A, FIP_B = "203.0.113.101", "203.0.113.102"
VM_A1_IP = "10.0.22.202"
WEB_A = "2e6b9c4f-7a0d-4e3b-85f8-1f4a7d0e3b69"
DEAD_VLAN = 4095
DNAT_A = ["-d", f"{FIP_A}/32", "-j", "DNAT", "--to-destination", VM_A1_IP]
ALLOW_AC = [(A, C)]


# ---------------------------------------------------------------- building a scenario for real


@dataclass
class Built:
    """One scenario running for real: the switches, the namespaces, the Neutron view and dataplane they came from."""

    hosts: OvsHosts
    lab: Lab
    neutron_json: dict[str, Any]
    dataplane: ir.Dataplane


@dataclass
class ScenarioRun:
    """A built scenario, its snapshot collected from the real components, and the properties' verdicts."""

    built: Built
    snapshot: Path
    deployment: Deployment
    dhcp: Verdict
    fip: Verdict
    isolation: Verdict
    isolation_allowed: Verdict
    seconds: dict[str, float]


def render(neutron_json: dict[str, Any]) -> tuple[Neutron, ir.Dataplane]:
    """The dataplane Neutron's agents program for this API view (the ``verify render`` path)."""
    neutron = parse_neutron(neutron_json, "scenario neutron.json")
    return neutron, render_dataplane(neutron)


def _root(host: str) -> str:
    """The lab namespace standing for a host's root namespace."""
    return f"root-{host}"


def build_linux(lab: Lab, dataplane: ir.Dataplane, neutron: Neutron) -> None:
    """Every qrouter-/qdhcp- namespace of every host, and each host's root iptables, in real namespaces.

    A namespace's links are veth interfaces named, addressed and sized as
    the IR says, their peers in one ``wire-<host>`` namespace per host (the
    lab kernel may lack the dummy driver; the peers stand for br-int, which
    runs in the userspace sandbox).  A kernel without an iptables match the
    rules need skips the scenario loudly.  The hybrid firewall's remote-group
    rules match ipsets (``NIPv4<group id>``): they are created in the host's
    stand-in namespace with the members the OVS agent puts in them.
    """
    sets = ipsets(neutron)
    for host in dataplane.hosts:
        wire, wires = f"wire-{host.name}", 0
        if host.namespaces:
            lab.add_namespace(wire)
        for ns in host.namespaces:
            lab.add_namespace(ns.name, router=ns.name.startswith("qrouter-"))
            for link in ns.links:
                if link.name == "lo":
                    continue
                wires += 1
                veth = functools.partial(lab.veth, mac_a=link.mac, mtu=link.mtu)
                _lab_step(veth, (ns.name, link.name), (wire, f"w{wires}"))
            _lab_step(lab.apply_ir, ns.name, ns)
        if host.netfilter is not None:
            lab.add_namespace(_root(host.name))
            commands = [f"create {name} hash:net family inet" for name in sets]
            commands += [f"add {name} {ip}" for name, members in sets.items() for ip in members]
            restore = functools.partial(lab.run, stdin="\n".join(commands) + "\n")
            _lab_step(restore, _root(host.name), "ipset", "restore")
            _lab_step(lab.iptables_restore, _root(host.name), host.netfilter)


def _lab_step(fn: Callable[..., object], *args: Any) -> None:
    try:
        fn(*args)
    except LabError as exc:
        pytest.skip(f"REAL LINUX CANNOT BUILD THE SCENARIO (kernel feature missing?): {exc}")


def collect(built: Built, out: Path) -> None:
    """The snapshot of the running scenario: OVS files from the switches, Linux files from the kernel.

    Rendered (the only files not collected): each host's root ``ip-addr.txt``
    and ``ip-route.txt`` and ``brctl-show.txt``.
    """
    files = {
        rel: text for rel, text in snapshot_files(built.dataplane, built.neutron_json).items() if "/ovs-" not in rel
    }
    with tempfile.TemporaryDirectory(prefix="ovs-") as tmp:
        real_ovs = Path(tmp) / "snap"
        collect_snapshot(built.hosts, built.dataplane, built.neutron_json, real_ovs)
        for path in real_ovs.glob("hosts/*/ovs-*.txt"):
            files[str(path.relative_to(real_ovs))] = path.read_text(encoding="utf-8")
    for host in built.dataplane.hosts:
        base = f"hosts/{host.name}"
        for rel in [rel for rel in files if rel.startswith(f"{base}/netns/")]:
            del files[rel]
        for name in built.lab.namespaces:
            if name.startswith(("qrouter-", "qdhcp-")) and host.namespace(name) is not None:
                files[f"{base}/netns/{name}/ip-addr.txt"] = built.lab.ip(name, "addr")
                files[f"{base}/netns/{name}/ip-route.txt"] = built.lab.ip(name, "route")
                files[f"{base}/netns/{name}/iptables-save.txt"] = built.lab.iptables_save(name)
        if _root(host.name) in built.lab.namespaces:
            files[f"{base}/iptables-save.txt"] = built.lab.iptables_save(_root(host.name))
    for rel, text in files.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")


@pytest.fixture(scope="class")
def scenario(
    request: pytest.FixtureRequest,
    seed_neutron_json: dict[str, Any],
    scenario_timings: dict[str, dict[str, float]],
) -> Iterator[ScenarioRun]:
    """Build the class's scenario for real, break it, collect it, run the three properties."""
    require_ovs()
    require_netns()
    cls = request.cls
    assert cls is not None
    seconds: dict[str, float] = {}

    def lap(step: str, started: float) -> float:
        now = time.perf_counter()
        seconds[step] = now - started
        return now

    t = time.perf_counter()
    neutron_json = copy.deepcopy(seed_neutron_json)
    cls.edit(neutron_json)
    neutron, dataplane = render(neutron_json)
    t = lap("render", t)
    with tempfile.TemporaryDirectory(prefix="router-dhcp-") as tmp, OvsHosts(dataplane) as hosts, Lab() as lab:
        t = lap("start sandboxes", t)
        build_linux(lab, dataplane, neutron)
        t = lap("build namespaces", t)
        cls.break_ovs(hosts)
        cls.break_linux(lab)
        t = lap("break", t)
        built = Built(hosts, lab, neutron_json, dataplane)
        snapshot = Path(tmp) / "snap"
        collect(built, snapshot)
        t = lap("collect", t)
        deployment = load_snapshot(snapshot)
        dhcp, fip = check_dhcp(deployment), check_floating_ip(deployment)
        isolation, allowed = check_isolation(deployment), check_isolation(deployment, allow=ALLOW_AC)
        t = lap("verify", t)
        yield ScenarioRun(built, snapshot, deployment, dhcp, fip, isolation, allowed, seconds)
        t = lap("tests", t)
    lap("stop", t)
    scenario_timings[f"router/dhcp {cls.__name__}"] = seconds


# ---------------------------------------------------------------- reading verdicts


def last_hop(example: Counterexample) -> tuple[str, str, str | None]:
    """(host, device, out_port) of a counterexample's last hop."""
    hop = example.hops[-1]
    return hop.host, hop.device, hop.out_port


def titles(v: Verdict) -> list[str]:
    return [e.title for e in v.counterexamples]


def only(v: Verdict, needle: str) -> Counterexample:
    """The one counterexample whose title mentions ``needle`` (and fail when there are others)."""
    found = [e for e in v.counterexamples if needle in e.title]
    assert len(found) == 1 and len(v.counterexamples) == 1, titles(v)
    return found[0]


def isolation_pairs(v: Verdict) -> set[tuple[str, str]]:
    out = set()
    for e in v.counterexamples:
        left, right = e.title.split(": ", 1)[0].split(" -> ")
        out.add((left, right))
    return out


def describe(v: Verdict) -> str:
    lines = [f"{v.prop}: {v.status}: {v.summary}"]
    for e in v.counterexamples:
        lines.append(f"  {e.title} | last hop {last_hop(e)} | {e.outcome}")
    lines += [f"  reason: {r}" for r in v.reasons]
    return "\n".join(lines)


class _Scenario:
    """A scenario: how the API view is edited before rendering, and how the running components are broken."""

    @staticmethod
    def edit(neutron_json: dict[str, Any]) -> None:
        """Nothing: the API view stays as exported."""

    @staticmethod
    def break_ovs(hosts: OvsHosts) -> None:
        """Nothing: the switches stay as the agents programmed them."""

    @staticmethod
    def break_linux(lab: Lab) -> None:
        """Nothing: the namespaces stay as the agents programmed them."""


def _del_tunnel_flow(hosts: OvsHosts) -> None:
    hosts[NET].ofctl("del-flows", "br-tun", f"table=3,tun_id={KEY_A:#x}")


def _del_dnat(lab: Lab) -> None:
    lab.run(ROUTER_A, "iptables", "-t", "nat", "-D", "neutron-l3-agent-PREROUTING", *DNAT_A)


def _drop_router_interface(neutron_json: dict[str, Any]) -> None:
    neutron_json["ports"] = [p for p in neutron_json["ports"] if not p["id"].startswith(QR_A_PORT_ID)]


def _web_22_only(neutron_json: dict[str, Any]) -> None:
    """Delete the tcp/80 rule of tenant-a's "web" group (both where the API lists it: the rules collection,
    which the verifier reads, and the group's embedded copy)."""

    def keep(rule: dict[str, Any]) -> bool:
        return not (rule["security_group_id"] == WEB_A and rule.get("port_range_min") == 80)

    (group,) = [g for g in neutron_json["security_groups"] if g["id"] == WEB_A]
    before = len(neutron_json["security_group_rules"])
    neutron_json["security_group_rules"] = [r for r in neutron_json["security_group_rules"] if keep(r)]
    group["security_group_rules"] = [r for r in group["security_group_rules"] if keep(r)]
    assert len(neutron_json["security_group_rules"]) == before - 1


def _dead_port(hosts: OvsHosts) -> None:
    hosts[C1].vsctl("set", "Port", VM_A1_QVO, f"tag={DEAD_VLAN}")


# ---------------------------------------------------------------- hand-worked expectations shared by the scenarios

QBR_A1, QBR_A2, QBR_C1 = ("compute1", "qbr6a2f8d4c-0b"), ("compute2", "qbr8e4b1f07-2c"), ("compute2", "qbrf7c0e3a6-9b")
DHCP_NS_C = "qdhcp-3b0c7f57-91d2-4e8a-b6f3-0c5e2d7a9148"
TENANT_A_ENDS = {QBR_A1, QBR_A2, (NET, DHCP_NS_A)}
TENANT_C_ENDS = {QBR_C1, (NET, DHCP_NS_C)}


def assert_isolation_through_router_a(run: ScenarioRun, pairs: set[tuple[str, str]]) -> None:
    """Isolation is violated for exactly ``pairs`` (tenant-a/tenant-c), each path crossing router-tenant-a,
    ending at a tenant-c (resp. tenant-a) VM's qbr or DHCP namespace; with the pair allowed it holds."""
    v = run.isolation
    assert v.status == "violated" and isolation_pairs(v) == pairs, describe(v)
    for e in v.counterexamples:
        assert ROUTER_A in {hop.device for hop in e.hops}, describe(v)
        host, device, _ = last_hop(e)
        ends = TENANT_C_ENDS if e.title.startswith(f"{A} ->") else TENANT_A_ENDS
        assert (host, device) in ends, describe(v)
    assert run.isolation_allowed.status == "holds", describe(run.isolation_allowed)


def assert_holds(v: Verdict) -> None:
    assert v.status == "holds" and not v.counterexamples, describe(v)


def fip_passed(v: Verdict, fip: str) -> str:
    """The probes the summary says get through ``fip`` with security groups applied."""
    part = v.summary.split(f"{fip} -> ", 1)[1]
    return part.split("with security groups ", 1)[1].split(" (blocked: ", 1)[0]


def fip_blocked(v: Verdict, fip: str) -> str:
    part = v.summary.split(f"{fip} -> ", 1)[1]
    return part.split(" (blocked: ", 1)[1].split(")", 1)[0]


# ---------------------------------------------------------------- the scenarios


class TestHealthy(_Scenario):
    """The seed as rendered, built for real; nothing broken."""

    def test_snapshot_linux_files_come_from_the_kernel(self, scenario: ScenarioRun) -> None:
        """The namespaces' files are what the real ``ip``/``iptables-save`` print (veth ``@ifN`` names,
        iptables-save's header comment), under the Neutron names, and the reader parses them to the IR's
        addresses and routes."""
        base = scenario.snapshot / "hosts" / NET / "netns" / ROUTER_A
        assert f"{QR_A}@if" in (base / "ip-addr.txt").read_text()
        assert "# Generated by iptables-save" in (base / "iptables-save.txt").read_text()
        assert "# Generated by iptables-save" in (scenario.snapshot / "hosts" / C1 / "iptables-save.txt").read_text()
        host = scenario.deployment.dataplane.host(NET)
        assert host is not None
        ns = host.namespace(ROUTER_A)
        assert ns is not None and ns.routes is not None
        assert {(a.interface, a.address) for a in ns.addresses} >= {
            (QR_A, "10.0.22.1"), (QR_C, "10.0.33.1"), (QG_A, "203.0.113.11"), (QG_A, FIP_A),
        }  # fmt: skip
        assert {r.destination for r in ns.routes} == {"default", "10.0.22.0/24", "10.0.33.0/24", "203.0.113.0/24"}

    def test_dhcp_holds(self, scenario: ScenarioRun) -> None:
        """Holds: every VM's DISCOVER is flooded in its local VLAN, carried with its network's key to the
        network node, mapped by t3 to the DHCP port's VLAN and delivered to that qdhcp- namespace only;
        dnsmasq's reply goes back the same way (the hybrid firewall's DHCP rules let it in)."""
        assert_holds(scenario.dhcp)

    def test_floating_ip_holds(self, scenario: ScenarioRun) -> None:
        """Holds: 203.0.113.101 -> vm-a1 and 203.0.113.102 -> vm-b1: PREROUTING DNAT in the router, routed
        out of qr- with key 0x266/0x123 to compute1, the "web" group admits tcp/22 and tcp/80 (443, 53,
        icmp are blocked by the firewall, not the dataplane); outbound float-snat; vm-a2 and vm-c1 leave
        SNATed to 203.0.113.11."""
        v = scenario.fip
        assert_holds(v)
        assert fip_passed(v, FIP_A) == fip_passed(v, FIP_B) == "tcp/22, tcp/80"

    def test_isolation_violated_only_through_router_a(self, scenario: ScenarioRun) -> None:
        """Violated for tenant-a <-> tenant-c, both ways, through router-tenant-a (its qr- on net-tenant-c is
        the attached subnet of another project): vm-a1/vm-a2 route via 10.0.22.1 to 10.0.33.0/24 and reach
        vm-c1 or tenant-c's DHCP namespace; vm-c1 routes back the same way.  tenant-b is untouched.  With
        tenant-a:tenant-c allowed it holds."""
        assert_isolation_through_router_a(scenario, {(A, C), (C, A)})

    def test_verify_check_all_exit_codes(self, scenario: ScenarioRun) -> None:
        """``verify check all --snapshot DIR --allow tenant-a:tenant-c`` exits 0; without the allow, 1."""
        for extra, code in ((["--allow", f"{A}:{C}"], 0), ([], 1)):
            out, err = io.StringIO(), io.StringIO()
            got = main(["check", "all", "--snapshot", str(scenario.snapshot), *extra], out, err)
            assert got == code, out.getvalue() + err.getvalue()


class TestSubnetOfAnotherProjectOnRouter(_Scenario):
    """router-tenant-a (project tenant-a) has an interface on net-tenant-c (project tenant-c): the seed itself.

    Nothing is broken: ``qr-4f1e8a2d-6b`` 10.0.33.1/24 is a real port of the router namespace.
    """

    def test_isolation_without_allow(self, scenario: ScenarioRun) -> None:
        """Violated for exactly (tenant-a, tenant-c) and (tenant-c, tenant-a): the router forwards between
        its two qr- interfaces (ip_forward 1, no FORWARD rule stops it; the scope marks are the same
        0x4000000 on both); the last hop is a tenant-c (resp. tenant-a) VM's qbr or DHCP namespace."""
        assert_isolation_through_router_a(scenario, {(A, C), (C, A)})

    def test_isolation_with_allow(self, scenario: ScenarioRun) -> None:
        """Holds with allow=[(tenant-a, tenant-c)]: the only crossing paths are of the allowed pair, and they
        become findings."""
        v = scenario.isolation_allowed
        assert_holds(v)
        assert v.findings, describe(v)


class TestTunnelFlowMissingOnNetworkNode(_Scenario):
    """net-tenant-a's tunnel flow is gone from the network node's br-tun.

    Real command (network): ``ovs-ofctl del-flows br-tun table=3,tun_id=0x266``.
    """

    break_ovs = staticmethod(_del_tunnel_flow)

    def test_flow_is_gone(self, scenario: ScenarioRun) -> None:
        dump = (scenario.snapshot / "hosts" / NET / "ovs-ofctl-dump-flows-br-tun.txt").read_text()
        assert f"tun_id={KEY_A:#x}" not in dump.replace("tun_id=0x266/", "")

    def test_dhcp_fails_for_tenant_a_vms(self, scenario: ScenarioRun) -> None:
        """Violated for vm-a1 (compute1) and vm-a2 (compute2), nobody else: their DISCOVER arrives at the
        network node with key 0x266, t3 has no flow for it, and br-tun drops it.  Last hop: (network,
        br-tun), dropped.  vm-b*/vm-c1 keep their keys' t3 flows."""
        v = scenario.dhcp
        assert v.status == "violated", describe(v)
        assert sorted(e.title.split(":", 1)[0] for e in v.counterexamples) == ["vm-a1", "vm-a2"], describe(v)
        for e in v.counterexamples:
            assert last_hop(e)[:2] == (NET, "br-tun") and e.outcome.startswith("dropped"), describe(v)

    def test_floating_ip_fails_outbound(self, scenario: ScenarioRun) -> None:
        """Violated: 203.0.113.101's inbound still works (router -> network t22 -> 0x266 -> compute1 t3 ->
        vm-a1), but vm-a1's outbound packet never reaches the router (dropped at the network node's t3), nor
        does vm-a2's SNAT traffic.  Only copies flooded in net-tenant-a get anywhere: the furthest hop is the
        other tenant-a VM's qbr.  203.0.113.102 (tenant-b) is fine."""
        v = scenario.fip
        assert v.status == "violated", describe(v)
        assert len(v.counterexamples) == 2, describe(v)
        fip, snat = v.counterexamples
        assert fip.title.startswith(f"floating IP {FIP_A} -> vm-a1") and "outbound" in fip.title, describe(v)
        assert last_hop(fip)[:2] == QBR_A2, describe(v)
        assert snat.title.startswith("vm-a2 (10.0.22.203) behind router router-tenant-a: outbound"), describe(v)
        assert last_hop(snat)[:2] == QBR_A1, describe(v)
        assert FIP_B not in v.summary

    def test_isolation(self, scenario: ScenarioRun) -> None:
        """Violated for tenant-c -> tenant-a only: vm-c1 still reaches router-tenant-a (0x359 is mapped) and
        the router sends into net-tenant-a towards compute1/compute2, whose t3 still maps 0x266; tenant-a's
        VMs cannot reach the router any more (their frames die in the network node's t3), and tenant-a's
        DHCP namespace is on the network node.  Holds with the pair allowed."""
        assert_isolation_through_router_a(scenario, {(C, A)})
        (e,) = scenario.isolation.counterexamples
        assert last_hop(e)[:2] in {QBR_A1, QBR_A2}


class TestDnatRuleMissing(_Scenario):
    """The FIP's DNAT rule is gone from router-tenant-a's nat table.

    Real command (in ``qrouter-71c3e9a5-...``): ``iptables -t nat -D neutron-l3-agent-PREROUTING -d
    203.0.113.101/32 -j DNAT --to-destination 10.0.22.202``.
    """

    break_linux = staticmethod(_del_dnat)

    def test_rule_is_gone(self, scenario: ScenarioRun) -> None:
        text = (scenario.snapshot / "hosts" / NET / "netns" / ROUTER_A / "iptables-save.txt").read_text()
        assert "-A neutron-l3-agent-PREROUTING -d 203.0.113.101/32 -j DNAT" not in text
        assert "-A neutron-l3-agent-OUTPUT -d 203.0.113.101/32 -j DNAT" in text

    def test_floating_ip_inbound_fails_at_the_router(self, scenario: ScenarioRun) -> None:
        """Violated for 203.0.113.101 only, inbound: the packet reaches the router on qg, no PREROUTING rule
        rewrites it, 203.0.113.101/32 is the router's own address (local table), so it is delivered to the
        router's own stack, with or without security groups.  Last hop: (network, qrouter-71c3e9a5-...,
        local stack).  Outbound still works (float-snat is intact), 203.0.113.102 too."""
        e = only(scenario.fip, f"floating IP {FIP_A} -> vm-a1")
        assert "nothing from outside reaches the VM" in e.title
        assert last_hop(e) == (NET, ROUTER_A, "(local stack)")
        assert FIP_B not in scenario.fip.summary

    def test_dhcp_holds(self, scenario: ScenarioRun) -> None:
        """Holds: nothing on the DHCP path (L2 only, qdhcp- namespaces) changed."""
        assert_holds(scenario.dhcp)

    def test_isolation_as_healthy(self, scenario: ScenarioRun) -> None:
        """As healthy: tenant-a <-> tenant-c through router-tenant-a (DNAT plays no part in it)."""
        assert_isolation_through_router_a(scenario, {(A, C), (C, A)})


class TestFloatingIpSubnetNotOnRouter(_Scenario):
    """router-tenant-a's interface on net-tenant-a (port ``2d9c6b4e-...``, 10.0.22.1) removed from neutron.json
    and the seed re-rendered: no ``qr-2d9c6b4e-5f`` in br-int or in the router namespace, no 10.0.22.0/24
    route there; the FIP 203.0.113.101 -> vm-a1 10.0.22.202 (router-tenant-a) and its NAT rules stay."""

    edit = staticmethod(_drop_router_interface)

    def test_router_has_no_leg_on_the_subnet(self, scenario: ScenarioRun) -> None:
        host = scenario.deployment.dataplane.host(NET)
        assert host is not None
        ns = host.namespace(ROUTER_A)
        assert ns is not None and ns.routes is not None
        assert ns.link(QR_A) is None and "10.0.22.0/24" not in {r.destination for r in ns.routes}

    def test_floating_ip_violated(self, scenario: ScenarioRun) -> None:
        """Violated for 203.0.113.101: inbound, DNAT to 10.0.22.202 happens, but the router has no route to
        10.0.22.0/24 but the default, so the packet goes back out of qg towards 203.0.113.1: last hop
        (network, qrouter-71c3e9a5-..., out qg-0b7e3c95-4d), to the external network.  Outbound: no router
        interface holds vm-a1's gateway 10.0.22.1 (a "fails" finding: no packet to show).  vm-a2 is no longer routed (not
        checked by (c)); 203.0.113.102 works."""
        v = scenario.fip
        e = only(v, f"floating IP {FIP_A} -> vm-a1")
        assert "nothing from outside reaches the VM" in e.title
        assert last_hop(e) == (NET, ROUTER_A, QG_A)
        fails = [f.text for f in v.findings if f.kind == "fails"]
        assert any("no router interface holds the gateway IP" in t for t in fails), describe(v)
        assert FIP_B not in v.summary

    def test_dhcp_holds(self, scenario: ScenarioRun) -> None:
        """Holds: the DHCP ports and flows of every network are unchanged."""
        assert_holds(scenario.dhcp)

    def test_isolation_holds_without_allow(self, scenario: ScenarioRun) -> None:
        """Holds even without the allow: router-tenant-a no longer has a leg in net-tenant-a, so nothing
        joins tenant-a and tenant-c (vm-c1 -> 10.0.22.x takes the router's default route out of qg)."""
        assert_holds(scenario.isolation)


class TestSecurityGroupOpensPort22Only(_Scenario):
    """tenant-a's "web" group loses its tcp/80 rule in neutron.json (only tcp/22 left); compute1's hybrid
    firewall re-rendered and loaded into the real namespace standing for compute1's root namespace."""

    edit = staticmethod(_web_22_only)

    def test_firewall_collected(self, scenario: ScenarioRun) -> None:
        text = (scenario.snapshot / "hosts" / C1 / "iptables-save.txt").read_text()
        chain = "neutron-openvswi-i6a2f8d4c-0"
        assert f"-A {chain} -p tcp -m tcp --dport 22 -j RETURN" in text
        assert f"-A {chain} -p tcp -m tcp --dport 80 -j RETURN" not in text

    def test_floating_ip_holds_with_tcp_22_only(self, scenario: ScenarioRun) -> None:
        """Holds: a FIP works when some probe gets through; tcp/22 does.  The summary says tcp/22 only passes
        for 203.0.113.101, tcp/80 is now blocked (by the firewall; the dataplane alone passes everything),
        while vm-b1's own "web" group (tenant-b's) still admits tcp/22 and tcp/80."""
        v = scenario.fip
        assert_holds(v)
        assert fip_passed(v, FIP_A) == "tcp/22"
        assert "tcp/80" in fip_blocked(v, FIP_A)
        assert fip_passed(v, FIP_B) == "tcp/22, tcp/80"

    def test_dhcp_and_isolation_as_healthy(self, scenario: ScenarioRun) -> None:
        assert_holds(scenario.dhcp)
        assert_isolation_through_router_a(scenario, {(A, C), (C, A)})


class TestDeadPort(_Scenario):
    """vm-a1's port on the dead VLAN, as Neutron tags a port it cannot bind.

    Real command (compute1): ``ovs-vsctl set Port qvo6a2f8d4c-0b tag=4095``.
    """

    break_ovs = staticmethod(_dead_port)

    def test_dhcp_fails_for_vm_a1_only(self, scenario: ScenarioRun) -> None:
        """Violated for vm-a1 only: its DISCOVER enters NORMAL in VLAN 4095, leaves on patch-tun tagged 4095,
        and compute1's br-tun has no t22 flow for VLAN 4095: dropped there (last hop (compute1, br-tun)).
        vm-a2 (compute2) still gets DHCP."""
        e = only(scenario.dhcp, "vm-a1")
        assert last_hop(e)[:2] == (C1, "br-tun") and e.outcome.startswith("dropped")

    def test_floating_ip_fails_both_ways(self, scenario: ScenarioRun) -> None:
        """Violated for 203.0.113.101, both directions.  Inbound: the router sends it with 0x266 to compute1,
        t3 puts it in VLAN 1, where vm-a1's port no longer is; it also floods to compute2, so the furthest
        hop is vm-a2's qbr.  Outbound: vm-a1's packet dies in compute1's br-tun (VLAN 4095).  203.0.113.102
        and vm-a2's SNAT are fine."""
        v = scenario.fip
        assert v.status == "violated", describe(v)
        inbound = [e for e in v.counterexamples if "nothing from outside reaches the VM" in e.title]
        outbound = [e for e in v.counterexamples if "outbound" in e.title]
        assert len(inbound) == len(outbound) == 1 and len(v.counterexamples) == 2, describe(v)
        assert all(e.title.startswith(f"floating IP {FIP_A} -> vm-a1") for e in v.counterexamples)
        assert last_hop(inbound[0])[:2] == QBR_A2
        assert last_hop(outbound[0])[:2] == (C1, "br-tun")

    def test_isolation(self, scenario: ScenarioRun) -> None:
        """Still violated for tenant-a <-> tenant-c through router-tenant-a, now only via vm-a2 (vm-a1 reaches
        nothing beyond compute1's br-tun).  Holds with the pair allowed."""
        assert_isolation_through_router_a(scenario, {(A, C), (C, A)})
        ac = next(e for e in scenario.isolation.counterexamples if e.title.startswith(f"{A} ->"))
        assert "vm-a2" in ac.source
