"""Adding the Linux side of a host to the network: namespaces and hybrid-firewall bridges.

- Every namespace (qrouter-, qdhcp-, any other) becomes a NamespaceDevice.
  An interface named like an OVS interface of the host (an internal port
  moved into the namespace, Neutron's qr-/qg-/tap devices) is wired to that
  OVS port; port 0 (the namespace's own stack) is an endpoint: the router
  itself, or the DHCP server (dnsmasq) of a qdhcp namespace.
- Every qbr bridge with a tap (the VM) and a qvb whose veth peer qvo is an
  OVS port becomes a HybridFirewall: the VM endpoint moves from qvo to the tap.
- A link out of a gateway interface (qg-, or an interface on a router:external
  network) marks the packet as having been on the external network.

With ``enforce_firewall`` False the qbr bridges pass everything: the dataplane
without security groups, for "what would the network alone let through".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING

from models.firewall import QVB, TAP, HybridFirewall
from models.namespace import LOCAL, NamespaceDevice
from models.netfilter import Netfilter
from verifier import ir
from verifier import linux as lx
from verifier.header import parse_mac
from verifier.neutron.model import Neutron
from verifier.neutron.naming import parse_device_name, parse_namespace
from verifier.topology import Endpoint, Location

if TYPE_CHECKING:
    from models.network import OvsNetwork


def wire_linux(
    net: OvsNetwork,
    host: ir.Host,
    *,
    neutron: Neutron | None,
    classify: Callable[[str, str, ir.OFPort, ir.Interface | None], Endpoint],
    ipsets: dict[str, tuple[str, ...]],
    enforce_firewall: bool,
) -> None:
    """Add the host's namespaces and qbr firewalls to ``net`` and rewire the OVS ports they hang off."""
    ovs_ports = _ovs_ports(host)
    for ns in host.namespaces:
        device = NamespaceDevice(host.name, ns, ipsets=ipsets, neighbor=_neighbors(neutron))
        loc = Location(host.name, ns.name)
        net.devices[loc] = device
        stack = _stack_endpoint(host.name, ns, neutron)
        net.links[(loc, LOCAL)] = stack
        net.endpoints[stack.id] = stack
        for number, name in device.ports.items():
            external = _external(name, neutron)
            target = ovs_ports.get(name)
            if target is None:
                endpoint = Endpoint(
                    id=f"{host.name}:{ns.name}:{name}",
                    host=host.name,
                    bridge=ns.name,
                    port=number,
                    device=name,
                    kind="other",
                    label=f"{name} in {ns.name} on {host.name} (connected to nothing the snapshot shows)",
                )
                net.links[(loc, number)] = endpoint
                net.endpoints[endpoint.id] = endpoint
                continue
            bridge_loc, ofport = target
            _unplug(net, bridge_loc, ofport)
            net.links[(bridge_loc, ofport)] = _wire(loc, number, f"{name} into {ns.name}", False)
            net.links[(loc, number)] = _wire(bridge_loc, ofport, f"{name} out of {ns.name}", external)
    _wire_firewalls(net, host, ovs_ports, classify, ipsets, enforce_firewall)


def _wire(loc: Location, port: int, name: str, external: bool):  # type: ignore[no-untyped-def]
    from models.network import Wire

    return Wire(loc, port, name, external)


def _ovs_ports(host: ir.Host) -> dict[str, tuple[Location, int]]:
    out: dict[str, tuple[Location, int]] = {}
    for b in host.bridges:
        for p in b.of_ports:
            if p.number != ir.LOCAL_PORT:
                out[p.name] = (Location(host.name, b.name), p.number)
    return out


def _unplug(net: OvsNetwork, loc: Location, port: int) -> None:
    old = net.links.get((loc, port))
    if isinstance(old, Endpoint):
        net.endpoints.pop(old.id, None)


def _external(name: str, neutron: Neutron | None) -> bool:
    parsed = parse_device_name(name)
    if parsed is None:
        return False
    if neutron is None:
        return parsed[0] == "qg"
    for p in neutron.ports:
        if p.id.lower().startswith(parsed[1].lower()) and neutron.has_network(p.network_id):
            return neutron.network(p.network_id).router_external
    return parsed[0] == "qg"


def _stack_endpoint(host: str, ns: lx.Namespace, neutron: Neutron | None) -> Endpoint:
    parsed = parse_namespace(ns.name)
    kind, label, network, project = "namespace", f"the own stack of namespace {ns.name} on {host}", None, None
    carries: tuple[str, ...] = ()
    if parsed is not None and parsed[0] == "qdhcp":
        kind = "dhcp-server"
        network = parsed[1]
        label = f"DHCP server (dnsmasq) of network {network} in {ns.name} on {host}"
        carries = (network,)
        if neutron is not None and neutron.has_network(network):
            project = neutron.project_of_network(network)
            label = f"DHCP server of network {neutron.network(network).name} (project {project}) on {host}"
    elif parsed is not None and parsed[0] == "qrouter":
        kind = "router"
        label = f"router {parsed[1]} itself (its own addresses, the metadata proxy) on {host}"
        if neutron is not None:
            nets = {p.network_id for p in neutron.router_ports(parsed[1])}
            carries = tuple(sorted(nets))
    return Endpoint(
        id=f"{host}:{ns.name}",
        host=host,
        bridge=ns.name,
        port=LOCAL,
        device=ns.name,
        kind=kind,
        network=network,
        project=project,
        label=label,
        carries=carries,
    )


