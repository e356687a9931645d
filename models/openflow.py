"""The OpenFlow pipeline of one OVS bridge as a symbolic transfer function.

``OpenFlowBridge.transfer(ctx, pkt)`` returns every way the bridge may handle
the packet (``Branch``): the copies it emits on its ports, each with the steps
that led there, plus what ended without output.  Semantics follow
``ofproto-dpif-xlate.c``: highest priority wins (equal-priority overlaps are
all explored), a miss ends the lookup (in a resubmit, the caller goes on),
``resubmit(port,table)`` matches as if from ``port`` but acts with the real
input port, resubmits to the same or an earlier table deepen the translation
and 64 levels abort it (every output is dropped), output to the input port is
skipped, and ``dec_ttl`` on TTL 0/1 sends a packet-in and skips the rest of
its flow's actions (those of a flow that resubmitted to it still run).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from models import learning
from models.flowtable import Table, priority_groups
from models.learning import LearnedTemplate
from models.normal import normal
from models.vlan import VlanPort, vlan_ports
from verifier import ir
from verifier import symbolic as sy
from verifier.device import Branch, Emission, Step
from verifier.header import (
    CT_STATE_BITS,
    ETH_TYPE_IP,
    ETH_TYPE_IPV6,
    FIELDS,
    OFPP_ALL,
    OFPP_CONTROLLER,
    OFPP_FLOOD,
    OFPP_IN_PORT,
    OFPP_NORMAL,
    VLAN_CFI,
)
from verifier.packet import Context, PacketState, match_cond

MAX_DEPTH = 64
MAX_RESUBMITS = MAX_DEPTH * MAX_DEPTH

Entry = ir.Flow | LearnedTemplate


class _World:
    """One way the translation is going: the packet so far and everything it has emitted.

    Immutable by convention; ``replace`` (a hand-written copy, much cheaper
    than dataclasses.replace on this hot path) makes changed copies.
    """

    __slots__ = (
        "depth",
        "emissions",
        "ends",
        "error",
        "halted",
        "pkt",
        "resubmits",
        "steps",
        "table",
        "table_stopped",
        "unknown",
    )

    def __init__(
        self,
        pkt: PacketState,
        table: int,
        depth: int = 0,
        resubmits: int = 0,
        steps: tuple[Step, ...] = (),
        emissions: tuple[Emission, ...] = (),
        ends: tuple[Step, ...] = (),
        unknown: tuple[str, ...] = (),
        halted: bool = False,
        error: str | None = None,
        table_stopped: bool = False,
    ) -> None:
        self.pkt = pkt
        self.table = table
        self.depth = depth
        self.resubmits = resubmits
        self.steps = steps
        self.emissions = emissions
        self.ends = ends
        self.unknown = unknown
        self.halted = halted
        self.error = error
        # The rest of the current flow's actions are skipped; the caller's (after a resubmit) still run.
        self.table_stopped = table_stopped


def replace(w: _World, **changes: object) -> _World:
    """A copy of ``w`` with some attributes changed."""
    new = _World.__new__(_World)
    new.pkt = w.pkt
    new.table = w.table
    new.depth = w.depth
    new.resubmits = w.resubmits
    new.steps = w.steps
    new.emissions = w.emissions
    new.ends = w.ends
    new.unknown = w.unknown
    new.halted = w.halted
    new.error = w.error
    new.table_stopped = w.table_stopped
    for name, value in changes.items():
        setattr(new, name, value)
    return new


LearnHook = Callable[[ir.LearnSpec, PacketState, ir.Flow], None]


class OpenFlowBridge:
    """One bridge's flow tables, port numbers and NORMAL configuration."""

    def __init__(
        self,
        host: str,
        bridge: ir.Bridge,
        templates: tuple[LearnedTemplate, ...] = (),
    ) -> None:
        self.host = host
        self.bridge = bridge
        self.name = bridge.name
        self.port_numbers = frozenset(p.number for p in bridge.of_ports)
        self.vlan_ports: dict[int, VlanPort] = vlan_ports(bridge)
        by_table: dict[int, list[ir.Flow]] = {}
        for f in bridge.flows:
            by_table.setdefault(f.table, []).append(f)
        self.tables = {t: Table.build(fs) for t, fs in by_table.items()}
        grouped: dict[int, list[LearnedTemplate]] = {}
        for t in templates:
            grouped.setdefault(t.table, []).append(t)
        self.templates = {t: Table.build(ts) for t, ts in grouped.items()}
        self.learn_hook: LearnHook | None = None
        self.names = {p.number: p.name for p in bridge.of_ports}
        self.has_learn = any(isinstance(a, ir.Learn) for f in bridge.flows for a in ir.iter_actions(f.actions))

    # ------------------------------------------------------------ entry

    def port_name(self, number: int) -> str:
        """The port's name as ovs-ofctl show prints it (its number if unknown)."""
        return self.names.get(number, str(number))

    def transfer(self, ctx: Context, pkt: PacketState) -> list[Branch]:
        """Every way the bridge handles ``pkt`` (which arrived on ``pkt.fields['in_port']``)."""
        start = _World(pkt, table=0)
        worlds = self._goto(ctx, start, 0, None, first=True)
        out = []
        for w in worlds:
            if w.error is not None:
                end = Step(self.host, self.name, w.table, "note", note=f"translation aborted: {w.error}")
                out.append(Branch(w.pkt, (), w.steps, (*w.ends, end), w.unknown))
            else:
                out.append(Branch(w.pkt, w.emissions, w.steps, w.ends, w.unknown))
        return out

    def _step(
        self,
        table: int | None,
        kind: str,
        *,
        flow: ir.Flow | None = None,
        learned: LearnedTemplate | None = None,
        note: str = "",
        excluded: tuple[ir.Flow, ...] = (),
        choices: tuple[tuple[str, sy.Value], ...] = (),
    ) -> Step:
        return Step(self.host, self.name, table, kind, flow, "", note, excluded, choices, payload=learned)

    # ------------------------------------------------------------ lookup

    def _candidates(self, pkt: PacketState, table: int) -> list[Entry]:
        flows: list[Entry] = list(self.tables[table].candidates(pkt)) if table in self.tables else []
        templates = self.templates.get(table)
        if templates is not None:
            return list(heapq.merge(flows, templates.candidates(pkt), key=lambda e: -e.priority))
        return flows

    def _lookup(
        self, ctx: Context, pkt: PacketState, table: int
    ) -> list[tuple[PacketState, Entry | None, tuple[ir.Flow, ...]]]:
        """Split ``pkt`` over the entries of ``table`` it may hit (None: the miss)."""
        out: list[tuple[PacketState, Entry | None, tuple[ir.Flow, ...]]] = []
        excluded: list[tuple[sy.Cond, ir.Flow]] = []
        certain = False
        for group in priority_groups(self._candidates(pkt, table)):
            group_excl: list[tuple[sy.Cond, ir.Flow]] = []
            for entry in _expand_classes(ctx, group):
                if isinstance(entry, LearnedTemplate):
                    entry = learning.instantiate(ctx, entry)
                    cond = learning.condition(pkt, entry)
                    refine: tuple[ir.FieldMatch, ...] = ()
                else:
                    cond = match_cond(pkt, entry.match)
                    refine = entry.match
                if cond is False:
                    continue
                guard = sy.and_(cond, *(sy.not_(c) for c, _ in excluded))
                hit = ctx.assume(pkt, guard, refine)
                if hit is not None:
                    out.append((hit, entry, tuple(f for _, f in excluded)))
                if isinstance(entry, LearnedTemplate) or _optional(entry):
                    continue
                group_excl.append((cond, entry))
                if cond is True:
                    certain = True
            if certain:
                break
            excluded.extend(group_excl)
        if not certain:
            miss = ctx.assume(pkt, sy.and_(*(sy.not_(c) for c, _ in excluded)))
            if miss is not None:
                out.append((miss, None, tuple(f for _, f in excluded)))
        return out

    def _goto(
        self, ctx: Context, w: _World, table: int, lookup_port: int | None, *, first: bool = False
    ) -> list[_World]:
        """Look ``table`` up and run the hit's actions (resubmit and goto_table alike).

        As in xlate_table_action(), going to the same or an earlier table deepens
        the translation; the actions run with the real input port even when the
        lookup used ``lookup_port``.
        """
        # The pipeline's first lookup is not a resubmit (xlate_actions looks table 0 up itself).
        deepens = table <= w.table and not first
        if w.depth >= MAX_DEPTH:
            return [replace(w, error=f"over max translation depth {MAX_DEPTH}")]
        if w.resubmits >= MAX_RESUBMITS:
            return [replace(w, error=f"over {MAX_RESUBMITS} resubmit actions")]
        real_port = w.pkt.fields["in_port"]
        pkt = w.pkt if lookup_port is None else w.pkt.with_fields({"in_port": lookup_port})
        results: list[_World] = []
        for hit, entry, excluded in self._lookup(ctx, pkt, table):
            if lookup_port is not None:
                hit = hit.with_fields({"in_port": real_port})
            inner = replace(
                w,
                pkt=hit,
                table=table,
                depth=w.depth + (1 if deepens else 0),
                resubmits=w.resubmits + (0 if first else 1),
            )
            if entry is None:
                step = self._step(table, "miss", excluded=excluded)
                results.append(replace(inner, steps=(*w.steps, step), ends=(*w.ends, step), table=w.table))
                continue
            if isinstance(entry, LearnedTemplate):
                step = self._step(table, "learned", learned=entry, excluded=excluded)
                done = self._run_learned(ctx, replace(inner, steps=(*w.steps, step)), entry)
            else:
                step = self._step(table, "match", flow=entry, excluded=excluded)
                inner = replace(inner, steps=(*w.steps, step))
                if entry.unsupported_match:
                    unknown = f"{entry.provenance}: match field(s) not modelled: {', '.join(entry.unsupported_match)}"
                    results.append(replace(inner, unknown=(*inner.unknown, unknown), halted=True))
                    continue
                done = self._run(ctx, [inner], entry.actions, entry)
            for d in done:
                results.append(replace(d, table=w.table, depth=w.depth, table_stopped=False))
        return results

    # ------------------------------------------------------------ actions

    def _run(self, ctx: Context, worlds: list[_World], actions: tuple[ir.Action, ...], flow: ir.Flow) -> list[_World]:
        for action in actions:
            nxt: list[_World] = []
            for w in worlds:
                if w.halted or w.table_stopped or w.error is not None:
                    nxt.append(w)
                else:
                    nxt.extend(self._apply(ctx, w, action, flow))
            worlds = nxt
        return worlds

    def _apply(self, ctx: Context, w: _World, a: ir.Action, flow: ir.Flow) -> list[_World]:
        pkt = w.pkt
        if isinstance(a, ir.Output):
            return self._output(ctx, w, a.port, flow)
        if isinstance(a, ir.OutputInPort):
            return [self._emit(w, _in_port(pkt))]
        if isinstance(a, ir.OutputField):
            return self._output_field(ctx, w, a.src, flow)
        if isinstance(a, ir.Normal):
            return self._normal(ctx, w)
        if isinstance(a, (ir.Flood, ir.All)):
            return [self._flood(w, skip_no_flood=isinstance(a, ir.Flood))]
        if isinstance(a, ir.Controller):
            return [replace(w, ends=(*w.ends, self._step(w.table, "note", flow=flow, note="sent to controller")))]
        if isinstance(a, ir.Resubmit):
            return self._goto(ctx, w, w.table if a.table is None else a.table, a.port)
        if isinstance(a, ir.SetField):
            return self._set_field(ctx, w, a)
        if isinstance(a, ir.Move):
            value = _read(pkt, a.src)
            return [self._write(w, a.dst, value)]
        if isinstance(a, ir.PushVlan):
            return self._push_vlan(ctx, w, flow)
        if isinstance(a, ir.PopVlan):
            return [replace(w, pkt=pkt.with_fields({"vlan_tci": 0}))]
        if isinstance(a, ir.SetVlanVid):
            tci = sy.set_bits(pkt.fields["vlan_tci"], VLAN_CFI | a.vid, 0x1FFF, 16)
            return [replace(w, pkt=pkt.with_fields({"vlan_tci": tci}))]
        if isinstance(a, ir.SetVlanPcp):
            tci = sy.set_bits(pkt.fields["vlan_tci"], VLAN_CFI | (a.pcp << 13), 0xF000, 16)
            return [replace(w, pkt=pkt.with_fields({"vlan_tci": tci}))]
        if isinstance(a, ir.DecTtl):
            return self._dec_ttl(ctx, w, flow)
        if isinstance(a, ir.Learn):
            if self.learn_hook is not None:
                self.learn_hook(a.spec, pkt, flow)
            return [w]
        if isinstance(a, ir.Ct):
            return self._ct(ctx, w, a, flow)
        if isinstance(a, ir.CtClear):
            return [replace(w, pkt=pkt.with_fields({"ct_state": 0, "ct_zone": 0, "ct_mark": 0}))]
        if isinstance(a, ir.Clone):
            return self._clone(ctx, w, a.actions, flow)
        if isinstance(a, ir.Exit):
            return [replace(w, halted=True)]
        if isinstance(a, ir.NoOp):
            return [w]
        if isinstance(a, ir.Unsupported):
            return [replace(w, unknown=(*w.unknown, f"{flow.provenance}: action not modelled: {a.text}"), halted=True)]
        raise TypeError(f"unhandled action {a!r}")

    def _emit(self, w: _World, port: int) -> _World:
        return replace(w, emissions=(*w.emissions, Emission(port, w.pkt, w.steps)))

    def _note(self, w: _World, flow: ir.Flow | None, note: str) -> _World:
        return replace(w, ends=(*w.ends, self._step(w.table, "note", flow=flow, note=note)))

    def _output(self, ctx: Context, w: _World, port: int, flow: ir.Flow) -> list[_World]:
        if port == OFPP_IN_PORT:
            return [self._emit(w, _in_port(w.pkt))]
        if port == OFPP_NORMAL:
            return self._normal(ctx, w)
        if port in (OFPP_FLOOD, OFPP_ALL):
            return [self._flood(w, skip_no_flood=port == OFPP_FLOOD)]
        if port == OFPP_CONTROLLER:
            return [self._note(w, flow, "sent to controller")]
        if port == _in_port(w.pkt):
            return [self._note(w, flow, f"skipping output to input port {port}")]
        if port not in self.port_numbers:
            return [self._note(w, flow, f"output to nonexistent port {port}")]
        vp = self.vlan_ports.get(port)
        if vp is not None and not vp.forwards:
            return [self._note(w, flow, f"port {port} has NO_FWD set, skipping output")]
        return [self._emit(w, port)]

    def _output_field(self, ctx: Context, w: _World, src: ir.FieldSlice, flow: ir.Flow) -> list[_World]:
        return self._output_value(ctx, w, _read(w.pkt, src), src.n_bits, flow)

    def _output_value(self, ctx: Context, w: _World, value: sy.Value, n_bits: int, flow: ir.Flow) -> list[_World]:
        """Output to the port number held by ``value`` (split over the bridge's ports if unknown)."""
        if isinstance(value, int):
            return self._output(ctx, w, value, flow)
        out: list[_World] = []
        mask = sy.full(n_bits)
        numbers = sorted(self.port_numbers | {OFPP_IN_PORT, OFPP_NORMAL, OFPP_FLOOD, OFPP_ALL})
        for n in numbers:
            hit = ctx.assume(w.pkt, sy.test(value, n, mask))
            if hit is not None:
                out.extend(self._output(ctx, replace(w, pkt=hit), n, flow))
        other = ctx.assume(w.pkt, sy.and_(*(sy.not_(sy.test(value, n, mask)) for n in numbers)))
        if other is not None:
            out.append(self._note(replace(w, pkt=other), flow, "output to a port number that does not exist"))
        return out

    def _flood(self, w: _World, *, skip_no_flood: bool) -> _World:
        in_port = _in_port(w.pkt)
        for p in self.bridge.of_ports:
            if p.number == in_port or (skip_no_flood and p.no_flood) or "NO_FWD" in p.config:
                continue
            w = self._emit(w, p.number)
        return w

    def _normal(self, ctx: Context, w: _World) -> list[_World]:
        out = []
        for r in normal(ctx, self.vlan_ports, w.pkt):
            step = self._step(w.table, "note", note=r.note)
            nw = replace(w, pkt=r.pkt, steps=(*w.steps, step))
            if not r.outputs:
                nw = replace(nw, ends=(*nw.ends, step))
            for port, copy in r.outputs:
                nw = replace(nw, emissions=(*nw.emissions, Emission(port, copy, nw.steps)))
            out.append(nw)
        return out

    def _write(self, w: _World, dst: ir.FieldSlice, value: sy.Value) -> _World:
        width = FIELDS[dst.field].width
        new = sy.deposit(w.pkt.fields[dst.field], value, dst.start, dst.n_bits, width)
        return replace(w, pkt=w.pkt.with_fields({dst.field: new}))

    def _set_field(self, ctx: Context, w: _World, a: ir.SetField) -> list[_World]:
        pkt = w.pkt
        width = FIELDS[a.field].width
        new = sy.set_bits(pkt.fields[a.field], a.value, a.mask, width)
        if a.only_eth_types is not None:
            applies = sy.or_(*(sy.test(pkt.fields["eth_type"], t, 0xFFFF) for t in sorted(a.only_eth_types)))
            new = sy.ite(applies, new, pkt.fields[a.field], width)
        return [replace(w, pkt=pkt.with_fields({a.field: new}))]

    def _push_vlan(self, ctx: Context, w: _World, flow: ir.Flow) -> list[_World]:
        tagged = sy.test(w.pkt.fields["vlan_tci"], VLAN_CFI, VLAN_CFI)
        out = []
        untagged = ctx.assume(w.pkt, sy.not_(tagged))
        if untagged is not None:
            out.append(replace(w, pkt=untagged.with_fields({"vlan_tci": VLAN_CFI})))
        double = ctx.assume(w.pkt, tagged)
        if double is not None:
            why = f"{flow.provenance}: push_vlan on a frame that already has a VLAN header is not modelled"
            out.append(replace(w, pkt=double, unknown=(*w.unknown, why), halted=True))
        return out

    def _dec_ttl(self, ctx: Context, w: _World, flow: ir.Flow) -> list[_World]:
        eth = w.pkt.fields["eth_type"]
        is_ip = sy.or_(sy.test(eth, ETH_TYPE_IP, 0xFFFF), sy.test(eth, ETH_TYPE_IPV6, 0xFFFF))
        out = []
        other = ctx.assume(w.pkt, sy.not_(is_ip))
        if other is not None:
            out.append(replace(w, pkt=other))
        ip = ctx.assume(w.pkt, is_ip)
        if ip is None:
            return out
        ttl = ip.fields["ip_ttl"]
        low = sy.test(ttl, 0, 0xFE)
        expired = ctx.assume(ip, low)
        if expired is not None:
            # compose_dec_ttl(): a packet-in, and the rest of this flow's actions are skipped (not the caller's).
            note = "dec_ttl: TTL exception, packet sent to the controller, the flow's remaining actions skipped"
            out.append(replace(self._note(replace(w, pkt=expired), flow, note), table_stopped=True))
        alive = ctx.assume(ip, sy.not_(low))
        if alive is not None:
            out.append(replace(w, pkt=alive.with_fields({"ip_ttl": sy.add(ttl, -1, 8)})))
        return out

    def _ct(self, ctx: Context, w: _World, a: ir.Ct, flow: ir.Flow) -> list[_World]:
        if a.nat is not None:
            why = f"{flow.provenance}: ct(...,{a.nat}) NAT in OpenFlow is not modelled"
            return [replace(w, unknown=(*w.unknown, why), halted=True)]
        if a.table is None:
            return [w]
        zone = a.zone if isinstance(a.zone, int) else _read(w.pkt, a.zone)
        state = ctx.fresh("ct_state", 8)
        recirc = w.pkt.with_fields({"ct_state": state, "ct_zone": zone, "ct_mark": ctx.fresh("ct_mark", 32)})
        valid = ctx.assume(recirc, _ct_state_valid(state))
        if valid is None:
            return [w]
        note = self._step(
            w.table,
            "note",
            flow=flow,
            note=f"ct(): recirculate to table {a.table} with any conntrack state",
            choices=(("ct_state", state),),
        )
        sub = _World(valid, table=a.table, steps=(*w.steps, note))
        results = []
        for r in self._goto(ctx, sub, a.table, None):
            results.append(
                replace(
                    w,
                    pkt=PacketState(w.pkt.fields, r.pkt.pc, r.pkt.doubts),
                    emissions=(*w.emissions, *r.emissions),
                    ends=(*w.ends, *r.ends),
                    unknown=(*w.unknown, *r.unknown),
                )
            )
        return results

    def _clone(self, ctx: Context, w: _World, actions: tuple[ir.Action, ...], flow: ir.Flow) -> list[_World]:
        """Run ``actions`` on a copy; the original goes on unchanged (but an ``exit`` ends everything)."""
        results = []
        for r in self._run(ctx, [replace(w, halted=False)], actions, flow):
            results.append(
                replace(
                    w,
                    pkt=PacketState(w.pkt.fields, r.pkt.pc, r.pkt.doubts),
                    emissions=r.emissions,
                    ends=r.ends,
                    unknown=r.unknown,
                    error=r.error,
                    halted=r.halted,
                )
            )
        return results

    def _run_learned(self, ctx: Context, w: _World, t: LearnedTemplate) -> list[_World]:
        worlds = [w]
        for i, (kind, dst, value) in enumerate(t.actions):
            nxt = []
            for cur in worlds:
                if ("action", i) in t.from_in_port and t.port_class:
                    # Abstract mode only: the entry was learned on some member; cover them all.
                    members = sorted(t.port_class)
                    if kind == "load" and dst is not None:
                        joined: sy.Value = members[0]
                        for port in members[1:]:
                            joined = sy.join(joined, port, dst.n_bits)
                        nxt.append(self._write(cur, dst, joined))
                        continue
                    for port in members:
                        cur = self._output(ctx, cur, port, t.source)[0]
                    nxt.append(cur)
                elif kind == "load":
                    assert dst is not None
                    nxt.append(self._write(cur, dst, value))
                else:
                    nxt.extend(self._output_value(ctx, cur, value, 16, t.source))
            worlds = nxt
        return worlds


