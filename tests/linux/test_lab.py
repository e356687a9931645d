"""Real Linux as the oracle: Neutron's router, DHCP and hybrid-firewall configurations in namespaces.

Each test builds its own ``Lab`` (fresh namespaces, so no conntrack state
leaks between tests), loads the rules Neutron's agents install
(``shared/reference/neutron-dataplane.md`` §7, §9), sends real frames and
checks where they arrive and with which headers.  Expected packets are
header-table dicts, as the models produce them.

Topology of the legacy router (``build_router``)::

    vm1 eth0 10.0.0.5 ─── qr-a 10.0.0.1 ┐
    (FIP 203.0.113.20)                   ├ qrouter ── qg-x 203.0.113.2 (+ FIP/32) ─── ext eth0 203.0.113.1
    vm2 eth0 10.0.1.5 ─── qr-b 10.0.1.1 ┘                                            (the upstream gateway;
                                                                                     "internet" hosts such
                                                                                     as 198.51.100.7 are
                                                                                     crafted sources)

The VM and ext namespaces are quiet hosts: their INPUT accepts only what
belongs to connections they opened, so their kernels do not answer crafted
packets (RST, port unreachable) into later captures.  They still answer ARP.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence

import pytest

from linux.conftest import leftover_namespaces, require_bridge_netfilter
from support.netns_lab import NETNS_DIR, Lab, LabError, Point, Received, arrivals
from support.packets import (
    DHCP_DISCOVER,
    DHCP_OFFER,
    ETH_TYPE_ARP,
    ETH_TYPE_IP,
    IPPROTO_ICMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    Dhcp,
    arp_packet,
    build_frame,
    dhcp_discover,
    dhcp_offer,
    dhcp_payload,
    ip,
    ipv4_packet,
    mac,
    parse_frame,
)
from verifier.header import VLAN_CFI, describe, normalize

pytestmark = pytest.mark.oracle

# ---------------------------------------------------------------- addresses

QR_A_MAC, VM1_MAC = "fa:16:3e:0a:00:01", "fa:16:3e:0a:00:05"
QR_B_MAC, VM2_MAC = "fa:16:3e:0b:00:01", "fa:16:3e:0b:00:05"
QG_MAC, EXT_MAC = "fa:16:3e:0e:00:02", "fa:16:3e:0e:00:01"
QR_A_IP, VM1_IP = "10.0.0.1", "10.0.0.5"
QR_B_IP, VM2_IP = "10.0.1.1", "10.0.1.5"
GW_IP, FIP, EXT_IP = "203.0.113.2", "203.0.113.20", "203.0.113.1"
INTERNET = "198.51.100.7"
METADATA_IP = "169.254.169.254"

VM1: Point = ("vm1", "eth0")
VM2: Point = ("vm2", "eth0")
EXT: Point = ("ext", "eth0")

QUIET_HOST = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
"""


