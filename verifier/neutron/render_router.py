"""Legacy routers: ``qrouter-<router_id>`` as the L3 agent builds it (``neutron-dataplane.md`` §9).

Sources: ``neutron/agent/l3/router_info.py`` (addresses, gateway and extra
routes, NAT, marks, address scopes), ``legacy_router.py`` (floating IPs as /32
on ``qg-``), ``neutron/agent/metadata/driver.py`` (metadata REDIRECT and INPUT
rules), ``neutron/agent/linux/iptables_manager.py`` (wrapping, see
``render_iptables``).  The namespace is rendered on the host where the
router's ``qr-``/``qg-`` ports are plugged (``render_plan``), with the ports
plugged there.

Decisions the API does not make, or that depend on history:

* interfaces in port-id order, floating IPs in id order;
* nat ``$PREROUTING`` holds the metadata REDIRECT before the floating-IP DNATs:
  the order after any router update (a router processed for the first time
  with its floating IPs, e.g. after an agent restart, has them the other way
  round; the matches are disjoint, so the meaning is the same);
* several IPv4 subnets on the gateway port: the default route goes via the
  last one's gateway (each ``ip route replace default`` overwrites the previous);
* an extra route whose next hop is on no connected subnet is rejected by the
  kernel and left out (noted); its device is the one whose subnet holds the next hop;
* ifindex: ``lo`` is 1, other links 0 (unknown).

Not rendered: DVR and HA routers, admin-down routers (the agent removes their
namespace), address scopes (every port carries the "noscope" mark 0x4000000,
so no ``$floatingip`` marks and no scope ACCEPT in ``$snat``), IPv6 (radvd,
ip6tables), port forwardings, QoS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from verifier import linux as lx
from verifier.ir import Address
from verifier.neutron import constants as c
from verifier.neutron import naming
from verifier.neutron.model import FloatingIP, IPNetwork, Neutron, Port, Router
from verifier.neutron.render_iptables import IptablesManager, provenance
from verifier.neutron.render_plan import HostPlan, Plug

LOOPBACK = lx.Link("lo", 1, ("LOOPBACK", "UP", "LOWER_UP"), 65536, "UNKNOWN", kind="loopback", mac="00:00:00:00:00:00")
"""``ensure_namespace`` sets ``lo`` up in every namespace it creates."""
LOOPBACK_ADDRESS = Address("lo", "127.0.0.1", 8)
INTERNAL_PORT_FLAGS = ("BROADCAST", "MULTICAST", "UP", "LOWER_UP")
DEFAULT_MTU = 1500


def internal_link(name: str, port: Port, neutron: Neutron) -> lx.Link:
    """An OVS internal port moved into a namespace: UP, operstate UNKNOWN, the Neutron port's MAC."""
    mtu = neutron.network(port.network_id).mtu or DEFAULT_MTU
    return lx.Link(name, 0, INTERNAL_PORT_FLAGS, mtu, "UNKNOWN", kind="ether", mac=port.mac_address)


def port_cidrs(neutron: Neutron, port: Port) -> list[tuple[str, IPNetwork]]:
    """(address, subnet) of each IPv4 fixed IP of the port (``fixed_ip_cidrs``)."""
    out = []
    for subnet_id, ip in port.fixed_ips:
        if ip.version == 4:
            out.append((str(ip), neutron.subnet(subnet_id).cidr))
    return out


def connected_routes(device: str, cidrs: Iterable[tuple[str, IPNetwork]], neutron_id: str) -> list[lx.Route]:
    """The kernel's prefix routes: one per subnet of the device (a second address there is secondary)."""
    routes: dict[str, lx.Route] = {}
    for ip, net in cidrs:
        if net.prefixlen < net.max_prefixlen and str(net) not in routes:
            routes[str(net)] = lx.Route(
                str(net),
                device=device,
                scope="link",
                source=ip,
                proto=c.ROUTE_PROTO_KERNEL,
                provenance=provenance(neutron_id),
            )
    return list(routes.values())


def gateway_routes(device: str, gateway: str, subnet: IPNetwork, neutron_id: str) -> list[lx.Route]:
    """``add_gateway`` (proto static) and, for a gateway outside the subnet, its on-link host route first."""
    routes = []
    if ipaddress.ip_address(gateway) not in subnet:
        routes.append(
            lx.Route(
                f"{gateway}/32",
                device=device,
                scope="link",
                proto=c.ROUTE_PROTO_STATIC,
                provenance=provenance(neutron_id),
            )
        )
    routes.append(
        lx.Route(
            "default", gateway=gateway, device=device, proto=c.ROUTE_PROTO_STATIC, provenance=provenance(neutron_id)
        )
    )
    return routes