def _expand_classes(ctx: Context, group: list[Entry]) -> list[Entry]:
    """Learned templates standing for a port class, one per member where that matters.

    In precise mode each member is a separate learned entry (so a
    counterexample names one); in abstract mode one template may output to
    every member at once, unless its match depends on the member.
    """
    out: list[Entry] = []
    for entry in group:
        if isinstance(entry, LearnedTemplate) and entry.port_class and (ctx.precise or entry.class_in_conditions):
            out.extend(entry.for_port(p) for p in sorted(entry.port_class))
        else:
            out.append(entry)
    return out


def _optional(flow: ir.Flow) -> bool:
    """Flows with a timeout may have expired: they never rule lower-priority flows out."""
    return bool(flow.idle_timeout or flow.hard_timeout)


def _in_port(pkt: PacketState) -> int:
    v = pkt.fields["in_port"]
    if not isinstance(v, int):
        raise ValueError("symbolic input port")
    return v


def _read(pkt: PacketState, s: ir.FieldSlice) -> sy.Value:
    return sy.extract(pkt.fields[s.field], s.start, s.n_bits, FIELDS[s.field].width)


def _ct_state_valid(state: sy.Value) -> sy.Cond:
    """ct_state after conntrack: tracked, and a consistent combination of the other flags."""
    b = CT_STATE_BITS

    def bit(name: str) -> sy.Cond:
        return sy.test(state, b[name], b[name])

    def clear(name: str) -> sy.Cond:
        return sy.test(state, 0, b[name])

    return sy.and_(
        bit("trk"),
        sy.or_(bit("new"), bit("est"), bit("rel"), bit("inv")),
        sy.or_(clear("new"), clear("est")),
        sy.or_(clear("inv"), sy.and_(clear("new"), clear("est"), clear("rel"), clear("rpl"))),
        sy.or_(clear("rpl"), bit("est"), bit("rel")),
    )
