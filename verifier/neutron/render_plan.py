"""What the OVS agent on one host has to program: devices, local VLANs, tunnels, physical bridges.

Decisions the Neutron API cannot tell us, made deterministically (same input,
same plan) and documented here:

* **Hosts**: every host with an Open vSwitch agent, plus every host named in a
  ``binding:host_id`` whose ``binding:vif_type`` is ``ovs``.
* **Devices on br-int**, for ports bound to the host: ``compute:*`` ports are VMs,
  plugged with the hybrid plug as ``qvo<id11>`` (``tap<id11>`` directly on br-int
  when ``binding:vif_details.ovs_hybrid_plug`` is explicitly false);
  ``network:dhcp`` is the internal port ``tap<id11>``; ``network:router_interface``
  ``qr-<id11>`` and ``network:router_gateway`` ``qg-<id11>`` (internal, on br-int
  since Stein).  Other ``network:*`` ports (floating IPs, DVR, HA) and ports with
  no device owner are not plugged (noted on br-int).
* **Dead ports**: admin-down ports and ports whose binding is ``unbound`` or
  ``binding_failed`` get tag 4095 and a ``p2 in_port drop``; internal ports
  that were never bound also keep ``vlan_mode=trunk, trunks=[4095]`` from their
  creation (``ovs_lib.replace_port``).  Dead ports get no local VLAN.
* **Local VLANs**: the agent pops ids from ``set(range(1, 4095))`` in the order
  it happens to process ports, so the real numbers depend on history.  Here the
  networks with at least one live device on the host get 1, 2, 3... in order of
  network id.  Only the per-host mapping means anything.
* **OpenFlow port numbers**: br-int: the ``int-<bridge>`` patches (by physical
  network name), then ``patch-tun``, then the devices in order of port id;
  br-tun: ``patch-int`` = 1, then tunnel ports by (type, remote IP); a physical
  bridge: its NIC = 1, ``phy-<bridge>`` = 2.  LOCAL is 65534.
* **MACs**: internal ports carry the Neutron port's MAC; a VM tap on br-int the
  port MAC with the first byte ``fe`` (as nova sets it); every other port a
  locally administered MAC hashed from (host, bridge, port name).
* **NICs**: the tunnel endpoint address is on ``eth2`` (the lab's interface)
  unless the agent configuration has a ``tunnel_interface`` entry, with prefix
  length 24; each physical bridge's NIC is ``eth1``, ``eth3``, ``eth4``... in
  bridge-name order, skipping the tunnel interface.
* **Cookie**: the agent stamps every flow with a random 64-bit cookie; here it is
  the first 8 bytes of sha256("neutron-ovs-agent:" + host).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import NamedTuple

from verifier.neutron import constants as c
from verifier.neutron import naming
from verifier.neutron.model import Agent, IPAddress, Network, Neutron, Port

DEFAULT_TUNNEL_INTERFACE = "eth2"
DEFAULT_TUNNEL_PREFIXLEN = 24


@dataclass(frozen=True)
class Plug:
    """One Neutron port's device on br-int."""

    port: Port
    kind: str  # "vm", "dhcp", "router_interface", "router_gateway"
    device: str
    internal: bool
    dead: bool
    never_bound: bool
    lvid: int | None
    ofport: int
    mac: str

    @property
    def tag(self) -> int:
        return c.DEAD_VLAN_TAG if self.lvid is None else self.lvid


@dataclass(frozen=True)
class LocalVlan:
    network: Network
    lvid: int


@dataclass(frozen=True)
class Tunnel:
    network_type: str
    remote_ip: IPAddress
    name: str
    ofport: int
    peer_agent_id: str


@dataclass(frozen=True)
class PhysBridge:
    physical_network: str
    bridge: str
    int_patch: str
    int_ofport: int
    phy_patch: str
    phy_ofport: int
    nic: str
    nic_ofport: int


@dataclass(frozen=True)
class HostPlan:
    host: str
    agent: Agent | None
    cookie: int
    plugs: tuple[Plug, ...]
    vlans: tuple[LocalVlan, ...]
    tunnel_types: tuple[str, ...]
    local_ip: IPAddress | None
    tunnels: tuple[Tunnel, ...]
    patch_tun_ofport: int | None
    phys: tuple[PhysBridge, ...]
    tunnel_interface: str
    arp_responder: bool
    notes: tuple[str, ...]

    @property
    def agent_id(self) -> str | None:
        return None if self.agent is None else self.agent.id

    @property
    def tunneling(self) -> bool:
        return bool(self.tunnel_types)

    def lvid(self, network_id: str) -> int | None:
        for vlan in self.vlans:
            if vlan.network.id == network_id:
                return vlan.lvid
        return None


class _Device(NamedTuple):
    port: Port
    kind: str
    name: str
    internal: bool
    dead: bool
    never_bound: bool


def agent_cookie(host: str) -> int:
    return int.from_bytes(hashlib.sha256(f"neutron-ovs-agent:{host}".encode()).digest()[:8], "big")


