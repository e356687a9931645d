"""Datapath actions (``ofproto/trace`` output) run as a sequential program.

``ofproto/trace`` ends every pass with ``Datapath actions: <list>``.  That list
is a small straight-line program over one packet: ``set(...)``, ``push_vlan``
and ``pop_vlan`` change the packet for every action after them, an output port
emits a copy of the packet as it stands, ``clone(...)`` runs its actions on a
copy, ``recirc(N)`` hands a copy to a later pass of the trace.  This module
parses the list with ``ovs.flow.odp.ODPFlow`` and executes it over a concrete
packet (a ``verifier.header`` dict).

What is interpreted (anything else raises ``OdpError``; nothing is skipped):

* ``drop`` (the empty program), outputs by datapath port *name* (trace with
  ``--names``; a numeric port raises, since numbers change from run to run);
* ``set(eth|ipv4|ipv6|tcp|udp|sctp|icmp|icmpv6|arp|nd(...))`` on header-table
  fields, masked or not (``tos``, ``frag``, ``tclass``, ``label`` raise);
* ``set(tunnel(tun_id,src,dst,ttl,tos,tp_src,tp_dst,flags))``: the outer header
  of later tunnel outputs (IPv6 tunnels and Geneve options raise);
* ``push_vlan(vid,pcp[,tpid=0x8100])`` on an untagged frame, ``pop_vlan`` on a
  tagged one (a second tag does not fit the header table and raises);
* ``userspace(...controller(reason=N...))``: a packet-in, emitted to
  ``CONTROLLER`` with its reason (``dec_ttl`` on TTL 0/1 gives reason 2);
  other ``userspace`` uses (slow path, sFlow, IPFIX) raise;
* ``clone(...)``;
* ``ct(...)``: conntrack changes only ct metadata, which is never emitted.
  With ``nat``, what NAT does to the recirculated packet is what the trace
  itself simulates (the caller passes the trace's ``Modified flow``), while
  an *output* after a NAT-ing ct() in the same pass raises, because its
  headers depend on a real connection (``recirc`` after it is fine);
* ``ct_clear``; ``recirc(N)``: a snapshot for the pass that resumes with
  ``recirc_id=N``.

Emitted packets carry only the header table's *wire* fields (``WIRE_FIELDS``);
the tunnel outer header of a tunnel output is in ``Emission.tunnel``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ovs.flow.odp import ODPFlow

from verifier.header import FIELDS, VLAN_CFI, VLAN_PCP_SHIFT, VLAN_VID_MASK

WIRE_FIELDS: tuple[str, ...] = tuple(name for name, f in FIELDS.items() if f.wire)
"""The header-table fields an ``Emission.packet`` holds: what goes out on the wire."""

CONTROLLER_PORT = "CONTROLLER"
"""``Emission.port`` of a packet-in (``userspace(...controller(...))``)."""

TUNNEL_VPORT = re.compile(r"^(?P<kind>gre|vxlan|genev|stt|erspan|ip6erspan|ip6gre|gtpu|bareudp)_sys(_\d+)?$")
"""Datapath port names of tunnel vports: every GRE port shares ``gre_sys``,
VXLAN ports ``vxlan_sys_<dst_port>``, Geneve ``genev_sys_<dst_port>``."""

# set(<key>(...)) sub-fields -> header-table fields.
_SET_FIELDS: Mapping[str, Mapping[str, str]] = {
    "eth": {"src": "eth_src", "dst": "eth_dst"},
    "ipv4": {"src": "ip_src", "dst": "ip_dst", "proto": "ip_proto", "ttl": "ip_ttl"},
    "ipv6": {"src": "ipv6_src", "dst": "ipv6_dst", "proto": "ip_proto", "hlimit": "ip_ttl"},
    "tcp": {"src": "tp_src", "dst": "tp_dst"},
    "udp": {"src": "tp_src", "dst": "tp_dst"},
    "sctp": {"src": "tp_src", "dst": "tp_dst"},
    "icmp": {"type": "tp_src", "code": "tp_dst"},
    "icmpv6": {"type": "tp_src", "code": "tp_dst"},
    "arp": {"sip": "ip_src", "tip": "ip_dst", "op": "ip_proto", "sha": "arp_sha", "tha": "arp_tha"},
    "nd": {"target": "nd_target", "sll": "arp_sha", "tll": "arp_tha"},
}
_TUNNEL_KEYS = frozenset({"tun_id", "src", "dst", "ttl", "tos", "tp_src", "tp_dst", "flags"})


class OdpError(ValueError):
    """A datapath action this interpreter does not understand or cannot run faithfully."""


@dataclass(frozen=True)
class TunnelInfo:
    """The outer header of a tunnel output, as ``set(tunnel(...))`` gave it.

    ``src`` and ``dst`` are IPv4 addresses as integers (``src`` is 0 when the
    tunnel port has no ``local_ip``); ``ttl``, ``tos``, ``tp_src`` and
    ``tp_dst`` are None when the action did not give them.  ``flags`` is the
    set of ``flags(...)`` names (``df``, ``key``, ``csum``...).
    """

    tun_id: int
    src: int
    dst: int
    ttl: int | None = None
    tos: int | None = None
    tp_src: int | None = None
    tp_dst: int | None = None
    flags: frozenset[str] = frozenset()

    @property
    def dst_ip(self) -> str:
        return str(ipaddress.IPv4Address(self.dst))

    @property
    def src_ip(self) -> str:
        return str(ipaddress.IPv4Address(self.src))

    def sort_key(self) -> tuple[int, int, int, int, int, int, int, tuple[str, ...]]:
        none = -1
        return (
            self.tun_id,
            self.src,
            self.dst,
            none if self.ttl is None else self.ttl,
            none if self.tos is None else self.tos,
            none if self.tp_src is None else self.tp_src,
            none if self.tp_dst is None else self.tp_dst,
            tuple(sorted(self.flags)),
        )


@dataclass(frozen=True)
class Emission:
    """One packet leaving the switch.

    ``port`` is the OVS interface name (the LOCAL port is the bridge's name),
    a tunnel interface name resolved from the outer header (the harness does
    that; here it is the datapath vport name such as ``gre_sys``), or
    ``CONTROLLER`` for a packet-in.  ``packet`` holds the ``WIRE_FIELDS``
    only.  ``controller_reason`` is the packet-in reason (OpenFlow
    ``OFPR_*``: 0 no match, 1 action, 2 invalid TTL) and None otherwise.
    ``datapath_port`` is the name the datapath printed (diagnostic only).
    """

    port: str
    packet: dict[str, int]
    tunnel: TunnelInfo | None = None
    controller_reason: int | None = None
    datapath_port: str = field(default="", compare=False)

    def sort_key(self) -> tuple[Any, ...]:
        tunnel = () if self.tunnel is None else self.tunnel.sort_key()
        reason = -1 if self.controller_reason is None else self.controller_reason
        return (self.port, tuple(sorted(self.packet.items())), tunnel, reason)


@dataclass
class DpState:
    """The packet as the datapath program has made it so far, plus its tunnel key."""

    packet: dict[str, int]
    tunnel: TunnelInfo | None = None
    nat_pending: bool = False

    def copy(self) -> DpState:
        return DpState(dict(self.packet), self.tunnel, self.nat_pending)

    def wire_packet(self) -> dict[str, int]:
        return {name: self.packet[name] for name in WIRE_FIELDS}


@dataclass
class DpResult:
    """What one pass did: its emissions, in program order, and its recirculations."""

    emissions: list[Emission] = field(default_factory=list)
    recircs: dict[int, DpState] = field(default_factory=dict)
    conntrack: list[dict[str, Any]] = field(default_factory=list)


def parse_actions(text: str) -> list[tuple[str, Any]]:
    """A ``Datapath actions:`` string as ``(key, value)`` pairs, via ``ovs.flow.odp``."""
    try:
        flow = ODPFlow("recirc_id(0) actions:" + text.strip())
    except Exception as exc:  # the library raises assorted types on bad input
        raise OdpError(f"cannot parse datapath actions {text!r}: {exc}") from exc
    return [(kv.key, kv.value) for kv in flow.actions_kv]


def initial_state(packet: Mapping[str, int]) -> DpState:
    """The state a trace starts from; a packet received on a tunnel keeps its tunnel key.

    OVS commits ``set(tunnel(...))`` only when the egress tunnel key differs
    from the ingress one, so an ingress key must be the starting state.
    """
    pkt = {name: int(packet.get(name, 0)) for name in FIELDS}
    tunnel = None
    if pkt["tun_src"] or pkt["tun_dst"]:
        tunnel = TunnelInfo(tun_id=pkt["tun_id"], src=pkt["tun_src"], dst=pkt["tun_dst"])
    return DpState(pkt, tunnel)


def run_actions(text: str, state: DpState) -> DpResult:
    """Execute one pass's datapath actions on ``state`` (modified in place)."""
    result = DpResult()
    _run(parse_actions(text), state, result)
    return result


def _run(actions: Iterable[tuple[str, Any]], state: DpState, result: DpResult) -> None:
    for key, value in actions:
        _step(key, value, state, result)


def _step(key: str, value: Any, state: DpState, result: DpResult) -> None:
    if key == "drop":
        return
    if key == "output":
        _output(value["port"], state, result)
    elif key == "set":
        _set(value, state)
    elif key == "push_vlan":
        _push_vlan(value, state)
    elif key == "pop_vlan":
        if not state.packet["vlan_tci"] & VLAN_CFI:
            raise OdpError("pop_vlan on an untagged frame")
        state.packet["vlan_tci"] = 0
    elif key == "userspace":
        _userspace(value, state, result)
    elif key == "clone":
        branch = state.copy()
        _run(_items(value), branch, result)
    elif key == "ct":
        _ct(value, state, result)
    elif key == "ct_clear":
        state.packet.update(ct_state=0, ct_zone=0, ct_mark=0)
    elif key == "recirc":
        resumed = state.copy()
        resumed.nat_pending = False
        result.recircs[int(value)] = resumed
    else:
        raise OdpError(f"datapath action {key}({value}) is not interpreted")


def _items(value: Any) -> list[tuple[str, Any]]:
    """``clone``'s nested action list (a list of one-key dicts) as pairs."""
    if not isinstance(value, list):
        raise OdpError(f"unexpected nested actions {value!r}")
    return [(k, v) for item in value for k, v in item.items()]


def _output(port: Any, state: DpState, result: DpResult) -> None:
    if not isinstance(port, str):
        raise OdpError(f"numeric datapath port {port}: trace with --names")
    if state.nat_pending:
        raise OdpError(f"output to {port} after ct(nat) in the same pass depends on a real connection")
    tunnel = None
    if TUNNEL_VPORT.match(port):
        if state.tunnel is None:
            raise OdpError(f"output to tunnel vport {port} without a tunnel key")
        tunnel = state.tunnel
    result.emissions.append(Emission(port, state.wire_packet(), tunnel, datapath_port=port))


def _userspace(value: Mapping[str, Any], state: DpState, result: DpResult) -> None:
    controller = value.get("controller")
    if not isinstance(controller, Mapping):
        raise OdpError(f"userspace action {value!r} is not a controller packet-in")
    reason = int(controller["reason"])
    result.emissions.append(Emission(CONTROLLER_PORT, state.wire_packet(), None, reason, datapath_port="userspace"))


def _push_vlan(value: Mapping[str, Any], state: DpState) -> None:
    unknown = set(value) - {"vid", "pcp", "cfi", "tpid"}
    if unknown:
        raise OdpError(f"push_vlan with {sorted(unknown)}")
    if int(value.get("tpid", 0x8100)) != 0x8100:
        raise OdpError(f"push_vlan with tpid {value['tpid']}: only 802.1Q is modelled")
    if state.packet["vlan_tci"] & VLAN_CFI:
        raise OdpError("push_vlan on a tagged frame: a second tag is not in the header table")
    vid = int(value["vid"]) & VLAN_VID_MASK
    pcp = int(value.get("pcp", 0)) & 7
    state.packet["vlan_tci"] = VLAN_CFI | (pcp << VLAN_PCP_SHIFT) | vid


def _set(value: Mapping[str, Any], state: DpState) -> None:
    if len(value) != 1:
        raise OdpError(f"set() with {len(value)} keys: {value!r}")
    ((key, sub),) = value.items()
    if key == "tunnel":
        state.tunnel = _tunnel(sub)
        return
    names = _SET_FIELDS.get(key)
    if names is None:
        raise OdpError(f"set({key}(...)) is not interpreted")
    for subfield, raw in sub.items():
        target = names.get(subfield)
        if target is None:
            raise OdpError(f"set({key}({subfield}=...)): field not in the header table")
        width = FIELDS[target].width
        new, mask = value_mask(raw, width)
        old = state.packet[target]
        state.packet[target] = (old & ~mask) | (new & mask)


def _tunnel(sub: Mapping[str, Any]) -> TunnelInfo:
    unknown = set(sub) - _TUNNEL_KEYS
    if unknown:
        raise OdpError(f"set(tunnel(...)) with {sorted(unknown)}: not interpreted")

    def opt(name: str, width: int) -> int | None:
        return value_mask(sub[name], width)[0] if name in sub else None

    flags = sub.get("flags", "")
    return TunnelInfo(
        tun_id=value_mask(sub.get("tun_id", 0), 64)[0],
        src=value_mask(sub["src"], 32)[0] if "src" in sub else 0,
        dst=value_mask(sub["dst"], 32)[0] if "dst" in sub else 0,
        ttl=opt("ttl", 8),
        tos=opt("tos", 8),
        tp_src=opt("tp_src", 16),
        tp_dst=opt("tp_dst", 16),
        flags=frozenset(f for f in str(flags).split("|") if f),
    )


def _ct(value: Any, state: DpState, result: DpResult) -> None:
    args: dict[str, Any] = dict(value) if isinstance(value, Mapping) else {}
    result.conntrack.append(args)
    if "nat" in args:
        state.nat_pending = True


def value_mask(raw: Any, width: int) -> tuple[int, int]:
    """An ``ovs.flow`` decoded value (int, Mask8..Mask128, IPMask, EthMask) as ``(value, mask)``."""
    full = (1 << width) - 1
    if isinstance(raw, bool):
        raise OdpError("field without a value")
    if isinstance(raw, int):
        return raw & full, full
    if hasattr(raw, "eth"):  # EthMask
        mask = full if raw.mask is None else int(raw.mask)
        return int(raw.eth) & mask, mask
    if hasattr(raw, "ip") and hasattr(raw, "mask"):  # IPMask
        mask = full if raw.mask is None else int(raw.mask)
        return int(raw.ip) & mask, mask
    if hasattr(raw, "value") and hasattr(raw, "mask"):  # IntMask
        mask = full if raw.mask is None else int(raw.mask) & full
        return int(raw.value) & mask, mask
    if isinstance(raw, str):
        text, _, mask_text = raw.partition("/")
        return int(text, 0) & full, int(mask_text, 0) & full if mask_text else full
    raise OdpError(f"cannot read value {raw!r}")


@dataclass(frozen=True)
class TracePass:
    """One pass of a trace: ``recirc_id`` 0 for the first, its datapath actions and NAT.

    ``nat`` holds the header-table fields the trace's "Modified flow" gives for
    a pass resumed after ``ct(...,nat(...))`` (empty otherwise): OVS simulates
    NAT by taking the first address and port of the range.
    """

    recirc_id: int
    actions: str
    nat: Mapping[str, int] = field(default_factory=dict)


def run_passes(passes: Iterable[TracePass], packet: Mapping[str, int]) -> list[Emission]:
    """Execute every pass of a trace; a resumed pass starts where its ``recirc`` left the packet.

    Passes come in trace order (OVS queues recirculations first in, first
    out), so a pass's parent has always run before it.
    """
    pending: dict[int, DpState] = {0: initial_state(packet)}
    emissions: list[Emission] = []
    for p in passes:
        state = pending.pop(p.recirc_id, None)
        if state is None:
            raise OdpError(f"trace pass recirc_id={p.recirc_id:#x} was not started by any recirc()")
        state.packet.update(p.nat)
        result = run_actions(p.actions, state)
        emissions.extend(result.emissions)
        for rid, resumed in result.recircs.items():
            if rid in pending:
                raise OdpError(f"recirc({rid:#x}) twice")
            pending[rid] = resumed
    if pending:
        ids = ", ".join(f"{rid:#x}" for rid in pending)
        raise OdpError(f"recirc({ids}) without a resumed pass in the trace")
    return emissions
