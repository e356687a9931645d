"""DHCP reachability.

Definition: for every VM port with an IPv4 address on a DHCP-enabled subnet
(and bound to a host of the snapshot), (1) its DHCPDISCOVER (from its MAC,
0.0.0.0:68 to 255.255.255.255:67, untagged, broadcast) reaches the DHCP
server (dnsmasq in a qdhcp- namespace) of its own network, and the DHCP
server of no other network; and (2) for each server of its network it reaches,
that server answers (dnsmasq runs in static mode: only MACs holding a fixed IP
on a DHCP-enabled subnet of the network, and only on subnets the namespace has
an address in) and the reply (server IP:67 to the VM's fixed IP:68, to the
VM's MAC) reaches the VM.  Checked in the states a running cloud is in: MAC
tables empty (or correct), flows as dumped, and again with every learned or
timed flow gone; security groups applied (the DHCP rules of the hybrid
firewall are part of what is proved).

Without Linux-side files for the network node (no qdhcp- namespace), part (1)
falls back to reaching the DHCP port's OVS device, and part (2) is unknown.
"""

from __future__ import annotations

import ipaddress
import time

from models.build import build_network
from models.network import OvsNetwork
from models.walk import End, Twins, Walk, walk, walk_emission
from properties.common import coverage
from verifier.deployment import Deployment
from verifier.header import describe, zero_packet
from verifier.neutron.model import Neutron, Port
from verifier.neutron.naming import dhcp_namespace, tap_name
from verifier.topology import Delivered, Endpoint, Location, Undecided
from verifier.verdict import Counterexample, TraceHop, Verdict

PROPERTY = "dhcp"
BROADCAST_MAC = 0xFFFFFFFFFFFF
ASSUMPTIONS = (
    "MAC tables are empty or correct (NORMAL floods), and the flows are as dumped; checked again with every "
    "learned or timed flow gone",
    "the DISCOVER is the first packet of its connection (conntrack NEW); dnsmasq answers on the interface it "
    "heard the request on, unicast to the client's MAC and fixed IP",
    "dnsmasq serves exactly the MAC/IP pairs of the network's ports on DHCP-enabled subnets (its hostsfile is "
    "not in the snapshot; it is what the DHCP agent writes from neutron.json)",
)


def check_dhcp(deployment: Deployment, *, net: OvsNetwork | None = None) -> Verdict:
    """Prove or refute DHCP reachability for every VM port on a DHCP-enabled subnet."""
    started = time.perf_counter()
    neutron = deployment.neutron
    if neutron is None:
        return Verdict(
            PROPERTY, "unknown", "no neutron.json: which ports expect DHCP is not known", coverage=coverage(deployment)
        )
    net = net or build_network(deployment)
    ports = _ports(neutron, net)
    if not ports:
        return Verdict(
            PROPERTY,
            "vacuous",
            "no VM port with an IPv4 address on a DHCP-enabled subnet",
            coverage=coverage(deployment),
        )
    states = [("flows as dumped", Twins(net)), ("nothing learned", Twins(net, without_timed_flows=True))]
    violations: list[str] = []
    failed: list[str] = []
    examples: list[Counterexample] = []
    unknown: list[str] = []
    for port, endpoint in ports:
        for state, twins in states:
            problems = _check_port(neutron, net, twins, port, endpoint, state)
            for kind, text, example in problems:
                if kind == "unknown":
                    unknown.append(text)
                else:
                    violations.append(text)
                    if str(endpoint) not in failed:
                        failed.append(str(endpoint))
                    if example is not None:
                        examples.append(example)
            if problems:
                break
    stats: dict[str, float] = {"seconds": round(time.perf_counter() - started, 3), "ports": len(ports)}
    cover = coverage(deployment)
    if violations:
        summary = f"DHCP fails for {len(failed)} of {len(ports)} VM port(s): " + "; ".join(failed[:5])
        return Verdict(PROPERTY, "violated", summary, tuple(examples), tuple(unknown), ASSUMPTIONS, (), cover, stats)
    if unknown:
        summary = f"DHCP could not be decided for {len(unknown)} case(s)"
        return Verdict(PROPERTY, "unknown", summary, (), tuple(unknown), ASSUMPTIONS, (), cover, stats)
    summary = (
        f"DHCP works for all {len(ports)} VM port(s): each DISCOVER reaches its own network's DHCP server "
        "and no other network's, and the reply comes back"
    )
    return Verdict(PROPERTY, "holds", summary, (), (), ASSUMPTIONS, (), cover, stats)


