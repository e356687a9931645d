"""br-tun as the OVS agent programs it without DVR and l2pop (``neutron-dataplane.md`` §4).

Flows: ``native/br_tun.py`` ``setup_default_table`` and ``_setup_learn_flows``,
``setup_tunnel_port`` (t0 p1 per tunnel port), and for each network with a
local port ``provision_local_vlan`` (t3/t4/t6 p1 ``tun_id`` -> lvid) and
``install_flood_to_tun`` (t22 p1 to every tunnel port of the network's type, in
ofport order).  Tunnel ports: ``ovs_lib.add_tunnel_port`` options.
"""

from __future__ import annotations

from verifier import ir
from verifier.neutron import constants as c
from verifier.neutron import naming
from verifier.neutron.flowtext import FlowBook
from verifier.neutron.render_plan import HostPlan, Tunnel, derived_mac

BRIDGE = "br-tun"
PATCH_INT_OFPORT = 1

UNICAST = "00:00:00:00:00:00/01:00:00:00:00:00"
MULTICAST = "01:00:00:00:00:00/01:00:00:00:00:00"


def build_br_tun(plan: HostPlan) -> ir.Bridge:
    """The tunnel bridge of one host (call only when the agent has tunnel types)."""
    patch = naming.TUN_PEER_PATCH_PORT
    ports = [
        ir.Port(BRIDGE, (ir.Interface(BRIDGE, "internal"),)),
        ir.Port(patch, (ir.Interface(patch, "patch", (("peer", naming.INT_PEER_PATCH_PORT),)),)),
    ]
    of_ports = [
        ir.OFPort(c.OFPP_LOCAL, BRIDGE, derived_mac(plan.host, BRIDGE, BRIDGE)),
        ir.OFPort(PATCH_INT_OFPORT, patch, derived_mac(plan.host, BRIDGE, patch)),
    ]
    for tunnel in plan.tunnels:
        ports.append(_tunnel_port(plan, tunnel))
        of_ports.append(ir.OFPort(tunnel.ofport, tunnel.name, derived_mac(plan.host, BRIDGE, tunnel.name)))
    book = FlowBook(plan.cookie, {p.name: p.number for p in of_ports})
    _default_flows(book, plan)
    for tunnel in plan.tunnels:
        table = c.TUN_TABLE[tunnel.network_type]
        book.add(0, c.PRIO_TUN_IN_PORT, f"in_port={tunnel.ofport}", f"resubmit(,{table})", tunnel.peer_agent_id)
    _network_flows(book, plan)
    return ir.Bridge(
        name=BRIDGE,
        ports=tuple(sorted(ports, key=lambda p: p.name)),
        of_ports=tuple(sorted(of_ports, key=lambda p: p.number)),
        flows=book.flows(),
        fail_mode=c.FAIL_MODE,
        datapath_type=c.DATAPATH_TYPE,
    )


def _tunnel_port(plan: HostPlan, tunnel: Tunnel) -> ir.Port:
    options = dict(c.TUNNEL_PORT_OPTIONS)
    options["local_ip"] = str(plan.local_ip)
    options["remote_ip"] = str(tunnel.remote_ip)
    port_type = tunnel.network_type
    if port_type == "gre" and tunnel.remote_ip.version == 6:
        port_type = "ip6gre"
        options["packet_type"] = "legacy_l2"
    interface = ir.Interface(tunnel.name, port_type, tuple(sorted(options.items())))
    return ir.Port(tunnel.name, (interface,))


def learn_action(cookie: int) -> str:
    """The t10 learn action (``_setup_learn_flows``) as dump-flows prints it."""
    return (
        f"learn(table={c.UCAST_TO_TUN},hard_timeout={c.LEARN_HARD_TIMEOUT},priority={c.PRIO_LEARNED},"
        f"cookie={cookie:#x},NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],"
        "load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[])"
    )


def _default_flows(book: FlowBook, plan: HostPlan) -> None:
    aid = plan.agent_id
    book.add(0, c.PRIO_TUN_IN_PORT, f"in_port={PATCH_INT_OFPORT}", f"resubmit(,{c.PATCH_LV_TO_TUN})", aid)
    book.add(0, 0, "", "drop", aid)
    if plan.arp_responder:
        book.add(
            c.PATCH_LV_TO_TUN,
            c.PRIO_ARP_RESPONDER,
            "arp,dl_dst=ff:ff:ff:ff:ff:ff",
            f"resubmit(,{c.ARP_RESPONDER})",
            aid,
        )
    book.add(c.PATCH_LV_TO_TUN, 0, f"dl_dst={UNICAST}", f"resubmit(,{c.UCAST_TO_TUN})", aid)
    book.add(c.PATCH_LV_TO_TUN, 0, f"dl_dst={MULTICAST}", f"resubmit(,{c.FLOOD_TO_TUN})", aid)
    for table in sorted(c.TUN_TABLE.values()):
        book.add(table, 0, "", "drop", aid)
    learn = f"{learn_action(plan.cookie)},output:{PATCH_INT_OFPORT}"
    for match in ("arp,arp_tha=ff:ff:ff:ff:ff:ff", "icmp6,icmp_type=134", "icmp6,icmp_type=136"):
        book.add(c.LEARN_FROM_TUN, c.PRIO_LEARN_SPECIAL, match, learn, aid)
    book.add(c.LEARN_FROM_TUN, c.PRIO_LEARN, "", learn, aid)
    book.add(c.UCAST_TO_TUN, 0, "", f"resubmit(,{c.FLOOD_TO_TUN})", aid)
    if plan.arp_responder:
        book.add(c.ARP_RESPONDER, 0, "", f"resubmit(,{c.FLOOD_TO_TUN})", aid)
    book.add(c.FLOOD_TO_TUN, 0, "", "drop", aid)


def _network_flows(book: FlowBook, plan: HostPlan) -> None:
    """t3/t4/t6 and t22 for each tunnelled network that has a local VLAN on this host."""
    for vlan in plan.vlans:
        network = vlan.network
        if network.network_type not in c.TUN_TABLE or network.segmentation_id is None:
            continue
        segid = network.segmentation_id
        book.add(
            c.TUN_TABLE[network.network_type],
            c.PRIO_TUN_TO_LV,
            f"tun_id={segid:#x}",
            f"mod_vlan_vid:{vlan.lvid},resubmit(,{c.LEARN_FROM_TUN})",
            network.id,
        )
        outputs = [t.ofport for t in plan.tunnels if t.network_type == network.network_type]
        if outputs:
            book.add(
                c.FLOOD_TO_TUN,
                c.PRIO_FLOOD,
                f"dl_vlan={vlan.lvid}",
                f"strip_vlan,load:{segid:#x}->NXM_NX_TUN_ID[]," + ",".join(f"output:{p}" for p in sorted(outputs)),
                network.id,
            )
