"""iptables rule evaluation on symbolic packets.

``Netfilter.run(ctx, pkt, table, chain, hook)`` walks one built-in chain of
one table the way the kernel does: rules in order, first match decides;
``-j chain`` descends and comes back on RETURN or at the chain's end, ``-g``
does not come back; ACCEPT/DROP/REJECT end the table for this hook; a built-in
chain that ends applies its policy.  Non-terminating targets (MARK, CONNMARK,
CT, CHECKSUM, LOG) change the packet or nothing and go on.  NAT targets end
the nat chain and are returned for the caller to apply (only the first packet
of a connection sees the nat table).  Rules the models do not know make the
packet's fate unknown when it may match them.

Connection-tracking state is read from the packet's ``ct_state`` field (the
caller sets it at the conntrack point); ``pkt_mark`` and ``ct_mark`` hold the
packet and connection marks.  ``ipsets`` maps set names to member networks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace

from verifier import linux as lx
from verifier import symbolic as sy
from verifier.device import Step
from verifier.header import CT_STATE_BITS, IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP
from verifier.packet import Context, PacketState

MAX_CHAIN_DEPTH = 64


@dataclass(frozen=True)
class Hook:
    """What netfilter knows at this point: interfaces, and bridge ports for bridged frames."""

    in_iface: str | None = None
    out_iface: str | None = None
    physdev_in: str | None = None
    physdev_out: str | None = None
    bridged: bool = False


@dataclass(frozen=True)
class Outcome:
    """One way a chain walk ends.

    ``verdict`` is ACCEPT, DROP or REJECT (None when undecided); ``nat`` is
    the NAT target hit (nat table only); ``notrack``/``zone`` come from the CT
    target; ``unknown`` names rules the models do not know.
    """

    pkt: PacketState
    verdict: str | None
    steps: tuple[Step, ...]
    nat: lx.Nat | None = None
    nat_rule: lx.Rule | None = None
    notrack: bool = False
    zone: int | None = None
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Walk:
    pkt: PacketState
    steps: tuple[Step, ...] = ()
    notrack: bool = False
    zone: int | None = None


class Netfilter:
    """One namespace's iptables tables, ready to evaluate."""

    def __init__(self, host: str, device: str, nf: lx.Netfilter, ipsets: Mapping[str, tuple[str, ...]] | None = None):
        self.host = host
        self.device = device
        self.nf = nf
        self.ipsets_text = dict(ipsets or {})
        self.ipsets = {
            name: tuple(ipaddress.ip_network(m, strict=False) for m in members)
            for name, members in (ipsets or {}).items()
        }

    def run(self, ctx: Context, pkt: PacketState, table: str, chain: str, hook: Hook) -> list[Outcome]:
        """Walk the built-in ``chain`` of ``table``; a missing table or chain accepts."""
        t = self.nf.table(table)
        start = _Walk(pkt)
        if t is None or t.chain(chain) is None:
            return [Outcome(pkt, "ACCEPT", ())]
        out: list[Outcome] = []
        finished, returned = self._walk(ctx, t, chain, start, hook, 0, out)
        policy = t.chain(chain).policy or "ACCEPT"  # type: ignore[union-attr]
        for w in returned:
            note = self._step(f"{table} {chain}: policy {policy}")
            out.append(Outcome(w.pkt, policy, (*w.steps, note), notrack=w.notrack, zone=w.zone))
        out.extend(finished)
        return out

    def _step(self, note: str, rule: lx.Rule | None = None) -> Step:
        return Step(self.host, self.device, None, "rule" if rule else "note", note=note, payload=rule)

    def _walk(
        self, ctx: Context, table: lx.Table, chain_name: str, w: _Walk, hook: Hook, depth: int, sink: list[Outcome]
    ) -> tuple[list[Outcome], list[_Walk]]:
        """Walk a chain: (walks that ended with a verdict, walks that came back to the caller)."""
        chain = table.chain(chain_name)
        if chain is None or depth > MAX_CHAIN_DEPTH:
            why = f"{self.device}: chain {chain_name} of table {table.name} " + (
                "is not declared" if chain is None else "nests too deep"
            )
            return [Outcome(w.pkt, None, w.steps, unknown=(why,))], []
        finished: list[Outcome] = []
        returned: list[_Walk] = []
        walks = [w]
        for rule in chain.rules:
            nxt: list[_Walk] = []
            for cur in walks:
                cond = self.match(cur.pkt, rule, hook)
                if cond is False:
                    nxt.append(cur)
                    continue
                unknown = self._unsupported(rule)
                if unknown:
                    why = f"{rule.provenance}: iptables rule not modelled ({'; '.join(unknown)})"
                    finished.append(Outcome(cur.pkt, None, cur.steps, unknown=(why,)))
                    nxt.append(cur)
                    continue
                hit = ctx.assume(cur.pkt, cond)
                miss = ctx.assume(cur.pkt, sy.not_(cond)) if cond is not True else None
                if miss is not None:
                    nxt.append(replace(cur, pkt=miss))
                if hit is None:
                    continue
                here = replace(cur, pkt=hit, steps=(*cur.steps, self._step(_rule_text(table.name, rule), rule)))
                done, back, cont = self._target(ctx, table, rule, here, hook, depth, sink)
                finished.extend(done)
                returned.extend(back)
                nxt.extend(cont)
            walks = nxt
        returned.extend(walks)
        return finished, returned

    def _target(
        self, ctx: Context, table: lx.Table, rule: lx.Rule, w: _Walk, hook: Hook, depth: int, sink: list[Outcome]
    ) -> tuple[list[Outcome], list[_Walk], list[_Walk]]:
        """Apply a matched rule's target: (finished, returned to caller, continue with next rule)."""
        t = rule.target
        if t is None or isinstance(t, lx.NoEffect):
            return [], [], [w]
        if isinstance(t, lx.Verdict):
            if t.kind == "RETURN":
                return [], [w], []
            return [Outcome(w.pkt, t.kind, w.steps, notrack=w.notrack, zone=w.zone)], [], []
        if isinstance(t, lx.Jump):
            done, back = self._walk(ctx, table, t.chain, w, hook, depth + 1, sink)
            return (done, back, []) if t.goto else (done, [], back)
        if isinstance(t, lx.Nat):
            return [Outcome(w.pkt, "ACCEPT", w.steps, nat=t, nat_rule=rule, notrack=w.notrack, zone=w.zone)], [], []
        if isinstance(t, lx.SetMark):
            mark = w.pkt.fields["pkt_mark"]
            new = _xmark(mark, t.value, t.mask)
            return [], [], [replace(w, pkt=w.pkt.with_fields({"pkt_mark": new}))]
        if isinstance(t, lx.ConnMark):
            return [], [], [replace(w, pkt=_connmark(w.pkt, t))]
        if isinstance(t, lx.Conntrack):
            return [], [], [replace(w, notrack=t.notrack or w.notrack, zone=t.zone if t.zone is not None else w.zone)]
        why = f"{rule.provenance}: iptables target not modelled ({t.text})"
        return [Outcome(w.pkt, None, w.steps, unknown=(why,))], [], []

    def _unsupported(self, rule: lx.Rule) -> tuple[str, ...]:
        """What the models cannot decide about a rule: unknown matches or targets, ipsets without members."""
        missing = tuple(
            f"ipset {m.name} (its members are not known)"
            for m in rule.matches
            if isinstance(m, lx.MatchSet) and m.name not in self.ipsets
        )
        return rule.unsupported + missing

    # ------------------------------------------------------------ matches

    def match(self, pkt: PacketState, rule: lx.Rule, hook: Hook) -> sy.Cond:
        """The condition that the packet matches every supported match of the rule."""
        conds: list[sy.Cond] = []
        protocol_known = any(isinstance(m, lx.MatchProtocol) and not m.negated for m in rule.matches)
        for m in rule.matches:
            c = self._one(pkt, m, hook, protocol_known)
            if c is False:
                return False
            conds.append(c)
        return sy.and_(*conds)

    def _one(self, pkt: PacketState, m: lx.Match, hook: Hook, protocol_known: bool) -> sy.Cond:
        f = pkt.fields
        if isinstance(m, lx.MatchAddress):
            net = ipaddress.ip_network(m.network, strict=False)
            if net.version != 4:
                return False
            c = sy.test(f["ip_src" if m.direction == "src" else "ip_dst"], int(net.network_address), int(net.netmask))
        elif isinstance(m, lx.MatchInterface):
            name = hook.in_iface if m.direction == "in" else hook.out_iface
            c = name is not None and _iface_matches(m.name, name)
        elif isinstance(m, lx.MatchProtocol):
            c = sy.test(f["ip_proto"], m.protocol, 0xFF)
        elif isinstance(m, lx.MatchPorts):
            c = self._ports(pkt, m)
        elif isinstance(m, lx.MatchIcmp):
            c = sy.and_(sy.test(f["ip_proto"], IPPROTO_ICMP, 0xFF), sy.test(f["tp_src"], m.type, 0xFF))
            if m.code is not None:
                c = sy.and_(c, sy.test(f["tp_dst"], m.code, 0xFF))
            if m.v6:
                c = False
        elif isinstance(m, lx.MatchPhysdev):
            return _physdev(m, hook)
        elif isinstance(m, lx.MatchMac):
            c = sy.test(f["eth_src"], int(m.mac.replace(":", ""), 16), (1 << 48) - 1)
        elif isinstance(m, lx.MatchSet):
            c = self._set(pkt, m)
        elif isinstance(m, lx.MatchState):
            c = _state(f["ct_state"], m.states)
        elif isinstance(m, lx.MatchMark):
            value = f["ct_mark" if m.connection else "pkt_mark"]
            c = sy.test(value, m.value & m.mask, m.mask)
        else:
            # Comments never matter; unsupported matches are dealt with by the caller.
            return True
        if m.negated:
            return sy.not_(c)
        return c

    def _ports(self, pkt: PacketState, m: lx.MatchPorts) -> sy.Cond:
        f = pkt.fields
        l4 = sy.or_(*(sy.test(f["ip_proto"], p, 0xFF) for p in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP)))
        fields = {"src": ["tp_src"], "dst": ["tp_dst"], "any": ["tp_src", "tp_dst"]}[m.direction]
        hits = [sy.in_range(f[name], lo, hi, 16) for name in fields for lo, hi in m.ranges]
        return sy.and_(l4, sy.or_(*hits))

    def _set(self, pkt: PacketState, m: lx.MatchSet) -> sy.Cond:
        members = self.ipsets.get(m.name, ())
        field = "ip_src" if m.flags[0] == "src" else "ip_dst"
        value = pkt.fields[field]
        return sy.or_(*(sy.test(value, int(n.network_address), int(n.netmask)) for n in members if n.version == 4))


