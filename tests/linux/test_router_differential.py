"""The concrete namespace twin against a real Linux router: the rendered qrouter of router-tenant-a.

``models.linux_concrete.ConcreteNamespace`` (through ``models.walk.Twins``,
as the reachability properties use it) is held to the kernel: the qrouter
namespace the intent renderer builds for ``router-tenant-a`` of the
``seed-gre`` example (its qr-/qg- links with their MACs and MTUs, addresses,
routes and the L3 agent's iptables, loaded as rendered with ``apply_ir``) is
built in a real namespace; every interface gets a veth whose peer sits alone
in a silent "neighbour" namespace (no address, so it answers nothing), where
frames are injected and captured.

The router's neighbour table holds, as permanent entries, exactly what the
twin's neighbour function (``models.linux_wiring.NeutronNeighbors``: the
Neutron ports of the interface's network) resolves; other next hops (the
external gateway 203.0.113.1, unknown addresses) are left to ARP, which the
silent neighbours never answer.  So a twin emission with ``eth_dst`` equal to
the twin's ``unknown_mac`` (0) must be matched by the kernel sending an ARP
request for the next hop out of that interface, and nothing else.

Compared for each packet: the set of interfaces a frame leaves by (none when
dropped or delivered locally), and, for each, every header field (MACs, IPs,
ports, TTL).  Each Hypothesis example starts from an empty conntrack table
(the twin answers for the first packet of a connection).  A few explicit
stateful cases follow: floating IP DNAT in and SNAT out, SNAT to the gateway
address, the replies, the metadata REDIRECT.

Harness choices (not the router's configuration):

* ``raw OUTPUT -j DROP`` is appended after the rendered rules: the router's
  own answers to what it receives (TCP RST, ICMP errors and echo replies,
  redirects, time exceeded) are not what ``ConcreteNamespace.run`` models
  (it reports local delivery on port 0, or a drop); forwarded packets never
  traverse OUTPUT, so the forwarding path is unchanged.
* Non-permanent neighbour entries are flushed before each packet, so that an
  unresolved next hop is asked for again (an INCOMPLETE entry would queue the
  packet without a new ARP request).
"""

from __future__ import annotations

import functools
import ipaddress
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.build import build_network
from models.linux_wiring import NeutronNeighbors
from models.openflow_concrete import CResult
from models.walk import Twins
from support.netns_lab import Lab, Point, Received
from support.packets import (
    ETH_TYPE_ARP,
    ETH_TYPE_IP,
    IPPROTO_ICMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_ACK,
    TCP_SYN,
    build_frame,
    ip,
    ipv4_packet,
    mac,
)
from verifier import linux as lx
from verifier.deployment import load_example
from verifier.header import FIELD_NAMES, describe, format_mac, normalize
from verifier.topology import Location

pytestmark = pytest.mark.oracle

EXAMPLE, ROUTER_NAME, HOST = "seed-gre", "router-tenant-a", "network"
UNKNOWN_MAC = 0
"""What ``ConcreteNamespace`` (``unknown_mac``, as ``Twins`` builds it) puts in ``eth_dst`` for an unresolved next hop."""

KNOWN_DIVERGENCES: dict[str, str] = {
    "snat_random_fully": "The L3 agent's SNAT rules carry --random-fully: the kernel picks a random source "
    "port (LINUX_BEHAVIOURS['random_fully']) where the twin keeps the original one.  Only tp_src of an "
    "emission whose steps include SNAT is left out of the comparison; everything else is compared.",
    "not_a_first_packet": "The twin treats every packet as the first of a connection (ct_state NEW).  For a "
    "packet that cannot start one (ICMP echo reply or an ICMP error quoting nothing tracked) conntrack "
    "says INVALID and the nat table is never consulted, so the kernel neither DNATs (a FIP, the metadata "
    "REDIRECT) nor SNATs it (LINUX_BEHAVIOURS['icmp_states']).  Filtered when such an ICMP packet meets a "
    "NAT step in the twin; without one it is compared.",
}
"""Named, explained twin/kernel differences; a case is filtered only when it falls under one of these."""

