"""Symbolic reachability over a composed network.

Two ways to walk it:

- ``explore`` (precise mode): depth-first from one source with Z3 path
  conditions; returns every path with its outcome: delivered (where), dropped
  (by which rule or miss), looped, left the snapshot, or undecided.  A state
  seen again on the same path is a loop.
- ``AbstractGraph`` (abstract mode): the finite graph of abstract states
  (known bits only, every undecided test both ways), built once and shared by
  all sources; ``reach(node)`` is the set of outcomes a source may reach.  It
  over-approximates, so an outcome it does not list is impossible: that is how
  "holds" is proved without a solver call per rule.  Outcomes it does list are
  confirmed (or refuted) by ``explore`` directed at them (``guide``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import z3

from verifier import symbolic as sy
from verifier.device import Branch, Emission, Step
from verifier.header import FIELD_NAMES, FIELDS
from verifier.packet import Context, Mode, PacketState
from verifier.topology import (
    Delivered,
    Dropped,
    Enter,
    Location,
    Looped,
    Network,
    Outcome,
    Terminal,
    Undecided,
)

MAX_HOPS = 64


class BudgetExhausted(Undecided):
    """The outcome recorded when ``explore`` stops at its state budget: every path not yet walked is unknown."""


@dataclass(frozen=True)
class Hop:
    """A device crossed: where the packet came in, what the device did, where it left."""

    location: Location
    in_port: int
    steps: tuple[Step, ...]
    out_port: int | None
    out_pkt: PacketState | None = None
    via: str = ""
    alternatives: tuple[tuple[tuple[object, ...], tuple[Step, ...]], ...] = ()


@dataclass(frozen=True)
class Path:
    """One way a packet can go, start to end; ``pkt`` carries its path condition."""

    hops: tuple[Hop, ...]
    outcome: Outcome
    pkt: PacketState

    @property
    def doubts(self) -> tuple[str, ...]:
        return self.pkt.doubts


Prune = Callable[[Location, PacketState], bool]


def explore(
    net: Network,
    ctx: Context,
    start: Location,
    pkt: PacketState,
    *,
    prune: Prune | None = None,
    stop: Callable[[Path], bool] | None = None,
    max_hops: int = MAX_HOPS,
    merge: bool = True,
    breadth_first: bool = False,
    max_states: int | None = None,
) -> list[Path]:
    """Every path of ``pkt`` from ``start`` (arriving on ``pkt.fields['in_port']``).

    ``prune(location, pkt)`` returning True skips a state (used to direct the
    search); ``stop(path)`` returning True ends the walk early.  With
    ``merge`` (see ``merge_branches``) branches of one device that leave
    alike are followed once: every outcome is still found, but a path then
    stands for several ways through that device.  With ``max_states``, the
    walk stops after that many device visits and ends with one path whose
    outcome is ``BudgetExhausted``: what was not walked is unknown, never
    absent.
    """
    paths: list[Path] = []
    stack: deque[tuple[Location, PacketState, tuple[Hop, ...], frozenset[object]]] = deque(
        [(start, pkt, (), frozenset())]
    )
    visited = 0
    while stack:
        loc, cur, hops, seen = stack.popleft() if breadth_first else stack.pop()
        visited += 1
        if max_states is not None and visited > max_states:
            reason = f"search stopped after {max_states} states with {len(stack) + 1} still to walk"
            paths.append(Path(hops, BudgetExhausted(reason), cur))
            return paths
        in_port = cur.fields["in_port"]
        assert isinstance(in_port, int)
        key = (loc, cur.field_key())
        if key in seen:
            paths.append(Path(hops, Looped(f"back at {loc} port {in_port} with the same packet"), cur))
            if stop and stop(paths[-1]):
                return paths
            continue
        if len(hops) >= max_hops:
            paths.append(Path(hops, Looped(f"more than {max_hops} devices crossed"), cur))
            continue
        device = net.device(loc)
        if device is None:
            paths.append(Path(hops, Undecided(f"no model of {loc}"), cur))
            continue
        seen = seen | {key}
        before = len(paths)
        branches = device.transfer(ctx, cur)
        if merge and ctx.precise and len(branches) > 1:
            branches = merge_branches(ctx, cur, branches)
        for branch in branches:
            for reason in branch.unknown:
                hop = Hop(loc, in_port, branch.steps, None)
                paths.append(Path((*hops, hop), Undecided(reason), branch.pkt))
            if not branch.emissions and not branch.unknown:
                last = branch.ends[-1] if branch.ends else (branch.steps[-1] if branch.steps else None)
                reason = last.describe() if last is not None else f"{loc}: no output"
                paths.append(Path((*hops, Hop(loc, in_port, branch.steps, None)), Dropped(reason, last), branch.pkt))
            for em in branch.emissions:
                for arrival in net.follow(ctx, loc, em.port, em.pkt):
                    hop = Hop(loc, in_port, em.steps, em.port, em.pkt, arrival.via, em.alternatives)
                    if isinstance(arrival, Terminal):
                        paths.append(Path((*hops, hop), arrival.outcome, arrival.pkt))
                    elif prune is None or not prune(arrival.location, arrival.pkt):
                        stack.append((arrival.location, arrival.pkt, (*hops, hop), seen))
        if stop and any(stop(p) for p in paths[before:]):
            return paths
    return paths


def merge_branches(ctx: Context, incoming: PacketState, branches: list[Branch]) -> list[Branch]:
    """Join the branches of one device that emit one packet alike on the same port.

    An iptables chain splits a packet at every rule, though most splits end
    in the same ACCEPT with the same headers; without joining, everything
    downstream is explored once per split.  Branches join when they emit a
    single copy on the same port, through the same OpenFlow flows (so a
    replay still checks every flow), with field values of the same Z3 terms;
    the joined path condition is the disjunction of theirs (beyond the
    incoming one), and known bits are kept where all agree.  The emission
    keeps every branch's steps with the literals that select it, so that a
    concrete packet (a model) is explained by the alternative it satisfies
    (``resolve_alternatives``); the steps shown until then are the first's.
    """
    assert ctx.solver is not None
    groups: dict[object, list[Branch]] = {}
    out: list[Branch] = []
    base = len(incoming.pc)
    for b in branches:
        if b.unknown or len(b.emissions) != 1 or b.pkt.pc[:base] != incoming.pc:
            out.append(b)
            continue
        em = b.emissions[0]
        if em.pkt.pc != b.pkt.pc or em.alternatives:
            out.append(b)
            continue
        flows = tuple(id(s.flow) for s in em.steps if s.kind == "match")
        key = (em.port, flows, tuple(_term_key(em.pkt.fields[n]) for n in FIELD_NAMES))
        groups.setdefault(key, []).append(b)
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        rests = [b.pkt.pc[base:] for b in group]
        if any(not r for r in rests):
            pc = incoming.pc
        else:
            inner = tuple(lit for r in rests for lit in r)
            pc = (*incoming.pc, ctx.solver.literal(z3.Or(*(z3.And(*r) for r in rests)), inner))
        first = group[0].emissions[0]
        fields = {n: _join([b.emissions[0].pkt.fields[n] for b in group], FIELDS[n].width) for n in FIELD_NAMES}
        doubts = tuple(dict.fromkeys(d for b in group for d in b.pkt.doubts))
        pkt = PacketState(fields, pc, doubts)
        alternatives = tuple((tuple(r), b.emissions[0].steps) for r, b in zip(rests, group, strict=True))
        emission = Emission(first.port, pkt, first.steps, alternatives)
        out.append(Branch(pkt, (emission,), group[0].steps, group[0].ends, ()))
    return out


def resolve_alternatives(path: Path, holds: Callable[[object], bool]) -> Path:
    """The path with each joined hop's steps replaced by the alternative whose literals all hold."""
    if not any(h.alternatives for h in path.hops):
        return path
    hops = []
    for h in path.hops:
        if h.alternatives:
            steps = next((st for lits, st in h.alternatives if all(holds(lit) for lit in lits)), None)
            if steps is None:
                raise ValueError(f"no alternative of the joined hop at {h.location} holds in the model")
            h = Hop(h.location, h.in_port, steps, h.out_port, h.out_pkt, h.via)
        hops.append(h)
    return Path(tuple(hops), path.outcome, path.pkt)