def l3_agent_rules(*, qg: str = "qg-x", gw: str = GW_IP, fips: Sequence[tuple[str, str]] = ((FIP, VM1_IP),)) -> str:
    """The iptables of a legacy qrouter namespace as the L3 agent writes them (§9), without address scopes."""
    x = "neutron-l3-agent"
    rf = " --random-fully"
    nat_pre = [f"-A {x}-PREROUTING -d {METADATA_IP}/32 -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 9697"]
    nat_out: list[str] = []
    float_snat: list[str] = []
    for fip, fixed in fips:
        nat_pre.append(f"-A {x}-PREROUTING -d {fip}/32 -j DNAT --to-destination {fixed}")
        nat_out.append(f"-A {x}-OUTPUT -d {fip}/32 -j DNAT --to-destination {fixed}")
        float_snat.append(f"-A {x}-float-snat -s {fixed}/32 -j SNAT --to-source {fip}{rf}")
    lines = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        *(f":{x}-{c} - [0:0]" for c in ("OUTPUT", "POSTROUTING", "PREROUTING", "float-snat", "snat")),
        ":neutron-postrouting-bottom - [0:0]",
        f"-A PREROUTING -j {x}-PREROUTING",
        f"-A OUTPUT -j {x}-OUTPUT",
        f"-A POSTROUTING -j {x}-POSTROUTING",
        "-A POSTROUTING -j neutron-postrouting-bottom",
        *nat_out,
        f"-A {x}-POSTROUTING ! -o {qg} -m conntrack ! --ctstate DNAT -j ACCEPT",
        *nat_pre,
        *float_snat,
        f"-A {x}-snat -j {x}-float-snat",
        f"-A {x}-snat -o {qg} -j SNAT --to-source {gw}{rf}",
        f"-A {x}-snat -m mark ! --mark 0x2/0xffff -m conntrack --ctstate DNAT -j SNAT --to-source {gw}{rf}",
        f'-A neutron-postrouting-bottom -m comment --comment "Perform source NAT on outgoing traffic." -j {x}-snat',
        "COMMIT",
        "*mangle",
        *(f":{c} ACCEPT [0:0]" for c in ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")),
        *(f":{x}-{c} - [0:0]" for c in ("PREROUTING", "mark", "scope", "floatingip")),
        f"-A PREROUTING -j {x}-PREROUTING",
        f"-A {x}-PREROUTING -j {x}-mark",
        f"-A {x}-PREROUTING -j {x}-scope",
        f"-A {x}-PREROUTING -m connmark ! --mark 0x0/0xffff0000 "
        "-j CONNMARK --restore-mark --nfmask 0xffff0000 --ctmask 0xffff0000",
        f"-A {x}-PREROUTING -j {x}-floatingip",
        f"-A {x}-PREROUTING -d {METADATA_IP}/32 -i qr-+ -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x1/0xffff",
        f"-A {x}-mark -i {qg} -j MARK --set-xmark 0x2/0xffff",
        "COMMIT",
        "*filter",
        *(f":{c} ACCEPT [0:0]" for c in ("INPUT", "FORWARD", "OUTPUT")),
        ":neutron-filter-top - [0:0]",
        *(f":{x}-{c} - [0:0]" for c in ("FORWARD", "INPUT", "OUTPUT", "local", "scope")),
        f"-A INPUT -j {x}-INPUT",
        "-A FORWARD -j neutron-filter-top",
        f"-A FORWARD -j {x}-FORWARD",
        "-A OUTPUT -j neutron-filter-top",
        f"-A OUTPUT -j {x}-OUTPUT",
        f"-A neutron-filter-top -j {x}-local",
        f"-A {x}-FORWARD -j {x}-scope",
        f"-A {x}-INPUT -m mark --mark 0x1/0xffff -j ACCEPT",
        f"-A {x}-INPUT -p tcp -m tcp --dport 9697 -j DROP",
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"


def build_router(lab: Lab) -> None:
    """The legacy router topology of the module docstring, with the L3 agent's rules loaded."""
    lab.add_namespace("qrouter", router=True)
    for name in ("vm1", "vm2", "ext"):
        lab.add_namespace(name)
    lab.veth(("qrouter", "qr-a"), VM1, mac_a=QR_A_MAC, mac_b=VM1_MAC)
    lab.veth(("qrouter", "qr-b"), VM2, mac_a=QR_B_MAC, mac_b=VM2_MAC)
    lab.veth(("qrouter", "qg-x"), EXT, mac_a=QG_MAC, mac_b=EXT_MAC)
    lab.address("qrouter", "qr-a", f"{QR_A_IP}/24")
    lab.address("qrouter", "qr-b", f"{QR_B_IP}/24")
    lab.address("qrouter", "qg-x", f"{GW_IP}/24")
    lab.address("qrouter", "qg-x", f"{FIP}/32")
    lab.route("qrouter", "default", via=EXT_IP)
    lab.address("vm1", "eth0", f"{VM1_IP}/24")
    lab.route("vm1", "default", via=QR_A_IP)
    lab.address("vm2", "eth0", f"{VM2_IP}/24")
    lab.route("vm2", "default", via=QR_B_IP)
    lab.address("ext", "eth0", f"{EXT_IP}/24")
    lab.route("ext", "198.51.100.0/24", dev="lo")  # a route back, so that nothing complains
    lab.iptables_restore("qrouter", l3_agent_rules())
    for name in ("vm1", "vm2", "ext"):
        lab.iptables_restore(name, QUIET_HOST)


# ---------------------------------------------------------------- helpers


def udp(eth_src: str, eth_dst: str, src: str, dst: str, sport: int, dport: int) -> dict[str, int]:
    return ipv4_packet(
        eth_src=eth_src, eth_dst=eth_dst, ip_src=src, ip_dst=dst, proto=IPPROTO_UDP, sport=sport, dport=dport
    )


def tcp(eth_src: str, eth_dst: str, src: str, dst: str, sport: int, dport: int) -> dict[str, int]:
    return ipv4_packet(
        eth_src=eth_src, eth_dst=eth_dst, ip_src=src, ip_dst=dst, proto=IPPROTO_TCP, sport=sport, dport=dport
    )


def rewritten(packet: Mapping[str, int], **changes: str | int) -> dict[str, int]:
    """``packet`` with some fields changed; MACs and IPs may be given as text."""
    out = dict(packet)
    for name, value in changes.items():
        if isinstance(value, str):
            value = mac(value) if ":" in value else ip(value)
        out[name] = value
    return normalize(out)


def _listing(received: Sequence[Received]) -> str:
    return "\n  ".join(r.summary() for r in received) or "(nothing)"


def only(received: Sequence[Received], point: Point, *, proto: int | None = None) -> Received:
    """The single frame that arrived at ``point`` (of IP protocol ``proto`` if given); fails otherwise."""
    here = [r for r in arrivals(received, *point) if proto is None or r.packet["ip_proto"] == proto]
    assert len(here) == 1, f"expected exactly one frame at {point}, got:\n  {_listing(received)}"
    return here[0]


def assert_packet(got: Received, expected: Mapping[str, int], *, ignore: Sequence[str] = ()) -> None:
    """``got`` carries exactly ``expected``'s header fields (except ``ignore``)."""
    actual = dict(got.packet)
    want = normalize(expected)
    for name in ignore:
        actual[name] = want[name] = 0
    diff = {k: (want[k], actual[k]) for k in want if want[k] != actual[k]}
    assert not diff, (
        f"at {got.ns}/{got.ifname}:\n  expected {describe(want)}\n  got      {describe(actual)}\n  differ: {sorted(diff)}"
    )


def nothing_at(received: Sequence[Received], *points: Point) -> None:
    here = [r for r in received if r.point in points]
    assert not here, f"expected a drop, but frames arrived:\n  {_listing(here)}"


DROP_WAIT = 0.3
"""Seconds to wait before calling a packet dropped (delivery on one host takes ~1 ms, ARP included)."""

# ---------------------------------------------------------------- the lab itself


def _root_state() -> tuple[frozenset[str], str, str]:
    """Root-namespace link names, routes and iptables (policy counters left out)."""

    def run(*argv: str) -> str:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=True).stdout

    names = frozenset(str(link["ifname"]) for link in json.loads(run("ip", "-j", "link", "show")))
    rules = "\n".join(
        re.sub(r" \[\d+:\d+\]$", "", line) for line in run("iptables-save").splitlines() if not line.startswith("#")
    )
    return names, run("ip", "route", "show", "table", "all"), rules


