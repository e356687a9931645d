"""Synthetic Neutron regions for benchmarks: one network node and many compute nodes over GRE.

``region(hosts, vms_per_compute, seed)`` returns a neutron.json object in the API
shape: OVS agents on every host (full GRE mesh), L3 and DHCP agents on the
network node, a flat external network, projects with one or two networks
each (about ten VMs per network, spread over random compute nodes), a DHCP
port and a router interface per network and a router per project.  The same
arguments always give the same region.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

NAMESPACE = uuid.UUID("8f3a1c52-1f44-4a5e-9b6e-4c7d2e1f0a99")


def _id(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(map(str, parts))))


def _mac(n: int) -> str:
    return f"fa:16:3e:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"


def region(hosts: int, vms_per_compute: int = 25, seed: int = 1) -> dict[str, Any]:
    """A region of ``hosts`` hosts (one network node) with about ``vms_per_compute`` VMs per compute node."""
    if hosts < 2:
        raise ValueError("a region needs a network node and at least one compute node")
    rng = random.Random(seed)
    computes = [f"compute-{i:03d}" for i in range(1, hosts)]
    agents = []
    for i, host in enumerate(["network", *computes]):
        config: dict[str, Any] = {
            "tunnel_types": ["gre"],
            "tunneling_ip": f"10.10.{i // 250}.{i % 250 + 1}",
            "l2_population": False,
            "arp_responder_enabled": False,
            "ovs_hybrid_plug": True,
            "bridge_mappings": {"public": "br-ex"} if host == "network" else {},
        }
        agents.append(_agent(host, "Open vSwitch agent", "neutron-openvswitch-agent", config))
    agents.append(_agent("network", "L3 agent", "neutron-l3-agent", {"agent_mode": "legacy"}))
    agents.append(_agent("network", "DHCP agent", "neutron-dhcp-agent", {}))

    ext_net = _id("net", "public")
    ext_subnet = _id("subnet", "public")
    networks = [_network(ext_net, "public", "admin", "flat", None, True, ext_subnet)]
    subnets = [_subnet(ext_subnet, ext_net, "admin", "203.0.113.0/24", "203.0.113.1")]
    ports: list[dict[str, Any]] = []
    routers = []
    total_vms = vms_per_compute * len(computes)
    n_networks = max(2, total_vms // 10)
    mac = 0x100
    segid = 100
    vm_index = 0
    for n in range(n_networks):
        project = f"project-{n // 2:04d}"
        net = _id("net", n)
        sub = _id("subnet", n)
        segid += 1
        networks.append(_network(net, f"net-{n}", project, "gre", segid, False, sub))
        subnets.append(_subnet(sub, net, project, "10.0.0.0/24", "10.0.0.1"))
        mac += 1
        ports.append(
            _port(_id("dhcp", n), net, sub, project, "network:dhcp", f"dhcp-{net}", "10.0.0.2", mac, "network")
        )
        router = _id("router", project)
        if n % 2 == 0:
            gw = _id("gw", project)
            mac += 1
            ports.append(
                _port(
                    gw,
                    ext_net,
                    ext_subnet,
                    "",
                    "network:router_gateway",
                    router,
                    f"203.0.113.{n // 2 % 200 + 10}",
                    mac,
                    "network",
                )
            )
            routers.append(_router(router, project, ext_net, ext_subnet, f"203.0.113.{n // 2 % 200 + 10}"))
        mac += 1
        ports.append(
            _port(_id("qr", n), net, sub, project, "network:router_interface", router, "10.0.0.1", mac, "network")
        )
        count = total_vms // n_networks + (1 if n < total_vms % n_networks else 0)
        for k in range(count):
            mac += 1
            host = rng.choice(computes)
            vm_index += 1
            ports.append(
                _port(
                    _id("vm", n, k),
                    net,
                    sub,
                    project,
                    "compute:nova",
                    _id("server", n, k),
                    f"10.0.0.{10 + k}",
                    mac,
                    host,
                    f"vm-{vm_index}",
                )
            )
    return {
        "networks": networks,
        "subnets": subnets,
        "ports": ports,
        "routers": routers,
        "floatingips": [],
        "security_groups": [],
        "agents": agents,
    }


def _agent(host: str, kind: str, binary: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _id("agent", host, binary),
        "agent_type": kind,
        "binary": binary,
        "host": host,
        "alive": True,
        "admin_state_up": True,
        "configurations": config,
    }


def _network(
    nid: str, name: str, project: str, kind: str, segid: int | None, external: bool, subnet: str
) -> dict[str, Any]:
    return {
        "id": nid,
        "name": name,
        "project_id": project,
        "tenant_id": project,
        "admin_state_up": True,
        "status": "ACTIVE",
        "shared": False,
        "mtu": 1458 if kind == "gre" else 1500,
        "port_security_enabled": True,
        "provider:network_type": kind,
        "provider:physical_network": "public" if kind == "flat" else None,
        "provider:segmentation_id": segid,
        "router:external": external,
        "subnets": [subnet],
    }


def _subnet(sid: str, net: str, project: str, cidr: str, gateway: str) -> dict[str, Any]:
    return {
        "id": sid,
        "name": f"subnet-{sid[:8]}",
        "network_id": net,
        "project_id": project,
        "tenant_id": project,
        "cidr": cidr,
        "ip_version": 4,
        "gateway_ip": gateway,
        "enable_dhcp": True,
        "allocation_pools": [],
        "host_routes": [],
        "dns_nameservers": [],
    }


def _port(
    pid: str, net: str, sub: str, project: str, owner: str, device: str, ip: str, mac: int, host: str, name: str = ""
) -> dict[str, Any]:
    return {
        "id": pid,
        "name": name,
        "network_id": net,
        "project_id": project,
        "tenant_id": project,
        "device_owner": owner,
        "device_id": device,
        "mac_address": _mac(mac),
        "fixed_ips": [{"subnet_id": sub, "ip_address": ip}],
        "admin_state_up": True,
        "status": "ACTIVE",
        "port_security_enabled": owner.startswith("compute:"),
        "security_groups": [],
        "allowed_address_pairs": [],
        "binding:host_id": host,
        "binding:vif_type": "ovs",
        "binding:vnic_type": "normal",
        "binding:vif_details": {"ovs_hybrid_plug": True, "port_filter": True},
    }


def _router(rid: str, project: str, ext_net: str, ext_subnet: str, ip: str) -> dict[str, Any]:
    return {
        "id": rid,
        "name": f"router-{project}",
        "project_id": project,
        "tenant_id": project,
        "admin_state_up": True,
        "status": "ACTIVE",
        "distributed": False,
        "ha": False,
        "external_gateway_info": {
            "network_id": ext_net,
            "enable_snat": True,
            "external_fixed_ips": [{"subnet_id": ext_subnet, "ip_address": ip}],
        },
        "routes": [],
    }
