"""The Neutron OVS agent's OpenFlow tables, priorities and magic numbers, for one release.

The renderer follows Neutron **28.0.1** (identical, for every fact used here, to
master at ``29.0.0.0b1-105``, commit 2131d26f73): see
``../reference/neutron-dataplane.md``.  Table numbers come from neutron-lib
``neutron_lib/plugins/ml2/ovs_constants.py`` (commit 6cd671a8c4, 4.1.0-13);
priorities from the native (os-ken) driver,
``neutron/plugins/ml2/drivers/openvswitch/agent/openflow/native/br_{int,tun,phys}.py``
and ``ovs_neutron_agent.py``.  The classic (Icehouse, neutron 2014.1) br-tun
numbers are kept for reference only.  The Linux side (iptables wrapping,
comments, firewall chains, conntrack zones, L3 marks, the metadata proxy port)
follows ``neutron/agent/linux/iptables_manager.py``, ``iptables_firewall.py``,
``iptables_comments.py``, ``ip_conntrack.py``, ``ipset_manager.py``,
``neutron/agent/l3/router_info.py`` and ``neutron/conf/agent/l3/config.py``
of the same release.
"""

from __future__ import annotations

NEUTRON_RELEASE = "28.0.1"
PROVENANCE_FILE = f"render:neutron {NEUTRON_RELEASE}"
"""``Provenance.file`` of everything the renderer produces."""

# ---------------------------------------------------------------- OVSDB / VLANs

DEAD_VLAN_TAG = 4095
"""``ovs_constants.DEAD_VLAN_TAG`` (MAX_VLAN_TAG + 1): the tag of dead and not yet bound ports."""
MIN_VLAN_TAG = 1
MAX_VLAN_TAG = 4094
"""Local VLAN ids are popped from ``set(range(MIN_VLAN_TAG, MAX_VLAN_TAG + 1))``."""

OPENFLOW_MAX_PRIORITY = 65535
LEARN_HARD_TIMEOUT = 300
"""``br_tun._setup_learn_flows``: learned t20 flows expire 300 s after they are learned."""

TUNNEL_NETWORK_TYPES = ("gre", "vxlan", "geneve")
PHYSICAL_NETWORK_TYPES = ("flat", "vlan")

# ---------------------------------------------------------------- br-int tables

LOCAL_SWITCHING = 0
DVR_TO_SRC_MAC = 1
DVR_TO_SRC_MAC_PHYSICAL = 2
CANARY_TABLE = 23
ARP_SPOOF_TABLE = 24
MAC_SPOOF_TABLE = 25
LOCAL_EGRESS_TABLE = 30
LOCAL_IP_TABLE = 31
PACKET_RATE_LIMIT = 58
BANDWIDTH_RATE_LIMIT = 59
TRANSIENT_TABLE = 60
LOCAL_MAC_DIRECT = 61
TRANSIENT_EGRESS_TABLE = 62
DHCP_IPV4_TABLE = 77
DHCP_IPV6_TABLE = 78

# br-int priorities (native/br_int.py, ovs_neutron_agent.py)
PRIO_DEAD_VLAN_DROP = OPENFLOW_MAX_PRIORITY  # t0: dl_vlan=4095 -> drop
PRIO_SPOOF_REDIRECT = 10  # t0: in_port + arp / icmp6 NA -> goto 24
PRIO_MAC_SPOOF_REDIRECT = 9  # t0: in_port -> goto 25
PRIO_PHYS_TO_LVID = 3  # t0: in_port=int-br-*, segment -> lvid, goto 58
PRIO_PORT_DROP = 2  # t0: in_port=<dead port | int-br-*> -> drop (drop_port)
PRIO_SPOOF_ALLOW = 2  # t24 arp_spa / nd_target, t25 dl_src
PRIO_TRANSIENT_NORMAL = 1  # t60: NORMAL
PRIO_TRANSIENT_EGRESS_NORMAL = 3  # t62: NORMAL

# ---------------------------------------------------------------- br-tun tables

