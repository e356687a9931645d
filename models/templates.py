"""Discovering the flows learn() may install in a bridge (see models.learning).

The bridge is run in abstract mode from every port with a packet about which
nothing is known except what the port implies (a tunnel port's packets carry
some key and outer addresses; others carry no tunnel metadata).  Every learn()
executed yields a template; the run repeats with the templates in place until
no new one appears, since a learned flow can itself lead to a learn action.
"""

from __future__ import annotations

from models.learning import LearnedTemplate, template_from
from models.openflow import LearnHook, OpenFlowBridge
from models.tunnel import TUNNEL_TYPES
from verifier import ir
from verifier.header import FIELD_NAMES, FIELDS
from verifier.packet import Context, Mode, PacketState, initial_packet

MAX_ROUNDS = 16


class TemplatesDiverge(Exception):
    """Learned templates did not reach a fixpoint (reported as Unknown by the caller)."""


def discover_templates(
    host: str, bridge: ir.Bridge, classes: dict[int, frozenset[int]] | None = None
) -> tuple[LearnedTemplate, ...]:
    """Every learned-flow template the bridge's learn() actions may produce.

    With port symmetry classes (models.symmetry), only the smallest member of
    a class is run; the templates of the others differ only in the input port
    and are derived from it.
    """
    if not any(isinstance(a, ir.Learn) for f in bridge.flows for a in ir.iter_actions(f.actions)):
        return ()
    classes = classes or {}
    found: dict[object, LearnedTemplate] = {}
    for _ in range(MAX_ROUNDS):
        model = OpenFlowBridge(host, bridge, tuple(found.values()))
        new: dict[object, LearnedTemplate] = {}
        ctx = Context(Mode.ABSTRACT)
        for of_port in bridge.of_ports:
            members = classes.get(of_port.number, frozenset({of_port.number}))
            if of_port.number != min(members):
                continue
            model.learn_hook = _collector(new, of_port.number, members)
            model.transfer(ctx, _arrival(ctx, bridge, of_port))
        if new.keys() <= found.keys():
            return tuple(found[k] for k in sorted(found, key=repr))
        found.update(new)
        if not _learned_tables_lead_to_learn(bridge, {t.table for t in found.values()}):
            return tuple(found[k] for k in sorted(found, key=repr))
    raise TemplatesDiverge(f"learned flows of {bridge.name} on {host} do not converge")


def _collector(sink: dict[object, LearnedTemplate], start: int, members: frozenset[int]) -> LearnHook:
    """A learn hook adding templates to ``sink``; a packet still carrying the run's
    start port stands for every member of its class."""

    def hook(spec: ir.LearnSpec, pkt: PacketState, flow: ir.Flow) -> None:
        whole_class = members if pkt.fields["in_port"] == start and len(members) > 1 else frozenset()
        t = template_from(spec, pkt, flow, whole_class)
        sink.setdefault(t.key(), t)

    return hook


def _learned_tables_lead_to_learn(bridge: ir.Bridge, learned_tables: set[int]) -> bool:
    """Whether a packet can go from a table holding learned flows to a learn() action.

    Learned flows only load fields and output, so the only way on from a
    learned table is through the static flows of the tables it resubmits to.
    When no learn() can be reached that way, templates cannot create new
    templates and one round of discovery is the fixpoint.
    """
    edges: dict[int, set[int]] = {}
    learning: set[int] = set()
    for f in bridge.flows:
        for a in ir.iter_actions(f.actions):
            if isinstance(a, ir.Resubmit):
                edges.setdefault(f.table, set()).add(f.table if a.table is None else a.table)
            elif isinstance(a, ir.Learn):
                learning.add(f.table)
            elif isinstance(a, ir.Ct) and a.table is not None:
                edges.setdefault(f.table, set()).add(a.table)
    seen = set(learned_tables)
    stack = list(learned_tables)
    while stack:
        t = stack.pop()
        if t in learning:
            return True
        for nxt in edges.get(t, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


def _arrival(ctx: Context, bridge: ir.Bridge, of_port: ir.OFPort) -> PacketState:
    iface = bridge.interface(of_port.name)
    symbolic = [n for n in FIELD_NAMES if FIELDS[n].wire]
    if iface is not None and iface.type in TUNNEL_TYPES:
        symbolic += ["tun_id", "tun_src", "tun_dst"]
    return initial_packet(ctx, f"learn.{of_port.name}", {"in_port": of_port.number}, symbolic=symbolic)