KNOWN_DIVERGENCES["broadcast_source_hairpin"] = (
    "A packet whose source routes as a broadcast (10.0.22.255) and which is to leave by the interface it came "
    "in on is dropped by the kernel's full source validation (send_redirects 1 forces it); the twin routes it.  "
    "The model keeps it on purpose: it over-approximates (more paths, never fewer), and it needs the "
    "namespace's sysctls, which no snapshot file holds."
)

SKIPPED: Counter[str] = Counter()
"""How many generated packets each known divergence or known model bug filtered out in this session."""

CAPTURE_WAIT = 0.2
"""Seconds to wait for frames the twin does not predict (forwarding within one host takes ~1 ms)."""

SILENCE = "*raw\n-A OUTPUT -j DROP\nCOMMIT\n"
"""Appended (``--noflush``) after the rendered rules: the router does not answer what it receives."""

UPSTREAM_MAC = "fa:16:3e:ee:00:01"
"""The external gateway's MAC, for the explicit stateful tests only (the twin does not know it)."""


# ---------------------------------------------------------------- the rendered router and its twin


@dataclass(frozen=True)
class Rendered:
    twins: Twins
    loc: Location
    ns: lx.Namespace
    ports: Mapping[int, str]
    macs: Mapping[str, str]
    mtus: Mapping[str, int]
    neighbors: Mapping[str, Mapping[int, int]]
    local: frozenset[int]
    broadcasts: frozenset[int]

    def peer(self, iface: str) -> Point:
        """The neighbour namespace's end of ``iface``'s veth."""
        number = {v: k for k, v in self.ports.items()}[iface]
        return (f"n{number}", "eth0")

    def number(self, iface: str) -> int:
        return {v: k for k, v in self.ports.items()}[iface]

    def iface(self, prefix: str) -> str:
        (name,) = [n for n in self.ports.values() if n.startswith(prefix)]
        return name

    def next_hop(self, iface: str, dst: int) -> int:
        """The next hop of ``dst`` out of ``iface`` by longest prefix match over the IR routes."""
        best: tuple[int, int] | None = None
        for r in self.ns.routes or ():
            if r.table != "main" or r.device != iface or r.kind != "unicast":
                continue
            net = ipaddress.ip_network("0.0.0.0/0" if r.destination == "default" else r.destination, strict=False)
            if ipaddress.IPv4Address(dst) in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, ip(r.gateway) if r.gateway else dst)
        assert best is not None, f"no route to {ipaddress.IPv4Address(dst)} out of {iface}"
        return best[1]

    def run(self, packet: Mapping[str, int], iface: str) -> CResult:
        result = self.twins.run(self.loc, {**normalize(packet), "in_port": self.number(iface)})
        assert result is not None, f"no twin for {self.loc}"
        return result


@functools.cache
def rendered() -> Rendered:
    deployment = load_example(EXAMPLE)
    assert deployment.neutron is not None
    (router,) = [r for r in deployment.neutron.routers if r.name == ROUTER_NAME]
    (host,) = [h for h in deployment.dataplane.hosts if h.name == HOST]
    (ns,) = [n for n in host.namespaces if n.name == f"qrouter-{router.id}"]
    net = build_network(deployment)
    loc = Location(HOST, ns.name)
    twins = Twins(net)
    ports = twins.names(loc)
    ports.pop(0, None)
    links = {x.name: x for x in ns.links}
    neighbors = NeutronNeighbors(deployment.neutron)
    v4 = [ipaddress.ip_interface(f"{a.address}/{a.prefixlen}") for a in ns.addresses if ":" not in a.address]
    local = frozenset(int(a.ip) for a in v4)
    broadcasts = frozenset(int(a.network.broadcast_address) for a in v4 if a.network.prefixlen < 31)
    return Rendered(
        twins=twins,
        loc=loc,
        ns=ns,
        ports=ports,
        macs={name: str(links[name].mac) for name in ports.values()},
        mtus={name: links[name].mtu or 1500 for name in ports.values()},
        neighbors={name: dict(neighbors.on(name)) for name in ports.values()},
        local=local,
        broadcasts=broadcasts,
    )


