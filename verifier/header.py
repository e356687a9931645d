"""The header table: the one list of packet and pipeline fields.

Everything that needs to know a field's width, its Open vSwitch spelling or how
to print it reads it from here: the Z3 packet, the concrete packet, the
Hypothesis strategies, the trace printer and the ``ofproto/trace`` replay
string.  Fields mirror Open vSwitch's ``struct flow``: like OVS, the ARP sender
and target protocol addresses live in ``ip_src``/``ip_dst``, the ARP opcode in
``ip_proto``, ICMP type and code in ``tp_src``/``tp_dst``, and the ARP hardware
addresses double as the IPv6 neighbour-discovery link-layer addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

ETH_TYPE_IP = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_RARP = 0x8035
ETH_TYPE_IPV6 = 0x86DD
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_SCTP = 132
IPPROTO_ICMPV6 = 58

VLAN_CFI = 0x1000
VLAN_VID_MASK = 0x0FFF
VLAN_PCP_SHIFT = 13

# OpenFlow 1.0 reserved port numbers as Open vSwitch prints them.
OFPP_IN_PORT = 0xFFF8
OFPP_TABLE = 0xFFF9
OFPP_NORMAL = 0xFFFA
OFPP_FLOOD = 0xFFFB
OFPP_ALL = 0xFFFC
OFPP_CONTROLLER = 0xFFFD
OFPP_LOCAL = 0xFFFE
OFPP_NONE = 0xFFFF

# ct_state bits (ovs-fields(7)).
CT_STATE_BITS: Mapping[str, int] = {
    "new": 0x01,
    "est": 0x02,
    "rel": 0x04,
    "rpl": 0x08,
    "inv": 0x10,
    "trk": 0x20,
    "snat": 0x40,
    "dnat": 0x80,
}

_IP_LIKE = frozenset({ETH_TYPE_IP, ETH_TYPE_ARP, ETH_TYPE_RARP})
_ARP_LIKE = frozenset({ETH_TYPE_ARP, ETH_TYPE_RARP})
_L3 = frozenset({ETH_TYPE_IP, ETH_TYPE_IPV6})
_L4 = frozenset({IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_ICMP, IPPROTO_ICMPV6})


@dataclass(frozen=True)
class Prerequisite:
    """When a field exists in a packet; otherwise Open vSwitch holds it as 0.

    ``eth_types`` lists the Ethernet types that carry the field; ``ip_protos``,
    if set, further requires one of these IP protocols (on IPv4 or IPv6);
    ``nd`` restricts to these ICMPv6 neighbour-discovery types (135
    solicitation, 136 advertisement); ``also_arp`` admits ARP/RARP as well.
    """

    eth_types: frozenset[int]
    ip_protos: frozenset[int] | None = None
    nd: tuple[int, ...] = ()
    also_arp: bool = False

    def holds(self, packet: Mapping[str, int]) -> bool:
        """Whether a concrete packet carries the field."""
        eth_type = packet["eth_type"]
        if self.also_arp and eth_type in _ARP_LIKE:
            return True
        if eth_type not in self.eth_types:
            return False
        if self.ip_protos is not None and packet["ip_proto"] not in self.ip_protos:
            return False
        if self.nd:
            return packet["ip_proto"] == IPPROTO_ICMPV6 and packet["tp_src"] in self.nd
        return True


@dataclass(frozen=True)
class Field:
    """One field: its width in bits, how Open vSwitch spells it, how to print it.

    ``kind`` is one of ``int``, ``hex``, ``mac``, ``ipv4``, ``ipv6`` or ``port``.
    ``wire`` is False for pipeline metadata (registers, tunnel metadata,
    conntrack state, input port), which a sender cannot choose.
    ``bookkeeping`` fields are the verifier's own notes about a path (never in
    a real packet, never printed in a trace, kept across every link).
    """

    name: str
    width: int
    kind: str
    ovs: str
    wire: bool = True
    prereq: Prerequisite | None = None
    bookkeeping: bool = False

    @property
    def max(self) -> int:
        return (1 << self.width) - 1

    def format(self, value: int) -> str:
        """Print a value as Open vSwitch would in a flow."""
        if self.kind == "mac":
            return format_mac(value)
        if self.kind == "ipv4":
            return str(ipaddress.IPv4Address(value))
        if self.kind == "ipv6":
            return str(ipaddress.IPv6Address(value))
        if self.kind == "hex":
            return hex(value)
        return str(value)


def format_mac(value: int) -> str:
    """Format a 48-bit integer as ``aa:bb:cc:dd:ee:ff``."""
    return ":".join(f"{(value >> shift) & 0xFF:02x}" for shift in range(40, -8, -8))


def parse_mac(text: str) -> int:
    """Parse ``aa:bb:cc:dd:ee:ff`` (any case, one or two hex digits per byte)."""
    parts = text.split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    value = 0
    for part in parts:
        byte = int(part, 16)
        if not 0 <= byte <= 0xFF or not 1 <= len(part) <= 2:
            raise ValueError(f"not a MAC address: {text!r}")
        value = (value << 8) | byte
    return value


_IPV4 = Prerequisite(_IP_LIKE)
_L3PROTO = Prerequisite(_L3 | _ARP_LIKE)
_TTL = Prerequisite(_L3)
_TP = Prerequisite(_L3, ip_protos=_L4)
# OVS keeps the ND source link-layer option (solicitations) in arp_sha and the
# target option (advertisements) in arp_tha.
_SHA = Prerequisite(frozenset({ETH_TYPE_IPV6}), nd=(135,), also_arp=True)
_THA = Prerequisite(frozenset({ETH_TYPE_IPV6}), nd=(136,), also_arp=True)
_IPV6 = Prerequisite(frozenset({ETH_TYPE_IPV6}))
_ND = Prerequisite(frozenset({ETH_TYPE_IPV6}), nd=(135, 136))

_FIELDS: tuple[Field, ...] = (
    Field("in_port", 16, "port", "in_port", wire=False),
    Field("eth_src", 48, "mac", "dl_src"),
    Field("eth_dst", 48, "mac", "dl_dst"),
    Field("vlan_tci", 16, "hex", "vlan_tci"),
    Field("eth_type", 16, "hex", "dl_type"),
    Field("ip_src", 32, "ipv4", "nw_src", prereq=_IPV4),
    Field("ip_dst", 32, "ipv4", "nw_dst", prereq=_IPV4),
    Field("ip_proto", 8, "int", "nw_proto", prereq=_L3PROTO),
    Field("ip_ttl", 8, "int", "nw_ttl", prereq=_TTL),
    Field("tp_src", 16, "int", "tp_src", prereq=_TP),
    Field("tp_dst", 16, "int", "tp_dst", prereq=_TP),
    Field("arp_sha", 48, "mac", "arp_sha", prereq=_SHA),
    Field("arp_tha", 48, "mac", "arp_tha", prereq=_THA),
    Field("ipv6_src", 128, "ipv6", "ipv6_src", prereq=_IPV6),
    Field("ipv6_dst", 128, "ipv6", "ipv6_dst", prereq=_IPV6),
    Field("nd_target", 128, "ipv6", "nd_target", prereq=_ND),
    Field("tun_id", 64, "hex", "tun_id", wire=False),
    Field("tun_src", 32, "ipv4", "tun_src", wire=False),
    Field("tun_dst", 32, "ipv4", "tun_dst", wire=False),
    Field("metadata", 64, "hex", "metadata", wire=False),
    *(Field(f"reg{i}", 32, "hex", f"reg{i}", wire=False) for i in range(16)),
    Field("ct_state", 8, "hex", "ct_state", wire=False),
    Field("ct_zone", 16, "int", "ct_zone", wire=False),
    Field("ct_mark", 32, "hex", "ct_mark", wire=False),
    Field("pkt_mark", 32, "hex", "pkt_mark", wire=False),
    Field("path_flags", 8, "hex", "path_flags", wire=False, bookkeeping=True),
)

# path_flags bits.
PATH_EXTERNAL = 0x01
"""The packet has been on an external (router:external) network: what it reaches now is public."""

FIELDS: Mapping[str, Field] = {f.name: f for f in _FIELDS}
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in _FIELDS)


def field(name: str) -> Field:
    """Look a field up by its canonical name."""
    return FIELDS[name]


def zero_packet() -> dict[str, int]:
    """A concrete packet with every field 0, as Open vSwitch starts a trace."""
    return {name: 0 for name in FIELD_NAMES}


def normalize(packet: Mapping[str, int]) -> dict[str, int]:
    """Zero the fields a packet does not carry, as Open vSwitch's flow extraction does.

    A non-IP frame has no IP addresses, a TCP segment no neighbour-discovery
    target, and so on.  Values are also cut to the field width.
    """
    out = {name: packet.get(name, 0) & FIELDS[name].max for name in FIELD_NAMES}
    for f in _FIELDS:
        if f.prereq is not None and not f.prereq.holds(out):
            out[f.name] = 0
    if out["vlan_tci"] and not out["vlan_tci"] & VLAN_CFI:
        out["vlan_tci"] = 0
    return out


def vlan_vid(tci: int) -> int | None:
    """The VLAN id of a vlan_tci value, or None for an untagged frame."""
    if not tci & VLAN_CFI:
        return None
    return tci & VLAN_VID_MASK


def trace_spelling(name: str, packet: Mapping[str, int]) -> str:
    """How ``ofproto/trace`` spells a field for this packet (tp_src is icmp_type on ICMP)."""
    if name in ("tp_src", "tp_dst"):
        proto = packet["ip_proto"]
        if proto == IPPROTO_ICMP:
            return "icmp_type" if name == "tp_src" else "icmp_code"
        if proto == IPPROTO_ICMPV6:
            return "icmpv6_type" if name == "tp_src" else "icmpv6_code"
        if proto == IPPROTO_UDP:
            return "udp_src" if name == "tp_src" else "udp_dst"
        if proto == IPPROTO_SCTP:
            return "sctp_src" if name == "tp_src" else "sctp_dst"
    if name in ("arp_sha", "arp_tha") and packet["eth_type"] == ETH_TYPE_IPV6:
        return "nd_sll" if name == "arp_sha" else "nd_tll"
    if packet["eth_type"] in _ARP_LIKE:
        arp = {"ip_src": "arp_spa", "ip_dst": "arp_tpa", "ip_proto": "arp_op"}
        if name in arp:
            return arp[name]
    return FIELDS[name].ovs


def describe(packet: Mapping[str, int], *, port_names: Mapping[int, str] | None = None) -> str:
    """A packet as an ``ofproto/trace`` flow string (fields it does not carry left out).

    ``in_port`` is printed by name when ``port_names`` knows it.  Metadata
    fields that are 0 are omitted, as are L3/L4 fields the packet lacks.
    """
    pkt = normalize(packet)
    parts: list[str] = []
    for f in _FIELDS:
        value = pkt[f.name]
        if f.bookkeeping:
            continue
        if f.name == "in_port":
            name = (port_names or {}).get(value)
            parts.append(f"in_port={_quote(name) if name else value}")
            continue
        if not f.wire and value == 0:
            continue
        if f.prereq is not None and not f.prereq.holds(pkt):
            continue
        if f.name == "ct_state":
            parts.append(f"ct_state={format_ct_state(value)}")
            continue
        parts.append(f"{trace_spelling(f.name, pkt)}={f.format(value)}")
    return ",".join(parts)


def _quote(name: str) -> str:
    return name if name.replace("-", "").replace("_", "").replace(".", "").isalnum() else f'"{name}"'


def format_ct_state(value: int) -> str:
    """ct_state as ``+trk+est`` style flags (``0`` when no bit is set)."""
    flags = [f"+{n}" for n, bit in CT_STATE_BITS.items() if value & bit]
    return "".join(flags) if flags else "0"
