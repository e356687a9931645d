"""Open vSwitch field names (every spelling OVS prints) mapped onto the header table.

Names are first folded with the OVS library's own alias table
(``ovs.flow.ofp_fields.field_aliases``: ``NXM_OF_ETH_SRC`` -> ``eth_src``), then
looked up here.  A *view* is the slice of one of our fields that an OVS name
denotes: ``dl_vlan`` is bits 0..11 of ``vlan_tci``, ``arp_spa`` is ``ip_src``
(OVS stores both in ``nw_src``), ``icmp_type`` is the low byte of ``tp_src``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ovs.flow.ofp_fields import field_aliases

from verifier.header import (
    ETH_TYPE_ARP,
    ETH_TYPE_IP,
    ETH_TYPE_IPV6,
    ETH_TYPE_RARP,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
)
from verifier.ir import FieldSlice


@dataclass(frozen=True)
class View:
    """An OVS field name as a slice of one header-table field."""

    field: str
    start: int
    n_bits: int

    def slice(self, start: int | None = None, end: int | None = None) -> FieldSlice:
        """The bits ``start..end`` of this view (the whole view when both are None)."""
        if start is None:
            return FieldSlice(self.field, self.start, self.n_bits)
        stop = start if end is None else end
        if not 0 <= start <= stop < self.n_bits:
            raise ValueError(f"bits {start}..{stop} outside a {self.n_bits}-bit field")
        return FieldSlice(self.field, self.start + start, stop - start + 1)


def _v(name: str, width: int, start: int = 0) -> View:
    return View(name, start, width)


VIEWS: dict[str, View] = {
    "in_port": _v("in_port", 16),
    "in_port_oxm": _v("in_port", 16),
    "eth_src": _v("eth_src", 48),
    "dl_src": _v("eth_src", 48),
    "eth_dst": _v("eth_dst", 48),
    "dl_dst": _v("eth_dst", 48),
    "eth_type": _v("eth_type", 16),
    "dl_type": _v("eth_type", 16),
    "vlan_tci": _v("vlan_tci", 16),
    "vlan_vid": _v("vlan_tci", 13),
    "dl_vlan": _v("vlan_tci", 12),
    "vlan_pcp": _v("vlan_tci", 3, 13),
    "dl_vlan_pcp": _v("vlan_tci", 3, 13),
    "ip_src": _v("ip_src", 32),
    "nw_src": _v("ip_src", 32),
    "arp_spa": _v("ip_src", 32),
    "ip_dst": _v("ip_dst", 32),
    "nw_dst": _v("ip_dst", 32),
    "arp_tpa": _v("ip_dst", 32),
    "nw_proto": _v("ip_proto", 8),
    "ip_proto": _v("ip_proto", 8),
    "arp_op": _v("ip_proto", 8),
    "nw_ttl": _v("ip_ttl", 8),
    "tp_src": _v("tp_src", 16),
    "tcp_src": _v("tp_src", 16),
    "udp_src": _v("tp_src", 16),
    "sctp_src": _v("tp_src", 16),
    "icmp_type": _v("tp_src", 8),
    "icmpv4_type": _v("tp_src", 8),
    "icmpv6_type": _v("tp_src", 8),
    "tp_dst": _v("tp_dst", 16),
    "tcp_dst": _v("tp_dst", 16),
    "udp_dst": _v("tp_dst", 16),
    "sctp_dst": _v("tp_dst", 16),
    "icmp_code": _v("tp_dst", 8),
    "icmpv4_code": _v("tp_dst", 8),
    "icmpv6_code": _v("tp_dst", 8),
    "arp_sha": _v("arp_sha", 48),
    "nd_sll": _v("arp_sha", 48),
    "arp_tha": _v("arp_tha", 48),
    "nd_tll": _v("arp_tha", 48),
    "ipv6_src": _v("ipv6_src", 128),
    "ipv6_dst": _v("ipv6_dst", 128),
    "nd_target": _v("nd_target", 128),
    "tun_id": _v("tun_id", 64),
    "tunnel_id": _v("tun_id", 64),
    "tun_src": _v("tun_src", 32),
    "tun_dst": _v("tun_dst", 32),
    "metadata": _v("metadata", 64),
    "ct_state": _v("ct_state", 8),
    "ct_zone": _v("ct_zone", 16),
    "ct_mark": _v("ct_mark", 32),
    "pkt_mark": _v("pkt_mark", 32),
    **{f"reg{i}": _v(f"reg{i}", 32) for i in range(16)},
}

# NXM spellings OVS prints in load/move/learn (``NXM_NX_REG0`` etc. are in the
# OVS alias table; these few are not).
_EXTRA_ALIASES = {f"NXM_NX_REG{i}": f"reg{i}" for i in range(16)} | {
    "NXM_OF_ICMP_TYPE": "icmp_type",
    "NXM_OF_ICMP_CODE": "icmp_code",
    "NXM_NX_ICMPV6_TYPE": "icmpv6_type",
    "NXM_NX_ICMPV6_CODE": "icmpv6_code",
    "NXM_NX_ND_TARGET": "nd_target",
    "NXM_NX_ND_SLL": "nd_sll",
    "NXM_NX_ND_TLL": "nd_tll",
}

# Match shorthands: Ethernet type and, for some, IP protocol.
SHORTHANDS: dict[str, tuple[int, int | None]] = {
    "ip": (ETH_TYPE_IP, None),
    "ipv6": (ETH_TYPE_IPV6, None),
    "icmp": (ETH_TYPE_IP, IPPROTO_ICMP),
    "icmp6": (ETH_TYPE_IPV6, IPPROTO_ICMPV6),
    "tcp": (ETH_TYPE_IP, IPPROTO_TCP),
    "tcp6": (ETH_TYPE_IPV6, IPPROTO_TCP),
    "udp": (ETH_TYPE_IP, IPPROTO_UDP),
    "udp6": (ETH_TYPE_IPV6, IPPROTO_UDP),
    "sctp": (ETH_TYPE_IP, IPPROTO_SCTP),
    "sctp6": (ETH_TYPE_IPV6, IPPROTO_SCTP),
    "arp": (ETH_TYPE_ARP, None),
    "rarp": (ETH_TYPE_RARP, None),
}


def canonical_name(name: str) -> str:
    """Fold an NXM/OXM spelling onto the OVS short name (``NXM_OF_ETH_SRC`` -> ``eth_src``)."""
    return _EXTRA_ALIASES.get(name) or field_aliases.get(name, name)


def view(name: str) -> View | None:
    """The header-table slice an OVS field name denotes, or None if not modelled."""
    return VIEWS.get(canonical_name(name))