def build_router(lab: Lab, r: Rendered) -> None:
    """The rendered qrouter in namespace 'qrouter', one silent neighbour namespace per interface."""
    lab.add_namespace("qrouter", router=True)
    for number, name in sorted(r.ports.items()):
        peer = r.peer(name)
        lab.add_namespace(peer[0])
        lab.veth(("qrouter", name), peer, mac_a=r.macs[name], mac_b=f"fa:16:3e:ff:00:{number:02x}", mtu=r.mtus[name])
    lab.apply_ir("qrouter", r.ns)
    for iface, table in r.neighbors.items():
        for address, hw in sorted(table.items()):
            if address not in r.local:
                lab.neighbor("qrouter", str(ipaddress.IPv4Address(address)), format_mac(hw), iface)
    lab.iptables_restore("qrouter", SILENCE, noflush=True)


# ---------------------------------------------------------------- sending and comparing


@dataclass(frozen=True)
class Case:
    iface: str
    packet: dict[str, int]
    tcp_flags: int = TCP_SYN

    def summary(self) -> str:
        return f"into {self.iface}: {describe(self.packet)} tcp_flags={self.tcp_flags:#x}"


def exchange(lab: Lab, r: Rendered, case: Case, *, expect: Sequence[Point] = ()) -> list[Received]:
    """Send ``case`` into the router from its interface's neighbour; return IPv4/ARP frames leaving any interface."""
    points = [r.peer(name) for name in r.ports.values()]
    frame = build_frame(case.packet, tcp_flags=case.tcp_flags)

    def keep(x: Received) -> bool:
        return x.frame is not None and x.frame.packet["eth_type"] in (ETH_TYPE_IP, ETH_TYPE_ARP)

    def everywhere(kept: Sequence[Received]) -> bool:
        return bool(expect) and all(any(x.point == p for x in kept) for p in expect)

    with lab.capture(points) as capture:
        lab.transmit(*r.peer(case.iface), frame)
        return capture.collect(CAPTURE_WAIT, keep=keep, until=everywhere, settle=0.03)


def wire_fields(packet: Mapping[str, int], ignore: Sequence[str] = ()) -> dict[str, int]:
    """The fields a frame on the wire carries (metadata and ``ignore`` zeroed)."""
    pkt = normalize(packet)
    for name in ("in_port", "ct_state", "ct_zone", "ct_mark", "pkt_mark", *ignore):
        pkt[name] = 0
    return pkt


@dataclass(frozen=True)
class Expected:
    """What the kernel must put on one interface: an IPv4 frame, or an ARP request for ``arp_for``."""

    point: Point
    packet: dict[str, int]
    ignore: tuple[str, ...] = ()
    arp_for: int | None = None


def twin_expectations(r: Rendered, case: Case, result: CResult) -> tuple[list[Expected], bool]:
    """The frames the twin says leave the router, and whether it delivered the packet locally."""
    local = False
    out: list[Expected] = []
    for em in result.emissions:
        if em.port == 0:
            local = True
            continue
        iface = r.ports[em.port]
        notes = [getattr(s, "note", "") for s in em.steps]
        ignore = ("tp_src",) if "SNAT" in notes and em.packet["ip_proto"] in (IPPROTO_TCP, IPPROTO_UDP) else ()
        if em.packet["eth_dst"] == UNKNOWN_MAC:
            out.append(Expected(r.peer(iface), dict(em.packet), ignore, r.next_hop(iface, em.packet["ip_dst"])))
        else:
            out.append(Expected(r.peer(iface), dict(em.packet), ignore))
    return out, local


