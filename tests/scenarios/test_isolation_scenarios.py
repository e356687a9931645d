"""Tenant-isolation scenarios built for real in Open vSwitch, checked by ``verify``, replayed in OVS.

README: isolation scenarios
===========================

Each scenario starts from the rendered ``seed-gre`` example: one userspace
OVS sandbox per host (``support.ovs_network.OvsHosts``: network, compute1,
compute2, with every bridge, port, tag, GRE tunnel and flow Neutron's agents
program).  It then breaks the running switches the way an operator or a
buggy agent could, with ordinary ``ovs-vsctl``/``ovs-ofctl`` commands;
collects a snapshot *from the real switches* (``support.collect``:
``ovs-vsctl show``, ``ovs-ofctl show``/``dump-flows`` per bridge); and runs
``verify check isolation --snapshot DIR --json`` through ``verifier.cli.main``,
once with ``neutron.json`` (projects known) and once without it (segment
mode: networks are the tunnel-key segments the dumps reveal).  Each verdict
is compared with one worked out by hand, written in the test's docstring.
Every counterexample is then replayed in real OVS (``replay_counterexample``:
its learned-flow ``setup`` installed with ``ovs-ofctl``, the packet traced
across hosts, GRE included) and must reach the same device on the same host.
A second, independent check sends ordinary frames (ARP, broadcast, unknown
unicast) from every VM through real OVS with no learned state and compares
the foreign ports they reach with the hand reasoning.

Run them with ``python -m pytest tests/scenarios -q`` (marker ``oracle``;
needs ``openvswitch-switch``, skipped loudly without it and failed in CI).
They take a few seconds: every scenario class starts its three sandboxes
once (about 0.5 s), the verifier needs about 0.3 s per snapshot; the
terminal summary prints the time of each step.

The seed (checked by ``test_seed_facts_used_by_the_hand_reasoning``)
--------------------------------------------------------------------
GRE keys: tenant-a 0x266, tenant-b 0x123, tenant-c 0x359 (all three
networks use 10.0.22.0/24 or 10.0.33.0/24; addresses play no part).

* compute1 (10.10.10.12): vm-a1 ``qvo6a2f8d4c-0b`` (ofport 2, tag 1),
  vm-b1 ``qvo9c3d7e1f-4a`` (3, tag 2), vm-b2 ``qvob5e2a8d7-1c`` (4, tag 2);
  br-tun t3 0x266->VLAN 1, 0x123->VLAN 2; t22 VLAN 1->0x266, VLAN 2->0x123,
  out ``gre-0a0a0a0b`` (2, to network) and ``gre-0a0a0a0d`` (3, to compute2).
* compute2 (10.10.10.13): vm-a2 ``qvo8e4b1f07-2c`` (2, tag 2), vm-c1
  ``qvof7c0e3a6-9b`` (3, tag 1); t3 0x266->2, 0x359->1; t22 the reverse,
  out ``gre-0a0a0a0b`` (2) and ``gre-0a0a0a0c`` (3, to compute1).
* network (10.10.10.11): tenant-a router/DHCP ``qr-2d9c6b4e-5f``/
  ``tap15865c29-9b`` (tag 3), tenant-b ``qr-c8a1f5e3-7d``/``tap57a9e3c1-2b``
  (tag 4), tenant-c ``qr-4f1e8a2d-6b``/``tape1b4d7f0-3a`` (tag 1), the two
  router gateways ``qg-*`` (tag 2, public); t3 0x266->3, 0x123->4, 0x359->1.

Facts every hand verdict uses: VM ports have anti-spoof flows (br-int t0 p10
ARP -> t24, p9 anything -> t25 -> t30 -> t58 -> t59 -> t60 NORMAL); NORMAL
keeps VLANs apart, patch-tun is a trunk; br-tun t22 floods to every GRE
port; a receiver maps the key to its own VLAN in t3 (no flow: drop); t10
learns ``(VLAN, eth_src) -> key, in_port`` into t20 and outputs only to
patch-int, so nothing arriving over GRE leaves over GRE again.  Isolation
(DESIGN.md) counts VM ports as sources only and must hold for every learned
state; in segment mode every access port is a source and its segment is the
set of keys its frames leave its host with while nothing is learned (learned
entries are left out of segments on purpose, ``properties.isolation``), but
learned entries still count for what a frame can reach.

Design choice, measured: a fresh ``OvsHosts`` per scenario class costs about
0.5 s (daemons 0.15 s, bridges and flows 0.35 s); resetting one running set
(delete and re-add every bridge) costs 0.42 s and would carry state (MAC
tables, tunnel settings) from one scenario to the next, so each scenario
class starts its own.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from oracle.conftest import require_ovs
from support.collect import DUMP_VARIANTS, collect_snapshot
from support.ovs_network import NetworkTraceError, OvsHosts, replay_counterexample
from verifier import ir
from verifier.cli import main
from verifier.deployment import Deployment
from verifier.header import ETH_TYPE_ARP, ETH_TYPE_IP, parse_mac
from verifier.neutron import naming
from verifier.snapshot.reader import read_snapshot

pytestmark = pytest.mark.oracle

# ---------------------------------------------------------------- the seed, as the hand reasoning uses it

KEY_A, KEY_B, KEY_C = 0x266, 0x123, 0x359
C1, C2, NET = "compute1", "compute2", "network"
VM_A1, VM_B1, VM_B2 = "qvo6a2f8d4c-0b", "qvo9c3d7e1f-4a", "qvob5e2a8d7-1c"
VM_A2, VM_C1 = "qvo8e4b1f07-2c", "qvof7c0e3a6-9b"
QR_A, DHCP_A = "qr-2d9c6b4e-5f", "tap15865c29-9b"
QR_B, DHCP_B = "qr-c8a1f5e3-7d", "tap57a9e3c1-2b"
QR_C, DHCP_C = "qr-4f1e8a2d-6b", "tape1b4d7f0-3a"
LVID = {
    (C1, VM_A1): 1,
    (C1, VM_B1): 2,
    (C1, VM_B2): 2,
    (C2, VM_A2): 2,
    (C2, VM_C1): 1,
    (NET, QR_A): 3,
    (NET, DHCP_A): 3,
    (NET, QR_B): 4,
    (NET, DHCP_B): 4,
    (NET, QR_C): 1,
    (NET, DHCP_C): 1,
}
"""Local VLAN (OVSDB tag) of each tenant device in the seed."""
T3 = {C1: {KEY_A: 1, KEY_B: 2}, C2: {KEY_A: 2, KEY_C: 1}, NET: {KEY_A: 3, KEY_B: 4, KEY_C: 1}}
"""br-tun table 3 of each host: GRE key -> local VLAN."""
GRE_TO = {C1: {NET: "gre-0a0a0a0b", C2: "gre-0a0a0a0d"}, C2: {NET: "gre-0a0a0a0b", C1: "gre-0a0a0a0c"}}
DEAD_VLAN = 4095

A, B, C = "tenant-a", "tenant-b", "tenant-c"
SEG_A, SEG_B, SEG_C = (f"segment tun_id={k:#x}" for k in (KEY_A, KEY_B, KEY_C))
A_PORTS_NET = frozenset({(NET, QR_A), (NET, DHCP_A)})
B_PORTS_NET = frozenset({(NET, QR_B), (NET, DHCP_B)})

Device = tuple[str, str]
"""(host, device name)."""


# ---------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Pair:
    """What the hand reasoning says about one violated ordered pair (projects or segments).

    Every counterexample of the pair must start at one of ``sources`` and end
    at one of ``destinations``; ``needs_learning``: no path exists without a
    learned br-tun entry, so the counterexample must carry ``setup``.
    """

    sources: frozenset[Device]
    destinations: frozenset[Device]
    needs_learning: bool = False


@dataclass(frozen=True)
class Expected:
    """A hand-worked verdict: holds (no pairs, exit 0) or violated for exactly these pairs (exit 1)."""

    pairs: Mapping[tuple[str, str], Pair] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.pairs else 0

    @property
    def status(self) -> str:
        return "violated" if self.pairs else "holds"


HOLDS = Expected()


@dataclass
class ScenarioRun:
    """One scenario built in real OVS: the running hosts, both snapshots and both reports."""

    hosts: OvsHosts
    dataplane: ir.Dataplane
    neutron_json: dict[str, Any]
    snapshot: Path
    segment_snapshot: Path
    exit_code: int
    report: dict[str, Any]
    segment_exit_code: int
    segment_report: dict[str, Any]
    seconds: dict[str, float]


def run_check(snapshot: Path) -> tuple[int, dict[str, Any]]:
    """``verify check isolation --snapshot DIR --json`` through the CLI: (exit code, report)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["check", "isolation", "--snapshot", str(snapshot), "--json"], out, err)
    assert out.getvalue(), f"no JSON report (exit {code}):\n{err.getvalue()}"
    report = json.loads(out.getvalue())
    assert report["exit_code"] == code
    return code, report


