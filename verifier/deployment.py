"""A deployment to verify: the dataplane IR plus, when known, the Neutron view.

Two ways in, one result: ``load_snapshot`` parses a snapshot directory;
``load_example`` renders a built-in example's neutron.json as the Neutron
agents would program it (the same path as ``verify render``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from verifier import ir
from verifier.errors import InputError
from verifier.neutron.model import Neutron, parse_neutron
from verifier.snapshot.reader import read_snapshot


@dataclass(frozen=True)
class Deployment:
    """What the properties check.

    ``flows_missing`` lists (host, bridge) pairs whose dump-flows file is
    absent (their behaviour is unknown); ``notes`` and ``skipped`` carry what
    the reader wants the user to know.
    """

    name: str
    dataplane: ir.Dataplane
    neutron: Neutron | None
    notes: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    skipped: tuple[ir.Skipped, ...] = ()
    flows_missing: frozenset[tuple[str, str]] = frozenset()
    rendered: bool = False


def load_snapshot(path: str | os.PathLike[str], *, lenient: bool = False) -> Deployment:
    """Read a snapshot directory (see spec/snapshot.md)."""
    snap = read_snapshot(path, lenient=lenient)
    neutron = None
    if snap.neutron_json is not None:
        neutron = parse_neutron(snap.neutron_json, os.path.join(str(path), "neutron.json"))
    flows_missing = frozenset(
        (h.name, b.name) for h in snap.dataplane.hosts for b in h.bridges if snap.flows_missing(h.name, b.name)
    )
    return Deployment(
        name=str(path),
        dataplane=snap.dataplane,
        neutron=neutron,
        notes=snap.notes,
        missing=snap.missing,
        skipped=snap.skipped,
        flows_missing=flows_missing,
    )


def load_example(name: str) -> Deployment:
    """Render a built-in example (its neutron.json as the current Neutron agents program it)."""
    from verifier.examples import example_names, load_example_json
    from verifier.neutron.render_ovs import render_dataplane

    if name not in example_names():
        raise InputError("--example", f"no built-in example {name!r} (known: {', '.join(example_names())})")
    neutron = parse_neutron(load_example_json(name), f"example {name}/neutron.json")
    return Deployment(name=f"example {name}", dataplane=render_dataplane(neutron), neutron=neutron, rendered=True)
