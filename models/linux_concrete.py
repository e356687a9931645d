"""Concrete twins of the Linux-side models: one packet of plain integers through iptables,
a namespace's routing and NAT, and a hybrid-firewall bridge.

Written apart from models.netfilter / models.namespace / models.firewall
(no shared transfer code) so that the differential tests compare two
implementations; both follow the same kernel order (see those modules).
Results use the OpenFlow twin's CResult/CEmission/CStep shapes.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from models.openflow_concrete import CEmission, CResult, CStep
from verifier import linux as lx
from verifier.header import CT_STATE_BITS, ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_IPV6
from verifier.snapshot.iptables_print import format_rule

TRK = CT_STATE_BITS["trk"]
NEW = TRK | CT_STATE_BITS["new"]
STATE_BITS = {
    "NEW": CT_STATE_BITS["new"],
    "ESTABLISHED": CT_STATE_BITS["est"],
    "RELATED": CT_STATE_BITS["rel"],
    "INVALID": CT_STATE_BITS["inv"],
    "SNAT": CT_STATE_BITS["snat"],
    "DNAT": CT_STATE_BITS["dnat"],
}


@dataclass
class Verdict:
    """How one chain walk ended (verdict None: a rule the models do not know)."""

    verdict: str | None
    nat: lx.Nat | None = None
    notrack: bool = False
    zone: int | None = None
    unknown: str = ""


@dataclass(frozen=True)
class Where:
    in_iface: str | None = None
    out_iface: str | None = None
    physdev_in: str | None = None
    physdev_out: str | None = None
    bridged: bool = False


class ConcreteNetfilter:
    """iptables on one concrete packet (a dict of header fields, changed in place)."""

    def __init__(self, nf: lx.Netfilter, ipsets: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self.nf = nf
        self.ipsets = {k: _set_ranges(tuple(v)) for k, v in (ipsets or {}).items()}

    def run(self, pkt: dict[str, int], table: str, chain: str, where: Where, notes: list[CStep]) -> Verdict:
        t = self.nf.table(table)
        if t is None or t.chain(chain) is None:
            return Verdict("ACCEPT")
        state = Verdict(None)
        result = self._walk(pkt, t, chain, where, notes, state, 0)
        if result is None:  # fell off a built-in chain
            policy = t.chain(chain).policy or "ACCEPT"  # type: ignore[union-attr]
            notes.append(CStep(None, None, f"{table} {chain}: policy {policy}"))
            state.verdict = policy
        return state

    def _walk(
        self,
        pkt: dict[str, int],
        table: lx.Table,
        name: str,
        where: Where,
        notes: list[CStep],
        state: Verdict,
        depth: int,
    ) -> str | None:
        """Walk a chain: a verdict string when it ended, None when it came back."""
        chain = table.chain(name)
        if chain is None or depth > 64:
            state.verdict, state.unknown = None, f"chain {name} missing or nesting too deep"
            return "unknown"
        for rule in chain.rules:
            if not self._matches(pkt, rule, where):
                continue
            unknown = rule.unsupported + tuple(
                f"ipset {m.name}" for m in rule.matches if isinstance(m, lx.MatchSet) and m.name not in self.ipsets
            )
            if unknown:
                state.verdict, state.unknown = None, f"{rule.provenance}: {'; '.join(unknown)}"
                return "unknown"
            notes.append(CStep(None, None, rule_text(table.name, rule)))
            t = rule.target
            if t is None or isinstance(t, lx.NoEffect):
                continue
            if isinstance(t, lx.Verdict):
                if t.kind == "RETURN":
                    return None
                state.verdict = t.kind
                return t.kind
            if isinstance(t, lx.Jump):
                ended = self._walk(pkt, table, t.chain, where, notes, state, depth + 1)
                if ended is not None:
                    return ended
                if t.goto:
                    return None
                continue
            if isinstance(t, lx.Nat):
                state.verdict, state.nat = "ACCEPT", t
                return "ACCEPT"
            if isinstance(t, lx.SetMark):
                pkt["pkt_mark"] = ((pkt["pkt_mark"] & ~t.mask) ^ t.value) & 0xFFFFFFFF
                continue
            if isinstance(t, lx.ConnMark):
                if t.mode == "save":
                    pkt["ct_mark"] = (pkt["ct_mark"] & ~t.ctmask) | (pkt["pkt_mark"] & t.nfmask & t.ctmask)
                elif t.mode == "restore":
                    pkt["pkt_mark"] = (pkt["pkt_mark"] & ~t.nfmask) | (pkt["ct_mark"] & t.ctmask & t.nfmask)
                else:
                    pkt["ct_mark"] = ((pkt["ct_mark"] & ~t.mask) ^ t.value) & 0xFFFFFFFF
                continue
            if isinstance(t, lx.Conntrack):
                state.notrack = state.notrack or t.notrack
                state.zone = t.zone if t.zone is not None else state.zone
                continue
            state.verdict, state.unknown = None, f"{rule.provenance}: target {t.text}"
            return "unknown"
        return None

    def _matches(self, pkt: Mapping[str, int], rule: lx.Rule, where: Where) -> bool:
        return all(self._one(pkt, m, where) for m in rule.matches)

    def _one(self, pkt: Mapping[str, int], m: lx.Match, where: Where) -> bool:
        if isinstance(m, (lx.MatchComment, lx.MatchUnsupported)):
            return True
        if isinstance(m, lx.MatchPhysdev):
            return _physdev(m, where)
        hit: bool
        if isinstance(m, lx.MatchAddress):
            lo_hi = _v4_range(m.network)
            value = pkt["ip_src" if m.direction == "src" else "ip_dst"]
            hit = lo_hi is not None and lo_hi[0] <= value <= lo_hi[1]
        elif isinstance(m, lx.MatchInterface):
            name = where.in_iface if m.direction == "in" else where.out_iface
            hit = name is not None and (name.startswith(m.name[:-1]) if m.name.endswith("+") else name == m.name)
        elif isinstance(m, lx.MatchProtocol):
            hit = pkt["ip_proto"] == m.protocol
        elif isinstance(m, lx.MatchPorts):
            names = {"src": ["tp_src"], "dst": ["tp_dst"], "any": ["tp_src", "tp_dst"]}[m.direction]
            hit = pkt["ip_proto"] in (6, 17, 132) and any(lo <= pkt[n] <= hi for n in names for lo, hi in m.ranges)
        elif isinstance(m, lx.MatchIcmp):
            hit = not m.v6 and pkt["ip_proto"] == 1 and pkt["tp_src"] == m.type
            hit = hit and (m.code is None or pkt["tp_dst"] == m.code)
        elif isinstance(m, lx.MatchMac):
            hit = pkt["eth_src"] == int(m.mac.replace(":", ""), 16)
        elif isinstance(m, lx.MatchSet):
            address = pkt["ip_src" if m.flags[0] == "src" else "ip_dst"]
            hit = any(lo <= address <= hi for lo, hi in self.ipsets.get(m.name, ()))
        elif isinstance(m, lx.MatchState):
            hit = any(_in_state(pkt["ct_state"], s) for s in m.states)
        elif isinstance(m, lx.MatchMark):
            hit = pkt["ct_mark" if m.connection else "pkt_mark"] & m.mask == m.value & m.mask
        else:
            raise TypeError(f"unhandled match {m!r}")
        return hit != m.negated


@functools.lru_cache(maxsize=65536)
def _v4_range(network: str) -> tuple[int, int] | None:
    """The first and last address of an IPv4 network given as text (None for IPv6)."""
    net = ipaddress.ip_network(network, strict=False)
    if net.version != 4:
        return None
    return int(net.network_address), int(net.broadcast_address)


@functools.lru_cache(maxsize=4096)
def _set_ranges(members: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """An ipset's IPv4 members as address ranges (parsed once per distinct set)."""
    return tuple(r for r in (_v4_range(m) for m in members) if r is not None)