DVR_PROCESS = 1
PATCH_LV_TO_TUN = 2
GRE_TUN_TO_LV = 3
VXLAN_TUN_TO_LV = 4
GENEVE_TUN_TO_LV = 6
DVR_NOT_LEARN = 9
LEARN_FROM_TUN = 10
UCAST_TO_TUN = 20
ARP_RESPONDER = 21
FLOOD_TO_TUN = 22

TUN_TABLE: dict[str, int] = {"gre": GRE_TUN_TO_LV, "vxlan": VXLAN_TUN_TO_LV, "geneve": GENEVE_TUN_TO_LV}

# br-tun priorities (native/br_tun.py)
PRIO_TUN_IN_PORT = 1  # t0: in_port=patch-int -> 2, in_port=<tunnel> -> 3/4/6
PRIO_TUN_TO_LV = 1  # t3/4/6: tun_id -> push lvid, goto 10
PRIO_LEARN = 1  # t10: learn + output:patch-int
PRIO_LEARN_SPECIAL = 2  # t10: ARP with broadcast THA, RA, NA: same actions
PRIO_LEARNED = 1  # t20: the flows t10's learn() installs
PRIO_UCAST_L2POP = 2  # t20: static l2pop fdb entries
PRIO_ARP_RESPONDER = 1  # t21: l2pop ARP entries; t2 ARP-broadcast redirect
PRIO_FLOOD = 1  # t22: dl_vlan=<lvid> -> strip, tun_id, output to tunnels

# ---------------------------------------------------------------- physical bridges

PRIO_PHYS_LVID_OUT = 4  # br-ex t0: in_port=phy-br-ex, dl_vlan=<lvid> -> strip/mod, NORMAL
PRIO_PHYS_PORT_DROP = 2  # br-ex t0: in_port=phy-br-ex -> drop

# ---------------------------------------------------------------- OVS

OFPP_LOCAL = 0xFFFE
TUNNEL_PORT_OPTIONS = {"in_key": "flow", "out_key": "flow", "df_default": "true", "egress_pkt_mark": "0"}
"""``ovs_lib.add_tunnel_port`` options besides remote_ip/local_ip (defaults: no csum, no tos)."""

FAIL_MODE = "secure"
DATAPATH_TYPE = "system"

# ---------------------------------------------------------------- Neutron device owners

DEVICE_OWNER_NETWORK_PREFIX = "network:"
DEVICE_OWNER_COMPUTE_PREFIX = "compute:"
DEVICE_OWNER_DHCP = "network:dhcp"
DEVICE_OWNER_ROUTER_INTF = "network:router_interface"
DEVICE_OWNER_ROUTER_GW = "network:router_gateway"
DEVICE_OWNER_FLOATINGIP = "network:floatingip"

VIF_TYPE_OVS = "ovs"
VIF_TYPE_UNBOUND = "unbound"
VIF_TYPE_BINDING_FAILED = "binding_failed"

IPV6_LLA_PREFIX = "fe80::/64"

# ---------------------------------------------------------------- iptables_manager (N/agent/linux/iptables_manager.py)

MAX_IPTABLES_CHAIN_LEN_WRAP = 11
"""``neutron_lib.constants``: a wrapped chain's own name is cut to 11 characters."""
WRAP_NAME_LEN = 16
"""``get_binary_name``: the wrap prefix is the agent binary's name cut to 16 characters."""
OVS_AGENT_WRAP = "neutron-openvswi"  # "neutron-openvswitch-agent"[:16]
L3_AGENT_WRAP = "neutron-l3-agent"  # "neutron-l3-agent"[:16]
DHCP_AGENT_WRAP = "neutron-dhcp-age"  # "neutron-dhcp-agent"[:16]
FILTER_TOP_CHAIN = "neutron-filter-top"
"""Unwrapped, shared by every agent: first rule of filter FORWARD and OUTPUT, jumps to ``$local``."""
POSTROUTING_BOTTOM_CHAIN = "neutron-postrouting-bottom"
"""Unwrapped: last rule of nat POSTROUTING, jumps to ``$snat`` (``initialize_nat_table``)."""
USE_RANDOM_FULLY = True
"""``[AGENT] use_random_fully`` (default True) on iptables >= 1.6.0: every L3 SNAT gets ``--random-fully``."""