def known_divergence(r: Rendered, case: Case, result: CResult) -> str | None:
    """The KNOWN_DIVERGENCES entry a generated case falls under, if any."""
    pkt = case.packet
    forwarded = any(em.port != 0 for em in result.emissions)
    out = {r.ports[em.port] for em in result.emissions if em.port != 0}
    if forwarded and pkt["ip_src"] in r.broadcasts and case.iface in out:
        return "broadcast_source_hairpin"
    nat = any(getattr(s, "note", "") in ("DNAT", "REDIRECT", "SNAT", "MASQUERADE") for s in result.steps) or any(
        getattr(s, "note", "") in ("DNAT", "REDIRECT", "SNAT", "MASQUERADE")
        for em in result.emissions
        for s in em.steps
    )
    if pkt["ip_proto"] == IPPROTO_ICMP and pkt["tp_src"] not in (8, 13, 15, 17) and nat:
        return "not_a_first_packet"
    return None


def _listing(received: Sequence[Received]) -> str:
    return "\n    ".join(x.summary() for x in received) or "(nothing)"


def disagreement(r: Rendered, case: Case, result: CResult, received: Sequence[Received]) -> str | None:
    """Why the kernel's frames differ from the twin's prediction (None when they agree)."""
    expected, _local = twin_expectations(r, case, result)
    remaining = list(received)
    problems: list[str] = []
    for want in expected:
        here = [x for x in remaining if x.point == want.point]
        if want.arp_for is not None:
            arps = [x for x in here if x.packet["eth_type"] == ETH_TYPE_ARP and x.packet["ip_proto"] == 1]
            ok = [x for x in arps if x.packet["ip_dst"] == want.arp_for]
            if not ok:
                problems.append(
                    f"twin: out of {want.point[0]} towards an unresolved next hop "
                    f"{ipaddress.IPv4Address(want.arp_for)} ({describe(want.packet)}); kernel sent no ARP request for it"
                )
            for x in ok:
                remaining.remove(x)
            continue
        ips = [x for x in here if x.packet["eth_type"] == ETH_TYPE_IP]
        if len(ips) != 1:
            problems.append(f"twin: one frame out of {want.point[0]}: {describe(want.packet)}; kernel: {len(ips)}")
            continue
        got = wire_fields(ips[0].packet, want.ignore)
        exp = wire_fields(want.packet, want.ignore)
        diff = sorted(k for k in FIELD_NAMES if got[k] != exp[k])
        if diff:
            problems.append(
                f"at {want.point[0]}: fields {diff} differ\n    twin   {describe(exp)}\n    kernel {describe(got)}"
            )
        remaining.remove(ips[0])
    if remaining:
        problems.append(f"kernel frames the twin does not predict:\n    {_listing(remaining)}")
    if not problems:
        return None
    steps = "\n    ".join(getattr(s, "note", "") for s in result.steps)
    return (
        f"{case.summary()}\n  twin emissions: {[(e.port, describe(e.packet)) for e in result.emissions]}"
        f"\n  twin steps:\n    {steps}\n  kernel:\n    {_listing(received)}\n  " + "\n  ".join(problems)
    )


def compare_case(lab: Lab, r: Rendered, case: Case) -> str | None:
    """Fresh conntrack and neighbour state, one packet, the verdict of the comparison (None: agree)."""
    lab.flush_conntrack("qrouter")
    lab.ip("qrouter", "neigh", "flush", "all")
    result = r.run(case.packet, case.iface)
    assert not result.unknown, f"the twin does not model this packet: {result.unknown}\n  {case.summary()}"
    expected, _ = twin_expectations(r, case, result)
    received = exchange(lab, r, case, expect=[e.point for e in expected])
    return disagreement(r, case, result, received)


# ---------------------------------------------------------------- generated packets

ADDRESSES = (
    "10.0.22.202",  # VM with the floating IP
    "10.0.22.203",  # VM without one
    "10.0.22.201",  # the DHCP port
    "10.0.22.77",  # nobody (unresolved neighbour)
    "10.0.22.1",  # the router's qr address
    "10.0.22.255",  # subnet broadcast
    "10.0.33.10",  # VM of the other subnet
    "10.0.33.1",
    "203.0.113.11",  # gateway address
    "203.0.113.101",  # floating IP
    "203.0.113.102",  # the other router's floating IP
    "203.0.113.12",  # the other router's gateway
    "203.0.113.1",  # the upstream gateway (unresolved)
    "198.51.100.7",  # the internet
    "169.254.169.254",  # metadata
    "255.255.255.255",
)


