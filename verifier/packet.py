"""Symbolic packets: field values plus the path condition that led to them.

``Context`` is what the device models use to branch: ``assume(packet, cond)``
returns the packet under the extra condition, or None when no packet can take
that branch.  In abstract mode nothing is recorded (any non-false condition is
possible); in precise mode the condition joins the path condition and Z3
decides feasibility.  Either way, a positive match also refines the known bits
of the matched fields, so later tests on them are decided without the solver.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import z3

from verifier import symbolic as sy
from verifier.header import FIELD_NAMES, FIELDS, VLAN_CFI, Prerequisite
from verifier.ir import FieldMatch
from verifier.solver import PathSolver, Sat


class Mode(enum.Enum):
    """ABSTRACT: known bits only, every undecided test may go both ways (fast, over-approximate).
    PRECISE: Z3 terms and path conditions (exact, gives counterexamples)."""

    ABSTRACT = "abstract"
    PRECISE = "precise"


# Fields whose known bits abstract mode refines on a match.  Keeping wire
# headers out lets sources that differ only in MAC or IP share states.
STEERING = frozenset(
    ["in_port", "vlan_tci", "tun_id", "tun_src", "tun_dst", "metadata", "pkt_mark"]
    + [f"reg{i}" for i in range(16)]
    + ["ct_state", "ct_zone", "ct_mark"]
)


_INDEX = {name: i for i, name in enumerate(FIELD_NAMES)}


@dataclass(frozen=True)
class PacketState:
    """Field values and path condition (assumption literals, precise mode only).

    ``doubts`` lists reasons the path is not fully decided (a solver
    ``unknown``): a verdict relying on such a path cannot be "holds".
    """

    fields: Mapping[str, sy.Value]
    pc: tuple[z3.BoolRef, ...] = ()
    doubts: tuple[str, ...] = ()

    def get(self, name: str) -> sy.Value:
        return self.fields[name]

    def with_fields(self, updates: Mapping[str, sy.Value]) -> PacketState:
        merged = dict(self.fields)
        merged.update(updates)
        new = PacketState(merged, self.pc, self.doubts)
        cached = self.__dict__.get("_field_key")
        if cached is not None:
            key = list(cached)
            for name, value in updates.items():
                key[_INDEX[name]] = sy.value_key(value)
            object.__setattr__(new, "_field_key", tuple(key))
        return new

    def key(self) -> tuple[object, ...]:
        """Identity of the state (values and path condition), for loop detection and memos."""
        return (
            tuple(sy.value_key(self.fields[n]) for n in FIELD_NAMES),
            tuple(sorted(lit.get_id() for lit in self.pc)),
        )

    def field_key(self) -> tuple[object, ...]:
        """Identity of the field values alone (computed once)."""
        cached = self.__dict__.get("_field_key")
        if cached is None:
            cached = tuple(sy.value_key(self.fields[n]) for n in FIELD_NAMES)
            object.__setattr__(self, "_field_key", cached)
        return cached


class Context:
    """Branching services for the models: the mode, the solver and fresh values."""

    def __init__(self, mode: Mode, solver: PathSolver | None = None) -> None:
        if mode is Mode.PRECISE and solver is None:
            solver = PathSolver()
        self.mode = mode
        self.solver = solver
        self._fresh = itertools.count()

    @property
    def precise(self) -> bool:
        return self.mode is Mode.PRECISE

    def fresh(self, name: str, width: int) -> sy.Value:
        """A new unknown value: TOP in abstract mode, a fresh Z3 variable in precise mode."""
        if self.mode is Mode.ABSTRACT:
            return sy.top(width)
        return sy.variable(f"{name}#{next(self._fresh)}", width)

    def assume(self, pkt: PacketState, cond: sy.Cond, refine: Iterable[FieldMatch] = ()) -> PacketState | None:
        """The packet under ``cond`` (refined by the positive matches), or None if infeasible."""
        if cond is False:
            return None
        state = pkt
        if isinstance(cond, z3.BoolRef):
            assert self.solver is not None
            pc = (*pkt.pc, self.solver.literal(cond))
            answer = self.solver.check(pc)
            if answer is Sat.UNSAT:
                return None
            doubts = pkt.doubts
            if answer is Sat.UNKNOWN:
                doubts = (*doubts, f"solver answered unknown ({self.solver.unknown_reasons[-1]})")
            state = PacketState(pkt.fields, pc, doubts)
        return self.refine(state, refine)

    def refine(self, pkt: PacketState, matches: Iterable[FieldMatch]) -> PacketState:
        """Record that the packet matches these field matches (known bits only)."""
        updates: dict[str, sy.Value] = {}
        for fm in matches:
            if self.mode is Mode.ABSTRACT and fm.field not in STEERING:
                continue
            v = updates.get(fm.field, pkt.fields[fm.field])
            if isinstance(v, int):
                continue
            width = FIELDS[fm.field].width
            updates[fm.field] = sy.make(width, v.bits | fm.value, v.care | fm.mask, v.term)
        return pkt.with_fields(updates) if updates else pkt


def match_cond(pkt: PacketState, match: Iterable[FieldMatch]) -> sy.Cond:
    """The condition that the packet matches every field match."""
    conds: list[sy.Cond] = []
    for fm in match:
        c = sy.test(pkt.fields[fm.field], fm.value, fm.mask)
        if c is False:
            return False
        if c is not True:
            conds.append(c)
    return sy.and_(*conds) if conds else True


def initial_packet(
    ctx: Context,
    prefix: str,
    fixed: Mapping[str, int],
    *,
    symbolic: Iterable[str] | None = None,
) -> PacketState:
    """A packet entering the network: ``fixed`` fields as given, the rest of the
    wire header unknown, and pipeline metadata (registers, tunnel, conntrack) 0.

    ``symbolic`` overrides which fields are left unknown (default: every wire
    field not in ``fixed``).  In precise mode the packet also carries the
    constraints a real frame satisfies (fields a frame lacks are 0, a VLAN
    header has its CFI bit).
    """
    unknown = set(symbolic) if symbolic is not None else {n for n in FIELD_NAMES if FIELDS[n].wire}
    unknown -= set(fixed)
    fields: dict[str, sy.Value] = {}
    for name in FIELD_NAMES:
        if name in fixed:
            fields[name] = fixed[name] & FIELDS[name].max
        elif name in unknown:
            if ctx.precise:
                fields[name] = sy.variable(f"{prefix}.{name}", FIELDS[name].width)
            else:
                fields[name] = sy.top(FIELDS[name].width)
        else:
            fields[name] = 0
    pkt = PacketState(fields)
    if ctx.precise:
        guard = well_formed(pkt)
        if guard is not True:
            assumed = ctx.assume(pkt, guard)
            if assumed is None:
                raise ValueError(f"the fixed fields {dict(fixed)} describe no real packet")
            pkt = assumed
    return pkt


def well_formed(pkt: PacketState) -> sy.Cond:
    """Constraints every real frame satisfies, as Open vSwitch extracts it."""
    conds: list[sy.Cond] = []
    tci = pkt.fields["vlan_tci"]
    if not isinstance(tci, int):
        conds.append(sy.or_(sy.test(tci, 0, 0xFFFF), sy.test(tci, VLAN_CFI, VLAN_CFI)))
    for name in FIELD_NAMES:
        f = FIELDS[name]
        v = pkt.fields[name]
        if f.prereq is None or (isinstance(v, int) and v == 0):
            continue
        conds.append(sy.or_(_prereq(pkt, f.prereq), sy.test(v, 0, f.max)))
    return sy.and_(*conds)


def _prereq(pkt: PacketState, p: Prerequisite) -> sy.Cond:
    eth = pkt.fields["eth_type"]
    proto = pkt.fields["ip_proto"]
    in_types = sy.or_(*(sy.test(eth, t, 0xFFFF) for t in sorted(p.eth_types)))
    conds = [in_types]
    if p.ip_protos is not None:
        conds.append(sy.or_(*(sy.test(proto, q, 0xFF) for q in sorted(p.ip_protos))))
    if p.nd:
        tp = pkt.fields["tp_src"]
        conds.append(sy.test(proto, 58, 0xFF))
        conds.append(sy.or_(*(sy.test(tp, t, 0xFFFF) for t in p.nd)))
    cond = sy.and_(*conds)
    if p.also_arp:
        cond = sy.or_(cond, sy.test(eth, 0x0806, 0xFFFF), sy.test(eth, 0x8035, 0xFFFF))
    return cond


def concretize(model: z3.ModelRef, pkt: PacketState) -> dict[str, int]:
    """The concrete packet a Z3 model gives for a symbolic packet."""
    out: dict[str, int] = {}
    for name in FIELD_NAMES:
        v = pkt.fields[name]
        if isinstance(v, int):
            out[name] = v
        elif v.term is None:
            raise ValueError("cannot concretize an abstract packet")
        else:
            out[name] = model.eval(v.term, model_completion=True).as_long()
    return out
