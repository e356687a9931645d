"""Flows that ``learn()`` may have installed, as templates.

What a learned table holds depends on history.  For "may" questions the sound
model is every entry that some packet able to reach the learn action could
have installed.  A ``LearnedTemplate`` is one such family: the learned flow's
match and actions, with each copied field holding the value (known bits or
unknown) that the learning packet had.  Templates come from exploring the
bridge in abstract mode from every port with arbitrary packets until no new
template appears (models.templates).  A template never counts as certainly
present: lower-priority flows stay possible too.

When the learning packet may have come in on any port of a symmetry class
(models.symmetry), one template stands for the whole class: ``port_class``
lists the members, and the items copied from ``in_port`` (``from_in_port``)
take each member's number in turn (``for_port``).
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
    port_class: frozenset[int] = frozenset()
    from_in_port: frozenset[tuple[str, int]] = frozenset()

    @property
    def match(self) -> tuple[FieldMatch, ...]:
        """The conditions whose value is fully known, as field matches (used to index templates)."""
        out = []
        for s, v in self.conditions:
            if isinstance(v, int):
                out.append(FieldMatch(s.field, (v << s.start) & s.mask, s.mask))
        return tuple(out)

    def key(self) -> tuple[object, ...]:
        return (
            self.table,
            self.priority,
            tuple((s, sy.value_key(v)) for s, v in self.conditions),
            tuple((k, s, sy.value_key(v)) for k, s, v in self.actions),
            id(self.spec),
            self.port_class,
        )

    def __str__(self) -> str:
        return self.describe()

    @property
    def class_in_conditions(self) -> bool:
        """Whether some condition copies the input port (then each member is a different match)."""
        return bool(self.port_class) and any(kind == "cond" for kind, _ in self.from_in_port)

    def for_port(self, port: int) -> LearnedTemplate:
        """The template as learned from a packet that came in on ``port`` (a member of the class)."""
        conditions = tuple(
            (s, port if ("cond", i) in self.from_in_port else v) for i, (s, v) in enumerate(self.conditions)
        )
        actions = tuple(
            (k, s, port if ("action", i) in self.from_in_port else v) for i, (k, s, v) in enumerate(self.actions)
        )
        return LearnedTemplate(self.table, self.priority, conditions, actions, self.source, self.spec)

    def describe(self) -> str:
        parts = [f"table={self.table}", f"priority={self.priority}"]
        for s, v in self.conditions:
            parts.append(f"{s.field}[{s.start}..{s.start + s.n_bits - 1}]={_show(v)}")
        acts = []
        for i, (kind, dst, v) in enumerate(self.actions):
            shown = _show(v)
            if ("action", i) in self.from_in_port and self.port_class:
                shown = "one of " + ",".join(map(str, sorted(self.port_class)))
            if kind == "output" or dst is None:
                acts.append(f"output:{shown}")
            else:
                acts.append(f"load:{shown}->{dst.field}[{dst.start}..{dst.start + dst.n_bits - 1}]")
        return ",".join(parts) + " actions=" + ",".join(acts)


def _show(v: sy.Value) -> str:
    if isinstance(v, int):
        return hex(v)
    return "?" if not v.care else f"{v.bits:#x}/{v.care:#x}"


def _read(pkt: PacketState, s: FieldSlice) -> sy.Value:
    return sy.extract(pkt.fields[s.field], s.start, s.n_bits, FIELDS[s.field].width)


def template_from(
    spec: LearnSpec, pkt: PacketState, source: Flow, port_class: frozenset[int] = frozenset()
) -> LearnedTemplate:
    """The flow ``spec`` installs when executed on ``pkt`` (which came in on any of ``port_class``, if given)."""
    conditions = []
    from_in_port: set[tuple[str, int]] = set()
    for i, (dst, src) in enumerate(spec.matches):
        value = src if isinstance(src, int) else _read(pkt, src)
        if isinstance(src, FieldSlice) and src.field == "in_port":
            from_in_port.add(("cond", i))
        conditions.append((dst, value))
    actions_out: list[tuple[str, FieldSlice | None, sy.Value]] = []
    loads = iter(spec.loads)
    outputs = iter(spec.outputs)
    order = [k for k in spec.order if k in ("load", "output")] or (
        ["load"] * len(spec.loads) + ["output"] * len(spec.outputs)
    )
    for i, kind in enumerate(order):
        if kind == "load":
            load_dst, load_src = next(loads)
            value = load_src if isinstance(load_src, int) else _read(pkt, load_src)
            if isinstance(load_src, FieldSlice) and load_src.field == "in_port":
                from_in_port.add(("action", i))
            actions_out.append(("load", load_dst, value))
        else:
            out_src = next(outputs)
            if out_src.field == "in_port":
                from_in_port.add(("action", i))
            actions_out.append(("output", None, _read(pkt, out_src)))
    if not port_class or not from_in_port:
        port_class = frozenset()
    return LearnedTemplate(
        spec.table,
        spec.priority,
        tuple(conditions),
        tuple(actions_out),
        source,
        spec,
        port_class,
        frozenset(from_in_port) if port_class else frozenset(),
    )


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
    return LearnedTemplate(t.table, t.priority, conditions, actions, t.source, t.spec, t.port_class, t.from_in_port)


def condition(pkt: PacketState, t: LearnedTemplate) -> sy.Cond:
    """The packet matches the learned flow."""
    conds = [sy.equal(_read(pkt, s), v, s.n_bits) for s, v in t.conditions]
    return sy.and_(*conds)