@st.composite
def cases(draw: st.DrawFn, r: Rendered) -> Case:
    iface = draw(st.sampled_from(sorted(r.ports.values())), label="iface")
    proto = draw(st.sampled_from((IPPROTO_TCP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP)), label="proto")
    src = draw(st.sampled_from(ADDRESSES), label="ip_src")
    dst = draw(st.sampled_from(ADDRESSES), label="ip_dst")
    if proto == IPPROTO_ICMP:
        sport, dport = draw(st.sampled_from(((8, 0), (8, 0), (0, 0), (3, 3))), label="icmp type/code")
    else:
        sport = draw(st.sampled_from((40000, 1024, 68, 67, 53)), label="sport")
        dport = draw(st.sampled_from((80, 22, 443, 53, 9697, 67, 68)), label="dport")
    ttl = draw(st.sampled_from((64, 64, 64, 2, 1)), label="ttl")
    eth_dst = draw(st.sampled_from((r.macs[iface],) * 4 + ("ff:ff:ff:ff:ff:ff", "fa:16:3e:dd:dd:dd")), label="eth_dst")
    flags = draw(st.sampled_from((TCP_SYN, TCP_SYN, TCP_ACK)), label="tcp_flags") if proto == IPPROTO_TCP else TCP_SYN
    number = r.number(iface)
    packet = ipv4_packet(
        eth_src=f"fa:16:3e:ff:00:{number:02x}",
        eth_dst=eth_dst,
        ip_src=src,
        ip_dst=dst,
        proto=proto,
        sport=sport,
        dport=dport,
        ttl=ttl,
    )
    return Case(iface, packet, flags)


def test_router_twin_agrees_with_the_kernel_on_generated_packets(lab: Lab) -> None:
    """Where a packet leaves the rendered router, and how it is rewritten: twin vs kernel."""
    r = rendered()
    build_router(lab, r)
    outcomes: Counter[str] = Counter()

    @settings(max_examples=45, deadline=None, database=None)
    @given(case=cases(r))
    def check(case: Case) -> None:
        result = r.run(case.packet, case.iface)
        divergence = known_divergence(r, case, result)
        if divergence is not None:
            SKIPPED[divergence] += 1
            return
        problem = compare_case(lab, r, case)
        assert problem is None, f"twin and kernel disagree\n{problem}"
        expected, local = twin_expectations(r, case, result)
        outcomes["forwarded" if expected else "local" if local else "dropped"] += 1

    check()
    print(f"router differential: {dict(outcomes)}; filtered known divergences: {dict(SKIPPED)}")
    assert sum(outcomes.values()) > 0


# ---------------------------------------------------------------- explicit cases


def tcp(iface_mac: str, src: str, dst: str, sport: int, dport: int, *, eth_src: str) -> dict[str, int]:
    return ipv4_packet(
        eth_src=eth_src, eth_dst=iface_mac, ip_src=src, ip_dst=dst, proto=IPPROTO_TCP, sport=sport, dport=dport
    )


def only_ip(received: Sequence[Received], point: Point) -> Received:
    here = [x for x in received if x.point == point and x.packet["eth_type"] == ETH_TYPE_IP]
    assert len(here) == 1, f"expected one IPv4 frame at {point}:\n    {_listing(received)}"
    return here[0]


