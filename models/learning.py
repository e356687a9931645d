"""Flows that ``learn()`` may have installed, as templates.

What a learned table holds depends on history.  For "may" questions the sound
model is every entry that some packet able to reach the learn action could
have installed.  A ``LearnedTemplate`` is one such family: the learned flow's
match and actions, with each copied field holding the value (known bits or
unknown) that the learning packet had.  Templates come from exploring the
bridge in abstract mode from every port with arbitrary packets until no new
template appears (``discover``, in models.openflow).  A template never counts
as certainly present: lower-priority flows stay possible too.
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier import symbolic as sy
from verifier.header import FIELDS
from verifier.ir import FieldMatch, FieldSlice, Flow, LearnSpec
from verifier.packet import Context, PacketState


@dataclass(frozen=True)
class LearnedTemplate:
    """A family of flows one learn() action may have installed."""

    table: int
    priority: int
    conditions: tuple[tuple[FieldSlice, sy.Value], ...]
    actions: tuple[tuple[str, FieldSlice | None, sy.Value], ...]
    source: Flow
    spec: LearnSpec

    @property
    def match(self) -> tuple[FieldMatch, ...]:
        return ()

    def key(self) -> tuple[object, ...]:
        return (
            self.table,
            self.priority,
            tuple((s, sy.value_key(v)) for s, v in self.conditions),
            tuple((k, s, sy.value_key(v)) for k, s, v in self.actions),
            id(self.spec),
        )

    def describe(self) -> str:
        parts = [f"table={self.table}", f"priority={self.priority}"]
        for s, v in self.conditions:
            parts.append(f"{s.field}[{s.start}..{s.start + s.n_bits - 1}]={_show(v)}")
        acts = []
        for kind, dst, v in self.actions:
            if kind == "output" or dst is None:
                acts.append(f"output:{_show(v)}")
            else:
                acts.append(f"load:{_show(v)}->{dst.field}[{dst.start}..{dst.start + dst.n_bits - 1}]")
        return ",".join(parts) + " actions=" + ",".join(acts)


def _show(v: sy.Value) -> str:
    if isinstance(v, int):
        return hex(v)
    return "?" if not v.care else f"{v.bits:#x}/{v.care:#x}"


def _read(pkt: PacketState, s: FieldSlice) -> sy.Value:
    return sy.extract(pkt.fields[s.field], s.start, s.n_bits, FIELDS[s.field].width)


def template_from(spec: LearnSpec, pkt: PacketState, source: Flow) -> LearnedTemplate:
    """The flow ``spec`` installs when executed on ``pkt``."""
    conditions = []
    for dst, src in spec.matches:
        value = src if isinstance(src, int) else _read(pkt, src)
        conditions.append((dst, value))
    actions_out: list[tuple[str, FieldSlice | None, sy.Value]] = []
    loads = iter(spec.loads)
    outputs = iter(spec.outputs)
    order = [k for k in spec.order if k in ("load", "output")] or (
        ["load"] * len(spec.loads) + ["output"] * len(spec.outputs)
    )
    for kind in order:
        if kind == "load":
            load_dst, load_src = next(loads)
            value = load_src if isinstance(load_src, int) else _read(pkt, load_src)
            actions_out.append(("load", load_dst, value))
        else:
            actions_out.append(("output", None, _read(pkt, next(outputs))))
    return LearnedTemplate(spec.table, spec.priority, tuple(conditions), tuple(actions_out), source, spec)


def instantiate(ctx: Context, t: LearnedTemplate) -> LearnedTemplate:
    """In precise mode, give the template's unknown bits fresh variables (one learned entry)."""
    if not ctx.precise:
        return t

    def concrete(v: sy.Value, width: int) -> sy.Value:
        if isinstance(v, int) or v.term is not None:
            return v
        fresh = ctx.fresh("learned", width)
        return sy.set_bits(fresh, v.bits, v.care, width)

    conditions = tuple((s, concrete(v, s.n_bits)) for s, v in t.conditions)
    actions = tuple((k, s, concrete(v, s.n_bits if s is not None else 16)) for k, s, v in t.actions)
    return LearnedTemplate(t.table, t.priority, conditions, actions, t.source, t.spec)


def condition(pkt: PacketState, t: LearnedTemplate) -> sy.Cond:
    """The packet matches the learned flow."""
    conds = [sy.equal(_read(pkt, s), v, s.n_bits) for s, v in t.conditions]
    return sy.and_(*conds)
