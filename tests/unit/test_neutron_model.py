"""neutron.json -> Neutron: the real 29.0.0 sample, the built-in example, every error path."""

from __future__ import annotations

import copy
import ipaddress
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from verifier.errors import NeutronDataError, UsageError
from verifier.examples import example_names, example_source, load_example_json
from verifier.neutron.model import AddressPair, HostRoute, Neutron, parse_neutron

SAMPLE_PATH = Path(__file__).resolve().parents[1] / "data" / "neutron-api-sample.json"
"""A real export from neutron-server 29.0.0 (the project's shared test data), kept in the repo."""
SAMPLE_NAME = "neutron-api-sample.json"
FILE = "snap/neutron.json"

NET_A_SAMPLE = "04132e7e-1cb0-438a-8f1a-ee1bccc04813"
VM0_A_SAMPLE = "32fd1c36-64c4-4ebb-8f39-ebcf18c83751"

NET_A = "d24963da-5221-481e-adf5-fe033d6e0b4e"
NET_B = "e8f1c2d4-7a3b-4c59-8e16-5d2a9b0f3c71"
NET_C = "3b0c7f57-91d2-4e8a-b6f3-0c5e2d7a9148"
NET_PUBLIC = "9a6f3a2e-6c1b-4f0e-9d62-2b8f4c7e1a05"
SUB_A = "7f3e2a1b-8c4d-4e5f-9a6b-1c2d3e4f5a60"
SUB_B = "a41c9e07-5b2d-4f86-8e3a-6d7c0b9f2e15"
VM_A1 = "6a2f8d4c-0b1e-4c37-9d58-2e7f1a3b5c90"
ROUTER_A = "71c3e9a5-2d8b-4f64-9e1a-5b7c0d3f2e98"


def example() -> dict[str, Any]:
    return load_example_json("seed-gre")


def parse(obj: dict[str, Any]) -> Neutron:
    return parse_neutron(obj, FILE)


def find(obj: dict[str, Any], collection: str, ident: str) -> dict[str, Any]:
    for item in obj[collection]:
        if item["id"] == ident:
            return item
    raise KeyError(ident)


# ---------------------------------------------------------------- the real sample


def test_real_neutron_29_sample_parses_as_is() -> None:
    n = parse_neutron(json.loads(SAMPLE_PATH.read_text()), SAMPLE_NAME)
    counts = [len(n.networks), len(n.subnets), len(n.ports), len(n.routers), len(n.floatingips)]
    assert counts == [3, 3, 14, 2, 2]
    assert len(n.security_groups) == 5 and sum(len(g.rules) for g in n.security_groups) == 22
    assert len(n.agents) == 5
    net = n.network(NET_A_SAMPLE)
    assert (net.network_type, net.segmentation_id, net.physical_network, net.mtu) == ("gre", 970, None, 1458)
    assert net.project_id == "project-a" and not net.router_external
    vm = n.port(VM0_A_SAMPLE)
    assert vm.fixed_ips == (("d892752d-6cfe-4686-9d8b-a78ad11a5afa", ipaddress.ip_address("10.0.1.100")),)
    assert (vm.binding_host_id, vm.binding_vif_type, vm.mac_address) == ("compute-1", "ovs", "fa:16:3e:49:92:5f")
    assert vm.vif_detail("ovs_hybrid_plug") is None and vm.vif_detail("bound_drivers") == (("0", "openvswitch"),)
    assert vm.security_groups == ("b5b3dad7-5c9b-4186-93d9-9ebcb0d9230a",)
    assert n.ovs_hosts() == ("compute-1", "compute-2", "network-1")
    network_agent = n.ovs_agent("network-1")
    assert network_agent is not None and network_agent.bridge_mappings == (("public", "br-ex"),)
    assert network_agent.tunneling_ip == ipaddress.ip_address("192.0.2.21")
    web = n.security_group("b5b3dad7-5c9b-4186-93d9-9ebcb0d9230a")
    assert web.name == "web-project-a" and len(web.rules) == 5
    assert {len(g.rules) for g in n.security_groups if g.name == "default"} == {4}
    floating = {f.floating_ip_address: f for f in n.floatingips}
    assert floating[ipaddress.ip_address("203.0.113.141")].port_id == VM0_A_SAMPLE
    assert floating[ipaddress.ip_address("203.0.113.74")].port_id is None
    gateway_ports = [p for p in n.ports if p.device_owner == "network:router_gateway"]
    assert {p.project_id for p in gateway_ports} == {""}