def _iface_matches(pattern: str, name: str) -> bool:
    if pattern.endswith("+"):
        return name.startswith(pattern[:-1])
    return name == pattern


def _physdev(m: lx.MatchPhysdev, hook: Hook) -> bool:
    checks: list[bool] = []
    if m.physdev_in is not None:
        name, negated = m.physdev_in
        checks.append((hook.physdev_in is not None and _iface_matches(name, hook.physdev_in)) != negated)
    if m.physdev_out is not None:
        name, negated = m.physdev_out
        checks.append((hook.physdev_out is not None and _iface_matches(name, hook.physdev_out)) != negated)
    if m.is_bridged is not None:
        checks.append(hook.bridged != m.is_bridged[1])
    if m.is_in is not None:
        checks.append((hook.physdev_in is not None) != m.is_in[1])
    if m.is_out is not None:
        checks.append((hook.physdev_out is not None) != m.is_out[1])
    return all(checks)


_STATE_BITS = {
    "NEW": CT_STATE_BITS["new"],
    "ESTABLISHED": CT_STATE_BITS["est"],
    "RELATED": CT_STATE_BITS["rel"],
    "INVALID": CT_STATE_BITS["inv"],
    "SNAT": CT_STATE_BITS["snat"],
    "DNAT": CT_STATE_BITS["dnat"],
}