def _ports(neutron: Neutron, net: OvsNetwork) -> list[tuple[Port, Endpoint]]:
    by_port = {e.neutron_port: e for e in net.endpoints.values() if e.kind == "vm" and e.neutron_port}
    out = []
    for p in neutron.ports:
        if not p.device_owner.startswith("compute:") or p.id not in by_port:
            continue
        if any(_dhcp_subnet(neutron, p, ip) for ip in p.ips if ip.version == 4):
            out.append((p, by_port[p.id]))
    return out


def _dhcp_subnet(neutron: Neutron, port: Port, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    subnet = neutron.subnet_containing(port.network_id, ip)
    return subnet is not None and subnet.enable_dhcp and subnet.ip_version == 4


def discover_packet(port: Port, in_port: int) -> dict[str, int]:
    pkt = zero_packet()
    pkt.update(
        in_port=in_port,
        eth_src=int(port.mac_address.replace(":", ""), 16),
        eth_dst=BROADCAST_MAC,
        eth_type=0x0800,
        ip_src=0,
        ip_dst=0xFFFFFFFF,
        ip_proto=17,
        ip_ttl=64,
        tp_src=68,
        tp_dst=67,
    )
    return pkt


def _check_port(
    neutron: Neutron, net: OvsNetwork, twins: Twins, port: Port, vm: Endpoint, state: str
) -> list[tuple[str, str, Counterexample | None]]:
    """Problems with one port's DHCP in one state: ("violated"|"unknown", text, example)."""
    problems: list[tuple[str, str, Counterexample | None]] = []
    start = Location(vm.host, vm.bridge)
    discover = discover_packet(port, vm.port)
    forward = walk(twins, start, discover)
    for end in forward.undecided():
        problems.append(("unknown", f"{vm}: DISCOVER ({state}) {end.outcome.describe()}", None))
    servers = [e for e in forward.delivered() if e.outcome.endpoint.kind in ("dhcp-server", "dhcp")]  # type: ignore[union-attr]
    own = [e for e in servers if e.outcome.endpoint.network == port.network_id]  # type: ignore[union-attr]
    foreign = [e for e in servers if e.outcome.endpoint.network != port.network_id]  # type: ignore[union-attr]
    for e in foreign:
        server = e.outcome.endpoint  # type: ignore[union-attr]
        text = f"{vm}'s DISCOVER ({state}) reaches the DHCP server of another network: {server}"
        problems.append(("violated", text, _example(f"{port.name or port.id}: DHCP", vm, discover, e, text)))
    if not own and forward.undecided():
        return problems  # where it went is undecided: not a violation
    if not own:
        text = f"{vm}'s DISCOVER ({state}) reaches no DHCP server of its network"
        hosts = frozenset(
            p.binding_host_id for p in neutron.ports_of_network(port.network_id) if p.device_owner == "network:dhcp"
        )
        problems.append(("violated", text, _example(port.name or port.id, vm, discover, _worst(forward, hosts), text)))
        return problems
    for e in own:
        server = e.outcome.endpoint  # type: ignore[union-attr]
        if server.kind == "dhcp":
            problems.append(("unknown", f"{vm}: no qdhcp namespace files for {server}, so the reply is unknown", None))
            continue
        problems.extend(_reply(neutron, net, twins, port, vm, server, state))
    return problems


def _reply(
    neutron: Neutron, net: OvsNetwork, twins: Twins, port: Port, vm: Endpoint, server: Endpoint, state: str
) -> list[tuple[str, str, Counterexample | None]]:
    ns_loc = Location(server.host, server.bridge)
    device = net.device(ns_loc)
    dhcp_ports = [p for p in neutron.ports_of_network(port.network_id) if p.device_owner == "network:dhcp"]
    host = net.dataplane.host(server.host)
    ns = host.namespace(dhcp_namespace(port.network_id)) if host is not None else None
    if ns is None or device is None:
        return [("unknown", f"{vm}: the DHCP namespace of {server} is not in the snapshot", None)]
    fixed = [ip for ip in port.ips if ip.version == 4 and _dhcp_subnet(neutron, port, ip)]
    problems: list[tuple[str, str, Counterexample | None]] = []
    for ip in fixed:
        subnet = neutron.subnet_containing(port.network_id, ip)
        assert subnet is not None
        server_ip = next(
            (a for a in ns.addresses if ":" not in a.address and ipaddress.ip_address(a.address) in subnet.cidr), None
        )
        if server_ip is None:
            text = f"{server} has no address on {subnet.cidr}: dnsmasq does not serve {vm} there"
            problems.append(
                ("violated", text, _example(port.name or port.id, vm, discover_packet(port, vm.port), None, text))
            )
            continue
        iface = server_ip.interface
        dhcp_port = next((p for p in dhcp_ports if tap_name(p.id) == iface), None)
        link = ns.link(iface)
        mac = link.mac if link and link.mac else (dhcp_port.mac_address if dhcp_port else None)
        offer = zero_packet()
        offer.update(
            eth_src=int(mac.replace(":", ""), 16) if mac else 0,
            eth_dst=int(port.mac_address.replace(":", ""), 16),
            eth_type=0x0800,
            ip_src=int(ipaddress.IPv4Address(server_ip.address)),
            ip_dst=int(ip),
            ip_proto=17,
            ip_ttl=64,
            tp_src=67,
            tp_dst=68,
        )
        sent = twins.originate(ns_loc, offer, iface)
        if sent is None or sent.unknown:
            problems.append(
                ("unknown", f"{vm}: the reply from {server} ({state}): {sent.unknown if sent else 'no model'}", None)
            )
            continue
        if not sent.emissions:
            text = f"{server}'s reply to {vm} ({state}) is dropped in its own namespace"
            problems.append(("violated", text, _example(port.name or port.id, vm, offer, None, text)))
            continue
        reached: list[End] = []
        every: list[End] = []
        for em in sent.emissions:
            back = walk_emission(twins, ns_loc, em.port, em.packet, ())
            every.extend(back.ends)
            reached.extend(e for e in back.delivered() if e.outcome.endpoint.id == vm.id)  # type: ignore[union-attr]
            for end in back.undecided():
                problems.append(("unknown", f"{vm}: the reply ({state}) {end.outcome.describe()}", None))
        if not reached and any(
            not isinstance(e.outcome, (Delivered,)) and isinstance(e.outcome, Undecided) for e in every
        ):
            continue  # where the reply went is undecided: not a violation
        if not reached:
            text = f"the reply of {server} to {vm} ({state}) does not reach it"
            problems.append(
                (
                    "violated",
                    text,
                    _example(port.name or port.id, vm, offer, _worst(Walk(every), frozenset({vm.host})), text),
                )
            )
    return problems


def _worst(w: Walk, toward: frozenset[str]) -> End | None:
    """The end to show for a failure: a drop on the way to ``toward`` (hosts), not at a bystander's firewall.

    A flooded DISCOVER also dies at every other port of the network; the copy
    worth showing is the one that got nearest to where it should have gone.
    """
    drops = [e for e in w.ends if not isinstance(e.outcome, Delivered)]

    def score(e: End) -> tuple[bool, bool, int]:
        last = e.hops[-1].location if e.hops else None
        bystander = last is not None and last.device.startswith("qbr")
        return (last is not None and last.host in toward, not bystander, len(e.hops))

    return max(drops, key=score) if drops else (w.ends[0] if w.ends else None)


def _example(title: str, vm: Endpoint, packet: dict[str, int], end: End | None, text: str) -> Counterexample:
    hops: tuple[TraceHop, ...] = ()
    outcome = "nothing happens"
    if end is not None:
        outcome = end.outcome.describe()
        hops = tuple(
            TraceHop(
                host=h.location.host,
                device=h.location.device,
                in_port=h.in_port,
                packet=describe(h.packet),
                steps=h.steps,
                rewrites=(),
                out_port=h.out_port,
                via=h.via,
                replay="",
            )
            for h in end.hops
        )
    return Counterexample(
        title=f"{title}: {text}",
        source=str(vm),
        packet=packet,
        packet_text=describe(packet),
        hops=hops,
        outcome=outcome,
    )


__all__ = ["Delivered", "Undecided", "check_dhcp", "discover_packet"]
