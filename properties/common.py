"""What every property shares: the source packet, the stated assumptions, coverage notes."""

from __future__ import annotations

from collections.abc import Mapping

from verifier.deployment import Deployment
from verifier.packet import Context, PacketState, initial_packet

ASSUMPTIONS_OVS: tuple[str, ...] = (
    "MAC learning is over-approximated: NORMAL may send a frame to any port of its VLAN, "
    "and learn() may have installed any entry a packet reaching it could install",
    "flows with an idle or hard timeout may have expired",
    "VMs may send any frame",
    "packets sent to the OpenFlow controller are not re-injected",
    "the tunnel underlay delivers a tunnel packet to the host owning its destination address, "
    "and tenant VMs cannot reach the underlay",
    "a port that ovs-vsctl show lists with both tag and trunks may be in access or trunk mode: both are considered",
)


def source_packet(ctx: Context, in_port: int, *, prefix: str, fixed: Mapping[str, int] | None = None) -> PacketState:
    """A packet a VM emits on its port: any wire header (but ``fixed``), no pipeline metadata."""
    return initial_packet(ctx, prefix, {**(fixed or {}), "in_port": in_port})


def coverage(deployment: Deployment) -> tuple[str, ...]:
    """What the verdict covers and what it could not look at."""
    lines = [f"hosts: {', '.join(h.name for h in deployment.dataplane.hosts)}"]
    neutron = deployment.neutron
    if neutron is None:
        lines.append("no neutron.json: projects, networks and ports are not known")
    else:
        known = {h.name for h in deployment.dataplane.hosts}
        elsewhere = sorted(
            {p.binding_host_id for p in neutron.ports if p.binding_host_id and p.binding_host_id not in known}
        )
        if elsewhere:
            lines.append(f"ports bound to hosts not in the snapshot were not checked: {', '.join(elsewhere)}")
    for host, bridge in sorted(deployment.flows_missing):
        lines.append(f"{host}/{bridge}: no flow dump, paths through it are undecided")
    for skipped in deployment.skipped:
        lines.append(str(skipped))
    lines.extend(deployment.notes)
    return tuple(lines)
