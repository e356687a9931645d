"""Tenant isolation.

Definition (DESIGN.md): a violation from project P to project Q is a packet
that some VM of P can emit (any headers: the VM is untrusted) which is
delivered to a port of one of Q's networks without crossing the external
network.  A port "of Q's networks" is any port whose Neutron network Q owns
(VM, DHCP and router ports; a physical uplink carries the networks of its
physical network).  A VM's own network is never a violation, even when
another project owns it (shared networks).  Reaching a different network of
the same project is reported as a cross-network leak, not a violation,
unless both networks have an interface on one router (that is routing).
Overlapping tenant CIDRs are normal: isolation comes from VLANs and tunnel
keys, never from addresses.

Through routers: the packet may cross router namespaces (routing, NAT,
their iptables) and DHCP namespaces on its way, so a subnet of another
project attached to a project's router is a violation between the two (the
router forwards between them), unless the user allows the pair (``allow``,
``--allow P:Q``: its paths become findings).  A packet that leaves through a
router's gateway or a physical uplink is on the public external network and
ends there: going out and coming back in through a floating IP is public
traffic, not a violation.  The verdict does not rely on security groups
(VMs are untrusted, and a security group is the tenant's own setting); for
every violating pair a finding says whether, with the security groups
applied, packets still get through, or only security groups stand between
the two projects.

Without neutron.json the dataplane alone is checked: each access port's
segment is the set of tunnel keys its frames leave its host with before
anything is learned (or its host and local VLAN when they never leave), and a
frame from one segment must not reach a port of a disjoint segment.

How it is decided: the abstract graph (engine.AbstractGraph) gives, for every
source, a superset of the ports it may reach; if no foreign port is in it, the
property holds.  Each foreign port it lists is then searched for precisely
with Z3, directed by the graph: a path found is a violation with a concrete
counterexample (replayed through the concrete twins); a search that finds
nothing refutes that candidate, and a search that runs out of its state
budget makes the verdict unknown, never holds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from models.build import build_network
from models.network import OvsNetwork
from models.replay import Disagreement, concretize, default_preferences, replay
from properties.common import ASSUMPTIONS_OVS, coverage, source_packet
from verifier.deployment import Deployment
from verifier.engine import AbstractGraph, BudgetExhausted, Path, Prune, explore, outcome_key
from verifier.header import parse_mac
from verifier.neutron.model import Neutron
from verifier.packet import Context, Mode, PacketState
from verifier.topology import Delivered, Endpoint, LeftCloud, Location, Outcome, Undecided
from verifier.verdict import Counterexample, Finding, Verdict

PROPERTY = "isolation"
ASSUMPTIONS_ISOLATION = (
    "security groups (the iptables firewall on qbr) are not relied on: a finding says, for each violating "
    "pair, whether with them applied packets still get through",
    "router and DHCP namespaces forward as their routes and iptables say, every packet being the first of its "
    "connection; a next hop whose MAC neutron.json does not give may have any MAC",
    "what leaves through a router's gateway or a physical uplink is on the public external network: a path "
    "out and back in through a floating IP is public, not a violation",
)
MAX_ATTEMPTS_PER_CLASS = 16
# Device visits allowed to one precise search: deciding whether a candidate is
# real, and (once it is) finding a more readable example of it.  A search that
# runs out is undecided, never refuted.
SEARCH_BUDGET = 20_000
PROFILE_BUDGET = 300

Segment = frozenset[int] | tuple[str, int | None]


@dataclass(frozen=True)
class _Candidate:
    """A source that the abstract graph says may reach a foreign port (or an undecided outcome)."""

    source: Endpoint
    target: int
    kind: str  # "violation", "leak" (same project, other network) or "unknown"
    groups: tuple[str, str]  # the (from, to) projects or segments, for the summary
    cls: tuple[object, ...]  # candidates of one class need one confirmation


@dataclass
class _Found:
    path: Path
    ctx: Context
    source: PacketState
    net: OvsNetwork


@dataclass
class _Result:
    examples: list[Counterexample] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    pairs: set[tuple[str, str]] = field(default_factory=set)
    example_pairs: list[tuple[str, str]] = field(default_factory=list)
    refuted: int = 0


def check_isolation(
    deployment: Deployment, *, net: OvsNetwork | None = None, allow: Iterable[tuple[str, str]] = ()
) -> Verdict:
    """Prove or refute tenant isolation (segment isolation without neutron.json).

    ``allow`` lists pairs of projects the user allows to talk (both ways):
    their paths are reported as findings, not violations.
    """
    started = time.perf_counter()
    base = net or build_network(deployment)
    plain = base.variant(enforce_firewall=False, external_sink=True)
    by_neutron = deployment.neutron is not None
    sources = _sources(plain, by_neutron)
    if not sources:
        return Verdict(PROPERTY, "vacuous", "no VM port on any bridge: nothing to check", coverage=coverage(deployment))
    segments = {} if by_neutron else _segments(plain, sources)
    groups = {_name(segments[s.id]) if segments else (s.project or "?") for s in sources}
    result, graph, candidates = _run(deployment, plain, sources, segments)
    allowed = {frozenset(p) for p in allow}
    _apply_allow(result, allowed)
    if by_neutron and result.pairs:
        _security_groups_only(deployment, base, sources, result)
    stats = {
        "seconds": round(time.perf_counter() - started, 3),
        "sources": len(sources),
        "abstract_states": len(graph.states),
        "candidates": len(candidates),
        "refuted_candidates": result.refuted,
    }
    return _verdict(deployment, sources, groups, result, stats, by_neutron)


def _run(
    deployment: Deployment,
    net: OvsNetwork,
    sources: list[Endpoint],
    segments: dict[str, Segment],
    *,
    readable: bool = True,
) -> tuple[_Result, AbstractGraph, list[_Candidate]]:
    """The abstract graph from every source, then the precise confirmation of each candidate."""
    graph = AbstractGraph(net)
    nodes = {
        s.id: graph.node(Location(s.host, s.bridge), source_packet(graph.ctx, s.port, prefix="abs")) for s in sources
    }
    graph.expand()
    candidates = []
    routed = routed_pairs(deployment.neutron)
    for s in sources:
        for oid in _bits(graph.reach(nodes[s.id])):
            c = _classify(deployment, s, oid, graph.outcomes[oid], segments, routed)
            if c is not None:
                candidates.append(c)
    return _confirm_all(deployment, net, graph, candidates, readable), graph, candidates


def _apply_allow(result: _Result, allowed: set[frozenset[str]]) -> None:
    """Move the paths between allowed pairs of projects from violations to findings."""
    if not allowed:
        return
    kept = []
    for pair, example in zip(result.example_pairs, result.examples, strict=True):
        if frozenset(pair) in allowed:
            result.findings.append(Finding("allowed", f"{example.title} (allowed by --allow {pair[0]}:{pair[1]})"))
        else:
            kept.append((pair, example))
    result.example_pairs = [p for p, _ in kept]
    result.examples = [e for _, e in kept]
    result.pairs = {p for p in result.pairs if frozenset(p) not in allowed}


def _security_groups_only(deployment: Deployment, base: OvsNetwork, sources: list[Endpoint], result: _Result) -> None:
    """For each violating pair, whether the security groups (the qbr firewalls) stop every packet."""
    guarded = base.variant(enforce_firewall=True, external_sink=True)
    if not any(e.kind == "vm" and e.bridge.startswith("qbr") for e in guarded.endpoints.values()):
        return
    projects = {a for a, _ in result.pairs}
    srcs = [s for s in _sources(guarded, True) if s.project in projects]
    with_sg, _, _ = _run(deployment, guarded, srcs, {}, readable=False)
    for a, b in sorted(result.pairs):
        if (a, b) in with_sg.pairs:
            text = f"{a} -> {b}: packets get through even with the security groups applied"
        elif with_sg.unknown:
            text = f"{a} -> {b}: whether the security groups stop every packet is undecided ({with_sg.unknown[0]})"
        else:
            text = f"{a} -> {b}: only security groups stand between the two projects (with them applied, no packet gets through)"
        result.findings.append(Finding("security groups", text))


# ---------------------------------------------------------------- sources and segments


def _sources(net: OvsNetwork, by_neutron: bool) -> list[Endpoint]:
    """VM ports (with neutron.json) or every access port (without)."""
    out = []
    for e in net.endpoints.values():
        if by_neutron:
            if e.kind == "vm" and e.network is not None:
                out.append(e)
        elif e.kind == "other" and _access_tag(net, e) is not None:
            out.append(e)
    return sorted(out, key=lambda e: e.id)


def _access_tag(net: OvsNetwork, e: Endpoint) -> int | None:
    host = net.dataplane.host(e.host)
    bridge = host.bridge(e.bridge) if host else None
    port = bridge.ovsdb_port(e.device) if bridge else None
    return port.tag if port is not None else None


def _segments(net: OvsNetwork, sources: list[Endpoint]) -> dict[str, Segment]:
    """Each access port's segment: the tunnel keys its frames leave its host with while nothing is learned.

    Learned entries are left out on purpose: they are what a broken mapping
    elsewhere can poison, and the segment is what the port floods into.
    """
    plain = net.without_learning()
    graph = AbstractGraph(plain)
    nodes = {
        s.id: graph.node(Location(s.host, s.bridge), source_packet(graph.ctx, s.port, prefix="seg")) for s in sources
    }
    graph.expand()
    out: dict[str, Segment] = {}
    for s in sources:
        keys: set[int] = set()
        seen = {nodes[s.id]}
        stack = [nodes[s.id]]
        while stack:
            for nxt in graph.succ[stack.pop()]:
                loc, pkt = graph.states[nxt]
                if loc.host != s.host:
                    tun = pkt.fields["tun_id"]
                    if isinstance(tun, int):
                        keys.add(tun)
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        out[s.id] = frozenset(keys) if keys else (s.host, _access_tag(net, s))
    return out


def _name(segment: Segment) -> str:
    if isinstance(segment, frozenset):
        return "segment " + "+".join(f"tun_id={k:#x}" for k in sorted(segment))
    return f"local VLAN {segment[1]} on {segment[0]}"


def _overlap(a: Segment, b: Segment) -> bool:
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        return bool(a & b)
    return a == b


# ---------------------------------------------------------------- candidates


def _classify(
    deployment: Deployment,
    s: Endpoint,
    oid: int,
    outcome: Outcome,
    segments: dict[str, Segment],
    routed: frozenset[frozenset[str | None]],
) -> _Candidate | None:
    if isinstance(outcome, Undecided):
        return _Candidate(s, oid, "unknown", ("?", "?"), ("unknown", oid))
    if isinstance(outcome, LeftCloud):
        return _left_cloud(deployment, s, oid, outcome)
    if not isinstance(outcome, Delivered):
        return None
    d = outcome.endpoint
    if d.id == s.id or d.kind in ("host", "external"):
        return None
    if segments:
        if d.id not in segments or _overlap(segments[s.id], segments[d.id]):
            return None
        a, b = _name(segments[s.id]), _name(segments[d.id])
        return _Candidate(s, oid, "violation", (a, b), ("segments", a, b))
    carried = d.carries or ((d.network,) if d.network else ())
    if not carried or s.network in carried:
        return None
    neutron = deployment.neutron
    assert neutron is not None and s.project is not None
    owners = {neutron.project_of_network(n) for n in carried if neutron.has_network(n)}
    foreign = sorted(owners - {s.project})
    cls = ("networks", s.network, carried)
    if foreign:
        return _Candidate(s, oid, "violation", (s.project, foreign[0]), cls)
    if owners and not all(frozenset((s.network, n)) in routed for n in carried):
        return _Candidate(s, oid, "leak", (s.project, s.project), cls)
    return None


def routed_pairs(neutron: Neutron | None) -> frozenset[frozenset[str | None]]:
    """Pairs of networks with an interface on one router: traffic between them is routing, not a leak."""
    by_router: dict[str, set[str]] = {}
    for p in neutron.ports if neutron is not None else ():
        if p.device_owner in ("network:router_interface", "network:router_interface_distributed"):
            by_router.setdefault(p.device_id, set()).add(p.network_id)
    return frozenset(frozenset((a, b)) for nets in by_router.values() for a in nets for b in nets if a != b)


def _left_cloud(deployment: Deployment, s: Endpoint, oid: int, outcome: LeftCloud) -> _Candidate | None:
    """A tunnel to an address no snapshot host has: undecided only if foreign ports may live there."""
    neutron = deployment.neutron
    if neutron is None:
        return _Candidate(s, oid, "unknown", ("?", "?"), ("unknown", oid))
    known = {h.name for h in deployment.dataplane.hosts}
    there = {a.host for a in neutron.agents if a.tunneling_ip is not None and f" {a.tunneling_ip}" in outcome.where}
    for p in neutron.ports:
        foreign_port = neutron.has_network(p.network_id) and neutron.project_of_network(p.network_id) != s.project
        if p.binding_host_id in there - known and foreign_port:
            return _Candidate(s, oid, "unknown", ("?", "?"), ("unknown", oid))
    return None


# ---------------------------------------------------------------- precise confirmation


def _confirm_all(
    deployment: Deployment, net: OvsNetwork, graph: AbstractGraph, candidates: list[_Candidate], readable: bool
) -> _Result:
    """Search every class of candidates precisely until one of its members is confirmed."""
    result = _Result()
    done: set[tuple[object, ...]] = set()
    attempts: dict[tuple[object, ...], int] = {}
    guides: dict[int, Prune] = {}
    for c in candidates:
        if c.cls in done or attempts.get(c.cls, 0) >= MAX_ATTEMPTS_PER_CLASS:
            continue
        attempts[c.cls] = attempts.get(c.cls, 0) + 1
        if c.target not in guides:
            guides[c.target] = graph.guide(c.target)
        found, doubts = _search(net, graph, c, guides[c.target], readable)
        if found is None:
            if doubts:
                result.unknown.append(f"{c.source}: {doubts[0]}")
                done.add(c.cls)
            else:
                result.refuted += 1
            continue
        done.add(c.cls)
        if c.kind == "unknown":
            result.unknown.append(f"{c.source} may reach: {graph.outcomes[c.target].describe()}")
            continue
        try:
            example = _example(deployment, net, found, c, graph)
        except Disagreement as exc:
            result.unknown.append(f"internal error, the concrete and symbolic models disagree: {exc}")
            continue
        if c.kind == "leak":
            result.findings.append(Finding("cross-network leak", example.title))
            continue
        result.pairs.add(c.groups)
        result.example_pairs.append(c.groups)
        result.examples.append(example)
    for cls, n in attempts.items():
        if cls not in done and n >= MAX_ATTEMPTS_PER_CLASS:
            result.unknown.append(f"gave up after {n} refuted candidates of {cls}")
    return result


# Tried in order once a path is known to exist, so that a counterexample is an
# ordinary untagged TCP or IPv4 packet when one exists.
_PROFILES: tuple[dict[str, int], ...] = (
    {"eth_type": 0x0800, "ip_proto": 6, "vlan_tci": 0},
    {"eth_type": 0x0800, "vlan_tci": 0},
    {"eth_type": 0x0800},
)


def _search(
    net: OvsNetwork, graph: AbstractGraph, c: _Candidate, prune: Prune, readable: bool
) -> tuple[_Found | None, tuple[str, ...]]:
    """A precise path from the source to the candidate outcome, or None (with doubts if undecided).

    The first search leaves every header open and decides whether a path
    exists; only then (when ``readable``) are the profiles tried, for a more
    readable example, each with a small budget: first with nothing learned,
    then with learned entries.
    """
    found, doubts = _search_with(net, graph, c, prune, {}, SEARCH_BUDGET)
    if found is None or not readable:
        return found, doubts
    # A path that needs no learned entry is the more convincing example.
    quiet = net.without_learning()
    for variant in (quiet, net):
        for profile in _PROFILES:
            nicer, _ = _search_with(variant, graph, c, prune, profile, PROFILE_BUDGET)
            if nicer is not None:
                return nicer, ()
    return found, ()


def _search_with(
    net: OvsNetwork, graph: AbstractGraph, c: _Candidate, prune: Prune, profile: dict[str, int], budget: int
) -> tuple[_Found | None, tuple[str, ...]]:
    ctx = Context(Mode.PRECISE)
    pkt = source_packet(ctx, c.source.port, prefix="vm", fixed=profile)
    want = outcome_key(graph.outcomes[c.target])
    paths = explore(
        net,
        ctx,
        Location(c.source.host, c.source.bridge),
        pkt,
        prune=prune,
        stop=lambda p: outcome_key(p.outcome) == want and not p.doubts,
        max_states=budget,
    )
    hits = [p for p in paths if outcome_key(p.outcome) == want]
    clean = [p for p in hits if not p.doubts]
    if clean:
        return _Found(clean[0], ctx, pkt, net), ()
    if hits:
        return None, hits[0].doubts
    gave_up = [p.outcome.reason for p in paths if isinstance(p.outcome, BudgetExhausted)]
    if gave_up:
        return None, (f"the precise search toward {graph.outcomes[c.target].describe()} {gave_up[0]}",)
    return None, ()


def _example(
    deployment: Deployment, net: OvsNetwork, found: _Found, c: _Candidate, graph: AbstractGraph
) -> Counterexample:
    src = c.source
    mac = ip = None
    if deployment.neutron is not None and src.neutron_port is not None:
        port = deployment.neutron.port(src.neutron_port)
        mac = parse_mac(port.mac_address)
        ips = [a for a in port.ips if a.version == 4]
        ip = int(ips[0]) if ips else None
    concrete = concretize(found.ctx, found.path, found.source, default_preferences(mac, ip))
    if concrete is None:
        raise Disagreement("Z3 gave no model for a path it found feasible")
    outcome = graph.outcomes[c.target]
    title = f"{c.groups[0]} -> {c.groups[1]}: {src} reaches {outcome.describe().removeprefix('delivered to ')}"
    return replay(found.net, Location(src.host, src.bridge), found.path, concrete, title, str(src))


# ---------------------------------------------------------------- verdict


def _verdict(
    deployment: Deployment,
    sources: list[Endpoint],
    groups: set[str],
    result: _Result,
    stats: dict[str, float],
    by_neutron: bool,
) -> Verdict:
    what = "projects" if by_neutron else "segments"
    assumptions = [*ASSUMPTIONS_OVS, *ASSUMPTIONS_ISOLATION]
    if not by_neutron:
        assumptions.append(
            "without neutron.json, networks are the tunnel-key segments the dumps reveal: a port plugged "
            "into another network's VLAN looks like a member of that segment"
        )
    common = {
        "assumptions": tuple(assumptions),
        "findings": tuple(result.findings),
        "coverage": coverage(deployment),
        "stats": stats,
    }
    if result.examples:
        pairs = sorted(result.pairs)
        summary = f"isolation violated for {len(pairs)} ordered pair(s) of {what}: " + "; ".join(
            f"{a} -> {b}" for a, b in pairs
        )
        return Verdict(PROPERTY, "violated", summary, tuple(result.examples), tuple(result.unknown), **common)  # type: ignore[arg-type]
    if result.unknown:
        summary = f"isolation could not be decided ({len(result.unknown)} undecided case(s))"
        return Verdict(PROPERTY, "unknown", summary, reasons=tuple(result.unknown), **common)  # type: ignore[arg-type]
    if len(groups) < 2:
        summary = f"only one {what[:-1]} has VM ports ({', '.join(sorted(groups))}): no pair to isolate"
        return Verdict(PROPERTY, "vacuous", summary, **common)  # type: ignore[arg-type]
    ports = "VM port(s)" if by_neutron else "access port(s)"
    summary = (
        f"isolation holds: no packet any of {len(sources)} {ports} can emit reaches a port of another "
        f"{what[:-1]}'s networks ({len(groups)} {what})"
    )
    return Verdict(PROPERTY, "holds", summary, **common)  # type: ignore[arg-type]


def _bits(bits: int) -> Iterable[int]:
    i = 0
    while bits:
        if bits & 1:
            yield i
        bits >>= 1
        i += 1
