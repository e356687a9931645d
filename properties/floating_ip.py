"""Floating IPs and source NAT.

Definition.  "Outside" is any IPv4 address in no subnet of the deployment
(not a floating IP, not 169.254/16); the check uses one such address
(198.51.100.7 unless the deployment uses it) and an outside MAC.  For every
floating IP associated with a port (``port_id`` and ``router_id`` set):

(a) inbound: a packet from outside arriving on the router's external uplink
    (an endpoint of kind ``uplink`` carrying the floating IP's
    ``floating_network_id``, preferably on the host of the router's gateway
    port), IPv4 to the floating IP, to the MAC of the router's gateway port
    (``network:router_gateway`` with ``device_id`` = the router), untagged on a
    flat network or tagged with the segmentation id on a vlan one.  Probes:
    tcp/22, tcp/80, tcp/443, udp/53, icmp echo, plus one per ingress
    security-group rule of the port that admits the outside address.  A probe
    *gets through* when a copy is delivered to the VM's endpoint with
    ``ip_dst`` rewritten to the fixed IP and ``ip_src`` still the outside
    address (no SNAT on the way in).  Reported (i) with security groups applied
    and (ii) for the dataplane alone (the network variant with
    ``enforce_firewall=False``).  Violated when no probe gets through with
    security groups applied, or when a copy reaches the VM rewritten otherwise
    (wrong destination, source NATed); the counterexample is the furthest hop
    of the probe (from the dataplane-alone walk when the dataplane itself drops
    it, else from the walk with security groups).
(b) outbound: the VM's packet (its MAC and fixed IP, to the MAC of the router
    port holding its subnet's gateway IP, tcp/443 to the outside address)
    leaves the cloud (a copy is delivered to the external network, i.e. out
    of a router's gateway interface, or to a physical uplink after crossing a
    router namespace; a flood copy of the VM's own frame does not count) with
    ``ip_src`` = the floating IP, and no copy leaves with another source.
    Violated otherwise (left with another source, or never left: the furthest
    hop is shown).
(c) every VM fixed IP without a floating IP, on a subnet whose gateway IP is a
    router interface of a router with an external gateway, leaves the cloud
    (same packet as (b)) with the router's external gateway address when
    ``enable_snat`` is true (or unset), else with its own fixed IP.  Violated
    otherwise.
(d) unsolicited inbound: for the VMs of (c), the probes of (a) from outside to
    the VM's fixed IP (to the router's gateway MAC, on its uplink).  Reaching
    the VM is a finding ("unsolicited inbound": NAT is not a firewall), never
    a violation.

Verdict: violated if (a), (b) or (c) fails for any floating IP or VM; unknown
if a walk these need ends undecided (or the uplink or VM is not in the
snapshot); vacuous when there is no associated floating IP and no routed VM;
holds otherwise.  Everything is a concrete walk (models.walk): MAC tables
empty (NORMAL floods), flows as dumped, every packet the first of its
connection.  Not covered: DVR (floating IPs in fip- namespaces on compute
nodes answer with another MAC than the gateway port's) and IPv6.
"""

from __future__ import annotations

import ipaddress
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from models.build import build_network
from models.endpoints import KINDS
from models.network import OvsNetwork
from models.walk import End, Twins, Walk, walk
from properties.common import coverage
from properties.dhcp import _example
from verifier.deployment import Deployment
from verifier.header import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, VLAN_CFI, parse_mac, zero_packet
from verifier.neutron.model import FloatingIP, Neutron, Port, Router
from verifier.topology import Endpoint, Location
from verifier.verdict import Counterexample, Finding, Verdict

PROPERTY = "floating-ip"
OUTSIDE_CANDIDATES = ("198.51.100.7", "192.0.2.77", "100.64.77.7", "8.8.8.8")
OUTSIDE_MAC = "52:54:00:0f:1e:07"
ROUTER_NAMESPACES = ("qrouter-", "snat-", "fip-")
ASSUMPTIONS = (
    "conntrack: every probe is the first packet of its connection (NEW); replies and established traffic are "
    "not checked",
    "outside hosts are any address in no subnet of the deployment; one representative (the probe's source) "
    "stands for all, as no NAT or routing rule of the snapshot tells them apart (security-group rules with a "
    "remote prefix get a probe from inside that prefix)",
    "MAC tables are empty (NORMAL floods) and the flows are as dumped",
    "a packet leaves the cloud when it goes out of a router's gateway interface or a physical uplink; what the "
    "external network does with it afterwards is not modelled",
)


