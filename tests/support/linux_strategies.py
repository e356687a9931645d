"""Hypothesis strategies for the Linux side of the IR: routes, iptables rulesets, Linux bridges, namespaces.

Everything generated is in the canonical form the snapshot readers produce
(``-s -d -i -o -p`` first in a rule, networks masked, ``-p all`` never
stored, namespaces in name order), so ``parse(format(x)) == x`` must hold.
"""

from __future__ import annotations

import ipaddress
import string

from hypothesis import strategies as st

from verifier.ir import Address
from verifier.linux import (
    Chain,
    ConnMark,
    Conntrack,
    Jump,
    Link,
    LinuxBridge,
    Match,
    MatchAddress,
    MatchComment,
    MatchIcmp,
    MatchInterface,
    MatchMac,
    MatchMark,
    MatchPhysdev,
    MatchPorts,
    MatchProtocol,
    MatchSet,
    MatchState,
    MatchUnsupported,
    Namespace,
    Nat,
    Netfilter,
    NextHop,
    NoEffect,
    Route,
    Rule,
    SetMark,
    Table,
    Target,
    TargetUnsupported,
    Verdict,
)
from verifier.snapshot.iptables_names import BUILTIN_CHAINS, CT_STATES

names = st.from_regex(r"[a-z][a-z0-9-]{0,13}", fullmatch=True)
ifnames = st.from_regex(r"[a-z][a-z0-9-]{0,13}\+?", fullmatch=True)
macs = st.from_regex(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", fullmatch=True)
u32s = st.integers(0, 0xFFFFFFFF)
ipv4 = st.ip_addresses(v=4).map(str)


@st.composite
def networks(draw: st.DrawFn, version: int = 4, min_prefix: int = 1) -> str:
    ip = draw(st.ip_addresses(v=version))
    prefix = draw(st.integers(min_prefix, ip.max_prefixlen))
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


# ---------------------------------------------------------------- routes


@st.composite
def nexthops(draw: st.DrawFn) -> NextHop:
    gateway = draw(st.none() | ipv4)
    device = draw(names) if gateway is None else draw(st.none() | names)
    return NextHop(
        gateway, device, draw(st.integers(1, 256)), draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    )


@st.composite
def routes(draw: st.DrawFn) -> Route:
    version = draw(st.sampled_from([4, 4, 4, 6]))
    destination = draw(st.just("default") | networks(version))
    kind = draw(st.sampled_from(["unicast", "unicast", "unicast", "local", "broadcast", "blackhole", "throw"]))
    multipath = kind == "unicast" and draw(st.booleans())
    gateway = device = None
    hops: tuple[NextHop, ...] = ()
    if multipath:
        hops = tuple(draw(st.lists(nexthops(), min_size=1, max_size=3)))
    else:
        gateway = draw(st.none() | ipv4 | st.ip_addresses(v=6).map(str))
        device = draw(names) if kind == "unicast" else draw(st.none() | names)
    source_version = 4 if destination == "default" else version
    return Route(
        destination=destination,
        gateway=gateway,
        device=device,
        nexthops=hops,
        kind=kind,
        table=draw(st.sampled_from(["main", "main", "local", "100"])),
        metric=draw(st.none() | u32s),
        scope=draw(st.none() | st.sampled_from(["link", "host", "global", "253"])),
        source=draw(st.none() | st.ip_addresses(v=source_version).map(str)),
        proto=draw(st.none() | st.sampled_from(["kernel", "static", "dhcp", "ra", "42"])),
        onlink=draw(st.booleans()),
        dead=draw(st.booleans()),
        linkdown=draw(st.booleans()),
    )


# ---------------------------------------------------------------- iptables

_comment_chars = "".join(ch for ch in string.printable if ch not in "\n\r\x0b\x0c")
_UNSUPPORTED_MATCHES = (
    "-m limit --limit 5/sec",
    "-m addrtype --dst-type LOCAL",
    "-m conntrack --ctstatus SEEN_REPLY",
    "-m tcp --tcp-flags FIN,SYN,RST,ACK SYN",
)


def _ranges(draw: st.DrawFn, size: int) -> tuple[tuple[int, int], ...]:
    out = []
    for _ in range(size):
        lo = draw(st.integers(0, 65535))
        out.append((lo, draw(st.integers(lo, 65535))))
    return tuple(out)


@st.composite
def module_matches(draw: st.DrawFn, protocol: MatchProtocol | None) -> Match:
    """One match of a ``-m`` module that fits the rule's protocol."""
    kinds = ["physdev", "mac", "set", "state", "mark", "comment", "unsupported"]
    plain = protocol is not None and not protocol.negated
    if plain and protocol is not None and protocol.protocol in (6, 17, 132):
        kinds += ["ports", "multiport"]
    if plain and protocol is not None and protocol.protocol in (1, 58):
        kinds.append("icmp")
    kind = draw(st.sampled_from(kinds))
    negated = draw(st.booleans())
    if kind == "ports":
        return MatchPorts(draw(st.sampled_from(["src", "dst"])), _ranges(draw, 1), negated)
    if kind == "multiport":
        size = draw(st.integers(1, 4))
        return MatchPorts(draw(st.sampled_from(["src", "dst", "any"])), _ranges(draw, size), negated, multiport=True)
    if kind == "icmp":
        assert protocol is not None
        return MatchIcmp(
            draw(st.integers(0, 255)), draw(st.none() | st.integers(0, 255)), protocol.protocol == 58, negated
        )
    if kind == "physdev":
        port = st.none() | st.tuples(ifnames, st.booleans())
        flag = st.none() | st.tuples(st.just(True), st.booleans())
        match = MatchPhysdev(draw(port), draw(port), draw(flag), draw(flag), draw(flag))
        return match if match != MatchPhysdev() else MatchPhysdev(is_bridged=(True, False))
    if kind == "mac":
        return MatchMac(draw(macs), negated)
    if kind == "set":
        flags = tuple(draw(st.lists(st.sampled_from(["src", "dst"]), min_size=1, max_size=3)))
        return MatchSet(draw(st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,30}", fullmatch=True)), flags, negated)
    if kind == "state":
        conntrack = draw(st.booleans())
        pool = CT_STATES if conntrack else CT_STATES[:5]
        states = frozenset(draw(st.lists(st.sampled_from(pool), min_size=1, unique=True)))
        return MatchState(states, negated, conntrack=conntrack)
    if kind == "mark":
        return MatchMark(draw(u32s), draw(u32s), draw(st.booleans()), negated)
    if kind == "comment":
        return MatchComment(draw(st.text(_comment_chars, max_size=40)))
    return MatchUnsupported(draw(st.sampled_from(_UNSUPPORTED_MATCHES)))


@st.composite
def nat_targets(draw: st.DrawFn) -> Nat:
    kind = draw(st.sampled_from(["DNAT", "SNAT", "MASQUERADE", "REDIRECT"]))
    lo = draw(st.integers(1, 65535))
    ports = draw(st.none() | st.just(str(lo)) | st.integers(lo, 65535).map(lambda hi: f"{lo}-{hi}"))
    if kind in ("DNAT", "SNAT"):
        address = draw(ipv4 | st.tuples(ipv4, ipv4).map("-".join))
        flags = [draw(st.booleans()) for _ in range(3)]
        return Nat(kind, address, ports, random_fully=flags[0], persistent=flags[1], random=flags[2])
    random_fully = kind == "MASQUERADE" and draw(st.booleans())
    return Nat(kind, None, ports, random_fully=random_fully, random=draw(st.booleans()))


@st.composite
def targets(draw: st.DrawFn, chains: list[str]) -> Target | None:
    kinds = ["none", "verdict", "reject", "nat", "mark", "connmark", "ct", "noeffect", "unsupported"]
    kind = draw(st.sampled_from(kinds + (["jump"] if chains else [])))
    if kind == "none":
        return None
    if kind == "verdict":
        return Verdict(draw(st.sampled_from(["ACCEPT", "DROP", "RETURN"])))
    if kind == "reject":
        return Verdict("REJECT", draw(st.sampled_from([None, "icmp-port-unreachable", "tcp-reset"])))
    if kind == "jump":
        return Jump(draw(st.sampled_from(chains)), draw(st.booleans()))
    if kind == "nat":
        return draw(nat_targets())
    if kind == "mark":
        return SetMark(draw(u32s), draw(u32s))
    if kind == "connmark":
        mode = draw(st.sampled_from(["save", "restore", "set"]))
        if mode == "set":
            return ConnMark("set", draw(u32s), draw(u32s))
        return ConnMark(mode, nfmask=draw(u32s), ctmask=draw(u32s))
    if kind == "ct":
        return draw(st.just(Conntrack(notrack=True)) | st.integers(0, 65535).map(lambda z: Conntrack(zone=z)))
    if kind == "noeffect":
        return NoEffect(draw(st.sampled_from(["CHECKSUM --checksum-fill", 'LOG --log-prefix "new-tcp: "', "TRACE"])))
    return TargetUnsupported(draw(st.sampled_from(["TCPMSS --clamp-mss-to-pmtu", "CT --helper ftp", "NFQUEUE"])))


@st.composite
def rules(draw: st.DrawFn, chain: str, chains: list[str]) -> Rule:
    matches: list[Match] = []
    for direction in ("src", "dst"):
        if draw(st.booleans()):
            matches.append(MatchAddress(direction, draw(networks()), draw(st.booleans())))
    for direction in ("in", "out"):
        if draw(st.booleans()):
            matches.append(MatchInterface(direction, draw(ifnames), draw(st.booleans())))
    number = draw(st.none() | st.sampled_from([1, 6, 17, 132, 47, 58, 99, 112]))
    protocol = None if number is None else MatchProtocol(number, draw(st.booleans()))
    if protocol is not None:
        matches.append(protocol)
    matches += draw(st.lists(module_matches(protocol), max_size=4))
    return Rule(chain, tuple(matches), draw(targets(chains)))


@st.composite
def tables(draw: st.DrawFn, name: str) -> Table:
    builtins = [c for c in BUILTIN_CHAINS[name] if draw(st.booleans())]
    users = draw(
        st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True), max_size=3, unique=True).map(
            lambda xs: [x for x in xs if x not in BUILTIN_CHAINS[name]]
        )
    )
    chains = []
    for chain in builtins + users:
        policy = draw(st.sampled_from(["ACCEPT", "DROP"])) if chain in builtins else None
        chain_rules = tuple(draw(st.lists(rules(chain, users), max_size=3)))
        chains.append(Chain(chain, policy, chain_rules))
    return Table(name, tuple(chains))


