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
# Guards a solver may hold before it is replaced by an empty one (guards are
# re-added lazily, only for the path conditions checked after).  One solver
# holding every guard of a long search gets slower with each check.
MAX_GUARDS = 1_500


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
        self._timeout_ms = timeout_ms
        self._solver = make_solver(timeout_ms)
        self._counter = itertools.count()
        self._literals: dict[int, z3.BoolRef] = {}
        self._guards: dict[int, z3.BoolRef] = {}
        self._depends: dict[int, tuple[z3.BoolRef, ...]] = {}
        self._loaded: set[int] = set()
        self._cache: dict[frozenset[int], Sat] = {}
        self.checks = 0
        self.resets = 0
        self.unknown_reasons: list[str] = []

    def literal(self, guard: z3.BoolRef, depends: tuple[z3.BoolRef, ...] = ()) -> z3.BoolRef:
        """The literal standing for ``guard`` (one per distinct guard).

        ``depends`` lists the literals of this solver that occur in ``guard``
        (a guard made of other path conditions): they are loaded with it.
        """
        key = guard.get_id()
        lit = self._literals.get(key)
        if lit is None:
            lit = z3.Bool(f"__g{next(self._counter)}")
            self._literals[key] = lit
            self._guards[lit.get_id()] = guard
            if depends:
                self._depends[lit.get_id()] = depends
        return lit

    def _closure(self, literals: tuple[z3.BoolRef, ...]) -> list[z3.BoolRef]:
        """These literals and, transitively, the literals their guards are made of."""
        out: dict[int, z3.BoolRef] = {}
        stack = list(literals)
        while stack:
            lit = stack.pop()
            if lit.get_id() not in out:
                out[lit.get_id()] = lit
                stack.extend(self._depends.get(lit.get_id(), ()))
        return list(out.values())

    def _load(self, literals: tuple[z3.BoolRef, ...]) -> None:
        """Make the solver know ``lit -> guard`` for these literals, starting afresh when it holds too many."""
        needed = self._closure(literals)
        missing = [lit for lit in needed if lit.get_id() not in self._loaded]
        if not missing:
            return
        if len(self._loaded) + len(missing) > MAX_GUARDS:
            self._solver = make_solver(self._timeout_ms)
            self._loaded = set()
            self.resets += 1
            missing = needed
        for lit in missing:
            self._solver.add(z3.Implies(lit, self._guards[lit.get_id()]))
            self._loaded.add(lit.get_id())

    def check(self, literals: tuple[z3.BoolRef, ...]) -> Sat:
        """Is the conjunction of these guards satisfiable?"""
        key = frozenset(lit.get_id() for lit in literals)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        self.checks += 1
        self._load(literals)
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
        self._load(literals)
        if self._solver.check(*literals) != z3.sat:
            return None
        return self._solver.model()
