"""Neutron intent -> the dataplane IR, as the Neutron OVS agent (release in ``constants``) programs it.

For each host with an Open vSwitch agent or an OVS-bound port: br-int, br-tun
(when the agent has tunnel types) and one bridge per ``bridge_mappings`` entry,
with OVSDB ports, OpenFlow port numbers and MACs, and the flows of
``neutron-dataplane.md``; plus the tunnel endpoint address and the Linux side
(hybrid-plug devices, qbr bridges, the iptables firewall, qrouter-/qdhcp-
namespaces: ``verifier.neutron.render_linux``).  What the API does
not say (local VLAN ids, port numbers, MACs, NIC names, the cookie) is chosen
deterministically: see ``verifier.neutron.render_plan``.  Every flow's
provenance is ``render:neutron <release>`` with the Neutron object id(s) it
comes from.
"""

from __future__ import annotations

import dataclasses

from verifier import ir
from verifier.neutron.model import Neutron
from verifier.neutron.render_br_int import build_br_int
from verifier.neutron.render_br_phys import build_phys_bridges
from verifier.neutron.render_br_tun import build_br_tun
from verifier.neutron.render_linux import render_linux
from verifier.neutron.render_plan import DEFAULT_TUNNEL_PREFIXLEN, HostPlan, plan_hosts


def render_dataplane(neutron: Neutron) -> ir.Dataplane:
    """The dataplane the OVS agents would program for this Neutron state; hosts in name order."""
    return ir.Dataplane(tuple(render_host(plan, neutron) for plan in plan_hosts(neutron)))


def render_host(plan: HostPlan, neutron: Neutron) -> ir.Host:
    linux = render_linux(neutron, plan)
    br_int = build_br_int(plan)
    if linux.notes:
        br_int = dataclasses.replace(br_int, notes=br_int.notes + linux.notes)
    bridges = [br_int]
    if plan.tunneling:
        bridges.append(build_br_tun(plan))
    bridges.extend(build_phys_bridges(plan))
    addresses: tuple[ir.Address, ...] = ()
    if plan.local_ip is not None:
        addresses = (ir.Address(plan.tunnel_interface, str(plan.local_ip), DEFAULT_TUNNEL_PREFIXLEN),)
    return ir.Host(
        name=plan.host,
        bridges=tuple(sorted(bridges, key=lambda b: b.name)),
        addresses=addresses,
        links=linux.links,
        netfilter=linux.netfilter,
        namespaces=linux.namespaces,
        linux_bridges=linux.linux_bridges,
    )
