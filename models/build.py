"""Building the composed network model of a deployment."""

from __future__ import annotations

from models.endpoints import NeutronClassifier
from models.network import OvsNetwork, generic_endpoint
from verifier.deployment import Deployment


def build_network(deployment: Deployment) -> OvsNetwork:
    """Every bridge of every host as a device, wired by patches and tunnels, endpoints tied to Neutron."""
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
    return OvsNetwork(deployment.dataplane, classify=classify, missing_flows=missing, extra_addresses=extra)
