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
            net.links[(bridge_loc, ofport)] = _wire(loc, number, f"{name} into {ns.name}", external)
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


def _neighbors(neutron: Neutron | None) -> Callable[[str, str], int | None]:
    """MAC of the neighbour owning an IP on an interface's network (a Neutron port), None if unknown."""
    table: dict[str, int] = {}
    if neutron is not None:
        for p in neutron.ports:
            for ip in p.ips:
                table.setdefault(f"{p.network_id}/{ip}", int(p.mac_address.replace(":", ""), 16))

    def network_of(iface: str) -> str | None:
        parsed = parse_device_name(iface)
        if parsed is None or neutron is None:
            return None
        for p in neutron.ports:
            if p.id.lower().startswith(parsed[1].lower()):
                return p.network_id
        return None

    def lookup(iface: str, ip: str) -> int | None:
        network = network_of(iface)
        if network is None:
            return None
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return None
        return table.get(f"{network}/{ip}")

    return lookup


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