@dataclass(frozen=True)
class Probe:
    label: str
    proto: int
    tp_src: int
    tp_dst: int
    src: int


STANDARD = (("tcp/22", IPPROTO_TCP, 22), ("tcp/80", IPPROTO_TCP, 80), ("tcp/443", IPPROTO_TCP, 443))
STANDARD_UDP = (("udp/53", IPPROTO_UDP, 53),)


@dataclass
class _Result:
    violations: list[str]
    examples: list[Counterexample]
    unknown: list[str]
    findings: list[Finding]


def check_floating_ip(deployment: Deployment, *, net: OvsNetwork | None = None) -> Verdict:
    """Check floating IPs (inbound DNAT, outbound SNAT) and the router SNAT of VMs without one."""
    started = time.perf_counter()
    neutron = deployment.neutron
    cover = coverage(deployment)
    if neutron is None:
        return Verdict(PROPERTY, "unknown", "no neutron.json: floating IPs and routers are not known", coverage=cover)
    base = net or build_network(deployment)
    guarded = base.variant(enforce_firewall=True, external_sink=True)
    plain = guarded.variant(enforce_firewall=False)
    ctx = _Context(neutron, guarded, Twins(guarded), Twins(plain))
    res = _Result([], [], [], [])
    fips = [f for f in neutron.floatingips if f.port_id and f.router_id]
    for fip in fips:
        _check_fip(ctx, fip, res)
    routed = _routed_vms(ctx, fips)
    for port, endpoint, ip, router, gw_port in routed:
        _check_routed(ctx, port, endpoint, ip, router, gw_port, res)
    stats: dict[str, float] = {
        "seconds": round(time.perf_counter() - started, 3),
        "floating_ips": len(fips),
        "routed_vms": len(routed),
    }
    shown = [e.title for e in res.examples]
    # A failure that is a configuration fact (no router leg, no gateway port) has no packet to show.
    facts = [Finding("fails", v) for v in res.violations if not any(v.startswith(t) for t in shown)]
    findings = (*facts, *res.findings)
    if res.violations:
        summary = f"{len(res.violations)} floating-IP/SNAT problem(s): " + "; ".join(res.violations[:3])
        reasons = tuple(res.unknown)
        return Verdict(PROPERTY, "violated", summary, tuple(res.examples), reasons, ASSUMPTIONS, findings, cover, stats)
    if res.unknown:
        summary = f"floating IPs / SNAT could not be decided in {len(res.unknown)} case(s)"
        return Verdict(PROPERTY, "unknown", summary, (), tuple(res.unknown), ASSUMPTIONS, findings, cover, stats)
    if not fips and not routed:
        summary = "no floating IP is associated with a port and no VM is behind a router with a gateway"
        return Verdict(PROPERTY, "vacuous", summary, (), (), ASSUMPTIONS, findings, cover, stats)
    probes = [f.text for f in findings if f.kind == "floating-ip probes"]
    summary = (
        f"{len(fips)} floating IP(s) work both ways and {len(routed)} routed VM address(es) leave with the "
        "expected source" + (": " + "; ".join(probes) if probes else "")
    )
    return Verdict(PROPERTY, "holds", summary, (), (), ASSUMPTIONS, findings, cover, stats)


@dataclass
class _Context:
    neutron: Neutron
    net: OvsNetwork
    guarded: Twins
    plain: Twins

    def __post_init__(self) -> None:
        self.vm_by_port = {
            e.neutron_port: e for e in self.net.endpoints.values() if e.kind == "vm" and e.neutron_port is not None
        }
        cidrs = [s.cidr for s in self.neutron.subnets if s.ip_version == 4]
        fips = {f.floating_ip_address for f in self.neutron.floatingips}
        link_local = ipaddress.ip_network("169.254.0.0/16")
        candidates = itertools.chain(
            (ipaddress.IPv4Address(a) for a in OUTSIDE_CANDIDATES), ipaddress.IPv4Network("198.18.0.0/15").hosts()
        )
        self.outside = next(
            a for a in candidates if not any(a in c for c in cidrs) and a not in fips and a not in link_local
        )
        self.cidrs = cidrs


