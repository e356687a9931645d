"""Building the composed network model of a deployment."""

from __future__ import annotations

from models.endpoints import NeutronClassifier
from models.network import OvsNetwork, generic_endpoint
from verifier.deployment import Deployment
from verifier.neutron.model import Neutron


def build_network(deployment: Deployment, **options: object) -> OvsNetwork:
    """Every bridge and namespace of every host as a device, wired by patches, veths and tunnels,
    endpoints tied to Neutron.  ``options`` go to OvsNetwork (``linux``, ``enforce_firewall``...)."""
    missing = {
        key: f"no ovs-ofctl-dump-flows-{key[1]}.txt for {key[1]} on {key[0]}: its flows are unknown"
        for key in deployment.flows_missing
    }
    extra: dict[str, set[str]] = {}
    classify = generic_endpoint
    if deployment.neutron is not None:
        classifier = NeutronClassifier(deployment.neutron)
        classify = classifier
        for agent in deployment.neutron.agents:
            if agent.tunneling_ip is not None:
                extra.setdefault(agent.host, set()).add(str(agent.tunneling_ip))
    ipsets = remote_group_sets(deployment.neutron) if deployment.neutron is not None else {}
    return OvsNetwork(
        deployment.dataplane,
        classify=classify,
        missing_flows=missing,
        extra_addresses=extra,
        neutron=deployment.neutron,
        ipsets=ipsets,
        **options,  # type: ignore[arg-type]
    )


def remote_group_sets(neutron: Neutron) -> dict[str, tuple[str, ...]]:
    """The ipsets the hybrid firewall uses for remote security groups: ``NIPv4`` + group id cut to
    29 characters, holding the fixed IPs and allowed-address-pair IPs of every port in the group
    (neutron/agent/linux/ipset_manager.py, iptables_firewall._select_ips_for_remote_group)."""
    members: dict[str, set[str]] = {}
    for port in neutron.ports:
        for group in port.security_groups:
            ips = {str(ip) for ip in port.ips if ip.version == 4}
            ips |= {str(pair.ip_address) for pair in port.allowed_address_pairs if pair.ip_address.version == 4}
            members.setdefault(group, set()).update(ips)
    return {("NIPv4" + group)[:29]: tuple(sorted(ips)) for group, ips in members.items()}