def verdict(report: Mapping[str, Any]) -> dict[str, Any]:
    (only,) = report["verdicts"]
    assert only["property"] == "isolation"
    return dict(only)


def pair_of(example: Mapping[str, Any]) -> tuple[str, str]:
    """The (from, to) projects or segments of a counterexample, from its title ``"P -> Q: ..."``."""
    head = example["title"].split(": ", 1)[0]
    left, right = head.split(" -> ")
    return left, right


def source_of(example: Mapping[str, Any]) -> Device:
    first = example["hops"][0]
    return first["host"], first["in_port"]


def destination_of(example: Mapping[str, Any]) -> Device:
    last = example["hops"][-1]
    return last["host"], last["out_port"]


def assert_verdict(code: int, report: Mapping[str, Any], expected: Expected) -> None:
    """The report says exactly what the hand reasoning says."""
    v = verdict(report)
    assert (code, v["status"]) == (expected.exit_code, expected.status), v["summary"]
    examples = v["counterexamples"]
    assert {pair_of(e) for e in examples} == set(expected.pairs), v["summary"]
    for e in examples:
        want = expected.pairs[pair_of(e)]
        assert source_of(e) in want.sources, e["title"]
        assert destination_of(e) in want.destinations, e["title"]
        (src_host, src_device), (dst_host, dst_device) = source_of(e), destination_of(e)
        assert f"{src_device} on {src_host}" in e["source"], e["source"]
        assert f"{dst_device} on {dst_host}" in e["title"].split(" reaches ", 1)[1], e["title"]
        if want.needs_learning:
            assert e["setup"], f"{e['title']}: no path without a learned entry exists, yet no setup is given"


# ---------------------------------------------------------------- building a scenario in real OVS


Mutation = Callable[[OvsHosts, ir.Dataplane], None]


