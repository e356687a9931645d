"""The Linux side of the dataplane IR: namespaces, links, routes, Linux bridges and iptables.

Both input paths produce it: the snapshot reader (``ip addr``, ``ip route``,
``iptables-save`` and ``brctl show`` of the root namespace and of every
``netns/<namespace>/``) and the Neutron renderer (router and DHCP namespaces,
the hybrid firewall as the L3, DHCP and OVS agents program them).  iptables
rules are typed: each match and target is its own frozen dataclass, so the
models never dispatch on option strings.  As everywhere in the IR, provenance
(file and line, or the Neutron object id) never takes part in equality.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field

from verifier.ir import NO_PROVENANCE, Address, Provenance

# ---------------------------------------------------------------- links and routes


@dataclass(frozen=True)
class Link:
    """One interface as ``ip addr`` shows it.

    ``peer`` is the name after ``@`` (a veth's peer or a VLAN's parent; ``ifN``
    when the peer lives in another namespace), ``master`` the bridge it is
    enslaved to, ``kind`` the ``link/<kind>`` word (ether, loopback, gre...).
    """

    name: str
    index: int = 0
    flags: tuple[str, ...] = ()
    mtu: int | None = None
    state: str | None = None
    master: str | None = None
    peer: str | None = None
    kind: str | None = None
    mac: str | None = None

    @property
    def up(self) -> bool:
        return "UP" in self.flags


@dataclass(frozen=True)
class NextHop:
    """One path of a multipath (ECMP) route.

    ``onlink`` is the configured flag; ``dead`` and ``linkdown`` are the
    kernel's state flags (a dead next hop is not used).
    """

    gateway: str | None
    device: str | None
    weight: int = 1
    onlink: bool = False
    dead: bool = False
    linkdown: bool = False


@dataclass(frozen=True)
class Route:
    """One ``ip route`` line.

    ``destination`` is ``default`` or a network in CIDR form (a host route is
    ``/32``); ``kind`` is ``unicast``, ``local``, ``broadcast``, ``blackhole``,
    ``unreachable``, ``prohibit`` or ``throw`` (``anycast`` and ``multicast``
    appear only in ``table all`` listings); ``nexthops`` is set for ECMP
    routes instead of ``gateway``/``device``.  ``dead`` and ``linkdown`` are
    the kernel's state flags of a single-path route.
    """

    destination: str
    gateway: str | None = None
    device: str | None = None
    nexthops: tuple[NextHop, ...] = ()
    kind: str = "unicast"
    table: str = "main"
    metric: int | None = None
    scope: str | None = None
    source: str | None = None
    proto: str | None = None
    onlink: bool = False
    dead: bool = False
    linkdown: bool = False
    provenance: Provenance = dc_field(default=NO_PROVENANCE, compare=False)


# ---------------------------------------------------------------- iptables matches


@dataclass(frozen=True)
class MatchAddress:
    """``-s``/``-d``: the source or destination address is in ``network`` (CIDR)."""

    direction: str  # "src" or "dst"
    network: str
    negated: bool = False


@dataclass(frozen=True)
class MatchInterface:
    """``-i``/``-o``: the input or output interface; a trailing ``+`` matches any suffix."""

    direction: str  # "in" or "out"
    name: str
    negated: bool = False


@dataclass(frozen=True)
class MatchProtocol:
    """``-p``: the IP protocol number (``all`` is not a match, so never stored)."""

    protocol: int
    negated: bool = False


@dataclass(frozen=True)
class MatchPorts:
    """``--sport``/``--dport`` (tcp, udp, sctp) and ``-m multiport --sports/--dports/--ports``.

    ``ranges`` are inclusive; ``direction`` is ``src``, ``dst`` or ``any``
    (multiport ``--ports``: either port).  ``multiport`` only records the
    spelling (``-m multiport`` rather than ``-m tcp``) for the writer.
    """

    direction: str
    ranges: tuple[tuple[int, int], ...]
    negated: bool = False
    multiport: bool = dc_field(default=False, compare=False)


@dataclass(frozen=True)
class MatchIcmp:
    """``--icmp-type``/``--icmpv6-type``: type and optional code (``any`` is not stored)."""

    type: int
    code: int | None = None
    v6: bool = False
    negated: bool = False


@dataclass(frozen=True)
class MatchPhysdev:
    """``-m physdev``: bridge ports of br_netfilter-filtered frames.

    Each criterion is None when absent, else (value, negated).
    ``is_bridged``/``is_in``/``is_out`` hold (True, negated).
    """

    physdev_in: tuple[str, bool] | None = None
    physdev_out: tuple[str, bool] | None = None
    is_bridged: tuple[bool, bool] | None = None
    is_in: tuple[bool, bool] | None = None
    is_out: tuple[bool, bool] | None = None


@dataclass(frozen=True)
class MatchMac:
    """``-m mac --mac-source``."""

    mac: str
    negated: bool = False


@dataclass(frozen=True)
class MatchSet:
    """``-m set --match-set <name> src|dst[,...]``: membership of an ipset (taken from neutron.json)."""

    name: str
    flags: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class MatchState:
    """``-m state --state`` / ``-m conntrack --ctstate``: connection-tracking states.

    ``states`` are upper-case names: NEW, ESTABLISHED, RELATED, INVALID,
    UNTRACKED, SNAT, DNAT.  ``conntrack`` only records the spelling
    (``-m conntrack --ctstate`` rather than ``-m state --state``) for the writer.
    """

    states: frozenset[str]
    negated: bool = False
    conntrack: bool = dc_field(default=False, compare=False)


@dataclass(frozen=True)
class MatchMark:
    """``-m mark --mark v/m`` (packet mark) or ``-m connmark --mark v/m`` (``connection``)."""

    value: int
    mask: int
    connection: bool = False
    negated: bool = False


@dataclass(frozen=True)
class MatchComment:
    """``-m comment --comment``: no effect on the verdict."""

    text: str


@dataclass(frozen=True)
class MatchUnsupported:
    """A match the models do not know: reaching its rule makes a verdict unknown."""

    text: str


Match = (
    MatchAddress
    | MatchInterface
    | MatchProtocol
    | MatchPorts
    | MatchIcmp
    | MatchPhysdev
    | MatchMac
    | MatchSet
    | MatchState
    | MatchMark
    | MatchComment
    | MatchUnsupported
)


# ---------------------------------------------------------------- iptables targets


@dataclass(frozen=True)
class Verdict:
    """``ACCEPT``, ``DROP``, ``REJECT`` (with ``reject_with``) or ``RETURN``."""

    kind: str
    reject_with: str | None = None


@dataclass(frozen=True)
class Jump:
    """``-j <chain>`` (``goto``: ``-g <chain>``, which does not come back)."""

    chain: str
    goto: bool = False


@dataclass(frozen=True)
class Nat:
    """``DNAT``, ``SNAT``, ``MASQUERADE`` or ``REDIRECT``.

    ``address`` (``a.b.c.d`` or a range ``a-b``) and ``ports`` (``p`` or
    ``p-q``) as given; ``random``, ``random_fully`` and ``persistent`` flags.
    """

    kind: str
    address: str | None = None
    ports: str | None = None
    random_fully: bool = False
    persistent: bool = False
    random: bool = False


@dataclass(frozen=True)
class SetMark:
    """``MARK --set-xmark v/m`` (also ``--set-mark``, ``--and-mark``, ``--or-mark`` in xmark form):
    ``mark = (mark & ~mask) ^ value``."""

    value: int
    mask: int


@dataclass(frozen=True)
class ConnMark:
    """``CONNMARK``: ``save``/``restore`` with masks, or ``set`` (xmark form)."""

    mode: str
    value: int = 0
    mask: int = 0xFFFFFFFF
    nfmask: int = 0xFFFFFFFF
    ctmask: int = 0xFFFFFFFF


@dataclass(frozen=True)
class Conntrack:
    """``CT --zone N`` or ``CT --notrack`` (also the old ``NOTRACK`` target)."""

    zone: int | None = None
    notrack: bool = False


@dataclass(frozen=True)
class NoEffect:
    """Targets that never change where a packet goes: CHECKSUM, LOG, NFLOG, ..."""

    text: str


@dataclass(frozen=True)
class TargetUnsupported:
    """A target the models do not know: reaching it makes a verdict unknown."""

    text: str


Target = Verdict | Jump | Nat | SetMark | ConnMark | Conntrack | NoEffect | TargetUnsupported


# ---------------------------------------------------------------- tables


@dataclass(frozen=True)
class Rule:
    """``-A <chain> <matches> -j <target>`` (``target`` None: a rule that only counts)."""

    chain: str
    matches: tuple[Match, ...]
    target: Target | None
    provenance: Provenance = dc_field(default=NO_PROVENANCE, compare=False)

    @property
    def unsupported(self) -> tuple[str, ...]:
        out = [m.text for m in self.matches if isinstance(m, MatchUnsupported)]
        if isinstance(self.target, TargetUnsupported):
            out.append(self.target.text)
        return tuple(out)


@dataclass(frozen=True)
class Chain:
    """A chain with its policy (built-in chains) or None (user chains)."""

    name: str
    policy: str | None
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Table:
    """One iptables table: ``filter``, ``nat``, ``mangle``, ``raw`` or ``security``."""

    name: str
    chains: tuple[Chain, ...]

    def chain(self, name: str) -> Chain | None:
        for c in self.chains:
            if c.name == name:
                return c
        return None


@dataclass(frozen=True)
class Netfilter:
    """Every iptables table of one namespace (``family`` 4 for iptables, 6 for ip6tables)."""

    tables: tuple[Table, ...]
    family: int = 4

    def table(self, name: str) -> Table | None:
        for t in self.tables:
            if t.name == name:
                return t
        return None


# ---------------------------------------------------------------- namespaces and bridges


@dataclass(frozen=True)
class Namespace:
    """A network namespace (``name`` empty for the root namespace).

    ``routes`` None / ``netfilter`` None mean the file was not in the
    snapshot (unknown), which is not the same as empty.
    """

    name: str
    links: tuple[Link, ...] = ()
    addresses: tuple[Address, ...] = ()
    routes: tuple[Route, ...] | None = None
    netfilter: Netfilter | None = None

    def link(self, name: str) -> Link | None:
        for link in self.links:
            if link.name == name:
                return link
        return None


@dataclass(frozen=True)
class LinuxBridge:
    """A Linux bridge (``brctl show``): the hybrid firewall's ``qbr`` bridges."""

    name: str
    interfaces: tuple[str, ...]
    bridge_id: str | None = None
    stp: bool = False