def _term_key(v: sy.Value) -> object:
    return v if isinstance(v, int) else ("sym", v.width, -1 if v.term is None else v.term.get_id())


def _join(values: list[sy.Value], width: int) -> sy.Value:
    first = values[0]
    if all(sy.value_key(v) == sy.value_key(first) for v in values):
        return first
    agree = sy.full(width)
    bits, care = sy.known_bits(first, width)
    for v in values[1:]:
        b, c = sy.known_bits(v, width)
        care &= c
        agree &= ~(bits ^ b)
    assert not isinstance(first, int)
    return sy.make(width, bits, care & agree, first.term)


# ---------------------------------------------------------------- abstract graph


def outcome_key(outcome: Outcome) -> object:
    """What makes two outcomes the same for reachability (drops and loops are not kept)."""
    if isinstance(outcome, Delivered):
        return ("delivered", outcome.endpoint.id)
    return (type(outcome).__name__, outcome.describe())


@dataclass
class AbstractGraph:
    """The abstract state graph of a network, grown from sources on demand."""

    net: Network
    ctx: Context = field(default_factory=lambda: Context(Mode.ABSTRACT))
    keys: dict[object, int] = field(default_factory=dict)
    states: list[tuple[Location, PacketState]] = field(default_factory=list)
    succ: list[list[int]] = field(default_factory=list)
    terms: list[int] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    outcome_ids: dict[object, int] = field(default_factory=dict)
    portable: list[bool] = field(default_factory=list)
    _pending: list[int] = field(default_factory=list)
    _expanded: set[int] = field(default_factory=set)
    _reach: dict[int, int] = field(default_factory=dict)

    def node(self, location: Location, pkt: PacketState) -> int:
        """The node of an abstract state (created and queued for expansion if new).

        A packet arriving on a port of a symmetry class (Network.symmetric_ports)
        shares the node of the class's smallest port (Network.canonical), when
        what that node does never involves the class (it emits on none of its
        ports and skips no output to its input port): then renaming the input
        port changes nothing.
        """
        key = (location, pkt.field_key())
        nid = self.keys.get(key)
        if nid is not None:
            return nid
        renamed = self.net.canonical(location, pkt)
        if renamed is not pkt and renamed.field_key() != pkt.field_key():
            canonical = self.node(location, renamed)
            self._expand_one(canonical)
            if self.portable[canonical]:
                self.keys[key] = canonical
                return canonical
        nid = len(self.states)
        self.keys[key] = nid
        self.states.append((location, pkt))
        self.succ.append([])
        self.terms.append(0)
        self.portable.append(False)
        self._pending.append(nid)
        return nid

    def _outcome(self, outcome: Outcome) -> int:
        key = outcome_key(outcome)
        oid = self.outcome_ids.get(key)
        if oid is None:
            oid = len(self.outcomes)
            self.outcome_ids[key] = oid
            self.outcomes.append(outcome)
        return oid

    def expand(self) -> None:
        """Compute the successors of every queued node, until none is left."""
        while self._pending:
            self._expand_one(self._pending.pop())

    def _expand_one(self, nid: int) -> None:
        if nid in self._expanded:
            return
        self._expanded.add(nid)
        loc, pkt = self.states[nid]
        device = self.net.device(loc)
        if device is None:
            self.terms[nid] |= 1 << self._outcome(Undecided(f"no model of {loc}"))
            return
        in_port = pkt.fields["in_port"]
        members = self.net.symmetric_ports(loc, in_port) if isinstance(in_port, int) else frozenset()
        portable = bool(members)
        arrivals = []
        bits = 0
        emitted: set[tuple[int, object]] = set()
        for branch in device.transfer(self.ctx, pkt):
            for reason in branch.unknown:
                bits |= 1 << self._outcome(Undecided(reason))
            if any(s.note.startswith("skipping output to input port") for s in branch.ends):
                portable = False
            for em in branch.emissions:
                if em.port in members:
                    portable = False
                copy = (em.port, em.pkt.field_key())
                if copy in emitted:
                    continue
                emitted.add(copy)
                arrivals.extend(self.net.follow(self.ctx, loc, em.port, em.pkt))
        self.portable[nid] = portable
        succ: set[int] = set()
        for arrival in arrivals:
            if isinstance(arrival, Enter):
                succ.add(self.node(arrival.location, arrival.pkt))
            elif not isinstance(arrival.outcome, (Dropped, Looped)):
                bits |= 1 << self._outcome(arrival.outcome)
        self.succ[nid] = sorted(succ)
        self.terms[nid] = bits

    def reach(self, nid: int) -> int:
        """Bitset of outcome ids reachable from node ``nid`` (Tarjan SCCs, memoised)."""
        self.expand()
        if nid in self._reach:
            return self._reach[nid]
        index: dict[int, int] = {}
        low: dict[int, int] = {}
        on_stack: set[int] = set()
        stack: list[int] = []
        counter = 0
        work: list[tuple[int, int]] = [(nid, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                if v in self._reach:
                    continue
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            recurse = False
            succ = self.succ[v]
            while i < len(succ):
                w = succ[i]
                i += 1
                if w in self._reach:
                    continue
                if w not in index:
                    work.append((v, i))
                    work.append((w, 0))
                    recurse = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                bits = 0
                members = set(component)
                for c in component:
                    bits |= self.terms[c]
                    for s in self.succ[c]:
                        if s not in members:
                            bits |= self._reach[s]
                for c in component:
                    self._reach[c] = bits
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
        return self._reach[nid]

    def outcomes_of(self, bits: int) -> list[Outcome]:
        return [self.outcomes[i] for i in _bits(bits)]

    def guide(self, target: int) -> Prune:
        """A prune function for ``explore`` keeping only states that may reach outcome ``target``.

        A precise state is kept when some abstract node at the same location,
        able to reach the target, agrees with it on every bit both know.
        """
        self.expand()
        mask = 1 << target
        by_loc: dict[tuple[Location, object], list[tuple[tuple[int, int], ...]]] = {}
        for nid, (loc, pkt) in enumerate(self.states):
            if self.reach(nid) & mask:
                by_loc.setdefault((loc, pkt.fields["in_port"]), []).append(_known(pkt))

        def prune(location: Location, pkt: PacketState) -> bool:
            for probe in (pkt, self.net.canonical(location, pkt)):
                candidates = by_loc.get((location, probe.fields["in_port"]), ())
                mine = _known(probe)
                if any(_consistent(mine, other) for other in candidates):
                    return False
            return True

        return prune


def _known(pkt: PacketState) -> tuple[tuple[int, int], ...]:
    return tuple(sy.known_bits(pkt.fields[n], FIELDS[n].width) for n in FIELD_NAMES)


def _consistent(a: tuple[tuple[int, int], ...], b: tuple[tuple[int, int], ...]) -> bool:
    return all(not ((ab ^ bb) & ac & bc) for (ab, ac), (bb, bc) in zip(a, b))


def _bits(bits: int) -> Iterable[int]:
    i = 0
    while bits:
        if bits & 1:
            yield i
        bits >>= 1
        i += 1