def route_key(route: lx.Route) -> tuple[int, int, str]:
    """``ip route`` order: default first, then by network address and prefix length."""
    if route.destination == "default":
        return (-1, 0, route.device or "")
    net = ipaddress.ip_network(route.destination)
    return (int(net.network_address), net.prefixlen, route.device or "")


def build_router_namespaces(neutron: Neutron, plan: HostPlan, notes: list[str]) -> list[lx.Namespace]:
    """One ``qrouter-`` namespace per router with ports plugged on this host."""
    by_router: dict[str, list[Plug]] = {}
    for plug in plan.plugs:
        if plug.kind in ("router_interface", "router_gateway"):
            by_router.setdefault(plug.port.device_id, []).append(plug)
    routers = {r.id: r for r in neutron.routers}
    out = []
    for router_id in sorted(by_router):
        router = routers.get(router_id)
        if router is None:
            notes.append(f"router ports {[p.port.id for p in by_router[router_id]]} name unknown router {router_id!r}")
        elif not router.admin_state_up:
            notes.append(f"router {router_id} is admin-down: the L3 agent keeps no namespace for it")
        elif router.distributed or router.ha:
            notes.append(f"router {router_id} is DVR or HA: its namespaces are not rendered")
        else:
            out.append(_router_namespace(neutron, router, by_router[router_id], notes))
    return out


def _router_namespace(neutron: Neutron, router: Router, plugs: list[Plug], notes: list[str]) -> lx.Namespace:
    all_interfaces = sorted((p.port for p in plugs if p.kind == "router_interface"), key=lambda p: p.id)
    interfaces = []
    for port in all_interfaces:
        if port.admin_state_up:
            interfaces.append(port)
        else:
            notes.append(f"router {router.id}: interface {port.id} is admin-down and not plugged")
    gateways = sorted((p.port for p in plugs if p.kind == "router_gateway"), key=lambda p: p.id)
    if len(gateways) > 1:
        notes.append(f"router {router.id}: several gateway ports {[g.id for g in gateways]}; the first is used")
    gateway = gateways[0] if gateways else None
    fips = _floating_ips(neutron, router) if gateway is not None else []

    links = [LOOPBACK]
    addresses = [LOOPBACK_ADDRESS]
    routes: list[lx.Route] = []
    for port in interfaces:
        device = naming.qr_name(port.id)
        links.append(internal_link(device, port, neutron))
        cidrs = port_cidrs(neutron, port)
        addresses += [Address(device, ip, net.prefixlen) for ip, net in cidrs]
        routes += connected_routes(device, cidrs, port.id)
    if gateway is not None:
        qg = naming.qg_name(gateway.id)
        links.append(internal_link(qg, gateway, neutron))
        cidrs = port_cidrs(neutron, gateway)
        addresses += [Address(qg, ip, net.prefixlen) for ip, net in cidrs]
        addresses += [Address(qg, str(f.floating_ip_address), 32) for f in fips]
        routes += connected_routes(qg, cidrs, gateway.id)
        routes += _gateway_routes(neutron, router, gateway, qg)
    routes += _extra_routes(router, routes, notes)
    return lx.Namespace(
        name=naming.router_namespace(router.id),
        links=tuple(links),
        addresses=tuple(addresses),
        routes=tuple(sorted(routes, key=route_key)),
        netfilter=router_netfilter(router, all_interfaces, gateway, fips),
    )


def _floating_ips(neutron: Neutron, router: Router) -> list[FloatingIP]:
    """The router's associated IPv4 floating IPs (``_get_sync_floating_ips``), by id."""
    return [
        f
        for f in neutron.floatingips
        if f.router_id == router.id and f.fixed_ip_address is not None and f.floating_ip_address.version == 4
    ]


