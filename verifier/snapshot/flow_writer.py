"""Typed flows back to the text ``ovs-ofctl`` prints and accepts.

``format_flow(f, style="dump")`` gives a ``dump-flows`` line (statistics zeroed,
numeric ports, OpenFlow 1.0 + NXM spellings, as plain ``ovs-ofctl dump-flows``
prints on OVS 3.1); ``style="add"`` gives a line for ``ovs-ofctl add-flows``.
Reading either back with ``verifier.snapshot.flows`` yields an equal Flow.
"""

from __future__ import annotations

import ipaddress

from verifier.header import (
    CT_STATE_BITS,
    ETH_TYPE_ARP,
    ETH_TYPE_IPV6,
    ETH_TYPE_RARP,
    FIELDS,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    OFPP_LOCAL,
    format_mac,
)
from verifier.ir import (
    Action,
    All,
    Clone,
    Controller,
    Ct,
    CtClear,
    DecTtl,
    Exit,
    FieldMatch,
    FieldSlice,
    Flood,
    Flow,
    Learn,
    LearnSpec,
    Move,
    NoOp,
    Normal,
    Output,
    OutputField,
    OutputInPort,
    PopVlan,
    PushVlan,
    Resubmit,
    SetField,
    SetVlanPcp,
    SetVlanVid,
    Unsupported,
)
from verifier.snapshot.fields import SHORTHANDS

_NXM = {
    "in_port": "NXM_OF_IN_PORT",
    "eth_src": "NXM_OF_ETH_SRC",
    "eth_dst": "NXM_OF_ETH_DST",
    "vlan_tci": "NXM_OF_VLAN_TCI",
    "eth_type": "NXM_OF_ETH_TYPE",
    "ip_src": "NXM_OF_IP_SRC",
    "ip_dst": "NXM_OF_IP_DST",
    "ip_proto": "NXM_OF_IP_PROTO",
    "ip_ttl": "NXM_NX_IP_TTL",
    "tp_src": "NXM_OF_TCP_SRC",
    "tp_dst": "NXM_OF_TCP_DST",
    "arp_sha": "NXM_NX_ARP_SHA",
    "arp_tha": "NXM_NX_ARP_THA",
    "ipv6_src": "NXM_NX_IPV6_SRC",
    "ipv6_dst": "NXM_NX_IPV6_DST",
    "nd_target": "NXM_NX_ND_TARGET",
    "tun_id": "NXM_NX_TUN_ID",
    "tun_src": "NXM_NX_TUN_IPV4_SRC",
    "tun_dst": "NXM_NX_TUN_IPV4_DST",
    "metadata": "OXM_OF_METADATA",
    "ct_state": "NXM_NX_CT_STATE",
    "ct_zone": "NXM_NX_CT_ZONE",
    "ct_mark": "NXM_NX_CT_MARK",
    "pkt_mark": "NXM_NX_PKT_MARK",
    **{f"reg{i}": f"NXM_NX_REG{i}" for i in range(16)},
}
_SET_FIELD_NAME = {"ip_proto": "nw_proto", "ip_ttl": "nw_ttl", "tp_src": "tcp_src", "tp_dst": "tcp_dst"}


class UnprintableFlow(ValueError):
    """A flow the writer cannot express in ovs-ofctl syntax."""


def format_flow(flow: Flow, *, style: str = "dump") -> str:
    """One flow as ``dump-flows`` (``style="dump"``) or ``add-flows`` (``"add"``) text."""
    match = format_match(flow)
    actions = ",".join(format_action(a) for a in flow.actions) or "drop"
    timeouts = ""
    if flow.idle_timeout:
        timeouts += f"idle_timeout={flow.idle_timeout}, "
    if flow.hard_timeout:
        timeouts += f"hard_timeout={flow.hard_timeout}, "
    if style == "dump":
        return (
            f" cookie={flow.cookie:#x}, duration=0.0s, table={flow.table}, n_packets=0, n_bytes=0, "
            f"{timeouts}idle_age=0, {match} actions={actions}"
        )
    if style == "add":
        return f"cookie={flow.cookie:#x}, table={flow.table}, {timeouts}{match} actions={actions}"
    raise ValueError(f"unknown style {style!r}")


def format_rule(flow: Flow) -> str:
    """A flow without statistics or table: ``priority=..,<match> actions=<actions>``."""
    actions = ",".join(format_action(a) for a in flow.actions) or "drop"
    return f"{format_match(flow)} actions={actions}"


def format_match(flow: Flow) -> str:
    """The match part of a flow (``priority=..,field=..``) as ovs-ofctl prints it."""
    return ",".join([f"priority={flow.priority}", *_match_parts(flow), *flow.unsupported_match])


def format_dump(flows: list[Flow] | tuple[Flow, ...]) -> str:
    """A whole ``ovs-ofctl dump-flows`` output, header included, in table and priority order."""
    ordered = sorted(flows, key=lambda f: (f.table, -f.priority))
    return "NXST_FLOW reply (xid=0x4):\n" + "".join(format_flow(f) + "\n" for f in ordered)


