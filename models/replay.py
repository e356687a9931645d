"""Counterexamples: a Z3 model of a path turned into a packet, re-run through the concrete twins.

``concretize`` picks a readable packet satisfying the path condition (IPv4/TCP,
the source port's own MAC and IP, TTL 64... when the path allows).
``replay`` then sends that packet through ``ConcreteBridge`` device by device,
following the same links, and checks at every hop that the concrete run hits
the same flows, leaves on the same port with the same header values as the
symbolic path says.  A mismatch is a bug in one of the two models:
``Disagreement`` is raised rather than printing an unconfirmed result.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import z3

from models.firewall import QVB, TAP, HybridFirewall
from models.learning import LearnedTemplate
from models.linux_concrete import ConcreteFirewall, ConcreteNamespace, ConcreteNetfilter
from models.namespace import LOCAL, NamespaceDevice
from models.network import OvsNetwork, TaintedBridge
from models.openflow import OpenFlowBridge
from models.openflow_concrete import ConcreteBridge, CResult, CStep
from verifier import ir
from verifier import symbolic as sy
from verifier.engine import Hop, Path, resolve_alternatives
from verifier.header import CT_STATE_BITS, FIELD_NAMES, FIELDS, describe, normalize
from verifier.packet import Context, Mode, PacketState
from verifier.snapshot.flow_writer import format_flow, format_rule
from verifier.topology import Delivered, Dropped, Enter, LeftCloud, Location, Terminal, Undecided
from verifier.verdict import Counterexample, TraceHop


class Disagreement(Exception):
    """The concrete twin does not follow the symbolic path: a model bug."""


@dataclass(frozen=True)
class Concrete:
    """A model of a path: the packet and the values of the path's symbolic choices."""

    packet: dict[str, int]
    model: z3.ModelRef


def concretize(
    ctx: Context,
    path: Path,
    source: PacketState,
    prefer: Sequence[tuple[str, int]] = (),
) -> Concrete | None:
    """A packet for ``path`` (None if Z3 finds none), nudged towards the ``prefer`` field values."""
    assert ctx.solver is not None
    pc = path.pkt.pc
    if ctx.solver.model(pc) is None:
        return None
    chosen = list(pc)
    for name, value in prefer:
        v = source.fields[name]
        if isinstance(v, int) or v.term is None:
            continue
        lit = ctx.solver.literal(v.term == value)
        if ctx.solver.model((*chosen, lit)) is not None:
            chosen.append(lit)
    model = ctx.solver.model(tuple(chosen))
    assert model is not None
    packet = {n: _eval(model, source.fields[n]) for n in FIELD_NAMES}
    return Concrete(normalize(packet), model)


def _eval(model: z3.ModelRef, v: sy.Value) -> int:
    if isinstance(v, int):
        return v
    if v.term is None:
        raise ValueError("abstract value in a precise path")
    return int(model.eval(v.term, model_completion=True).as_long())


def default_preferences(mac: int | None = None, ip: int | None = None) -> list[tuple[str, int]]:
    """Readable defaults: the source's own addresses, untagged IPv4/TCP to port 22, TTL 64."""
    prefs: list[tuple[str, int]] = []
    if mac is not None:
        prefs.append(("eth_src", mac))
    prefs += [("vlan_tci", 0), ("eth_type", 0x0800), ("ip_proto", 6)]
    if ip is not None:
        prefs.append(("ip_src", ip))
    prefs += [("ip_ttl", 64), ("tp_src", 40000), ("tp_dst", 22), ("eth_dst", 0xFA163E000001)]
    return prefs


# ---------------------------------------------------------------- replay


