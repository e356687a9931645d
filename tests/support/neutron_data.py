"""Small neutron.json objects for tests, and a Hypothesis strategy of random deployments."""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import strategies as st

HOSTS = {"c1": "192.0.2.1", "c2": "192.0.2.2", "c3": "192.0.2.3"}


def agent(host: str, ip: str | None, tunnel_types: tuple[str, ...] = ("gre",), **conf: Any) -> dict[str, Any]:
    configurations: dict[str, Any] = {"tunnel_types": list(tunnel_types), "tunneling_ip": ip, **conf}
    return {
        "id": f"agent-{host}",
        "agent_type": "Open vSwitch agent",
        "binary": "neutron-openvswitch-agent",
        "host": host,
        "alive": True,
        "admin_state_up": True,
        "configurations": configurations,
    }


def network(index: int, segid: int | None, net_type: str = "gre", physnet: str | None = None) -> dict[str, Any]:
    return {
        "id": f"{index:08x}-0000-4000-8000-000000000000",
        "name": f"net{index}",
        "project_id": f"p{index}",
        "provider:network_type": net_type,
        "provider:segmentation_id": segid,
        "provider:physical_network": physnet,
        "subnets": [f"s{index}"],
    }


def subnet(index: int, cidr: str) -> dict[str, Any]:
    return {
        "id": f"s{index}",
        "network_id": f"{index:08x}-0000-4000-8000-000000000000",
        "cidr": cidr,
        "ip_version": ipaddress.ip_network(cidr).version,
    }


def port(number: int, net: int, host: str, ips: list[str], owner: str = "compute:nova", **extra: Any) -> dict[str, Any]:
    obj = {
        "id": f"{number:08x}-aaaa-4bbb-8ccc-{number:012x}",
        "network_id": f"{net:08x}-0000-4000-8000-000000000000",
        "device_owner": owner,
        "mac_address": f"fa:16:3e:00:{number >> 8:02x}:{number & 0xFF:02x}",
        "fixed_ips": [{"subnet_id": f"s{net}", "ip_address": ip} for ip in ips],
        "binding:host_id": host,
        "binding:vif_type": "ovs" if host else "unbound",
        "binding:vif_details": {"ovs_hybrid_plug": True},
        "port_security_enabled": not owner.startswith("network:"),
    }
    obj.update(extra)
    return obj


OWNERS = ("compute:nova", "compute:nova", "network:dhcp", "network:router_interface")


@st.composite
def deployments(draw: st.DrawFn) -> dict[str, Any]:
    hosts = sorted(draw(st.sets(st.sampled_from(sorted(HOSTS)), min_size=1)))
    tunnel_type = draw(st.sampled_from(["gre", "vxlan"]))
    n_networks = draw(st.integers(1, 4))
    segids = draw(st.lists(st.integers(1, 4000), min_size=n_networks, max_size=n_networks, unique=True))
    order = draw(st.permutations(range(1, n_networks + 1)))
    networks = [network(index, segid, tunnel_type) for index, segid in zip(order, segids)]
    ports = []
    for number in range(1, draw(st.integers(0, 10)) + 1):
        net = draw(st.integers(1, n_networks))
        host = draw(st.sampled_from(hosts))
        extra: dict[str, Any] = {"admin_state_up": draw(st.booleans()) or draw(st.booleans())}
        if draw(st.booleans()):
            extra["binding:vif_details"] = {"ovs_hybrid_plug": False}
        ports.append(port(number, net, host, [f"10.{net}.0.{number + 1}"], draw(st.sampled_from(OWNERS)), **extra))
    return {
        "agents": [agent(h, HOSTS[h], (tunnel_type,)) for h in hosts],
        "networks": networks,
        "subnets": [subnet(i, f"10.{i}.0.0/24") for i in range(1, n_networks + 1)],
        "ports": ports,
    }