def test_lab_cleans_up_and_leaves_the_root_namespace_alone(lab: Lab) -> None:
    """Namespaces are prefixed with the lab token, deleted even on failure; the root namespace is unchanged."""
    before = _root_state()
    with pytest.raises(RuntimeError, match="boom"), Lab() as other:
        real = other.add_namespace("a", router=True)
        other.add_namespace("b")
        other.veth(("a", "x"), ("b", "y"))
        other.bridge("a", "br0", [])
        other.iptables_restore("a", "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n")
        assert real == f"vl-{other.token}-a" and (NETNS_DIR / real).exists()
        assert other.read_sysctl("a", "net.ipv4.ip_forward") == "1"
        assert other.read_sysctl("b", "net.ipv4.ip_forward") == "0"
        raise RuntimeError("boom")
    assert leftover_namespaces(other.prefix) == []
    after = _root_state()
    assert not after[0] & {"x", "y", "br0"}, "a lab link appeared in the root namespace"
    assert after[1:] == before[1:], "root routes or iptables changed"
    with pytest.raises(LabError, match="iptables-restore in a failed"):
        lab.add_namespace("a")
        lab.iptables_restore("a", "*filter\n-A NOSUCHCHAIN -j DROP\nCOMMIT\n")


def test_frames_round_trip_through_the_kernel(lab: Lab) -> None:
    """Built frames are what the kernel accepts and parse back to the same packet; kernel frames parse too."""
    lab.add_namespace("a")
    lab.add_namespace("b")
    lab.veth(("a", "eth0"), ("b", "eth0"), mac_a=VM1_MAC, mac_b=VM2_MAC)
    lab.address("a", "eth0", "10.9.0.1/24")
    lab.address("b", "eth0", "10.9.0.2/24")
    samples: list[tuple[dict[str, int], dict[str, object]]] = [
        (udp(VM1_MAC, VM2_MAC, "10.9.0.1", "10.9.0.2", 1234, 5678), {"payload": b"abc"}),
        (tcp(VM1_MAC, VM2_MAC, "10.9.0.1", "10.9.0.2", 1234, 80), {"tcp_flags": TCP_SYN | TCP_ACK}),
        (
            ipv4_packet(
                eth_src=VM1_MAC, eth_dst=VM2_MAC, ip_src="10.9.0.1", ip_dst="10.9.0.2", proto=IPPROTO_ICMP, sport=8
            ),
            {},
        ),
        (arp_packet(op=1, eth_src=VM1_MAC, sha=VM1_MAC, spa="10.9.0.1", tpa="10.9.0.2"), {}),
        ({**udp(VM1_MAC, VM2_MAC, "10.9.0.1", "10.9.0.2", 1, 2), "vlan_tci": VLAN_CFI | (5 << 13) | 42}, {}),
    ]
    for packet, build in samples:
        frame = build_frame(packet, **build)  # type: ignore[arg-type]
        parsed = parse_frame(frame)
        assert parsed.packet == normalize(packet) and all(parsed.checksums.values()), parsed.summary()
        got = lab.send("a", "eth0", frame, expect_on=[("b", "eth0")])
        assert_packet(only(got, ("b", "eth0")), packet)
    # The kernel's own answers: an ICMP echo reply and an ARP reply parse with valid checksums.
    echo = ipv4_packet(
        eth_src=VM1_MAC, eth_dst=VM2_MAC, ip_src="10.9.0.1", ip_dst="10.9.0.2", proto=IPPROTO_ICMP, sport=8
    )
    reply = only(lab.send("a", "eth0", echo, expect_on=[("a", "eth0")], icmp_id=77), ("a", "eth0"))
    assert reply.frame is not None and reply.frame.icmp_id == 77 and all(reply.frame.checksums.values())
    assert_packet(
        reply, rewritten(echo, eth_src=VM2_MAC, eth_dst=VM1_MAC, ip_src="10.9.0.2", ip_dst="10.9.0.1", tp_src=0)
    )
    # A DHCP message survives the trip intact.
    packet, payload = dhcp_discover(VM1_MAC, xid=0xABCD)
    dhcp = only(lab.send("a", "eth0", packet, expect_on=[("b", "eth0")], payload=payload), ("b", "eth0"))
    assert dhcp.frame is not None and dhcp.frame.dhcp is not None
    assert (dhcp.frame.dhcp.xid, dhcp.frame.dhcp.message_type, dhcp.frame.dhcp.chaddr) == (
        0xABCD,
        DHCP_DISCOVER,
        mac(VM1_MAC),
    )


# ---------------------------------------------------------------- (1) routing


def test_router_routes_between_its_subnets(lab: Lab) -> None:
    """vm1 -> vm2: TTL - 1, MACs rewritten to qr-b -> vm2, addresses and ports untouched (POSTROUTING ACCEPT)."""
    build_router(lab)
    sent = udp(VM1_MAC, QR_A_MAC, VM1_IP, VM2_IP, 40000, 53)
    got = lab.send("vm1", "eth0", sent, expect_on=[VM2, EXT])
    assert_packet(only(got, VM2), rewritten(sent, eth_src=QR_B_MAC, eth_dst=VM2_MAC, ip_ttl=63))
    nothing_at(got, EXT)
    (entry,) = [e for e in lab.conntrack("qrouter") if e.original.get("dport") == "53"]
    assert not entry.snat and not entry.dnat, entry.line
    # A frame for another MAC, a VLAN-tagged frame, a TTL-1 packet: none is forwarded.
    for frame in (
        rewritten(sent, eth_dst="fa:16:3e:99:99:99"),
        {**sent, "vlan_tci": VLAN_CFI | 7},
        rewritten(sent, ip_ttl=1),
    ):
        nothing_at(lab.send("vm1", "eth0", frame, expect_on=[VM2], timeout=DROP_WAIT), VM2)


