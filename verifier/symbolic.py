"""Field values that are concrete, partly known, or symbolic; and conditions over them.

A value is either a Python ``int`` (every bit known) or a ``Sym``: the bits
under ``care`` are known to equal ``bits``; the rest are unknown.  In *precise*
mode a Sym also carries a Z3 term for the whole value, and conditions on
unknown bits become Z3 formulas.  In *abstract* mode there is no term: a test
on unknown bits answers ``MAYBE``, which the engine treats as "both ways".

The known-bits layer is what keeps the common case cheap: a lookup keyed on a
field the path already fixed (``in_port``, a VLAN pushed by an earlier flow, a
tunnel key) is decided with integer arithmetic, and Z3 is asked only about the
symbolic residue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import z3


@dataclass(frozen=True, slots=True)
class Sym:
    """A partly known ``width``-bit value (see the module docstring)."""

    width: int
    bits: int = 0
    care: int = 0
    term: z3.BitVecRef | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", self.bits & self.care)

    def key(self) -> tuple[int, int, int, int]:
        """A hashable identity (the Z3 term by its id, so equal terms share a key)."""
        return (self.width, self.bits, self.care, -1 if self.term is None else self.term.get_id())


Value: TypeAlias = int | Sym


class _Maybe:
    """The abstract answer "this test may or may not hold"."""

    _instance: _Maybe | None = None

    def __new__(cls) -> _Maybe:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MAYBE"

    def __bool__(self) -> bool:
        raise TypeError("MAYBE has no truth value; compare with `is MAYBE`")


MAYBE = _Maybe()
Cond: TypeAlias = bool | _Maybe | z3.BoolRef


def full(width: int) -> int:
    return (1 << width) - 1


def top(width: int) -> Sym:
    """A value about which nothing is known (abstract mode)."""
    return Sym(width)


def variable(name: str, width: int) -> Sym:
    """A fresh Z3 variable (precise mode)."""
    return Sym(width, term=z3.BitVec(name, width))


def make(width: int, bits: int, care: int, term: z3.BitVecRef | None) -> Value:
    """A value from its parts; fully known values collapse to ``int``."""
    care &= full(width)
    if care == full(width):
        return bits & care
    return Sym(width, bits & care, care, term)


def known_bits(v: Value, width: int) -> tuple[int, int]:
    """(bits, care) of a value."""
    if isinstance(v, int):
        return v, full(width)
    return v.bits, v.care


def is_precise(*values: Value) -> bool:
    """True when some operand carries a Z3 term (precise mode)."""
    return any(isinstance(v, Sym) and v.term is not None for v in values)


def is_abstract(*values: Value) -> bool:
    """True when some operand is symbolic without a term (abstract mode)."""
    return any(isinstance(v, Sym) and v.term is None for v in values)


def as_term(v: Value, width: int) -> z3.BitVecRef:
    """The value as a Z3 term (constants become bit-vector literals)."""
    if isinstance(v, int):
        return z3.BitVecVal(v, width)
    if v.term is None:
        raise ValueError("abstract value has no Z3 term")
    return v.term


# ---------------------------------------------------------------- conditions


def test(v: Value, value: int, mask: int) -> Cond:
    """``v & mask == value``."""
    if isinstance(v, int):
        return v & mask == value
    if (v.bits ^ value) & mask & v.care:
        return False
    if not mask & ~v.care:
        return True
    if v.term is None:
        return MAYBE
    if mask == full(v.width):
        return v.term == value
    return v.term & mask == value


def in_range(v: Value, low: int, high: int, width: int) -> Cond:
    """``low <= v <= high`` (unsigned)."""
    if isinstance(v, int):
        return low <= v <= high
    if low == 0 and high >= full(width):
        return True
    # The smallest and largest values the known bits allow.
    smallest = v.bits
    largest = v.bits | (full(width) & ~v.care)
    if smallest >= low and largest <= high:
        return True
    if largest < low or smallest > high:
        return False
    if v.term is None:
        return MAYBE
    return z3.And(z3.UGE(v.term, low), z3.ULE(v.term, high))


def equal(a: Value, b: Value, width: int, mask: int | None = None) -> Cond:
    """``a & mask == b & mask`` for two values."""
    m = full(width) if mask is None else mask
    if isinstance(b, int):
        return test(a, b & m, m)
    if isinstance(a, int):
        return test(b, a & m, m)
    a_bits, a_care = known_bits(a, width)
    b_bits, b_care = known_bits(b, width)
    both = a_care & b_care & m
    if (a_bits ^ b_bits) & both:
        return False
    if a.term is None or b.term is None:
        return MAYBE
    return as_term(a, width) & m == as_term(b, width) & m


def not_(c: Cond) -> Cond:
    if c is True:
        return False
    if c is False:
        return True
    if c is MAYBE:
        return MAYBE
    assert isinstance(c, z3.BoolRef)
    return z3.Not(c)


def and_(*conds: Cond) -> Cond:
    terms: list[z3.BoolRef] = []
    maybe = False
    for c in conds:
        if c is False:
            return False
        if c is True:
            continue
        if c is MAYBE:
            maybe = True
            continue
        assert isinstance(c, z3.BoolRef)
        terms.append(c)
    if maybe:
        return MAYBE
    if not terms:
        return True
    return terms[0] if len(terms) == 1 else z3.And(*terms)


def or_(*conds: Cond) -> Cond:
    terms: list[z3.BoolRef] = []
    maybe = False
    for c in conds:
        if c is True:
            return True
        if c is False:
            continue
        if c is MAYBE:
            maybe = True
            continue
        assert isinstance(c, z3.BoolRef)
        terms.append(c)
    if maybe:
        return MAYBE
    if not terms:
        return False
    return terms[0] if len(terms) == 1 else z3.Or(*terms)


# ---------------------------------------------------------------- operations


def set_bits(old: Value, new: Value, mask: int, width: int) -> Value:
    """``(old & ~mask) | (new & mask)``."""
    mask &= full(width)
    if isinstance(old, int) and isinstance(new, int):
        return (old & ~mask) | (new & mask)
    ob, oc = known_bits(old, width)
    nb, nc = known_bits(new, width)
    bits = (ob & ~mask) | (nb & mask)
    care = (oc & ~mask) | (nc & mask)
    term = None
    if is_precise(old, new) and care != full(width):
        inv = full(width) & ~mask
        term = (as_term(old, width) & inv) | (as_term(new, width) & mask)
    return make(width, bits, care, term)


def extract(v: Value, start: int, n_bits: int, width: int) -> Value:
    """Bits ``start .. start+n_bits-1`` of a value, as an ``n_bits`` value."""
    m = full(n_bits)
    if isinstance(v, int):
        return (v >> start) & m
    bits = (v.bits >> start) & m
    care = (v.care >> start) & m
    term = None
    if v.term is not None and care != m:
        term = z3.Extract(start + n_bits - 1, start, v.term)
    return make(n_bits, bits, care, term)


def deposit(old: Value, src: Value, start: int, n_bits: int, width: int) -> Value:
    """Write the ``n_bits`` value ``src`` into bits ``start..`` of ``old``."""
    mask = full(n_bits) << start
    if isinstance(src, int):
        return set_bits(old, (src & full(n_bits)) << start, mask, width)
    sb, sc = known_bits(src, n_bits)
    term = None
    if src.term is not None:
        term = z3.ZeroExt(width - n_bits, src.term) << start if width > n_bits else src.term
    shifted = make(width, sb << start, sc << start, term) if term is not None else Sym(width, sb << start, sc << start)
    return set_bits(old, shifted, mask, width)


def ite(cond: Cond, then: Value, other: Value, width: int) -> Value:
    """``then`` if cond holds else ``other``; a MAYBE condition keeps only the bits both agree on."""
    if cond is True:
        return then
    if cond is False:
        return other
    tb, tc = known_bits(then, width)
    ob, oc = known_bits(other, width)
    care = tc & oc & ~(tb ^ ob)
    if cond is MAYBE:
        return make(width, tb, care, None)
    assert isinstance(cond, z3.BoolRef)
    return make(width, tb, care, z3.If(cond, as_term(then, width), as_term(other, width)))


def add(v: Value, delta: int, width: int) -> Value:
    """``v + delta`` modulo 2**width (unknown low bits make the result unknown)."""
    if isinstance(v, int):
        return (v + delta) & full(width)
    term = None if v.term is None else v.term + delta
    return make(width, 0, 0, term) if term is not None else Sym(width)


def join(a: Value, b: Value, width: int) -> Value:
    """The abstract union of two values: the bits on which they agree stay known."""
    return ite(MAYBE, a, b, width)


def value_key(v: Value) -> object:
    """A hashable key for a value (ints as themselves)."""
    return v if isinstance(v, int) else v.key()