def _cookie(dataplane: ir.Dataplane, host: str, bridge: str) -> int:
    """The agent's cookie on a bridge (what the agent would put on a flow it adds)."""
    h = dataplane.host(host)
    b = h.bridge(bridge) if h is not None else None
    assert b is not None and b.flows
    return b.flows[0].cookie


def _mod_flow(hosts: OvsHosts, host: str, bridge: str, flow: str, expect: str) -> None:
    """``ovs-ofctl --strict mod-flows`` (OpenFlow 1.0, as the old agent and an operator would) and check it took."""
    hosts[host].ofctl("--strict", "mod-flows", bridge, flow)
    head = ",".join(p for p in flow.split(",actions=", 1)[0].split(",") if not p.startswith("priority="))
    dumped = hosts[host].ofctl("dump-flows", bridge, head)
    assert expect in dumped, f"{host}/{bridge}: {flow!r} did not take:\n{dumped}"


def _set_tag(hosts: OvsHosts, host: str, port: str, tag: int) -> None:
    hosts[host].vsctl("set", "Port", port, f"tag={tag}")
    assert hosts[host].vsctl("get", "Port", port, "tag").strip() == str(tag)


def _port_dead_drop(hosts: OvsHosts, dataplane: ir.Dataplane, host: str, port: str) -> None:
    """The flow Neutron's ``port_dead`` adds with the tag 4095 (``drop_port``: table 0, priority 2)."""
    cookie = _cookie(dataplane, host, "br-int")
    hosts[host].ofctl("add-flow", "br-int", f"cookie={cookie:#x},table=0,priority=2,in_port={port},actions=drop")


@pytest.fixture(scope="class")
def scenario(
    request: pytest.FixtureRequest,
    seed_deployment: Deployment,
    seed_neutron_json: dict[str, Any],
    scenario_timings: dict[str, dict[str, float]],
) -> Iterator[ScenarioRun]:
    """Start the seed in real OVS, apply the class's ``mutate``, collect both snapshots, run the checks."""
    require_ovs()
    cls = request.cls
    assert cls is not None
    mutate: Mutation = cls.mutate
    seconds: dict[str, float] = {}
    dataplane = seed_deployment.dataplane

    def lap(step: str, started: float) -> float:
        now = time.perf_counter()
        seconds[step] = now - started
        return now

    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scenario-") as tmp, OvsHosts(dataplane) as hosts:
        t = lap("start sandboxes", t)
        mutate(hosts, dataplane)
        t = lap("mutate", t)
        snapshot, segment_snapshot = Path(tmp) / "with-neutron", Path(tmp) / "segments"
        collect_snapshot(hosts, dataplane, seed_neutron_json, snapshot)
        collect_snapshot(hosts, dataplane, None, segment_snapshot)
        t = lap("collect x2", t)
        code, report = run_check(snapshot)
        t = lap("verify (neutron)", t)
        segment_code, segment_report = run_check(segment_snapshot)
        t = lap("verify (segments)", t)
        yield ScenarioRun(
            hosts,
            dataplane,
            seed_neutron_json,
            snapshot,
            segment_snapshot,
            code,
            report,
            segment_code,
            segment_report,
            seconds,
        )
        t = lap("tests (replays, probes)", t)
    lap("stop sandboxes", t)
    scenario_timings[cls.__name__] = seconds


# ---------------------------------------------------------------- real-OVS probes (no learned state)


def _tenant_devices(neutron_json: Mapping[str, Any]) -> dict[str, str]:
    """Device name -> project, for VM (qvo), DHCP (tap), router interface (qr) and gateway (qg) ports."""
    project = {n["id"]: n["project_id"] for n in neutron_json["networks"]}
    role = {"network:dhcp": "tap", "network:router_interface": "qr", "network:router_gateway": "qg"}
    out = {}
    for p in neutron_json["ports"]:
        owner = p["device_owner"]
        kind = "qvo" if owner.startswith("compute:") else role.get(owner)
        if kind is not None:
            out[naming.device_name(kind, p["id"])] = project[p["network_id"]]
    return out


def _vm_probes(port: Mapping[str, Any]) -> list[dict[str, int]]:
    """Ordinary frames a VM sends: ARP who-has for its gateway, a broadcast, an unknown unicast."""
    mac = parse_mac(port["mac_address"])
    ip = next(a for a in (_ipv4(f["ip_address"]) for f in port["fixed_ips"]) if a is not None)
    gateway = (ip & 0xFFFFFF00) | 1
    arp = {"eth_src": mac, "eth_dst": 0xFFFFFFFFFFFF, "eth_type": ETH_TYPE_ARP, "ip_proto": 1}
    arp |= {"ip_src": ip, "ip_dst": gateway, "arp_sha": mac}
    ipv4 = {"eth_src": mac, "eth_type": ETH_TYPE_IP, "ip_src": ip, "ip_ttl": 64}
    broadcast = ipv4 | {"eth_dst": 0xFFFFFFFFFFFF, "ip_dst": 0xFFFFFFFF, "ip_proto": 17, "tp_src": 68, "tp_dst": 67}
    unicast = ipv4 | {"eth_dst": 0xFA163E000099, "ip_dst": gateway + 200, "ip_proto": 6, "tp_src": 40000, "tp_dst": 22}
    return [arp, broadcast, unicast]


def _ipv4(text: str) -> int | None:
    parts = text.split(".")
    return int.from_bytes(bytes(int(p) for p in parts)) if len(parts) == 4 else None