def replay(net: OvsNetwork, start: Location, path: Path, concrete: Concrete, title: str, source: str) -> Counterexample:
    """Run the concrete packet along ``path`` through the concrete twins and build the report."""
    path = resolve_alternatives(path, lambda lit: z3.is_true(concrete.model.eval(lit, model_completion=True)))
    learned = _learned_flows(path, concrete.model)
    ct_states = _ct_states(path, concrete.model)
    packet = dict(concrete.packet)
    loc = start
    start_names = _twin(net, start, path, 0, concrete.model, learned, ct_states).names
    hops: list[TraceHop] = []
    setup = [
        f"ovs-ofctl add-flow {loc_.device} '{format_flow(f, style='add')}'   # on {loc_.host}"
        for loc_, flows in learned.items()
        for f in flows
    ]
    assumptions = [
        f"a learned entry exists on {loc_}: {format_flow(f, style='add')}"
        for loc_, flows in learned.items()
        for f in flows
    ]
    for i, hop in enumerate(path.hops):
        if hop.location != loc:
            raise Disagreement(f"hop {i}: expected {hop.location}, the packet is at {loc}")
        twin = _twin(net, loc, path, i, concrete.model, learned, ct_states)
        result = twin.run(packet)
        names = twin.names
        trace = twin.replay(packet)
        last = i == len(path.hops) - 1
        if hop.out_port is None:
            _check_steps(i, hop, result.steps)
            _check_end(i, path, result)
            hops.append(_trace_hop(loc, names, packet, result, None, None, "", trace))
            return _example(title, source, concrete, hops, path, setup, assumptions, start_names)
        emitted = [e for e in result.emissions if e.port == hop.out_port]
        if not emitted:
            raise Disagreement(f"hop {i} at {loc}: the concrete twin emits nothing on port {hop.out_port}")
        nxt = path.hops[i + 1].location if not last else None
        for em in emitted:
            _check_steps(i, hop, em.steps)
            _check_packet(i, hop, em.packet, concrete.model)
            arrival = _follow(net, loc, em.port, em.packet)
            if arrival is None:
                continue
            if last and isinstance(arrival, Terminal) and _same_outcome(arrival.outcome, path):
                hops.append(_trace_hop(loc, names, packet, result, em.packet, em.port, arrival.via, trace))
                return _example(title, source, concrete, hops, path, setup, assumptions, start_names)
            if not last and isinstance(arrival, Enter) and arrival.location == nxt:
                hops.append(_trace_hop(loc, names, packet, result, em.packet, em.port, arrival.via, trace))
                packet = {n: _eval(concrete.model, arrival.pkt.fields[n]) for n in FIELD_NAMES}
                loc = arrival.location
                break
        else:
            raise Disagreement(f"hop {i} at {loc}: no concrete copy on port {hop.out_port} continues the path")
    raise Disagreement("the path has no hops")


@dataclass
class _Twin:
    """A concrete device, its port names and how to replay a packet on the real system."""

    run: Callable[[dict[str, int]], CResult]
    names: dict[int, str]
    replay: Callable[[Mapping[str, int]], str]


def _twin(
    net: OvsNetwork,
    loc: Location,
    path: Path,
    index: int,
    model: z3.ModelRef,
    learned: dict[Location, list[ir.Flow]],
    ct_states: dict[tuple[int, Location], list[int]],
) -> _Twin:
    device = net.device(loc)
    if isinstance(device, TaintedBridge):
        device = device.inner
    if isinstance(device, OpenFlowBridge):
        bridge = _bridge(net, loc)
        states = ct_states.get((index, loc), [])
        names = {p.number: p.name for p in bridge.of_ports}

        def trace(packet: Mapping[str, int]) -> str:
            text = f"ovs-appctl ofproto/trace --names {loc.device} '{describe(packet, port_names=names)}'"
            return text + "".join(f" --ct-next '{_ct_text(s)}'" for s in states)

        return _Twin(ConcreteBridge(bridge, learned.get(loc, ()), states).run, names, trace)
    if isinstance(device, NamespaceDevice):
        macs = _choices(path, index, model, "neighbor_mac")
        ns_twin = ConcreteNamespace(
            device.ns, ipsets=device.ipsets, neighbor=device.neighbor, unknown_mac=macs[0] if macs else 0
        )
        names = {**device.ports, LOCAL: "(local stack)"}

        def ns_trace(packet: Mapping[str, int]) -> str:
            iface = device.ports.get(packet["in_port"], "?")
            src, dst = (str(ipaddress.IPv4Address(packet[f])) for f in ("ip_src", "ip_dst"))
            return f"ip netns exec {loc.device} ip route get {dst} from {src} iif {iface}"

        return _Twin(ns_twin.run, names, ns_trace)
    if isinstance(device, HybridFirewall):
        nf = ConcreteNetfilter(device.nf.nf, device.nf.ipsets_text) if device.nf is not None else None
        fw = ConcreteFirewall(device.name, device.tap, device.qvb, nf, enforce=device.enforce)
        names = {TAP: device.tap, QVB: device.qvb}

        def fw_trace(packet: Mapping[str, int]) -> str:
            port = device.tap[3:]
            return f"iptables -S neutron-openvswi-o{port[:10]}; iptables -S neutron-openvswi-i{port[:10]}"

        return _Twin(fw.run, names, fw_trace)
    raise Disagreement(f"no concrete twin for {loc}")