def _in_state(ct: int, name: str) -> bool:
    if name == "UNTRACKED":
        return not ct & TRK
    bit = STATE_BITS.get(name)
    return bit is not None and bool(ct & TRK) and bool(ct & bit)


def _physdev(m: lx.MatchPhysdev, where: Where) -> bool:
    def port(pattern: str, name: str | None) -> bool:
        return name is not None and (name.startswith(pattern[:-1]) if pattern.endswith("+") else name == pattern)

    ok = True
    if m.physdev_in is not None:
        ok = ok and port(m.physdev_in[0], where.physdev_in) != m.physdev_in[1]
    if m.physdev_out is not None:
        ok = ok and port(m.physdev_out[0], where.physdev_out) != m.physdev_out[1]
    if m.is_bridged is not None:
        ok = ok and where.bridged != m.is_bridged[1]
    if m.is_in is not None:
        ok = ok and (where.physdev_in is not None) != m.is_in[1]
    if m.is_out is not None:
        ok = ok and (where.physdev_out is not None) != m.is_out[1]
    return ok


# ---------------------------------------------------------------- namespace


class ConcreteNamespace:
    """A namespace's kernel path for one packet (see models.namespace for the order).

    A multipath route sends one copy per next hop (the kernel picks one per
    flow by hash: each is possible); a neighbour whose MAC is not known gets
    ``unknown_mac``.
    """

    def __init__(
        self,
        ns: lx.Namespace,
        *,
        ipsets: Mapping[str, tuple[str, ...]] | None = None,
        neighbor: Callable[[str, str], int | None] | None = None,
        unknown_mac: int = 0,
    ) -> None:
        self.ns = ns
        links = sorted((x for x in ns.links if x.name != "lo" and x.kind != "loopback"), key=lambda x: x.name)
        self.ports = {i: x.name for i, x in enumerate(links, start=1)}
        self.numbers = {v: k for k, v in self.ports.items()}
        self.macs = {x.name: int(x.mac.replace(":", ""), 16) for x in links if x.mac}
        self.nf = ConcreteNetfilter(ns.netfilter, ipsets) if ns.netfilter is not None else None
        self.neighbor = neighbor or (lambda iface, ip: None)
        self.unknown_mac = unknown_mac
        self.local = {int(ipaddress.IPv4Address(a.address)) for a in ns.addresses if ":" not in a.address}
        self.routes = sorted(
            (r for r in ns.routes or () if r.table in ("main", "local") and ":" not in r.destination),
            key=lambda r: (-_plen(r.destination), r.metric or 0),
        )
        self.local |= {
            int(ipaddress.ip_network(r.destination).network_address)
            for r in self.routes
            if r.kind == "local" and _plen(r.destination) == 32
        }
        self.broadcast = {0xFFFFFFFF} | {
            int(ipaddress.ip_network(r.destination).network_address)
            for r in self.routes
            if r.kind == "broadcast" and _plen(r.destination) == 32
        }
        for a in ns.addresses:
            net = ipaddress.ip_interface(f"{a.address}/{a.prefixlen}").network
            if net.version == 4 and net.prefixlen < 31:
                self.broadcast.add(int(net.broadcast_address))

    def run(self, packet: dict[str, int]) -> CResult:
        result = CResult()
        pkt = dict(packet)
        iface = self.ports.get(pkt["in_port"])
        if self.nf is None or self.ns.routes is None:
            result.unknown.append(f"{self.ns.name}: routing or iptables unknown")
            return result
        if iface is None:
            return self._drop(result, "no such interface")
        if pkt["vlan_tci"]:
            return self._drop(result, f"802.1Q frame on {iface}: dropped")
        mac = self.macs.get(iface)
        if not (pkt["eth_dst"] & 0x010000000000 or pkt["eth_dst"] == mac):
            return self._drop(result, f"frame not addressed to {iface}: dropped")
        if pkt["eth_type"] == ETH_TYPE_ARP:
            return self._local(result, pkt, "ARP to the namespace's own stack")
        if pkt["eth_type"] == ETH_TYPE_IPV6:
            return self._drop(result, f"IPv6 on {iface}: not routed")
        if pkt["eth_type"] != ETH_TYPE_IP:
            return self._drop(result, "neither IPv4, IPv6 nor ARP: not routed")
        pre = Where(in_iface=iface)
        v = self._table(result, pkt, "raw", "PREROUTING", pre)
        if v is None:
            return result
        tracked = not v.notrack
        pkt["ct_state"], pkt["ct_zone"] = (NEW if tracked else 0), v.zone or 0
        if self._table(result, pkt, "mangle", "PREROUTING", pre) is None:
            return result
        if tracked:
            nat = self._table(result, pkt, "nat", "PREROUTING", pre)
            if nat is None or not self._apply(result, pkt, nat.nat, iface):
                return result
        src, dst = pkt["ip_src"], pkt["ip_dst"]
        if src >> 28 == 0xE or src == 0xFFFFFFFF or src >> 24 == 127:
            return self._drop(result, "martian source (multicast, broadcast or loopback): dropped")
        if src in self.local:
            return self._drop(result, "martian source (one of the namespace's own addresses): dropped")
        everyone = dst in self.broadcast or dst >> 28 == 0xE
        if not everyone and (src >> 24 == 0 or dst >> 24 in (0, 127)):
            return self._drop(result, "martian address (0.0.0.0/8 or loopback): dropped")
        if everyone or dst in self.local:
            for table in ("mangle", "filter"):
                if self._table(result, pkt, table, "INPUT", pre) is None:
                    return result
            return self._local(result, pkt, "delivered to the namespace's own stack")
        if pkt["eth_dst"] != mac:
            note = f"not for a local address, in a frame not sent to {iface}'s MAC: not forwarded"
            return self._drop(result, note)
        route = self._lookup(pkt["ip_dst"])
        if route is None:
            return self._drop(result, "no route to the destination")
        if route.kind != "unicast":
            return self._drop(result, f"{route.kind} route")
        if pkt["ip_ttl"] <= 1:
            return self._drop(result, "TTL exceeded")
        pkt["ip_ttl"] -= 1
        # Each next hop of a multipath route is one possible copy (the kernel hashes a flow onto one).
        for hop in route.nexthops or (lx.NextHop(route.gateway, route.device),):
            if hop.dead:
                continue
            if hop.device is None:
                self._drop(result, "route without a device")
                continue
            self._forward(result, dict(pkt), iface, route, hop, tracked)
        return result

    def _forward(
        self, result: CResult, pkt: dict[str, int], iface: str, route: lx.Route, hop: lx.NextHop, tracked: bool
    ) -> None:
        device = hop.device
        assert device is not None
        steps_before = len(result.steps)
        result.steps.append(CStep(None, None, f"routing: {route.destination} dev {device}"))
        fwd, post = Where(in_iface=iface, out_iface=device), Where(out_iface=device)
        for table, chain, where in (
            ("mangle", "FORWARD", fwd),
            ("filter", "FORWARD", fwd),
            ("mangle", "POSTROUTING", post),
        ):
            if self._table(result, pkt, table, chain, where) is None:
                return
        if tracked:
            nat = self._table(result, pkt, "nat", "POSTROUTING", post)
            if nat is None or not self._apply(result, pkt, nat.nat, device):
                return
        nxt = hop.gateway or str(ipaddress.IPv4Address(pkt["ip_dst"]))
        known = self.neighbor(device, nxt)
        pkt["eth_dst"] = known if known is not None else self.unknown_mac
        self._emit(result, pkt, device)
        del result.steps[steps_before:]

    def originate(self, packet: dict[str, int], iface: str) -> CResult:
        """A packet the namespace sends out of ``iface`` itself."""
        result = CResult()
        if self.nf is None:
            result.unknown.append(f"{self.ns.name}: iptables unknown")
            return result
        pkt = dict(packet)
        pkt["ct_state"] = NEW
        where = Where(out_iface=iface)
        for table, chain in (("raw", "OUTPUT"), ("mangle", "OUTPUT")):
            if self._table(result, pkt, table, chain, where) is None:
                return result
        nat = self._table(result, pkt, "nat", "OUTPUT", where)
        if nat is None or not self._apply(result, pkt, nat.nat, iface):
            return result
        for table, chain in (("filter", "OUTPUT"), ("mangle", "POSTROUTING")):
            if self._table(result, pkt, table, chain, where) is None:
                return result
        nat = self._table(result, pkt, "nat", "POSTROUTING", where)
        if nat is None or not self._apply(result, pkt, nat.nat, iface):
            return result
        return self._emit(result, pkt, iface, keep_dst=True)

    def _lookup(self, dst: int) -> lx.Route | None:
        for r in self.routes:
            if r.kind in ("local", "broadcast") or r.table != "main" or r.dead:
                continue
            if r.nexthops and all(n.dead for n in r.nexthops):
                continue
            net = ipaddress.ip_network("0.0.0.0/0" if r.destination == "default" else r.destination, strict=False)
            if ipaddress.IPv4Address(dst) in net:
                return r
        return None

    def _table(self, result: CResult, pkt: dict[str, int], table: str, chain: str, where: Where) -> Verdict | None:
        assert self.nf is not None
        v = self.nf.run(pkt, table, chain, where, result.steps)
        if v.verdict is None:
            result.unknown.append(v.unknown)
            return None
        if v.verdict != "ACCEPT":
            self._drop(result, f"{table} {chain}: {v.verdict}")
            return None
        return v

    def _apply(self, result: CResult, pkt: dict[str, int], nat: lx.Nat | None, iface: str | None) -> bool:
        if nat is None:
            return True
        if nat.kind in ("DNAT", "REDIRECT"):
            text, _, port_text = (nat.address or "").partition(":")
            ports = nat.ports or port_text or None
            if nat.kind == "DNAT" and text:
                pkt["ip_dst"] = int(ipaddress.IPv4Address(text.split("-")[0]))
            elif nat.kind == "REDIRECT":
                primary = self._primary(iface)
                if primary is None:
                    result.unknown.append("REDIRECT on an interface without an address")
                    return False
                pkt["ip_dst"] = primary
            if ports:
                pkt["tp_dst"] = int(ports.split("-")[0])
            pkt["ct_state"] |= CT_STATE_BITS["dnat"]
        else:
            if nat.kind == "SNAT":
                pkt["ip_src"] = int(ipaddress.IPv4Address((nat.address or "").split(":")[0].split("-")[0]))
            else:
                primary = self._primary(iface)
                if primary is None:
                    result.unknown.append("MASQUERADE on an interface without an address")
                    return False
                pkt["ip_src"] = primary
            pkt["ct_state"] |= CT_STATE_BITS["snat"]
        result.steps.append(CStep(None, None, f"{nat.kind}"))
        return True

    def _primary(self, iface: str | None) -> int | None:
        for a in self.ns.addresses:
            if a.interface == iface and ":" not in a.address:
                return int(ipaddress.IPv4Address(a.address))
        return None

    def _emit(self, result: CResult, pkt: dict[str, int], iface: str, *, keep_dst: bool = False) -> CResult:
        number = self.numbers.get(iface)
        if number is None:
            return self._drop(result, f"no interface {iface}")
        pkt.update({"vlan_tci": 0, "ct_state": 0, "ct_zone": 0, "ct_mark": 0, "pkt_mark": 0})
        if iface in self.macs:
            pkt["eth_src"] = self.macs[iface]
        result.steps.append(CStep(None, None, f"out of {iface}"))
        result.emissions.append(CEmission(number, pkt, tuple(result.steps)))
        return result

    def _local(self, result: CResult, pkt: dict[str, int], note: str) -> CResult:
        result.steps.append(CStep(None, None, note))
        result.emissions.append(CEmission(0, dict(pkt), tuple(result.steps)))
        return result

    def _drop(self, result: CResult, note: str) -> CResult:
        step = CStep(None, None, note)
        result.steps.append(step)
        result.ends.append(step)
        return result


