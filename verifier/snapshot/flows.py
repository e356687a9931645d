"""``ovs-ofctl dump-flows`` text to typed flows, with the OVS library's parser.

The key/value grammar is parsed by ``ovs.flow.ofp.OFPFlow``.  This module only
(1) splits a dump line into its statistics, match and actions the way every OVS
release from 1.10 to 3.x lays them out (the library wants a layout that some
releases do not print: ``reset_counts`` without a comma, priority omitted), and
(2) turns the library's dictionaries into the IR, resolving port names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ovs.flow.kv import ParseError
from ovs.flow.ofp import OFPFlow
from ovs.flow.ofp_act import decode_field

from verifier.errors import SnapshotError
from verifier.header import (
    CT_STATE_BITS,
    ETH_TYPE_IP,
    ETH_TYPE_IPV6,
    FIELDS,
    OFPP_LOCAL,
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
    Provenance,
    PushVlan,
    Resubmit,
    SetField,
    SetVlanPcp,
    SetVlanVid,
    Skipped,
    Unsupported,
)
from verifier.snapshot.fields import SHORTHANDS, canonical_name, view

DEFAULT_PRIORITY = 32768

# Statistics and flags that precede the match; only the first four mean anything.
_INFO_KEYS = {
    "cookie",
    "table",
    "idle_timeout",
    "hard_timeout",
    "duration",
    "n_packets",
    "n_bytes",
    "idle_age",
    "hard_age",
    "importance",
    "send_flow_rem",
    "check_overlap",
    "reset_counts",
    "no_packet_counts",
    "no_byte_counts",
    "n_offload_packets",
    "n_offload_bytes",
    "out_port",
    "out_group",
}
_HEADER = re.compile(r"^\s*(NXST_FLOW|OFPST_FLOW|OFPST_MULTIPART|NXST_FLOW_MONITOR)\b.*reply", re.I)
_TOKEN = re.compile(r'"[^"]*"|[^,\s]+')
_NO_EFFECT = {"note", "set_queue", "pop_queue", "sample", "meter", "fin_timeout", "mod_nw_tos", "mod_nw_ecn"}

PortResolver = Callable[[str], "int | None"]


class FlowSyntaxError(ValueError):
    """A line the flow reader cannot turn into a flow (the caller adds file and line)."""


def is_noise(line: str) -> bool:
    """Blank lines and the ``NXST_FLOW reply`` / ``OFPST_FLOW reply`` headers."""
    return not line.strip() or bool(_HEADER.match(line))


def parse_dump_flows(
    text: str,
    file: str,
    resolve_port: PortResolver,
    *,
    lenient: bool = False,
) -> tuple[list[Flow], list[Skipped]]:
    """Parse a whole ``ovs-ofctl dump-flows`` output.

    Raises SnapshotError naming file, line and text for a line it cannot parse,
    unless ``lenient``; then the line is returned in the skipped list instead.
    """
    flows: list[Flow] = []
    skipped: list[Skipped] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if is_noise(line):
            continue
        try:
            flows.append(parse_flow(line, resolve_port, Provenance(file, number, line.strip())))
        except FlowSyntaxError as exc:
            if not lenient:
                raise SnapshotError(f"{file}:{number}", str(exc), line.strip()) from exc
            skipped.append(Skipped(file, number, line.strip(), str(exc)))
    return flows, skipped


def parse_flow(line: str, resolve_port: PortResolver, provenance: Provenance) -> Flow:
    """Parse one flow line (dump-flows or add-flows layout) into the IR."""
    if "actions=" not in line:
        raise FlowSyntaxError("not a flow: no 'actions='")
    head, _, actions_text = line.strip().partition("actions=")
    info: dict[str, str] = {}
    match_tokens: list[str] = []
    for token in _TOKEN.findall(head):
        key, _eq, value = token.partition("=")
        if key in _INFO_KEYS:
            info[key] = value
        else:
            match_tokens.append(token)
    if not any(t.startswith("priority=") for t in match_tokens):
        match_tokens.insert(0, f"priority={DEFAULT_PRIORITY}")
    try:
        parsed = OFPFlow(f"{','.join(match_tokens)} actions={actions_text.strip()}")
    except (ParseError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FlowSyntaxError(f"cannot parse flow ({_reason(exc)})") from exc
    try:
        priority, match, unsupported = _convert_match(parsed, resolve_port)
        actions = tuple(_convert_actions(parsed, resolve_port))
        return Flow(
            table=_int(info.get("table", "0")),
            priority=priority,
            match=match,
            actions=actions,
            cookie=_int(info.get("cookie", "0").split("/")[0]),
            idle_timeout=_int(info.get("idle_timeout", "0")),
            hard_timeout=_int(info.get("hard_timeout", "0")),
            unsupported_match=unsupported,
            provenance=provenance,
        )
    except FlowSyntaxError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise FlowSyntaxError(f"cannot interpret flow ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(exc)
    if cause is not None and str(cause) and str(cause) not in text:
        text += f": {cause}"
    return text


def _int(text: str) -> int:
    return int(float(text.rstrip("s"))) if "." in text else int(text, 0)


# ---------------------------------------------------------------- match


def _convert_match(parsed: OFPFlow, resolve_port: PortResolver) -> tuple[int, tuple[FieldMatch, ...], tuple[str, ...]]:
    priority = DEFAULT_PRIORITY
    acc: dict[str, tuple[int, int]] = {}
    unsupported: list[str] = []

    def put(name: str, value: int, mask: int) -> None:
        width_max = FIELDS[name].max
        value &= mask & width_max
        mask &= width_max
        if name in acc:
            old_value, old_mask = acc[name]
            if (old_value ^ value) & old_mask & mask:
                raise FlowSyntaxError(f"contradictory matches on {name}")
            value, mask = old_value | value, old_mask | mask
        acc[name] = (value, mask)

    for kv in parsed.match_kv:
        key, value = kv.key, kv.value
        if key == "priority":
            priority = int(value)
        elif key in SHORTHANDS:
            eth_type, proto = SHORTHANDS[key]
            put("eth_type", eth_type, 0xFFFF)
            if proto is not None:
                put("ip_proto", proto, 0xFF)
        elif key in ("eth", "packet_type") and str(value) in ("True", "(0,0)", "(0,0x0)"):
            continue
        elif key == "in_port":
            put("in_port", _port_number(value, resolve_port), 0xFFFF)
        elif key == "dl_vlan":
            vid = int(value)
            if vid == 0xFFFF:
                put("vlan_tci", 0, 0xFFFF)
            else:
                put("vlan_tci", 0x1000 | (vid & 0xFFF), 0x1FFF)
        elif key in ("dl_vlan_pcp", "vlan_pcp"):
            put("vlan_tci", 0x1000 | ((int(value) & 7) << 13), 0xF000)
        elif key == "ct_state":
            put("ct_state", *_ct_state(str(value)))
        else:
            v = view(key)
            if v is None:
                unsupported.append(f"{kv.meta.kstring}={kv.meta.vstring}" if kv.meta else str(key))
                continue
            raw_value, raw_mask = _value_mask(value, v.n_bits)
            put(v.field, raw_value << v.start, raw_mask << v.start)
    match = tuple(FieldMatch(n, val, m) for n, (val, m) in sorted(acc.items()) if m)
    return priority, match, tuple(unsupported)


def _ct_state(text: str) -> tuple[int, int]:
    text = text.strip()
    if text and text[0] in "+-":
        value = mask = 0
        for sign, flag in re.findall(r"([+-])([a-z]+)", text):
            if flag not in CT_STATE_BITS:
                raise FlowSyntaxError(f"unknown ct_state flag {flag!r}")
            bit = CT_STATE_BITS[flag]
            mask |= bit
            if sign == "+":
                value |= bit
        return value, mask
    value_text, _, mask_text = text.partition("/")
    return int(value_text, 0), int(mask_text, 0) if mask_text else 0xFF


def _value_mask(value: Any, n_bits: int) -> tuple[int, int]:
    """An ovs.flow decoded value (int, IntMask, EthMask, IPMask) as (value, mask)."""
    full = (1 << n_bits) - 1
    if isinstance(value, bool):
        raise FlowSyntaxError("field given without a value")
    if isinstance(value, int):
        return value & full, full
    if hasattr(value, "eth"):  # EthMask
        mask = value.mask
        return int(value.eth), full if mask is None else int(mask)
    if hasattr(value, "ip") and hasattr(value, "mask") and not hasattr(value, "fully"):  # IPMask
        return int(value.ip) & int(value.mask), int(value.mask)
    if hasattr(value, "value") and hasattr(value, "mask"):  # IntMask
        return int(value.value), int(value.mask) & full
    if isinstance(value, str):
        text, _, mask_text = value.partition("/")
        return int(text, 0) & full, int(mask_text, 0) if mask_text else full
    raise FlowSyntaxError(f"cannot read value {value!r}")


def _port_number(value: Any, resolve_port: PortResolver) -> int:
    if isinstance(value, int):
        return value
    name = str(value).strip('"')
    if name.upper() == "LOCAL":
        return OFPP_LOCAL
    if re.fullmatch(r"0x[0-9a-fA-F]+|\d+", name):
        return int(name, 0)
    number = resolve_port(name)
    if number is None:
        raise FlowSyntaxError(f"unknown port name {name!r}")
    return number


# ---------------------------------------------------------------- actions


def _raw(kv: Any) -> str:
    meta = kv.meta
    if meta is None:
        return str(kv.key)
    return f"{meta.kstring}{meta.delim}{meta.vstring}{meta.end_delim}".strip(",")


def _convert_actions(parsed: OFPFlow, resolve_port: PortResolver) -> list[Action]:
    # ``drop`` is how OVS prints an empty action list: it is no action at all.
    actions = [_action(kv.key, kv.value, _raw(kv), resolve_port) for kv in parsed.actions_kv if kv.key != "drop"]
    return canonical_actions(actions)


def canonical_actions(actions: list[Action]) -> list[Action]:
    """One IR for what OpenFlow 1.0 and 1.3 dumps spell differently.

    ``push_vlan:0x8100,set_field:<0x1000|vid>->vlan_vid`` is how an OpenFlow 1.3
    dump prints what OpenFlow 1.0 prints as ``mod_vlan_vid:<vid>`` (OVS prints
    each installed flow either way), and ``goto_table:N`` at the end of a list
    is what OpenFlow 1.0 prints as ``resubmit(,N)``.
    """
    out: list[Action] = []
    i = 0
    while i < len(actions):
        a = actions[i]
        nxt = actions[i + 1] if i + 1 < len(actions) else None
        if (
            isinstance(a, PushVlan)
            and a.tpid == 0x8100
            and isinstance(nxt, SetField)
            and nxt.field == "vlan_tci"
            and nxt.mask == 0x1FFF
            and nxt.value & 0x1000
        ):
            out.append(SetVlanVid(nxt.value & 0x0FFF))
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def _nested(items: list[dict[str, Any]], resolve_port: PortResolver) -> tuple[Action, ...]:
    out: list[Action] = []
    for item in items:
        for key, value in item.items():
            # Nested actions have no source text of their own: the writer spells them canonically.
            out.append(_action(key, value, "", resolve_port))
    return tuple(out)


def _slice(spec: dict[str, Any]) -> FieldSlice:
    name = canonical_name(spec["field"])
    v = view(name)
    if v is None:
        raise _Unsupported(f"field {spec['field']}")
    start = spec.get("start")
    end = spec.get("end")
    fs = v.slice(start, end)
    return FieldSlice(fs.field, fs.start, fs.n_bits, spelling=spec["field"])


class _Unsupported(Exception):
    """Raised inside conversion when a construct is valid OVS but not modelled."""


def _action(key: str, value: Any, raw: str, resolve_port: PortResolver) -> Action:
    try:
        return _action_inner(key.lower(), value, raw, resolve_port)
    except _Unsupported:
        return Unsupported(raw or key)


def _action_inner(key: str, value: Any, raw: str, resolve_port: PortResolver) -> Action:
    if key in ("output", "enqueue"):
        port = value["port"] if isinstance(value, dict) else value
        return _output(port, raw, resolve_port)
    if key == "controller":
        max_len = value.get("max_len", 65535) if isinstance(value, dict) else 65535
        return Controller(int(max_len))
    if key == "resubmit":
        if value.get("ct"):
            raise _Unsupported(raw)
        port = value.get("port")
        table = value.get("table")
        return Resubmit(
            None if port in (None, "") else _port_number(port, resolve_port),
            None if table in (None, "") else int(table),
        )
    if key == "goto_table":
        return Resubmit(None, int(value))
    if key == "load":
        dst = _slice(value["dst"])
        if "src" in value:
            return Move(_slice(value["src"]), dst)
        return SetField(dst.field, (int(value["value"]) << dst.start) & dst.mask, dst.mask, spelling=raw)
    if key == "move":
        return Move(_slice(value["src"]), _slice(value["dst"]))
    if key == "set_field":
        dst = _slice(value["dst"])
        ((vname, vvalue),) = value["value"].items()
        if canonical_name(vname) == "dl_vlan":
            raise _Unsupported(raw)
        v, m = _value_mask(vvalue, dst.n_bits)
        return SetField(dst.field, (v << dst.start) & dst.mask, (m << dst.start) & dst.mask, spelling=raw)
    if key == "write_metadata":
        v, m = _value_mask(value, 64)
        return SetField("metadata", v & m, m, spelling=raw)
    if key in ("mod_dl_src", "mod_dl_dst"):
        name = "eth_src" if key == "mod_dl_src" else "eth_dst"
        return SetField(name, int(value.eth), FIELDS[name].max, spelling=raw)
    if key in ("mod_nw_src", "mod_nw_dst"):
        name = "ip_src" if key == "mod_nw_src" else "ip_dst"
        return SetField(name, int(value.ip), 0xFFFFFFFF, frozenset({ETH_TYPE_IP}), spelling=raw)
    if key in ("mod_tp_src", "mod_tp_dst"):
        name = "tp_src" if key == "mod_tp_src" else "tp_dst"
        return SetField(name, int(str(value), 0), 0xFFFF, frozenset({ETH_TYPE_IP, ETH_TYPE_IPV6}), spelling=raw)
    if key == "mod_nw_ttl":
        return SetField("ip_ttl", int(value), 0xFF, frozenset({ETH_TYPE_IP, ETH_TYPE_IPV6}), spelling=raw)
    if key in ("mod_vlan_vid", "set_vlan_vid"):
        return SetVlanVid(int(value) & 0xFFF)
    if key in ("mod_vlan_pcp", "set_vlan_pcp"):
        return SetVlanPcp(int(value) & 7)
    if key in ("strip_vlan", "pop_vlan"):
        return PopVlan()
    if key == "push_vlan":
        return PushVlan(int(str(value), 0))
    if key in ("set_tunnel", "set_tunnel64"):
        return SetField("tun_id", int(str(value), 0), FIELDS["tun_id"].max, spelling=raw)
    if key == "dec_ttl":
        return DecTtl()
    if key == "learn":
        return Learn(_learn(value, raw))
    if key == "ct":
        return _ct(value, raw, resolve_port)
    if key == "ct_clear":
        return CtClear()
    if key == "clone":
        return Clone(_nested(value, resolve_port))
    if key == "exit":
        return Exit()
    if key in _NO_EFFECT:
        return NoOp(raw)
    raise _Unsupported(raw)


def _output(port: Any, raw: str, resolve_port: PortResolver) -> Action:
    if isinstance(port, int):
        return Output(port)
    text = str(port).strip('"')
    upper = text.upper()
    if upper == "IN_PORT":
        return OutputInPort()
    if upper == "NORMAL":
        return Normal()
    if upper == "FLOOD":
        return Flood()
    if upper == "ALL":
        return All()
    if upper == "CONTROLLER":
        return Controller()
    if upper == "LOCAL":
        return Output(OFPP_LOCAL)
    if upper in ("TABLE", "NONE", "ANY"):
        raise _Unsupported(raw)
    if "[" in text:
        return OutputField(_slice(decode_field(text)))
    return Output(_port_number(text, resolve_port))


def _ct(value: dict[str, Any], raw: str, resolve_port: PortResolver) -> Ct:
    if value.get("alg"):
        raise _Unsupported(raw)
    zone_value = value.get("zone", 0)
    zone: int | FieldSlice = _slice(zone_value) if isinstance(zone_value, dict) else int(zone_value)
    nat = value.get("nat")
    nat_text = None
    if nat is not None:
        match = re.search(r"nat(\([^)]*\))?", raw)
        nat_text = match.group(0) if match else "nat"
    return Ct(
        commit=bool(value.get("commit")),
        zone=zone,
        table=int(value["table"]) if "table" in value else None,
        nat=nat_text,
        force=bool(value.get("force")),
        exec_actions=_nested(value.get("exec", []), resolve_port),
    )


_LEARN_SCALARS = {
    "table",
    "priority",
    "idle_timeout",
    "hard_timeout",
    "fin_idle_timeout",
    "fin_hard_timeout",
    "cookie",
}


def _learn(items: list[dict[str, Any]], raw: str) -> LearnSpec:
    scalars: dict[str, int] = {"table": 1, "priority": DEFAULT_PRIORITY}
    matches: list[tuple[FieldSlice, FieldSlice | int]] = []
    loads: list[tuple[FieldSlice, FieldSlice | int]] = []
    outputs: list[FieldSlice] = []
    order: list[str] = []
    for item in items:
        ((key, value),) = item.items()
        if key in _LEARN_SCALARS:
            scalars[key] = int(value)
            order.append(key)
        elif key in ("send_flow_rem", "delete_learned", "limit", "result_dst"):
            if key != "send_flow_rem":
                raise _Unsupported(raw)
        elif key == "load":
            dst = _slice(value["dst"])
            loads.append((dst, _slice(value["src"]) if "src" in value else int(value["value"])))
            order.append("load")
        elif key == "output":
            outputs.append(_slice(decode_field(str(value["port"]))))
            order.append("output")
        else:
            dst = _slice(decode_field(key))
            if isinstance(value, dict) and "field" in value:
                matches.append((dst, _slice(value)))
            else:
                v, _ = _value_mask(value, dst.n_bits)
                matches.append((dst, v))
            order.append("match")
    return LearnSpec(
        table=scalars["table"],
        priority=scalars["priority"],
        matches=tuple(matches),
        loads=tuple(loads),
        outputs=tuple(outputs),
        idle_timeout=scalars.get("idle_timeout", 0),
        hard_timeout=scalars.get("hard_timeout", 0),
        fin_idle_timeout=scalars.get("fin_idle_timeout", 0),
        fin_hard_timeout=scalars.get("fin_hard_timeout", 0),
        cookie=scalars.get("cookie", 0),
        order=tuple(order),
    )


def port_resolver(names: Mapping[str, int]) -> PortResolver:
    """A resolver over a name -> OpenFlow port number mapping."""
    return names.get
