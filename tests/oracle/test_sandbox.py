"""The real-OVS harness itself, and the OVS behaviours the models must match.

Every trace here runs through a private userspace Open vSwitch (dummy
datapath); nothing is sent anywhere.  Tests without the ``oracle`` marker
exercise the datapath-action interpreter alone.
"""

from __future__ import annotations

import ipaddress
import re
import time
from pathlib import Path

import pytest

from oracle import topology as topo
from oracle.conftest import require_ovs
from support.odp import (
    CONTROLLER_PORT,
    WIRE_FIELDS,
    OdpError,
    TracePass,
    initial_state,
    run_actions,
    run_passes,
)
from support.ovs_sandbox import (
    FlowLoadError,
    OvsSandbox,
    SandboxError,
    TraceError,
    daemon_running,
    split_trace,
)
from verifier import ir
from verifier.header import OFPP_LOCAL, parse_mac, zero_packet
from verifier.snapshot.flows import parse_dump_flows, port_resolver

oracle = pytest.mark.oracle

MAC_VM1 = parse_mac("fa:16:3e:00:00:01")
MAC_UNKNOWN = parse_mac("fa:16:3e:00:00:77")
MAC_LEARNED = parse_mac("fa:16:3e:00:00:99")  # has a table-20 entry in br-tun
MAC_MCAST = parse_mac("01:00:5e:00:00:01")
VLAN1_LOCAL = {"tap-vm2", "qr-r1", "tap-dhcp1"}


def ip(text: str) -> int:
    return int(ipaddress.ip_address(text))


def packet(**fields: int) -> dict[str, int]:
    """A complete TCP/IPv4 packet from fa:16:3e:00:00:01 (10.0.0.5) to 10.0.0.6:22, TTL 64."""
    pkt = zero_packet()
    pkt.update(
        eth_src=MAC_VM1,
        eth_dst=MAC_UNKNOWN,
        eth_type=0x0800,
        ip_src=ip("10.0.0.5"),
        ip_dst=ip("10.0.0.6"),
        ip_proto=6,
        ip_ttl=64,
        tp_src=40000,
        tp_dst=22,
    )
    pkt.update(fields)
    return pkt


def flows(text: str, ports: dict[str, int]) -> list[ir.Flow]:
    return list(topo.parse_flows(text, ports, "test.flows"))


def scratch_flows(ovs: OvsSandbox, bridge: str, text: str) -> None:
    ovs.load_flows(bridge, flows(text, topo.SCRATCH_PORTS))


# ---------------------------------------------------------------- lifecycle


@oracle
def test_start_stop_leaves_no_process_and_no_directory() -> None:
    require_ovs()
    sandbox = OvsSandbox()
    sandbox.start()
    directory = sandbox.dir
    pids = dict(sandbox.pids)
    try:
        assert directory is not None and directory.is_dir()
        assert len(str(directory / "ovs-vswitchd.99999999.ctl")) < 107  # AF_UNIX path limit
        assert set(pids) == {"ovsdb-server", "ovs-vswitchd"}
        assert all(daemon_running(pid, directory) for pid in pids.values())
        assert sandbox.running
        assert sandbox.ovs_version()[0].isdigit()
    finally:
        sandbox.stop()
    assert not directory.exists()
    assert not any(daemon_running(pid, directory) for pid in pids.values())
    sandbox.stop()  # idempotent


@oracle
def test_context_manager_cleans_up_on_error() -> None:
    require_ovs()
    seen: dict[str, object] = {}
    with pytest.raises(RuntimeError, match="boom"), OvsSandbox() as sandbox:
        seen.update(dir=sandbox.dir, pids=dict(sandbox.pids))
        raise RuntimeError("boom")
    directory = seen["dir"]
    pids = seen["pids"]
    assert isinstance(directory, Path) and isinstance(pids, dict)
    assert not directory.exists()
    assert not any(daemon_running(pid, directory) for pid in pids.values())


# ---------------------------------------------------------------- topology and flows


