"""Where one concrete packet goes, device by device, through the concrete twins.

``walk`` follows every copy (a flood makes several) from a starting device
and port until each is delivered, dropped, looped, leaves the snapshot or
hits something the models do not know; each end keeps the hop-by-hop trace.
This is the "must" view the reachability properties use: MAC tables empty
(NORMAL floods), flows as dumped (or, with the ``fresh`` twins, no learned or
timed flows), the first packet of a connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from models.firewall import HybridFirewall
from models.linux_concrete import ConcreteFirewall, ConcreteNamespace, ConcreteNetfilter
from models.namespace import NamespaceDevice
from models.network import OvsNetwork, TaintedBridge
from models.openflow import OpenFlowBridge
from models.openflow_concrete import ConcreteBridge, CResult
from verifier import ir
from verifier.header import FIELD_NAMES
from verifier.packet import Context, Mode, PacketState
from verifier.topology import Delivered, Dropped, Enter, LeftCloud, Location, Looped, Outcome, Terminal, Undecided

MAX_HOPS = 64


@dataclass(frozen=True)
class WalkHop:
    """One device crossed: its steps (flows, rules, notes) and where the copy left."""

    location: Location
    in_port: str
    packet: dict[str, int]
    steps: tuple[str, ...]
    out_port: str | None
    via: str = ""


@dataclass(frozen=True)
class End:
    """How one copy ended."""

    outcome: Outcome
    packet: dict[str, int]
    hops: tuple[WalkHop, ...]


@dataclass
class Walk:
    ends: list[End] = field(default_factory=list)

    def delivered(self) -> list[End]:
        return [e for e in self.ends if isinstance(e.outcome, Delivered)]

    def undecided(self) -> list[End]:
        return [e for e in self.ends if isinstance(e.outcome, Undecided)]


class Twins:
    """The concrete twin of every device of a network (built once, reused)."""

    def __init__(self, net: OvsNetwork, *, without_timed_flows: bool = False) -> None:
        self.net = net
        self.without_timed = without_timed_flows
        self._cache: dict[Location, object] = {}

    def names(self, loc: Location) -> dict[int, str]:
        device = self.net.device(loc)
        return {} if device is None else _names(device)

    def run(self, loc: Location, packet: dict[str, int]) -> CResult | None:
        twin = self._cache.get(loc)
        if twin is None:
            twin = self._make(loc)
            self._cache[loc] = twin
        if twin is False:
            return None
        return twin.run(packet)  # type: ignore[attr-defined]

    def originate(self, loc: Location, packet: dict[str, int], iface: str) -> CResult | None:
        device = self.net.device(loc)
        if not isinstance(device, NamespaceDevice):
            return None
        twin = ConcreteNamespace(device.ns, ipsets=device.ipsets, neighbor=device.neighbor)
        return twin.originate(packet, iface)

    def _make(self, loc: Location) -> object:
        device = self.net.device(loc)
        if isinstance(device, TaintedBridge):
            device = device.inner
        if isinstance(device, OpenFlowBridge):
            bridge = device.bridge
            if self.without_timed:
                flows = tuple(f for f in bridge.flows if not (f.idle_timeout or f.hard_timeout))
                bridge = ir.Bridge(bridge.name, bridge.ports, bridge.of_ports, flows, bridge.fail_mode)
            return ConcreteBridge(bridge)
        if isinstance(device, NamespaceDevice):
            return ConcreteNamespace(device.ns, ipsets=device.ipsets, neighbor=device.neighbor)
        if isinstance(device, HybridFirewall):
            nf = ConcreteNetfilter(device.nf.nf, device.nf.ipsets_text) if device.nf is not None else None
            return ConcreteFirewall(device.name, device.tap, device.qvb, nf, enforce=device.enforce)
        return False


def _names(device: object) -> dict[int, str]:
    if isinstance(device, TaintedBridge):
        device = device.inner
    if isinstance(device, OpenFlowBridge):
        return {p.number: p.name for p in device.bridge.of_ports}
    if isinstance(device, NamespaceDevice):
        return {**device.ports, 0: "(local stack)"}
    if isinstance(device, HybridFirewall):
        return {1: device.tap, 2: device.qvb}
    return {}


def walk(twins: Twins, start: Location, packet: dict[str, int]) -> Walk:
    """Follow every copy of ``packet`` entering ``start`` on ``packet['in_port']``."""
    result = Walk()
    _walk(twins, start, packet, (), frozenset(), result)
    return result


def walk_emission(twins: Twins, start: Location, port: int, packet: dict[str, int], hops: tuple[WalkHop, ...]) -> Walk:
    """Follow a copy that ``start`` emits on ``port`` (a packet a namespace sends itself, say)."""
    result = Walk()
    _follow(twins, start, port, packet, hops, frozenset(), result)
    return result


def _walk(
    twins: Twins,
    loc: Location,
    packet: dict[str, int],
    hops: tuple[WalkHop, ...],
    seen: frozenset[object],
    result: Walk,
) -> None:
    key = (loc, tuple(packet[n] for n in FIELD_NAMES))
    if key in seen:
        result.ends.append(End(Looped(f"back at {loc} with the same packet"), packet, hops))
        return
    if len(hops) >= MAX_HOPS:
        result.ends.append(End(Looped(f"more than {MAX_HOPS} devices crossed"), packet, hops))
        return
    run = twins.run(loc, packet)
    names = twins.names(loc)
    in_name = names.get(packet["in_port"], str(packet["in_port"]))
    if run is None:
        result.ends.append(End(Undecided(f"no model of {loc}"), packet, hops))
        return
    seen = seen | {key}
    for reason in run.unknown:
        hop = WalkHop(loc, in_name, packet, _texts(run.steps), None)
        result.ends.append(End(Undecided(reason), packet, (*hops, hop)))
    if not run.emissions and not run.unknown:
        last = run.ends[-1].note if run.ends else (f"{loc}: no output")
        hop = WalkHop(loc, in_name, packet, _texts(run.steps), None)
        why = run.error or last or "no output"
        result.ends.append(End(Dropped(f"{loc.host} {loc.device}: {why}"), packet, (*hops, hop)))
    for em in run.emissions:
        hop = WalkHop(loc, in_name, packet, _texts(em.steps), names.get(em.port, str(em.port)))
        _follow(twins, loc, em.port, em.packet, (*hops, hop), seen, result)


def _follow(
    twins: Twins,
    loc: Location,
    port: int,
    packet: dict[str, int],
    hops: tuple[WalkHop, ...],
    seen: frozenset[object],
    result: Walk,
) -> None:
    ctx = Context(Mode.ABSTRACT)
    for arrival in twins.net.follow(ctx, loc, port, PacketState(dict(packet))):
        pkt = {n: _int(arrival.pkt.fields[n]) for n in FIELD_NAMES}
        last = (*hops[:-1], _via(hops[-1], arrival.via)) if hops else hops
        if isinstance(arrival, Terminal):
            result.ends.append(End(arrival.outcome, pkt, last))
        elif isinstance(arrival, Enter):
            _walk(twins, arrival.location, pkt, last, seen, result)


def _int(value: object) -> int:
    # Only a tunnel port without local_ip leaves a value unknown (the outer source): walk on with 0.
    return value if isinstance(value, int) else 0


def _via(hop: WalkHop, via: str) -> WalkHop:
    return WalkHop(hop.location, hop.in_port, hop.packet, hop.steps, hop.out_port, via)


def _texts(steps: Sequence[object]) -> tuple[str, ...]:
    out = []
    for s in steps:
        flow = getattr(s, "flow", None)
        note = getattr(s, "note", "")
        if flow is not None:
            out.append(f"table {flow.table} priority {flow.priority} [{flow.provenance}]")
        elif note:
            out.append(note)
    return tuple(out)


__all__ = ["End", "LeftCloud", "Twins", "Walk", "WalkHop", "walk", "walk_emission"]