def test_router_nat_and_replies(lab: Lab) -> None:
    """Floating IP DNAT in, FIP SNAT out, SNAT to the gateway address, and what the replies become.

    The first packet of each connection is compared with the twin field by
    field; the replies are checked against the kernel's documented behaviour
    (the twin only answers for first packets: a reply to a gateway-SNATed
    connection is, for it, a new packet to the router's own address).
    """
    r = rendered()
    build_router(lab, r)
    qg, qr = r.iface("qg-"), r.iface("qr-2d9c")
    fip, fixed, gw = "203.0.113.101", "10.0.22.202", "203.0.113.11"
    vm_mac = format_mac(r.neighbors[qr][ip(fixed)])
    other_mac = format_mac(r.neighbors[qr][ip("10.0.22.203")])
    lab.neighbor("qrouter", "203.0.113.1", UPSTREAM_MAC, qg)  # so that replies leave; the twin does not know it

    def first(case: Case) -> Received:
        lab.flush_conntrack("qrouter")
        result = r.run(case.packet, case.iface)
        expected, _ = twin_expectations(r, case, result)
        assert len(expected) == 1, f"twin: {result.emissions} {[getattr(s, 'note', '') for s in result.steps]}"
        (want,) = expected
        got = only_ip(exchange(lab, r, case, expect=[want.point]), want.point)
        ignore = want.ignore + (("eth_dst",) if want.arp_for is not None else ())
        if want.arp_for is not None:
            assert got.packet["eth_dst"] == mac(UPSTREAM_MAC)
        assert wire_fields(got.packet, ignore) == wire_fields(want.packet, ignore), (
            f"twin   {describe(wire_fields(want.packet, ignore))}\nkernel {describe(wire_fields(got.packet, ignore))}"
        )
        return got

    # Inbound to the floating IP: DNAT to the fixed IP, source kept, TTL - 1, MACs rewritten.
    inbound = Case(qg, tcp(r.macs[qg], "198.51.100.7", fip, 40000, 22, eth_src=UPSTREAM_MAC))
    got = first(inbound)
    assert (got.packet["ip_dst"], got.packet["eth_dst"], got.packet["ip_ttl"]) == (ip(fixed), mac(vm_mac), 63)
    (entry,) = lab.conntrack("qrouter")
    assert entry.dnat and entry.reply["src"] == fixed, entry.line
    reply = Case(qr, tcp(r.macs[qr], fixed, "198.51.100.7", 22, 40000, eth_src=vm_mac), TCP_SYN | TCP_ACK)
    back = only_ip(exchange(lab, r, reply, expect=[r.peer(qg)]), r.peer(qg))
    assert (back.packet["ip_src"], back.packet["tp_src"], back.packet["eth_dst"]) == (ip(fip), 22, mac(UPSTREAM_MAC))

    # Outbound from the FIP's fixed IP: SNAT to the floating IP (random port).
    got = first(Case(qr, tcp(r.macs[qr], fixed, "198.51.100.7", 41000, 443, eth_src=vm_mac)))
    assert got.packet["ip_src"] == ip(fip)

    # Outbound from another VM: SNAT to the gateway address; the reply is un-SNATed back to the VM.
    got = first(Case(qr, tcp(r.macs[qr], "10.0.22.203", "198.51.100.7", 42000, 80, eth_src=other_mac)))
    assert got.packet["ip_src"] == ip(gw)
    port = got.packet["tp_src"]
    reply = Case(qg, tcp(r.macs[qg], "198.51.100.7", gw, 80, port, eth_src=UPSTREAM_MAC), TCP_SYN | TCP_ACK)
    back = only_ip(exchange(lab, r, reply, expect=[r.peer(qr)]), r.peer(qr))
    assert (back.packet["ip_dst"], back.packet["tp_dst"], back.packet["eth_dst"]) == (
        ip("10.0.22.203"),
        42000,
        mac(other_mac),
    )
    # The twin, asked about that reply as a packet of its own, delivers it to the router (first-packet view).
    alone = r.run(reply.packet, reply.iface)
    assert [e.port for e in alone.emissions] == [0], alone.emissions