def _choices(path: Path, index: int, model: z3.ModelRef, name: str) -> list[int]:
    out = []
    for step in path.hops[index].steps:
        for key, value in step.choices:
            if key == name:
                out.append(_eval(model, value))
    return out


def _bridge(net: OvsNetwork, loc: Location) -> ir.Bridge:
    host = net.dataplane.host(loc.host)
    bridge = host.bridge(loc.device) if host is not None else None
    if bridge is None:
        raise Disagreement(f"no bridge {loc}")
    return bridge


def _follow(net: OvsNetwork, loc: Location, port: int, packet: dict[str, int]) -> Enter | Terminal | None:
    arrivals = net.follow(Context(Mode.ABSTRACT), loc, port, PacketState(dict(packet)))
    return arrivals[0] if len(arrivals) == 1 else None


def _same_outcome(outcome: object, path: Path) -> bool:
    want = path.outcome
    if isinstance(want, Delivered) and isinstance(outcome, Delivered):
        return want.endpoint.id == outcome.endpoint.id
    return type(want) is type(outcome)


def _check_steps(i: int, hop: Hop, steps: Sequence[CStep]) -> None:
    """The concrete twin must hit the same flows, in the same order, as the symbolic hop."""
    symbolic = [s.flow for s in hop.steps if s.kind == "match"]
    concrete = [s.flow for s in steps if s.flow is not None and not _is_learned(s.flow)]
    learned_sym = sum(1 for s in hop.steps if s.kind == "learned")
    learned_con = sum(1 for s in steps if s.flow is not None and _is_learned(s.flow))
    if symbolic != concrete or learned_sym != learned_con:
        raise Disagreement(
            f"hop {i} at {hop.location}: symbolic flows {[_flow_text(f) for f in symbolic]} "
            f"but concrete flows {[_flow_text(f) for f in concrete]}"
        )


def _is_learned(f: ir.Flow) -> bool:
    return f.provenance.file == "<learned>"


def _flow_text(f: ir.Flow | None) -> str:
    return "miss" if f is None else f"table={f.table} priority={f.priority} ({f.provenance})"


def _check_end(i: int, path: Path, result: CResult) -> None:
    if isinstance(path.outcome, Undecided):
        if not result.unknown:
            raise Disagreement(f"hop {i}: symbolic path undecided ({path.outcome.reason}) but the twin decides it")
    elif isinstance(path.outcome, Dropped) and result.emissions and result.error is None:
        raise Disagreement(
            f"hop {i}: symbolic path dropped, concrete twin emits on {[e.port for e in result.emissions]}"
        )


def _check_packet(i: int, hop: Hop, packet: Mapping[str, int], model: z3.ModelRef) -> None:
    if hop.out_pkt is None:
        return
    for name in FIELD_NAMES:
        want = _eval(model, hop.out_pkt.fields[name])
        if want != packet[name]:
            raise Disagreement(
                f"hop {i} at {hop.location}: {name} is {packet[name]:#x} in the twin, {want:#x} in the symbolic model"
            )


