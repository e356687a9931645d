"""iptables-save: real 1.8.9 dumps (nft and legacy), 1.4-era layouts, every error, lenient mode and the writer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support.linux_strategies import netfilters
from verifier.errors import SnapshotError
from verifier.ir import Skipped
from verifier.linux import (
    Chain,
    ConnMark,
    Conntrack,
    Jump,
    Match,
    MatchAddress,
    MatchComment,
    MatchIcmp,
    MatchInterface,
    MatchMac,
    MatchMark,
    MatchPhysdev,
    MatchPorts,
    MatchProtocol,
    MatchSet,
    MatchState,
    MatchUnsupported,
    Nat,
    Netfilter,
    NoEffect,
    Rule,
    SetMark,
    Table,
    Target,
    TargetUnsupported,
    Verdict,
)
from verifier.snapshot.iptables import format_iptables_save, parse_iptables_save
from verifier.snapshot.iptables_text import save_string, tokenize

DATA = Path(__file__).parent.parent / "data" / "snapshot_formats"
FILE = "hosts/n1/netns/qrouter-r1/iptables-save.txt"
QR = "qr-2d9c6b4e-5f"
QG = "qg-0b7e3c95-4d"
TAP = "tap8b2e8c3a-1f"
L3 = "neutron-l3-agent-"
OVS = "neutron-openvswi-"


def parse(text: str, *, family: int = 4) -> Netfilter:
    return parse_iptables_save(text, FILE, family=family)


def read(name: str) -> Netfilter:
    return parse((DATA / name).read_text())


def rules_of(nf: Netfilter, table: str, chain: str) -> list[tuple[tuple[Match, ...], Target | None]]:
    t = nf.table(table)
    assert t is not None
    c = t.chain(chain)
    assert c is not None
    return [(r.matches, r.target) for r in c.rules]


def one(line: str, *, chains: str = "", table: str = "filter", family: int = 4) -> Rule:
    """The rule of a one-rule filter table (``chains``: extra user chains, space-separated)."""
    declared = "".join(f":{c} - [0:0]\n" for c in chains.split())
    builtin = {"filter": "INPUT", "nat": "PREROUTING", "raw": "PREROUTING", "mangle": "PREROUTING"}[table]
    nf = parse(f"*{table}\n:{builtin} ACCEPT [0:0]\n{declared}-A {builtin} {line}\nCOMMIT\n", family=family)
    (rule,) = (r for c in nf.tables[0].chains for r in c.rules)
    return rule


def dump_without_comments_and_counters(name: str) -> str:
    lines = (DATA / name).read_text().splitlines(keepends=True)
    return "".join(re.sub(r"^\[\d+:\d+\] ", "", line) for line in lines if not line.startswith("#"))


# ---------------------------------------------------------------- real dumps


def test_real_qrouter_l3_agent_rules() -> None:
    nf = read("iptables-save-1.8.9-nft-qrouter.txt")
    assert [t.name for t in nf.tables] == ["mangle", "raw", "filter", "nat"] and nf.family == 4
    nat = nf.table("nat")
    assert nat is not None
    assert [c.name for c in nat.chains] == [
        "PREROUTING",
        "INPUT",
        "OUTPUT",
        "POSTROUTING",
        f"{L3}OUTPUT",
        f"{L3}POSTROUTING",
        f"{L3}PREROUTING",
        f"{L3}float-snat",
        f"{L3}snat",
        "neutron-postrouting-bottom",
    ]
    assert [c.policy for c in nat.chains[:5]] == ["ACCEPT"] * 4 + [None]
    fip_dnat = ((MatchAddress("dst", "203.0.113.141/32"),), Nat("DNAT", "10.0.22.202"))
    assert rules_of(nf, "nat", f"{L3}PREROUTING") == [
        (
            (
                MatchAddress("dst", "169.254.169.254/32"),
                MatchInterface("in", "qr-+"),
                MatchProtocol(6),
                MatchPorts("dst", ((80, 80),)),
            ),
            Nat("REDIRECT", ports="9697"),
        ),
        fip_dnat,
    ]
    assert rules_of(nf, "nat", f"{L3}OUTPUT") == [fip_dnat]
    assert rules_of(nf, "nat", f"{L3}POSTROUTING") == [
        ((MatchInterface("out", QG, negated=True), MatchState(frozenset({"DNAT"}), negated=True)), Verdict("ACCEPT"))
    ]
    assert rules_of(nf, "nat", f"{L3}float-snat") == [
        ((MatchAddress("src", "10.0.22.202/32"),), Nat("SNAT", "203.0.113.141", random_fully=True))
    ]
    assert rules_of(nf, "nat", f"{L3}snat") == [
        ((), Jump(f"{L3}float-snat")),
        ((MatchInterface("out", QG),), Nat("SNAT", "203.0.113.74", random_fully=True)),
        (
            (MatchMark(0x2, 0xFFFF, negated=True), MatchState(frozenset({"DNAT"}))),
            Nat("SNAT", "203.0.113.74", random_fully=True),
        ),
    ]
    assert rules_of(nf, "nat", "neutron-postrouting-bottom") == [
        ((MatchComment("Perform source NAT on outgoing traffic."),), Jump(f"{L3}snat"))
    ]
    assert rules_of(nf, "mangle", f"{L3}PREROUTING")[2:] == [
        (
            (MatchMark(0, 0xFFFF0000, connection=True, negated=True),),
            ConnMark("restore", nfmask=0xFFFF0000, ctmask=0xFFFF0000),
        ),
        ((), Jump(f"{L3}floatingip")),
        (
            (
                MatchAddress("dst", "169.254.169.254/32"),
                MatchInterface("in", "qr-+"),
                MatchProtocol(6),
                MatchPorts("dst", ((80, 80),)),
            ),
            SetMark(0x1, 0xFFFF),
        ),
    ]
    assert rules_of(nf, "mangle", f"{L3}mark") == [((MatchInterface("in", QG),), SetMark(0x2, 0xFFFF))]
    assert rules_of(nf, "filter", f"{L3}INPUT") == [
        ((MatchMark(0x1, 0xFFFF),), Verdict("ACCEPT")),
        ((MatchProtocol(6), MatchPorts("dst", ((9697, 9697),))), Verdict("DROP")),
    ]
    assert rules_of(nf, "filter", f"{L3}scope") == [
        ((MatchInterface("out", QR), MatchMark(0x4000000, 0xFFFF0000, negated=True)), Verdict("DROP"))
    ]
    redirect = nat.chains[6].rules[0]
    assert redirect.provenance.file == FILE and redirect.provenance.line == 84
    assert redirect.provenance.text.startswith("-A neutron-l3-agent-PREROUTING -d 169.254.169.254/32")


def test_counters_change_nothing() -> None:
    assert read("iptables-save-1.8.9-nft-qrouter-counters.txt") == read("iptables-save-1.8.9-nft-qrouter.txt")


def test_real_qdhcp_checksum_fill() -> None:
    nf = read("iptables-save-1.8.9-nft-qdhcp.txt")
    assert rules_of(nf, "mangle", "POSTROUTING") == [
        ((MatchProtocol(17), MatchPorts("dst", ((68, 68),))), NoEffect("CHECKSUM --checksum-fill"))
    ]
    assert read("iptables-save-1.8.9-nft-warning.txt") == nf  # the legacy-tables warning line is a comment


def test_real_hybrid_firewall() -> None:
    nf = read("iptables-save-1.8.9-nft-compute.txt")
    assert rules_of(nf, "raw", f"{OVS}PREROUTING") == [
        (
            (MatchPhysdev(physdev_in=("qvb8b2e8c3a-1f", False)), MatchComment("Set zone for 8b2e8c3a-1f")),
            Conntrack(4097),
        ),
        ((MatchInterface("in", "qvb8b2e8c3a-1f"), MatchComment("Set zone for 8b2e8c3a-1f")), Conntrack(4097)),
        ((MatchPhysdev(physdev_in=(TAP, False)), MatchComment("Set zone for 8b2e8c3a-1f")), Conntrack(4097)),
        ((MatchPhysdev(physdev_in=("tap5c1d2e3f-4a", False)),), Conntrack(notrack=True)),
    ]
    bridged = (True, False)
    forward = rules_of(nf, "filter", f"{OVS}FORWARD")
    assert forward[0][0][0] == MatchPhysdev(physdev_out=(TAP, False), is_bridged=bridged)
    assert forward[0][1] == Jump(f"{OVS}sg-chain")
    assert forward[2] == (
        (
            MatchPhysdev(physdev_out=("tap5c1d2e3f-4a", False), is_bridged=bridged),
            MatchComment("Accept all packets when port is trusted."),
        ),
        Verdict("ACCEPT"),
    )
    ingress = rules_of(nf, "filter", f"{OVS}i8b2e8c3a-1")
    assert ingress[0][0][0] == MatchState(frozenset({"RELATED", "ESTABLISHED"}))
    assert ingress[1] == (
        (
            MatchAddress("dst", "10.0.22.202/32"),
            MatchProtocol(17),
            MatchPorts("src", ((67, 67),)),
            MatchPorts("dst", ((68, 68),)),
        ),
        Verdict("RETURN"),
    )
    assert ingress[4][0] == (
        MatchAddress("src", "198.51.100.0/24"),
        MatchProtocol(6),
        MatchPorts("dst", ((8000, 8080),)),
    )
    assert ingress[5][0] == (MatchProtocol(1), MatchIcmp(8, 0))
    assert ingress[6][0] == (MatchProtocol(1), MatchIcmp(3))
    assert ingress[8] == ((MatchSet("NIPv48c0f2d1e-7a3b-4c5d-9e8f-", ("src",)),), Verdict("RETURN"))
    assert ingress[-1] == ((MatchComment("Send unmatched traffic to the fallback chain."),), Jump(f"{OVS}sg-fallback"))
    spoof = rules_of(nf, "filter", f"{OVS}s8b2e8c3a-1")
    assert spoof[0][0][:2] == (MatchAddress("src", "10.0.22.202/32"), MatchMac("fa:16:3e:19:65:62"))
    assert rules_of(nf, "nat", f"{OVS}PREROUTING") == [
        ((MatchPhysdev(physdev_in=(TAP, False)),), Verdict("ACCEPT")),
        ((MatchPhysdev(physdev_out=(TAP, False)),), Verdict("ACCEPT")),
    ]
    legacy = read("iptables-save-1.8.9-legacy-compute-counters.txt")
    assert {t.name: t for t in legacy.tables} == {t.name: t for t in nf.tables}


def test_iptables_1_4_21_centos7_layout() -> None:
    nf = read("iptables-save-1.4.21-centos7-compute.txt")
    spoof = rules_of(nf, "filter", f"{OVS}s8b2e8c3a-1")
    assert spoof[0][0][1] == MatchMac("fa:16:3e:19:65:62")  # 1.4 prints MACs in upper case
    assert rules_of(nf, "raw", f"{OVS}PREROUTING")[0] == (
        (MatchPhysdev(physdev_in=("qvb8b2e8c3a-1f", False)),),
        Conntrack(zone=1),
    )
    modern = read("iptables-save-1.8.9-nft-compute.txt").table("filter")
    assert modern is not None
    old = nf.table("filter")
    assert old is not None
    chain = f"{OVS}sg-chain"
    assert old.chain(chain) == modern.chain(chain)


def test_icehouse_era_spellings() -> None:
    nf = read("iptables-save-icehouse-qrouter.txt")
    assert [c.name for c in nf.tables[0].chains[:3]] == ["PREROUTING", "POSTROUTING", "OUTPUT"]  # no nat INPUT
    assert rules_of(nf, "nat", f"{L3}PREROUTING") == [
        (
            (MatchAddress("dst", "169.254.169.254/32"), MatchProtocol(6), MatchPorts("dst", ((80, 80),))),
            Nat("REDIRECT", ports="9697"),
        ),
        ((MatchAddress("dst", "203.0.113.6/32"),), Nat("DNAT", "10.0.0.5")),
    ]
    assert rules_of(nf, "nat", f"{L3}POSTROUTING")[0][0] == (
        MatchInterface("in", "qg-7c1e0f3a-2b", negated=True),
        MatchInterface("out", "qg-7c1e0f3a-2b", negated=True),
        MatchState(frozenset({"DNAT"}), negated=True),
    )
    assert rules_of(nf, "nat", f"{L3}float-snat") == [
        ((MatchAddress("src", "10.0.0.5/32"),), Nat("SNAT", "203.0.113.6"))
    ]
    assert rules_of(nf, "nat", f"{L3}snat")[1] == ((MatchAddress("src", "10.0.0.0/24"),), Nat("SNAT", "203.0.113.5"))


@pytest.mark.parametrize(
    "name",
    [
        "iptables-save-1.8.9-nft-qrouter.txt",
        "iptables-save-1.8.9-nft-qrouter-counters.txt",
        "iptables-save-1.8.9-nft-qdhcp.txt",
        "iptables-save-1.8.9-nft-compute.txt",
        "iptables-save-1.8.9-legacy-compute-counters.txt",
        "iptables-save-1.8.9-nft-warning.txt",
    ],
)
def test_real_dumps_come_back_from_the_writer(name: str) -> None:
    assert format_iptables_save(read(name)) == dump_without_comments_and_counters(name)


def test_odd_rules_come_back_but_for_named_normalisations() -> None:
    name = "iptables-save-1.8.9-nft-odds.txt"
    expected = dump_without_comments_and_counters(name)
    expected = expected.replace("-j NOTRACK", "-j CT --notrack").replace(" -m icmp --icmp-type any", "")
    assert format_iptables_save(read(name)) == expected


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("iptables-save-*.txt")))
def test_every_dump_reads_back_equal_through_the_writer(name: str) -> None:
    nf = read(name)
    assert parse(format_iptables_save(nf)) == nf


# ---------------------------------------------------------------- matches and targets, one by one


@pytest.mark.parametrize(
    ("line", "matches"),
    [
        ("-s 10.0.0.5 -j ACCEPT", (MatchAddress("src", "10.0.0.5/32"),)),
        ("-s 10.0.0.5/24 -j ACCEPT", (MatchAddress("src", "10.0.0.0/24"),)),
        ("--source 10.1.0.0/255.255.0.0 -j ACCEPT", (MatchAddress("src", "10.1.0.0/16"),)),
        ("-s ! 10.0.0.0/8 -j ACCEPT", (MatchAddress("src", "10.0.0.0/8", negated=True),)),
        ("! --dst 10.0.0.0/8 -j ACCEPT", (MatchAddress("dst", "10.0.0.0/8", negated=True),)),
        ("-s 0.0.0.0/0 -d 0.0.0.0/0.0.0.0 -p all -j ACCEPT", ()),
        ("! -s 0.0.0.0/0 -j ACCEPT", (MatchAddress("src", "0.0.0.0/0", negated=True),)),
        ("-p 0 -j ACCEPT", ()),
        (
            "--in-interface qr-+ --out-interface ! eth0 -j ACCEPT",
            (MatchInterface("in", "qr-+"), MatchInterface("out", "eth0", True)),
        ),
        ("--protocol ICMPv6 -j ACCEPT", (MatchProtocol(58),)),
        ("-p tcp --dport 80 -j ACCEPT", (MatchProtocol(6), MatchPorts("dst", ((80, 80),)))),
        ("-p tcp --dport ! 53 -j ACCEPT", (MatchProtocol(6), MatchPorts("dst", ((53, 53),), negated=True))),
        (
            "-p udp -m udp --destination-port 67 --source-port 68 -j ACCEPT",
            (MatchProtocol(17), MatchPorts("src", ((68, 68),)), MatchPorts("dst", ((67, 67),))),
        ),
        ("-p tcp -m tcp --sport :1023 -j ACCEPT", (MatchProtocol(6), MatchPorts("src", ((0, 1023),)))),
        ("-p tcp -m tcp --sport 1024: -j ACCEPT", (MatchProtocol(6), MatchPorts("src", ((1024, 65535),)))),
        (
            "-p tcp -m multiport --destination-ports 22,80:89 -j ACCEPT",
            (MatchProtocol(6), MatchPorts("dst", ((22, 22), (80, 89)), multiport=True)),
        ),
        ("-p icmp --icmp-type echo-request -j ACCEPT", (MatchProtocol(1), MatchIcmp(8))),
        ("-p icmp -m icmp --icmp-type host-unreachable -j ACCEPT", (MatchProtocol(1), MatchIcmp(3, 1))),
        ("-p ipv6-icmp -m icmp6 --icmpv6-type 134 -j ACCEPT", (MatchProtocol(58), MatchIcmp(134, v6=True))),
        ("-p 58 --icmpv6-type neighbour-solicitation -j ACCEPT", (MatchProtocol(58), MatchIcmp(135, v6=True))),
        ("-m physdev ! --physdev-out x+ -j ACCEPT", (MatchPhysdev(physdev_out=("x+", True)),)),
        ("-m state --state new,established -j ACCEPT", (MatchState(frozenset({"NEW", "ESTABLISHED"})),)),
        ("-m mark --mark 5/0xff -j ACCEPT", (MatchMark(5, 0xFF),)),
        ('-m comment --comment "it\'s \\"quoted\\"" -j ACCEPT', (MatchComment('it\'s "quoted"'),)),
        ("-m comment --comment -dash -j ACCEPT", (MatchComment("-dash"),)),
        ("-c 10 20 -j ACCEPT", ()),
    ],
)
def test_match_spellings(line: str, matches: tuple[Match, ...]) -> None:
    assert one(line).matches == matches


def test_ip6tables_family() -> None:
    rule = one(
        "-s 2001:db8::/32 -p ipv6-icmp -m icmp6 --icmpv6-type 1/4 -j REJECT --reject-with adm-prohibited", family=6
    )
    assert rule.matches == (MatchAddress("src", "2001:db8::/32"), MatchProtocol(58), MatchIcmp(1, 4, v6=True))
    assert rule.target == Verdict("REJECT", "icmp6-adm-prohibited")
    dnat = one("-d 2001:db8::1 -j DNAT --to-destination [2001:db8::2]:80", table="nat", family=6)
    assert dnat.target == Nat("DNAT", "2001:db8::2", "80")
    assert one("-j DNAT --to-destination 2001:db8::3", table="nat", family=6).target == Nat("DNAT", "2001:db8::3")


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("-m limit --limit 5/sec -j ACCEPT", "-m limit --limit 5/sec"),
        ("-s 10.0.0.0/255.0.255.0 -j ACCEPT", "-s 10.0.0.0/255.0.255.0"),
        ("! -p all -j ACCEPT", "! -p all"),
        ("-f -j ACCEPT", "-f"),
        ("! --fragment -j ACCEPT", "! --fragment"),
        ("--weird x y -j ACCEPT", "--weird x y"),
        ("-p udp --tcp-flags SYN SYN -j ACCEPT", "--tcp-flags SYN SYN"),
        ("-m conntrack --ctstatus SEEN_REPLY -j ACCEPT", "-m conntrack --ctstatus SEEN_REPLY"),
        ("-p icmp -m icmp ! --icmp-type any -j ACCEPT", "-m icmp ! --icmp-type any"),
        ("-m set --match-set s src ! --update-counters -j ACCEPT", "-m set --match-set s src ! --update-counters"),
        ('-m u32 --u32 "0>>22&0x3C@ 12>>26&0x3F=0x10" -j ACCEPT', '-m u32 --u32 "0>>22&0x3C@ 12>>26&0x3F=0x10"'),
    ],
)
def test_unknown_matches_are_kept_as_text(line: str, text: str) -> None:
    rule = one(line)
    assert MatchUnsupported(text) in rule.matches and rule.unsupported == (text,)
    assert (
        parse(format_iptables_save(parse(f"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT {line}\nCOMMIT\n")))
        .tables[0]
        .chains[0]
        .rules[0]
        == rule
    )


def test_unsupported_basic_options_come_before_modules() -> None:
    rule = one("-m comment --comment c -f -p tcp -j ACCEPT")
    assert rule.matches == (MatchProtocol(6), MatchUnsupported("-f"), MatchComment("c"))


@pytest.mark.parametrize(
    ("line", "target"),
    [
        ("-j REJECT", Verdict("REJECT")),
        ("-j REJECT --reject-with host-prohib", Verdict("REJECT", "icmp-host-prohibited")),
        ("-j MARK --set-mark 0x5", SetMark(0x5, 0xFFFFFFFF)),
        ("-j MARK --set-mark 0x5/0xf0", SetMark(0x5, 0xF5)),
        ("-j MARK --and-mark 0xff", SetMark(0, 0xFFFFFF00)),
        ("-j MARK --or-mark 0x100", SetMark(0x100, 0x100)),
        ("-j MARK --xor-mark 3", SetMark(3, 0)),
        ("-j CONNMARK --set-mark 0x7/0xff", ConnMark("set", 7, 0xFF)),
        ("-j CONNMARK --set-xmark 0x7", ConnMark("set", 7, 0xFFFFFFFF)),
        ("-j CONNMARK --save-mark", ConnMark("save")),
        ("-j CONNMARK --restore-mark --mask 0xff", ConnMark("restore", nfmask=0xFF, ctmask=0xFF)),
        ("-j CONNMARK --save-mark --ctmask 0xf", ConnMark("save", ctmask=0xF)),
        ("-j NOTRACK", Conntrack(notrack=True)),
        ('-j LOG --log-prefix "-x " --log-level 4', NoEffect('LOG --log-prefix "-x " --log-level 4')),
        ("-j ULOG", NoEffect("ULOG")),
        ("-j TCPMSS --clamp-mss-to-pmtu", TargetUnsupported("TCPMSS --clamp-mss-to-pmtu")),
        ("-j CT --zone 5 --helper ftp", TargetUnsupported("CT --zone 5 --helper ftp")),
        (
            "-j CONNMARK --restore-mark --nfmask 1 --bogus",
            TargetUnsupported("CONNMARK --restore-mark --nfmask 1 --bogus"),
        ),
        ("-j REJECT --fancy", TargetUnsupported("REJECT --fancy")),
        ("-j x", Jump("x")),
        ("--jump x", Jump("x")),
        ("--goto x", Jump("x", goto=True)),
    ],
)
def test_target_spellings(line: str, target: Target) -> None:
    assert one(line, chains="x").target == target


@pytest.mark.parametrize(
    ("line", "target"),
    [
        ("-j DNAT --to 10.0.0.5", Nat("DNAT", "10.0.0.5")),
        (
            "-p tcp -j DNAT --to-destination 10.0.0.1-10.0.0.9:80-89 --random",
            Nat("DNAT", "10.0.0.1-10.0.0.9", "80-89", random=True),
        ),
        ("-p tcp -j DNAT --to-destination :8080", Nat("DNAT", None, "8080")),
        ("-j REDIRECT --to-port 9697", Nat("REDIRECT", ports="9697")),
        ("-j REDIRECT", Nat("REDIRECT")),
        (
            "-j SNAT --to-source 1.2.3.4 --random-fully --persistent",
            Nat("SNAT", "1.2.3.4", random_fully=True, persistent=True),
        ),
        ("-j MASQUERADE --to-ports 1024-65535 --random", Nat("MASQUERADE", ports="1024-65535", random=True)),
        (
            "-j SNAT --to-source 1.2.3.4 --to-source 1.2.3.5",
            TargetUnsupported("SNAT --to-source 1.2.3.4 --to-source 1.2.3.5"),
        ),
    ],
)
def test_nat_spellings(line: str, target: Target) -> None:
    table = "nat"
    assert one(line, table=table).target == target


def test_quoting_matches_iptables() -> None:
    assert save_string("Allow DHCP client traffic.") == '"Allow DHCP client traffic."'
    assert save_string("single") == "single" and save_string("") == '""'
    assert save_string("it's") == '"it\\\'s"'
    assert [t.value for t in tokenize('-A x "a b"c "" \'q\' "\\\\"')] == ["-A", "x", "a bc", "", "'q'", "\\"]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30))
def test_save_string_and_tokenize_agree(value: str) -> None:
    (token,) = tokenize(save_string(value))
    assert token.value == value


# ---------------------------------------------------------------- the writer


def test_writer_layout() -> None:
    nf = Netfilter(
        (
            Table(
                "filter",
                (
                    Chain(
                        "INPUT",
                        "DROP",
                        (
                            Rule(
                                "INPUT",
                                (
                                    MatchComment("c"),
                                    MatchProtocol(6),
                                    MatchAddress("dst", "10.0.0.1/32"),
                                    MatchPorts("src", ((1, 2),)),
                                    MatchPorts("dst", ((3, 3),), negated=True),
                                ),
                                Jump("mine"),
                            ),
                            Rule("INPUT", (), None),
                        ),
                    ),
                    Chain("mine", None),
                ),
            ),
        )
    )
    assert format_iptables_save(nf) == (
        "*filter\n"
        ":INPUT DROP [0:0]\n"
        ":mine - [0:0]\n"
        "-A INPUT -d 10.0.0.1/32 -p tcp -m comment --comment c -m tcp --sport 1:2 ! --dport 3 -j mine\n"
        "-A INPUT\n"
        "COMMIT\n"
    )
    assert format_iptables_save(Netfilter(())) == ""


def _table(*rules: Rule, name: str = "filter", chains: tuple[Chain, ...] = ()) -> Netfilter:
    builtin = {"filter": "INPUT", "nat": "PREROUTING"}[name]
    return Netfilter((Table(name, (Chain(builtin, "ACCEPT", rules), *chains)),))


@pytest.mark.parametrize(
    ("nf", "problem"),
    [
        (Netfilter((Table("bogus", ()),)), "unknown iptables table 'bogus'"),
        (
            Netfilter((Table("filter", (Chain("INPUT", None),)),)),
            "chain 'INPUT' of table 'filter' cannot have the policy None",
        ),
        (
            Netfilter((Table("filter", (Chain("mine", "ACCEPT"),)),)),
            "chain 'mine' of table 'filter' cannot have the policy",
        ),
        (Netfilter((Table("filter", (Chain("INPUT", "REJECT"),)),)), "cannot have the policy 'REJECT'"),
        (_table(Rule("INPUT", (), Jump("nowhere"))), "jumps to 'nowhere', not a chain of this table"),
        (_table(Rule("OUTPUT", (), None)), "rule of chain 'OUTPUT' listed in chain 'INPUT'"),
        (_table(Rule("INPUT", (MatchPorts("dst", ((1, 1),)),), None)), "a port match needs '-p tcp'"),
        (_table(Rule("INPUT", (MatchPhysdev(),), None)), "a physdev match with no criterion"),
        (_table(Rule("INPUT", (), Verdict("MAYBE"))), "not an iptables verdict"),
        (_table(Rule("INPUT", (), Verdict("DROP", "tcp-reset"))), "not an iptables verdict"),
        (_table(Rule("INPUT", (), ConnMark("swap"))), "unknown CONNMARK mode 'swap'"),
        (_table(Rule("INPUT", (), Conntrack(5, notrack=True))), "a CT target has either a zone or notrack"),
        (_table(Rule("INPUT", (), Conntrack())), "a CT target has either a zone or notrack"),
        (_table(Rule("INPUT", (), Nat("DNAT"))), "DNAT without an address or ports"),
        (_table(Rule("INPUT", (), Nat("MASQUERADE", "1.2.3.4"))), "MASQUERADE has no address"),
        (_table(Rule("INPUT", (), Nat("REDIRECT", random_fully=True))), "REDIRECT has no address"),
        (_table(Rule("INPUT", (), Nat("NETMAP"))), "unknown NAT kind 'NETMAP'"),
        (_table(Rule("INPUT", (MatchComment("two\nlines"),), None)), "rule of chain 'INPUT' holds a line break"),
    ],
)
def test_writer_refuses_what_iptables_cannot_hold(nf: Netfilter, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        format_iptables_save(nf)


@given(netfilters())
def test_roundtrip_generated(nf: Netfilter) -> None:
    assert parse(format_iptables_save(nf)) == nf


# ---------------------------------------------------------------- errors

HEAD = "*filter\n:INPUT ACCEPT [0:0]\n:x - [0:0]\n"


@pytest.mark.parametrize(
    ("text", "line", "problem", "bad"),
    [
        ("COMMIT\n", 1, "COMMIT outside a table", "COMMIT"),
        (":INPUT ACCEPT [0:0]\n", 1, "outside a table", ":INPUT ACCEPT [0:0]"),
        ("-A INPUT -j ACCEPT\n", 1, "outside a table", "-A INPUT -j ACCEPT"),
        ("*filter\nbogus\nCOMMIT\n", 2, "not an iptables-save line", "bogus"),
        ("*broute\nCOMMIT\n", 1, "unknown table 'broute'", "*broute"),
        ("*filter\nCOMMIT\n*filter\nCOMMIT\n", 3, "table 'filter' listed twice", "*filter"),
        ("*filter\n:INPUT\nCOMMIT\n", 2, "expected a chain line", ":INPUT"),
        ("*filter\n:x - [0:0]\n:x - [0:0]\nCOMMIT\n", 3, "chain 'x' declared twice", ":x - [0:0]"),
        ("*filter\n:INPUT - [0:0]\nCOMMIT\n", 2, "needs the policy ACCEPT or DROP", ":INPUT - [0:0]"),
        ("*nat\n:FORWARD ACCEPT [0:0]\nCOMMIT\n", 2, "is not a built-in chain of table 'nat'", ":FORWARD ACCEPT [0:0]"),
        ("*filter\n:INPUT ACCEPT [0:0]\n", 1, "table 'filter' has no COMMIT line", "*filter"),
        ("*filter\n*nat\nCOMMIT\n", 1, "table 'filter' has no COMMIT line", "*filter"),
        (HEAD + "-I INPUT -j ACCEPT\nCOMMIT\n", 4, "expected '-A CHAIN ...'", "-I INPUT -j ACCEPT"),
        (HEAD + "-A\nCOMMIT\n", 4, "-A without a chain name", "-A"),
        (HEAD + "-A y -j ACCEPT\nCOMMIT\n", 4, "chain 'y' is not declared in this table", "-A y -j ACCEPT"),
        (HEAD + "[0:0] -A INPUT -s 1.2.3.4 --src 1.2.3.5\nCOMMIT\n", 4, "-s given twice", None),
        (HEAD + "-A INPUT -f x\nCOMMIT\n", 4, "-f takes no value, got 'x'", None),
        (HEAD + "-A INPUT -c 1\nCOMMIT\n", 4, "-c takes two counters", None),
        (HEAD + "-A INPUT ! -m tcp\nCOMMIT\n", 4, "-m cannot be negated", None),
        (HEAD + "-A INPUT -j ACCEPT -j DROP\nCOMMIT\n", 4, "a rule has one -j or -g", None),
        (HEAD + '-A INPUT -m comment --comment "x\nCOMMIT\n', 4, "unbalanced double quote", None),
        (HEAD + "-A INPUT -s 1.2.3.4 !\nCOMMIT\n", 4, "'!' at the end of the rule", None),
        (HEAD + "-A INPUT stray\nCOMMIT\n", 4, "expected an option, found 'stray'", None),
        (HEAD + "-A INPUT ! -s ! 1.2.3.4\nCOMMIT\n", 4, "-s is negated twice", None),
        (HEAD + "-A INPUT -s\nCOMMIT\n", 4, "-s takes one value, not 0", None),
        (HEAD + "-A INPUT -s host.example\nCOMMIT\n", 4, "bad address 'host.example'", None),
        (HEAD + "-A INPUT -s ::1\nCOMMIT\n", 4, "'::1' is not an IPv4 address", None),
        (HEAD + "-A INPUT -s 1.2.3.4/x\nCOMMIT\n", 4, "bad netmask in '1.2.3.4/x'", None),
        (HEAD + "-A INPUT -i waytoolonginterface\nCOMMIT\n", 4, "bad interface name", None),
        (HEAD + "-A INPUT -p bogus\nCOMMIT\n", 4, "unknown protocol 'bogus'", None),
        (HEAD + "-A INPUT -p tcp -m tcp --dport 1 --dport 2\nCOMMIT\n", 4, "-m tcp: --dport given twice", None),
        (HEAD + "-A INPUT -p tcp -m tcp --dport 1 --destination-port 2\nCOMMIT\n", 4, "dst port given twice", None),
        (HEAD + "-A INPUT -p tcp --dport 9:1\nCOMMIT\n", 4, "first port above the last", None),
        (HEAD + "-A INPUT -p tcp --dport ssh\nCOMMIT\n", 4, "bad port 'ssh'", None),
        (HEAD + "-A INPUT -p tcp -m multiport\nCOMMIT\n", 4, "-m multiport takes exactly one of", None),
        (HEAD + "-A INPUT -p icmp --icmp-type 300\nCOMMIT\n", 4, "bad ICMP type '300'", None),
        (HEAD + "-A INPUT -m physdev\nCOMMIT\n", 4, "-m physdev without an option", None),
        (HEAD + "-A INPUT -m physdev --physdev-is-in x\nCOMMIT\n", 4, "--physdev-is-in takes no value", None),
        (HEAD + "-A INPUT -m mac\nCOMMIT\n", 4, "-m mac without --mac-source", None),
        (HEAD + "-A INPUT -m mac --mac-source fa:16\nCOMMIT\n", 4, "bad MAC address 'fa:16'", None),
        (HEAD + "-A INPUT -m set\nCOMMIT\n", 4, "-m set without --match-set", None),
        (HEAD + "-A INPUT -m set --match-set s\nCOMMIT\n", 4, "--match-set takes a set name and src/dst flags", None),
        (HEAD + "-A INPUT -m set --match-set s up\nCOMMIT\n", 4, "bad --match-set flags 'up'", None),
        (HEAD + "-A INPUT -m state --state SNAT\nCOMMIT\n", 4, "unknown conntrack state 'SNAT'", None),
        (HEAD + "-A INPUT -m state\nCOMMIT\n", 4, "-m state without --state", None),
        (HEAD + "-A INPUT -m mark\nCOMMIT\n", 4, "mark match without --mark", None),
        (HEAD + "-A INPUT -m mark --mark 0x1/big\nCOMMIT\n", 4, "bad mark mask 'big'", None),
        (HEAD + "-A INPUT -m connmark --mark 0x100000000\nCOMMIT\n", 4, "bad mark '0x100000000'", None),
        (HEAD + "-A INPUT -m comment\nCOMMIT\n", 4, "-m comment takes one --comment", None),
        (HEAD + "-A INPUT -j x --now\nCOMMIT\n", 4, "a jump to chain 'x' takes no options", None),
        (HEAD + "-A INPUT -g ACCEPT\nCOMMIT\n", 4, "-g ACCEPT: not a chain of this table", None),
        (HEAD + "-A INPUT -j nowhere\nCOMMIT\n", 4, "'nowhere' is neither a chain of this table nor a target", None),
        (HEAD + "-A INPUT -j MARK ! --set-mark 1\nCOMMIT\n", 4, "target options cannot be negated", None),
        (HEAD + "-A INPUT -j MARK --set-mark 1 --set-mark 2\nCOMMIT\n", 4, "MARK: --set-mark given twice", None),
        (HEAD + "-A INPUT -j REJECT --reject-with nicely\nCOMMIT\n", 4, "unknown --reject-with 'nicely'", None),
        (HEAD + "-A INPUT -j CT\nCOMMIT\n", 4, "CT without --zone or --notrack", None),
        (HEAD + "-A INPUT -j CT --zone x\nCOMMIT\n", 4, "bad CT zone 'x'", None),
        (HEAD + "-A INPUT -j CT --notrack x\nCOMMIT\n", 4, "--notrack takes no value", None),
        (HEAD + "-A INPUT -j MARK\nCOMMIT\n", 4, "MARK takes exactly one of", None),
        (HEAD + "-A INPUT -j CONNMARK --save-mark --restore-mark\nCOMMIT\n", 4, "CONNMARK takes one of", None),
        (HEAD + "-A INPUT -j CONNMARK --save-mark --mask 1 --nfmask 2\nCOMMIT\n", 4, "--mask cannot go with", None),
        (HEAD + "-A INPUT -j CONNMARK --save-mark --nfmask z\nCOMMIT\n", 4, "bad nfmask 'z'", None),
        (HEAD + "-A INPUT -j CONNMARK --restore-mark x\nCOMMIT\n", 4, "--restore-mark takes no value", None),
    ],
)
def test_errors_name_file_line_and_text(text: str, line: int, problem: str, bad: str | None) -> None:
    with pytest.raises(SnapshotError) as info:
        parse(text)
    assert info.value.where == f"{FILE}:{line}"
    assert problem in info.value.problem
    assert info.value.text == (bad if bad is not None else text.split("\n")[line - 1])


NAT = "*nat\n:PREROUTING ACCEPT [0:0]\n"


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("-j DNAT --to-destination 1.2.3.4 --to 1.2.3.5", "DNAT: --to-destination and --to both given"),
        ("-j DNAT", "DNAT without --to-destination"),
        ("-j DNAT --to-destination [::1", "bad NAT range '[::1'"),
        ("-j DNAT --to-destination 1.2.3", "bad NAT address '1.2.3'"),
        ("-j DNAT --to-destination [::1]:80", "NAT address '::1' is not IPv4"),
        ("-j DNAT --to-destination 1.2.3.4-1.2.3.5-1.2.3.6", "bad NAT address range"),
        ("-j DNAT --to-destination 1.2.3.4:0", "bad NAT port range '0'"),
        ("-j DNAT --to-destination 1.2.3.4:9-1", "first port above the last"),
        ("-j MASQUERADE --random x", "--random takes no value"),
    ],
)
def test_nat_errors(rule: str, problem: str) -> None:
    with pytest.raises(SnapshotError) as info:
        parse(f"{NAT}-A PREROUTING {rule}\nCOMMIT\n")
    assert info.value.where == f"{FILE}:3" and problem in info.value.problem


# ---------------------------------------------------------------- lenient mode


def test_lenient_skips_lines_and_keeps_the_rest() -> None:
    text = (
        "*filter\n"
        ":INPUT DROP [0:0]\n"
        ":bad\n"
        "-A INPUT -s 10.0.0.1 -j ACCEPT\n"
        "-A INPUT -j nowhere\n"
        "-A bad -j ACCEPT\n"
        "COMMIT\n"
        "*broute\n"
        ":BROUTING ACCEPT [0:0]\n"
        "COMMIT\n"
        "*nat\n"
        ":PREROUTING ACCEPT [0:0]\n"
        "-A PREROUTING -j DNAT --to-destination 10.0.0.5\n"
    )
    skipped: list[Skipped] = []
    nf = parse_iptables_save(text, FILE, lenient=True, skipped=skipped)
    assert [(s.line, s.reason) for s in skipped] == [
        (3, "expected a chain line like ':INPUT ACCEPT [0:0]'"),
        (5, "'nowhere' is neither a chain of this table nor a target"),
        (6, "chain 'bad' is not declared in this table"),
        (8, "unknown table 'broute' (expected one of filter, nat, mangle, raw, security)"),
        (9, "belongs to the table skipped at line 8"),
        (10, "belongs to the table skipped at line 8"),
        (11, "table 'nat' has no COMMIT line; its rules are kept as read"),
    ]
    assert [t.name for t in nf.tables] == ["filter", "nat"]
    assert rules_of(nf, "filter", "INPUT") == [((MatchAddress("src", "10.0.0.1/32"),), Verdict("ACCEPT"))]
    assert rules_of(nf, "nat", "PREROUTING") == [((), Nat("DNAT", "10.0.0.5"))]


def test_lenient_unknown_table_without_commit_ends_at_the_next_table() -> None:
    skipped: list[Skipped] = []
    nf = parse_iptables_save(
        "*broute\n:X ACCEPT\n*raw\n:OUTPUT DROP [0:0]\nCOMMIT\n", FILE, lenient=True, skipped=skipped
    )
    assert nf == Netfilter((Table("raw", (Chain("OUTPUT", "DROP"),)),))
    assert [s.line for s in skipped] == [1, 2]


def test_lenient_needs_a_list_and_family_is_4_or_6() -> None:
    with pytest.raises(ValueError, match="needs a list"):
        parse_iptables_save("", FILE, lenient=True)
    with pytest.raises(ValueError, match="family is 4 or 6"):
        parse_iptables_save("", FILE, family=5)