def _match_parts(flow: Flow) -> list[str]:
    fields = {m.field: m for m in flow.match}
    parts: list[str] = []
    eth = fields.pop("eth_type", None)
    eth_type = eth.value if eth is not None and eth.exact else None
    proto = fields.get("ip_proto")
    if eth is not None:
        shorthand = _shorthand(eth, proto)
        if shorthand is not None:
            parts.append(shorthand)
            if SHORTHANDS[shorthand][1] is not None:
                fields.pop("ip_proto")
        else:
            parts.append(_kv("dl_type", eth))
    icmp = proto is not None and proto.exact and proto.value in (IPPROTO_ICMP, IPPROTO_ICMPV6)
    arp = eth_type in (ETH_TYPE_ARP, ETH_TYPE_RARP)
    for name in sorted(fields, key=_order):
        fm = fields[name]
        if name == "in_port":
            parts.append(f"in_port={_port(fm.value)}")
        elif name == "vlan_tci":
            if fm.mask == 0x1FFF and fm.value & 0x1000:
                parts.append(f"dl_vlan={fm.value & 0xFFF}")
            else:
                parts.append(f"vlan_tci={fm.value:#06x}/{fm.mask:#06x}")
        elif name == "ct_state":
            parts.append("ct_state=" + _ct_flags(fm.value, fm.mask))
        elif arp and name in ("ip_src", "ip_dst", "ip_proto"):
            parts.append(_kv({"ip_src": "arp_spa", "ip_dst": "arp_tpa", "ip_proto": "arp_op"}[name], fm))
        elif icmp and name in ("tp_src", "tp_dst") and fm.mask & 0xFF == 0xFF and fm.value < 256:
            parts.append(f"{'icmp_type' if name == 'tp_src' else 'icmp_code'}={fm.value}")
        elif eth_type == ETH_TYPE_IPV6 and name in ("arp_sha", "arp_tha"):
            parts.append(_kv("nd_sll" if name == "arp_sha" else "nd_tll", fm))
        else:
            parts.append(_kv(FIELDS[name].ovs, fm))
    return parts


_ORDER = [f for f in FIELDS]


def _order(name: str) -> int:
    return _ORDER.index(name)


def _shorthand(eth: FieldMatch, proto: FieldMatch | None) -> str | None:
    """``tcp``, ``arp``, ``icmp6``... for an exact Ethernet type (and IP protocol)."""
    if not eth.exact:
        return None
    if proto is not None and proto.exact:
        for name, (etype, p) in SHORTHANDS.items():
            if etype == eth.value and p == proto.value:
                return name
    for name, (etype, p) in SHORTHANDS.items():
        if etype == eth.value and p is None:
            return name
    return None


def _kv(ovs_name: str, fm: FieldMatch) -> str:
    f = FIELDS[fm.field]
    if f.kind == "mac":
        text = format_mac(fm.value)
        return f"{ovs_name}={text}" if fm.exact else f"{ovs_name}={text}/{format_mac(fm.mask)}"
    if f.kind in ("ipv4", "ipv6"):
        cls = ipaddress.IPv4Address if f.kind == "ipv4" else ipaddress.IPv6Address
        prefix = _prefix_len(fm.mask, f.width)
        if prefix is None:
            return f"{ovs_name}={cls(fm.value)}/{cls(fm.mask)}"
        return f"{ovs_name}={cls(fm.value)}" + ("" if prefix == f.width else f"/{prefix}")
    if fm.exact:
        return f"{ovs_name}={fm.value:#x}" if f.kind == "hex" else f"{ovs_name}={fm.value}"
    return f"{ovs_name}={fm.value:#x}/{fm.mask:#x}"


def _prefix_len(mask: int, width: int) -> int | None:
    inverted = ~mask & ((1 << width) - 1)
    if inverted & (inverted + 1):
        return None
    return width - inverted.bit_length()


def _ct_flags(value: int, mask: int) -> str:
    out = ""
    for name, bit in CT_STATE_BITS.items():
        if mask & bit:
            out += ("+" if value & bit else "-") + name
    return out


def _port(number: int) -> str:
    return "LOCAL" if number == OFPP_LOCAL else str(number)


def format_slice(s: FieldSlice) -> str:
    """``NXM_OF_VLAN_TCI[0..11]`` style text for a field slice."""
    name = s.spelling if s.spelling and s.spelling.isupper() else _NXM[s.field]
    if s.start == 0 and s.n_bits == FIELDS[s.field].width:
        return f"{name}[]"
    if s.n_bits == 1:
        return f"{name}[{s.start}]"
    return f"{name}[{s.start}..{s.start + s.n_bits - 1}]"


