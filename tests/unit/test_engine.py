"""The engine: the abstract graph over-approximates precise exploration; loops and ends are reported."""

from __future__ import annotations

import dataclasses

import pytest

from models.build import build_network
from properties.common import source_packet
from support.mutate import ovs_only, replace_flows
from verifier.deployment import Deployment, load_example
from verifier.engine import AbstractGraph, BudgetExhausted, explore, outcome_key
from verifier.packet import Context, Mode
from verifier.topology import Delivered, Dropped, Location, Looped


@pytest.fixture(scope="module")
def seed() -> Deployment:
    """The example's OVS side only: these tests walk every path exhaustively, which the
    Linux side (routers looping packets back with a smaller TTL) makes too many to enumerate."""
    d = load_example("seed-gre")
    return dataclasses.replace(d, dataplane=ovs_only(d.dataplane))


def vm_sources(d: Deployment) -> list:  # type: ignore[type-arg]
    net = build_network(d)
    return [e for e in net.endpoints.values() if e.kind == "vm"]


def test_abstract_reach_contains_every_precise_outcome(seed: Deployment) -> None:
    net = build_network(seed)
    graph = AbstractGraph(net)
    for src in [e for e in net.endpoints.values() if e.kind == "vm"]:
        loc = Location(src.host, src.bridge)
        node = graph.node(loc, source_packet(graph.ctx, src.port, prefix="a"))
        abstract = {outcome_key(o) for o in graph.outcomes_of(graph.reach(node))}
        ctx = Context(Mode.PRECISE)
        paths = explore(net, ctx, loc, source_packet(ctx, src.port, prefix="p"))
        delivered = {outcome_key(p.outcome) for p in paths if isinstance(p.outcome, Delivered)}
        assert delivered, src
        assert delivered <= abstract, (src, delivered - abstract)
        # On the healthy example the over-approximation is exact for deliveries.
        assert delivered == {k for k in abstract if k[0] == "delivered"}


def test_every_path_has_an_outcome_and_drops_name_their_rule(seed: Deployment) -> None:
    net = build_network(seed)
    src = next(e for e in net.endpoints.values() if e.device == "qvo6a2f8d4c-0b")
    ctx = Context(Mode.PRECISE)
    paths = explore(net, ctx, Location(src.host, src.bridge), source_packet(ctx, src.port, prefix="p"))
    drops = [p for p in paths if isinstance(p.outcome, Dropped)]
    assert drops
    reasons = {p.outcome.reason for p in drops}  # type: ignore[union-attr]
    assert any("table 25: no flow matches" in r for r in reasons)  # spoofed source MAC
    assert any("NORMAL: VLAN" in r for r in reasons)  # a tagged frame on the access port
    for p in paths:
        assert p.hops and p.hops[0].location == Location("compute1", "br-int")


def test_a_flood_loop_between_hosts_is_reported(seed: Deployment) -> None:
    """Each br-tun sends everything on to the next host (compute1 -> compute2 -> network -> compute1):
    a loop, found as such (sending straight back would not loop: OVS skips output to the input port)."""
    dp = seed.dataplane
    for host, port in (("compute1", "gre-0a0a0a0d"), ("compute2", "gre-0a0a0a0b"), ("network", "gre-0a0a0a0c")):
        dp = replace_flows(
            dp, host, "br-tun", "table=0,priority=1,in_port=", [f"table=0,priority=5 actions=output:{port}"]
        )
    d = dataclasses.replace(seed, dataplane=dp)
    net = build_network(d)
    src = next(e for e in net.endpoints.values() if e.device == "qvo6a2f8d4c-0b")
    ctx = Context(Mode.PRECISE)
    pkt = source_packet(ctx, src.port, prefix="p", fixed={"eth_dst": 0xFFFFFFFFFFFF, "eth_src": 0xFA163E196562})
    paths = explore(net, ctx, Location(src.host, src.bridge), pkt)
    assert any(isinstance(p.outcome, Looped) for p in paths)


def test_stop_ends_the_walk_early(seed: Deployment) -> None:
    net = build_network(seed)
    src = next(e for e in net.endpoints.values() if e.device == "qvo6a2f8d4c-0b")
    ctx = Context(Mode.PRECISE)
    pkt = source_packet(ctx, src.port, prefix="p")
    everything = explore(net, ctx, Location(src.host, src.bridge), pkt)
    first = explore(net, ctx, Location(src.host, src.bridge), pkt, stop=lambda p: isinstance(p.outcome, Delivered))
    assert len(first) < len(everything)
    assert isinstance(first[-1].outcome, Delivered) or any(isinstance(p.outcome, Delivered) for p in first)


def test_a_walk_that_runs_out_of_budget_ends_undecided() -> None:
    """The full example (routers and firewalls included) with a tiny budget: the walk stops, and says so."""
    net = build_network(load_example("seed-gre"))
    src = next(e for e in net.endpoints.values() if e.device == "tap6a2f8d4c-0b")
    ctx = Context(Mode.PRECISE)
    paths = explore(net, ctx, Location(src.host, src.bridge), source_packet(ctx, src.port, prefix="p"), max_states=5)
    assert isinstance(paths[-1].outcome, BudgetExhausted)
    assert "stopped after 5 states" in paths[-1].outcome.reason