def test_router_metadata_redirect(lab: Lab) -> None:
    """169.254.169.254:80 from a qr- interface: REDIRECTed to the router's own qr address, port 9697.

    The twin delivers it to port 0 with ip_dst/tp_dst rewritten; the kernel
    lets nothing leave any interface, and its conntrack entry's reply tuple
    comes from exactly the address and port the twin rewrote to.
    """
    r = rendered()
    build_router(lab, r)
    qr = r.iface("qr-2d9c")
    case = Case(qr, tcp(r.macs[qr], "10.0.22.203", "169.254.169.254", 43000, 80, eth_src="fa:16:3e:7c:2e:91"))
    result = r.run(case.packet, case.iface)
    (em,) = result.emissions
    assert em.port == 0
    assert (em.packet["ip_dst"], em.packet["tp_dst"]) == (ip("10.0.22.1"), 9697)
    assert compare_case(lab, r, case) is None
    (entry,) = lab.conntrack("qrouter")
    assert (entry.reply["src"], entry.reply["sport"]) == ("10.0.22.1", "9697"), entry.line
    # Port 9697 asked directly is dropped (INPUT): the twin drops it too.
    direct = Case(qr, tcp(r.macs[qr], "10.0.22.203", "10.0.22.1", 43001, 9697, eth_src="fa:16:3e:7c:2e:91"))
    assert not r.run(direct.packet, direct.iface).emissions
    assert compare_case(lab, r, direct) is None


# ---------------------------------------------------------------- model bugs this test found (now fixed)


def test_router_does_not_forward_a_broadcast_frame(lab: Lab) -> None:
    """10.0.22.203 -> 10.0.33.10 TCP SYN in an Ethernet broadcast frame on qr-2d9c: the kernel forwards nothing."""
    r = rendered()
    build_router(lab, r)
    qr = r.iface("qr-2d9c")
    packet = tcp("ff:ff:ff:ff:ff:ff", "10.0.22.203", "10.0.33.10", 40000, 22, eth_src="fa:16:3e:7c:2e:91")
    assert not [em for em in r.run(packet, qr).emissions if em.port != 0]
    assert not r.run(packet, qr).emissions
    assert compare_case(lab, r, Case(qr, packet)) is None


def test_router_drops_a_packet_from_its_own_address(lab: Lab) -> None:
    """10.0.22.1 (qr-2d9c's own address) -> 10.0.33.10 UDP entering qr-2d9c: the kernel drops it as martian."""
    r = rendered()
    build_router(lab, r)
    qr = r.iface("qr-2d9c")
    packet = ipv4_packet(
        eth_src="fa:16:3e:7c:2e:91",
        eth_dst=r.macs[qr],
        ip_src="10.0.22.1",
        ip_dst="10.0.33.10",
        proto=IPPROTO_UDP,
        sport=40000,
        dport=53,
    )
    assert not r.run(packet, qr).emissions
    assert compare_case(lab, r, Case(qr, packet)) is None


# ---------------------------------------------------------------- the properties' counterexamples, replayed


def test_isolation_counterexamples_cross_the_real_router(lab: Lab) -> None:
    """The seed example's isolation counterexamples (tenant-a <-> tenant-c through router-tenant-a) are
    replayed in the kernel: each one's packet is walked to the router, sent into the real namespace on
    the same interface, and must leave where the counterexample says, with the same headers."""
    from models.walk import walk
    from properties.isolation import check_isolation

    r = rendered()
    build_router(lab, r)
    verdict = check_isolation(load_example(EXAMPLE))
    assert verdict.status == "violated"
    replayed = 0
    for example in verdict.counterexamples:
        at_router = [h for h in example.hops if h.device == r.loc.device]
        if not at_router:
            continue
        first = example.hops[0]
        w = walk(r.twins, Location(first.host, first.device), example.packet)
        iface = at_router[0].in_port
        to_router = mac(r.macs[iface])
        hops = [
            h
            for end in w.ends
            for h in end.hops
            if h.location == r.loc and h.in_port == iface and h.packet["eth_dst"] == to_router
        ]
        assert hops, f"the concrete walk of {example.title} does not reach the router the way it says"
        case = Case(iface, dict(hops[0].packet))
        assert r.run(case.packet, case.iface).emissions, example.title
        assert compare_case(lab, r, case) is None, example.title
        replayed += 1
    assert replayed == len(verdict.counterexamples) == 2