def probe_pairs(run: ScenarioRun) -> set[tuple[str, str]]:
    """(from project, to project) pairs real OVS connects with ordinary VM frames and no learned state."""
    owners = _tenant_devices(run.neutron_json)
    pairs: set[tuple[str, str]] = set()
    for port in run.neutron_json["ports"]:
        if not port["device_owner"].startswith("compute:"):
            continue
        device = naming.qvo_name(port["id"])
        for packet in _vm_probes(port):
            for d in run.hosts.trace_network(port["binding:host_id"], "br-int", device, packet):
                assert d.tunnel is None, f"a tunnel packet no host terminates: {d}"
                target = owners.get(d.port)
                if target is not None and target != owners[device]:
                    pairs.add((owners[device], target))
    return pairs


# ---------------------------------------------------------------- the scenarios


class _Scenario:
    """What every scenario checks besides its two hand-worked verdicts (not collected itself)."""

    expected: ClassVar[Expected]
    expected_segments: ClassVar[Expected]
    probes: ClassVar[set[tuple[str, str]]]

    @staticmethod
    def mutate(hosts: OvsHosts, dataplane: ir.Dataplane) -> None:
        raise NotImplementedError

    def test_counterexamples_replay_in_real_ovs(self, scenario: ScenarioRun) -> None:
        """Every counterexample (both modes) reaches its destination device on its host in real OVS.

        The packet is parsed from the report's ``packet`` fields, enters at
        ``hops[0]`` (host, bridge, in_port), the ``setup`` learned flows are
        installed first, and GRE outputs are carried to the receiving host.
        Where the hand reasoning says a pair needs a learned entry, the same
        packet replayed *without* the setup flows must not get there.
        """
        modes = ((scenario.report, self.expected), (scenario.segment_report, self.expected_segments))
        for report, expected in modes:
            for example in verdict(report)["counterexamples"]:
                deliveries = replay_counterexample(scenario.hosts, example)
                reached = {(d.host, d.port) for d in deliveries}
                assert destination_of(example) in reached, (
                    f"{example['title']}\nreal OVS delivered to: {sorted(reached)}\n"
                    + "\n".join(str(d) for d in deliveries)
                )
                if expected.pairs[pair_of(example)].needs_learning:
                    without = {(d.host, d.port) for d in replay_counterexample(scenario.hosts, example, setup=False)}
                    assert destination_of(example) not in without, f"{example['title']}: reached without learning"

    def test_real_ovs_probes_agree_with_the_hand_reasoning(self, scenario: ScenarioRun) -> None:
        """Ordinary frames from every VM, with no learned state, cross exactly the expected project pairs.

        Pairs that need a learned entry (``Pair.needs_learning``) cannot show
        up here; every pair that shows up must be one the verifier reports.
        """
        seen = probe_pairs(scenario)
        assert seen == self.probes
        assert seen <= set(self.expected.pairs)


class TestHealthy(_Scenario):
    """(a) The seed as rendered: every VLAN and key where Neutron puts it."""

    expected = HOLDS
    expected_segments = HOLDS
    probes: ClassVar[set[tuple[str, str]]] = set()

    @staticmethod
    def mutate(hosts: OvsHosts, dataplane: ir.Dataplane) -> None:
        """Nothing: the switches stay as the agents programmed them."""

    def test_verdict_with_neutron(self, scenario: ScenarioRun) -> None:
        """Holds (exit 0).

        A VM frame enters NORMAL in its own local VLAN only (access port,
        anti-spoof p9/p10 flows end in t60 NORMAL) and leaves br-int only to
        ports of that VLAN or tagged into patch-tun.  br-tun t22 turns each
        VLAN into its own network's key (compute1: 1->0x266, 2->0x123;
        compute2: 2->0x266, 1->0x359), and every receiver's t3 turns each key
        back into the VLAN of that same network (a missing key is dropped:
        0x359 on compute1, 0x123 on compute2).  Learned t20 entries copy the
        key the frame arrived with, which t3 tied to that VLAN, so they keep
        the pairing too.  No VM reaches a port of another project.
        """
        assert_verdict(scenario.exit_code, scenario.report, self.expected)

    def test_verdict_without_neutron(self, scenario: ScenarioRun) -> None:
        """Holds (exit 0).

        Segments: {0x266} = vm-a1, vm-a2, qr/tap of tenant-a; {0x123} =
        vm-b1, vm-b2, qr/tap of tenant-b; {0x359} = vm-c1, qr/tap of
        tenant-c; (network, VLAN 2) = the two qg ports (their frames never
        leave over GRE: br-tun t22 has no VLAN 2 flow, br-ex is the public
        side).  As above, every key is mapped back into its own segment.
        """
        assert_verdict(scenario.segment_exit_code, scenario.segment_report, self.expected_segments)

    @pytest.mark.parametrize(
        ("dump", "show"),
        [*((name, ()) for name in DUMP_VARIANTS), ("of13", ("-O", "OpenFlow13"))],
        ids=[*DUMP_VARIANTS, "of13-show-of13"],
    )
    def test_every_dump_format_gives_the_same_dataplane_and_verdict(
        self, scenario: ScenarioRun, dump: str, show: tuple[str, ...]
    ) -> None:
        """``--names``, ``--no-stats``, ``-O OpenFlow13`` dumps (and an OpenFlow 1.3 ``show``) parse to the
        same flows as the plain dump (snapshot spec: same meaning, same model), and the verdict still holds."""
        with tempfile.TemporaryDirectory(prefix="variant-") as tmp:
            out = Path(tmp) / "snap"
            collect_snapshot(
                scenario.hosts, scenario.dataplane, scenario.neutron_json, out, dump_options=DUMP_VARIANTS[dump],
                show_options=show,
            )  # fmt: skip
            plain, variant = read_snapshot(scenario.snapshot), read_snapshot(out)
            for host in plain.dataplane.hosts:
                other = variant.dataplane.host(host.name)
                assert other is not None
                for bridge in host.bridges:
                    twin = other.bridge(bridge.name)
                    assert twin is not None
                    assert sorted(twin.flows, key=repr) == sorted(bridge.flows, key=repr), f"{host.name}/{bridge.name}"
            code, report = run_check(out)
        assert_verdict(code, report, HOLDS)


