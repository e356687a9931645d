"""``verify trace``: where one packet (or every packet matching some fields) goes.

The fields the user gives are fixed; the others are left open.  The engine
explores precisely and groups the paths by outcome; each distinct outcome is
shown with the flows that decide it (matched, and higher-priority ones the
packet must not match) and a concrete example packet replayed hop by hop
through the concrete twins.  With every header field fixed this is one
packet's path across bridges and hosts, what ``ofproto/trace`` does for one
bridge.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.build import build_network
from models.network import OvsNetwork
from models.replay import Disagreement, concretize, default_preferences, replay
from verifier.deployment import Deployment
from verifier.engine import BudgetExhausted, Path, explore
from verifier.errors import UsageError
from verifier.header import parse_mac
from verifier.neutron.naming import parse_device_name
from verifier.packet import Context, Mode, initial_packet
from verifier.snapshot.flow_writer import format_match
from verifier.topology import Delivered, Dropped, Endpoint, Location
from verifier.verdict import Counterexample


@dataclass(frozen=True)
class TraceOutcome:
    """One distinct outcome: how many paths end so, what decides it, an example."""

    outcome: str
    paths: int
    conditions: tuple[str, ...]
    example: Counterexample | None
    note: str = ""


@dataclass(frozen=True)
class TraceReport:
    source: Endpoint
    fixed: dict[str, int]
    outcomes: tuple[TraceOutcome, ...]


def resolve_source(net: OvsNetwork, deployment: Deployment, spec: str) -> Endpoint:
    """The endpoint ``--from`` names: a device name, a Neutron port id (or prefix), port name or device id.

    Any device of a VM port (tap, qvb, qvo, qbr) names the VM: packets start at its tap.
    """
    found: dict[str, Endpoint] = {}
    for e in net.endpoints.values():
        if spec in (e.device, e.id) or (
            e.neutron_port is not None and len(spec) >= 8 and e.neutron_port.startswith(spec)
        ):
            found[e.id] = e
    neutron = deployment.neutron
    if not found and neutron is not None:
        ids = {p.id for p in neutron.ports if spec in (p.name, p.device_id)}
        found = {e.id: e for e in net.endpoints.values() if e.neutron_port in ids}
    parsed = parse_device_name(spec)
    if not found and parsed is not None and parsed[0] in ("tap", "qvo", "qvb", "qbr"):
        # Another device of the same VM port (qvo on br-int, say): packets still start at the VM.
        prefix = parsed[1].lower()
        found = {
            e.id: e
            for e in net.endpoints.values()
            if e.kind == "vm" and e.neutron_port is not None and e.neutron_port.lower().startswith(prefix)
        }
    if len(found) == 1:
        return next(iter(found.values()))
    if not found:
        names = sorted(e.device for e in net.endpoints.values() if e.kind == "vm")[:12]
        raise UsageError("--from", f"no port named {spec!r} (VM ports: {', '.join(names) or 'none'})", spec)
    raise UsageError("--from", f"{spec!r} names {len(found)} ports: {', '.join(sorted(found))}", spec)


# Device visits one trace may make; with every header open, the router and DHCP namespaces split a
# packet into very many paths, and the listing then says it is incomplete rather than running on.
TRACE_BUDGET = 500


def trace(deployment: Deployment, spec: str, fixed: dict[str, int], *, net: OvsNetwork | None = None) -> TraceReport:
    """Every distinct outcome for packets from ``spec`` with the ``fixed`` header fields."""
    net = net or build_network(deployment)
    src = resolve_source(net, deployment, spec)
    ctx = Context(Mode.PRECISE)
    try:
        pkt = initial_packet(ctx, "pkt", {**fixed, "in_port": src.port})
    except ValueError as exc:
        raise UsageError("fields", str(exc)) from exc
    paths = explore(net, ctx, Location(src.host, src.bridge), pkt, max_states=TRACE_BUDGET)
    groups: dict[str, list[Path]] = {}
    for p in paths:
        groups.setdefault(_describe(p), []).append(p)
    mac = ip = None
    if deployment.neutron is not None and src.neutron_port is not None:
        port = deployment.neutron.port(src.neutron_port)
        mac = parse_mac(port.mac_address)
        v4 = [a for a in port.ips if a.version == 4]
        ip = int(v4[0]) if v4 else None
    outcomes = []
    for text in sorted(groups, key=_order):
        first = groups[text][0]
        example = None
        note = ""
        if isinstance(first.outcome, BudgetExhausted):
            note = "the listing above is incomplete: fix more header fields (--to, --tcp, FIELD=VALUE) to narrow it"
            outcomes.append(TraceOutcome(text, len(groups[text]), (), None, note))
            continue
        concrete = concretize(ctx, first, pkt, default_preferences(mac, ip))
        if concrete is not None:
            try:
                example = replay(net, Location(src.host, src.bridge), first, concrete, text, str(src))
            except Disagreement as exc:
                note = f"internal error, the concrete and symbolic models disagree: {exc}"
        if first.doubts:
            note = "; ".join(first.doubts)
        outcomes.append(TraceOutcome(text, len(groups[text]), _conditions(first), example, note))
    return TraceReport(src, fixed, tuple(outcomes))


def _describe(p: Path) -> str:
    if isinstance(p.outcome, Dropped):
        return p.outcome.describe()
    return p.outcome.describe()


def _order(text: str) -> tuple[int, str]:
    return (0 if text.startswith("delivered") else 1, text)


def _conditions(p: Path) -> tuple[str, ...]:
    """The flows that decide the path: matched ones and higher-priority ones that must not match."""
    out = []
    for hop in p.hops:
        for step in hop.steps:
            if step.kind not in ("match", "miss", "learned"):
                continue
            where = f"{step.host} {step.device} table {step.table}"
            for flow in step.excluded:
                out.append(f"{where}: not {format_match(flow)}")
            if step.kind == "match" and step.flow is not None:
                out.append(f"{where}: {format_match(step.flow)}")
            elif step.kind == "learned":
                out.append(f"{where}: a learned entry {step.learned or step.payload}")
            else:
                out.append(f"{where}: no flow matches")
    return tuple(dict.fromkeys(out))


def delivered_to(report: TraceReport) -> list[str]:
    """The endpoints some path delivers to (for tests and summaries)."""
    return [o.outcome for o in report.outcomes if o.outcome.startswith("delivered")]


__all__ = ["Delivered", "TraceOutcome", "TraceReport", "delivered_to", "resolve_source", "trace"]