@oracle
def test_bridges_get_requested_ofports_and_local_no_flood(ovs: OvsSandbox) -> None:
    assert ovs.port_numbers("br-int") == {**topo.BR_INT_PORTS, "br-int": OFPP_LOCAL}
    assert ovs.port_numbers("br-tun") == {**topo.BR_TUN_PORTS, "br-tun": OFPP_LOCAL}
    assert ovs.unresolved_patches == []
    show = ovs.ofctl("show", "br-int")
    local = show[show.index("LOCAL(br-int)") :]
    assert "NO_FLOOD" in local.splitlines()[1]


@oracle
def test_conflicting_ofport_request_raises_with_vswitchd_error(ovs: OvsSandbox) -> None:
    bridge = ir.Bridge(
        "br-bad",
        ports=(ir.Port("q1", (ir.Interface("q1"),)), ir.Port("q2", (ir.Interface("q2"),))),
        of_ports=(ir.OFPort(7, "q1"), ir.OFPort(7, "q2")),
    )
    try:
        with pytest.raises(SandboxError, match="requested 7"):
            ovs.add_bridge(bridge)
    finally:
        ovs.delete_bridge("br-bad")


@oracle
def test_flows_round_trip_through_ovs(ovs: OvsSandbox) -> None:
    bridge = topo.br_tun()
    dumped, skipped = parse_dump_flows(ovs.dump_flows("br-tun"), "dump", port_resolver(topo.BR_TUN_PORTS))
    assert skipped == []
    assert set(dumped) == set(bridge.flows)


@oracle
def test_load_flows_reports_the_offending_flow(ovs: OvsSandbox, scratch: str) -> None:
    scratch_flows(ovs, scratch, "table=0,priority=1 actions=output:p2")
    bad_text = "table=3,priority=1 actions=set_field:10.0.0.9->nw_dst,output:p2"  # nw_dst needs an ip match
    bad = flows(f"table=0,priority=1 actions=output:p2\n{bad_text}", topo.SCRATCH_PORTS)
    with pytest.raises(FlowLoadError) as info:
        ovs.load_flows(scratch, bad)
    assert info.value.line is not None and "nw_dst" in info.value.line
    assert "output:2" in ovs.dump_flows(scratch)  # the bundle was atomic: old flows stay


@oracle
def test_flow_without_openflow13_prerequisite_loads_via_openflow10(ovs: OvsSandbox, scratch: str) -> None:
    scratch_flows(ovs, scratch, "table=0,priority=1,in_port=p1 actions=dec_ttl,output:p2")
    assert any("dec_ttl" in note for note in ovs.notes)
    arp = packet(eth_type=0x0806, ip_proto=1, ip_ttl=0)
    result = ovs.trace(scratch, arp, "p1")
    assert result.ports == ["p2"]  # dec_ttl is a no-op on a non-IP frame


# ---------------------------------------------------------------- NORMAL and VLANs


@oracle
def test_normal_floods_within_the_vlan_only(ovs: OvsSandbox) -> None:
    result = ovs.trace("br-int", packet(), "tap-vm1")
    assert result.bridges == ["br-int", "br-tun"]
    assert set(result.ports) == VLAN1_LOCAL | {topo.GRE_A, topo.GRE_B}
    assert "tap-vm3" not in result.ports and "br-int" not in result.ports
    assert result.ports == sorted(result.ports)
    for emission in result.outputs:
        assert emission.packet["vlan_tci"] == 0  # access ports and br-tun strip the tag
        assert set(emission.packet) == set(WIRE_FIELDS)
    vlan2 = ovs.trace("br-int", packet(), "tap-vm3")
    assert vlan2.ports == [topo.GRE_A]
    assert vlan2.outputs[0].tunnel is not None and vlan2.outputs[0].tunnel.tun_id == 2