class TestTunnelKeyIntoWrongVlan(_Scenario):
    """(b) compute2's br-tun t3 maps tenant-a's key 0x266 to VLAN 1, tenant-c's local VLAN there.

    Real command (compute2): ``ovs-ofctl --strict mod-flows br-tun
    'table=3,priority=1,tun_id=0x266,actions=mod_vlan_vid:1,resubmit(,10)'``.
    compute2 is the host that *receives* tenant-a VM traffic over GRE (from
    vm-a1 on compute1), so a VM is on the sending side.
    """

    expected = Expected(
        {
            (A, C): Pair(frozenset({(C1, VM_A1)}), frozenset({(C2, VM_C1)})),
            (C, A): Pair(frozenset({(C2, VM_C1)}), frozenset({(C1, VM_A1)}) | A_PORTS_NET, needs_learning=True),
        }
    )
    expected_segments = Expected(
        {
            (SEG_A, SEG_C): Pair(frozenset({(C1, VM_A1)}) | A_PORTS_NET, frozenset({(C2, VM_C1)})),
            (SEG_C, SEG_A): Pair(frozenset({(C2, VM_C1)}), frozenset({(C1, VM_A1)}) | A_PORTS_NET, needs_learning=True),
        }
    )
    probes: ClassVar[set[tuple[str, str]]] = {(A, C)}

    @staticmethod
    def mutate(hosts: OvsHosts, dataplane: ir.Dataplane) -> None:
        lvid_c = T3[C2][KEY_C]
        flow = f"table=3,priority=1,tun_id={KEY_A:#x},actions=mod_vlan_vid:{lvid_c},resubmit(,10)"
        _mod_flow(hosts, C2, "br-tun", flow, f"mod_vlan_vid:{lvid_c}")

    def test_verdict_with_neutron(self, scenario: ScenarioRun) -> None:
        """Violated (exit 1) for tenant-a -> tenant-c and tenant-c -> tenant-a.

        tenant-a -> tenant-c: vm-a1 (compute1, VLAN 1) sends a broadcast or
        unknown unicast; NORMAL floods it into patch-tun tagged 1; compute1
        br-tun t2 -> t20 p0 -> t22 ``dl_vlan=1``: strip, key 0x266, out both
        GRE ports.  On compute2 (in ``gre-0a0a0a0c``) t0 -> t3: 0x266 now
        pushes VLAN 1 -> t10 -> patch-int -> br-int NORMAL in VLAN 1 ->
        vm-c1's ``qvof7c0e3a6-9b`` (tag 1).  No other tenant-c port is
        reachable: the network node still maps 0x266 to tenant-a's VLAN 3.
        vm-a2 (compute2, VLAN 2) is not a source of this: its frames stay in
        VLAN 2 locally and leave with 0x266 to the other hosts.

        tenant-c -> tenant-a: the frame above also makes compute2's t10
        learn ``VLAN 1, dl_dst=<vm-a1's source MAC> -> key 0x266, output
        gre-0a0a0a0c`` into t20 (a VM chooses its source MAC; a frame from
        the network node's tenant-a ports learns the same with
        ``gre-0a0a0a0b``).  vm-c1 (VLAN 1) unicasting to that MAC goes t2 ->
        t20 learned -> key 0x266 to compute1 (t3 -> VLAN 1 -> vm-a1) or to
        the network node (t3 -> VLAN 3 -> ``qr-2d9c6b4e-5f``/
        ``tap15865c29-9b``).  Only through a learned entry: vm-c1's floods
        carry 0x359, which compute1 drops and the network node keeps in
        tenant-c's VLAN 1.  So its counterexample must carry ``setup``.
        """
        assert_verdict(scenario.exit_code, scenario.report, self.expected)

    def test_verdict_without_neutron(self, scenario: ScenarioRun) -> None:
        """Violated (exit 1): segment 0x266 -> segment 0x359 and back (a key mismatch).

        Segments from installed flows: vm-a1 and tenant-a's network ports
        leave with 0x266 only, vm-c1 with 0x359 only (compute2 t22 VLAN 1 ->
        0x359).  The flood above takes a 0x266 frame to vm-c1: 0x266 ->
        0x359 (source vm-a1, or the network node's tenant-a ports, which are
        sources here since every access port is).  The learned entry takes a
        frame of vm-c1 back with 0x266 to vm-a1 or tenant-a's network ports:
        0x359 -> 0x266, again needing ``setup``.
        """
        assert_verdict(scenario.segment_exit_code, scenario.segment_report, self.expected_segments)