def derived_mac(*parts: str) -> str:
    """A locally administered unicast MAC that depends only on ``parts``."""
    digest = bytearray(hashlib.sha256("/".join(parts).encode()).digest()[:6])
    digest[0] = (digest[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in digest)


def plan_hosts(neutron: Neutron) -> tuple[HostPlan, ...]:
    return tuple(plan_host(neutron, host) for host in neutron.ovs_hosts())


def plan_host(neutron: Neutron, host: str) -> HostPlan:
    agent = neutron.ovs_agent(host)
    notes: list[str] = []
    devices: list[_Device] = []
    for port in neutron.ports_on(host):
        device = _device(port, notes)
        if device is not None:
            devices.append(device)

    live_networks = sorted({d.port.network_id for d in devices if not d.dead})
    vlans = tuple(LocalVlan(neutron.network(n), lvid) for lvid, n in enumerate(live_networks, start=1))
    lvids = {v.network.id: v.lvid for v in vlans}
    for vlan in vlans:
        if vlan.network.network_type is None:
            notes.append(f"network {vlan.network.id} has no provider:network_type: no segment flows")

    tunnel_types = tuple(sorted(set(agent.tunnel_types))) if agent is not None else ()
    local_ip = agent.tunneling_ip if agent is not None else None
    mappings = agent.bridge_mappings if agent is not None else ()
    tunnel_interface = (agent.tunnel_interface if agent else None) or DEFAULT_TUNNEL_INTERFACE

    next_ofport = itertools.count(1)
    int_ofports = [next(next_ofport) for _ in mappings]
    patch_tun_ofport = next(next_ofport) if tunnel_types else None
    plugs = tuple(
        Plug(
            port=d.port,
            kind=d.kind,
            device=d.name,
            internal=d.internal,
            dead=d.dead,
            never_bound=d.never_bound,
            lvid=None if d.dead else lvids[d.port.network_id],
            ofport=next(next_ofport),
            mac=_device_mac(host, d),
        )
        for d in devices
    )
    if agent is not None and agent.l2_population:
        notes.append(
            "l2_population is on: rendered as the full-mesh (non-l2pop) layout; "
            "l2pop's fdb-driven tunnels, flood lists and t20/t21 entries are not rendered"
        )
    if tunnel_types and local_ip is None:
        notes.append("tunnel_types without a tunneling_ip: no tunnel ports rendered")
    return HostPlan(
        host=host,
        agent=agent,
        cookie=agent_cookie(host),
        plugs=plugs,
        vlans=vlans,
        tunnel_types=tunnel_types,
        local_ip=local_ip,
        tunnels=_tunnels(neutron, agent, tunnel_types, local_ip),
        patch_tun_ofport=patch_tun_ofport,
        phys=_phys_bridges(mappings, int_ofports, tunnel_interface),
        tunnel_interface=tunnel_interface,
        arp_responder=agent.arp_responder if agent is not None else False,
        notes=tuple(notes),
    )


def _device(port: Port, notes: list[str]) -> _Device | None:
    """(port, kind, device name, internal, dead, never bound) for a port the host plugs."""
    owner = port.device_owner
    vif_type = port.binding_vif_type
    never_bound = vif_type in (c.VIF_TYPE_UNBOUND, c.VIF_TYPE_BINDING_FAILED)
    if vif_type != c.VIF_TYPE_OVS and not never_bound:
        notes.append(f"port {port.id}: binding:vif_type {vif_type!r} is not plugged into OVS")
        return None
    dead = never_bound or not port.admin_state_up
    if owner == c.DEVICE_OWNER_DHCP:
        return _Device(port, "dhcp", naming.tap_name(port.id), True, dead, never_bound)
    if owner == c.DEVICE_OWNER_ROUTER_INTF:
        return _Device(port, "router_interface", naming.qr_name(port.id), True, dead, never_bound)
    if owner == c.DEVICE_OWNER_ROUTER_GW:
        return _Device(port, "router_gateway", naming.qg_name(port.id), True, dead, never_bound)
    if owner.startswith(c.DEVICE_OWNER_COMPUTE_PREFIX):
        hybrid = port.vif_detail("ovs_hybrid_plug") is not False
        device = naming.qvo_name(port.id) if hybrid else naming.tap_name(port.id)
        return _Device(port, "vm", device, False, dead, never_bound)
    notes.append(f"port {port.id}: device_owner {owner!r} is not plugged by the renderer")
    return None


def _device_mac(host: str, device: _Device) -> str:
    if device.internal:
        return device.port.mac_address
    if device.kind == "vm" and device.name.startswith("tap"):
        return "fe" + device.port.mac_address[2:]
    return derived_mac(host, "br-int", device.name)


def _tunnels(
    neutron: Neutron, agent: Agent | None, tunnel_types: tuple[str, ...], local_ip: IPAddress | None
) -> tuple[Tunnel, ...]:
    """A full mesh: one port per (type, endpoint) of every other agent reporting that tunnel type."""
    if agent is None or local_ip is None:
        return ()
    peers: dict[tuple[str, IPAddress], str] = {}
    for other in neutron.agents:
        ip = other.tunneling_ip
        if ip is None or ip == local_ip or ip.version != local_ip.version:
            continue
        for tunnel_type in tunnel_types:
            if tunnel_type in other.tunnel_types:
                peers.setdefault((tunnel_type, ip), other.id)
    ordered = sorted(peers, key=lambda k: (k[0], k[1].version, int(k[1])))
    return tuple(
        Tunnel(t, ip, naming.tunnel_port_name(t, str(ip)), ofport, peers[(t, ip)])
        for ofport, (t, ip) in enumerate(ordered, start=2)
    )


def _phys_bridges(
    mappings: tuple[tuple[str, str], ...], int_ofports: list[int], tunnel_interface: str
) -> tuple[PhysBridge, ...]:
    nics = (f"eth{k}" for k in itertools.count(1) if f"eth{k}" != tunnel_interface)
    nic_of = {bridge: next(nics) for bridge in sorted(b for _p, b in mappings)}
    return tuple(
        PhysBridge(
            physical_network=physnet,
            bridge=bridge,
            int_patch=naming.int_patch_name(bridge),
            int_ofport=int_ofport,
            phy_patch=naming.phy_patch_name(bridge),
            phy_ofport=2,
            nic=nic_of[bridge],
            nic_ofport=1,
        )
        for (physnet, bridge), int_ofport in zip(mappings, int_ofports)
    )