@oracle
def test_tagged_frame_on_access_port_is_dropped(ovs: OvsSandbox) -> None:
    for vid in (7, 1):  # even the port's own VLAN
        result = ovs.trace("br-int", packet(vlan_tci=0x1000 | vid), "tap-vm1")
        assert result.dropped
        assert result.datapath_actions == ["drop"]
        assert result.has_note(f"dropping VLAN {vid} tagged packet received on port tap-vm1")


@oracle
def test_priority_tagged_frame_is_untagged_on_access_port(ovs: OvsSandbox) -> None:
    result = ovs.trace("br-int", packet(vlan_tci=0x1000), "tap-vm1")
    assert set(result.ports) == VLAN1_LOCAL | {topo.GRE_A, topo.GRE_B}
    assert "pop_vlan" in result.datapath_actions[0]  # where depends on the (random) flood order
    assert all(e.packet["vlan_tci"] == 0 for e in result.outputs)


@oracle
def test_local_port_and_no_flood_follow_the_ir(ovs: OvsSandbox) -> None:
    bridge = ir.Bridge(
        "br-l",
        ports=tuple(ir.Port(n, (ir.Interface(n),), tag=1) for n in ("l1", "l2", "l3")),
        of_ports=(
            ir.OFPort(1, "l1"),
            ir.OFPort(2, "l2"),
            ir.OFPort(3, "l3", config=("NO_FLOOD",)),
            ir.OFPort(OFPP_LOCAL, "br-l"),  # present without NO_FLOOD: LOCAL stays floodable
        ),
        fail_mode="standalone",
    )
    ovs.add_bridge(bridge)
    try:
        result = ovs.trace("br-l", packet(), "l1")
        assert result.ports == ["br-l", "l2"]
        local = result.outputs[0]
        assert local.packet["vlan_tci"] == 0x1001  # LOCAL is a trunk: the flood arrives tagged
    finally:
        ovs.delete_bridge("br-l")


# ---------------------------------------------------------------- br-tun


@oracle
def test_br_tun_unicast_and_multicast_tunnel_outputs(ovs: OvsSandbox) -> None:
    unicast = ovs.trace("br-int", packet(eth_dst=MAC_LEARNED), "tap-vm1")
    tunnels = [e for e in unicast.outputs if e.tunnel is not None]
    assert [e.port for e in tunnels] == [topo.GRE_B]
    (gre,) = tunnels
    assert gre.tunnel is not None
    assert (gre.tunnel.tun_id, gre.tunnel.src_ip, gre.tunnel.dst_ip) == (1, topo.LOCAL_IP, topo.REMOTE_B)
    assert gre.tunnel.flags == {"df", "key"} and gre.tunnel.ttl == 64
    assert gre.datapath_port == "gre_sys"
    assert gre.packet["vlan_tci"] == 0 and gre.packet["eth_dst"] == MAC_LEARNED

    multicast = ovs.trace("br-int", packet(eth_dst=MAC_MCAST), "tap-vm1")
    by_port = {e.port: e for e in multicast.outputs if e.tunnel is not None}
    assert set(by_port) == {topo.GRE_A, topo.GRE_B}
    assert {e.tunnel.dst_ip for e in by_port.values() if e.tunnel} == {topo.REMOTE_A, topo.REMOTE_B}
    assert "set(tunnel(tun_id=0x1,src=192.0.2.1,dst=192.0.2.2" in multicast.datapath_actions[0]


@oracle
def test_gre_ingress_to_br_int_normal_without_learning(ovs: OvsSandbox) -> None:
    table20 = ovs.dump_flows("br-tun", "table=20")
    ingress = packet(
        eth_src=MAC_LEARNED,
        eth_dst=MAC_VM1,
        tun_id=1,
        tun_src=ip(topo.REMOTE_A),
        tun_dst=ip(topo.LOCAL_IP),
    )
    result = ovs.trace("br-tun", ingress, topo.GRE_A)
    assert "tun_id=0x1,tun_src=192.0.2.2,tun_dst=192.0.2.1" in result.flow
    assert result.bridges == ["br-tun", "br-int"]
    assert result.has_note("suppressing side effects, so learn action ignored")
    assert set(result.ports) == {"tap-vm1"} | VLAN1_LOCAL  # flood: NORMAL learned nothing before
    assert all(e.packet["vlan_tci"] == 0 and e.tunnel is None for e in result.outputs)
    assert ovs.dump_flows("br-tun", "table=20").count("priority=") == table20.count("priority=")

    unknown_vni = ovs.trace("br-tun", {**ingress, "tun_id": 7}, topo.GRE_A)
    assert unknown_vni.dropped


