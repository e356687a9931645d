"""Known-bits/Z3 values agree with plain integer arithmetic, in abstract and precise mode."""

from __future__ import annotations

import z3
from hypothesis import given
from hypothesis import strategies as st

from verifier import symbolic as sy
from verifier.solver import PathSolver, Sat

W = 16
values = st.integers(0, (1 << W) - 1)


@st.composite
def partial(draw: st.DrawFn) -> tuple[int, int]:
    """(concrete value, mask of bits the symbolic value knows)."""
    return draw(values), draw(values)


def abstract(v: int, care: int) -> sy.Value:
    return sy.make(W, v & care, care, None)


def precise(v: int, care: int, name: str) -> tuple[sy.Value, z3.BitVecRef]:
    var = z3.BitVec(name, W)
    value = sy.make(W, v & care, care, var)
    return value, var


def covers_abstract(result: sy.Value, expected: int) -> bool:
    bits, known = sy.known_bits(result, W)
    return not (bits ^ expected) & known


def holds_in(cond: sy.Cond, pins: list[z3.BoolRef]) -> bool | None:
    """The condition's truth under pinned variables (None: MAYBE)."""
    if cond is sy.MAYBE:
        return None
    if isinstance(cond, bool):
        return cond
    solver = z3.Solver()
    solver.add(*pins)
    solver.add(cond)
    return solver.check() == z3.sat


def eval_value(v: sy.Value, pins: list[z3.BoolRef]) -> int:
    if isinstance(v, int):
        return v
    assert v.term is not None
    solver = z3.Solver()
    solver.add(*pins)
    assert solver.check() == z3.sat
    return solver.model().eval(v.term, model_completion=True).as_long()


@given(a=partial(), value=values, mask=values)
def test_test_agrees(a: tuple[int, int], value: int, mask: int) -> None:
    v, care = a
    value &= mask
    truth = v & mask == value
    r = sy.test(abstract(v, care), value, mask)
    assert r is sy.MAYBE or r is truth
    pv, var = precise(v, care, "x")
    assert holds_in(sy.test(pv, value, mask), [var == v]) is truth


@given(a=partial(), b=partial(), mask=values)
def test_set_bits_agrees(a: tuple[int, int], b: tuple[int, int], mask: int) -> None:
    (va, ca), (vb, cb) = a, b
    truth = (va & ~mask) | (vb & mask)
    assert covers_abstract(sy.set_bits(abstract(va, ca), abstract(vb, cb), mask, W), truth & 0xFFFF)
    pa, xa = precise(va, ca, "a")
    pb, xb = precise(vb, cb, "b")
    assert eval_value(sy.set_bits(pa, pb, mask, W), [xa == va, xb == vb]) == truth & 0xFFFF


@given(a=partial(), start=st.integers(0, 15), n=st.integers(1, 16))
def test_extract_and_deposit_agree(a: tuple[int, int], start: int, n: int) -> None:
    v, care = a
    n = min(n, W - start)
    piece = (v >> start) & ((1 << n) - 1)
    assert covers_abstract(sy.extract(abstract(v, care), start, n, W), piece)
    pv, var = precise(v, care, "x")
    assert eval_value(sy.extract(pv, start, n, W), [var == v]) == piece
    moved = sy.deposit(0, sy.extract(pv, start, n, W), 0, n, W)
    assert eval_value(moved, [var == v]) == piece


@given(a=partial(), low=values, high=values)
def test_in_range_agrees(a: tuple[int, int], low: int, high: int) -> None:
    v, care = a
    truth = low <= v <= high
    r = sy.in_range(abstract(v, care), low, high, W)
    assert r is sy.MAYBE or r is truth
    pv, var = precise(v, care, "x")
    assert holds_in(sy.in_range(pv, low, high, W), [var == v]) is truth


@given(a=partial(), b=partial(), pick=st.booleans())
def test_ite_and_join(a: tuple[int, int], b: tuple[int, int], pick: bool) -> None:
    (va, ca), (vb, cb) = a, b
    joined = sy.join(abstract(va, ca), abstract(vb, cb), W)
    assert covers_abstract(joined, va) and covers_abstract(joined, vb)
    pa, xa = precise(va, ca, "a")
    pb, xb = precise(vb, cb, "b")
    c = z3.Bool("c")
    chosen = sy.ite(c, pa, pb, W)
    assert eval_value(chosen, [xa == va, xb == vb, c == pick]) == (va if pick else vb)


def test_maybe_has_no_truth_value() -> None:
    try:
        bool(sy.MAYBE)
    except TypeError:
        return
    raise AssertionError("MAYBE must not be usable as a bool")


def test_path_solver_caches_and_reports_unknown_apart() -> None:
    solver = PathSolver()
    x = z3.BitVec("x", 8)
    a = solver.literal(x > 5)
    b = solver.literal(x < 3)
    assert solver.check((a,)) is Sat.SAT
    assert solver.check((a, b)) is Sat.UNSAT
    checks = solver.checks
    assert solver.check((b, a)) is Sat.UNSAT and solver.checks == checks
    assert solver.literal(x > 5) is a
