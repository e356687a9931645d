"""Small, explicit edits of a rendered dataplane, for scenario tests at the IR level."""

from __future__ import annotations

import dataclasses

from verifier import ir
from verifier.ir import Provenance
from verifier.snapshot.flows import parse_flow


def edit_bridge(dp: ir.Dataplane, host: str, bridge: str, **changes: object) -> ir.Dataplane:
    """The dataplane with one bridge's attributes replaced."""
    hosts = []
    for h in dp.hosts:
        if h.name == host:
            bridges = tuple(dataclasses.replace(b, **changes) if b.name == bridge else b for b in h.bridges)  # type: ignore[arg-type]
            h = dataclasses.replace(h, bridges=bridges)
        hosts.append(h)
    return ir.Dataplane(tuple(hosts))


def bridge_of(dp: ir.Dataplane, host: str, bridge: str) -> ir.Bridge:
    h = dp.host(host)
    assert h is not None
    b = h.bridge(bridge)
    assert b is not None
    return b


def set_tag(dp: ir.Dataplane, host: str, bridge: str, port: str, tag: int | None) -> ir.Dataplane:
    """Set the OVSDB tag of one port (as ``ovs-vsctl set port <port> tag=<tag>``)."""
    b = bridge_of(dp, host, bridge)
    ports = tuple(dataclasses.replace(p, tag=tag) if p.name == port else p for p in b.ports)
    return edit_bridge(dp, host, bridge, ports=ports)


def replace_flows(dp: ir.Dataplane, host: str, bridge: str, remove: str, add: list[str]) -> ir.Dataplane:
    """Drop the flows whose match text contains ``remove`` (in ``table=N,...`` form) and add new ones."""
    from verifier.snapshot.flow_writer import format_match

    b = bridge_of(dp, host, bridge)
    names = {p.name: p.number for p in b.of_ports}
    kept = tuple(f for f in b.flows if not (remove and remove in f"table={f.table},{format_match(f)}"))
    new = tuple(parse_flow(text, names.get, Provenance("scenario", i + 1, text)) for i, text in enumerate(add))
    return edit_bridge(dp, host, bridge, flows=kept + new)


def lvid(dp: ir.Dataplane, host: str, device: str) -> int:
    """The local VLAN (OVSDB tag) of a br-int device."""
    port = bridge_of(dp, host, "br-int").ovsdb_port(device)
    assert port is not None and port.tag is not None
    return port.tag


def ovs_only(dp: ir.Dataplane) -> ir.Dataplane:
    """The dataplane as a snapshot with only the OVS files has it: no namespaces, qbr bridges or iptables.

    Router and DHCP namespaces are then endpoints, and VM ports end at their qvo devices.
    """
    hosts = tuple(
        dataclasses.replace(h, links=(), routes=None, netfilter=None, namespaces=(), linux_bridges=None)
        for h in dp.hosts
    )
    return ir.Dataplane(hosts)