GENEVE_OPTIONS = (("remote_ip", "198.51.100.3"), ("local_ip", "198.51.100.1"), ("key", "5"))


@oracle
def test_vxlan_geneve_and_flow_based_tunnels(ovs: OvsSandbox) -> None:
    bridge = ir.Bridge(
        "br-v",
        ports=(
            ir.Port("vx1", (ir.Interface("vx1", "vxlan", (("remote_ip", "198.51.100.2"), ("key", "flow"))),)),
            ir.Port("gnv", (ir.Interface("gnv", "geneve", GENEVE_OPTIONS),)),
            ir.Port(
                "vflow",
                (ir.Interface("vflow", "vxlan", (("remote_ip", "flow"), ("key", "flow"), ("dst_port", "4790"))),),
            ),
            ir.Port("v1", (ir.Interface("v1"),)),
        ),
        of_ports=(ir.OFPort(1, "vx1"), ir.OFPort(2, "gnv"), ir.OFPort(3, "vflow"), ir.OFPort(4, "v1")),
    )
    ovs.add_bridge(bridge)
    try:
        ports = {"vx1": 1, "gnv": 2, "vflow": 3, "v1": 4}
        text = (
            "priority=1,in_port=v1 actions=set_tunnel:0x10,output:vx1,output:gnv,"
            "set_field:203.0.113.9->tun_dst,output:vflow"
        )
        ovs.load_flows("br-v", flows(text, ports))
        out = {e.port: e.tunnel for e in ovs.trace("br-v", packet(), "v1").outputs}
        assert set(out) == {"vx1", "gnv", "vflow"}
        vx1, gnv, vflow = out["vx1"], out["gnv"], out["vflow"]
        assert vx1 is not None and (vx1.tun_id, vx1.src, vx1.tp_dst) == (0x10, 0, 4789)  # no local_ip: no src
        assert gnv is not None and (gnv.tun_id, gnv.tp_dst) == (5, 6081)  # fixed key beats set_tunnel
        assert vflow is not None and (vflow.dst_ip, vflow.tp_dst) == ("203.0.113.9", 4790)
    finally:
        ovs.delete_bridge("br-v")


# ---------------------------------------------------------------- rewrites and corner cases


@oracle
def test_vlan_and_header_rewrites_are_visible(ovs: OvsSandbox, scratch: str) -> None:
    scratch_flows(
        ovs,
        scratch,
        "table=0,priority=1,in_port=p3 actions=mod_vlan_vid:5,output:p1,mod_vlan_pcp:3,output:p2,"
        "strip_vlan,mod_dl_dst:aa:bb:cc:dd:ee:ff,mod_nw_dst:10.9.9.9,mod_tp_dst:99,output:p2",
    )
    result = ovs.trace(scratch, packet(ip_proto=17), "p3")
    assert [(e.port, e.packet["vlan_tci"]) for e in result.outputs] == [
        ("p1", 0x1005),
        ("p2", 0x0000),
        ("p2", 0x7005),
    ]
    rewritten = result.outputs[1].packet
    assert rewritten["eth_dst"] == parse_mac("aa:bb:cc:dd:ee:ff")
    assert (rewritten["ip_dst"], rewritten["tp_dst"]) == (ip("10.9.9.9"), 99)
    assert "udp_src=40000,udp_dst=22" in result.flow  # tp_src would be refused on UDP