class TestVmPortInAnotherNetworksVlan(_Scenario):
    """(c) vm-a1's ``qvo6a2f8d4c-0b`` on compute1 tagged 2, tenant-b's local VLAN there.

    Real command (compute1): ``ovs-vsctl set Port qvo6a2f8d4c-0b tag=2``.
    """

    expected = Expected(
        {
            (A, B): Pair(frozenset({(C1, VM_A1)}), frozenset({(C1, VM_B1), (C1, VM_B2)}) | B_PORTS_NET),
            (B, A): Pair(frozenset({(C1, VM_B1), (C1, VM_B2)}), frozenset({(C1, VM_A1)})),
        }
    )
    expected_segments = HOLDS
    probes: ClassVar[set[tuple[str, str]]] = {(A, B), (B, A)}

    @staticmethod
    def mutate(hosts: OvsHosts, dataplane: ir.Dataplane) -> None:
        _set_tag(hosts, C1, VM_A1, LVID[(C1, VM_B1)])

    def test_verdict_with_neutron(self, scenario: ScenarioRun) -> None:
        """Violated (exit 1) both ways, tenant-a <-> tenant-b.

        tenant-a -> tenant-b: vm-a1's frames still pass its own anti-spoof
        flows (they are keyed on in_port 2, not on the tag), reach t60
        NORMAL and now enter VLAN 2: flooded to vm-b1/vm-b2 (tag 2) on
        compute1, and through patch-tun -> t22 ``dl_vlan=2`` with key 0x123
        to the network node (t3 -> VLAN 4 -> tenant-b's qr/tap).
        tenant-b -> tenant-a: vm-b1/vm-b2 flood VLAN 2, which now includes
        ``qvo6a2f8d4c-0b``: vm-a1's port receives them.  tenant-a's other
        ports are out of reach: tenant-b frames only ever carry key 0x123.
        """
        assert_verdict(scenario.exit_code, scenario.report, self.expected)

    def test_verdict_without_neutron(self, scenario: ScenarioRun) -> None:
        """Holds (exit 0): without neutron.json the moved port is a member of segment 0x123.

        vm-a1's frames now leave compute1 with 0x123 only, like vm-b1/vm-b2,
        so its segment is {0x123} and everything it reaches or is reached
        by is in {0x123}.  Segment {0x266} (vm-a2, tenant-a's network ports)
        reaches compute1's VLAN 1, which has no port any more.  A port
        plugged into another network's VLAN is indistinguishable from a
        member of that segment: only neutron.json says whose port it is.
        """
        assert_verdict(scenario.segment_exit_code, scenario.segment_report, self.expected_segments)


class TestDeadVlanPortDead(_Scenario):
    """(d) vm-a1's port put on the dead VLAN as Neutron's ``port_dead`` does it.

    Real commands (compute1): ``ovs-vsctl set Port qvo6a2f8d4c-0b tag=4095``
    and ``ovs-ofctl add-flow br-int 'table=0,priority=2,in_port=
    qvo6a2f8d4c-0b,actions=drop'`` (``drop_port``).  The port's p9/p10
    anti-spoof flows stay: in the agent source read (``treat_vif_port`` ->
    ``port_dead`` for an admin-down port), ``port_dead`` only sets the tag
    and adds this drop, and nothing on that path removes the anti-spoof
    flows of a port that was bound before.  They outrank the p2 drop.
    """

    expected = HOLDS
    expected_segments = HOLDS
    probes: ClassVar[set[tuple[str, str]]] = set()

    @staticmethod
    def mutate(hosts: OvsHosts, dataplane: ir.Dataplane) -> None:
        _set_tag(hosts, C1, VM_A1, DEAD_VLAN)
        _port_dead_drop(hosts, dataplane, C1, VM_A1)

    def test_verdict_with_neutron(self, scenario: ScenarioRun) -> None:
        """Holds (exit 0), though not because of the p2 drop flow.

        From vm-a1: the p9/p10 anti-spoof flows match first (the p2 drop is
        shadowed), t25 -> t30 -> t58 -> t59 -> t60 NORMAL in VLAN 4095, where
        no other access port lives; the flood reaches only trunks: the LOCAL
        port (the host itself, not a tenant port) and patch-tun tagged 4095,
        and br-tun has no VLAN 4095 flow (t20: learned entries only for
        VLANs 1 and 2, which t3 pushes; t22 p0 drop).  To vm-a1: only
        frames in VLAN 4095 could reach it; t3 never pushes 4095 and br-int
        t0 p65535 drops anything arriving tagged 4095.  Nothing crosses.
        """
        assert_verdict(scenario.exit_code, scenario.report, self.expected)

    def test_verdict_without_neutron(self, scenario: ScenarioRun) -> None:
        """Holds (exit 0): vm-a1's frames never leave compute1, so its segment is (compute1, VLAN 4095),
        and as above it neither reaches nor is reached by any other port."""
        assert_verdict(scenario.segment_exit_code, scenario.segment_report, self.expected_segments)