def _gateway_routes(neutron: Neutron, router: Router, gateway: Port, qg: str) -> list[lx.Route]:
    """Default route and on-link routes of the external network (``_external_gateway_added``)."""
    routes: list[lx.Route] = []
    own = {subnet_id for subnet_id, _ip in gateway.fixed_ips}
    defaults: list[lx.Route] = []
    for subnet_id, ip in gateway.fixed_ips:
        subnet = neutron.subnet(subnet_id)
        if ip.version == 4 and subnet.gateway_ip is not None:
            found = gateway_routes(qg, str(subnet.gateway_ip), subnet.cidr, router.id)
            routes += [r for r in found if r.destination != "default"]
            defaults = [r for r in found if r.destination == "default"]
    # set_onlink_routes: the external network's other subnets ("extra_subnets").
    for subnet in neutron.subnets_of(gateway.network_id):
        if subnet.id not in own and subnet.ip_version == 4:
            routes.append(
                lx.Route(
                    str(subnet.cidr),
                    device=qg,
                    scope="link",
                    proto=c.ROUTE_PROTO_STATIC,
                    provenance=provenance(gateway.id),
                )
            )
    return routes + defaults


def _extra_routes(router: Router, connected: list[lx.Route], notes: list[str]) -> list[lx.Route]:
    """``routes_updated``: ``ip route replace <dest> via <nexthop>``, ECMP for a shared destination."""
    subnets = [
        (ipaddress.ip_network(r.destination), r.device)
        for r in connected
        if r.proto == c.ROUTE_PROTO_KERNEL and r.device is not None
    ]
    by_destination: dict[str, list[lx.NextHop]] = {}
    for extra in router.routes:
        if extra.destination.version != 4:
            continue
        device = next((dev for net, dev in subnets if extra.nexthop in net), None)
        if device is None:
            notes.append(
                f"router {router.id}: next hop {extra.nexthop} of {extra.destination} is on no connected subnet"
            )
            continue
        by_destination.setdefault(str(extra.destination), []).append(lx.NextHop(str(extra.nexthop), device))
    out = []
    for destination, hops in by_destination.items():
        where = provenance(router.id)
        if len(hops) == 1:
            hop = hops[0]
            out.append(
                lx.Route(
                    destination, gateway=hop.gateway, device=hop.device, proto=c.ROUTE_PROTO_STATIC, provenance=where
                )
            )
        else:
            out.append(lx.Route(destination, nexthops=tuple(hops), proto=c.ROUTE_PROTO_STATIC, provenance=where))
    return out


