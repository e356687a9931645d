"""Synthetic Neutron regions for benchmarks: one network node and many compute nodes over GRE.

``region(hosts, vms_per_compute, seed)`` returns a neutron.json object in the API
shape: OVS agents on every host (full GRE mesh), L3 and DHCP agents on the
network node, a flat external network, projects with two networks each
(10.0.0.0/24 and 10.0.1.0/24, the same in every project; about ten VMs per
network, spread over random compute nodes), a DHCP port and a router
interface per network, a router per project with a gateway, a floating IP on
the project's first VM, and a security group per project (ssh from anywhere,
anything from the group, all egress) on every VM.  The same arguments always
give the same region.
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
    subnets = [_subnet(ext_subnet, ext_net, "admin", "198.18.0.0/15", "198.18.0.1")]
    ports: list[dict[str, Any]] = []
    routers = []
    floatingips: list[dict[str, Any]] = []
    groups: dict[str, dict[str, Any]] = {}
    total_vms = vms_per_compute * len(computes)
    n_networks = max(2, total_vms // 10)
    mac = 0x100
    segid = 100
    vm_index = 0
    for n in range(n_networks):
        p = n // 2
        project = f"project-{p:04d}"
        net = _id("net", n)
        sub = _id("subnet", n)
        prefix = f"10.0.{n % 2}"
        segid += 1
        networks.append(_network(net, f"net-{n}", project, "gre", segid, False, sub))
        subnets.append(_subnet(sub, net, project, f"{prefix}.0/24", f"{prefix}.1"))
        mac += 1
        ports.append(
            _port(_id("dhcp", n), net, sub, project, "network:dhcp", f"dhcp-{net}", f"{prefix}.2", mac, "network")
        )
        router = _id("router", project)
        group = groups.setdefault(project, _security_group(_id("sg", project), project))
        if n % 2 == 0:
            gw = _id("gw", project)
            gw_ip = f"198.18.{p // 200}.{p % 200 + 10}"
            mac += 1
            ports.append(_port(gw, ext_net, ext_subnet, "", "network:router_gateway", router, gw_ip, mac, "network"))
            routers.append(_router(router, project, ext_net, ext_subnet, gw_ip))
        mac += 1
        ports.append(
            _port(_id("qr", n), net, sub, project, "network:router_interface", router, f"{prefix}.1", mac, "network")
        )
        count = total_vms // n_networks + (1 if n < total_vms % n_networks else 0)
        for k in range(count):
            mac += 1
            host = rng.choice(computes)
            vm_index += 1
            vm = _port(
                _id("vm", n, k),
                net,
                sub,
                project,
                "compute:nova",
                _id("server", n, k),
                f"{prefix}.{10 + k}",
                mac,
                host,
                f"vm-{vm_index}",
            )
            vm["security_groups"] = [group["id"]]
            ports.append(vm)
            if n % 2 == 0 and k == 0:
                fip_ip = f"198.19.{p // 200}.{p % 200 + 10}"
                fip = _id("fip", project)
                mac += 1
                ports.append(
                    _port(_id("fip-port", project), ext_net, ext_subnet, "", "network:floatingip", fip, fip_ip, mac, "")
                )
                floatingips.append(
                    {
                        "id": fip,
                        "project_id": project,
                        "tenant_id": project,
                        "floating_ip_address": fip_ip,
                        "floating_network_id": ext_net,
                        "fixed_ip_address": f"{prefix}.{10 + k}",
                        "port_id": vm["id"],
                        "router_id": router,
                        "status": "ACTIVE",
                    }
                )
    return {
        "networks": networks,
        "subnets": subnets,
        "ports": ports,
        "routers": routers,
        "floatingips": floatingips,
        "security_groups": list(groups.values()),
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


def _security_group(gid: str, project: str) -> dict[str, Any]:
    def rule(n: int, direction: str, **extra: Any) -> dict[str, Any]:
        base = {
            "id": _id("rule", gid, n),
            "security_group_id": gid,
            "project_id": project,
            "tenant_id": project,
            "direction": direction,
            "ethertype": "IPv4",
            "protocol": None,
            "port_range_min": None,
            "port_range_max": None,
            "remote_ip_prefix": None,
            "remote_group_id": None,
        }
        base.update(extra)
        return base

    return {
        "id": gid,
        "name": "default",
        "project_id": project,
        "tenant_id": project,
        "stateful": True,
        "security_group_rules": [
            rule(0, "egress"),
            rule(1, "ingress", remote_group_id=gid),
            rule(2, "ingress", protocol="tcp", port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0"),
        ],
    }