class TestTwoTenantsOnDeadVlanWithoutDrop(_Scenario):
    """(d') vm-a1 and vm-b1 (compute1, different tenants) both on tag 4095 in access mode, no drop flows.

    Real commands (compute1): ``ovs-vsctl set Port qvo6a2f8d4c-0b tag=4095``
    and ``ovs-vsctl set Port qvo9c3d7e1f-4a tag=4095``.
    """

    expected = Expected(
        {
            (A, B): Pair(frozenset({(C1, VM_A1)}), frozenset({(C1, VM_B1)})),
            (B, A): Pair(frozenset({(C1, VM_B1)}), frozenset({(C1, VM_A1)})),
        }
    )
    expected_segments = HOLDS
    probes: ClassVar[set[tuple[str, str]]] = {(A, B), (B, A)}

    @staticmethod
    def mutate(hosts: OvsHosts, dataplane: ir.Dataplane) -> None:
        _set_tag(hosts, C1, VM_A1, DEAD_VLAN)
        _set_tag(hosts, C1, VM_B1, DEAD_VLAN)

    def test_verdict_with_neutron(self, scenario: ScenarioRun) -> None:
        """Violated (exit 1) both ways between exactly vm-a1 and vm-b1.

        Each VM's frames pass its p9/p10 anti-spoof flows -> t25 -> ... ->
        t60 NORMAL, untagged on arrival and placed in VLAN 4095 by the
        access tag.  br-int t0 p65535 ``dl_vlan=4095`` drops only frames
        that *arrive tagged* 4095, so it never matches.  NORMAL does not
        treat 4095 specially: the two access ports share it and each
        reaches the other.  Nothing else: br-tun has no VLAN 4095 flow, and
        vm-b2 stays in VLAN 2.
        """
        assert_verdict(scenario.exit_code, scenario.report, self.expected)

    def test_verdict_without_neutron(self, scenario: ScenarioRun) -> None:
        """Holds (exit 0): both ports are in the one segment (compute1, VLAN 4095), so reaching each other
        is not a segment violation.  Segment mode cannot see this leak."""
        assert_verdict(scenario.segment_exit_code, scenario.segment_report, self.expected_segments)


class TestTwoTenantsOnDeadVlanAsPortDead(_Scenario):
    """(d'') As (d'), with ``port_dead``'s p2 drop flow added for both ports.

    Real commands: (d') plus ``ovs-ofctl add-flow br-int 'table=0,priority=2,
    in_port=<port>,actions=drop'`` for both ports.
    """

    expected = TestTwoTenantsOnDeadVlanWithoutDrop.expected
    expected_segments = HOLDS
    probes: ClassVar[set[tuple[str, str]]] = {(A, B), (B, A)}

    @staticmethod
    def mutate(hosts: OvsHosts, dataplane: ir.Dataplane) -> None:
        TestTwoTenantsOnDeadVlanWithoutDrop.mutate(hosts, dataplane)
        for port in (VM_A1, VM_B1):
            _port_dead_drop(hosts, dataplane, C1, port)

    def test_verdict_with_neutron(self, scenario: ScenarioRun) -> None:
        """Violated (exit 1) both ways, exactly as (d'): the drop flows change nothing.

        A frame from either port matches its p10 (ARP) or p9 (everything)
        anti-spoof flow before the p2 drop, so the drop is dead code while
        those flows exist; then t25 -> ... -> NORMAL in the shared VLAN
        4095.  (Neutron's ``port_dead`` adds the drop and the tag but does
        not delete the anti-spoof flows of a port that was bound before;
        security groups on qbr, outside this check, may still stop it.)
        """
        assert_verdict(scenario.exit_code, scenario.report, self.expected)

    def test_verdict_without_neutron(self, scenario: ScenarioRun) -> None:
        """Holds (exit 0): one segment (compute1, VLAN 4095), as in (d')."""
        assert_verdict(scenario.segment_exit_code, scenario.segment_report, self.expected_segments)


class TestFloodWithWrongKey(_Scenario):
    """(e) compute1's br-tun t22 floods tenant-a's VLAN 1 with tenant-b's key 0x123.

    Real command (compute1): ``ovs-ofctl --strict mod-flows br-tun
    'table=22,priority=1,dl_vlan=1,actions=strip_vlan,set_tunnel:0x123,
    output:gre-0a0a0a0b,output:gre-0a0a0a0d'``.
    """

    expected = Expected({(A, B): Pair(frozenset({(C1, VM_A1)}), B_PORTS_NET)})
    expected_segments = Expected(
        {
            (SEG_A, SEG_B): Pair(frozenset({(C2, VM_A2)}) | A_PORTS_NET, frozenset({(C1, VM_A1)})),
            (SEG_B, SEG_A): Pair(frozenset({(C1, VM_A1)}), frozenset({(C2, VM_A2)}) | A_PORTS_NET, needs_learning=True),
        }
    )
    probes: ClassVar[set[tuple[str, str]]] = {(A, B)}

    @staticmethod
    def mutate(hosts: OvsHosts, dataplane: ir.Dataplane) -> None:
        lvid_a = T3[C1][KEY_A]
        gre = ",".join(f"output:{GRE_TO[C1][h]}" for h in (NET, C2))
        flow = f"table=22,priority=1,dl_vlan={lvid_a},actions=strip_vlan,set_tunnel:{KEY_B:#x},{gre}"
        _mod_flow(hosts, C1, "br-tun", flow, f"set_tunnel:{KEY_B:#x}")

    def test_verdict_with_neutron(self, scenario: ScenarioRun) -> None:
        """Violated (exit 1) for tenant-a -> tenant-b only; the destinations are tenant-b's network-node ports.

        vm-a1 (VLAN 1) floods: patch-tun tagged 1 -> t2 -> (t20 p0 ->) t22
        ``dl_vlan=1``: strip, key 0x123, out both GRE ports.  The network
        node's t3 maps 0x123 to VLAN 4: NORMAL floods it to tenant-b's
        ``qr-c8a1f5e3-7d`` and ``tap57a9e3c1-2b``.  compute2 has no 0x123
        flow in t3 and drops it.  tenant-b's VMs are on compute1 in VLAN 2:
        vm-a1's frame never comes back to compute1.
        No reverse pair: tenant-b's VMs flood with 0x123 (t22 VLAN 2 is
        intact) and anything arriving at compute1 with 0x123 goes to VLAN 2;
        the entry the network node learns from vm-a1's frame (VLAN 4 ->
        0x123 back to compute1) is used only by tenant-b's network ports,
        which are not VM sources, and lands in VLAN 2 anyway.  Learned
        entries on compute1 for VLAN 1 still carry 0x266 (learned from
        tenant-a frames), which stay in tenant-a.
        """
        assert_verdict(scenario.exit_code, scenario.report, self.expected)

    def test_verdict_without_neutron(self, scenario: ScenarioRun) -> None:
        """Violated (exit 1): segment 0x266 -> 0x123 and 0x123 -> 0x266 (a key mismatch).

        vm-a1's frames now leave compute1 with 0x123 through installed
        flows, so its segment is {0x123}; vm-a2 and tenant-a's network
        ports are {0x266}.  0x266 -> 0x123: vm-a2 (or tenant-a's network
        ports) flood with 0x266; compute1's t3 still maps 0x266 to VLAN 1:
        delivered to vm-a1.  0x123 -> 0x266: compute1 learned ``VLAN 1,
        <MAC> -> 0x266`` from such a frame; vm-a1 unicasting to that MAC
        leaves with 0x266 and reaches vm-a2 (compute2 VLAN 2) or tenant-a's
        network ports (VLAN 3): needs ``setup``.
        """
        assert_verdict(scenario.segment_exit_code, scenario.segment_report, self.expected_segments)