def _state(ct_state: sy.Value, states: frozenset[str]) -> sy.Cond:
    conds: list[sy.Cond] = []
    trk = CT_STATE_BITS["trk"]
    for name in sorted(states):
        if name == "UNTRACKED":
            conds.append(sy.test(ct_state, 0, trk))
        elif name in _STATE_BITS:
            bit = _STATE_BITS[name]
            conds.append(sy.test(ct_state, trk | bit, trk | bit))
    return sy.or_(*conds)


def _xmark(mark: sy.Value, value: int, mask: int) -> sy.Value:
    # (mark & ~mask) ^ value: with value inside mask (iptables-save always prints it so), a masked set.
    if value & ~mask:
        kept = sy.set_bits(mark, 0, mask, 32)
        if isinstance(kept, int):
            return kept ^ value
        return sy.Sym(32) if kept.term is None else sy.make(32, 0, 0, kept.term ^ value)
    return sy.set_bits(mark, value, mask, 32)


def _connmark(pkt: PacketState, t: lx.ConnMark) -> PacketState:
    f = pkt.fields
    if t.mode == "save":
        moved = sy.set_bits(0, f["pkt_mark"], t.nfmask, 32)
        return pkt.with_fields({"ct_mark": sy.set_bits(f["ct_mark"], moved, t.ctmask, 32)})
    if t.mode == "restore":
        moved = sy.set_bits(0, f["ct_mark"], t.ctmask, 32)
        return pkt.with_fields({"pkt_mark": sy.set_bits(f["pkt_mark"], moved, t.nfmask, 32)})
    return pkt.with_fields({"ct_mark": _xmark(f["ct_mark"], t.value, t.mask)})


def _rule_text(table: str, rule: lx.Rule) -> str:
    return f"{table} {rule.chain}: {rule.provenance.text or rule.provenance}"