@oracle
def test_output_to_nonexistent_port_and_to_in_port(ovs: OvsSandbox, scratch: str) -> None:
    scratch_flows(
        ovs,
        scratch,
        "table=0,priority=1,in_port=p2 actions=output:p3,output:99,output:p1\n"
        "table=0,priority=1,in_port=p1 actions=output:p1",
    )
    missing = ovs.trace(scratch, packet(), "p2")
    assert missing.has_note("Nonexistent output port")
    assert missing.ports == ["p1", "p3"]  # processing goes on after the bad output
    hairpin = ovs.trace(scratch, packet(), "p1")
    assert hairpin.has_note("skipping output to input port") and hairpin.dropped


@oracle
def test_resubmit_into_missing_table_continues(ovs: OvsSandbox, scratch: str) -> None:
    scratch_flows(ovs, scratch, "table=0,priority=1,in_port=p1 actions=resubmit(,5),output:p2")
    result = ovs.trace(scratch, packet(), "p1")
    assert " 5. No match." in result.text
    assert result.ports == ["p2"]


@oracle
def test_resubmit_loop_hits_max_depth_and_drops_everything(ovs: OvsSandbox, scratch: str) -> None:
    scratch_flows(
        ovs,
        scratch,
        "table=0,priority=1,in_port=p3 actions=output:p1,resubmit(,7)\n"
        "table=7,priority=0 actions=output:p2,resubmit(,7)",
    )
    result = ovs.trace(scratch, packet(), "p3")
    assert result.has_note("over max translation depth 64")
    assert "Translation failed (Recursion too deep), packet is dropped." in result.text
    assert result.dropped  # the output to p1 made before the loop is lost too


@oracle
def test_dec_ttl_and_invalid_ttl_packet_in(ovs: OvsSandbox, scratch: str) -> None:
    scratch_flows(ovs, scratch, "table=0,priority=1,ip,in_port=p1 actions=output:p3,dec_ttl,output:p2")
    ok = ovs.trace(scratch, packet(ip_ttl=64), "p1")
    assert [(e.port, e.packet["ip_ttl"]) for e in ok.outputs] == [("p2", 63), ("p3", 64)]
    for ttl in (1, 0):
        expired = ovs.trace(scratch, packet(ip_ttl=ttl), "p1")
        assert expired.has_note("IPv4 decrement TTL exception")
        assert expired.ports == [CONTROLLER_PORT, "p3"]  # p2 after dec_ttl never happens
        assert expired.outputs[0].controller_reason == 2
        assert expired.outputs[0].packet["ip_ttl"] == ttl


@oracle
def test_conntrack_recirculation_and_nat(ovs: OvsSandbox, scratch: str) -> None:
    scratch_flows(
        ovs,
        scratch,
        "table=0,priority=1,tcp,in_port=p1 actions=ct(commit,table=5,zone=6,nat(dst=10.0.0.7:2222))\n"
        "table=5,priority=1,ip,ct_state=+new+trk actions=mod_dl_dst:fa:16:3e:00:00:07,output:p2\n"
        "table=5,priority=1,ip,ct_state=+est+trk actions=output:p3\n"
        "table=0,priority=1,tcp,in_port=p3 actions=ct(commit,zone=5,nat(dst=10.0.0.8)),output:p1",
    )
    new = ovs.trace(scratch, packet(), "p1")
    assert len(new.datapath_actions) == 2  # one per pass; recirc ids differ from trace to trace
    first_pass = r"ct\(commit,zone=6,nat\(dst=10\.0\.0\.7:2222\)\),recirc\(0x[0-9a-f]+\)"
    assert re.fullmatch(first_pass, new.datapath_actions[0])
    (out,) = new.outputs
    assert out.port == "p2"
    assert (out.packet["ip_dst"], out.packet["tp_dst"]) == (ip("10.0.0.7"), 2222)
    assert out.packet["eth_dst"] == parse_mac("fa:16:3e:00:00:07")
    established = ovs.trace(scratch, packet(), "p1", ct_next=["trk,est"])
    assert established.ports == ["p3"]
    with pytest.raises(TraceError, match="after ct\\(nat\\)"):
        ovs.trace(scratch, packet(), "p3")  # the NATed headers depend on a real connection


