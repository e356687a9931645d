"""dump-flows text -> typed flows (through ovs.flow) and back, across OVS releases and spellings."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from support.strategies import flow_tables
from verifier import ir
from verifier.errors import SnapshotError
from verifier.snapshot.flow_writer import format_dump, format_flow
from verifier.snapshot.flows import DEFAULT_PRIORITY, parse_dump_flows, parse_flow

NAMES = {"patch-int": 1, "gre-0a000002": 2, "gre-0a000003": 3, "qvo1234abcd-ef": 5, "int-br-ex": 6}
P = ir.NO_PROVENANCE


def flow(text: str) -> ir.Flow:
    return parse_flow(text, NAMES.get, P)


# Havana-era Neutron on OVS 1.10/2.0 (classic br-tun tables 1/2/10/20/21).
OVS_1_10 = """NXST_FLOW reply (xid=0x4):
 cookie=0x0, duration=1234.567s, table=0, n_packets=42, n_bytes=3528, idle_age=5, hard_age=65534, priority=1,in_port=1 actions=resubmit(,1)
 cookie=0x0, duration=1234.561s, table=1, n_packets=0, n_bytes=0, idle_age=1234, priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,20)
 cookie=0x0, duration=1234.5s, table=2, n_packets=10, n_bytes=840, idle_age=5, priority=1,tun_id=0x1 actions=mod_vlan_vid:1,resubmit(,10)
 cookie=0x0, duration=1234.5s, table=10, n_packets=10, n_bytes=840, idle_age=5, priority=1 actions=learn(table=20,hard_timeout=300,priority=1,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:1
 cookie=0x0, duration=1234.5s, table=21, n_packets=3, n_bytes=252, idle_age=5, hard_age=1234, priority=1,dl_vlan=1 actions=strip_vlan,set_tunnel:0x1,output:2,output:3
 cookie=0x0, duration=1234.5s, table=0, n_packets=0, n_bytes=0, idle_age=1234, priority=0 actions=drop
 cookie=0x0, duration=5.5s, table=20, n_packets=2, n_bytes=168, hard_timeout=300, idle_age=1, hard_age=1, priority=1,vlan_tci=0x0001/0x0fff,dl_dst=fa:16:3e:c6:5c:2f actions=load:0->NXM_OF_VLAN_TCI[],load:0x1->NXM_NX_TUN_ID[],output:2
"""

# Mitaka-era br-int on OVS 2.5 (anti-spoofing tables).
OVS_2_5 = """NXST_FLOW reply (xid=0x4):
 cookie=0xb0e5e95c0e3c4d7d, duration=1000.1s, table=0, n_packets=0, n_bytes=0, idle_age=1000, priority=10,icmp6,in_port=5,icmp_type=136 actions=resubmit(,24)
 cookie=0xb0e5e95c0e3c4d7d, duration=1000.1s, table=24, n_packets=0, n_bytes=0, idle_age=1000, priority=2,icmp6,in_port=5,icmp_type=136,nd_target=fe80::f816:3eff:fe3a:9b59 actions=NORMAL
 cookie=0xb0e5e95c0e3c4d7d, duration=1000.1s, table=24, n_packets=0, n_bytes=0, idle_age=1000, priority=2,arp,in_port=5,arp_spa=10.0.0.5 actions=resubmit(,25)
 cookie=0xb0e5e95c0e3c4d7d, duration=1000.1s, table=0, n_packets=0, n_bytes=0, idle_age=1000, priority=3,in_port=6,vlan_tci=0x0000/0x1fff actions=mod_vlan_vid:2,NORMAL
"""

# OVS 3.x with --names and --no-stats, and an OpenFlow 1.3 dump.
OVS_3_NAMES = """ priority=1,in_port="patch-int" actions=resubmit(,2)
 table=22, priority=1,dl_vlan=1 actions=strip_vlan,load:0x1->NXM_NX_TUN_ID[],output:"gre-0a000002",output:"gre-0a000003"
"""
OF13 = """OFPST_FLOW reply (OF1.3) (xid=0x2):
 cookie=0x0, duration=5.937s, table=0, n_packets=0, n_bytes=0, reset_counts priority=1,in_port=1 actions=goto_table:2
 cookie=0x0, duration=5.937s, table=22, n_packets=0, n_bytes=0, reset_counts priority=1,dl_vlan=1 actions=pop_vlan,set_field:0x1->tun_id,output:2,output:3
"""


@pytest.mark.parametrize("text", [OVS_1_10, OVS_2_5, OVS_3_NAMES, OF13])
def test_real_dumps_of_every_era_parse_completely(text: str) -> None:
    flows, skipped = parse_dump_flows(text, "f.txt", NAMES.get)
    assert skipped == []
    assert len(flows) == len([line for line in text.splitlines() if "actions=" in line])
    assert all(not f.unsupported for f in flows)


def test_provenance_names_file_and_line() -> None:
    flows, _ = parse_dump_flows(OVS_1_10, "hosts/n/ovs-ofctl-dump-flows-br-tun.txt", NAMES.get)
    assert str(flows[0].provenance) == "hosts/n/ovs-ofctl-dump-flows-br-tun.txt:2"
    assert flows[0].provenance.text.startswith("cookie=0x0, duration=1234.567s")


@pytest.mark.parametrize(
    "spellings",
    [
        [
            "table=22,priority=1,dl_vlan=1 actions=strip_vlan,set_tunnel:0x1,output:2",
            "table=22,priority=1,dl_vlan=1 actions=pop_vlan,set_field:0x1->tun_id,output:2",
            "table=22,priority=1,dl_vlan=1 actions=strip_vlan,load:0x1->NXM_NX_TUN_ID[],output:2",
            ' cookie=0x0, duration=9.1s, table=22, n_packets=5, n_bytes=1, priority=1,dl_vlan=1 actions=strip_vlan,load:0x1->NXM_NX_TUN_ID[],output:"gre-0a000002"',
        ],
        [
            "table=3,priority=1,tun_id=0x1 actions=mod_vlan_vid:1,resubmit(,10)",
            "table=3,priority=1,tun_id=0x1 actions=push_vlan:0x8100,set_field:4097->vlan_vid,goto_table:10",
        ],
        [
            "table=10,priority=1 actions=learn(table=20,hard_timeout=300,priority=1,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:1",
            "table=10,priority=1 actions=learn(table=20,hard_timeout=300,priority=1,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:patch-int",
        ],
        [
            "table=0,priority=2,in_port=6 actions=drop",
            ' cookie=0x0, duration=1.0s, table=0, n_packets=0, n_bytes=0, idle_age=1, priority=2,in_port="int-br-ex" actions=drop',
        ],
        [
            "priority=1,ip,nw_src=10.0.0.0/24 actions=mod_dl_src:fa:16:3e:00:00:01,output:1",
            "priority=1,ip,nw_src=10.0.0.0/255.255.255.0 actions=set_field:fa:16:3e:00:00:01->eth_src,output:1",
        ],
    ],
)
def test_spellings_parse_to_the_same_flow(spellings: list[str]) -> None:
    first = flow(spellings[0])
    for text in spellings[1:]:
        assert flow(text) == first, text


def test_omitted_priority_is_the_openflow_default() -> None:
    assert flow(" cookie=0x0, duration=2.1s, table=0, n_packets=0, n_bytes=0, idle_age=2, actions=NORMAL").priority == (
        DEFAULT_PRIORITY
    )


def test_matches_become_field_masks() -> None:
    f = flow("table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,arp,arp_tpa=10.0.0.3 actions=drop")
    assert f.match_value("eth_dst") == ir.FieldMatch("eth_dst", 0x010000000000, 0x010000000000)
    assert f.match_value("eth_type") == ir.FieldMatch("eth_type", 0x0806, 0xFFFF)
    assert f.match_value("ip_dst") == ir.FieldMatch("ip_dst", 0x0A000003, 0xFFFFFFFF)
    g = flow("priority=1,dl_vlan=0xffff,ct_state=+trk-est,reg5=0x3 actions=drop")
    assert g.match_value("vlan_tci") == ir.FieldMatch("vlan_tci", 0, 0xFFFF)
    assert g.match_value("ct_state") == ir.FieldMatch("ct_state", 0x20, 0x22)
    assert g.match_value("reg5") == ir.FieldMatch("reg5", 3, 0xFFFFFFFF)


def test_unknown_constructs_are_kept_and_named() -> None:
    f = flow(
        "table=82,priority=70,conj_id=5,ip,reg5=0x5 actions=conjunction(4,1/2),bundle(eth_src,0,hrw,ofport,members:1,2)"
    )
    assert f.unsupported == (
        "match conj_id=5",
        "action conjunction(4,1/2)",
        "action bundle(eth_src,0,hrw,ofport,members:1,2)",
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("this is not a flow", "no 'actions='"),
        ('priority=1,in_port="nosuchport" actions=drop', "unknown port name 'nosuchport'"),
        ("priority=1,frobnicate=7 actions=drop", "cannot parse flow"),
        ("priority=1,ip,nw_src=10.0.0.1,nw_src=10.0.0.2 actions=drop", "contradictory matches on ip_src"),
    ],
)
def test_errors_name_file_line_and_text(line: str, problem: str) -> None:
    text = f"NXST_FLOW reply (xid=0x4):\n priority=0 actions=drop\n{line}\n"
    with pytest.raises(SnapshotError) as info:
        parse_dump_flows(text, "hosts/h/ovs-ofctl-dump-flows-br-int.txt", NAMES.get)
    message = str(info.value)
    assert message.startswith("hosts/h/ovs-ofctl-dump-flows-br-int.txt:3: error:")
    assert problem in message
    assert line in message


def test_lenient_skips_and_reports() -> None:
    text = " priority=0 actions=drop\nnot a flow at all\n priority=1 actions=NORMAL\n"
    flows, skipped = parse_dump_flows(text, "f.txt", NAMES.get, lenient=True)
    assert len(flows) == 2
    assert [(s.file, s.line, s.text) for s in skipped] == [("f.txt", 2, "not a flow at all")]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flows=flow_tables())
def test_writer_and_reader_round_trip(flows: tuple[ir.Flow, ...]) -> None:
    for f in flows:
        for style in ("dump", "add"):
            assert parse_flow(format_flow(f, style=style), NAMES.get, P) == f
    parsed, skipped = parse_dump_flows(format_dump(flows), "f.txt", NAMES.get)
    assert skipped == [] and sorted(parsed, key=repr) == sorted(flows, key=repr)