class NeutronNeighbors:
    """MACs of the neighbours owning IPs on an interface's network (its Neutron ports): what ARP resolves to."""

    def __init__(self, neutron: Neutron | None) -> None:
        self.neutron = neutron
        self.table: dict[str, dict[int, int]] = {}
        self._networks: dict[str, str | None] = {}
        if neutron is None:
            return
        gateways = {p.device_id: p for p in neutron.ports if p.device_owner == "network:router_gateway"}
        for p in neutron.ports:
            if p.device_owner == "network:floatingip":
                continue  # its MAC is never used: the router holding the address answers ARP for it
            for ip in p.ips:
                if ip.version == 4:
                    self.table.setdefault(p.network_id, {}).setdefault(int(ip), parse_mac(p.mac_address))
        for fip in neutron.floatingips:
            gateway = gateways.get(fip.router_id or "")
            if gateway is not None and fip.floating_ip_address.version == 4:
                mac = parse_mac(gateway.mac_address)
                self.table.setdefault(fip.floating_network_id, {}).setdefault(int(fip.floating_ip_address), mac)

    def _network_of(self, iface: str) -> str | None:
        if iface not in self._networks:
            parsed = parse_device_name(iface)
            found = None
            if parsed is not None and self.neutron is not None:
                found = next(
                    (p.network_id for p in self.neutron.ports if p.id.lower().startswith(parsed[1].lower())), None
                )
            self._networks[iface] = found
        return self._networks[iface]

    def on(self, iface: str) -> dict[int, int]:
        """Every (IPv4 address, MAC) known on the interface's network."""
        network = self._network_of(iface)
        return self.table.get(network, {}) if network is not None else {}

    def __call__(self, iface: str, ip: str) -> int | None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        return self.on(iface).get(int(address)) if address.version == 4 else None


def _neighbors(neutron: Neutron | None) -> NeutronNeighbors:
    return NeutronNeighbors(neutron)


def _wire_firewalls(
    net: OvsNetwork,
    host: ir.Host,
    ovs_ports: dict[str, tuple[Location, int]],
    classify: Callable[[str, str, ir.OFPort, ir.Interface | None], Endpoint],
    ipsets: dict[str, tuple[str, ...]],
    enforce: bool,
) -> None:
    links = {link.name: link for link in host.links}
    members: dict[str, list[str]] = {}
    for b in host.linux_bridges or ():
        members.setdefault(b.name, []).extend(b.interfaces)
    for link in host.links:
        if link.master and link.name not in members.get(link.master, []):
            members.setdefault(link.master, []).append(link.name)
    root_nf = Netfilter(host.name, "root", host.netfilter, ipsets) if host.netfilter is not None else None
    for bridge, names in sorted(members.items()):
        taps = [n for n in names if n.startswith("tap")]
        qvbs = [n for n in names if n.startswith("qvb")]
        if len(taps) != 1 or len(qvbs) != 1:
            continue
        tap, qvb = taps[0], qvbs[0]
        peer = links.get(qvb)
        qvo = "qvo" + qvb[3:] if peer is None or peer.peer is None or peer.peer.startswith("if") else peer.peer
        target = ovs_ports.get(qvo)
        if target is None:
            continue
        loc = Location(host.name, bridge)
        nf = root_nf if enforce else None
        device = HybridFirewall(host.name, bridge, tap, qvb, nf, enforce=enforce)
        net.devices[loc] = device
        bridge_loc, ofport = target
        vm = net.links.get((bridge_loc, ofport))
        _unplug(net, bridge_loc, ofport)
        net.links[(bridge_loc, ofport)] = _wire(loc, QVB, f"veth {qvo}-{qvb}", False)
        net.links[(loc, QVB)] = _wire(bridge_loc, ofport, f"veth {qvb}-{qvo}", False)
        endpoint = classify(host.name, bridge, ir.OFPort(TAP, tap), None)
        if isinstance(vm, Endpoint) and vm.kind == "vm" and endpoint.kind != "vm":
            endpoint = Endpoint(
                **{**vm.__dict__, "id": f"{host.name}:{tap}", "bridge": bridge, "port": TAP, "device": tap}
            )
        net.links[(loc, TAP)] = endpoint
        net.endpoints[endpoint.id] = endpoint
