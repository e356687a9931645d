"""The concrete twin of the OpenFlow model: one packet, plain integers.

Deliberately written apart from the symbolic model (no shared transfer code)
so that the differential tests compare two implementations.  Only the reading
of OVSDB VLAN configuration (models.vlan) is shared.  Where OVS leaves a choice
open (equal-priority overlapping flows) the twin takes the first flow in dump
order; MAC learning is empty (NORMAL floods); ``learned`` adds flows that
learn() is assumed to have installed; ``ct_states`` gives the conntrack state
after each recirculating ct(), like ``ofproto/trace --ct-next``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from models.normal import RESERVED_MACS
from models.vlan import vlan_ports
from verifier import ir
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
)

MAX_DEPTH = 64
MAX_RESUBMITS = MAX_DEPTH * MAX_DEPTH
DEFAULT_CT_STATE = CT_STATE_BITS["trk"] | CT_STATE_BITS["new"]


@dataclass(frozen=True)
class CStep:
    """A table hit (``flow``), a miss (``flow`` None, ``table`` set) or a note."""

    table: int | None
    flow: ir.Flow | None
    note: str = ""


@dataclass(frozen=True)
class CEmission:
    port: int
    packet: dict[str, int]
    steps: tuple[CStep, ...]


@dataclass
class CResult:
    """What the bridge did with one packet."""

    emissions: list[CEmission] = field(default_factory=list)
    steps: list[CStep] = field(default_factory=list)
    ends: list[CStep] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    error: str | None = None


class _Stop(Exception):
    """Raised to end the translation (exit, unsupported action, TTL exception)."""


class _TableStop(Exception):
    """Raised to skip the rest of the current flow's actions (a TTL exception); the caller's go on."""


class _Abort(Exception):
    """Raised when OVS would abort the translation (depth or resubmit limits)."""


class ConcreteBridge:
    """One bridge, executed on concrete packets."""

    def __init__(
        self,
        bridge: ir.Bridge,
        learned: Iterable[ir.Flow] = (),
        ct_states: Iterable[int] = (),
    ) -> None:
        self.bridge = bridge
        self.ports = {p.number: p for p in bridge.of_ports}
        self.vlan = vlan_ports(bridge)
        self.flows = list(bridge.flows) + list(learned)
        self.ct_states = list(ct_states)
        # Per table, by priority (highest first); sorted() is stable, so ties keep the dump's order.
        self._tables: dict[int, list[ir.Flow]] = {}
        for f in self.flows:
            self._tables.setdefault(f.table, []).append(f)
        for flows in self._tables.values():
            flows.sort(key=lambda f: -f.priority)

    def run(self, packet: dict[str, int]) -> CResult:
        """Process ``packet`` (its ``in_port`` field says where it arrived)."""
        result = CResult()
        state = _State(dict(packet), result, table=0)
        try:
            with contextlib.suppress(_Stop):
                self._goto(state, 0, None, first=True)
        except _Abort as exc:
            result.error = str(exc)
            result.emissions.clear()
        return result

    # ------------------------------------------------------------ lookup

    def lookup(self, packet: dict[str, int], table: int) -> ir.Flow | None:
        """The flow OVS picks: highest priority among matches, first in order on ties."""
        for f in self._tables.get(table, ()):
            if all(packet[m.field] & m.mask == m.value for m in f.match):
                return f
        return None

    def _goto(self, st: _State, table: int, lookup_port: int | None, *, first: bool = False) -> None:
        if st.depth >= MAX_DEPTH:
            raise _Abort(f"over max translation depth {MAX_DEPTH}")
        if st.resubmits >= MAX_RESUBMITS:
            raise _Abort(f"over {MAX_RESUBMITS} resubmit actions")
        probe = dict(st.pkt)
        if lookup_port is not None:
            probe["in_port"] = lookup_port
        flow = self.lookup(probe, table)
        if flow is None:
            step = CStep(table, None, "table miss")
            st.result.steps.append(step)
            st.result.ends.append(step)
            return
        st.result.steps.append(CStep(table, flow))
        if flow.unsupported:
            st.result.unknown.extend(f"{flow.provenance}: {u}" for u in flow.unsupported)
            raise _Stop
        saved_table, saved_depth = st.table, st.depth
        # The pipeline's first lookup is not a resubmit (xlate_actions looks table 0 up itself).
        if not first:
            st.depth += 1 if table <= st.table else 0
            st.resubmits += 1
        st.table = table
        try:
            self._actions(st, flow.actions, flow)
        except _TableStop:
            pass
        finally:
            st.table, st.depth = saved_table, saved_depth

    # ------------------------------------------------------------ actions

    def _actions(self, st: _State, actions: tuple[ir.Action, ...], flow: ir.Flow) -> None:
        for a in actions:
            if st.exited:
                return
            self._action(st, a, flow)

    def _action(self, st: _State, a: ir.Action, flow: ir.Flow) -> None:
        pkt = st.pkt
        if isinstance(a, ir.Output):
            self._output(st, a.port, flow)
        elif isinstance(a, ir.OutputInPort):
            self._emit(st, pkt["in_port"])
        elif isinstance(a, ir.OutputField):
            self._output(st, (pkt[a.src.field] >> a.src.start) & ((1 << a.src.n_bits) - 1), flow)
        elif isinstance(a, ir.Normal):
            self._normal(st)
        elif isinstance(a, ir.Flood):
            self._flood(st, skip_no_flood=True)
        elif isinstance(a, ir.All):
            self._flood(st, skip_no_flood=False)
        elif isinstance(a, ir.Controller):
            st.result.ends.append(CStep(st.table, flow, "sent to controller"))
        elif isinstance(a, ir.Resubmit):
            self._goto(st, st.table if a.table is None else a.table, a.port)
        elif isinstance(a, ir.SetField):
            if a.only_eth_types is None or pkt["eth_type"] in a.only_eth_types:
                pkt[a.field] = (pkt[a.field] & ~a.mask) | (a.value & a.mask)
        elif isinstance(a, ir.Move):
            value = (pkt[a.src.field] >> a.src.start) & ((1 << a.src.n_bits) - 1)
            mask = ((1 << a.dst.n_bits) - 1) << a.dst.start
            pkt[a.dst.field] = (pkt[a.dst.field] & ~mask) | ((value << a.dst.start) & mask)
        elif isinstance(a, ir.PushVlan):
            if pkt["vlan_tci"] & 0x1000:
                st.result.unknown.append(f"{flow.provenance}: push_vlan on a tagged frame is not modelled")
                raise _Stop
            pkt["vlan_tci"] = 0x1000
        elif isinstance(a, ir.PopVlan):
            pkt["vlan_tci"] = 0
        elif isinstance(a, ir.SetVlanVid):
            tci = pkt["vlan_tci"]
            pcp = tci & 0xE000 if tci & 0x1000 else 0
            pkt["vlan_tci"] = 0x1000 | pcp | a.vid
        elif isinstance(a, ir.SetVlanPcp):
            tci = pkt["vlan_tci"]
            vid = tci & 0x0FFF if tci & 0x1000 else 0
            pkt["vlan_tci"] = 0x1000 | (a.pcp << 13) | vid
        elif isinstance(a, ir.DecTtl):
            if pkt["eth_type"] in (ETH_TYPE_IP, ETH_TYPE_IPV6):
                if pkt["ip_ttl"] <= 1:
                    note = "dec_ttl: TTL exception, packet sent to the controller, the flow's remaining actions skipped"
                    st.result.ends.append(CStep(st.table, flow, note))
                    raise _TableStop
                pkt["ip_ttl"] -= 1
        elif isinstance(a, (ir.Learn, ir.NoOp)):
            pass
        elif isinstance(a, ir.Ct):
            self._ct(st, a, flow)
        elif isinstance(a, ir.CtClear):
            pkt["ct_state"] = pkt["ct_zone"] = pkt["ct_mark"] = 0
        elif isinstance(a, ir.Clone):
            saved = dict(pkt)
            with contextlib.suppress(_Stop, _TableStop):
                self._actions(st, a.actions, flow)
            st.pkt = saved
        elif isinstance(a, ir.Exit):
            st.exited = True
        elif isinstance(a, ir.Unsupported):
            st.result.unknown.append(f"{flow.provenance}: action not modelled: {a.text}")
            st.exited = True
        else:
            raise TypeError(f"unhandled action {a!r}")

    def _emit(self, st: _State, port: int) -> None:
        st.result.emissions.append(CEmission(port, dict(st.pkt), tuple(st.result.steps)))

    def _output(self, st: _State, port: int, flow: ir.Flow) -> None:
        if port == OFPP_IN_PORT:
            self._emit(st, st.pkt["in_port"])
        elif port == OFPP_NORMAL:
            self._normal(st)
        elif port == OFPP_FLOOD:
            self._flood(st, skip_no_flood=True)
        elif port == OFPP_ALL:
            self._flood(st, skip_no_flood=False)
        elif port == OFPP_CONTROLLER:
            st.result.ends.append(CStep(st.table, flow, "sent to controller"))
        elif port == st.pkt["in_port"]:
            st.result.ends.append(CStep(st.table, flow, f"skipping output to input port {port}"))
        elif port not in self.ports:
            st.result.ends.append(CStep(st.table, flow, f"output to nonexistent port {port}"))
        elif "NO_FWD" in self.ports[port].config:
            st.result.ends.append(CStep(st.table, flow, f"port {port} has NO_FWD set"))
        else:
            self._emit(st, port)

    def _flood(self, st: _State, *, skip_no_flood: bool) -> None:
        for number, p in sorted(self.ports.items()):
            if number == st.pkt["in_port"] or (skip_no_flood and p.no_flood) or "NO_FWD" in p.config:
                continue
            self._emit(st, number)

    def _normal(self, st: _State) -> None:
        pkt = st.pkt
        inp = self.vlan.get(pkt["in_port"])
        if inp is None:
            st.result.ends.append(CStep(st.table, None, "NORMAL: no input bundle"))
            return
        tci = pkt["vlan_tci"]
        vid = tci & 0x0FFF if tci & 0x1000 else 0
        emitted: set[tuple[int, int]] = set()
        for reading in inp.readings:
            if not reading.accepts_vid(vid):
                st.result.ends.append(CStep(st.table, None, f"NORMAL: VID {vid} refused by {inp.name}"))
                continue
            if pkt["eth_dst"] in RESERVED_MACS:
                st.result.ends.append(CStep(st.table, None, "NORMAL: reserved destination MAC"))
                continue
            vlan = reading.input_vlan(vid)
            for number, port in sorted(self.vlan.items()):
                if port.bundle == inp.bundle or not port.floodable or not port.forwards:
                    continue
                for r in port.readings:
                    if not r.includes(vlan):
                        continue
                    pcp = tci & 0xE000 if tci & 0x1000 else 0
                    out_tci = (pcp | vlan) if r.tagged_on_output(vlan) else 0
                    if out_tci:
                        out_tci |= 0x1000
                    if (number, out_tci) in emitted:
                        continue
                    emitted.add((number, out_tci))
                    copy = dict(pkt)
                    copy["vlan_tci"] = out_tci
                    st.result.emissions.append(CEmission(number, copy, tuple(st.result.steps)))

    def _ct(self, st: _State, a: ir.Ct, flow: ir.Flow) -> None:
        if a.nat is not None:
            st.result.unknown.append(f"{flow.provenance}: ct nat is not modelled")
            raise _Stop
        if a.table is None:
            return
        copy = dict(st.pkt)
        copy["ct_state"] = self.ct_states.pop(0) if self.ct_states else DEFAULT_CT_STATE
        if isinstance(a.zone, int):
            copy["ct_zone"] = a.zone
        else:
            s = a.zone
            copy["ct_zone"] = (st.pkt[s.field] >> s.start) & ((1 << s.n_bits) - 1) & FIELDS["ct_zone"].max
        sub = _State(copy, st.result, table=a.table)
        with contextlib.suppress(_Stop):
            self._goto(sub, a.table, None)


@dataclass
class _State:
    pkt: dict[str, int]
    result: CResult
    table: int
    depth: int = 0
    resubmits: int = 0
    exited: bool = False