def _trace_hop(
    loc: Location,
    names: Mapping[int, str],
    packet: Mapping[str, int],
    result: CResult,
    out: Mapping[str, int] | None,
    out_port: int | None,
    via: str,
    trace: str,
) -> TraceHop:
    steps = []
    for s in result.steps:
        if s.flow is None and s.table is None:
            steps.append(s.note)
        elif s.flow is None:
            steps.append(f"table {s.table}: {s.note or 'table miss'}")
        else:
            steps.append(f"table {s.table} [{s.flow.provenance}] {format_rule(s.flow)}")
    for s in result.ends:
        if s.note and s.flow is None:
            steps.append(s.note)
    rewrites = []
    if out is not None:
        for name in FIELD_NAMES:
            if name == "in_port" or packet[name] == out[name]:
                continue
            f = FIELDS[name]
            rewrites.append(f"{name}: {f.format(packet[name])} -> {f.format(out[name])}")
    in_port = packet["in_port"]
    return TraceHop(
        host=loc.host,
        device=loc.device,
        in_port=names.get(in_port, str(in_port)),
        packet=describe(packet, port_names=names),
        steps=tuple(steps),
        rewrites=tuple(rewrites),
        out_port=None if out_port is None else names.get(out_port, str(out_port)),
        via=via,
        replay=trace,
    )


def _example(
    title: str,
    source: str,
    concrete: Concrete,
    hops: list[TraceHop],
    path: Path,
    setup: list[str],
    assumptions: list[str],
    names: Mapping[int, str],
) -> Counterexample:
    outcome = path.outcome
    text = outcome.describe() if isinstance(outcome, (Delivered, Dropped, LeftCloud, Undecided)) else str(outcome)
    return Counterexample(
        title=title,
        source=source,
        packet=concrete.packet,
        packet_text=describe(concrete.packet, port_names=names),
        hops=tuple(hops),
        outcome=text,
        setup=tuple(setup),
        assumptions=tuple(assumptions),
    )


# ---------------------------------------------------------------- learned entries, conntrack


def _learned_flows(path: Path, model: z3.ModelRef) -> dict[Location, list[ir.Flow]]:
    out: dict[Location, list[ir.Flow]] = {}
    for hop in path.hops:
        for step in hop.steps:
            if step.kind == "learned" and isinstance(step.payload, LearnedTemplate):
                out.setdefault(hop.location, []).append(learned_flow(step.payload, model))
    return out


def learned_flow(t: LearnedTemplate, model: z3.ModelRef) -> ir.Flow:
    """The concrete flow a learned template stands for under a Z3 model."""
    acc: dict[str, tuple[int, int]] = {}
    for s, v in t.conditions:
        value = _eval(model, v) << s.start
        old_v, old_m = acc.get(s.field, (0, 0))
        acc[s.field] = (old_v | (value & s.mask), old_m | s.mask)
    match = tuple(ir.FieldMatch(n, v & m & FIELDS[n].max, m & FIELDS[n].max) for n, (v, m) in sorted(acc.items()))
    actions: list[ir.Action] = []
    for kind, dst, v in t.actions:
        value = _eval(model, v)
        if kind == "load" and dst is not None:
            actions.append(ir.SetField(dst.field, (value << dst.start) & dst.mask, dst.mask))
        else:
            actions.append(ir.Output(value))
    spec = t.spec
    return ir.Flow(
        table=t.table,
        priority=t.priority,
        match=match,
        actions=tuple(actions),
        cookie=spec.cookie,
        idle_timeout=spec.idle_timeout,
        hard_timeout=spec.hard_timeout,
        provenance=ir.Provenance("<learned>", 0, f"installed by learn() of {t.source.provenance}"),
    )


def _ct_states(path: Path, model: z3.ModelRef) -> dict[tuple[int, Location], list[int]]:
    out: dict[tuple[int, Location], list[int]] = {}
    for i, hop in enumerate(path.hops):
        for step in hop.steps:
            for name, value in step.choices:
                if name == "ct_state":
                    out.setdefault((i, hop.location), []).append(_eval(model, value))
    return out


def _ct_text(state: int) -> str:
    return ",".join(name for name, bit in CT_STATE_BITS.items() if state & bit) or "0"
