"""br-int as the OVS agent programs it (``neutron-dataplane.md`` §3, §5).

Flows: ``native/br_int.py`` ``setup_default_table`` (t0 p0 -> 58 -> 59 -> 60
NORMAL, t60 p1; t23 and t24 p0 drop; t0 p65535 dead-VLAN drop; t62 p3 NORMAL;
t30/t31 p0 -> 58), ``provision_local_vlan`` (t0 p3 from ``int-<bridge>``),
``drop_port`` (t0 p2), and the hybrid-firewall anti-spoofing flows of
``ovs_neutron_agent.setup_arp_spoofing_protection`` (t0 p10/p9, t24 p2, t25 p2).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from verifier import ir
from verifier.header import parse_mac
from verifier.neutron import constants as c
from verifier.neutron import naming
from verifier.neutron.flowtext import FlowBook
from verifier.neutron.model import IPNetwork, Port
from verifier.neutron.render_plan import HostPlan, Plug, derived_mac

BRIDGE = "br-int"


def build_br_int(plan: HostPlan) -> ir.Bridge:
    """The integration bridge of one host."""
    ports, of_ports = _ports(plan)
    book = FlowBook(plan.cookie, {p.name: p.number for p in of_ports})
    _default_flows(book, plan.agent_id)
    _physical_flows(book, plan)
    for plug in plan.plugs:
        if plug.dead:
            book.add(c.LOCAL_SWITCHING, c.PRIO_PORT_DROP, f"in_port={plug.ofport}", "drop", plug.port.id)
        elif plug.kind == "vm" and plug.port.port_security_enabled and not plug.port.is_network_owned:
            _anti_spoofing_flows(book, plug)
    return ir.Bridge(
        name=BRIDGE,
        ports=tuple(sorted(ports, key=lambda p: p.name)),
        of_ports=tuple(sorted(of_ports, key=lambda p: p.number)),
        flows=book.flows(),
        fail_mode=c.FAIL_MODE,
        datapath_type=c.DATAPATH_TYPE,
        notes=plan.notes,
    )


def _ports(plan: HostPlan) -> tuple[list[ir.Port], list[ir.OFPort]]:
    ports = [ir.Port(BRIDGE, (ir.Interface(BRIDGE, "internal"),))]
    of_ports = [ir.OFPort(c.OFPP_LOCAL, BRIDGE, derived_mac(plan.host, BRIDGE, BRIDGE))]
    for phys in plan.phys:
        ports.append(_patch(phys.int_patch, phys.phy_patch))
        of_ports.append(ir.OFPort(phys.int_ofport, phys.int_patch, derived_mac(plan.host, BRIDGE, phys.int_patch)))
    if plan.patch_tun_ofport is not None:
        name = naming.INT_PEER_PATCH_PORT
        ports.append(_patch(name, naming.TUN_PEER_PATCH_PORT))
        of_ports.append(ir.OFPort(plan.patch_tun_ofport, name, derived_mac(plan.host, BRIDGE, name)))
    for plug in plan.plugs:
        ports.append(_device_port(plug))
        of_ports.append(ir.OFPort(plug.ofport, plug.device, plug.mac))
    return ports, of_ports


def _patch(name: str, peer: str) -> ir.Port:
    return ir.Port(name, (ir.Interface(name, "patch", (("peer", peer),)),))


def _device_port(plug: Plug) -> ir.Port:
    interface = ir.Interface(plug.device, "internal" if plug.internal else "")
    if plug.internal and plug.never_bound:
        # Still as ovs_lib.replace_port created it: only 4095-tagged frames pass NORMAL.
        return ir.Port(plug.device, (interface,), c.DEAD_VLAN_TAG, (c.DEAD_VLAN_TAG,), "trunk")
    return ir.Port(plug.device, (interface,), tag=plug.tag)


def _default_flows(book: FlowBook, agent_id: str | None) -> None:
    book.add(c.CANARY_TABLE, 0, "", "drop", agent_id)
    book.add(c.LOCAL_SWITCHING, 0, "", f"resubmit(,{c.PACKET_RATE_LIMIT})", agent_id)
    book.add(c.PACKET_RATE_LIMIT, 0, "", f"resubmit(,{c.BANDWIDTH_RATE_LIMIT})", agent_id)
    book.add(c.BANDWIDTH_RATE_LIMIT, 0, "", f"resubmit(,{c.TRANSIENT_TABLE})", agent_id)
    book.add(c.TRANSIENT_TABLE, c.PRIO_TRANSIENT_NORMAL, "", "NORMAL", agent_id)
    book.add(c.ARP_SPOOF_TABLE, 0, "", "drop", agent_id)
    book.add(c.LOCAL_SWITCHING, c.PRIO_DEAD_VLAN_DROP, f"dl_vlan={c.DEAD_VLAN_TAG}", "drop", agent_id)
    book.add(c.TRANSIENT_EGRESS_TABLE, c.PRIO_TRANSIENT_EGRESS_NORMAL, "", "NORMAL", agent_id)
    book.add(c.LOCAL_EGRESS_TABLE, 0, "", f"resubmit(,{c.PACKET_RATE_LIMIT})", agent_id)
    book.add(c.LOCAL_IP_TABLE, 0, "", f"resubmit(,{c.PACKET_RATE_LIMIT})", agent_id)


def _physical_flows(book: FlowBook, plan: HostPlan) -> None:
    """Per physical bridge: drop what comes from it, except provisioned segments (-> lvid)."""
    for phys in plan.phys:
        book.add(c.LOCAL_SWITCHING, c.PRIO_PORT_DROP, f"in_port={phys.int_ofport}", "drop", plan.agent_id)
        for vlan in plan.vlans:
            network = vlan.network
            if network.physical_network != phys.physical_network:
                continue
            if network.network_type == "flat":
                segment = "vlan_tci=0x0000/0x1fff"
            elif network.network_type == "vlan":
                segment = f"dl_vlan={network.segmentation_id}"
            else:
                continue
            book.add(
                c.LOCAL_SWITCHING,
                c.PRIO_PHYS_TO_LVID,
                f"in_port={phys.int_ofport},{segment}",
                f"mod_vlan_vid:{vlan.lvid},resubmit(,{c.PACKET_RATE_LIMIT})",
                network.id,
            )


def _anti_spoofing_flows(book: FlowBook, plug: Plug) -> None:
    """``setup_arp_spoofing_protection`` for one VM port (hybrid iptables firewall)."""
    port, ofport = plug.port, plug.ofport
    addresses = _allowed_addresses(port)
    macs = sorted({port.mac_address} | {p.mac_address for p in port.allowed_address_pairs})
    for mac in macs:
        book.add(
            c.MAC_SPOOF_TABLE,
            c.PRIO_SPOOF_ALLOW,
            f"in_port={ofport},dl_src={mac}",
            f"resubmit(,{c.LOCAL_EGRESS_TABLE})",
            port.id,
        )
    book.add(
        c.LOCAL_SWITCHING, c.PRIO_MAC_SPOOF_REDIRECT, f"in_port={ofport}", f"resubmit(,{c.MAC_SPOOF_TABLE})", port.id
    )
    ipv4 = [a for a in addresses if a.version == 4]
    ipv6 = [a for a in addresses if a.version == 6] + [_lla(mac) for mac in macs]
    if _has_zero_prefix(ipv4):
        # delete_arp_spoofing_protection: also removes the NA redirect installed just before.
        return
    if not _has_zero_prefix(ipv6):
        na = "icmp6,in_port={},icmp_type=136"
        for address in _unique(ipv6):
            book.add(
                c.ARP_SPOOF_TABLE,
                c.PRIO_SPOOF_ALLOW,
                na.format(ofport) + f",nd_target={_text(address)}",
                f"resubmit(,{c.PACKET_RATE_LIMIT})",
                port.id,
            )
        book.add(
            c.LOCAL_SWITCHING,
            c.PRIO_SPOOF_REDIRECT,
            na.format(ofport),
            f"resubmit(,{c.ARP_SPOOF_TABLE})",
            port.id,
        )
    for address in _unique(ipv4):
        book.add(
            c.ARP_SPOOF_TABLE,
            c.PRIO_SPOOF_ALLOW,
            f"arp,in_port={ofport},arp_spa={_text(address)}",
            f"resubmit(,{c.MAC_SPOOF_TABLE})",
            port.id,
        )
    book.add(
        c.LOCAL_SWITCHING, c.PRIO_SPOOF_REDIRECT, f"arp,in_port={ofport}", f"resubmit(,{c.ARP_SPOOF_TABLE})", port.id
    )


def _allowed_addresses(port: Port) -> list[IPNetwork]:
    """The fixed IPs (as host prefixes) and the allowed-address-pair IPs/CIDRs."""
    fixed = [ipaddress.ip_network(ip) for ip in port.ips]
    return fixed + [pair.ip_address for pair in port.allowed_address_pairs]


def _lla(mac: str) -> IPNetwork:
    """The EUI-64 link-local address of a MAC (``netutils.get_ipv6_addr_by_EUI64``)."""
    value = parse_mac(mac) ^ (0x02 << 40)
    eui64 = ((value >> 24) << 40) | (0xFFFE << 24) | (value & 0xFFFFFF)
    return ipaddress.ip_network(ipaddress.IPv6Address((0xFE80 << 112) | eui64))


def _has_zero_prefix(addresses: Iterable[IPNetwork]) -> bool:
    return any(a.prefixlen == 0 for a in addresses)


def _unique(addresses: Iterable[IPNetwork]) -> list[IPNetwork]:
    return sorted(set(addresses), key=lambda a: (int(a.network_address), a.prefixlen))


def _text(address: IPNetwork) -> str:
    """An address as ``arp_spa``/``nd_target`` prints it: bare for a host prefix, else CIDR."""
    if address.prefixlen == address.max_prefixlen:
        return str(address.network_address)
    return str(address)
