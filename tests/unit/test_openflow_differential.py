"""The symbolic OpenFlow model against its concrete twin, on generated flow tables and packets.

Three properties:
- on a concrete packet the symbolic model takes one branch, equal to the twin's run;
- on a symbolic packet the branches partition the packets: each concrete packet
  satisfies exactly one branch's path condition, whose emissions, evaluated at
  that packet, are the twin's emissions;
- abstract mode over-approximates: every copy the twin emits is covered by an
  abstract emission on the same port that agrees on every known bit.
"""

from __future__ import annotations

import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.openflow import OpenFlowBridge
from models.openflow_concrete import ConcreteBridge, CResult
from support.strategies import bridges, packets
from verifier import ir
from verifier import symbolic as sy
from verifier.device import Branch
from verifier.header import FIELD_NAMES, FIELDS
from verifier.packet import Context, Mode, PacketState, initial_packet

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SYMBOLIC_FIELDS = [n for n in FIELD_NAMES if FIELDS[n].wire] + ["tun_id"]


def _emissions(result: CResult) -> list[tuple[int, tuple[tuple[str, int], ...]]]:
    return sorted((e.port, tuple(sorted(e.packet.items()))) for e in result.emissions)


def _branch_emissions(branch: Branch, value: dict[str, int] | None = None, model: z3.ModelRef | None = None) -> list:
    out = []
    for em in branch.emissions:
        fields = {}
        for name in FIELD_NAMES:
            v = em.pkt.fields[name]
            if isinstance(v, int):
                fields[name] = v
            else:
                assert model is not None and v.term is not None
                fields[name] = model.eval(v.term, model_completion=True).as_long()
        out.append((em.port, tuple(sorted(fields.items()))))
    return sorted(out)


@SETTINGS
@given(bridge=bridges(), pkt=packets())
def test_concrete_packet_takes_one_branch_equal_to_the_twin(bridge: ir.Bridge, pkt: dict[str, int]) -> None:
    branches = OpenFlowBridge("h", bridge).transfer(Context(Mode.PRECISE), PacketState(dict(pkt)))
    twin = ConcreteBridge(bridge).run(pkt)
    assert len(branches) == 1
    (b,) = branches
    assert bool(b.unknown) == bool(twin.unknown)
    if not b.unknown:
        assert _branch_emissions(b) == _emissions(twin)


@SETTINGS
@given(bridge=bridges(), data=st.data())
def test_symbolic_branches_partition_the_packets(bridge: ir.Bridge, data: st.DataObject) -> None:
    in_port = data.draw(st.sampled_from([p.number for p in bridge.of_ports]))
    ctx = Context(Mode.PRECISE)
    sym = initial_packet(ctx, "p", {"in_port": in_port}, symbolic=SYMBOLIC_FIELDS)
    branches = OpenFlowBridge("h", bridge).transfer(ctx, sym)
    assert ctx.solver is not None
    for pkt in data.draw(st.lists(packets(in_ports=(in_port,)), min_size=1, max_size=4)):
        pins = [
            sym.fields[n].term == pkt[n]  # type: ignore[union-attr]
            for n in SYMBOLIC_FIELDS
            if isinstance(sym.fields[n], sy.Sym)
        ]
        lits = tuple(ctx.solver.literal(p) for p in pins)
        hits = []
        for b in branches:
            model = ctx.solver.model((*b.pkt.pc, *lits))
            if model is not None:
                hits.append((b, model))
        assert len(hits) == 1, f"{len(hits)} branches claim packet {pkt}"
        b, model = hits[0]
        twin = ConcreteBridge(bridge).run(pkt)
        assert bool(b.unknown) == bool(twin.unknown)
        if not b.unknown:
            assert _branch_emissions(b, model=model) == _emissions(twin)


@SETTINGS
@given(bridge=bridges(), pkt=packets())
def test_abstract_mode_covers_every_concrete_copy(bridge: ir.Bridge, pkt: dict[str, int]) -> None:
    ctx = Context(Mode.ABSTRACT)
    sym = initial_packet(ctx, "p", {"in_port": pkt["in_port"]}, symbolic=SYMBOLIC_FIELDS)
    branches = OpenFlowBridge("h", bridge).transfer(ctx, sym)
    twin = ConcreteBridge(bridge).run(pkt)
    if twin.unknown:
        assert any(b.unknown for b in branches)
        return
    for em in twin.emissions:
        assert any(
            e.port == em.port and all(_agrees(e.pkt.fields[n], em.packet[n], n) for n in FIELD_NAMES)
            for b in branches
            for e in b.emissions
        ), f"abstract mode misses the copy on port {em.port}"


def _agrees(v: sy.Value, concrete: int, name: str) -> bool:
    bits, care = sy.known_bits(v, FIELDS[name].width)
    return not (bits ^ concrete) & care