# ---------------------------------------------------------------- Neutron look-ups


def _gateway_port(neutron: Neutron, router_id: str) -> Port | None:
    return next(
        (p for p in neutron.ports if p.device_owner == "network:router_gateway" and p.device_id == router_id), None
    )


def _router(neutron: Neutron, router_id: str) -> Router | None:
    return next((r for r in neutron.routers if r.id == router_id), None)


def _v4(port: Port) -> list[ipaddress.IPv4Address]:
    return [ip for ip in port.ips if isinstance(ip, ipaddress.IPv4Address)]


def _subnet_router_port(neutron: Neutron, port: Port, ip: ipaddress.IPv4Address) -> Port | None:
    """The router interface holding the gateway IP of ``ip``'s subnet (where the VM sends outside traffic)."""
    subnet = neutron.subnet_containing(port.network_id, ip)
    if subnet is None or subnet.gateway_ip is None:
        return None
    for p in neutron.ports_of_network(port.network_id):
        if KINDS.get(p.device_owner) == "router-interface" and subnet.gateway_ip in p.ips:
            return p
    return None


def _uplink(ctx: _Context, network_id: str, gw_port: Port | None) -> Endpoint | None:
    ups = [
        e
        for e in ctx.net.endpoints.values()
        if e.kind == "uplink" and (e.network == network_id or network_id in e.carries)
    ]
    ups.sort(key=lambda e: (gw_port is None or e.host != gw_port.binding_host_id, e.id))
    return ups[0] if ups else None


def _vlan(neutron: Neutron, network_id: str) -> int:
    if not neutron.has_network(network_id):
        return 0
    network = neutron.network(network_id)
    if network.network_type == "vlan" and network.segmentation_id is not None:
        return VLAN_CFI | network.segmentation_id
    return 0


def _mac(text: str) -> int:
    return parse_mac(text)


def _probes(ctx: _Context, port: Port | None) -> list[Probe]:
    """The standard probes, plus one per ingress rule of the port's groups that admits an outside source."""
    src = int(ctx.outside)
    out = [Probe(label, proto, 40000, dport, src) for label, proto, dport in (*STANDARD, *STANDARD_UDP)]
    out.append(Probe("icmp echo", IPPROTO_ICMP, 8, 0, src))
    seen = {(p.proto, p.tp_dst, p.src) for p in out if p.proto != IPPROTO_ICMP}
    if port is None:
        return out
    names = {"tcp": IPPROTO_TCP, "udp": IPPROTO_UDP, "6": IPPROTO_TCP, "17": IPPROTO_UDP}
    for gid in port.security_groups:
        try:
            group = ctx.neutron.security_group(gid)
        except KeyError:
            continue
        for rule in group.rules:
            if rule.direction != "ingress" or rule.ethertype != "IPv4" or rule.remote_group_id is not None:
                continue
            proto = names.get((rule.protocol or "").lower())
            if proto is None or rule.port_range_min is None:
                continue
            source = _rule_source(ctx, rule.remote_ip_prefix)
            if source is None or (proto, rule.port_range_min, source) in seen:
                continue
            seen.add((proto, rule.port_range_min, source))
            kind = "tcp" if proto == IPPROTO_TCP else "udp"
            label = f"{kind}/{rule.port_range_min}" + (
                "" if source == src else f" from {ipaddress.IPv4Address(source)}"
            )
            out.append(Probe(label, proto, 40000, rule.port_range_min, source))
    return out


def _rule_source(ctx: _Context, prefix: object) -> int | None:
    if prefix is None:
        return int(ctx.outside)
    if not isinstance(prefix, ipaddress.IPv4Network):
        return None
    if ctx.outside in prefix:
        return int(ctx.outside)
    for host in (prefix.network_address + 1, prefix.network_address):
        if host in prefix and not any(host in c for c in ctx.cidrs):
            return int(host)
    return None


# ---------------------------------------------------------------- packets