def format_action(a: Action) -> str:
    """One action in ovs-ofctl syntax."""
    if isinstance(a, Output):
        return _port(a.port) if a.port == OFPP_LOCAL else f"output:{a.port}"
    if isinstance(a, OutputInPort):
        return "IN_PORT"
    if isinstance(a, OutputField):
        return f"output:{format_slice(a.src)}"
    if isinstance(a, Normal):
        return "NORMAL"
    if isinstance(a, Flood):
        return "FLOOD"
    if isinstance(a, All):
        return "ALL"
    if isinstance(a, Controller):
        return f"CONTROLLER:{a.max_len}"
    if isinstance(a, Resubmit):
        port = "" if a.port is None else _port(a.port)
        table = "" if a.table is None else str(a.table)
        return f"resubmit({port},{table})"
    if isinstance(a, SetField):
        return _set_field(a)
    if isinstance(a, Move):
        return f"move:{format_slice(a.src)}->{format_slice(a.dst)}"
    if isinstance(a, PushVlan):
        return f"push_vlan:{a.tpid:#x}"
    if isinstance(a, PopVlan):
        return "strip_vlan"
    if isinstance(a, SetVlanVid):
        return f"mod_vlan_vid:{a.vid}"
    if isinstance(a, SetVlanPcp):
        return f"mod_vlan_pcp:{a.pcp}"
    if isinstance(a, DecTtl):
        return "dec_ttl"
    if isinstance(a, Learn):
        return _learn(a.spec)
    if isinstance(a, Ct):
        return _ct(a)
    if isinstance(a, CtClear):
        return "ct_clear"
    if isinstance(a, Clone):
        return "clone(" + ",".join(format_action(x) for x in a.actions) + ")"
    if isinstance(a, Exit):
        return "exit"
    if isinstance(a, (NoOp, Unsupported)):
        return a.text
    raise UnprintableFlow(f"no text for action {a!r}")


def _set_field(a: SetField) -> str:
    if a.spelling:
        return a.spelling
    f = FIELDS[a.field]
    if a.only_eth_types is not None:
        mod = {"ip_src": "mod_nw_src", "ip_dst": "mod_nw_dst", "tp_src": "mod_tp_src", "tp_dst": "mod_tp_dst"}
        if a.field in mod:
            value = str(ipaddress.IPv4Address(a.value)) if f.kind == "ipv4" else str(a.value)
            return f"{mod[a.field]}:{value}"
        if a.field == "ip_ttl":
            return f"mod_nw_ttl:{a.value}"
    if a.mask == f.max:
        if a.field in ("eth_src", "eth_dst"):
            return f"mod_dl_{a.field[4:]}:{format_mac(a.value)}"
        if a.field == "tun_id":
            return f"set_tunnel:{a.value:#x}"
    # A contiguous bit range is a load; others need set_field with a mask.
    low = (a.mask & -a.mask).bit_length() - 1 if a.mask else 0
    span = a.mask >> low if a.mask else 0
    if a.mask and span & (span + 1) == 0:
        s = FieldSlice(a.field, low, span.bit_length())
        return f"load:{a.value >> low:#x}->{format_slice(s)}"
    name = _SET_FIELD_NAME.get(a.field, a.field)
    return f"set_field:{a.value:#x}/{a.mask:#x}->{name}"


def _learn(spec: LearnSpec) -> str:
    parts = [f"table={spec.table}"]
    if spec.idle_timeout:
        parts.append(f"idle_timeout={spec.idle_timeout}")
    if spec.hard_timeout:
        parts.append(f"hard_timeout={spec.hard_timeout}")
    if spec.fin_idle_timeout:
        parts.append(f"fin_idle_timeout={spec.fin_idle_timeout}")
    if spec.fin_hard_timeout:
        parts.append(f"fin_hard_timeout={spec.fin_hard_timeout}")
    parts.append(f"priority={spec.priority}")
    if spec.cookie:
        parts.append(f"cookie={spec.cookie:#x}")
    for dst, src in spec.matches:
        if isinstance(src, FieldSlice):
            if src == dst:
                parts.append(format_slice(dst))
            else:
                parts.append(f"{format_slice(dst)}={format_slice(src)}")
        else:
            if dst.start != 0 or dst.n_bits != FIELDS[dst.field].width:
                raise UnprintableFlow("learn: constant match on part of a field")
            parts.append(f"{FIELDS[dst.field].ovs}={src:#x}")
    for dst, src in spec.loads:
        source = format_slice(src) if isinstance(src, FieldSlice) else f"{src:#x}"
        parts.append(f"load:{source}->{format_slice(dst)}")
    for out in spec.outputs:
        parts.append(f"output:{format_slice(out)}")
    return "learn(" + ",".join(parts) + ")"


def _ct(a: Ct) -> str:
    parts: list[str] = []
    if a.commit:
        parts.append("commit")
    if a.force:
        parts.append("force")
    if isinstance(a.zone, FieldSlice):
        parts.append(f"zone={format_slice(a.zone)}")
    elif a.zone:
        parts.append(f"zone={a.zone}")
    if a.table is not None:
        parts.append(f"table={a.table}")
    if a.nat is not None:
        parts.append(a.nat)
    if a.exec_actions:
        parts.append("exec(" + ",".join(format_action(x) for x in a.exec_actions) + ")")
    return "ct(" + ",".join(parts) + ")"