@st.composite
def netfilters(draw: st.DrawFn) -> Netfilter:
    table_names = draw(st.lists(st.sampled_from(sorted(BUILTIN_CHAINS)), max_size=3, unique=True))
    return Netfilter(tuple(draw(tables(name)) for name in table_names))


# ---------------------------------------------------------------- bridges, links, namespaces


@st.composite
def linux_bridges(draw: st.DrawFn) -> tuple[LinuxBridge, ...]:
    out = []
    for name in draw(st.lists(names, max_size=3, unique=True)):
        bridge_id = draw(st.none() | st.from_regex(r"[0-9a-f]{4}\.[0-9a-f]{12}", fullmatch=True))
        if bridge_id == "8000.000000000000":
            bridge_id = None
        interfaces = tuple(draw(st.lists(names, max_size=3, unique=True)))
        out.append(LinuxBridge(name, interfaces, bridge_id, draw(st.booleans())))
    return tuple(out)


@st.composite
def links_and_addresses(draw: st.DrawFn) -> tuple[tuple[Link, ...], tuple[Address, ...]]:
    """Links with real indices and the addresses on them, grouped in link order (as ``ip addr`` lists them)."""
    links, addresses = [], []
    for index, name in enumerate(draw(st.lists(names, max_size=3, unique=True)), start=1):
        kind = draw(st.sampled_from(["ether", "loopback", "none"]))
        mac = draw(macs) if kind != "none" else None
        flags = tuple(draw(st.lists(st.sampled_from(["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]), unique=True)))
        state = draw(st.sampled_from(["UP", "DOWN", "UNKNOWN"]))
        links.append(Link(name, index, flags, 1500, state, None, draw(st.none() | names), kind, mac))
        for _ in range(draw(st.integers(0, 2))):
            addresses.append(Address(name, draw(ipv4), draw(st.integers(0, 32))))
    return tuple(links), tuple(addresses)


@st.composite
def namespaces(draw: st.DrawFn) -> tuple[Namespace, ...]:
    out = []
    for name in sorted(draw(st.lists(st.from_regex(r"q(router|dhcp)-[0-9a-f]{4}", fullmatch=True), unique=True))):
        links, addresses = draw(links_and_addresses())
        out.append(
            Namespace(
                name,
                links,
                addresses,
                draw(st.none() | st.lists(routes(), max_size=3).map(tuple)),
                draw(st.none() | netfilters()),
            )
        )
    return tuple(out)
