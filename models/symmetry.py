"""Interchangeable ports of a bridge.

A Neutron br-tun has one GRE port per other host, and every one of them is
treated alike: a ``in_port=<gre> actions=resubmit(,3)`` flow each, and all of
them together in every flood list.  Such ports form a *symmetry class*: any
permutation of the class maps the flow table onto itself, so a packet
arriving on one member behaves exactly as on another, up to renaming the
members.  The abstract exploration and learned-flow discovery then run once
per class instead of once per port, which turns the N^2 tunnel arrivals of a
full mesh into N.

The check is syntactic and deliberately narrow (anything unusual means no
symmetry, which is always sound):
- members share their interface type and options other than remote_ip, their
  OVSDB VLAN configuration and their OpenFlow port flags;
- every flow mentions either exactly one member (a per-port flow: each member
  must have the same number of identical such flows, up to the member), or
  members only in runs of consecutive outputs that list the whole class once;
- no flow mentioning a member has an unsupported construct or a learn().
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from verifier import ir

SELF = -1
ALL = -2


def port_classes(bridge: ir.Bridge) -> dict[int, frozenset[int]]:
    """Each port number in a symmetry class of two or more, mapped to its class."""
    if _copies_in_port(bridge):
        return {}
    out: dict[int, frozenset[int]] = {}
    for group in _candidate_groups(bridge):
        if len(group) >= 2 and _symmetric(bridge, group):
            members = frozenset(group)
            for p in group:
                out[p] = members
    return out


TUNNEL_FIELDS = ("tun_src", "tun_dst")


def reads_tunnel_addresses(bridge: ir.Bridge) -> bool:
    """Whether any flow matches or copies tun_src/tun_dst (when none does, their values never matter)."""
    for f in bridge.flows:
        if any(m.field in TUNNEL_FIELDS for m in f.match):
            return True
        for a in ir.iter_actions(f.actions):
            if isinstance(a, ir.Move) and a.src.field in TUNNEL_FIELDS:
                return True
            if isinstance(a, ir.OutputField) and a.src.field in TUNNEL_FIELDS:
                return True
            if isinstance(a, ir.Learn):
                sources = [src for _, src in (*a.spec.matches, *a.spec.loads) if isinstance(src, ir.FieldSlice)]
                if any(src.field in TUNNEL_FIELDS for src in (*sources, *a.spec.outputs)):
                    return True
    return False


def _copies_in_port(bridge: ir.Bridge) -> bool:
    """Whether some action copies the input port into another field (then nothing is symmetric)."""
    for f in bridge.flows:
        for a in ir.iter_actions(f.actions):
            if isinstance(a, ir.Move) and a.src.field == "in_port":
                return True
            if isinstance(a, ir.Ct) and isinstance(a.zone, ir.FieldSlice) and a.zone.field == "in_port":
                return True
            if isinstance(a, ir.Learn):
                sources = [src for _, src in (*a.spec.matches, *a.spec.loads) if isinstance(src, ir.FieldSlice)]
                if any(src.field == "in_port" for src in sources):
                    return True
    return False


def _candidate_groups(bridge: ir.Bridge) -> list[list[int]]:
    groups: dict[object, list[int]] = {}
    for of_port in bridge.of_ports:
        if of_port.number == ir.LOCAL_PORT:
            continue
        iface = bridge.interface(of_port.name)
        port = bridge.ovsdb_port(of_port.name)
        if iface is None or port is None or len(port.interfaces) != 1 or iface.type == "patch":
            continue
        options = tuple((k, v) for k, v in iface.options if k != "remote_ip")
        key = (iface.type, options, port.tag, port.trunks, port.vlan_mode, tuple(sorted(of_port.config)))
        groups.setdefault(key, []).append(of_port.number)
    return list(groups.values())


def _symmetric(bridge: ir.Bridge, group: list[int]) -> bool:
    members = set(group)
    per_member: dict[int, Counter[object]] = {p: Counter() for p in group}
    for flow in bridge.flows:
        mentioned = _mentions(flow) & members
        if not mentioned:
            continue
        if flow.unsupported or any(isinstance(a, ir.Learn) for a in ir.iter_actions(flow.actions)):
            return False
        if len(mentioned) == 1:
            (p,) = mentioned
            per_member[p][_shape(flow, {p: SELF})] += 1
        elif not _invariant(flow, members):
            return False
    counters = list(per_member.values())
    return all(c == counters[0] for c in counters[1:])


def _invariant(flow: ir.Flow, members: set[int]) -> bool:
    """A flow naming several members is unchanged by permuting them: whole-class output runs only."""
    in_port = flow.match_value("in_port")
    if in_port is not None and in_port.value in members:
        return False
    return _whole_class_runs(flow.actions, members)


def _mentions(flow: ir.Flow) -> set[int]:
    ports: set[int] = set()
    m = flow.match_value("in_port")
    if m is not None:
        ports.add(m.value)
    for a in ir.iter_actions(flow.actions):
        if isinstance(a, ir.Output):
            ports.add(a.port)
        if isinstance(a, ir.Resubmit) and a.port is not None:
            ports.add(a.port)
        if isinstance(a, ir.SetField) and a.field == "in_port":
            ports.add(a.value)
    return ports


def _whole_class_runs(actions: Iterable[ir.Action], members: set[int]) -> bool:
    """Members appear only in runs of consecutive outputs, each run listing the whole class once."""
    run: list[int] = []
    for a in (*actions, None):
        if isinstance(a, ir.Output):
            run.append(a.port)
            continue
        in_run = [p for p in run if p in members]
        if in_run and (len(in_run) != len(set(in_run)) or set(in_run) != members):
            return False
        run = []
        if isinstance(a, (ir.Clone, ir.Ct)):
            return False
        if isinstance(a, ir.Resubmit) and a.port in members:
            return False
        if isinstance(a, ir.SetField) and a.field == "in_port" and a.value in members:
            return False
    return True


def _shape(flow: ir.Flow, rename: dict[int, int]) -> object:
    """The flow with member port numbers replaced (provenance ignored)."""
    match = tuple(("in_port", rename.get(m.value, m.value)) if m.field == "in_port" else m for m in flow.match)
    actions = tuple(_rename_action(a, rename) for a in flow.actions)
    return (flow.table, flow.priority, match, actions, flow.idle_timeout, flow.hard_timeout)


def _rename_action(a: ir.Action, rename: dict[int, int]) -> object:
    if isinstance(a, ir.Output):
        return ("output", rename.get(a.port, a.port))
    if isinstance(a, ir.Resubmit):
        return ("resubmit", rename.get(a.port, a.port) if a.port is not None else None, a.table)
    return a
