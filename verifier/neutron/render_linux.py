"""Neutron intent -> the Linux side of one host, as the agents of the release in ``constants`` program it.

``render_linux(neutron, plan)`` gives, for the host that ``render_plan``
planned (so device names and MACs agree with br-int):

* root namespace links of every hybrid-plugged VM port (os-vif's hybrid plug):
  ``qbr<id>`` (Linux bridge), the veth pair ``qvb<id>``/``qvo<id>`` (``qvo`` on
  br-int, master ``ovs-system``), and the VM's ``tap<id>`` (master ``qbr``);
  the ``LinuxBridge`` ``qbr<id>`` with ports ``qvb<id>`` and ``tap<id>``;
* the root namespace's iptables: the hybrid firewall (``render_firewall``),
  or no tables when the agent runs another driver or has no port;
* ``qrouter-`` namespaces of legacy routers (``render_router``) and ``qdhcp-``
  namespaces (``render_dhcp``) whose ports are plugged on the host;
* notes for whatever the renderer had to leave out.

IPv4 only: no IPv6 address, route or ip6tables rule is rendered.  Rules and
routes carry ``Provenance("render:neutron <release>", neutron_id=...)`` with
the router, port, floating IP or "port,security-group-rule" ids they come from.

Decisions the API leaves open (besides those of the three modules): link
indexes are unknown (0) except ``lo`` (1); the tap MAC is the port MAC with
first byte ``fe`` (nova), the ``qvb`` MAC is hashed like the other MACs of
``render_plan``, and the bridge takes the lowest MAC of its ports (the kernel's
choice); ``qvb``/``qvo`` are PROMISC (os-vif sets promisc on both ends); MTUs
are the network MTU (1500 when the network has none).  The root namespace's
NICs, its routes and the OVS bridges' own devices are not rendered.
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier import linux as lx
from verifier.neutron import naming
from verifier.neutron.model import Neutron
from verifier.neutron.render_dhcp import build_dhcp_namespaces
from verifier.neutron.render_firewall import build_root_netfilter
from verifier.neutron.render_plan import HostPlan, Plug, derived_mac
from verifier.neutron.render_router import DEFAULT_MTU, INTERNAL_PORT_FLAGS, build_router_namespaces

OVS_MASTER = "ovs-system"
"""The ``master`` that ``ip addr`` shows for ports of the kernel OVS datapath."""
VETH_FLAGS = ("BROADCAST", "MULTICAST", "PROMISC", "UP", "LOWER_UP")


@dataclass(frozen=True)
class LinuxSide:
    """What ``render_linux`` adds to an ``ir.Host``."""

    links: tuple[lx.Link, ...]
    netfilter: lx.Netfilter
    namespaces: tuple[lx.Namespace, ...]
    linux_bridges: tuple[lx.LinuxBridge, ...]
    notes: tuple[str, ...]


def render_linux(neutron: Neutron, plan: HostPlan) -> LinuxSide:
    """The Linux side of ``plan.host``."""
    notes: list[str] = []
    links: list[lx.Link] = []
    bridges: list[lx.LinuxBridge] = []
    for plug in sorted(plan.plugs, key=lambda p: p.port.id):
        if plug.kind == "vm" and plug.device == naming.qvo_name(plug.port.id):
            bridge, hybrid_links = hybrid_plug(neutron, plan.host, plug)
            bridges.append(bridge)
            links.extend(hybrid_links)
    netfilter = build_root_netfilter(neutron, plan, notes)
    namespaces = build_router_namespaces(neutron, plan, notes) + build_dhcp_namespaces(neutron, plan, notes)
    return LinuxSide(
        links=tuple(links),
        netfilter=netfilter,
        namespaces=tuple(sorted(namespaces, key=lambda ns: ns.name)),
        linux_bridges=tuple(sorted(bridges, key=lambda b: b.name)),
        notes=tuple(notes),
    )


def hybrid_plug(neutron: Neutron, host: str, plug: Plug) -> tuple[lx.LinuxBridge, list[lx.Link]]:
    """os-vif's hybrid plug of one VM port: ``qbr``, ``qvb``, ``qvo`` (creation order), then libvirt's ``tap``."""
    port = plug.port
    qbr, qvb, qvo, tap = (naming.device_name(role, port.id) for role in ("qbr", "qvb", "qvo", "tap"))
    mtu = neutron.network(port.network_id).mtu or DEFAULT_MTU
    tap_mac = "fe" + port.mac_address[2:]
    qvb_mac = derived_mac(host, "veth", qvb)
    bridge_mac = min(tap_mac, qvb_mac)
    links = [
        lx.Link(qbr, 0, INTERNAL_PORT_FLAGS, mtu, "UP", kind="ether", mac=bridge_mac),
        lx.Link(qvb, 0, VETH_FLAGS, mtu, "UP", master=qbr, peer=qvo, kind="ether", mac=qvb_mac),
        lx.Link(qvo, 0, VETH_FLAGS, mtu, "UP", master=OVS_MASTER, peer=qvb, kind="ether", mac=plug.mac),
        lx.Link(tap, 0, INTERNAL_PORT_FLAGS, mtu, "UNKNOWN", master=qbr, kind="ether", mac=tap_mac),
    ]
    bridge = lx.LinuxBridge(qbr, (qvb, tap), bridge_id="8000." + bridge_mac.replace(":", ""), stp=False)
    return bridge, links