@oracle
def test_trace_errors(ovs: OvsSandbox) -> None:
    with pytest.raises(TraceError, match="no port"):
        ovs.trace("br-int", packet(), "nosuch")
    with pytest.raises(TraceError, match="Bad openflow flow syntax"):
        ovs.trace_flow("br-int", "in_port=tap-vm1,ip,tcp")


@oracle
def test_trace_is_fast(ovs: OvsSandbox) -> None:
    start = time.perf_counter()
    for _ in range(100):
        ovs.trace("br-int", packet(), "tap-vm1")
    assert time.perf_counter() - start < 5.0  # measured about 0.5 ms per trace


# ---------------------------------------------------------------- interpreter alone


def test_datapath_actions_run_sequentially() -> None:
    state = initial_state(packet())
    text = (
        "p1,push_vlan(vid=5,pcp=3),set(eth(dst=aa:bb:cc:dd:ee:ff)),p2,"
        "pop_vlan,set(ipv4(ttl=9)),clone(set(tcp(dst=7)),p3),p4"
    )
    result = run_actions(text, state)
    got = [(e.port, e.packet["vlan_tci"], e.packet["ip_ttl"], e.packet["tp_dst"]) for e in result.emissions]
    assert got == [("p1", 0, 64, 22), ("p2", 0x7005, 64, 22), ("p3", 0, 9, 7), ("p4", 0, 9, 22)]
    assert result.emissions[1].packet["eth_dst"] == parse_mac("aa:bb:cc:dd:ee:ff")


def test_masked_set_changes_only_masked_bits() -> None:
    state = initial_state(packet())
    run_actions("set(ipv4(dst=10.1.0.0/255.255.0.0))", state)
    assert state.packet["ip_dst"] == ip("10.1.0.6")


@pytest.mark.parametrize(
    "actions",
    ["trunc(100),p1", "7", "userspace(pid=0,slow_path(match))", "set(skb_mark(0x1))", "pop_vlan", "gre_sys"],
)
def test_uninterpreted_actions_raise(actions: str) -> None:
    with pytest.raises(OdpError):
        run_actions(actions, initial_state(packet()))


def test_recirculation_passes_chain() -> None:
    passes = [
        TracePass(0, "ct(commit,zone=6,nat(dst=10.0.0.7)),recirc(0x1)"),
        TracePass(1, "p2,ct,recirc(0x2)", {"ip_dst": ip("10.0.0.7")}),
        TracePass(2, "p3"),
    ]
    emissions = run_passes(passes, packet())
    assert [(e.port, e.packet["ip_dst"]) for e in emissions] == [("p2", ip("10.0.0.7")), ("p3", ip("10.0.0.7"))]
    with pytest.raises(OdpError, match="recirc"):
        run_passes(passes[:2], packet())


def test_split_trace_reads_passes_notes_and_nat() -> None:
    text = (
        'bridge("br-ex")\n    >> Nonexistent output port\n'
        "Datapath actions: ct(commit,zone=6,nat(dst=10.0.0.7)),recirc(0x1)\n"
        "=====\nrecirc(0x1) - resume conntrack with default ct_state=trk|new\n"
        " Modified flow: nw_src=198.51.100.7,tp_src=40000,nw_dst=10.0.0.7,tp_dst=22\n"
        "Datapath actions: qg-r1\n"
    )
    passes, notes, bridges = split_trace(text)
    assert [(p.recirc_id, p.actions) for p in passes] == [
        (0, "ct(commit,zone=6,nat(dst=10.0.0.7)),recirc(0x1)"),
        (1, "qg-r1"),
    ]
    assert passes[1].nat == {"ip_src": ip("198.51.100.7"), "tp_src": 40000, "ip_dst": ip("10.0.0.7"), "tp_dst": 22}
    assert notes == [">> Nonexistent output port"] and bridges == ["br-ex"]
