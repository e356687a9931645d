"""parse(render(x)) == x: rendered intent, written as snapshot text, reads back as the same IR.

The only thing the text cannot carry is an OVSDB port's vlan_mode, which
``ovs-vsctl show`` never prints (ports read back with vlan_mode None and are
then read both as access and trunk); the comparison drops it and orders flows
as a dump does (by table, then priority).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

from bench.region import region
from support.neutron_data import deployments
from verifier import ir
from verifier.examples import load_example_json
from verifier.neutron.model import parse_neutron
from verifier.neutron.render_ovs import render_dataplane
from verifier.snapshot.reader import read_snapshot
from verifier.snapshot.writer import write_snapshot


def comparable(dp: ir.Dataplane) -> ir.Dataplane:
    hosts = []
    for h in dp.hosts:
        bridges = []
        for b in sorted(h.bridges, key=lambda b: b.name):
            ports = tuple(dataclasses.replace(p, vlan_mode=None) for p in b.ports)
            flows = tuple(sorted(b.flows, key=lambda f: (f.table, -f.priority, repr(f))))
            bridges.append(dataclasses.replace(b, ports=ports, flows=flows))
        hosts.append(dataclasses.replace(h, bridges=tuple(bridges)))
    return ir.Dataplane(tuple(sorted(hosts, key=lambda h: h.name)))


def roundtrip(obj: dict[str, Any], tmp: Path) -> tuple[ir.Dataplane, ir.Dataplane]:
    dp = render_dataplane(parse_neutron(obj, "x.json"))
    write_snapshot(tmp, dp, obj)
    snap = read_snapshot(tmp)
    assert snap.skipped == ()
    assert snap.neutron_json == obj
    return comparable(dp), comparable(snap.dataplane)


def test_seed_gre_roundtrip(tmp_path: Path) -> None:
    rendered, parsed = roundtrip(load_example_json("seed-gre"), tmp_path / "snap")
    assert parsed == rendered


def test_region_roundtrip(tmp_path: Path) -> None:
    rendered, parsed = roundtrip(region(6, 6), tmp_path / "snap")
    assert parsed == rendered


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(obj=deployments())
def test_random_deployments_roundtrip(tmp_path: Path, obj: dict[str, Any]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        rendered, parsed = roundtrip(obj, Path(tmp) / "snap")
        assert parsed == rendered
