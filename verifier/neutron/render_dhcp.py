"""DHCP namespaces: ``qdhcp-<network_id>`` as the DHCP agent builds it (``neutron-dataplane.md`` §10).

Sources: ``neutron/agent/linux/dhcp.py`` ``DeviceManager.setup`` (device
``tap<port_id[:11]>``, the DHCP port's fixed IPs with the subnet prefix),
``_set_default_route_ip_version`` (one default route per IP version, via the
gateway of the *first* DHCP-enabled subnet that has one, plus an on-link host
route when that gateway lies outside the subnet) and
``fill_dhcp_udp_checksums`` (an ``IptablesManager(nat=False)`` of binary
``neutron-dhcp-agent`` whose wrapped mangle POSTROUTING gets
``-p udp -m udp --dport 68 -j CHECKSUM --checksum-fill``).

Rendered on the host the DHCP port is plugged on.  Not rendered: the
isolated-metadata address 169.254.169.254/32 (``enable_isolated_metadata`` and
``force_metadata`` default to False), IPv6, dnsmasq itself (its
configuration is the model's business).
"""

from __future__ import annotations

from verifier import linux as lx
from verifier.ir import Address
from verifier.neutron import constants as c
from verifier.neutron import naming
from verifier.neutron.model import Neutron, Port, Subnet
from verifier.neutron.render_iptables import IptablesManager
from verifier.neutron.render_plan import HostPlan, Plug
from verifier.neutron.render_router import (
    LOOPBACK,
    LOOPBACK_ADDRESS,
    connected_routes,
    gateway_routes,
    internal_link,
    route_key,
)


def build_dhcp_namespaces(neutron: Neutron, plan: HostPlan, notes: list[str]) -> list[lx.Namespace]:
    """One ``qdhcp-`` namespace per network with a DHCP port plugged on this host."""
    by_network: dict[str, list[Plug]] = {}
    for plug in plan.plugs:
        if plug.kind == "dhcp":
            by_network.setdefault(plug.port.network_id, []).append(plug)
    out = []
    for network_id in sorted(by_network):
        ports = sorted((p.port for p in by_network[network_id]), key=lambda p: p.id)
        if len(ports) > 1:
            notes.append(f"network {network_id}: several DHCP ports on {plan.host}; {ports[0].id} is used")
        namespace = _dhcp_namespace(neutron, ports[0])
        if namespace is None:
            notes.append(f"network {network_id}: DHCP port {ports[0].id} has no IPv4 address on a DHCP-enabled subnet")
        else:
            out.append(namespace)
    return out


def _dhcp_namespace(neutron: Neutron, port: Port) -> lx.Namespace | None:
    device = naming.tap_name(port.id)
    cidrs = []
    for subnet_id, ip in port.fixed_ips:
        subnet = neutron.subnet(subnet_id)
        if ip.version == 4 and subnet.enable_dhcp:
            cidrs.append((str(ip), subnet.cidr))
    if not cidrs:
        return None
    routes = connected_routes(device, cidrs, port.id)
    for subnet in _network_subnets(neutron, port.network_id):
        if subnet.ip_version == 4 and subnet.enable_dhcp and subnet.gateway_ip is not None:
            routes += gateway_routes(device, str(subnet.gateway_ip), subnet.cidr, port.id)
            break
    manager = IptablesManager(c.DHCP_AGENT_WRAP, port.id, nat=False)
    checksum = (lx.MatchProtocol(17), lx.MatchPorts("dst", ((c.DHCP_CLIENT_PORT, c.DHCP_CLIENT_PORT),)))
    manager.add_rule("mangle", "POSTROUTING", checksum, lx.NoEffect("CHECKSUM --checksum-fill"))
    return lx.Namespace(
        name=naming.dhcp_namespace(port.network_id),
        links=(LOOPBACK, internal_link(device, port, neutron)),
        addresses=(LOOPBACK_ADDRESS, *(Address(device, ip, net.prefixlen) for ip, net in cidrs)),
        routes=tuple(sorted(routes, key=route_key)),
        netfilter=manager.netfilter(),
    )


def _network_subnets(neutron: Neutron, network_id: str) -> list[Subnet]:
    """The network's subnets in the order of its ``subnets`` list, then any others by id."""
    known = {s.id: s for s in neutron.subnets_of(network_id)}
    listed = [known[i] for i in neutron.network(network_id).subnets if i in known]
    return listed + [s for s in known.values() if s not in listed]
