"""GRE / VXLAN / Geneve tunnel ports: how an output on one host arrives on another.

Open vSwitch sends the frame as it stands (VLAN header included, if a flow
left one) inside an IP packet from ``local_ip`` to ``remote_ip`` with key
``out_key`` (``flow``: the packet's tun_id).  The receiving host hands it to
the tunnel port whose ``remote_ip`` is the sender and whose ``local_ip`` (if
set) is the destination, and whose ``in_key`` accepts the key; the packet
enters with tun_id = key, tun_src/tun_dst = the outer addresses, and every
register, metadata and conntrack field cleared.  GRE keys are 32 bits,
VXLAN/Geneve VNIs 24 bits.
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier import ir

TUNNEL_TYPES = frozenset({"gre", "vxlan", "geneve", "stt", "gre64", "lisp", "erspan", "ip6gre"})
KEY_BITS = {"gre": 32, "ip6gre": 32, "erspan": 32, "gre64": 64, "vxlan": 24, "geneve": 24, "stt": 64, "lisp": 24}


@dataclass(frozen=True)
class TunnelPort:
    """One tunnel interface with its options (``None``: option absent)."""

    host: str
    bridge: str
    port: int
    name: str
    type: str
    remote_ip: str | None
    local_ip: str | None
    in_key: str | None
    out_key: str | None

    @property
    def key_bits(self) -> int:
        return KEY_BITS.get(self.type, 32)

    @property
    def family(self) -> str:
        """Ports of one family talk to each other (gre and gre64 alike)."""
        return "gre" if self.type in ("gre", "gre64", "ip6gre", "erspan") else self.type

    def accepts_key(self, key: int) -> bool:
        """Whether a packet with this key is received on this port."""
        if self.in_key == "flow":
            return True
        return key == _int(self.in_key)

    def fixed_out_key(self) -> int | None:
        """The key it sends with, or None when the flow decides (out_key=flow)."""
        if self.out_key == "flow":
            return None
        return _int(self.out_key)


def _int(text: str | None) -> int:
    if text is None:
        return 0
    return int(text, 0)


def tunnel_port(host: str, bridge: str, number: int, iface: ir.Interface) -> TunnelPort | None:
    """The tunnel view of an interface, or None if it is no tunnel."""
    if iface.type not in TUNNEL_TYPES:
        return None
    key = iface.option("key")
    return TunnelPort(
        host=host,
        bridge=bridge,
        port=number,
        name=iface.name,
        type=iface.type,
        remote_ip=iface.option("remote_ip"),
        local_ip=iface.option("local_ip"),
        in_key=iface.option("in_key") or key,
        out_key=iface.option("out_key") or key,
    )


def specificity(port: TunnelPort, src: str, dst: str) -> int | None:
    """How well a receiving port matches packets from ``src`` to ``dst`` (None: not at all)."""
    if port.remote_ip not in (src, "flow"):
        return None
    if port.local_ip not in (None, dst):
        return None
    score = 0
    if port.remote_ip == src:
        score += 2
    if port.local_ip == dst:
        score += 1
    return score
