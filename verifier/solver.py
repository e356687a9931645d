"""The one place that makes Z3 solvers.

A ``PathSolver`` decides path conditions.  Each guard the engine assumes gets a
fresh Boolean literal ``b`` with ``b -> guard`` added once; a path condition is
then just the tuple of its literals, checked with ``check(*literals)``.  Paths
can be explored in any order without push/pop, and results are cached per
path condition.  The random seed is pinned and every check has a timeout, so
answers are repeatable; ``unknown`` is its own answer, never "unsat".
"""

from __future__ import annotations

import enum
import itertools

import z3

DEFAULT_TIMEOUT_MS = 20_000
SEED = 0


class Sat(enum.Enum):
    """A solver answer."""

    SAT = "sat"
    UNSAT = "unsat"
    UNKNOWN = "unknown"


def make_solver(timeout_ms: int = DEFAULT_TIMEOUT_MS) -> z3.Solver:
    """A Z3 solver with the project's pinned seed and timeout."""
    solver = z3.Solver()
    solver.set("random_seed", SEED)
    solver.set("timeout", timeout_ms)
    return solver


class PathSolver:
    """Decides conjunctions of guards, named by assumption literals."""

    def __init__(self, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
        self._solver = make_solver(timeout_ms)
        self._counter = itertools.count()
        self._literals: dict[int, z3.BoolRef] = {}
        self._cache: dict[frozenset[int], Sat] = {}
        self.checks = 0
        self.unknown_reasons: list[str] = []

    def literal(self, guard: z3.BoolRef) -> z3.BoolRef:
        """The literal standing for ``guard`` (one per distinct guard)."""
        key = guard.get_id()
        lit = self._literals.get(key)
        if lit is None:
            lit = z3.Bool(f"__g{next(self._counter)}")
            self._solver.add(z3.Implies(lit, guard))
            self._literals[key] = lit
        return lit

    def check(self, literals: tuple[z3.BoolRef, ...]) -> Sat:
        """Is the conjunction of these guards satisfiable?"""
        key = frozenset(lit.get_id() for lit in literals)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        self.checks += 1
        answer = self._solver.check(*literals)
        if answer == z3.sat:
            result = Sat.SAT
        elif answer == z3.unsat:
            result = Sat.UNSAT
        else:
            result = Sat.UNKNOWN
            self.unknown_reasons.append(self._solver.reason_unknown())
        self._cache[key] = result
        return result

    def model(self, literals: tuple[z3.BoolRef, ...]) -> z3.ModelRef | None:
        """A model of the guards, or None when they are not (known to be) satisfiable."""
        if self._solver.check(*literals) != z3.sat:
            return None
        return self._solver.model()
