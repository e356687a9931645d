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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from verifier import symbolic as sy
from verifier.device import Step
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


@dataclass(frozen=True)
class Hop:
    """A device crossed: where the packet came in, what the device did, where it left."""

    location: Location
    in_port: int
    steps: tuple[Step, ...]
    out_port: int | None
    out_pkt: PacketState | None = None
    via: str = ""


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
) -> list[Path]:
    """Every path of ``pkt`` from ``start`` (arriving on ``pkt.fields['in_port']``).

    ``prune(location, pkt)`` returning True skips a state (used to direct the
    search); ``stop(path)`` returning True ends the walk early.
    """
    paths: list[Path] = []
    stack: list[tuple[Location, PacketState, tuple[Hop, ...], frozenset[object]]] = [(start, pkt, (), frozenset())]
    while stack:
        loc, cur, hops, seen = stack.pop()
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
        for branch in device.transfer(ctx, cur):
            for reason in branch.unknown:
                hop = Hop(loc, in_port, branch.steps, None)
                paths.append(Path((*hops, hop), Undecided(reason), branch.pkt))
            if not branch.emissions and not branch.unknown:
                last = branch.ends[-1] if branch.ends else (branch.steps[-1] if branch.steps else None)
                reason = last.describe() if last is not None else f"{loc}: no output"
                paths.append(Path((*hops, Hop(loc, in_port, branch.steps, None)), Dropped(reason, last), branch.pkt))
            for em in branch.emissions:
                for arrival in net.follow(ctx, loc, em.port, em.pkt):
                    hop = Hop(loc, in_port, em.steps, em.port, em.pkt, arrival.via)
                    if isinstance(arrival, Terminal):
                        paths.append(Path((*hops, hop), arrival.outcome, arrival.pkt))
                    elif prune is None or not prune(arrival.location, arrival.pkt):
                        stack.append((arrival.location, arrival.pkt, (*hops, hop), seen))
        if stop and any(stop(p) for p in paths[before:]):
            return paths
    return paths


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
