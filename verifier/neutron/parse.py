"""``neutron.json`` -> ``Neutron``: type checks and cross-references.

Rules (``../spec/snapshot.md``): unknown top-level keys and unknown fields are
ignored, a missing collection is empty, a missing field takes the API default.
A field that is present with the wrong type or value raises NeutronDataError
naming the file, the collection, the object id, the field and the value, as do
duplicate ids and these broken references: a subnet or port whose network is
not among ``networks``, a fixed IP whose subnet is unknown, belongs to another
network or does not hold the address, a router gateway or floating IP on an
unknown network, a security-group rule of an unknown group.  References to
``ports``, ``routers`` and ``security_groups`` are checked only when that
collection is in the file (a partial export may leave it out).

Security-group rules are read both nested in ``security_groups`` and from a
top-level ``security_group_rules`` collection (an admin export has both); the
same rule id in both places must mean the same rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from verifier.errors import NeutronDataError
from verifier.neutron.fieldreader import FieldReader, IPAddress, freeze
from verifier.neutron.model import (
    AddressPair,
    Agent,
    FixedIp,
    FloatingIP,
    HostRoute,
    Network,
    Neutron,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)

T = TypeVar("T")

COLLECTIONS = (
    "networks",
    "subnets",
    "ports",
    "routers",
    "floatingips",
    "security_groups",
    "security_group_rules",
    "agents",
)

# Largest segmentation id per network type (24-bit VNI, 12-bit VLAN id, 32-bit GRE key).
_SEGID_MAX = {"vlan": 4094, "vxlan": (1 << 24) - 1, "geneve": (1 << 24) - 1, "gre": (1 << 32) - 1}


class _Context:
    """What the per-object parsers need to check references."""

    def __init__(self, source: str, top: Mapping[str, Any]) -> None:
        self.source = source
        self.present = {name for name in COLLECTIONS if name in top}
        self.networks: dict[str, Network] = {}
        self.subnets: dict[str, Subnet] = {}
        self.ports: dict[str, Port] = {}
        self.routers: dict[str, Router] = {}
        self.group_ids: set[str] = set()


def parse_collections(top: Mapping[str, Any], source: str) -> Neutron:
    """Build a Neutron from the decoded JSON object of ``source``."""
    if not isinstance(top, Mapping):
        raise NeutronDataError(source, "neutron.json must hold a JSON object", type(top).__name__)
    ctx = _Context(source, top)
    readers = {name: _readers(top, name, source) for name in COLLECTIONS}
    ctx.group_ids = {r.label for r in readers["security_groups"]}

    ctx.networks = _parse_all(readers["networks"], lambda r: _network(r))
    ctx.subnets = _parse_all(readers["subnets"], lambda r: _subnet(r, ctx))
    ctx.ports = _parse_all(readers["ports"], lambda r: _port(r, ctx))
    ctx.routers = _parse_all(readers["routers"], lambda r: _router(r, ctx))
    floatingips = _parse_all(readers["floatingips"], lambda r: _floatingip(r, ctx))
    loose_rules = _parse_all(readers["security_group_rules"], lambda r: _rule(r, None, ctx))
    groups = _parse_all(readers["security_groups"], lambda r: _group(r, loose_rules))
    agents = _parse_all(readers["agents"], _agent)
    return Neutron(
        networks=_sorted(ctx.networks),
        subnets=_sorted(ctx.subnets),
        ports=_sorted(ctx.ports),
        routers=_sorted(ctx.routers),
        floatingips=_sorted(floatingips),
        security_groups=_sorted(groups),
        agents=_sorted(agents),
        source=source,
    )


def _sorted(items: Mapping[str, T]) -> tuple[T, ...]:
    return tuple(items[k] for k in sorted(items))


def _readers(top: Mapping[str, Any], name: str, source: str) -> list[FieldReader]:
    items = top.get(name)
    if items is None:
        return []
    if not isinstance(items, list):
        raise NeutronDataError(f"{source}: {name}", "a collection must be a JSON list", type(items).__name__)
    readers = []
    for index, obj in enumerate(items):
        if not isinstance(obj, Mapping):
            text = obj if isinstance(obj, str) else json.dumps(obj)
            raise NeutronDataError(f"{source}: {name}[#{index}]", "not a JSON object", text[:80])
        ident = obj.get("id")
        if not isinstance(ident, str) or not ident:
            reader = FieldReader(source, name, obj, f"#{index}")
            raise reader.error("id", "a non-empty string id is required", ident)
        readers.append(FieldReader(source, name, obj, ident))
    return readers


def _parse_all(readers: list[FieldReader], parse: Callable[[FieldReader], T]) -> dict[str, T]:
    out: dict[str, T] = {}
    for r in readers:
        if r.label in out:
            raise NeutronDataError(r.where, "duplicate id", r.label)
        out[r.label] = parse(r)
    return out


def _project(r: FieldReader) -> tuple[str, str]:
    project = r.opt_str("project_id")
    tenant = r.opt_str("tenant_id")
    project_id = project if project is not None else (tenant or "")
    return project_id, tenant if tenant is not None else project_id


# ---------------------------------------------------------------- networks, subnets


def _network(r: FieldReader) -> Network:
    network_type = r.opt_str("provider:network_type")
    segmentation_id = r.opt_int("provider:segmentation_id", 1, _SEGID_MAX.get(network_type or "", 1 << 32))
    if network_type in _SEGID_MAX and segmentation_id is None and r.present("provider:network_type"):
        raise r.error("provider:segmentation_id", f"required for a {network_type} network", None)
    if network_type in ("flat", "local") and segmentation_id is not None:
        raise r.error("provider:segmentation_id", f"must be null for a {network_type} network", segmentation_id)
    project_id, tenant_id = _project(r)
    return Network(
        id=r.label,
        name=r.str_("name"),
        project_id=project_id,
        tenant_id=tenant_id,
        network_type=network_type,
        segmentation_id=segmentation_id,
        physical_network=r.opt_str("provider:physical_network"),
        router_external=r.bool_("router:external", False),
        shared=r.bool_("shared", False),
        admin_state_up=r.bool_("admin_state_up", True),
        port_security_enabled=r.bool_("port_security_enabled", True),
        mtu=r.opt_int("mtu", 0, 65535),
        subnets=r.str_list("subnets"),
        status=r.str_("status"),
    )


def _network_ref(r: FieldReader, key: str, ctx: _Context, value: Any = None, given: bool = False) -> str:
    if not given:
        value = r.raw(key)
    if not isinstance(value, str) or not value:
        raise r.error(key, "a network id is required", value)
    if value not in ctx.networks:
        raise r.error(key, "network not among networks", value)
    return value


def _subnet(r: FieldReader, ctx: _Context) -> Subnet:
    network_id = _network_ref(r, "network_id", ctx)
    cidr = r.opt_cidr("cidr")
    if cidr is None:
        raise r.error("cidr", "a CIDR is required", None)
    ip_version = r.opt_int("ip_version", 4, 6)
    if ip_version is not None and ip_version != cidr.version:
        raise r.error("ip_version", f"does not match cidr {cidr}", ip_version)
    gateway_ip = r.opt_ip("gateway_ip")
    if gateway_ip is not None and gateway_ip.version != cidr.version:
        raise r.error("gateway_ip", f"not an IPv{cidr.version} address", str(gateway_ip))
    pools = []
    for pool in r.objects("allocation_pools"):
        sub = r.sub("allocation_pools", pool)
        start, end = sub.ip("start"), sub.ip("end")
        for key, ip in (("start", start), ("end", end)):
            if ip.version != cidr.version or ip not in cidr:
                raise sub.error(key, f"outside the subnet {cidr}", str(ip))
        if end < start:  # type: ignore[operator]
            raise sub.error("end", f"before start {start}", str(end))
        pools.append((start, end))
    project_id, tenant_id = _project(r)
    return Subnet(
        id=r.label,
        name=r.str_("name"),
        network_id=network_id,
        project_id=project_id,
        tenant_id=tenant_id,
        cidr=cidr,
        ip_version=cidr.version,
        gateway_ip=gateway_ip,
        enable_dhcp=r.bool_("enable_dhcp", True),
        allocation_pools=tuple(pools),
        host_routes=_routes(r, "host_routes"),
        dns_nameservers=tuple(r.ip("dns_nameservers", v, given=True) for v in r.list_("dns_nameservers")),
        ipv6_address_mode=r.opt_str("ipv6_address_mode"),
        ipv6_ra_mode=r.opt_str("ipv6_ra_mode"),
    )


def _routes(r: FieldReader, key: str) -> tuple[HostRoute, ...]:
    routes = []
    for route in r.objects(key):
        sub = r.sub(key, route)
        destination = sub.opt_cidr("destination", strict=False)
        if destination is None:
            raise sub.error("destination", "a CIDR is required", None)
        routes.append(HostRoute(destination, sub.ip("nexthop")))
    return tuple(routes)


def _fixed_ips(r: FieldReader, key: str, network_id: str | None, ctx: _Context) -> tuple[FixedIp, ...]:
    """``[{"subnet_id", "ip_address"}]``; each subnet known, on ``network_id`` (if given), holding the IP."""
    out = []
    for item in r.objects(key):
        sub = r.sub(key, item)
        subnet_id = sub.opt_str("subnet_id")
        if not subnet_id:
            raise sub.error("subnet_id", "a subnet id is required", subnet_id)
        subnet = ctx.subnets.get(subnet_id)
        if subnet is None:
            raise sub.error("subnet_id", "subnet not among subnets", subnet_id)
        if network_id is not None and subnet.network_id != network_id:
            raise sub.error("subnet_id", f"subnet is on network {subnet.network_id}, not {network_id}", subnet_id)
        ip = sub.ip("ip_address")
        if ip.version != subnet.cidr.version or ip not in subnet.cidr:
            raise sub.error("ip_address", f"outside its subnet {subnet.cidr}", str(ip))
        out.append((subnet_id, ip))
    return tuple(out)


# ---------------------------------------------------------------- ports


def _port(r: FieldReader, ctx: _Context) -> Port:
    network_id = _network_ref(r, "network_id", ctx)
    mac = r.mac("mac_address")
    groups = r.str_list("security_groups")
    if "security_groups" in ctx.present:
        for group in groups:
            if group not in ctx.group_ids:
                raise r.error("security_groups", "security group not among security_groups", group)
    pairs = []
    for pair in r.objects("allowed_address_pairs"):
        sub = r.sub("allowed_address_pairs", pair)
        ip = sub.opt_cidr("ip_address", strict=False)
        if ip is None:
            raise sub.error("ip_address", "an IP address or CIDR is required", None)
        pair_mac = sub.mac("mac_address") if sub.raw("mac_address") is not None else mac
        pairs.append(AddressPair(ip, pair_mac))
    project_id, tenant_id = _project(r)
    return Port(
        id=r.label,
        name=r.str_("name"),
        network_id=network_id,
        project_id=project_id,
        tenant_id=tenant_id,
        device_owner=r.str_("device_owner"),
        device_id=r.str_("device_id"),
        mac_address=mac,
        fixed_ips=_fixed_ips(r, "fixed_ips", network_id, ctx),
        admin_state_up=r.bool_("admin_state_up", True),
        status=r.str_("status"),
        port_security_enabled=r.bool_("port_security_enabled", True),
        security_groups=groups,
        allowed_address_pairs=tuple(pairs),
        binding_host_id=r.str_("binding:host_id"),
        binding_vif_type=r.opt_str("binding:vif_type"),
        binding_vnic_type=r.opt_str("binding:vnic_type"),
        binding_vif_details=_items(r, "binding:vif_details"),
        binding_profile=_items(r, "binding:profile"),
    )


def _items(r: FieldReader, key: str) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((str(k), freeze(v)) for k, v in r.dict_(key).items()))


# ---------------------------------------------------------------- routers, floating IPs


def _router(r: FieldReader, ctx: _Context) -> Router:
    info = r.dict_("external_gateway_info")
    gateway_network_id: str | None = None
    enable_snat: bool | None = None
    external_ips: tuple[FixedIp, ...] = ()
    if info:
        sub = r.sub("external_gateway_info", info)
        gateway_network_id = _network_ref(sub, "network_id", ctx)
        enable_snat = sub.opt_bool("enable_snat")
        external_ips = _fixed_ips(sub, "external_fixed_ips", gateway_network_id, ctx)
    project_id, tenant_id = _project(r)
    return Router(
        id=r.label,
        name=r.str_("name"),
        project_id=project_id,
        tenant_id=tenant_id,
        admin_state_up=r.bool_("admin_state_up", True),
        status=r.str_("status"),
        distributed=r.opt_bool("distributed"),
        ha=r.opt_bool("ha"),
        gateway_network_id=gateway_network_id,
        enable_snat=enable_snat,
        external_fixed_ips=external_ips,
        routes=_routes(r, "routes"),
    )


def _floatingip(r: FieldReader, ctx: _Context) -> FloatingIP:
    network_id = _network_ref(r, "floating_network_id", ctx)
    address = r.ip("floating_ip_address")
    port_id = r.opt_str("port_id")
    if port_id is not None and "ports" in ctx.present and port_id not in ctx.ports:
        raise r.error("port_id", "port not among ports", port_id)
    router_id = r.opt_str("router_id")
    if router_id is not None and "routers" in ctx.present and router_id not in ctx.routers:
        raise r.error("router_id", "router not among routers", router_id)
    project_id, tenant_id = _project(r)
    return FloatingIP(
        id=r.label,
        project_id=project_id,
        tenant_id=tenant_id,
        floating_ip_address=address,
        floating_network_id=network_id,
        fixed_ip_address=r.opt_ip("fixed_ip_address"),
        port_id=port_id,
        router_id=router_id,
        status=r.str_("status"),
    )


# ---------------------------------------------------------------- security groups


def _rule(r: FieldReader, parent: str | None, ctx: _Context | None) -> SecurityGroupRule:
    group = r.opt_str("security_group_id") or parent
    if not group:
        raise r.error("security_group_id", "a security group id is required", group)
    if parent is not None and group != parent:
        raise r.error("security_group_id", f"differs from the enclosing group {parent}", group)
    if ctx is not None and group not in ctx.group_ids:
        raise r.error("security_group_id", "security group not among security_groups", group)
    ethertype = r.choice("ethertype", ("IPv4", "IPv6"))
    prefix = r.opt_cidr("remote_ip_prefix", strict=False)
    if prefix is not None and prefix.version != int(ethertype[-1]):
        raise r.error("remote_ip_prefix", f"not an {ethertype} prefix", str(prefix))
    protocol = r.raw("protocol")
    if isinstance(protocol, int) and not isinstance(protocol, bool):
        protocol = str(protocol)
    elif protocol is not None and not isinstance(protocol, str):
        raise r.error("protocol", "must be a protocol name or number", protocol)
    return SecurityGroupRule(
        id=r.label,
        security_group_id=group,
        project_id=_project(r)[0],
        direction=r.choice("direction", ("ingress", "egress")),
        ethertype=ethertype,
        protocol=protocol,
        port_range_min=r.opt_int("port_range_min", 0, 65535),
        port_range_max=r.opt_int("port_range_max", 0, 65535),
        remote_ip_prefix=prefix,
        remote_group_id=r.opt_str("remote_group_id"),
        remote_address_group_id=r.opt_str("remote_address_group_id"),
    )


def _group(r: FieldReader, loose_rules: Mapping[str, SecurityGroupRule]) -> SecurityGroup:
    rules: dict[str, SecurityGroupRule] = {}
    for index, item in enumerate(r.objects("security_group_rules")):
        ident = item.get("id")
        if not isinstance(ident, str) or not ident:
            raise r.sub("security_group_rules", item).error("id", f"rule #{index}: an id is required", ident)
        nested = FieldReader(r.source, f"security_groups[{r.label}].security_group_rules", item, ident)
        if ident in rules:
            raise NeutronDataError(nested.where, "duplicate id", ident)
        rules[ident] = _rule(nested, r.label, None)
    for ident, rule in loose_rules.items():
        if rule.security_group_id != r.label:
            continue
        if ident in rules and rules[ident] != rule:
            where = f"{r.source}: security_group_rules[{ident}]"
            raise NeutronDataError(where, f"differs from the same rule nested in security group {r.label}")
        rules[ident] = rule
    project_id, tenant_id = _project(r)
    return SecurityGroup(
        id=r.label,
        name=r.str_("name"),
        project_id=project_id,
        tenant_id=tenant_id,
        stateful=r.bool_("stateful", True),
        rules=tuple(rules[k] for k in sorted(rules)),
    )


# ---------------------------------------------------------------- agents


def _agent(r: FieldReader) -> Agent:
    host = r.opt_str("host")
    if not host:
        raise r.error("host", "a host name is required", host)
    conf = r.dict_("configurations")
    c = r.sub("configurations", conf)
    tunneling_ip: IPAddress | None = None
    if c.raw("tunneling_ip") not in (None, ""):
        tunneling_ip = c.ip("tunneling_ip")
    mappings = c.dict_("bridge_mappings")
    for physnet, bridge in mappings.items():
        if not isinstance(bridge, str) or not bridge:
            raise c.error("bridge_mappings", f"bridge for {physnet!r} must be a bridge name", bridge)
        if list(mappings.values()).count(bridge) > 1:
            raise c.error("bridge_mappings", "a bridge may serve only one physical network", bridge)
    arp_responder = c.opt_bool("arp_responder_enabled")
    if arp_responder is None:
        arp_responder = c.bool_("arp_responder", False)
    return Agent(
        id=r.label,
        agent_type=r.str_("agent_type"),
        binary=r.str_("binary"),
        host=host,
        alive=r.bool_("alive", True),
        admin_state_up=r.bool_("admin_state_up", True),
        tunneling_ip=tunneling_ip,
        tunnel_types=c.str_list("tunnel_types"),
        bridge_mappings=tuple(sorted(mappings.items())),
        l2_population=c.bool_("l2_population", False),
        arp_responder=arp_responder,
        ovs_hybrid_plug=c.opt_bool("ovs_hybrid_plug"),
        tunnel_interface=c.opt_str("tunnel_interface"),
        configurations=_items(r, "configurations"),
    )
