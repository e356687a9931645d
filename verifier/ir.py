"""The dataplane IR: hosts, bridges, ports and typed OpenFlow flows.

Both input paths end here: parsing a real snapshot and rendering Neutron intent.
Every object is a frozen dataclass; every rule remembers where it came from
(``Provenance``), and provenance never takes part in equality, so
``parse(render(x)) == x`` compares meaning, not file positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import TYPE_CHECKING

from verifier.header import FIELDS, OFPP_LOCAL

if TYPE_CHECKING:
    from verifier.linux import Link, LinuxBridge, Namespace, Netfilter, Route


@dataclass(frozen=True)
class Provenance:
    """Where a rule or object came from: file and line, or a Neutron object id."""

    file: str
    line: int = 0
    text: str = ""
    neutron_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.neutron_id:
            where += f" (neutron {self.neutron_id})"
        return where


NO_PROVENANCE = Provenance("<unknown>")


@dataclass(frozen=True)
class FieldMatch:
    """``field & mask == value`` (value already masked)."""

    field: str
    value: int
    mask: int

    def __post_init__(self) -> None:
        width_max = FIELDS[self.field].max
        if self.mask & ~width_max or self.value & ~self.mask:
            raise ValueError(f"bad match {self.field}={self.value:#x}/{self.mask:#x}")

    @property
    def exact(self) -> bool:
        return self.mask == FIELDS[self.field].max

    def matches(self, value: int) -> bool:
        return value & self.mask == self.value


@dataclass(frozen=True)
class FieldSlice:
    """Bits ``start .. start+n_bits-1`` of a field (OVS ``FIELD[start..end]``)."""

    field: str
    start: int
    n_bits: int
    spelling: str = dc_field(default="", compare=False)

    @property
    def mask(self) -> int:
        return ((1 << self.n_bits) - 1) << self.start

    @staticmethod
    def whole(name: str) -> FieldSlice:
        return FieldSlice(name, 0, FIELDS[name].width)


# ---------------------------------------------------------------- actions


@dataclass(frozen=True)
class Output:
    """``output:<port>``; ``port`` is an OpenFlow port number (LOCAL included)."""

    port: int


@dataclass(frozen=True)
class OutputInPort:
    """``in_port`` / ``IN_PORT``: send back out of the input port."""


@dataclass(frozen=True)
class OutputField:
    """``output:NXM_NX_REG5[]``: the port number is read from a field."""

    src: FieldSlice


@dataclass(frozen=True)
class Normal:
    """``NORMAL``: the traditional L2 switch with OVSDB VLAN rules."""


@dataclass(frozen=True)
class Flood:
    """``FLOOD``: every port but the input port and NO_FLOOD ports."""


@dataclass(frozen=True)
class All:
    """``ALL``: every port but the input port."""


@dataclass(frozen=True)
class Controller:
    """``CONTROLLER``: a packet-in to the OpenFlow controller."""

    max_len: int = 65535


@dataclass(frozen=True)
class Resubmit:
    """``resubmit(port,table)``: look up ``table`` (None: the current one) as if from ``port``."""

    port: int | None
    table: int | None


@dataclass(frozen=True)
class SetField:
    """Write ``value`` into the bits of ``field`` selected by ``mask``.

    Covers set_field, load with a constant, set_tunnel, mod_dl_*, mod_nw_*,
    mod_tp_*.  ``only_eth_types``, when set, makes the write a no-op on frames
    of other Ethernet types (OpenFlow 1.0 ``mod_nw_src`` on an ARP frame).
    """

    field: str
    value: int
    mask: int
    only_eth_types: frozenset[int] | None = None
    spelling: str = dc_field(default="", compare=False)


@dataclass(frozen=True)
class Move:
    """``move:SRC[a..b]->DST[c..d]``: copy bits between fields."""

    src: FieldSlice
    dst: FieldSlice


@dataclass(frozen=True)
class PushVlan:
    """``push_vlan:<tpid>``: add an 802.1Q header (VID 0, PCP 0 on an untagged frame)."""

    tpid: int = 0x8100


@dataclass(frozen=True)
class PopVlan:
    """``strip_vlan`` / ``pop_vlan``."""


@dataclass(frozen=True)
class SetVlanVid:
    """``mod_vlan_vid:N``: set the VID, pushing a header first if the frame has none."""

    vid: int


@dataclass(frozen=True)
class SetVlanPcp:
    """``mod_vlan_pcp:N``: set the PCP, pushing a header first if the frame has none."""

    pcp: int


@dataclass(frozen=True)
class DecTtl:
    """``dec_ttl``: an IP TTL of 0 or 1 ends processing (packet-in with reason invalid TTL)."""


@dataclass(frozen=True)
class LearnSpec:
    """One ``learn(...)`` action: the flow it adds to ``table``.

    ``matches``: the learned flow matches ``dst`` against either a constant or
    the value ``src`` has in the learning packet.  ``loads`` and ``outputs``
    are the learned flow's actions, in order, taking values from the learning
    packet likewise.
    """

    table: int
    priority: int
    matches: tuple[tuple[FieldSlice, FieldSlice | int], ...]
    loads: tuple[tuple[FieldSlice, FieldSlice | int], ...]
    outputs: tuple[FieldSlice, ...]
    idle_timeout: int = 0
    hard_timeout: int = 0
    fin_idle_timeout: int = 0
    fin_hard_timeout: int = 0
    cookie: int = 0
    order: tuple[str, ...] = dc_field(default=(), compare=False)


@dataclass(frozen=True)
class Learn:
    spec: LearnSpec


@dataclass(frozen=True)
class Ct:
    """``ct(...)``: send through conntrack; with ``table`` the packet recirculates there.

    ``zone`` is a constant or a field slice.  ``nat`` is the raw nat argument
    (None without nat); ``exec_actions`` are the actions run on the connection.
    """

    commit: bool = False
    zone: int | FieldSlice = 0
    table: int | None = None
    nat: str | None = None
    force: bool = False
    exec_actions: tuple[Action, ...] = ()


@dataclass(frozen=True)
class CtClear:
    """``ct_clear``: forget the conntrack state of the packet."""


@dataclass(frozen=True)
class Clone:
    """``clone(...)``: run the actions on a copy, then go on with the original."""

    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Exit:
    """``exit``: stop executing actions altogether."""


@dataclass(frozen=True)
class NoOp:
    """Actions that never change where a packet goes or its modelled fields (note, set_queue...)."""

    text: str


@dataclass(frozen=True)
class Unsupported:
    """An action the models do not know; reaching it makes a verdict Unknown."""

    text: str


Action = (
    Output
    | OutputInPort
    | OutputField
    | Normal
    | Flood
    | All
    | Controller
    | Resubmit
    | SetField
    | Move
    | PushVlan
    | PopVlan
    | SetVlanVid
    | SetVlanPcp
    | DecTtl
    | Learn
    | Ct
    | CtClear
    | Clone
    | Exit
    | NoOp
    | Unsupported
)


# ---------------------------------------------------------------- flows


@dataclass(frozen=True)
class Flow:
    """One OpenFlow flow entry.

    ``match`` holds one FieldMatch per field, sorted by field name.
    ``unsupported_match`` keeps raw ``key=value`` text of match fields the
    models do not know; such a flow makes any verdict that reaches it Unknown.
    """

    table: int
    priority: int
    match: tuple[FieldMatch, ...]
    actions: tuple[Action, ...]
    cookie: int = 0
    idle_timeout: int = 0
    hard_timeout: int = 0
    unsupported_match: tuple[str, ...] = ()
    provenance: Provenance = dc_field(default=NO_PROVENANCE, compare=False)

    def match_value(self, name: str) -> FieldMatch | None:
        for fm in self.match:
            if fm.field == name:
                return fm
        return None

    @property
    def unsupported(self) -> tuple[str, ...]:
        """Every construct of this flow the models do not know, as text."""
        found = [f"match {m}" for m in self.unsupported_match]
        found += [f"action {a.text}" for a in iter_actions(self.actions) if isinstance(a, Unsupported)]
        return tuple(found)


def iter_actions(actions: tuple[Action, ...]) -> list[Action]:
    """All actions, including those nested in clone() and ct(exec(...))."""
    out: list[Action] = []
    for a in actions:
        out.append(a)
        if isinstance(a, Clone):
            out.extend(iter_actions(a.actions))
        elif isinstance(a, Ct):
            out.extend(iter_actions(a.exec_actions))
    return out


# ---------------------------------------------------------------- topology


@dataclass(frozen=True)
class Interface:
    """An OVSDB Interface: name, type (``""`` for a plain netdev) and options."""

    name: str
    type: str = ""
    options: tuple[tuple[str, str], ...] = ()

    def option(self, key: str) -> str | None:
        for k, v in self.options:
            if k == key:
                return v
        return None


@dataclass(frozen=True)
class Port:
    """An OVSDB Port with its VLAN configuration.

    ``vlan_mode`` is None when unknown: ``ovs-vsctl show`` does not print it,
    so a port with both ``tag`` and ``trunks`` is ambiguous (see models.normal).
    """

    name: str
    interfaces: tuple[Interface, ...]
    tag: int | None = None
    trunks: tuple[int, ...] = ()
    vlan_mode: str | None = None


@dataclass(frozen=True)
class OFPort:
    """An OpenFlow port as ``ovs-ofctl show`` prints it."""

    number: int
    name: str
    mac: str | None = None
    config: tuple[str, ...] = ()
    state: tuple[str, ...] = ()

    @property
    def no_flood(self) -> bool:
        return "NO_FLOOD" in self.config


@dataclass(frozen=True)
class Skipped:
    """A line the reader could not parse and skipped under ``--lenient``."""

    file: str
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: skipped ({self.reason}): {self.text!r}"


@dataclass(frozen=True)
class Bridge:
    """One OVS bridge: its OVSDB ports, OpenFlow port numbers and flow table."""

    name: str
    ports: tuple[Port, ...] = ()
    of_ports: tuple[OFPort, ...] = ()
    flows: tuple[Flow, ...] = ()
    fail_mode: str | None = None
    datapath_type: str | None = None
    skipped: tuple[Skipped, ...] = dc_field(default=(), compare=False)
    notes: tuple[str, ...] = dc_field(default=(), compare=False)

    def port_number(self, name: str) -> int | None:
        for p in self.of_ports:
            if p.name == name:
                return p.number
        return None

    def port_name(self, number: int) -> str | None:
        for p in self.of_ports:
            if p.number == number:
                return p.name
        return None

    def ovsdb_port(self, interface_name: str) -> Port | None:
        """The OVSDB port holding the interface of that name."""
        for p in self.ports:
            if any(i.name == interface_name for i in p.interfaces):
                return p
        return None

    def interface(self, name: str) -> Interface | None:
        for p in self.ports:
            for i in p.interfaces:
                if i.name == name:
                    return i
        return None


@dataclass(frozen=True)
class Address:
    """One address line of ``ip addr``: interface, address, prefix length."""

    interface: str
    address: str
    prefixlen: int


@dataclass(frozen=True)
class Host:
    """A node of the deployment: its OVS bridges and its Linux side.

    ``addresses``, ``links``, ``routes`` and ``netfilter`` belong to the root
    namespace (``root_namespace()`` views them as one); ``routes`` or
    ``netfilter`` None means the file was missing, not empty.  ``namespaces``
    are the qrouter-/qdhcp- namespaces, ``linux_bridges`` the qbr bridges
    (None without brctl-show.txt).
    """

    name: str
    bridges: tuple[Bridge, ...] = ()
    addresses: tuple[Address, ...] = ()
    ovs_version: str | None = None
    links: tuple[Link, ...] = ()
    routes: tuple[Route, ...] | None = None
    netfilter: Netfilter | None = None
    namespaces: tuple[Namespace, ...] = ()
    linux_bridges: tuple[LinuxBridge, ...] | None = None

    def bridge(self, name: str) -> Bridge | None:
        for b in self.bridges:
            if b.name == name:
                return b
        return None

    def namespace(self, name: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.name == name:
                return ns
        return None

    def root_namespace(self) -> Namespace:
        """The root namespace as a Namespace (name "")."""
        from verifier.linux import Namespace

        return Namespace("", self.links, self.addresses, self.routes, self.netfilter)


@dataclass(frozen=True)
class Dataplane:
    """Every host of a snapshot, in name order."""

    hosts: tuple[Host, ...]

    def host(self, name: str) -> Host | None:
        for h in self.hosts:
            if h.name == name:
                return h
        return None


LOCAL_PORT = OFPP_LOCAL
