"""A Neutron-like br-int/br-tun pair as IR objects, with flows parsed from text.

br-int has VM ports on VLANs 1 and 2 (access tags), a router and a DHCP port
on VLAN 1 and a patch to br-tun; br-tun has the patch back and two GRE ports
(192.0.2.2 and 192.0.2.3) with the OVS agent's table layout (0 -> 2/3 -> 10,
20, 22).  ``scratch_bridge`` is a separate bridge for tests that load their own
flows.
"""

from __future__ import annotations

from verifier import ir
from verifier.snapshot.flows import parse_flow, port_resolver

LOCAL_IP = "192.0.2.1"
GRE_A = "gre-c0000202"
GRE_B = "gre-c0000203"
REMOTE_A = "192.0.2.2"
REMOTE_B = "192.0.2.3"

BR_INT_PORTS = {
    "patch-tun": 1,
    "tap-vm1": 11,
    "tap-vm2": 12,
    "tap-vm3": 13,
    "qr-r1": 21,
    "tap-dhcp1": 31,
}
BR_INT_TAGS = {"tap-vm1": 1, "tap-vm2": 1, "tap-vm3": 2, "qr-r1": 1, "tap-dhcp1": 1}
BR_TUN_PORTS = {"patch-int": 1, GRE_A: 2, GRE_B: 3}

BR_INT_FLOWS = """
table=0,priority=65535,dl_vlan=4095 actions=drop
table=0,priority=0 actions=resubmit(,60)
table=60,priority=3 actions=NORMAL
"""

LEARN_FLOW = (
    "table=10,priority=1 actions=learn(table=20,hard_timeout=300,priority=1,cookie=0x1234,"
    "NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],"
    "load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:patch-int"
)

# Neutron's GRE layout; VLAN 1 <-> tun_id 0x1 and VLAN 2 <-> tun_id 0x2.
# Table 22 floods VLAN 1 to both GRE peers; table 20 has one learned-like
# unicast entry so unicast and multicast take different paths.
BR_TUN_FLOWS = f"""
table=0,priority=1,in_port=patch-int actions=resubmit(,2)
table=0,priority=1,in_port={GRE_A} actions=resubmit(,3)
table=0,priority=1,in_port={GRE_B} actions=resubmit(,3)
table=0,priority=0 actions=drop
table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,20)
table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,22)
table=3,priority=1,tun_id=0x1 actions=mod_vlan_vid:1,resubmit(,10)
table=3,priority=1,tun_id=0x2 actions=mod_vlan_vid:2,resubmit(,10)
table=3,priority=0 actions=drop
table=4,priority=0 actions=drop
{LEARN_FLOW}
table=20,priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:00:99 actions=strip_vlan,set_tunnel:0x1,output:{GRE_B}
table=20,priority=0 actions=resubmit(,22)
table=22,priority=1,dl_vlan=1 actions=strip_vlan,set_tunnel:0x1,output:{GRE_A},output:{GRE_B}
table=22,priority=1,dl_vlan=2 actions=strip_vlan,set_tunnel:0x2,output:{GRE_A}
table=22,priority=0 actions=drop
"""


def parse_flows(text: str, ports: dict[str, int], file: str) -> tuple[ir.Flow, ...]:
    """Flows from add-flows text, port names resolved over ``ports``."""
    resolve = port_resolver(ports)
    return tuple(
        parse_flow(line, resolve, ir.Provenance(file, n, line))
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    )


def _of_ports(ports: dict[str, int]) -> tuple[ir.OFPort, ...]:
    return tuple(ir.OFPort(number, name) for name, number in ports.items())


def br_int() -> ir.Bridge:
    """br-int: access ports with tags, a patch to br-tun, NORMAL in table 60."""
    ports = [ir.Port("patch-tun", (ir.Interface("patch-tun", "patch", (("peer", "patch-int"),)),))]
    for name, tag in BR_INT_TAGS.items():
        kind = "internal" if name.startswith(("qr-", "tap-dhcp")) else ""
        ports.append(ir.Port(name, (ir.Interface(name, kind),), tag=tag))
    return ir.Bridge(
        "br-int",
        ports=tuple(ports),
        of_ports=_of_ports(BR_INT_PORTS),
        flows=parse_flows(BR_INT_FLOWS, BR_INT_PORTS, "br-int.flows"),
        fail_mode="secure",
    )


def _gre(name: str, remote: str) -> ir.Port:
    options = (
        ("df_default", "true"),
        ("egress_pkt_mark", "0"),
        ("in_key", "flow"),
        ("local_ip", LOCAL_IP),
        ("out_key", "flow"),
        ("remote_ip", remote),
    )
    return ir.Port(name, (ir.Interface(name, "gre", options),))


def br_tun() -> ir.Bridge:
    """br-tun: the patch back to br-int and two GRE ports, Neutron's GRE tables."""
    ports = (
        ir.Port("patch-int", (ir.Interface("patch-int", "patch", (("peer", "patch-tun"),)),)),
        _gre(GRE_A, REMOTE_A),
        _gre(GRE_B, REMOTE_B),
    )
    return ir.Bridge(
        "br-tun",
        ports=ports,
        of_ports=_of_ports(BR_TUN_PORTS),
        flows=parse_flows(BR_TUN_FLOWS, BR_TUN_PORTS, "br-tun.flows"),
        fail_mode="secure",
    )


SCRATCH_PORTS = {"p1": 1, "p2": 2, "p3": 3}


def scratch_bridge(name: str = "br-x") -> ir.Bridge:
    """Three plain ports and no flows, for tests that load their own."""
    ports = tuple(ir.Port(n, (ir.Interface(n),)) for n in SCRATCH_PORTS)
    return ir.Bridge(name, ports=ports, of_ports=_of_ports(SCRATCH_PORTS), fail_mode="secure")
