"""Tying dataplane ports to Neutron ports, networks and projects.

Neutron names every device it plugs after the port: ``qvo``/``tap`` + the
first 11 characters of the port id for a VM, ``tap`` for a DHCP port, ``qr-``
and ``qg-`` for router ports.  A port of a provider bridge (a bridge_mappings
target such as br-ex) that is neither a patch nor the bridge's own port is the
physical uplink: it carries the networks of that physical network.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from verifier import ir
from verifier.neutron.model import Neutron, Port
from verifier.neutron.naming import parse_device_name
from verifier.topology import Endpoint

KINDS = {
    "network:dhcp": "dhcp",
    "network:router_interface": "router-interface",
    "network:router_interface_distributed": "router-interface",
    "network:ha_router_replicated_interface": "router-interface",
    "network:router_centralized_snat": "router-interface",
    "network:router_gateway": "router-gateway",
}


@dataclass
class NeutronClassifier:
    """Classifies OVS ports as endpoints using neutron.json."""

    neutron: Neutron

    def __post_init__(self) -> None:
        self._by_prefix: dict[str, list[Port]] = {}
        for p in self.neutron.ports:
            self._by_prefix.setdefault(p.id[:11].lower(), []).append(p)
        self._physnet_bridges: dict[tuple[str, str], str] = {}
        for agent in self.neutron.agents:
            for physnet, bridge in agent.bridge_mappings:
                self._physnet_bridges[(agent.host, bridge)] = physnet
        self.notes: list[str] = []

    def port_for(self, device: str) -> Port | None:
        """The Neutron port a device name denotes (None if not a Neutron name or no such port)."""
        parsed = parse_device_name(device)
        if parsed is None:
            return None
        matches = self._by_prefix.get(parsed[1].lower(), [])
        if len(matches) > 1:
            self.notes.append(f"device {device} matches {len(matches)} ports by its 11-character prefix")
            return None
        return matches[0] if matches else None

    def __call__(self, host: str, bridge: str, of_port: ir.OFPort, iface: ir.Interface | None) -> Endpoint:
        name = of_port.name
        base = Endpoint(id=f"{host}:{name}", host=host, bridge=bridge, port=of_port.number, device=name, kind="other")
        if of_port.number == ir.LOCAL_PORT or name == bridge:
            return _with(base, kind="host", label=f"{name} (the bridge's own port) on {host}")
        port = self.port_for(name)
        if port is not None:
            owner = port.device_owner
            kind = "vm" if owner.startswith("compute:") else KINDS.get(owner, "other")
            network = self.neutron.network(port.network_id) if self.neutron.has_network(port.network_id) else None
            project = network.project_id if network is not None else None
            ips = ",".join(str(ip) for ip in port.ips)
            title = port.name or port.id
            label = (
                f"{kind} {title} ({name} on {host}, {ips or 'no IP'}, "
                f"network {network.name if network else port.network_id}, project {project})"
            )
            return _with(
                base,
                kind=kind,
                neutron_port=port.id,
                network=port.network_id,
                project=project,
                label=label,
                carries=(port.network_id,),
            )
        physnet = self._physnet_bridges.get((host, bridge))
        if physnet is not None and (iface is None or iface.type in ("", "system", "dpdk")):
            nets = tuple(n.id for n in self.neutron.networks if n.physical_network == physnet)
            project = None
            if len(nets) == 1:
                project = self.neutron.network(nets[0]).project_id
            label = f"uplink {name} of {bridge} on {host} (physical network {physnet})"
            return _with(
                base,
                kind="uplink",
                network=nets[0] if len(nets) == 1 else None,
                project=project,
                label=label,
                carries=nets,
            )
        return _with(base, label=f"{name} on {host} ({bridge}; no Neutron port has this name)")


def _with(base: Endpoint, **changes: object) -> Endpoint:
    return replace(base, **changes)  # type: ignore[arg-type]