def _plen(destination: str) -> int:
    return 0 if destination == "default" else ipaddress.ip_network(destination, strict=False).prefixlen


# ---------------------------------------------------------------- hybrid firewall


class ConcreteFirewall:
    """A qbr bridge and the host's iptables, for one frame (port 1 the tap, 2 the qvb)."""

    def __init__(self, bridge: str, tap: str, qvb: str, nf: ConcreteNetfilter | None, *, enforce: bool = True) -> None:
        self.bridge, self.tap, self.qvb, self.nf, self.enforce = bridge, tap, qvb, nf, enforce

    def run(self, packet: dict[str, int]) -> CResult:
        result = CResult()
        pkt = dict(packet)
        in_port = pkt["in_port"]
        out_port = 2 if in_port == 1 else 1
        names = {1: self.tap, 2: self.qvb}
        if not self.enforce or pkt["vlan_tci"] or pkt["eth_type"] != ETH_TYPE_IP:
            result.emissions.append(CEmission(out_port, pkt, ()))
            return result
        if self.nf is None:
            result.unknown.append("root iptables unknown")
            return result
        where = Where(self.bridge, self.bridge, names.get(in_port), names.get(out_port), True)
        tracked = True
        for table, chain in (
            ("raw", "PREROUTING"),
            ("mangle", "PREROUTING"),
            ("nat", "PREROUTING"),
            ("mangle", "FORWARD"),
            ("filter", "FORWARD"),
            ("mangle", "POSTROUTING"),
            ("nat", "POSTROUTING"),
        ):
            if table == "nat" and not tracked:
                continue
            v = self.nf.run(pkt, table, chain, where, result.steps)
            if v.verdict is None:
                result.unknown.append(v.unknown)
                return result
            if v.verdict != "ACCEPT":
                step = CStep(None, None, f"{table} {chain}: {v.verdict}")
                result.steps.append(step)
                result.ends.append(step)
                return result
            if v.nat is not None:
                result.unknown.append("NAT on a bridged frame")
                return result
            if table == "raw":
                tracked = not v.notrack
                pkt["ct_state"], pkt["ct_zone"] = (NEW if tracked else 0), v.zone or 0
        pkt.update({"ct_state": 0, "ct_zone": 0, "ct_mark": 0, "pkt_mark": 0})
        result.emissions.append(CEmission(out_port, pkt, tuple(result.steps)))
        return result


def rule_text(table: str, rule: lx.Rule) -> str:
    """A rule as a step shows it: its table, its ``-A`` line and where it came from."""
    try:
        line = format_rule(rule.chain, rule)
    except ValueError:
        line = rule.provenance.text or f"-A {rule.chain} (unprintable rule)"
    return f"{table}: {line}  [{rule.provenance}]"
