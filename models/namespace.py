"""A Linux network namespace as a device: qrouter- and qdhcp- namespaces, any other router.

A frame arriving on an interface goes through the kernel's IPv4 path:
raw PREROUTING, connection tracking, mangle and nat PREROUTING (DNAT,
REDIRECT), the routing decision on the translated destination, then either
mangle/filter INPUT (delivered to the namespace's own stack: port 0) or
mangle/filter FORWARD and mangle/nat POSTROUTING (SNAT, MASQUERADE) and out of
the chosen interface with the next hop's MAC.  A packet the namespace itself
sends (``originate``) goes through OUTPUT and POSTROUTING instead.

Queries are about the first packet of a connection: the conntrack state is
NEW (untracked after ``CT --notrack``); NAT happens then and is recorded in
the ct_state DNAT/SNAT bits.  Frames not addressed to the interface's MAC
(unicast), VLAN-tagged frames and non-IP frames other than ARP are not
routed.  IPv6 is routed only where the namespace has a global IPv6 address,
and then the verdict is undecided (ip -6 route is not in a snapshot).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from models.netfilter import Hook, Netfilter, Outcome
from models.routing import RouteTable
from verifier import linux as lx
from verifier import symbolic as sy
from verifier.device import Branch, Emission, Step
from verifier.header import CT_STATE_BITS, ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_IPV6, parse_mac
from verifier.packet import Context, PacketState

LOCAL = 0
NEW = CT_STATE_BITS["trk"] | CT_STATE_BITS["new"]
DNAT_BIT = CT_STATE_BITS["dnat"]
SNAT_BIT = CT_STATE_BITS["snat"]

Neighbor = Callable[[str, str], "int | None"]


@dataclass(frozen=True)
class _Flow:
    """A packet on its way through the namespace, with what it did so far."""

    pkt: PacketState
    steps: tuple[Step, ...]


class NamespaceDevice:
    """One namespace: interfaces (port numbers), routes, iptables."""

    def __init__(
        self,
        host: str,
        ns: lx.Namespace,
        *,
        ipsets: dict[str, tuple[str, ...]] | None = None,
        neighbor: Callable[[str, str], int | None] | None = None,
    ) -> None:
        self.host = host
        self.name = ns.name
        self.ns = ns
        links = [link for link in ns.links if link.name != "lo" and link.kind != "loopback"]
        self.ports: dict[int, str] = {}
        for i, link in enumerate(sorted(links, key=lambda x: x.name), start=1):
            self.ports[i] = link.name
        self.numbers = {name: n for n, name in self.ports.items()}
        self.macs = {link.name: parse_mac(link.mac) for link in links if link.mac}
        self.table = RouteTable(ns.routes or (), ns.addresses)
        self.ipsets = dict(ipsets or {})
        self.nf = Netfilter(host, ns.name, ns.netfilter, ipsets) if ns.netfilter is not None else None
        self.neighbor = neighbor or (lambda iface, ip: None)
        self.global_v6 = any(
            ipaddress.ip_address(a.address).version == 6 and not ipaddress.ip_address(a.address).is_link_local
            for a in ns.addresses
        )

    def port_name(self, number: int) -> str:
        return "(local stack)" if number == LOCAL else self.ports.get(number, str(number))

    def _step(self, note: str) -> Step:
        return Step(self.host, self.name, None, "note", note=note)

    # ------------------------------------------------------------ entry

    def transfer(self, ctx: Context, pkt: PacketState) -> list[Branch]:
        """A frame arriving on an interface (``in_port``)."""
        if self.ns.routes is None or self.nf is None:
            missing = "ip-route.txt" if self.ns.routes is None else "iptables-save.txt"
            why = f"{self.host}/{self.name}: no {missing}, so its routing and filtering are unknown"
            return [Branch(pkt, (), (), (), (why,))]
        in_port = pkt.fields["in_port"]
        assert isinstance(in_port, int)
        iface = self.ports.get(in_port)
        if iface is None:
            return [self._drop(_Flow(pkt, ()), f"no interface number {in_port}")]
        out: list[Branch] = []
        for flow, kind in self._classify(ctx, _Flow(pkt, ()), iface):
            if kind == "drop":
                out.append(self._drop(flow, flow.steps[-1].note))
            elif kind == "arp":
                out.append(self._deliver(flow, "ARP to the namespace's own stack"))
            elif kind == "ipv6":
                why = f"{self.host}/{self.name}: IPv6 routing is not modelled (the namespace has global IPv6 addresses)"
                out.append(Branch(flow.pkt, (), flow.steps, (), (why,)))
            else:
                out.extend(self._ipv4(ctx, flow, iface))
        return out

    def _classify(self, ctx: Context, flow: _Flow, iface: str) -> list[tuple[_Flow, str]]:
        pkt = flow.pkt
        out: list[tuple[_Flow, str]] = []
        tagged = ctx.assume(pkt, sy.not_(sy.test(pkt.fields["vlan_tci"], 0, 0xFFFF)))
        if tagged is not None:
            out.append((_Flow(tagged, (*flow.steps, self._step(f"802.1Q frame on {iface}: dropped"))), "drop"))
        untagged = ctx.assume(pkt, sy.test(pkt.fields["vlan_tci"], 0, 0xFFFF))
        if untagged is None:
            return out
        mac = self.macs.get(iface)
        dst = untagged.fields["eth_dst"]
        mine = sy.test(dst, 0x010000000000, 0x010000000000)
        if mac is not None:
            mine = sy.or_(mine, sy.test(dst, mac, (1 << 48) - 1))
        other = ctx.assume(untagged, sy.not_(mine))
        if other is not None:
            out.append((_Flow(other, (*flow.steps, self._step(f"frame not addressed to {iface}: dropped"))), "drop"))
        ours = ctx.assume(untagged, mine)
        if ours is None:
            return out
        eth = ours.fields["eth_type"]
        for value, kind in ((ETH_TYPE_IP, "ipv4"), (ETH_TYPE_ARP, "arp"), (ETH_TYPE_IPV6, "ipv6")):
            hit = ctx.assume(ours, sy.test(eth, value, 0xFFFF))
            if hit is not None:
                if kind == "ipv6" and not self.global_v6:
                    note = f"IPv6 on {iface}: not routed (the namespace has only link-local IPv6)"
                    out.append((_Flow(hit, (*flow.steps, self._step(note))), "drop"))
                else:
                    out.append((_Flow(hit, flow.steps), kind))
        rest = ctx.assume(
            ours, sy.and_(*(sy.not_(sy.test(eth, v, 0xFFFF)) for v in (ETH_TYPE_IP, ETH_TYPE_ARP, ETH_TYPE_IPV6)))
        )
        if rest is not None:
            out.append((_Flow(rest, (*flow.steps, self._step("neither IPv4, IPv6 nor ARP: not routed"))), "drop"))
        return out

    # ------------------------------------------------------------ IPv4

    def _ipv4(self, ctx: Context, flow: _Flow, iface: str) -> list[Branch]:
        assert self.nf is not None
        out: list[Branch] = []
        pre = Hook(in_iface=iface)
        for raw in self._chain(ctx, flow, "raw", "PREROUTING", pre, out):
            tracked = not raw[1].notrack
            state = NEW if tracked else 0
            f = _Flow(raw[0].pkt.with_fields({"ct_state": state, "ct_zone": raw[1].zone or 0}), raw[0].steps)
            for mangled in self._chain(ctx, f, "mangle", "PREROUTING", pre, out):
                natted = [mangled[0]] if not tracked else self._nat(ctx, mangled, "PREROUTING", pre, iface, out)
                for g in natted:
                    out.extend(self._route(ctx, g, iface))
        return out

    def _chain(
        self, ctx: Context, flow: _Flow | tuple[_Flow, Outcome], table: str, chain: str, hook: Hook, sink: list[Branch]
    ) -> list[tuple[_Flow, Outcome]]:
        """Run one chain; accepted flows come back, drops and unknowns go to ``sink``."""
        assert self.nf is not None
        f = flow[0] if isinstance(flow, tuple) else flow
        accepted = []
        for o in self.nf.run(ctx, f.pkt, table, chain, hook):
            g = _Flow(o.pkt, (*f.steps, *o.steps))
            if o.unknown:
                sink.append(Branch(g.pkt, (), g.steps, (), o.unknown))
            elif o.verdict == "ACCEPT":
                accepted.append((g, o))
            else:
                sink.append(self._drop(g, f"{table} {chain}: {o.verdict}"))
        return accepted

    def _nat(
        self, ctx: Context, flow: tuple[_Flow, Outcome], chain: str, hook: Hook, iface: str | None, sink: list[Branch]
    ) -> list[_Flow]:
        out = []
        for g, o in self._chain(ctx, flow, "nat", chain, hook, sink):
            if o.nat is None:
                out.append(g)
                continue
            applied = self._apply_nat(g, o.nat, iface)
            if applied is None:
                why = f"{o.nat_rule.provenance if o.nat_rule else self.name}: NAT {o.nat.kind} {o.nat.address or ''} not modelled"
                sink.append(Branch(g.pkt, (), g.steps, (), (why,)))
            else:
                out.append(applied)
        return out

    def _apply_nat(self, flow: _Flow, nat: lx.Nat, iface: str | None) -> _Flow | None:
        fields: dict[str, sy.Value] = {}
        ct = flow.pkt.fields["ct_state"]
        if nat.kind in ("DNAT", "REDIRECT"):
            ports = nat.ports
            if nat.kind == "DNAT":
                text, _, port_text = (nat.address or "").partition(":")
                ports = ports or port_text or None
                address = _single(text or None)
                if address is None and text:
                    return None
                if address is not None:
                    fields["ip_dst"] = address
            else:
                primary = self._primary(iface)
                if primary is None:
                    return None
                fields["ip_dst"] = primary
            port = _single_port(ports)
            if ports is not None and port is None:
                return None
            if port is not None:
                fields["tp_dst"] = port
            fields["ct_state"] = sy.set_bits(ct, DNAT_BIT, DNAT_BIT, 8)
        else:
            if nat.kind == "SNAT":
                address = _single(nat.address)
                if address is None:
                    return None
                fields["ip_src"] = address
            else:
                primary = self._primary(iface)
                if primary is None:
                    return None
                fields["ip_src"] = primary
            if nat.ports is not None:
                return None
            fields["ct_state"] = sy.set_bits(ct, SNAT_BIT, SNAT_BIT, 8)
        note = f"{nat.kind} -> " + ", ".join(
            f"{k}={v:#x}" if isinstance(v, int) else k for k, v in fields.items() if k != "ct_state"
        )
        return _Flow(flow.pkt.with_fields(fields), (*flow.steps, self._step(note)))

    def _primary(self, iface: str | None) -> int | None:
        for a in self.ns.addresses:
            if a.interface == iface and ipaddress.ip_address(a.address).version == 4:
                return int(ipaddress.IPv4Address(a.address))
        return None

    def _route(self, ctx: Context, flow: _Flow, iface: str) -> list[Branch]:
        out: list[Branch] = []
        pkt = flow.pkt
        src, dst = pkt.fields["ip_src"], pkt.fields["ip_dst"]
        martian_src = sy.or_(
            sy.test(src, 0xE0000000, 0xF0000000),
            sy.test(src, 0xFFFFFFFF, 0xFFFFFFFF),
            sy.test(src, 0x7F000000, 0xFF000000),
        )
        # Source validation (fib_validate_source, accept_local 0) also refuses the namespace's own addresses.
        for cond, why in (
            (martian_src, "martian source (multicast, broadcast or loopback)"),
            (self.table.is_local(src), "martian source (one of the namespace's own addresses)"),
        ):
            kept = self._drop_if(ctx, pkt, flow, cond, why, out)
            if kept is None:
                return out
            pkt = kept
        broadcast = self.table.is_broadcast_or_multicast(dst)
        everyone = ctx.assume(pkt, broadcast)
        if everyone is not None:
            f = _Flow(everyone, (*flow.steps, self._step("routing: broadcast or multicast, for the namespace itself")))
            out.extend(self._input(ctx, f, iface))
        pkt = ctx.assume(pkt, sy.not_(broadcast))  # type: ignore[assignment]
        if pkt is None:
            return out
        martian = sy.or_(sy.test(src, 0, 0xFF000000), sy.test(dst, 0, 0xFF000000), sy.test(dst, 0x7F000000, 0xFF000000))
        kept = self._drop_if(ctx, pkt, flow, martian, "martian address (0.0.0.0/8 or loopback)", out)
        if kept is None:
            return out
        pkt = kept
        flow = _Flow(pkt, flow.steps)
        local = self.table.is_local(dst)
        here = ctx.assume(flow.pkt, local)
        if here is not None:
            f = _Flow(here, (*flow.steps, self._step("routing: a local address")))
            out.extend(self._input(ctx, f, iface))
        away = ctx.assume(flow.pkt, sy.not_(local))
        if away is None:
            return out
        mac = self.macs.get(iface)
        # The kernel forwards only frames sent to the interface's own MAC (ip_forward drops any other pkt_type).
        to_me = sy.test(away.fields["eth_dst"], mac, (1 << 48) - 1) if mac is not None else False
        stray = ctx.assume(away, sy.not_(to_me))
        if stray is not None:
            out.append(
                self._drop(
                    _Flow(stray, flow.steps),
                    f"not for a local address, in a frame not sent to {iface}'s MAC: not forwarded",
                )
            )
        away = ctx.assume(away, to_me)
        if away is None:
            return out
        for cond, hops in self.table.lookup(away.fields["ip_dst"]):
            routed = ctx.assume(away, cond)
            if routed is None:
                continue
            if hops is None:
                out.append(self._drop(_Flow(routed, flow.steps), "no route to the destination"))
                continue
            for hop in hops:
                out.extend(self._forward(ctx, _Flow(routed, flow.steps), iface, hop))
        return out

    def _drop_if(
        self, ctx: Context, pkt: PacketState, flow: _Flow, cond: sy.Cond, why: str, out: list[Branch]
    ) -> PacketState | None:
        """Drop (into ``out``) the packets meeting ``cond``; the packet under its negation, or None if none is left."""
        bad = ctx.assume(pkt, cond)
        if bad is not None:
            out.append(self._drop(_Flow(bad, flow.steps), f"{why}: dropped"))
        return ctx.assume(pkt, sy.not_(cond))

    def _input(self, ctx: Context, flow: _Flow, iface: str) -> list[Branch]:
        """mangle and filter INPUT, then the namespace's own stack."""
        out: list[Branch] = []
        hook = Hook(in_iface=iface)
        for m in self._chain(ctx, flow, "mangle", "INPUT", hook, out):
            for g in self._chain(ctx, m, "filter", "INPUT", hook, out):
                out.append(self._deliver(g[0], "delivered to the namespace's own stack"))
        return out

    def _forward(self, ctx: Context, flow: _Flow, iface: str, hop: object) -> list[Branch]:
        from models.routing import Hop

        assert isinstance(hop, Hop)
        note = (
            f"routing: {hop.route.destination} " + (f"via {hop.gateway} " if hop.gateway else "") + f"dev {hop.device}"
        )
        if hop.kind != "unicast" or hop.device is None:
            return [self._drop(_Flow(flow.pkt, (*flow.steps, self._step(note))), f"{hop.kind} route")]
        out: list[Branch] = []
        ttl = flow.pkt.fields["ip_ttl"]
        expired = ctx.assume(flow.pkt, sy.test(ttl, 0, 0xFE))
        if expired is not None:
            out.append(self._drop(_Flow(expired, flow.steps), "TTL exceeded"))
        alive = ctx.assume(flow.pkt, sy.not_(sy.test(ttl, 0, 0xFE)))
        if alive is None:
            return out
        f = _Flow(alive.with_fields({"ip_ttl": sy.add(ttl, -1, 8)}), (*flow.steps, self._step(note)))
        fwd = Hook(in_iface=iface, out_iface=hop.device)
        post = Hook(out_iface=hop.device)
        trk = CT_STATE_BITS["trk"]
        tracked = sy.test(f.pkt.fields["ct_state"], trk, trk) is True
        for m in self._chain(ctx, f, "mangle", "FORWARD", fwd, out):
            for g in self._chain(ctx, m, "filter", "FORWARD", fwd, out):
                for p in self._chain(ctx, g, "mangle", "POSTROUTING", post, out):
                    natted = self._nat(ctx, p, "POSTROUTING", post, hop.device, out) if tracked else [p[0]]
                    for n in natted:
                        out.append(self._emit(ctx, n, hop.device, hop.gateway))
        return out

    # ------------------------------------------------------------ locally generated

    def originate(self, ctx: Context, pkt: PacketState, iface: str) -> list[Branch]:
        """A packet the namespace itself sends out of ``iface`` (a DHCP reply, say): OUTPUT and POSTROUTING."""
        if self.nf is None:
            why = f"{self.host}/{self.name}: no iptables-save.txt, so its filtering is unknown"
            return [Branch(pkt, (), (), (), (why,))]
        out: list[Branch] = []
        f = _Flow(
            pkt.with_fields({"ct_state": NEW, "in_port": LOCAL}), (self._step(f"sent by the namespace on {iface}"),)
        )
        hook = Hook(out_iface=iface)
        for raw in self._chain(ctx, f, "raw", "OUTPUT", hook, out):
            for m in self._chain(ctx, raw, "mangle", "OUTPUT", hook, out):
                for n in self._nat(ctx, m, "OUTPUT", hook, iface, out):
                    for g in self._chain(ctx, n, "filter", "OUTPUT", hook, out):
                        for p in self._chain(ctx, g, "mangle", "POSTROUTING", hook, out):
                            for q in self._nat(ctx, p, "POSTROUTING", hook, iface, out):
                                out.append(self._emit(ctx, q, iface, None, keep_dst_mac=True))
        return out

    # ------------------------------------------------------------ ends

    def _emit(
        self, ctx: Context, flow: _Flow, iface: str, gateway: str | None, *, keep_dst_mac: bool = False
    ) -> Branch:
        number = self.numbers.get(iface)
        if number is None:
            return self._drop(flow, f"route out of {iface}, which the namespace does not have")
        fields: dict[str, sy.Value] = {"vlan_tci": 0, "ct_state": 0, "ct_zone": 0, "ct_mark": 0, "pkt_mark": 0}
        mac = self.macs.get(iface)
        if mac is not None:
            fields["eth_src"] = mac
        choices: tuple[tuple[str, sy.Value], ...] = ()
        if not keep_dst_mac:
            dst = flow.pkt.fields["ip_dst"]
            target = (
                gateway if gateway is not None else (str(ipaddress.IPv4Address(dst)) if isinstance(dst, int) else None)
            )
            known = self.neighbor(iface, target) if target is not None else None
            if known is not None:
                fields["eth_dst"] = known
            else:
                unknown = ctx.fresh("neighbor_mac", 48)
                resolved: sy.Value = unknown
                table = getattr(self.neighbor, "on", None)
                if target is None and table is not None and ctx.precise:
                    # A symbolic destination: the MAC ARP gives for whichever known neighbour it is.
                    for ip, neighbor_mac in sorted(table(iface).items()):
                        resolved = sy.ite(sy.test(dst, ip, 0xFFFFFFFF), neighbor_mac, resolved, 48)
                fields["eth_dst"] = resolved
                choices = (("neighbor_mac", unknown),)
        pkt = flow.pkt.with_fields(fields)
        out_step = Step(self.host, self.name, None, "note", note=f"out of {iface}", choices=choices)
        steps = (*flow.steps, out_step)
        return Branch(pkt, (Emission(number, pkt, steps),), steps, (), ())

    def _deliver(self, flow: _Flow, note: str) -> Branch:
        steps = (*flow.steps, self._step(note))
        return Branch(flow.pkt, (Emission(LOCAL, flow.pkt, steps),), steps, (), ())

    def _drop(self, flow: _Flow, note: str) -> Branch:
        step = self._step(note)
        return Branch(flow.pkt, (), (*flow.steps, step), (step,), ())


def _single(address: str | None) -> int | None:
    if address is None:
        return None
    text = address.split(":")[0]
    if not text:
        return None
    if "-" in text:
        low, high = text.split("-", 1)
        if low != high:
            return None
        text = low
    return int(ipaddress.IPv4Address(text))


def _single_port(ports: str | None) -> int | None:
    if ports is None:
        return None
    if "-" in ports:
        low, high = ports.split("-", 1)
        return int(low) if low == high else None
    return int(ports)
