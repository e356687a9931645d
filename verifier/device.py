"""What a device model returns, and what the engine composes.

A device (an OVS bridge today; routers and firewalls later) takes a packet
that arrived on one of its ports and returns ``Branch``es: disjoint ways it may
handle the packet, each with the copies it emits (``Emission``) and the steps
(``Step``) that explain them.  Links between devices are the topology's job,
not the device's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from verifier import ir
from verifier import symbolic as sy
from verifier.packet import Context, PacketState


@dataclass(frozen=True)
class Step:
    """One thing a device did: a flow matched, a learned entry matched, a miss, or a note.

    ``excluded`` are higher-priority flows the packet was assumed not to
    match; ``choices`` are symbolic values the step introduced (a conntrack
    state after ct(), say), which a counterexample must pin down to replay;
    ``payload`` is the model's own record of the step (a learned entry).
    """

    host: str
    device: str
    table: int | None
    kind: str
    flow: ir.Flow | None = None
    learned: str = ""
    note: str = ""
    excluded: tuple[ir.Flow, ...] = ()
    choices: tuple[tuple[str, sy.Value], ...] = ()
    payload: object = field(default=None, compare=False)

    def describe(self) -> str:
        where = f"{self.host} {self.device}"
        if self.kind == "match" and self.flow is not None:
            return f"{where} table {self.table} priority {self.flow.priority} ({self.flow.provenance})"
        if self.kind == "learned":
            return f"{where} table {self.table}: a learned entry {self.learned or self.payload}"
        if self.kind == "miss":
            return f"{where} table {self.table}: no flow matches (table miss)"
        return f"{where}: {self.note}"


@dataclass(frozen=True)
class Emission:
    """A copy of the packet leaving the device on port number ``port``.

    ``alternatives`` is set when several ways through the device were joined
    into this one copy (engine.merge_branches): each is (the assumption
    literals that select it, its steps); ``steps`` are the first one's.
    """

    port: int
    pkt: PacketState
    steps: tuple[Step, ...]
    alternatives: tuple[tuple[tuple[object, ...], tuple[Step, ...]], ...] = ()


@dataclass(frozen=True)
class Branch:
    """One way a device handles a packet.

    ``pkt`` carries the branch's path condition; ``ends`` are the steps where
    copies stopped without output; ``unknown`` names constructs the models do
    not know (reaching one makes a verdict Unknown).
    """

    pkt: PacketState
    emissions: tuple[Emission, ...]
    steps: tuple[Step, ...]
    ends: tuple[Step, ...]
    unknown: tuple[str, ...]


class Device(Protocol):
    """A device model: a symbolic transfer function over packets arriving on a port."""

    host: str
    name: str

    def transfer(self, ctx: Context, pkt: PacketState) -> list[Branch]: ...

    def port_name(self, number: int) -> str: ...