# iptables_comments.py; written because [AGENT] comment_iptables_rules defaults to True.
COMMENT_SNAT_OUT = "Perform source NAT on outgoing traffic."
COMMENT_UNMATCH_DROP = "Default drop rule for unmatched traffic."
COMMENT_VM_INT_SG = "Direct traffic from the VM interface to the security group chain."
COMMENT_SG_TO_VM_SG = "Jump to the VM specific chain."
COMMENT_INPUT_TO_SG = "Direct incoming traffic from VM to the security group chain."
COMMENT_PAIR_ALLOW = "Allow traffic from defined IP/MAC pairs."
COMMENT_PAIR_DROP = "Drop traffic without an IP/MAC allow rule."
COMMENT_DHCP_CLIENT = "Allow DHCP client traffic."
COMMENT_DHCP_SPOOF = "Prevent DHCP Spoofing by VM."
COMMENT_UNMATCHED = "Send unmatched traffic to the fallback chain."
COMMENT_INVALID_DROP = "Drop packets that appear related to an existing connection (e.g. TCP ACK/FIN) but do not have an entry in conntrack."
COMMENT_ALLOW_ASSOC = "Direct packets associated with a known session to the RETURN chain."
COMMENT_PORT_SEC_ACCEPT = "Accept all packets when port security is disabled."
COMMENT_TRUSTED_ACCEPT = "Accept all packets when port is trusted."

# ---------------------------------------------------------------- hybrid iptables firewall (iptables_firewall.py)

SG_CHAIN = "sg-chain"
SG_FALLBACK_CHAIN = "sg-fallback"
INGRESS_CHAIN_PREFIX = "i"  # neutron-openvswi-i<port_id[:10]>
EGRESS_CHAIN_PREFIX = "o"
SPOOF_CHAIN_PREFIX = "s"
CONNTRACK_ZONE_START = 4097
"""``ip_conntrack.ZONE_START``: the first per-port conntrack zone."""
MAX_CONNTRACK_ZONES = 65535
IPSET_PREFIX = "N"
IPSET_NAME_MAX_LEN = 29
"""``ipset_manager``: ``"N" + ethertype + sg_id`` cut to 31 - len("-n")."""
DHCP_SERVER_PORT = 67
DHCP_CLIENT_PORT = 68

# ---------------------------------------------------------------- L3 agent (N/agent/l3/router_info.py, N/conf/agent/l3/config.py)

METADATA_ACCESS_MARK = 0x1
"""``metadata_access_mark``: mangle mark of metadata requests, under ROUTER_MARK_MASK."""
EXTERNAL_INGRESS_MARK = 0x2
"""``external_ingress_mark``: mangle mark of packets entering the qg- port."""
ROUTER_MARK_MASK = 0xFFFF
ADDRESS_SCOPE_MARK_MASK = 0xFFFF0000
ADDRESS_SCOPE_MARK_ID_MIN = 1024
"""``set(range(1024, 2048)).pop()`` is 1024 on CPython, so the "noscope" mark is 1024 << 16."""
NOSCOPE_MARK = ADDRESS_SCOPE_MARK_ID_MIN << 16
METADATA_PORT = 9697
"""``metadata_port``: the haproxy metadata proxy in the router namespace."""
METADATA_V4_CIDR = "169.254.169.254/32"
METADATA_HTTP_PORT = 80
ROUTE_PROTO_STATIC = "static"
"""Routes the agents add go through pyroute2 with ``proto static`` (``privileged/agent/linux/ip_lib.py``)."""
ROUTE_PROTO_KERNEL = "kernel"

# ---------------------------------------------------------------- classic (Icehouse, 2014.1) br-tun


class Icehouse:
    """br-tun table numbers of neutron 2014.1 (``plugins/openvswitch/common/constants.py``).

    Juno (2014.2) renumbered them; br-int then had only t0 (p1 NORMAL, p2 in_port drops).
    """

    PATCH_LV_TO_TUN = 1
    GRE_TUN_TO_LV = 2
    VXLAN_TUN_TO_LV = 3
    LEARN_FROM_TUN = 10
    UCAST_TO_TUN = 20
    FLOOD_TO_TUN = 21