# ---------------------------------------------------------------- the built-in example


def test_example_names_and_source() -> None:
    assert example_names() == ["seed-gre"]
    assert example_source("seed-gre") == "example:seed-gre/neutron.json"
    with pytest.raises(UsageError, match="no-such"):
        load_example_json("no-such")


def test_seed_gre_example_reproduces_the_lab() -> None:
    n = parse_neutron(example(), example_source("seed-gre"))
    a, b, c = n.network(NET_A), n.network(NET_B), n.network(NET_C)
    assert (a.project_id, a.network_type, a.segmentation_id) == ("tenant-a", "gre", 614)
    assert (b.project_id, b.segmentation_id, c.project_id, c.segmentation_id) == ("tenant-b", 291, "tenant-c", 857)
    assert n.subnets_of(NET_A)[0].cidr == n.subnets_of(NET_B)[0].cidr == ipaddress.ip_network("10.0.22.0/24")
    assert str(n.subnets_of(NET_C)[0].cidr) == "10.0.33.0/24"
    public = n.network(NET_PUBLIC)
    assert public.router_external and public.network_type == "flat" and public.physical_network == "public"
    assert public.project_id == "admin"
    dhcp = [p for p in n.ports if p.device_owner == "network:dhcp" and p.network_id == NET_A]
    assert len(dhcp) == 1 and dhcp[0].id.startswith("15865c29-9b")
    assert dhcp[0].ips == (ipaddress.ip_address("10.0.22.201"),) and dhcp[0].binding_host_id == "network"
    vm = n.port(VM_A1)
    assert vm.mac_address == "fa:16:3e:19:65:62" and vm.ips == (ipaddress.ip_address("10.0.22.202"),)
    assert vm.binding_host_id == "compute1" and vm.vif_detail("ovs_hybrid_plug") is True
    assert n.ovs_hosts() == ("compute1", "compute2", "network")
    for host, ip in (("network", "10.10.10.11"), ("compute1", "10.10.10.12"), ("compute2", "10.10.10.13")):
        agent = n.ovs_agent(host)
        assert agent is not None and agent.tunnel_types == ("gre",) and str(agent.tunneling_ip) == ip
    network_agents = {a.agent_type for a in n.agents_on("network")}
    assert network_agents == {"Open vSwitch agent", "L3 agent", "DHCP agent"}
    # Tenant C's subnet hangs off tenant A's router only.
    router_a = n.router(ROUTER_A)
    assert router_a.gateway_network_id == NET_PUBLIC and router_a.enable_snat
    assert {p.network_id for p in n.router_ports(ROUTER_A)} == {NET_A, NET_C, NET_PUBLIC}
    assert {f.port_id for f in n.floatingips} == {VM_A1, "9c3d7e1f-4a2b-4c85-b6d9-7e0f2a1c3b58"}
    web = [g for g in n.security_groups if g.name == "web" and g.project_id == "tenant-a"]
    assert len(web) == 1
    ports = {(r.protocol, r.port_range_min) for r in web[0].rules if r.direction == "ingress"}
    assert ports == {("tcp", 22), ("tcp", 80)}
    assert n.project_of_network(NET_C) == "tenant-c"
    assert [p.id for p in n.ports_on("compute1")] == sorted(p.id for p in n.ports_on("compute1"))


def test_example_has_every_field_the_sample_has() -> None:
    sample = json.loads(SAMPLE_PATH.read_text())
    ours = example()
    for collection in ("networks", "subnets", "ports", "routers", "floatingips", "security_groups", "agents"):
        sample_keys = set().union(*(set(o) for o in sample[collection]))
        for obj in ours[collection]:
            missing = sample_keys - set(obj) - {"is_default"}
            assert not missing, f"{collection} {obj['id']} lacks {missing}"


# ---------------------------------------------------------------- tolerance