def test_router_ecmp_extra_route_picks_one_next_hop_per_flow(lab: Lab) -> None:
    """``router.routes`` with two next hops: each flow goes to exactly one of them, both are used."""
    build_router(lab)
    lab.route("qrouter", "192.0.2.0/24", nexthops=[(VM1_IP, "qr-a"), (VM2_IP, "qr-b")])
    flows = [udp(EXT_MAC, QG_MAC, f"198.51.100.{10 + i}", "192.0.2.9", 1000, 53) for i in range(24)]

    def udp_only(r: Received) -> bool:
        return r.frame is not None and r.packet["eth_type"] == ETH_TYPE_IP and r.packet["ip_proto"] == IPPROTO_UDP

    with lab.capture([VM1, VM2]) as capture:
        for packet in flows:
            lab.transmit("ext", "eth0", build_frame(packet))
        got = capture.collect(2.0, keep=udp_only, until=lambda kept: len(kept) >= len(flows), settle=0.1)
    where: dict[int, list[Point]] = {}
    for r in got:
        where.setdefault(r.packet["ip_src"], []).append(r.point)
        hop_mac = VM1_MAC if r.point == VM1 else VM2_MAC
        assert r.packet["eth_dst"] == mac(hop_mac) and r.packet["ip_ttl"] == 63
    assert all(len(where.get(p["ip_src"], [])) == 1 for p in flows), where
    assert {points[0] for points in where.values()} == {VM1, VM2}, "24 flows all hashed to one next hop"


# ---------------------------------------------------------------- (2) floating IP DNAT


def test_floating_ip_dnat_keeps_the_external_source(lab: Lab) -> None:
    """ext -> FIP arrives at vm1 with the fixed IP as destination and the real source; replies leave from the FIP."""
    build_router(lab)
    sent = udp(EXT_MAC, QG_MAC, INTERNET, FIP, 5000, 7)
    got = lab.send("ext", "eth0", sent, expect_on=[VM1, VM2])
    assert_packet(only(got, VM1), rewritten(sent, eth_src=QR_A_MAC, eth_dst=VM1_MAC, ip_dst=VM1_IP, ip_ttl=63))
    (entry,) = [e for e in lab.conntrack("qrouter") if e.original.get("dst") == FIP]
    assert entry.dnat and not entry.snat and entry.reply["src"] == VM1_IP, entry.line
    # The reply is un-DNATed on its way out: the internet host sees the FIP.
    reply = udp(VM1_MAC, QR_A_MAC, VM1_IP, INTERNET, 7, 5000)
    got = lab.send("vm1", "eth0", reply, expect_on=[EXT])
    assert_packet(only(got, EXT), rewritten(reply, eth_src=QG_MAC, eth_dst=EXT_MAC, ip_src=FIP, ip_ttl=63))
    # Hairpin: vm2 (no FIP) -> vm1's FIP is DNATed and SNATed to the gateway IP (snat rule 4).
    hairpin = udp(VM2_MAC, QR_B_MAC, VM2_IP, FIP, 6000, 7)
    got = lab.send("vm2", "eth0", hairpin, expect_on=[VM1])
    expected = rewritten(hairpin, eth_src=QR_A_MAC, eth_dst=VM1_MAC, ip_src=GW_IP, ip_dst=VM1_IP, ip_ttl=63)
    assert_packet(only(got, VM1), expected, ignore=["tp_src"])  # --random-fully picks the port


# ---------------------------------------------------------------- (3) SNAT


def test_snat_to_gateway_or_floating_ip_and_the_reply_comes_back(lab: Lab) -> None:
    """vm2 leaves as the gateway IP, vm1 as its FIP, on a random port; conntrack maps the replies back."""
    build_router(lab)
    syn = tcp(VM2_MAC, QR_B_MAC, VM2_IP, INTERNET, 40000, 80)
    out = only(lab.send("vm2", "eth0", syn, expect_on=[EXT]), EXT)
    assert_packet(out, rewritten(syn, eth_src=QG_MAC, eth_dst=EXT_MAC, ip_src=GW_IP, ip_ttl=63), ignore=["tp_src"])
    port = out.packet["tp_src"]
    (entry,) = [e for e in lab.conntrack("qrouter") if e.original.get("sport") == "40000"]
    assert entry.snat and entry.reply == {"src": INTERNET, "dst": GW_IP, "sport": "80", "dport": str(port)}, entry.line
    synack = tcp(EXT_MAC, QG_MAC, INTERNET, GW_IP, 80, port)
    back = only(lab.send("ext", "eth0", synack, expect_on=[VM2], tcp_flags=TCP_SYN | TCP_ACK, tcp_ack=1001), VM2)
    assert_packet(back, rewritten(synack, eth_src=QR_B_MAC, eth_dst=VM2_MAC, ip_dst=VM2_IP, tp_dst=40000, ip_ttl=63))
    assert back.frame is not None and back.frame.tcp_flags == TCP_SYN | TCP_ACK
    # The mapping lives only in conntrack: once flushed, the same reply is the router's own (no VM gets it).
    lab.flush_conntrack("qrouter")
    assert lab.conntrack("qrouter") == []
    again = lab.send(
        "ext", "eth0", synack, expect_on=[VM2], timeout=DROP_WAIT, tcp_flags=TCP_SYN | TCP_ACK, tcp_ack=1001
    )
    nothing_at(again, VM2)
    # vm1 has a FIP: float-snat comes before the gateway SNAT.
    syn1 = tcp(VM1_MAC, QR_A_MAC, VM1_IP, INTERNET, 40001, 80)
    out1 = only(lab.send("vm1", "eth0", syn1, expect_on=[EXT]), EXT)
    assert_packet(out1, rewritten(syn1, eth_src=QG_MAC, eth_dst=EXT_MAC, ip_src=FIP, ip_ttl=63), ignore=["tp_src"])
    # A segment to the gateway IP on a port no connection uses is the router's own business: no VM sees it.
    stray = tcp(EXT_MAC, QG_MAC, INTERNET, GW_IP, 80, port + 1 if port < 65535 else port - 1)
    nothing_at(
        lab.send("ext", "eth0", stray, expect_on=[VM1, VM2], timeout=DROP_WAIT, tcp_flags=TCP_SYN | TCP_ACK), VM1, VM2
    )


# ---------------------------------------------------------------- (4) unsolicited inbound