def router_netfilter(
    router: Router, interfaces: list[Port], gateway: Port | None, fips: list[FloatingIP]
) -> lx.Netfilter:
    """The router's iptables in the order ``RouterInfo`` and the metadata driver add them.

    ``interfaces`` are all the router's interface ports, admin-down ones
    included: the address-scope rules follow ``router['_interfaces']``, not
    what is plugged.
    """
    m = IptablesManager(c.L3_AGENT_WRAP, router.id)
    snat = router.enable_snat is not False
    qg = naming.qg_name(gateway.id) if gateway is not None else None
    gateway_ip = next((str(ip) for _s, ip in gateway.fixed_ips if ip.version == 4), None) if gateway else None

    # _initialize_address_scope_iptables and initialize_metadata_iptables (RouterInfo.__init__).
    for chain in ("scope", "floatingip", "float-snat"):
        m.add_chain("mangle", chain)
    m.add_chain("filter", "scope")
    m.add_rule("filter", "FORWARD", (), m.jump("scope"))
    scope_mask = c.ADDRESS_SCOPE_MARK_MASK
    m.add_rule("mangle", "PREROUTING", (), m.jump("scope"))
    m.add_rule(
        "mangle",
        "PREROUTING",
        (lx.MatchMark(0, scope_mask, connection=True, negated=True),),
        lx.ConnMark("restore", nfmask=scope_mask, ctmask=scope_mask),
    )
    m.add_rule("mangle", "PREROUTING", (), m.jump("floatingip"))
    m.add_rule(
        "mangle",
        "float-snat",
        (lx.MatchMark(0, scope_mask, connection=True),),
        lx.ConnMark("save", nfmask=scope_mask, ctmask=scope_mask),
    )
    metadata = (
        lx.MatchAddress("dst", c.METADATA_V4_CIDR),
        lx.MatchInterface("in", naming.DEVICE_PREFIXES["qr"] + "+"),
        lx.MatchProtocol(6),
        lx.MatchPorts("dst", ((c.METADATA_HTTP_PORT, c.METADATA_HTTP_PORT),)),
    )
    m.add_rule("mangle", "PREROUTING", metadata, lx.SetMark(c.METADATA_ACCESS_MARK, c.ROUTER_MARK_MASK))
    # The filter $scope chain's metadata DROP is emptied by process_address_scope below.

    # process_external -> _handle_router_snat_rules -> _add_snat_rules.
    if qg is not None and snat:
        m.add_rule(
            "mangle",
            "POSTROUTING",
            (lx.MatchInterface("out", qg), lx.MatchMark(0, scope_mask, connection=True)),
            lx.ConnMark("save", nfmask=scope_mask, ctmask=scope_mask),
        )
    if qg is not None and gateway_ip is not None:
        random_fully = c.USE_RANDOM_FULLY
        if snat:
            m.add_rule(
                "nat", "snat", (lx.MatchInterface("out", qg),), lx.Nat("SNAT", gateway_ip, random_fully=random_fully)
            )
        m.add_rule(
            "nat",
            "POSTROUTING",
            (
                lx.MatchInterface("out", qg, negated=True),
                lx.MatchState(frozenset({"DNAT"}), negated=True, conntrack=True),
            ),
            lx.Verdict("ACCEPT"),
        )
        m.add_rule(
            "nat",
            "snat",
            (
                lx.MatchMark(c.EXTERNAL_INGRESS_MARK, c.ROUTER_MARK_MASK, negated=True),
                lx.MatchState(frozenset({"DNAT"}), conntrack=True),
            ),
            lx.Nat("SNAT", gateway_ip, random_fully=random_fully),
        )
        m.add_rule(
            "mangle", "mark", (lx.MatchInterface("in", qg),), lx.SetMark(c.EXTERNAL_INGRESS_MARK, c.ROUTER_MARK_MASK)
        )

    # process_address_scope: every device carries the "noscope" mark.
    devices = [naming.qr_name(p.id) for p in interfaces if any(ip.version == 4 for ip in p.ips)]
    if gateway is not None and any(ip.version == 4 for ip in gateway.ips):
        devices.append(naming.qg_name(gateway.id))
    for device in devices:
        owner = _device_owner(device, interfaces, gateway)
        m.add_rule(
            "mangle",
            "scope",
            (lx.MatchInterface("in", device),),
            lx.SetMark(c.NOSCOPE_MARK, scope_mask),
            neutron_id=owner,
        )
        if device == qg and snat:
            continue
        m.add_rule(
            "filter",
            "scope",
            (lx.MatchInterface("out", device), lx.MatchMark(c.NOSCOPE_MARK, scope_mask, negated=True)),
            lx.Verdict("DROP"),
            neutron_id=owner,
        )

    # metadata driver, after_router_added (AFTER_CREATE, once the router is processed).
    mark = lx.MatchMark(c.METADATA_ACCESS_MARK, c.ROUTER_MARK_MASK)
    m.add_rule("filter", "INPUT", (mark,), lx.Verdict("ACCEPT"))
    proxy = (lx.MatchProtocol(6), lx.MatchPorts("dst", ((c.METADATA_PORT, c.METADATA_PORT),)))
    m.add_rule("filter", "INPUT", proxy, lx.Verdict("DROP"))
    m.add_rule("nat", "PREROUTING", metadata, lx.Nat("REDIRECT", ports=str(c.METADATA_PORT)))

    # process_floating_ip_nat_rules (re-added on every router update, hence after the REDIRECT).
    for fip in fips:
        floating, fixed = str(fip.floating_ip_address), str(fip.fixed_ip_address)
        dnat = lx.Nat("DNAT", fixed)
        m.add_rule("nat", "PREROUTING", (lx.MatchAddress("dst", f"{floating}/32"),), dnat, neutron_id=fip.id)
        m.add_rule("nat", "OUTPUT", (lx.MatchAddress("dst", f"{floating}/32"),), dnat, neutron_id=fip.id)
        m.add_rule(
            "nat",
            "float-snat",
            (lx.MatchAddress("src", f"{fixed}/32"),),
            lx.Nat("SNAT", floating, random_fully=c.USE_RANDOM_FULLY),
            neutron_id=fip.id,
        )
    return m.netfilter()


def _device_owner(device: str, interfaces: list[Port], gateway: Port | None) -> str | None:
    for port in [*interfaces, *([gateway] if gateway is not None else [])]:
        if naming.device_belongs_to(device, port.id):
            return port.id
    return None