def test_unknown_keys_and_fields_are_ignored_and_missing_collections_are_empty() -> None:
    obj = example()
    obj["something_new"] = {"x": 1}
    obj["networks"][0]["brand_new_field"] = [1, 2]
    assert parse(obj) == parse(example())
    assert parse({}) == Neutron()
    n = parse({"networks": example()["networks"]})
    assert len(n.networks) == 4 and n.ports == ()


def test_source_takes_no_part_in_equality() -> None:
    assert parse_neutron(example(), "a.json") == parse_neutron(example(), "b.json")


def test_legacy_tenant_id_is_used_when_project_id_is_absent() -> None:
    obj = example()
    for collection in ("networks", "subnets", "ports"):
        for item in obj[collection]:
            item.pop("project_id")
    n = parse(obj)
    assert n.network(NET_A).project_id == "tenant-a" and n.network(NET_A).tenant_id == "tenant-a"
    obj2 = example()
    find(obj2, "networks", NET_A).pop("tenant_id")
    assert parse(obj2).network(NET_A).tenant_id == "tenant-a"


def test_allowed_address_pairs_default_to_the_port_mac() -> None:
    obj = example()
    port = find(obj, "ports", VM_A1)
    port["allowed_address_pairs"] = [
        {"ip_address": "10.0.22.0/24"},
        {"ip_address": "10.0.22.99", "mac_address": "FA:16:3E:00:00:01"},
    ]
    pairs = parse(obj).port(VM_A1).allowed_address_pairs
    assert pairs == (
        AddressPair(ipaddress.ip_network("10.0.22.0/24"), "fa:16:3e:19:65:62"),
        AddressPair(ipaddress.ip_network("10.0.22.99/32"), "fa:16:3e:00:00:01"),
    )


def test_host_routes_and_router_routes() -> None:
    obj = example()
    find(obj, "subnets", SUB_A)["host_routes"] = [{"destination": "10.9.0.0/16", "nexthop": "10.0.22.9"}]
    find(obj, "routers", ROUTER_A)["routes"] = [{"destination": "10.8.0.0/16", "nexthop": "10.0.22.8"}]
    n = parse(obj)
    assert n.subnet(SUB_A).host_routes == (
        HostRoute(ipaddress.ip_network("10.9.0.0/16"), ipaddress.ip_address("10.0.22.9")),
    )
    assert n.router(ROUTER_A).routes[0].nexthop == ipaddress.ip_address("10.0.22.8")


def test_top_level_rules_are_merged_with_nested_ones() -> None:
    obj = example()
    group = obj["security_groups"][0]
    removed = group["security_group_rules"].pop()
    n = parse(obj)
    assert removed["id"] in {r.id for r in n.security_group(group["id"]).rules}
    obj["security_group_rules"] = []
    assert removed["id"] not in {r.id for r in parse(obj).security_group(group["id"]).rules}


# ---------------------------------------------------------------- errors

Mutation = Callable[[dict[str, Any]], None]


def _set(collection: str, ident: str, key: str, value: Any) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        find(obj, collection, ident)[key] = value

    return mutate


def _fixed_ip(ip: str, subnet: str = SUB_A) -> Mutation:
    return _set("ports", VM_A1, "fixed_ips", [{"subnet_id": subnet, "ip_address": ip}])


def _duplicate_network(obj: dict[str, Any]) -> None:
    obj["networks"].append(copy.deepcopy(find(obj, "networks", NET_A)))


def _orphan_rule(obj: dict[str, Any]) -> None:
    obj["security_group_rules"][0]["security_group_id"] = "no-such-group"


def _conflicting_rule(obj: dict[str, Any]) -> None:
    obj["security_group_rules"][0]["port_range_min"] = 1


def _agent_conf(key: str, value: Any) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        agent = next(a for a in obj["agents"] if a["host"] == "network" and a["binary"].endswith("openvswitch-agent"))
        agent["configurations"][key] = value

    return mutate


def _first_rule_id(obj: dict[str, Any]) -> str:
    return str(obj["security_group_rules"][0]["id"])


