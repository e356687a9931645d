"""The four verdicts, and the concrete evidence a refutation carries.

``Holds`` is a proof (for the stated assumptions); ``Violated`` comes with
counterexamples; ``Unknown`` says what could not be decided (an unsupported
construct, a solver ``unknown``, a missing file) and is never reported as a
pass; ``Vacuous`` means there was nothing to check.  Exit codes: 0 holds,
1 violated, 2 bad input, 3 unknown (vacuous counts as unknown: nothing was
proved).
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_HOLDS = 0
EXIT_VIOLATED = 1
EXIT_BAD_INPUT = 2
EXIT_UNKNOWN = 3


@dataclass(frozen=True)
class TraceHop:
    """One device crossed by a concrete counterexample packet."""

    host: str
    device: str
    in_port: str
    packet: str
    steps: tuple[str, ...]
    rewrites: tuple[str, ...]
    out_port: str | None
    via: str
    replay: str


@dataclass(frozen=True)
class Counterexample:
    """A concrete packet, where it starts, the hop-by-hop path and what happens at the end."""

    title: str
    source: str
    packet: dict[str, int]
    packet_text: str
    hops: tuple[TraceHop, ...]
    outcome: str
    setup: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """A fact worth reporting that does not by itself decide the verdict."""

    kind: str
    text: str


@dataclass(frozen=True)
class Verdict:
    """The answer to one property: ``status`` is holds, violated, unknown or vacuous."""

    prop: str
    status: str
    summary: str
    counterexamples: tuple[Counterexample, ...] = ()
    reasons: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    coverage: tuple[str, ...] = ()
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return {
            "holds": EXIT_HOLDS,
            "violated": EXIT_VIOLATED,
            "unknown": EXIT_UNKNOWN,
            "vacuous": EXIT_UNKNOWN,
        }[self.status]


def combine_exit(verdicts: list[Verdict]) -> int:
    """One exit code for several verdicts: violated beats unknown beats holds."""
    codes = {v.exit_code for v in verdicts}
    for code in (EXIT_VIOLATED, EXIT_UNKNOWN):
        if code in codes:
            return code
    return EXIT_HOLDS
