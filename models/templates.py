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


def discover_templates(host: str, bridge: ir.Bridge) -> tuple[LearnedTemplate, ...]:
    """Every learned-flow template the bridge's learn() actions may produce."""
    if not any(isinstance(a, ir.Learn) for f in bridge.flows for a in ir.iter_actions(f.actions)):
        return ()
    found: dict[object, LearnedTemplate] = {}
    for _ in range(MAX_ROUNDS):
        model = OpenFlowBridge(host, bridge, tuple(found.values()))
        new: dict[object, LearnedTemplate] = {}

        def hook(
            spec: ir.LearnSpec, pkt: PacketState, flow: ir.Flow, sink: dict[object, LearnedTemplate] = new
        ) -> None:
            t = template_from(spec, pkt, flow)
            sink.setdefault(t.key(), t)

        model.learn_hook = hook
        ctx = Context(Mode.ABSTRACT)
        for of_port in bridge.of_ports:
            model.transfer(ctx, _arrival(ctx, bridge, of_port))
        if new.keys() <= found.keys():
            return tuple(found[k] for k in sorted(found, key=repr))
        found.update(new)
    raise TemplatesDiverge(f"learned flows of {bridge.name} on {host} do not converge")


def _collector(sink: dict[object, LearnedTemplate]) -> LearnHook:
    def hook(spec: ir.LearnSpec, pkt: PacketState, flow: ir.Flow) -> None:
        t = template_from(spec, pkt, flow)
        sink.setdefault(t.key(), t)

    return hook


def _arrival(ctx: Context, bridge: ir.Bridge, of_port: ir.OFPort) -> PacketState:
    iface = bridge.interface(of_port.name)
    symbolic = [n for n in FIELD_NAMES if FIELDS[n].wire]
    if iface is not None and iface.type in TUNNEL_TYPES:
        symbolic += ["tun_id", "tun_src", "tun_dst"]
    return initial_packet(ctx, f"learn.{of_port.name}", {"in_port": of_port.number}, symbolic=symbolic)
