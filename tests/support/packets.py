"""Build and parse whole Ethernet frames from header-table packets, with the standard library only.

A *packet* here is what the models use: a dict of ``verifier.header`` fields
(``eth_src``, ``ip_dst``, ``tp_dst`` ... as integers).  ``build_frame`` turns
one into the bytes a NIC would carry, with every checksum right, and
``parse_frame`` turns received bytes back into such a dict (normalised as
Open vSwitch would extract it), plus the details the header table does not
hold (TCP flags and sequence numbers, the ICMP echo id, the IP id, checksum
validity, the payload, a DHCP message).  So a test can send a model's
concrete packet through real Linux and compare what comes out with the
model's prediction field by field, e.g. with ``verifier.header.describe``.

Supported: Ethernet II with an optional 802.1Q tag (``vlan_tci`` with the CFI
bit set, OVS style: the bit means "tag present", the wire's DEI bit is sent
as 0), ARP (OVS field mapping: ``ip_proto`` is the opcode, ``ip_src``/
``ip_dst`` the protocol addresses, ``arp_sha``/``arp_tha`` the hardware
addresses), IPv4 (no options; TTL from ``ip_ttl``, 64 when 0), IPv6 (no
extension headers; hop limit from ``ip_ttl``), TCP, UDP, ICMP and ICMPv6
(type/code in ``tp_src``/``tp_dst`` as in OVS; echo id/sequence from the
keyword arguments; neighbour solicitation/advertisement with ``nd_target`` and
the link-layer option from ``arp_sha``/``arp_tha``), and minimal DHCP
(BOOTP) payloads: ``dhcp_payload``/``parse_dhcp``, ``dhcp_discover``.

Not supported: IP options, fragments (parsed as a first fragment when the
offset is 0, else without L4 fields, as OVS does), QinQ beyond the outer tag
(the inner one is left in the payload and ``eth_type`` is 0x8100), SCTP
checksums (CRC32c; SCTP is parsed but built with a zero checksum).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from verifier.header import (
    ETH_TYPE_ARP,
    ETH_TYPE_IP,
    ETH_TYPE_IPV6,
    ETH_TYPE_RARP,
    FIELDS,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    VLAN_CFI,
    describe,
    format_mac,
    normalize,
    parse_mac,
)

__all__ = [
    "BROADCAST_MAC",
    "DHCP_ACK",
    "DHCP_DISCOVER",
    "DHCP_OFFER",
    "DHCP_REQUEST",
    "ETH_TYPE_VLAN",
    "ICMP_ECHO_REPLY",
    "ICMP_ECHO_REQUEST",
    "TCP_ACK",
    "TCP_FIN",
    "TCP_PSH",
    "TCP_RST",
    "TCP_SYN",
    "Dhcp",
    "Frame",
    "FrameError",
    "arp_packet",
    "build_frame",
    "checksum",
    "dhcp_discover",
    "dhcp_offer",
    "dhcp_payload",
    "format_mac",
    "ip",
    "ipv4_packet",
    "mac",
    "parse_dhcp",
    "parse_frame",
    "readable",
]

ETH_TYPE_VLAN = 0x8100
BROADCAST_MAC = 0xFFFF_FFFF_FFFF

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10

ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
_ICMP_ECHO_TYPES = frozenset({ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST})
_ICMPV6_ECHO_TYPES = frozenset({128, 129})
_ND_SOLICIT = 135
_ND_ADVERT = 136

DHCP_DISCOVER = 1
DHCP_OFFER = 2
DHCP_REQUEST = 3
DHCP_ACK = 5
_DHCP_MAGIC = b"\x63\x82\x53\x63"
_BOOTP_LEN = 236
_ETH_MIN = 60  # without FCS: a NIC pads shorter frames


class FrameError(ValueError):
    """A packet cannot be built, or received bytes are not a frame this module understands."""


# ---------------------------------------------------------------- small helpers


def mac(text: str) -> int:
    """``aa:bb:cc:dd:ee:ff`` as the 48-bit integer the header table uses."""
    return parse_mac(text)


def ip(text: str) -> int:
    """An IPv4 or IPv6 address as the integer the header table uses."""
    return int(ipaddress.ip_address(text))


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``: 0 over a block that already holds its checksum."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _mac_bytes(value: int) -> bytes:
    return value.to_bytes(6, "big")


def _pseudo_v4(src: int, dst: int, proto: int, length: int) -> bytes:
    return struct.pack("!IIBBH", src, dst, 0, proto, length)


def _pseudo_v6(src: int, dst: int, proto: int, length: int) -> bytes:
    return src.to_bytes(16, "big") + dst.to_bytes(16, "big") + struct.pack("!I3xB", length, proto)


def ipv4_packet(
    *,
    eth_src: str,
    eth_dst: str,
    ip_src: str,
    ip_dst: str,
    proto: int,
    sport: int = 0,
    dport: int = 0,
    ttl: int = 64,
    vlan_tci: int = 0,
) -> dict[str, int]:
    """A header-table IPv4 packet from readable values (``sport``/``dport`` are ICMP type/code for ICMP)."""
    return normalize(
        {
            "eth_src": mac(eth_src),
            "eth_dst": mac(eth_dst),
            "vlan_tci": vlan_tci,
            "eth_type": ETH_TYPE_IP,
            "ip_src": ip(ip_src),
            "ip_dst": ip(ip_dst),
            "ip_proto": proto,
            "ip_ttl": ttl,
            "tp_src": sport,
            "tp_dst": dport,
        }
    )


def arp_packet(
    *,
    op: int,
    eth_src: str,
    eth_dst: str = "ff:ff:ff:ff:ff:ff",
    sha: str,
    spa: str,
    tha: str = "00:00:00:00:00:00",
    tpa: str,
) -> dict[str, int]:
    """A header-table ARP packet (``op`` 1 request, 2 reply)."""
    return normalize(
        {
            "eth_src": mac(eth_src),
            "eth_dst": mac(eth_dst),
            "eth_type": ETH_TYPE_ARP,
            "ip_proto": op,
            "ip_src": ip(spa),
            "ip_dst": ip(tpa),
            "arp_sha": mac(sha),
            "arp_tha": mac(tha),
        }
    )


# ---------------------------------------------------------------- building


def build_frame(
    packet: Mapping[str, int],
    *,
    payload: bytes = b"",
    tcp_flags: int = TCP_SYN,
    tcp_seq: int = 1000,
    tcp_ack: int = 0,
    tcp_window: int = 64240,
    ip_id: int = 0,
    dont_fragment: bool = True,
    tos: int = 0,
    icmp_id: int = 0x1234,
    icmp_seq: int = 1,
    pad: bool = True,
) -> bytes:
    """The Ethernet frame (without FCS) that carries ``packet``.

    Fields the header table lacks come from the keywords: TCP flags (SYN by
    default, which is what makes conntrack create a NEW connection), sequence
    numbers, the IPv4 id and DF bit, the ICMP echo id and sequence.  An IPv4 TTL
    or IPv6 hop limit of 0 in the packet is sent as 64 (a model's packet
    often leaves ``ip_ttl`` at 0; a real 0 would be dropped by the first
    router).  ``payload`` follows the L4 header (or the IP header for other
    protocols); for an Ethernet type other than IPv4/IPv6/ARP it follows the
    Ethernet header.  Frames are padded to 60 bytes, as a NIC does, unless
    ``pad`` is False.
    """
    pkt = normalize(packet)
    eth_type = pkt["eth_type"]
    if eth_type == ETH_TYPE_IP:
        body = _build_ipv4(
            pkt, payload, tcp_flags, tcp_seq, tcp_ack, tcp_window, ip_id, dont_fragment, tos, icmp_id, icmp_seq
        )
    elif eth_type == ETH_TYPE_IPV6:
        body = _build_ipv6(pkt, payload, tcp_flags, tcp_seq, tcp_ack, tcp_window, tos, icmp_id, icmp_seq)
    elif eth_type in (ETH_TYPE_ARP, ETH_TYPE_RARP):
        body = _build_arp(pkt) + payload
    else:
        body = payload
    header = _mac_bytes(pkt["eth_dst"]) + _mac_bytes(pkt["eth_src"])
    tci = pkt["vlan_tci"]
    if tci & VLAN_CFI:
        header += struct.pack("!HH", ETH_TYPE_VLAN, tci & ~VLAN_CFI & 0xFFFF)
    frame = header + struct.pack("!H", eth_type) + body
    if pad and len(frame) < _ETH_MIN:
        frame += b"\x00" * (_ETH_MIN - len(frame))
    return frame


def _build_arp(pkt: Mapping[str, int]) -> bytes:
    return struct.pack(
        "!HHBBH6sI6sI",
        1,  # Ethernet
        ETH_TYPE_IP,
        6,
        4,
        pkt["ip_proto"],
        _mac_bytes(pkt["arp_sha"]),
        pkt["ip_src"],
        _mac_bytes(pkt["arp_tha"]),
        pkt["ip_dst"],
    )


def _build_l4(
    pkt: Mapping[str, int],
    payload: bytes,
    pseudo: bytes | None,
    tcp_flags: int,
    tcp_seq: int,
    tcp_ack: int,
    tcp_window: int,
    icmp_id: int,
    icmp_seq: int,
) -> bytes:
    """The L4 header and payload with its checksum; ``pseudo`` is the pseudo-header without length/proto."""
    proto = pkt["ip_proto"]
    sport, dport = pkt["tp_src"], pkt["tp_dst"]

    def with_pseudo(segment: bytes) -> bytes:
        if pseudo is None:
            return segment
        return pseudo + segment

    if proto == IPPROTO_TCP:
        header = struct.pack(
            "!HHIIBBHHH", sport, dport, tcp_seq & 0xFFFFFFFF, tcp_ack & 0xFFFFFFFF, 5 << 4, tcp_flags, tcp_window, 0, 0
        )
        segment = header + payload
        csum = checksum(with_pseudo(segment))
        return segment[:16] + struct.pack("!H", csum) + segment[18:]
    if proto == IPPROTO_UDP:
        segment = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        csum = checksum(with_pseudo(segment)) or 0xFFFF
        return segment[:6] + struct.pack("!H", csum) + segment[8:]
    if proto == IPPROTO_SCTP:
        return struct.pack("!HHII", sport, dport, 0, 0) + payload
    if proto == IPPROTO_ICMP:
        rest = struct.pack("!HH", icmp_id, icmp_seq) if sport in _ICMP_ECHO_TYPES else b"\x00" * 4
        segment = struct.pack("!BBH", sport, dport, 0) + rest + payload
        csum = checksum(segment)
        return segment[:2] + struct.pack("!H", csum) + segment[4:]
    if proto == IPPROTO_ICMPV6:
        if sport in _ICMPV6_ECHO_TYPES:
            rest = struct.pack("!HH", icmp_id, icmp_seq)
        elif sport in (_ND_SOLICIT, _ND_ADVERT):
            flags = 0x60000000 if sport == _ND_ADVERT else 0  # solicited + override
            rest = struct.pack("!I", flags) + pkt["nd_target"].to_bytes(16, "big")
            lla = pkt["arp_sha"] if sport == _ND_SOLICIT else pkt["arp_tha"]
            if lla:
                rest += struct.pack("!BB", 1 if sport == _ND_SOLICIT else 2, 1) + _mac_bytes(lla)
        else:
            rest = b"\x00" * 4
        segment = struct.pack("!BBH", sport, dport, 0) + rest + payload
        csum = checksum(with_pseudo(segment))
        return segment[:2] + struct.pack("!H", csum) + segment[4:]
    return payload


def _build_ipv4(
    pkt: Mapping[str, int],
    payload: bytes,
    tcp_flags: int,
    tcp_seq: int,
    tcp_ack: int,
    tcp_window: int,
    ip_id: int,
    dont_fragment: bool,
    tos: int,
    icmp_id: int,
    icmp_seq: int,
) -> bytes:
    src, dst, proto = pkt["ip_src"], pkt["ip_dst"], pkt["ip_proto"]
    # The pseudo-header length field depends on the segment; build it in two steps.
    probe = _build_l4(pkt, payload, None, tcp_flags, tcp_seq, tcp_ack, tcp_window, icmp_id, icmp_seq)
    pseudo = _pseudo_v4(src, dst, proto, len(probe))
    l4 = _build_l4(pkt, payload, pseudo, tcp_flags, tcp_seq, tcp_ack, tcp_window, icmp_id, icmp_seq)
    ttl = pkt["ip_ttl"] or 64
    total = 20 + len(l4)
    if total > 0xFFFF:
        raise FrameError(f"IPv4 packet too long: {total} bytes")
    flags = 0x4000 if dont_fragment else 0
    header = struct.pack("!BBHHHBBHII", 0x45, tos, total, ip_id & 0xFFFF, flags, ttl, proto, 0, src, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + l4


def _build_ipv6(
    pkt: Mapping[str, int],
    payload: bytes,
    tcp_flags: int,
    tcp_seq: int,
    tcp_ack: int,
    tcp_window: int,
    tos: int,
    icmp_id: int,
    icmp_seq: int,
) -> bytes:
    src, dst, proto = pkt["ipv6_src"], pkt["ipv6_dst"], pkt["ip_proto"]
    probe = _build_l4(pkt, payload, None, tcp_flags, tcp_seq, tcp_ack, tcp_window, icmp_id, icmp_seq)
    pseudo = _pseudo_v6(src, dst, proto, len(probe))
    l4 = _build_l4(pkt, payload, pseudo, tcp_flags, tcp_seq, tcp_ack, tcp_window, icmp_id, icmp_seq)
    hop_limit = pkt["ip_ttl"] or (255 if proto == IPPROTO_ICMPV6 and pkt["tp_src"] in (133, 134, 135, 136, 137) else 64)
    header = struct.pack("!IHBB", (6 << 28) | (tos << 20), len(l4), proto, hop_limit)
    return header + src.to_bytes(16, "big") + dst.to_bytes(16, "big") + l4


# ---------------------------------------------------------------- DHCP


@dataclass(frozen=True)
class Dhcp:
    """A BOOTP/DHCP message: the fixed fields a test looks at and the options by code."""

    op: int
    xid: int
    chaddr: int
    ciaddr: int = 0
    yiaddr: int = 0
    siaddr: int = 0
    giaddr: int = 0
    flags: int = 0
    options: Mapping[int, bytes] = field(default_factory=dict)

    @property
    def message_type(self) -> int | None:
        """Option 53 (1 DISCOVER, 2 OFFER, 3 REQUEST, 5 ACK), None for plain BOOTP."""
        value = self.options.get(53)
        return value[0] if value else None

    def address_option(self, code: int) -> list[str]:
        """An option holding IPv4 addresses (1 netmask, 3 router, 6 DNS, 54 server id) as strings."""
        value = self.options.get(code, b"")
        return [str(ipaddress.IPv4Address(value[i : i + 4])) for i in range(0, len(value) - 3, 4)]

    def classless_routes(self) -> list[tuple[str, str]]:
        """Option 121 (RFC 3442) as (destination CIDR, gateway) pairs."""
        data = self.options.get(121, b"")
        routes: list[tuple[str, str]] = []
        i = 0
        while i < len(data):
            width = data[i]
            octets = (width + 7) // 8
            dest = data[i + 1 : i + 1 + octets] + b"\x00" * (4 - octets)
            gateway = data[i + 1 + octets : i + 5 + octets]
            routes.append((f"{ipaddress.IPv4Address(dest)}/{width}", str(ipaddress.IPv4Address(gateway))))
            i += 5 + octets
        return routes


def dhcp_payload(message: Dhcp) -> bytes:
    """The UDP payload of a DHCP message (options in code order, then END)."""
    fixed = struct.pack(
        "!BBBBIHHIIII16s64s128s",
        message.op,
        1,
        6,
        0,
        message.xid,
        0,
        message.flags,
        message.ciaddr,
        message.yiaddr,
        message.siaddr,
        message.giaddr,
        _mac_bytes(message.chaddr),
        b"",
        b"",
    )
    options = b"".join(struct.pack("!BB", code, len(value)) + value for code, value in sorted(message.options.items()))
    return fixed + _DHCP_MAGIC + options + b"\xff"


def parse_dhcp(payload: bytes) -> Dhcp | None:
    """The DHCP message in a UDP payload, or None when it is not one."""
    if len(payload) < _BOOTP_LEN + 4 or payload[_BOOTP_LEN : _BOOTP_LEN + 4] != _DHCP_MAGIC:
        return None
    op, _htype, _hlen, _hops, xid, _secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr = struct.unpack(
        "!BBBBIHHIIII16s", payload[:44]
    )
    options: dict[int, bytes] = {}
    i = _BOOTP_LEN + 4
    while i < len(payload):
        code = payload[i]
        if code == 0:
            i += 1
            continue
        if code == 255 or i + 1 >= len(payload):
            break
        length = payload[i + 1]
        options[code] = options.get(code, b"") + payload[i + 2 : i + 2 + length]  # RFC 3396 concatenation
        i += 2 + length
    return Dhcp(
        op=op,
        xid=xid,
        chaddr=int.from_bytes(chaddr[:6], "big"),
        ciaddr=ciaddr,
        yiaddr=yiaddr,
        siaddr=siaddr,
        giaddr=giaddr,
        flags=flags,
        options=options,
    )


def dhcp_discover(client_mac: str, *, xid: int = 0x5EED) -> tuple[dict[str, int], bytes]:
    """A DHCPDISCOVER broadcast from ``client_mac``: (packet, UDP payload) for ``build_frame``/``Lab.send``."""
    packet = ipv4_packet(
        eth_src=client_mac,
        eth_dst="ff:ff:ff:ff:ff:ff",
        ip_src="0.0.0.0",
        ip_dst="255.255.255.255",
        proto=IPPROTO_UDP,
        sport=68,
        dport=67,
    )
    message = Dhcp(op=1, xid=xid, chaddr=mac(client_mac), flags=0x8000, options={53: bytes([DHCP_DISCOVER])})
    return packet, dhcp_payload(message)


def dhcp_offer(
    *,
    server_mac: str,
    server_ip: str,
    client_mac: str,
    offered_ip: str,
    netmask: str = "255.255.255.0",
    router: str | None = None,
    xid: int = 0x5EED,
    lease: int = 86400,
) -> tuple[dict[str, int], bytes]:
    """A DHCPOFFER as dnsmasq sends it to a broadcast-flagged client: (packet, UDP payload)."""
    packet = ipv4_packet(
        eth_src=server_mac,
        eth_dst="ff:ff:ff:ff:ff:ff",
        ip_src=server_ip,
        ip_dst="255.255.255.255",
        proto=IPPROTO_UDP,
        sport=67,
        dport=68,
    )
    options = {
        53: bytes([DHCP_OFFER]),
        54: ipaddress.IPv4Address(server_ip).packed,
        51: struct.pack("!I", lease),
        1: ipaddress.IPv4Address(netmask).packed,
    }
    if router is not None:
        options[3] = ipaddress.IPv4Address(router).packed
    message = Dhcp(op=2, xid=xid, chaddr=mac(client_mac), yiaddr=ip(offered_ip), siaddr=ip(server_ip), options=options)
    return packet, dhcp_payload(message)


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Frame:
    """A parsed frame: the header-table packet plus what the header table does not hold.

    ``packet`` is normalised (``verifier.header.normalize``) with ``in_port``
    0.  ``checksums`` maps ``ip``/``l4`` to whether the checksum verified
    (absent when the layer is missing or, like SCTP, not checked); a frame a
    local socket sent through a veth can carry a *partial* L4 checksum (only
    the pseudo-header sum: the offload was never done), which is why
    ``Received.checksum_partial`` exists.
    """

    packet: Mapping[str, int]
    length: int
    payload: bytes = b""
    tcp_flags: int | None = None
    tcp_seq: int | None = None
    tcp_ack: int | None = None
    ip_id: int | None = None
    icmp_id: int | None = None
    icmp_seq: int | None = None
    fragment_offset: int = 0
    more_fragments: bool = False
    checksums: Mapping[str, bool] = field(default_factory=dict)
    dhcp: Dhcp | None = None

    @property
    def eth_type(self) -> int:
        return self.packet["eth_type"]

    def summary(self) -> str:
        """A one-line description for assertion messages."""
        text = describe(self.packet)
        if self.tcp_flags is not None:
            text += f" tcp_flags={_flag_names(self.tcp_flags)}"
        if self.icmp_id is not None:
            text += f" icmp_id={self.icmp_id:#x}"
        bad = [k for k, ok in self.checksums.items() if not ok]
        if bad:
            text += f" BAD-CHECKSUM({','.join(bad)})"
        return text


def _flag_names(flags: int) -> str:
    names = [
        n for bit, n in ((TCP_SYN, "S"), (TCP_ACK, "A"), (TCP_FIN, "F"), (TCP_RST, "R"), (TCP_PSH, "P")) if flags & bit
    ]
    return "".join(names) or "0"


def parse_frame(data: bytes) -> Frame:
    """Parse an Ethernet frame (as an AF_PACKET socket returns it) into a ``Frame``."""
    if len(data) < 14:
        raise FrameError(f"frame too short: {len(data)} bytes")
    pkt: dict[str, int] = {"eth_dst": int.from_bytes(data[0:6], "big"), "eth_src": int.from_bytes(data[6:12], "big")}
    (eth_type,) = struct.unpack("!H", data[12:14])
    offset = 14
    if eth_type == ETH_TYPE_VLAN and len(data) >= 18:
        (tci,) = struct.unpack("!H", data[14:16])
        pkt["vlan_tci"] = tci | VLAN_CFI
        (eth_type,) = struct.unpack("!H", data[16:18])
        offset = 18
    pkt["eth_type"] = eth_type
    rest = data[offset:]
    extra: dict[str, object] = {}
    if eth_type in (ETH_TYPE_ARP, ETH_TYPE_RARP):
        _parse_arp(rest, pkt)
    elif eth_type == ETH_TYPE_IP:
        _parse_ipv4(rest, pkt, extra)
    elif eth_type == ETH_TYPE_IPV6:
        _parse_ipv6(rest, pkt, extra)
    else:
        extra["payload"] = rest
    return Frame(packet=normalize(pkt), length=len(data), **extra)  # type: ignore[arg-type]


def _parse_arp(data: bytes, pkt: dict[str, int]) -> None:
    if len(data) < 28:
        raise FrameError("truncated ARP")
    _htype, _ptype, _hlen, _plen, op, sha, spa, tha, tpa = struct.unpack("!HHBBH6sI6sI", data[:28])
    pkt.update(
        ip_proto=op & 0xFF,
        ip_src=spa,
        ip_dst=tpa,
        arp_sha=int.from_bytes(sha, "big"),
        arp_tha=int.from_bytes(tha, "big"),
    )


def _parse_ipv4(data: bytes, pkt: dict[str, int], extra: dict[str, object]) -> None:
    if len(data) < 20:
        raise FrameError("truncated IPv4 header")
    version_ihl, _tos, total, ip_id, frag, ttl, proto, _csum, src, dst = struct.unpack("!BBHHHBBHII", data[:20])
    ihl = (version_ihl & 0x0F) * 4
    if version_ihl >> 4 != 4 or ihl < 20 or len(data) < ihl:
        raise FrameError("not an IPv4 header")
    end = min(total, len(data)) if total >= ihl else len(data)  # strip Ethernet padding
    pkt.update(ip_src=src, ip_dst=dst, ip_proto=proto, ip_ttl=ttl)
    checksums = {"ip": checksum(data[:ihl]) == 0}
    extra.update(ip_id=ip_id, fragment_offset=(frag & 0x1FFF) * 8, more_fragments=bool(frag & 0x2000))
    segment = data[ihl:end]
    if frag & 0x1FFF:  # a later fragment: no L4 header (OVS: nw_frag=later, tp_* = 0)
        extra["payload"] = segment
        extra["checksums"] = checksums
        return
    pseudo = _pseudo_v4(src, dst, proto, len(segment)) if not frag & 0x2000 else None
    _parse_l4(segment, proto, pseudo, pkt, extra, checksums)
    extra["checksums"] = checksums


def _parse_ipv6(data: bytes, pkt: dict[str, int], extra: dict[str, object]) -> None:
    if len(data) < 40:
        raise FrameError("truncated IPv6 header")
    _vtf, length, proto, hop_limit = struct.unpack("!IHBB", data[:8])
    src = int.from_bytes(data[8:24], "big")
    dst = int.from_bytes(data[24:40], "big")
    pkt.update(ipv6_src=src, ipv6_dst=dst, ip_proto=proto, ip_ttl=hop_limit)
    segment = data[40 : 40 + length]
    checksums: dict[str, bool] = {}
    _parse_l4(segment, proto, _pseudo_v6(src, dst, proto, len(segment)), pkt, extra, checksums)
    extra["checksums"] = checksums


def _parse_l4(
    segment: bytes,
    proto: int,
    pseudo: bytes | None,
    pkt: dict[str, int],
    extra: dict[str, object],
    checksums: dict[str, bool],
) -> None:
    """Fill tp_src/tp_dst and the extras; ``pseudo`` None: do not verify (a first fragment)."""
    if proto == IPPROTO_TCP and len(segment) >= 20:
        sport, dport, seq, ack, offset_byte, flags = struct.unpack("!HHIIBB", segment[:14])
        pkt.update(tp_src=sport, tp_dst=dport)
        extra.update(tcp_flags=flags, tcp_seq=seq, tcp_ack=ack, payload=segment[(offset_byte >> 4) * 4 :])
        if pseudo is not None:
            checksums["l4"] = checksum(pseudo + segment) == 0
    elif proto == IPPROTO_UDP and len(segment) >= 8:
        sport, dport, _length, csum = struct.unpack("!HHHH", segment[:8])
        pkt.update(tp_src=sport, tp_dst=dport)
        payload = segment[8:]
        extra["payload"] = payload
        if pseudo is not None and csum != 0:  # 0: no checksum (IPv4 only)
            checksums["l4"] = checksum(pseudo + segment) == 0
        if {sport, dport} <= {67, 68}:
            extra["dhcp"] = parse_dhcp(payload)
    elif proto == IPPROTO_SCTP and len(segment) >= 12:
        sport, dport = struct.unpack("!HH", segment[:4])
        pkt.update(tp_src=sport, tp_dst=dport)
        extra["payload"] = segment[12:]
    elif proto in (IPPROTO_ICMP, IPPROTO_ICMPV6) and len(segment) >= 8:
        icmp_type, code = segment[0], segment[1]
        pkt.update(tp_src=icmp_type, tp_dst=code)
        echo = _ICMP_ECHO_TYPES if proto == IPPROTO_ICMP else _ICMPV6_ECHO_TYPES
        if icmp_type in echo:
            icmp_id, icmp_seq = struct.unpack("!HH", segment[4:8])
            extra.update(icmp_id=icmp_id, icmp_seq=icmp_seq)
        if proto == IPPROTO_ICMPV6 and icmp_type in (_ND_SOLICIT, _ND_ADVERT) and len(segment) >= 24:
            pkt["nd_target"] = int.from_bytes(segment[8:24], "big")
            _parse_nd_options(segment[24:], pkt)
            extra["payload"] = b""
        else:
            extra["payload"] = segment[8:]
        if proto == IPPROTO_ICMP:
            checksums["l4"] = checksum(segment) == 0
        elif pseudo is not None:
            checksums["l4"] = checksum(pseudo + segment) == 0
    else:
        extra["payload"] = segment


def _parse_nd_options(data: bytes, pkt: dict[str, int]) -> None:
    i = 0
    while i + 2 <= len(data):
        kind, units = data[i], data[i + 1]
        if units == 0:
            break
        if kind in (1, 2) and i + 8 <= len(data):
            pkt["arp_sha" if kind == 1 else "arp_tha"] = int.from_bytes(data[i + 2 : i + 8], "big")
        i += units * 8


def readable(packet: Mapping[str, int]) -> dict[str, str | int]:
    """The non-zero wire fields of a packet with MACs and IPs as text (for assertion messages)."""
    out: dict[str, str | int] = {}
    for name, value in normalize(packet).items():
        f = FIELDS[name]
        if not f.wire or not value:
            continue
        out[name] = f.format(value) if f.kind in ("mac", "ipv4", "ipv6") else value
    return out
