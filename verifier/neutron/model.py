"""A typed, frozen view of ``neutron.json`` (Neutron API v2.0 collections as an admin reads them).

Field names follow the API with the extension prefixes made Python names:
``provider:segmentation_id`` is ``Network.segmentation_id``, ``binding:host_id``
is ``Port.binding_host_id``, ``router:external`` is ``Network.router_external``.
``project_id`` falls back to the legacy ``tenant_id`` (old exports have only
that one) and ``tenant_id`` falls back to ``project_id``.

``parse_neutron`` builds a ``Neutron`` from the decoded JSON and checks it; see
``verifier.neutron.parse`` for the rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import cached_property
from typing import Any

from verifier.neutron.fieldreader import Frozen, IPAddress, IPNetwork

OVS_AGENT_TYPE = "Open vSwitch agent"
OVS_AGENT_BINARY = "neutron-openvswitch-agent"

FixedIp = tuple[str, IPAddress]
"""One fixed IP of a port or a router gateway: ``(subnet_id, ip_address)``."""


@dataclass(frozen=True)
class Network:
    """A network, with its single provider segment (``provider:*``)."""

    id: str
    name: str
    project_id: str
    tenant_id: str
    network_type: str | None
    segmentation_id: int | None
    physical_network: str | None
    router_external: bool
    shared: bool
    admin_state_up: bool
    port_security_enabled: bool
    mtu: int | None
    subnets: tuple[str, ...]
    status: str = ""


@dataclass(frozen=True)
class HostRoute:
    """A subnet host route or a router extra route."""

    destination: IPNetwork
    nexthop: IPAddress


@dataclass(frozen=True)
class Subnet:
    id: str
    name: str
    network_id: str
    project_id: str
    tenant_id: str
    cidr: IPNetwork
    ip_version: int
    gateway_ip: IPAddress | None
    enable_dhcp: bool
    allocation_pools: tuple[tuple[IPAddress, IPAddress], ...]
    host_routes: tuple[HostRoute, ...]
    dns_nameservers: tuple[IPAddress, ...]
    ipv6_address_mode: str | None = None
    ipv6_ra_mode: str | None = None


@dataclass(frozen=True)
class AddressPair:
    """An allowed-address-pair: an IP address or CIDR, and a MAC (the port's own if not given)."""

    ip_address: IPNetwork
    mac_address: str


@dataclass(frozen=True)
class Port:
    id: str
    name: str
    network_id: str
    project_id: str
    tenant_id: str
    device_owner: str
    device_id: str
    mac_address: str
    fixed_ips: tuple[FixedIp, ...]
    admin_state_up: bool
    status: str
    port_security_enabled: bool
    security_groups: tuple[str, ...]
    allowed_address_pairs: tuple[AddressPair, ...]
    binding_host_id: str
    binding_vif_type: str | None
    binding_vnic_type: str | None
    binding_vif_details: tuple[tuple[str, Frozen], ...]
    binding_profile: tuple[tuple[str, Frozen], ...] = ()

    def vif_detail(self, key: str) -> Frozen:
        """One ``binding:vif_details`` entry (None when absent)."""
        return dict(self.binding_vif_details).get(key)

    @property
    def ips(self) -> tuple[IPAddress, ...]:
        return tuple(ip for _subnet, ip in self.fixed_ips)

    @property
    def is_network_owned(self) -> bool:
        """A ``network:*`` port: trusted, no security groups, no anti-spoofing."""
        return self.device_owner.startswith("network:")


@dataclass(frozen=True)
class Router:
    id: str
    name: str
    project_id: str
    tenant_id: str
    admin_state_up: bool
    status: str
    distributed: bool | None
    ha: bool | None
    gateway_network_id: str | None
    enable_snat: bool | None
    external_fixed_ips: tuple[FixedIp, ...]
    routes: tuple[HostRoute, ...]


@dataclass(frozen=True)
class FloatingIP:
    id: str
    project_id: str
    tenant_id: str
    floating_ip_address: IPAddress
    floating_network_id: str
    fixed_ip_address: IPAddress | None
    port_id: str | None
    router_id: str | None
    status: str


@dataclass(frozen=True)
class SecurityGroupRule:
    """One rule; ``protocol`` is as the API gives it (a name, a number as text, or None)."""

    id: str
    security_group_id: str
    project_id: str
    direction: str
    ethertype: str
    protocol: str | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: IPNetwork | None
    remote_group_id: str | None
    remote_address_group_id: str | None = None


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    name: str
    project_id: str
    tenant_id: str
    stateful: bool
    rules: tuple[SecurityGroupRule, ...]


@dataclass(frozen=True)
class Agent:
    """An agent; the typed configuration keys are those the OVS agent reports.

    ``tunnel_interface`` is not a Neutron key: the verifier reads an optional
    ``tunnel_interface`` configuration entry to name the device that holds
    ``tunneling_ip`` (the renderer defaults to ``eth2``).
    """

    id: str
    agent_type: str
    binary: str
    host: str
    alive: bool
    admin_state_up: bool
    tunneling_ip: IPAddress | None
    tunnel_types: tuple[str, ...]
    bridge_mappings: tuple[tuple[str, str], ...]
    l2_population: bool
    arp_responder: bool
    ovs_hybrid_plug: bool | None
    tunnel_interface: str | None
    configurations: tuple[tuple[str, Frozen], ...]

    @property
    def is_ovs(self) -> bool:
        return self.agent_type == OVS_AGENT_TYPE or self.binary == OVS_AGENT_BINARY


@dataclass(frozen=True)
class Neutron:
    """Every collection of one ``neutron.json``, each sorted by id, plus lookups.

    ``source`` (the file name) is kept for messages and takes no part in equality.
    """

    networks: tuple[Network, ...] = ()
    subnets: tuple[Subnet, ...] = ()
    ports: tuple[Port, ...] = ()
    routers: tuple[Router, ...] = ()
    floatingips: tuple[FloatingIP, ...] = ()
    security_groups: tuple[SecurityGroup, ...] = ()
    agents: tuple[Agent, ...] = ()
    source: str = dc_field(default="neutron.json", compare=False)

    # ------------------------------------------------------------ indexes

    @cached_property
    def _networks(self) -> Mapping[str, Network]:
        return {n.id: n for n in self.networks}

    @cached_property
    def _subnets(self) -> Mapping[str, Subnet]:
        return {s.id: s for s in self.subnets}

    @cached_property
    def _ports(self) -> Mapping[str, Port]:
        return {p.id: p for p in self.ports}

    @cached_property
    def _routers(self) -> Mapping[str, Router]:
        return {r.id: r for r in self.routers}

    @cached_property
    def _security_groups(self) -> Mapping[str, SecurityGroup]:
        return {g.id: g for g in self.security_groups}

    @cached_property
    def _ports_by_host(self) -> Mapping[str, tuple[Port, ...]]:
        by_host: dict[str, list[Port]] = {}
        for p in self.ports:
            if p.binding_host_id:
                by_host.setdefault(p.binding_host_id, []).append(p)
        return {host: tuple(ports) for host, ports in by_host.items()}

    # ------------------------------------------------------------ lookups

    def network(self, network_id: str) -> Network:
        """The network with that id (KeyError if there is none)."""
        return self._networks[network_id]

    def subnet(self, subnet_id: str) -> Subnet:
        return self._subnets[subnet_id]

    def port(self, port_id: str) -> Port:
        return self._ports[port_id]

    def router(self, router_id: str) -> Router:
        return self._routers[router_id]

    def security_group(self, group_id: str) -> SecurityGroup:
        return self._security_groups[group_id]

    def has_network(self, network_id: str) -> bool:
        return network_id in self._networks

    def project_of_network(self, network_id: str) -> str:
        return self.network(network_id).project_id

    def subnets_of(self, network_id: str) -> tuple[Subnet, ...]:
        """The subnets whose ``network_id`` is that network, by id."""
        return tuple(s for s in self.subnets if s.network_id == network_id)

    def ports_on(self, host: str) -> tuple[Port, ...]:
        """Ports whose ``binding:host_id`` is ``host`` (any binding state), by id."""
        return self._ports_by_host.get(host, ())

    def ports_of_network(self, network_id: str) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.network_id == network_id)

    def router_ports(self, router_id: str) -> tuple[Port, ...]:
        """The router's interface and gateway ports (``device_id`` is the router id)."""
        return tuple(p for p in self.ports if p.device_id == router_id and p.device_owner.startswith("network:router_"))

    def agents_on(self, host: str) -> tuple[Agent, ...]:
        return tuple(a for a in self.agents if a.host == host)

    def ovs_agent(self, host: str) -> Agent | None:
        """The host's Open vSwitch agent (the first by id if there are several)."""
        for agent in self.agents:
            if agent.host == host and agent.is_ovs:
                return agent
        return None

    def floatingips_of_port(self, port_id: str) -> tuple[FloatingIP, ...]:
        return tuple(f for f in self.floatingips if f.port_id == port_id)

    def ovs_hosts(self) -> tuple[str, ...]:
        """Hosts with an Open vSwitch agent or a port bound there with ``vif_type`` ovs, sorted."""
        hosts = {a.host for a in self.agents if a.is_ovs}
        hosts |= {p.binding_host_id for p in self.ports if p.binding_host_id and p.binding_vif_type == "ovs"}
        return tuple(sorted(hosts))

    def subnet_containing(self, network_id: str, ip: IPAddress) -> Subnet | None:
        """The subnet of that network whose CIDR holds ``ip``."""
        for s in self.subnets_of(network_id):
            if ip.version == s.cidr.version and ip in s.cidr:
                return s
        return None


def parse_neutron(obj: Mapping[str, Any], source: str) -> Neutron:
    """Check and convert a decoded ``neutron.json`` (see ``verifier.neutron.parse``)."""
    # Imported here: the parser builds these dataclasses, so it imports this module.
    from verifier.neutron.parse import parse_collections

    return parse_collections(obj, source)


__all__ = [
    "AddressPair",
    "Agent",
    "FixedIp",
    "FloatingIP",
    "HostRoute",
    "IPAddress",
    "IPNetwork",
    "Network",
    "Neutron",
    "Port",
    "Router",
    "SecurityGroup",
    "SecurityGroupRule",
    "Subnet",
    "parse_neutron",
]