def test_unsolicited_inbound_is_routed_until_a_forward_rule_drops_it(lab: Lab) -> None:
    """NAT is not a firewall: ext -> a fixed IP is forwarded; a FORWARD ctstate-NEW DROP on qg stops it,
    not the replies of connections vm2 opened, and (being after DNAT) also new FIP connections."""
    build_router(lab)
    probe = udp(EXT_MAC, QG_MAC, INTERNET, VM1_IP, 5000, 22)
    got = lab.send("ext", "eth0", probe, expect_on=[VM1])
    assert_packet(only(got, VM1), rewritten(probe, eth_src=QR_A_MAC, eth_dst=VM1_MAC, ip_ttl=63))
    syn = tcp(VM2_MAC, QR_B_MAC, VM2_IP, INTERNET, 40000, 80)
    port = only(lab.send("vm2", "eth0", syn, expect_on=[EXT]), EXT).packet["tp_src"]

    rule = "-A neutron-l3-agent-local -i qg-x -m conntrack --ctstate NEW -j DROP"
    lab.iptables_restore("qrouter", f"*filter\n{rule}\nCOMMIT\n", noflush=True)
    unsolicited = rewritten(probe, tp_src=5001)
    nothing_at(lab.send("ext", "eth0", unsolicited, expect_on=[VM1], timeout=DROP_WAIT), VM1)
    to_fip = udp(EXT_MAC, QG_MAC, INTERNET, FIP, 5002, 22)
    nothing_at(lab.send("ext", "eth0", to_fip, expect_on=[VM1], timeout=DROP_WAIT), VM1)
    synack = tcp(EXT_MAC, QG_MAC, INTERNET, GW_IP, 80, port)
    back = lab.send("ext", "eth0", synack, expect_on=[VM2], tcp_flags=TCP_SYN | TCP_ACK, tcp_ack=1001)
    assert only(back, VM2).packet["tp_dst"] == 40000
    hits = {text: n for n, text in lab.rule_counters("qrouter")}
    assert hits[rule] == 2, hits


# ---------------------------------------------------------------- (5) bridge netfilter

VMX_MAC, NET_MAC = "fa:16:3e:aa:00:05", "fa:16:3e:bb:00:01"
VMX_IP, NET_IP = "10.1.0.5", "10.1.0.1"
PORT = "aaaa1111-22"
TAP, QVB, QVO, QBR = f"tap{PORT}", f"qvb{PORT}", f"qvo{PORT}", f"qbr{PORT}"
VMX: Point = ("vm", "eth0")
NET: Point = ("net", QVO)


def build_hybrid(lab: Lab, rules: str, *, quiet: bool = True) -> bool:
    """vm eth0 ── tapX [qbrX in 'host'] qvbX ── qvoX in 'net' (stand-in for br-int and the rest).

    Returns whether the bridge reaches iptables (per-namespace br_netfilter).
    """
    for name in ("vm", "host", "net"):
        lab.add_namespace(name)
    lab.veth(VMX, ("host", TAP), mac_a=VMX_MAC)
    lab.veth(("host", QVB), NET, mac_b=NET_MAC)
    filtered = lab.bridge("host", QBR, [TAP, QVB])
    lab.address("vm", "eth0", f"{VMX_IP}/24")
    lab.address("net", QVO, f"{NET_IP}/24")
    lab.iptables_restore("host", rules)
    if quiet:
        lab.iptables_restore("vm", QUIET_HOST)
        lab.iptables_restore("net", QUIET_HOST)
    return filtered


PHYSDEV_DROP = f"""*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m physdev --physdev-in {TAP} --physdev-is-bridged -j DROP
COMMIT
"""


def test_bridge_physdev_in_drop(lab: Lab) -> None:
    """A bridged frame from tapX meets FORWARD ``--physdev-in tapX -j DROP``; the other way passes unchanged.

    ARP and 802.1Q-tagged frames cross anyway (iptables never sees ARP;
    ``bridge-nf-filter-vlan-tagged`` is 0), and with ``bridge-nf-call-
    iptables`` 0 the rule is never consulted.
    """
    require_bridge_netfilter(lab)
    assert build_hybrid(lab, PHYSDEV_DROP)
    egress = udp(VMX_MAC, NET_MAC, VMX_IP, NET_IP, 5000, 53)
    nothing_at(lab.send("vm", "eth0", egress, expect_on=[NET], timeout=DROP_WAIT), NET)
    ingress = udp(NET_MAC, VMX_MAC, NET_IP, VMX_IP, 53, 5000)
    assert_packet(only(lab.send("net", QVO, ingress, expect_on=[VMX]), VMX), ingress)  # bridged: nothing rewritten
    arp = arp_packet(op=1, eth_src=VMX_MAC, sha=VMX_MAC, spa=VMX_IP, tpa=NET_IP)
    assert_packet(only(lab.send("vm", "eth0", arp, expect_on=[NET]), NET), arp)
    tagged = {**egress, "vlan_tci": VLAN_CFI | 100}
    assert_packet(only(lab.send("vm", "eth0", tagged, expect_on=[NET]), NET), tagged)
    drops = [n for n, text in lab.rule_counters("host") if "physdev-in" in text]
    assert drops == [1], drops
    lab.sysctl("host", {"net.bridge.bridge-nf-call-iptables": 0})
    assert_packet(only(lab.send("vm", "eth0", egress, expect_on=[NET]), NET), egress)