# ---------------------------------------------------------------- the harness itself


def test_trace_network_stops_a_tunnel_loop_and_keeps_unterminated_tunnels(
    seed_deployment: Deployment, seed_neutron_json: dict[str, Any]
) -> None:
    """``trace_network`` refuses to follow a GRE ping-pong for ever, and reports what leaves for a host it lacks.

    Only compute1 and compute2 run.  With br-tun t10 on both changed to
    hair-pin (``actions=in_port``: back out the GRE port it came in on), a
    broadcast of vm-a1 bounces compute1 -> compute2 -> compute1 ... with key
    0x266 (t3 re-tags it, t10 sends it back): a loop, NetworkTraceError.
    Before the change, the copy flooded to the network node (10.10.10.11,
    not running) comes back as a Delivery with its tunnel header.
    """
    require_ovs()
    with OvsHosts(seed_deployment.dataplane, hosts=[C1, C2], max_tunnel_hops=4) as hosts:
        vm_a1 = next(p for p in seed_neutron_json["ports"] if p["name"] == "vm-a1")
        broadcast = _vm_probes(vm_a1)[1]
        deliveries = hosts.trace_network(C1, "br-int", VM_A1, broadcast)
        lost = [d for d in deliveries if d.tunnel is not None]
        assert [(d.host, d.port, d.tunnel.dst_ip, d.tunnel.tun_id) for d in lost if d.tunnel] == [
            (C1, GRE_TO[C1][NET], "10.10.10.11", KEY_A)
        ]
        assert (C2, VM_A2) in {(d.host, d.port) for d in deliveries}
        for host in (C1, C2):
            hosts[host].ofctl("--strict", "mod-flows", "br-tun", "table=10,priority=1,actions=in_port")
        with pytest.raises(NetworkTraceError, match="more than 4 tunnel crossings"):
            hosts.trace_network(C1, "br-int", VM_A1, broadcast)


# ---------------------------------------------------------------- the seed facts the reasoning above uses


def _tags(dataplane: ir.Dataplane) -> dict[Device, int | None]:
    out: dict[Device, int | None] = {}
    for host in dataplane.hosts:
        bridge = host.bridge("br-int")
        assert bridge is not None
        for port in bridge.ports:
            out[(host.name, port.name)] = port.tag
    return out


def _t3(dataplane: ir.Dataplane, host: str) -> dict[int, int]:
    h = dataplane.host(host)
    tun = h.bridge("br-tun") if h is not None else None
    assert tun is not None
    out = {}
    for flow in tun.flows:
        key = flow.match_value("tun_id")
        vids = [a.vid for a in ir.iter_actions(flow.actions) if isinstance(a, ir.SetVlanVid)]
        if flow.table == 3 and key is not None and vids:
            out[key.value] = vids[0]
    return out


def test_seed_facts_used_by_the_hand_reasoning(seed_deployment: Deployment, seed_neutron_json: dict[str, Any]) -> None:
    """The devices, tags, keys and tunnel ports the docstrings name are those of the rendered seed."""
    dataplane = seed_deployment.dataplane
    tags = _tags(dataplane)
    for device, lvid in LVID.items():
        assert tags[device] == lvid, device
    for host, mapping in T3.items():
        assert _t3(dataplane, host) == mapping, host
    owners = _tenant_devices(seed_neutron_json)
    assert {d: owners[d] for _, d in LVID} == {
        VM_A1: A, VM_A2: A, QR_A: A, DHCP_A: A,
        VM_B1: B, VM_B2: B, QR_B: B, DHCP_B: B,
        VM_C1: C, QR_C: C, DHCP_C: C,
    }  # fmt: skip
    addresses = {h.name: {a.address for a in h.addresses} for h in dataplane.hosts}
    for host, tunnels in GRE_TO.items():
        h = dataplane.host(host)
        assert h is not None
        tun = h.bridge("br-tun")
        assert tun is not None
        for peer, name in tunnels.items():
            iface = tun.interface(name)
            assert iface is not None and iface.option("remote_ip") in addresses[peer], (host, name)