def _inbound(probe: Probe, uplink: Endpoint, gw_mac: int, vlan: int, dst: ipaddress.IPv4Address) -> dict[str, int]:
    pkt = zero_packet()
    pkt.update(
        in_port=uplink.port,
        eth_src=_mac(OUTSIDE_MAC),
        eth_dst=gw_mac,
        vlan_tci=vlan,
        eth_type=0x0800,
        ip_src=probe.src,
        ip_dst=int(dst),
        ip_proto=probe.proto,
        ip_ttl=64,
        tp_src=probe.tp_src,
        tp_dst=probe.tp_dst,
    )
    return pkt


def _outbound(ctx: _Context, vm: Endpoint, port: Port, ip: ipaddress.IPv4Address, router_mac: str) -> dict[str, int]:
    pkt = zero_packet()
    pkt.update(
        in_port=vm.port,
        eth_src=_mac(port.mac_address),
        eth_dst=_mac(router_mac),
        eth_type=0x0800,
        ip_src=int(ip),
        ip_dst=int(ctx.outside),
        ip_proto=IPPROTO_TCP,
        ip_ttl=64,
        tp_src=40000,
        tp_dst=443,
    )
    return pkt


def _ip(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


# ---------------------------------------------------------------- (a) and (b)


def _check_fip(ctx: _Context, fip: FloatingIP, res: _Result) -> None:
    neutron = ctx.neutron
    name = f"floating IP {fip.floating_ip_address}"
    port = next((p for p in neutron.ports if p.id == fip.port_id), None)
    if port is None:
        res.violations.append(f"{name} is associated with port {fip.port_id}, which does not exist")
        return
    vm = ctx.vm_by_port.get(port.id)
    fixed = fip.fixed_ip_address or next(iter(_v4(port)), None)
    title = f"{name} -> {port.name or port.id}" + (f" ({fixed})" if fixed else "")
    if vm is None:
        res.unknown.append(f"{title}: the port has no VM endpoint in the snapshot (bound to {port.binding_host_id!r})")
        return
    if not isinstance(fixed, ipaddress.IPv4Address):
        res.violations.append(f"{title}: the port has no IPv4 fixed address to translate to")
        return
    router = _router(neutron, fip.router_id or "")
    gw_port = _gateway_port(neutron, fip.router_id or "")
    if router is None or gw_port is None:
        res.violations.append(f"{title}: router {fip.router_id} has no gateway port, so nothing reaches the VM")
    else:
        _inbound_fip(ctx, fip, port, vm, fixed, gw_port, title, res)
    router_port = _subnet_router_port(neutron, port, fixed)
    if router_port is None:
        res.violations.append(f"{title}: no router interface holds the gateway IP of the VM's subnet")
        return
    _leave(ctx, port, vm, fixed, router_port, {int(fip.floating_ip_address)}, f"{title}: outbound", res)


def _inbound_fip(
    ctx: _Context,
    fip: FloatingIP,
    port: Port,
    vm: Endpoint,
    fixed: ipaddress.IPv4Address,
    gw_port: Port,
    title: str,
    res: _Result,
) -> None:
    uplink = _uplink(ctx, fip.floating_network_id, gw_port)
    if uplink is None:
        res.unknown.append(f"{title}: no physical uplink of the snapshot carries network {fip.floating_network_id}")
        return
    floating = fip.floating_ip_address
    if not isinstance(floating, ipaddress.IPv4Address):
        res.unknown.append(f"{title}: an IPv6 floating IP is not checked")
        return
    vlan = _vlan(ctx.neutron, fip.floating_network_id)
    gw_mac = _mac(gw_port.mac_address)
    passed: dict[str, list[str]] = {"guarded": [], "plain": []}
    first: dict[str, tuple[dict[str, int], Walk]] = {}
    bad: list[tuple[str, dict[str, int], End]] = []
    undecided: set[str] = set()
    probes = _probes(ctx, port)
    for probe in probes:
        pkt = _inbound(probe, uplink, gw_mac, vlan, floating)
        for state, twins in (("guarded", ctx.guarded), ("plain", ctx.plain)):
            w = walk(twins, Location(uplink.host, uplink.bridge), pkt)
            for end in w.undecided():
                res.unknown.append(f"{title}: inbound {probe.label} ({_state(state)}) {end.outcome.describe()}")
                undecided.add(state)
            ok = False
            for end in _at(w, vm):
                if end.packet["ip_dst"] == int(fixed) and end.packet["ip_src"] == probe.src:
                    ok = True
                elif state == "guarded":
                    bad.append((probe.label, pkt, end))
            if ok:
                passed[state].append(probe.label)
            first.setdefault(state, (pkt, w))
    labels = [p.label for p in probes]
    guarded_text = _list(passed["guarded"], labels)
    plain_text = _list(passed["plain"], labels)
    res.findings.append(
        Finding(
            "floating-ip probes",
            f"{fip.floating_ip_address} -> {port.name or port.id} ({fixed}): with security groups {guarded_text}; "
            f"the dataplane alone lets through {plain_text}",
        )
    )
    src = str(uplink)
    for label, pkt, end in bad:
        text = (
            f"{title}: inbound {label} reaches the VM rewritten wrongly "
            f"(ip_src {_ip(end.packet['ip_src'])}, ip_dst {_ip(end.packet['ip_dst'])}; expected "
            f"ip_src {_ip(pkt['ip_src'])}, ip_dst {fixed})"
        )
        res.violations.append(text)
        res.examples.append(_cx(vm, pkt, end, text, src))
    if passed["guarded"] or bad or "guarded" in undecided:
        return  # something gets through, is already reported, or whether anything does is undecided
    if passed["plain"]:
        pkt, w = first["guarded"]
        text = (
            f"{title}: nothing from outside reaches the VM with security groups applied "
            f"(the dataplane alone lets through {plain_text})"
        )
    elif "plain" in undecided:
        return
    else:
        pkt, w = first["plain"]
        text = f"{title}: nothing from outside reaches the VM through the floating IP, even without security groups"
    furthest = _furthest(w, vm, fixed)
    res.violations.append(text + (f"; furthest: {furthest.outcome.describe()}" if furthest else ""))
    res.examples.append(_cx(vm, pkt, furthest, text, src))


def _state(state: str) -> str:
    return "security groups applied" if state == "guarded" else "dataplane alone"


def _list(passed: Sequence[str], labels: Sequence[str]) -> str:
    if not passed:
        return "nothing (blocked: " + ", ".join(labels) + ")"
    blocked = [x for x in labels if x not in passed]
    if not blocked:
        return "all probes (" + ", ".join(passed) + ")"
    return ", ".join(passed) + " (blocked: " + ", ".join(blocked) + ")"


def _at(w: Walk, vm: Endpoint) -> list[End]:
    return [e for e in w.delivered() if e.outcome.endpoint.id == vm.id]  # type: ignore[union-attr]


def _cx(vm: Endpoint, pkt: dict[str, int], end: End | None, text: str, source: str | None = None) -> Counterexample:
    """A counterexample titled by the whole failure ``text``, from ``source`` (default: the VM)."""
    example = _example("", vm, pkt, end, text)
    return replace(example, title=text, source=source if source is not None else example.source)


def _left(end: End) -> bool:
    """Whether a delivered copy left the cloud: out of a router's gateway interface (the external sink), or
    out of a physical uplink after crossing a router (a flood copy of the VM's own frame on a provider network
    is not traffic to the outside)."""
    kind = end.outcome.endpoint.kind  # type: ignore[union-attr]
    if kind == "external":
        return True
    routed = any(h.location.device.startswith(ROUTER_NAMESPACES) for h in end.hops)
    return kind == "uplink" and routed


def _furthest(w: Walk, vm: Endpoint | None, ip: ipaddress.IPv4Address | None) -> End | None:
    """The copy that got furthest: into the VM's own firewall, past a NAT rewrite, then the longest path."""
    if not w.ends:
        return None

    def score(e: End) -> tuple[bool, bool, bool, int]:
        own = vm is not None and any(h.location == Location(vm.host, vm.bridge) for h in e.hops)
        rewritten = ip is not None and any(h.packet["ip_dst"] == int(ip) for h in e.hops)
        routed = any(h.location.device.startswith(ROUTER_NAMESPACES) for h in e.hops)
        return (own, rewritten, routed, len(e.hops))

    return max(w.ends, key=score)


def _leave(
    ctx: _Context,
    port: Port,
    vm: Endpoint,
    ip: ipaddress.IPv4Address,
    router_port: Port,
    expected: set[int],
    title: str,
    res: _Result,
) -> None:
    """(b)/(c): the VM's packet to the outside leaves the cloud, and only with a source in ``expected``."""
    pkt = _outbound(ctx, vm, port, ip, router_port.mac_address)
    w = walk(ctx.guarded, Location(vm.host, vm.bridge), pkt)
    for end in w.undecided():
        res.unknown.append(f"{title}: {end.outcome.describe()}")
    left = [e for e in w.delivered() if _left(e)]
    want = " or ".join(_ip(x) for x in sorted(expected))
    wrong = [e for e in left if e.packet["ip_src"] not in expected]
    for end in wrong:
        text = (
            f"{title}: {ip} -> {ctx.outside} tcp/443 leaves the cloud with source {_ip(end.packet['ip_src'])}, "
            f"not {want} ({end.outcome.describe()})"
        )
        res.violations.append(text)
        res.examples.append(_cx(vm, pkt, end, text))
    if left or w.undecided():
        return
    furthest = _furthest(w, None, None)
    text = f"{title}: {ip} -> {ctx.outside} tcp/443 never leaves the cloud (expected with source {want})"
    res.violations.append(text + (f"; furthest: {furthest.outcome.describe()}" if furthest else ""))
    res.examples.append(_cx(vm, pkt, furthest, text))


# ---------------------------------------------------------------- (c) and (d)


def _routed_vms(
    ctx: _Context, fips: Sequence[FloatingIP]
) -> list[tuple[Port, Endpoint, ipaddress.IPv4Address, Router, Port]]:
    """VM addresses without a floating IP whose subnet's gateway is a router with an external gateway."""
    neutron = ctx.neutron
    with_fip = {(f.port_id, f.fixed_ip_address) for f in fips}
    out = []
    for port in neutron.ports:
        vm = ctx.vm_by_port.get(port.id)
        if vm is None or not port.device_owner.startswith("compute:"):
            continue
        for ip in _v4(port):
            if (port.id, ip) in with_fip or (port.id, None) in with_fip:
                continue
            router_port = _subnet_router_port(neutron, port, ip)
            router = _router(neutron, router_port.device_id) if router_port else None
            if router_port is None or router is None or not router.gateway_network_id:
                continue
            out.append((port, vm, ip, router, router_port))
    return out


def _check_routed(
    ctx: _Context,
    port: Port,
    vm: Endpoint,
    ip: ipaddress.IPv4Address,
    router: Router,
    router_port: Port,
    res: _Result,
) -> None:
    title = f"{port.name or port.id} ({ip}) behind router {router.name or router.id}"
    if router.enable_snat is False:
        expected = {int(ip)}
    else:
        expected = {int(a) for _s, a in router.external_fixed_ips if isinstance(a, ipaddress.IPv4Address)}
        if not expected:
            res.violations.append(f"{title}: SNAT is enabled but the router has no IPv4 external address")
            return
    _leave(ctx, port, vm, ip, router_port, expected, f"{title}: outbound", res)
    gw_port = _gateway_port(ctx.neutron, router.id)
    uplink = _uplink(ctx, router.gateway_network_id or "", gw_port)
    if gw_port is None or uplink is None:
        return
    vlan = _vlan(ctx.neutron, router.gateway_network_id or "")
    reached: list[str] = []
    doubts: list[str] = []
    for probe in _probes(ctx, port):
        pkt = _inbound(probe, uplink, _mac(gw_port.mac_address), vlan, ip)
        w = walk(ctx.guarded, Location(uplink.host, uplink.bridge), pkt)
        if any(e.packet["ip_dst"] == int(ip) for e in _at(w, vm)):
            reached.append(probe.label)
        elif w.undecided():
            doubts.append(probe.label)
    if reached:
        res.findings.append(
            Finding(
                "unsolicited inbound",
                f"{port.name or port.id} ({ip}) has no floating IP, yet {', '.join(reached)} from outside "
                f"({ctx.outside}) to its fixed address through router {router.name or router.id} reach it: "
                "NAT is not a firewall",
            )
        )
    if doubts:
        res.findings.append(
            Finding(
                "unsolicited inbound",
                f"{port.name or port.id} ({ip}): whether {', '.join(doubts)} from outside reach it is undecided",
            )
        )


__all__ = ["PROPERTY", "check_floating_ip"]
