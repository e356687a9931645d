"""Verdicts as text for people and as JSON for machines.

The JSON layout is versioned (``SCHEMA``/``SCHEMA_VERSION``) and documented in
docs/json-schema.md; fields are only ever added within a version.  The text is
deterministic, so golden tests compare it exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from verifier.header import FIELDS, normalize
from verifier.verdict import Counterexample, Verdict, combine_exit

SCHEMA = "neutron-verifier/verdicts"
SCHEMA_VERSION = 1

_STATUS = {"holds": "HOLDS", "violated": "VIOLATED", "unknown": "UNKNOWN", "vacuous": "VACUOUS"}


def render_text(deployment: str, verdicts: Sequence[Verdict], *, verbose: bool = False) -> str:
    """The human report: one block per verdict, counterexamples hop by hop."""
    lines = [f"deployment: {deployment}"]
    for v in verdicts:
        lines.append("")
        lines.append(f"{v.prop}: {_STATUS[v.status]}: {v.summary}")
        for reason in v.reasons:
            lines.append(f"  undecided: {reason}")
        for i, example in enumerate(v.counterexamples, start=1):
            lines.extend(_example(i, example))
        for finding in v.findings:
            lines.append(f"  {finding.kind}: {finding.text}")
        if v.assumptions:
            lines.append("  assumptions:")
            lines.extend(f"    - {a}" for a in v.assumptions)
        if v.coverage:
            lines.append("  coverage:")
            lines.extend(f"    - {c}" for c in v.coverage)
        if verbose and v.stats:
            stats = ", ".join(f"{k}={v.stats[k]}" for k in sorted(v.stats))
            lines.append(f"  stats: {stats}")
    lines.append("")
    lines.append(f"exit code {combine_exit(list(verdicts))}")
    return "\n".join(lines) + "\n"


def _example(i: int, ex: Counterexample) -> list[str]:
    out = [f"  counterexample {i}: {ex.title}", f"    packet: {ex.packet_text}"]
    for a in ex.assumptions:
        out.append(f"    assuming {a}")
    out.append("    path:")
    for n, hop in enumerate(ex.hops, start=1):
        out.append(f"      {n}. {hop.host} {hop.device} (in: {hop.in_port})")
        for step in hop.steps:
            out.append(f"           {step}")
        for rewrite in hop.rewrites:
            out.append(f"           rewrite {rewrite}")
        if hop.out_port is not None:
            via = f" via {hop.via}" if hop.via else ""
            out.append(f"           out: {hop.out_port}{via}")
        out.append(f"           replay: {hop.replay}")
    for cmd in ex.setup:
        out.append(f"    replay setup: {cmd}")
    out.append(f"    outcome: {ex.outcome}")
    return out


def packet_json(packet: dict[str, int]) -> dict[str, str]:
    """A packet as {field: value as Open vSwitch prints it}, fields it lacks left out."""
    pkt = normalize(packet)
    out = {}
    for name, value in pkt.items():
        f = FIELDS[name]
        if f.bookkeeping or (not f.wire and value == 0) or (f.prereq is not None and not f.prereq.holds(pkt)):
            continue
        out[name] = f.format(value)
    return out


def render_json(deployment: str, verdicts: Sequence[Verdict]) -> str:
    """The machine report (schema ``neutron-verifier/verdicts`` version 1)."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "deployment": deployment,
        "exit_code": combine_exit(list(verdicts)),
        "verdicts": [_verdict_json(v) for v in verdicts],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _verdict_json(v: Verdict) -> dict[str, Any]:
    return {
        "property": v.prop,
        "status": v.status,
        "exit_code": v.exit_code,
        "summary": v.summary,
        "reasons": list(v.reasons),
        "assumptions": list(v.assumptions),
        "coverage": list(v.coverage),
        "findings": [asdict(f) for f in v.findings],
        "stats": dict(v.stats),
        "counterexamples": [_example_json(e) for e in v.counterexamples],
    }


def _example_json(e: Counterexample) -> dict[str, Any]:
    return {
        "title": e.title,
        "source": e.source,
        "packet": packet_json(e.packet),
        "packet_text": e.packet_text,
        "outcome": e.outcome,
        "setup": list(e.setup),
        "assumptions": list(e.assumptions),
        "hops": [asdict(h) for h in e.hops],
    }
