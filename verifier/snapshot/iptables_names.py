"""Names that iptables reads and prints: tables, protocols, ICMP types, REJECT replies, conntrack states.

iptables-save prints a protocol by the name ``/etc/protocols`` gives it, so
``PROTOCOLS`` is the netbase (Debian) table; ICMP type names and REJECT
replies are those of libxt_icmp, libip6t_icmp6 and libipt_REJECT/libip6t_REJECT.
"""

from __future__ import annotations

BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}
"""The tables iptables has and the built-in chains of each (nat INPUT exists since Linux 2.6.36)."""

PROTOCOLS: dict[int, str] = {
    1: "icmp", 2: "igmp", 3: "ggp", 4: "ipencap", 5: "st", 6: "tcp", 8: "egp", 9: "igp", 12: "pup",
    17: "udp", 20: "hmp", 22: "xns-idp", 27: "rdp", 29: "iso-tp4", 33: "dccp", 36: "xtp", 37: "ddp",
    38: "idpr-cmtp", 41: "ipv6", 43: "ipv6-route", 44: "ipv6-frag", 45: "idrp", 46: "rsvp", 47: "gre",
    50: "esp", 51: "ah", 57: "skip", 58: "ipv6-icmp", 59: "ipv6-nonxt", 60: "ipv6-opts", 73: "rspf",
    81: "vmtp", 88: "eigrp", 89: "ospf", 93: "ax.25", 94: "ipip", 97: "etherip", 98: "encap", 103: "pim",
    108: "ipcomp", 112: "vrrp", 115: "l2tp", 124: "isis", 132: "sctp", 133: "fc", 135: "mobility-header",
    136: "udplite", 137: "mpls-in-ip", 138: "manet", 139: "hip", 140: "shim6", 141: "wesp", 142: "rohc",
}  # fmt: skip
"""Protocol number to the name iptables-save prints (others print as numbers)."""

PROTOCOL_NUMBERS: dict[str, int] = {
    **{name: number for number, name in PROTOCOLS.items()},
    "icmpv6": 58,
    "ipv6-mh": 135,
    "mh": 135,
}
"""Every protocol name ``-p`` accepts (``all`` is handled apart: it is no match)."""

PORT_MODULES: dict[int, str] = {6: "tcp", 17: "udp", 132: "sctp"}
"""Protocols whose match module has ``--sport``/``--dport``."""

ICMP_TYPES: dict[str, tuple[int, int | None] | None] = {
    "any": None,
    "echo-reply": (0, None), "pong": (0, None),
    "destination-unreachable": (3, None),
    "network-unreachable": (3, 0), "host-unreachable": (3, 1), "protocol-unreachable": (3, 2),
    "port-unreachable": (3, 3), "fragmentation-needed": (3, 4), "source-route-failed": (3, 5),
    "network-unknown": (3, 6), "host-unknown": (3, 7), "network-prohibited": (3, 9),
    "host-prohibited": (3, 10), "TOS-network-unreachable": (3, 11), "TOS-host-unreachable": (3, 12),
    "communication-prohibited": (3, 13), "host-precedence-violation": (3, 14), "precedence-cutoff": (3, 15),
    "source-quench": (4, None),
    "redirect": (5, None), "network-redirect": (5, 0), "host-redirect": (5, 1),
    "TOS-network-redirect": (5, 2), "TOS-host-redirect": (5, 3),
    "echo-request": (8, None), "ping": (8, None),
    "router-advertisement": (9, None), "router-solicitation": (10, None),
    "time-exceeded": (11, None), "ttl-exceeded": (11, None),
    "ttl-zero-during-transit": (11, 0), "ttl-zero-during-reassembly": (11, 1),
    "parameter-problem": (12, None), "ip-header-bad": (12, 0), "required-option-missing": (12, 1),
    "timestamp-request": (13, None), "timestamp-reply": (14, None),
    "address-mask-request": (17, None), "address-mask-reply": (18, None),
}  # fmt: skip
"""``--icmp-type`` names: (type, code), code None for any code; ``any`` is no match."""

ICMPV6_TYPES: dict[str, tuple[int, int | None] | None] = {
    "destination-unreachable": (1, None),
    "no-route": (1, 0), "communication-prohibited": (1, 1), "beyond-scope": (1, 2),
    "address-unreachable": (1, 3), "port-unreachable": (1, 4), "failed-policy": (1, 5), "reject-route": (1, 6),
    "packet-too-big": (2, None),
    "time-exceeded": (3, None), "ttl-exceeded": (3, None),
    "ttl-zero-during-transit": (3, 0), "ttl-zero-during-reassembly": (3, 1),
    "parameter-problem": (4, None), "bad-header": (4, 0), "unknown-header-type": (4, 1), "unknown-option": (4, 2),
    "echo-request": (128, None), "ping": (128, None), "echo-reply": (129, None), "pong": (129, None),
    "mld-listener-query": (130, None), "mld-listener-report": (131, None), "mld-listener-done": (132, None),
    "mld2-listener-report": (143, None),
    "router-solicitation": (133, None), "router-advertisement": (134, None),
    "neighbour-solicitation": (135, None), "neighbor-solicitation": (135, None),
    "neighbour-advertisement": (136, None), "neighbor-advertisement": (136, None),
    "redirect": (137, None),
}  # fmt: skip
"""``--icmpv6-type`` names, as ICMP_TYPES."""

REJECT_WITH: dict[int, dict[str, str]] = {
    4: {
        "icmp-net-unreachable": "icmp-net-unreachable", "net-unreach": "icmp-net-unreachable",
        "icmp-host-unreachable": "icmp-host-unreachable", "host-unreach": "icmp-host-unreachable",
        "icmp-proto-unreachable": "icmp-proto-unreachable", "proto-unreach": "icmp-proto-unreachable",
        "icmp-port-unreachable": "icmp-port-unreachable", "port-unreach": "icmp-port-unreachable",
        "icmp-net-prohibited": "icmp-net-prohibited", "net-prohib": "icmp-net-prohibited",
        "icmp-host-prohibited": "icmp-host-prohibited", "host-prohib": "icmp-host-prohibited",
        "icmp-admin-prohibited": "icmp-admin-prohibited", "admin-prohib": "icmp-admin-prohibited",
        "tcp-reset": "tcp-reset", "tcp-rst": "tcp-reset",
    },
    6: {
        "icmp6-no-route": "icmp6-no-route", "no-route": "icmp6-no-route",
        "icmp6-adm-prohibited": "icmp6-adm-prohibited", "adm-prohibited": "icmp6-adm-prohibited",
        "icmp6-addr-unreachable": "icmp6-addr-unreachable", "addr-unreach": "icmp6-addr-unreachable",
        "icmp6-port-unreachable": "icmp6-port-unreachable", "port-unreach": "icmp6-port-unreachable",
        "icmp6-policy-fail": "icmp6-policy-fail", "policy-fail": "icmp6-policy-fail",
        "icmp6-reject-route": "icmp6-reject-route", "reject-route": "icmp6-reject-route",
        "tcp-reset": "tcp-reset", "tcp-rst": "tcp-reset",
    },
}  # fmt: skip
"""``--reject-with`` spellings (aliases included) to the name iptables-save prints, per IP version."""

CT_STATES = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")
"""Conntrack states in the order iptables-save prints them (SNAT and DNAT only with ``--ctstate``)."""

NO_EFFECT_TARGETS = frozenset({"CHECKSUM", "LOG", "NFLOG", "ULOG", "TRACE"})
"""Targets that never change a packet's fate or modelled fields; the rule goes on to the next."""