def hybrid_firewall_rules(*, zone: int = 4097) -> str:
    """The OVS hybrid iptables firewall of one port (§7): SG egress any, ingress TCP 22, ipset-free."""
    x = "neutron-openvswi"
    short = PORT[:10]
    i, o, s = f"{x}-i{short}", f"{x}-o{short}", f"{x}-s{short}"
    lines = [
        "*raw",
        ":PREROUTING ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        f":{x}-PREROUTING - [0:0]",
        f"-A PREROUTING -j {x}-PREROUTING",
        f"-A {x}-PREROUTING -m physdev --physdev-in {QVB} -j CT --zone {zone}",
        f"-A {x}-PREROUTING -i {QVB} -j CT --zone {zone}",
        f"-A {x}-PREROUTING -m physdev --physdev-in {TAP} -j CT --zone {zone}",
        "COMMIT",
        "*filter",
        *(f":{c} ACCEPT [0:0]" for c in ("INPUT", "FORWARD", "OUTPUT")),
        ":neutron-filter-top - [0:0]",
        *(f":{x}-{c} - [0:0]" for c in ("FORWARD", "INPUT", "OUTPUT", "local", "sg-chain", "sg-fallback")),
        f":{i} - [0:0]",
        f":{o} - [0:0]",
        f":{s} - [0:0]",
        f"-A INPUT -j {x}-INPUT",
        "-A FORWARD -j neutron-filter-top",
        f"-A FORWARD -j {x}-FORWARD",
        "-A OUTPUT -j neutron-filter-top",
        f"-A OUTPUT -j {x}-OUTPUT",
        f"-A neutron-filter-top -j {x}-local",
        f"-A {x}-FORWARD -m physdev --physdev-out {TAP} --physdev-is-bridged -j {x}-sg-chain",
        f"-A {x}-FORWARD -m physdev --physdev-in {TAP} --physdev-is-bridged -j {x}-sg-chain",
        f"-A {x}-INPUT -m physdev --physdev-in {TAP} --physdev-is-bridged -j {o}",
        f"-A {i} -m state --state RELATED,ESTABLISHED -j RETURN",
        f"-A {i} -d {VMX_IP}/32 -p udp -m udp --sport 67 --dport 68 -j RETURN",
        f"-A {i} -d 255.255.255.255/32 -p udp -m udp --sport 67 --dport 68 -j RETURN",
        f"-A {i} -p tcp -m tcp --dport 22 -j RETURN",
        f"-A {i} -m state --state INVALID -j DROP",
        f"-A {i} -j {x}-sg-fallback",
        f"-A {o} -s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j RETURN",
        f"-A {o} -j {s}",
        f"-A {o} -p udp -m udp --sport 68 --dport 67 -j RETURN",
        f"-A {o} -p udp -m udp --sport 67 --dport 68 -j DROP",
        f"-A {o} -m state --state RELATED,ESTABLISHED -j RETURN",
        f"-A {o} -j RETURN",
        f"-A {o} -m state --state INVALID -j DROP",
        f"-A {o} -j {x}-sg-fallback",
        f"-A {s} -s {VMX_IP}/32 -m mac --mac-source {VMX_MAC.upper()} -j RETURN",
        f"-A {s} -j DROP",
        f"-A {x}-sg-chain -m physdev --physdev-out {TAP} --physdev-is-bridged -j {i}",
        f"-A {x}-sg-chain -m physdev --physdev-in {TAP} --physdev-is-bridged -j {o}",
        f"-A {x}-sg-chain -j ACCEPT",
        f"-A {x}-sg-fallback -j DROP",
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"


def test_hybrid_firewall_port_chains(lab: Lab) -> None:
    """Neutron's per-port chains on qbr: egress any, replies via conntrack zone, ingress only TCP 22,
    anti-spoofing on (MAC, IP), DHCP client allowed and DHCP server refused."""
    require_bridge_netfilter(lab)
    assert build_hybrid(lab, hybrid_firewall_rules())

    def send(frm: Point, packet: Mapping[str, int], to: Point, **build: object) -> list[Received]:
        return lab.send(*frm, packet, expect_on=[to], timeout=DROP_WAIT, **build)  # type: ignore[arg-type]

    egress = udp(VMX_MAC, NET_MAC, VMX_IP, NET_IP, 5000, 53)
    assert_packet(only(send(VMX, egress, NET), NET), egress)
    (entry,) = [e for e in lab.conntrack("host") if e.original.get("sport") == "5000"]
    assert entry.zone == 4097, entry.line
    reply = udp(NET_MAC, VMX_MAC, NET_IP, VMX_IP, 53, 5000)
    assert_packet(only(send(NET, reply, VMX), VMX), reply)
    nothing_at(send(NET, rewritten(reply, tp_dst=5001), VMX), VMX)  # no ingress rule for UDP
    ssh = tcp(NET_MAC, VMX_MAC, NET_IP, VMX_IP, 33000, 22)
    assert_packet(only(send(NET, ssh, VMX), VMX), ssh)
    nothing_at(send(VMX, rewritten(egress, ip_src="10.1.0.99"), NET), NET)  # spoofed IP
    nothing_at(send(VMX, rewritten(egress, eth_src="fa:16:3e:aa:00:99"), NET), NET)  # spoofed MAC
    discover, payload = dhcp_discover(VMX_MAC)
    got = only(send(VMX, discover, NET, payload=payload), NET)
    assert got.frame is not None and got.frame.dhcp is not None and got.frame.dhcp.message_type == DHCP_DISCOVER
    rogue, rogue_payload = dhcp_offer(server_mac=VMX_MAC, server_ip=VMX_IP, client_mac=NET_MAC, offered_ip="10.1.0.50")
    nothing_at(send(VMX, rogue, NET, payload=rogue_payload), NET)  # a VM may not be a DHCP server
    offer, offer_payload = dhcp_offer(
        server_mac=NET_MAC, server_ip="10.1.0.2", client_mac=VMX_MAC, offered_ip=VMX_IP, router=NET_IP
    )
    got = only(send(NET, offer, VMX, payload=offer_payload), VMX)
    assert got.frame is not None and got.frame.dhcp is not None
    assert (got.frame.dhcp.message_type, got.frame.dhcp.yiaddr, got.frame.dhcp.address_option(3)) == (
        DHCP_OFFER,
        ip(VMX_IP),
        [NET_IP],
    )
    arp = arp_packet(op=1, eth_src=VMX_MAC, sha=VMX_MAC, spa="10.1.0.99", tpa=NET_IP)  # spoofed, yet not filtered
    assert_packet(only(send(VMX, arp, NET), NET), arp)


def test_routed_equivalent_of_physdev_drop(lab: Lab) -> None:
    """Without per-namespace br_netfilter, the same filtering on a *routed* hop: ``-i tapX`` for ``--physdev-in``.

    The 'host' namespace routes between tapX (10.1.0.1/24, the VM side) and
    qvbX (10.2.0.1/24, the network side); FORWARD ``-i tapX -j DROP``.  What
    differs from the bridge, and what a model must then change: the match is
    on -i/-o, the TTL drops by one, both MACs are rewritten, and ARP stops at
    the hop (it answers for its own address) instead of crossing.  Runs
    whether or not br_netfilter is available.
    """
    for name in ("vm", "host", "net"):
        lab.add_namespace(name, router=name == "host")
    host_tap_mac, host_qvb_mac = "fa:16:3e:cc:00:01", "fa:16:3e:cc:00:02"
    lab.veth(VMX, ("host", TAP), mac_a=VMX_MAC, mac_b=host_tap_mac)
    lab.veth(("host", QVB), NET, mac_a=host_qvb_mac, mac_b=NET_MAC)
    lab.address("host", TAP, "10.1.0.1/24")
    lab.address("host", QVB, "10.2.0.1/24")
    lab.address("vm", "eth0", f"{VMX_IP}/24")
    lab.route("vm", "default", via="10.1.0.1")
    lab.address("net", QVO, "10.2.0.5/24")
    lab.route("net", "default", via="10.2.0.1")
    rule = f"-A FORWARD -i {TAP} -j DROP"
    lab.iptables_restore(
        "host", f"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{rule}\nCOMMIT\n"
    )
    lab.iptables_restore("vm", QUIET_HOST)
    lab.iptables_restore("net", QUIET_HOST)
    egress = udp(VMX_MAC, host_tap_mac, VMX_IP, "10.2.0.5", 5000, 53)
    nothing_at(lab.send("vm", "eth0", egress, expect_on=[NET], timeout=DROP_WAIT), NET)
    ingress = udp(NET_MAC, host_qvb_mac, "10.2.0.5", VMX_IP, 53, 5000)
    got = only(lab.send("net", QVO, ingress, expect_on=[VMX]), VMX)
    assert_packet(got, rewritten(ingress, eth_src=host_tap_mac, eth_dst=VMX_MAC, ip_ttl=63))
    arp = arp_packet(op=1, eth_src=VMX_MAC, sha=VMX_MAC, spa=VMX_IP, tpa="10.1.0.1")
    got_arp = lab.send("vm", "eth0", arp, expect_on=[VMX, NET])
    nothing_at(got_arp, NET)
    assert only(got_arp, VMX).packet["ip_proto"] == 2  # the hop answers itself
    assert [n for n, text in lab.rule_counters("host") if text == rule] == [1]


# ---------------------------------------------------------------- (6) metadata REDIRECT


def test_metadata_redirect_to_the_local_proxy_port(lab: Lab) -> None:
    """169.254.169.254:80 from a qr- interface lands on the router's port 9697, at the *primary* address of qr-a.

    The VM sees answers from 169.254.169.254:80; the proxy port is not
    reachable directly (INPUT DROP, no RST), because only REDIRECTed packets
    carry mark 0x1.
    """
    build_router(lab)
    lab.address("qrouter", "qr-a", "10.0.0.254/24")  # a secondary address is not what REDIRECT picks
    listener = lab.open_socket("qrouter")
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", 9697))
    listener.listen()
    listener.settimeout(2)
    client = lab.open_socket("vm1")
    client.settimeout(2)
    client.connect((METADATA_IP, 80))
    conn, peer = listener.accept()
    with conn:
        assert conn.getsockname() == (QR_A_IP, 9697)
        assert peer == client.getsockname()
        assert client.getpeername() == (METADATA_IP, 80)
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert conn.recv(100).startswith(b"GET /")
    client.close()

    syn = tcp(VM1_MAC, QR_A_MAC, VM1_IP, METADATA_IP, 41000, 80)
    answer = only(lab.send("vm1", "eth0", syn, expect_on=[VM1]), VM1)
    expected = rewritten(
        syn, eth_src=QR_A_MAC, eth_dst=VM1_MAC, ip_src=METADATA_IP, ip_dst=VM1_IP, tp_src=80, tp_dst=41000
    )
    assert_packet(answer, expected, ignore=["ip_ttl"])
    assert answer.frame is not None and answer.frame.tcp_flags == TCP_SYN | TCP_ACK
    assert answer.frame.tcp_ack == 1001
    direct = tcp(VM1_MAC, QR_A_MAC, VM1_IP, QR_A_IP, 41001, 9697)
    nothing_at(lab.send("vm1", "eth0", direct, expect_on=[VM1], timeout=DROP_WAIT), VM1)


# ---------------------------------------------------------------- conntrack states

STATES = ("INVALID", "NEW", "ESTABLISHED", "RELATED", "UNTRACKED")


def test_conntrack_state_of_first_packets(lab: Lab) -> None:
    """Which ctstate a connection's first packet gets: what ``-m state`` rules in the models must assume."""
    build_router(lab)
    counting = "".join(f"-A neutron-l3-agent-local -i qr-a -m conntrack --ctstate {s}\n" for s in STATES)
    lab.iptables_restore("qrouter", f"*filter\n{counting}COMMIT\n", noflush=True)

    def state(packet: Mapping[str, int], **build: object) -> list[str]:
        before = _state_counters(lab)
        got = lab.send("vm1", "eth0", packet, expect_on=[VM2], **build)  # type: ignore[arg-type]
        only(got, VM2)  # nothing drops them: only counted
        after = _state_counters(lab)
        return [s for s in STATES if after[s] > before[s]]

    def segment(sport: int) -> dict[str, int]:
        return tcp(VM1_MAC, QR_A_MAC, VM1_IP, VM2_IP, sport, 80)

    cases = {
        "SYN": (TCP_SYN, ["NEW"]),
        "ACK (tcp_loose picks it up)": (TCP_ACK, ["NEW"]),
        "SYN+FIN": (TCP_SYN | TCP_FIN, ["INVALID"]),
        "no flags": (0, ["INVALID"]),
        "FIN": (TCP_FIN, ["INVALID"]),
        "FIN+ACK": (TCP_FIN | TCP_ACK, ["INVALID"]),
        "RST": (TCP_RST, ["INVALID"]),
        "SYN+ACK": (TCP_SYN | TCP_ACK, ["INVALID"]),
    }
    for n, (label, (flags, expected)) in enumerate(cases.items()):
        assert state(segment(20000 + n), tcp_flags=flags) == expected, label
    echo_reply = ipv4_packet(
        eth_src=VM1_MAC, eth_dst=QR_A_MAC, ip_src=VM1_IP, ip_dst=VM2_IP, proto=IPPROTO_ICMP, sport=0
    )
    assert state(echo_reply) == ["INVALID"]
    flow = udp(VM1_MAC, QR_A_MAC, VM1_IP, VM2_IP, 5353, 53)
    assert state(flow) == ["NEW"]
    assert state(flow) == ["NEW"], "a second packet before any reply is still NEW"
    # ICMP errors: RELATED when the quoted header belongs to a tracked connection, else INVALID.
    unreachable = ipv4_packet(
        eth_src=VM1_MAC, eth_dst=QR_A_MAC, ip_src=VM1_IP, ip_dst=VM2_IP, proto=IPPROTO_ICMP, sport=3, dport=3
    )
    for quoted_dport, expected in ((5353, ["RELATED"]), (9999, ["INVALID"])):
        quoted = build_frame(udp(VM2_MAC, VM1_MAC, VM2_IP, VM1_IP, 53, quoted_dport), pad=False)[14 : 14 + 28]
        assert state(unreachable, payload=quoted) == expected, quoted_dport
    lab.sysctl("qrouter", {"net.netfilter.nf_conntrack_tcp_loose": 0})
    assert state(segment(21000), tcp_flags=TCP_ACK) == ["INVALID"]


def _state_counters(lab: Lab) -> dict[str, int]:
    out = dict.fromkeys(STATES, 0)
    for n, text in lab.rule_counters("qrouter"):
        if text.startswith("-A neutron-l3-agent-local -i qr-a -m conntrack --ctstate ") and "-j" not in text:
            out[text.rsplit(" ", 1)[1]] = n
    return out


def test_rp_filter_strict_drops_a_source_routed_elsewhere(lab: Lab) -> None:
    """rp_filter=1 in the router drops a packet from qr-a whose source routes back via qr-b; 0 forwards it.

    Neutron does not set rp_filter in qrouter-: the namespace inherits the
    root namespace's ``all``/``default`` values (devconf_inherit_init_net=0),
    so the effective value is host configuration a snapshot must record.
    """
    build_router(lab)
    spoofed = udp(VM1_MAC, QR_A_MAC, "10.0.1.77", INTERNET, 5000, 53)
    lab.sysctl("qrouter", {"net.ipv4.conf.all.rp_filter": 1})
    nothing_at(lab.send("vm1", "eth0", spoofed, expect_on=[EXT], timeout=DROP_WAIT), EXT)
    lab.sysctl("qrouter", {"net.ipv4.conf.all.rp_filter": 0})
    out = only(lab.send("vm1", "eth0", spoofed, expect_on=[EXT]), EXT)
    assert out.packet["ip_src"] == ip(GW_IP)  # forwarded, and SNATed like any packet leaving through qg


def test_router_arp_ignore(lab: Lab) -> None:
    """arp_ignore=1: the router answers ARP only for addresses of the receiving interface (the FIP on qg)."""
    build_router(lab)

    def ask(point: Point, sender_mac: str, sender_ip: str, target: str) -> list[Received]:
        request = arp_packet(op=1, eth_src=sender_mac, sha=sender_mac, spa=sender_ip, tpa=target)
        return [
            r
            for r in lab.send(*point, request, expect_on=[point], timeout=DROP_WAIT)
            if r.packet["eth_type"] == ETH_TYPE_ARP
        ]

    (answer,) = ask(EXT, EXT_MAC, EXT_IP, FIP)
    assert answer.packet["arp_sha"] == mac(QG_MAC) and answer.packet["ip_src"] == ip(FIP)
    assert ask(EXT, EXT_MAC, EXT_IP, QR_A_IP) == []
    assert ask(VM1, VM1_MAC, VM1_IP, QR_B_IP) == []
    (own,) = ask(VM1, VM1_MAC, VM1_IP, QR_A_IP)
    assert own.packet["arp_sha"] == mac(QR_A_MAC)


def test_send_timing_is_short(lab: Lab) -> None:
    """A delivered frame returns well before the timeout (the harness stops once every listed point has one)."""
    build_router(lab)
    sent = udp(VM1_MAC, QR_A_MAC, VM1_IP, VM2_IP, 40000, 53)
    start = time.monotonic()
    only(lab.send("vm1", "eth0", sent, expect_on=[VM2], timeout=5.0), VM2)
    assert time.monotonic() - start < 1.0


def test_dhcp_payload_round_trip() -> None:
    """The DHCP helpers are self-consistent (no namespace needed)."""
    message = Dhcp(
        op=2,
        xid=7,
        chaddr=mac(VM1_MAC),
        yiaddr=ip(VM1_IP),
        options={53: bytes([DHCP_OFFER]), 121: bytes([32, 169, 254, 169, 254, 10, 0, 0, 1, 0, 10, 0, 0, 1])},
    )
    packet = udp(QR_A_MAC, VM1_MAC, QR_A_IP, VM1_IP, 67, 68)
    frame = parse_frame(build_frame(packet, payload=dhcp_payload(message)))
    assert frame.dhcp == message
    assert frame.dhcp.classless_routes() == [("169.254.169.254/32", "10.0.0.1"), ("0.0.0.0/0", "10.0.0.1")]