ERRORS: list[tuple[str, Mutation, tuple[str, ...]]] = [
    (
        "segmentation id not an integer",
        _set("networks", NET_A, "provider:segmentation_id", "abc"),
        ("networks[" + NET_A + "]", "provider:segmentation_id", "abc"),
    ),
    (
        "segmentation id out of the VLAN range",
        lambda o: find(o, "networks", NET_A).update(
            {"provider:network_type": "vlan", "provider:segmentation_id": 5000}
        ),
        ("networks[" + NET_A + "]", "provider:segmentation_id", "5000", "4094"),
    ),
    (
        "gre network without a segmentation id",
        _set("networks", NET_A, "provider:segmentation_id", None),
        ("networks[" + NET_A + "]", "provider:segmentation_id", "gre"),
    ),
    (
        "flat network with a segmentation id",
        _set("networks", NET_PUBLIC, "provider:segmentation_id", 7),
        ("networks[" + NET_PUBLIC + "]", "provider:segmentation_id", "flat"),
    ),
    (
        "boolean as a string",
        _set("networks", NET_A, "admin_state_up", "yes"),
        ("networks[" + NET_A + "]", "admin_state_up", "yes"),
    ),
    ("duplicate network id", _duplicate_network, ("networks[" + NET_A + "]", "duplicate id")),
    (
        "subnet with a bad CIDR",
        _set("subnets", SUB_A, "cidr", "10.0.22.0/33"),
        ("subnets[" + SUB_A + "]", "cidr", "/33"),
    ),
    (
        "subnet CIDR with host bits",
        _set("subnets", SUB_A, "cidr", "10.0.22.5/24"),
        ("subnets[" + SUB_A + "]", "cidr", "10.0.22.5/24"),
    ),
    ("subnet ip_version mismatch", _set("subnets", SUB_A, "ip_version", 6), ("subnets[" + SUB_A + "]", "ip_version")),
    (
        "subnet gateway of the wrong family",
        _set("subnets", SUB_A, "gateway_ip", "fe80::1"),
        ("subnets[" + SUB_A + "]", "gateway_ip", "fe80::1"),
    ),
    (
        "allocation pool outside the subnet",
        _set("subnets", SUB_A, "allocation_pools", [{"start": "10.0.23.2", "end": "10.0.23.9"}]),
        ("subnets[" + SUB_A + "]", "allocation_pools.start", "10.0.23.2"),
    ),
    (
        "subnet on an unknown network",
        _set("subnets", SUB_A, "network_id", "no-such-net"),
        ("subnets[" + SUB_A + "]", "network_id", "no-such-net"),
    ),
    (
        "a MAC that is not a MAC",
        _set("ports", VM_A1, "mac_address", "fa:16:3e:zz:65:62"),
        ("ports[" + VM_A1 + "]", "mac_address", "fa:16:3e:zz:65:62"),
    ),
    (
        "port on an unknown network",
        _set("ports", VM_A1, "network_id", "no-such-net"),
        ("ports[" + VM_A1 + "]", "network_id", "no-such-net", "not among networks"),
    ),
    (
        "fixed IP outside its subnet",
        _fixed_ip("10.0.23.5"),
        ("ports[" + VM_A1 + "]", "fixed_ips.ip_address", "10.0.23.5", "10.0.22.0/24"),
    ),
    (
        "fixed IP that is not an IP",
        _fixed_ip("10.0.22.300"),
        ("ports[" + VM_A1 + "]", "fixed_ips.ip_address", "10.0.22.300"),
    ),
    (
        "fixed IP on an unknown subnet",
        _fixed_ip("10.0.22.5", "no-such-subnet"),
        ("ports[" + VM_A1 + "]", "fixed_ips.subnet_id", "no-such-subnet"),
    ),
    (
        "fixed IP on another network's subnet",
        _fixed_ip("10.0.22.5", SUB_B),
        ("ports[" + VM_A1 + "]", "fixed_ips.subnet_id", SUB_B, NET_B),
    ),
    (
        "port in an unknown security group",
        _set("ports", VM_A1, "security_groups", ["no-such-group"]),
        ("ports[" + VM_A1 + "]", "security_groups", "no-such-group"),
    ),
    (
        "allowed address pair with a bad MAC",
        _set("ports", VM_A1, "allowed_address_pairs", [{"ip_address": "10.0.22.9", "mac_address": "nope"}]),
        ("ports[" + VM_A1 + "]", "allowed_address_pairs.mac_address", "nope"),
    ),
    (
        "binding details that are not an object",
        _set("ports", VM_A1, "binding:vif_details", ["ovs"]),
        ("ports[" + VM_A1 + "]", "binding:vif_details", "ovs"),
    ),
    (
        "router gateway on an unknown network",
        lambda o: find(o, "routers", ROUTER_A)["external_gateway_info"].update({"network_id": "no-net"}),
        ("routers[" + ROUTER_A + "]", "external_gateway_info.network_id", "no-net"),
    ),
    (
        "router gateway IP outside its subnet",
        lambda o: find(o, "routers", ROUTER_A)["external_gateway_info"]["external_fixed_ips"][0].update(
            {"ip_address": "198.51.100.9"}
        ),
        ("routers[" + ROUTER_A + "]", "external_gateway_info.external_fixed_ips.ip_address", "198.51.100.9"),
    ),
    (
        "floating IP on an unknown port",
        lambda o: o["floatingips"][0].update({"port_id": "no-such-port"}),
        ("floatingips[", "port_id", "no-such-port"),
    ),
    (
        "floating IP address that is not an IP",
        lambda o: o["floatingips"][0].update({"floating_ip_address": "203.0.113"}),
        ("floatingips[", "floating_ip_address", "203.0.113"),
    ),
    (
        "rule with a bad direction",
        lambda o: o["security_group_rules"][0].update({"direction": "sideways"}),
        ("security_group_rules[", "direction", "sideways"),
    ),
    (
        "rule port as a string",
        lambda o: o["security_group_rules"][0].update({"port_range_min": "22"}),
        ("security_group_rules[", "port_range_min", "22"),
    ),
    (
        "rule prefix of the other family",
        lambda o: o["security_group_rules"][0].update({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}),
        ("security_group_rules[", "remote_ip_prefix", "10.0.0.0/8"),
    ),
    ("rule of an unknown group", _orphan_rule, ("security_group_rules[", "security_group_id", "no-such-group")),
    ("top-level rule differs from the nested copy", _conflicting_rule, ("security_group_rules[", "differs")),
    (
        "nested rule with a bad ethertype",
        lambda o: o["security_groups"][0]["security_group_rules"][0].update({"ethertype": "IPX"}),
        ("security_groups[", "security_group_rules[", "ethertype", "IPX"),
    ),
    (
        "agent tunneling IP",
        _agent_conf("tunneling_ip", "10.10.10"),
        ("agents[", "configurations.tunneling_ip", "10.10.10"),
    ),
    (
        "agent maps two physnets to one bridge",
        _agent_conf("bridge_mappings", {"public": "br-ex", "other": "br-ex"}),
        ("agents[", "configurations.bridge_mappings", "br-ex"),
    ),
    ("agent without a host", lambda o: o["agents"][0].update({"host": ""}), ("agents[", "host")),
    ("collection that is not a list", lambda o: o.update({"ports": {"a": 1}}), (FILE + ": ports", "list", "dict")),
    ("object that is not an object", lambda o: o["ports"].append("port!"), ("ports[#15]", "port!")),
    ("object without an id", lambda o: o["networks"][1].pop("id"), ("networks[#1]", "'id'", "None")),
]


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _n, m, e in ERRORS], ids=[n for n, _m, _e in ERRORS])
def test_bad_data_is_an_error_naming_file_collection_object_field_and_value(
    mutate: Mutation, expected: tuple[str, ...]
) -> None:
    obj = example()
    mutate(obj)
    with pytest.raises(NeutronDataError) as info:
        parse(obj)
    message = str(info.value)
    assert message.startswith(FILE + ": ")
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_error_names_the_rule_id() -> None:
    obj = example()
    rule_id = _first_rule_id(obj)
    obj["security_group_rules"][0]["direction"] = "up"
    with pytest.raises(NeutronDataError, match=rule_id):
        parse(obj)


def test_top_level_value_must_be_an_object() -> None:
    with pytest.raises(NeutronDataError, match=r"snap/neutron.json: error: .*JSON object.*list"):
        parse_neutron([], FILE)  # type: ignore[arg-type]
