"""Hypothesis strategies, generated from the header table: packets, flow tables, bridges.

Flow tables are generated so that OVS's behaviour is fully determined (no two
flows of one table share a priority, VLAN modes are explicit) and so that
every flow is one ``ovs-ofctl add-flow`` accepts (OpenFlow prerequisites
present), which lets the same tables go to the concrete twin, the symbolic
model and real Open vSwitch.
"""

from __future__ import annotations

from hypothesis import strategies as st

from verifier import ir
from verifier.header import (
    ETH_TYPE_ARP,
    ETH_TYPE_IP,
    FIELD_NAMES,
    FIELDS,
    IPPROTO_ICMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    normalize,
)

PORTS = (1, 2, 3, 4)
MACS = (0xFA163E000001, 0xFA163E000002, 0xFFFFFFFFFFFF, 0x01005E000001, 0x0180C2000000)
IPS = (0x0A000001, 0x0A000002, 0x0A000102, 0xC0A80001)
VLANS = (1, 2, 5)
TABLES = (0, 1, 2, 5)


def small_ints(name: str) -> st.SearchStrategy[int]:
    """Values of a field biased towards the few that flows in these tests match on."""
    f = FIELDS[name]
    if f.kind == "mac":
        return st.sampled_from(MACS)
    if name in ("ip_src", "ip_dst"):
        return st.sampled_from(IPS)
    if name == "vlan_tci":
        return st.one_of(st.just(0), st.sampled_from(VLANS).map(lambda v: 0x1000 | v), st.just(0x3002))
    if name == "eth_type":
        return st.sampled_from((ETH_TYPE_IP, ETH_TYPE_ARP, 0x86DD, 0x88CC))
    if name == "ip_proto":
        return st.sampled_from((IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, 1, 2))
    if name == "ip_ttl":
        return st.sampled_from((0, 1, 2, 64, 255))
    if name in ("tp_src", "tp_dst"):
        return st.sampled_from((22, 53, 67, 68, 80, 40000))
    if name == "tun_id":
        return st.sampled_from((0, 5, 0x1234))
    if name == "in_port":
        return st.sampled_from(PORTS)
    if name.startswith("reg"):
        return st.sampled_from((0, 1, 2, 3))
    return st.integers(min_value=0, max_value=f.max)


@st.composite
def packets(draw: st.DrawFn, *, in_ports: tuple[int, ...] = PORTS) -> dict[str, int]:
    """A concrete packet as OVS would extract it (fields the frame lacks are 0)."""
    pkt = {n: 0 for n in FIELD_NAMES}
    for name in FIELD_NAMES:
        f = FIELDS[name]
        if f.wire or name in ("tun_id",):
            pkt[name] = draw(small_ints(name))
    pkt["in_port"] = draw(st.sampled_from(in_ports))
    if pkt["eth_type"] == ETH_TYPE_IP:
        pkt["ip_ttl"] = draw(st.sampled_from((1, 2, 64)))
    return normalize(pkt)


@st.composite
def packets_for(draw: st.DrawFn, flows: tuple[ir.Flow, ...], *, in_ports: tuple[int, ...] = PORTS) -> dict[str, int]:
    """A packet as ``packets`` draws it, made, three times in four, to satisfy one of ``flows``' matches.

    Packets drawn independently of a flow table mostly miss it; this one
    takes the match's bits of a drawn flow (wire fields, ``in_port`` and
    ``tun_id``; registers stay 0 as on a real ingress), a flow of the first
    table two times in three.  Fields the match does not fix keep their
    drawn values, so neighbouring flows get hit too.
    """
    pkt = {n: 0 for n in FIELD_NAMES}
    for name in FIELD_NAMES:
        if FIELDS[name].wire or name == "tun_id":
            pkt[name] = draw(small_ints(name))
    pkt["in_port"] = draw(st.sampled_from(in_ports))
    aim = draw(st.integers(0, 3))
    first = [f for f in flows if f.table == min(g.table for g in flows)] if flows else []
    if aim:
        flow = draw(st.sampled_from(first if aim < 3 else flows))
        for m in flow.match:
            if FIELDS[m.field].wire or m.field in ("in_port", "tun_id"):
                pkt[m.field] = (pkt[m.field] & ~m.mask) | m.value
    if pkt["eth_type"] == ETH_TYPE_IP:
        pkt["ip_ttl"] = draw(st.sampled_from((1, 2, 64)))
    return normalize(pkt)


# ---------------------------------------------------------------- matches


@st.composite
def matches(draw: st.DrawFn, in_ports: tuple[int, ...]) -> tuple[ir.FieldMatch, ...]:
    """A match whose OpenFlow prerequisites are present (ovs-ofctl accepts it)."""
    acc: dict[str, tuple[int, int]] = {}
    if draw(st.booleans()):
        acc["in_port"] = (draw(st.sampled_from(in_ports)), 0xFFFF)
    if draw(st.booleans()):
        mac = draw(st.sampled_from(MACS))
        if draw(st.booleans()):
            acc["eth_dst"] = (mac, FIELDS["eth_dst"].max)
        else:
            acc["eth_dst"] = (mac & 0x010000000000, 0x010000000000)
    vlan = draw(st.sampled_from(("any", "none", "vid", "tagged")))
    if vlan == "none":
        acc["vlan_tci"] = (0, 0x1FFF)
    elif vlan == "vid":
        acc["vlan_tci"] = (0x1000 | draw(st.sampled_from(VLANS)), 0x1FFF)
    elif vlan == "tagged":
        acc["vlan_tci"] = (0x1000, 0x1000)
    l3 = draw(st.sampled_from(("any", "ip", "arp", "tcp", "udp")))
    if l3 != "any":
        acc["eth_type"] = (ETH_TYPE_ARP if l3 == "arp" else ETH_TYPE_IP, 0xFFFF)
    if l3 in ("tcp", "udp"):
        acc["ip_proto"] = (IPPROTO_TCP if l3 == "tcp" else IPPROTO_UDP, 0xFF)
        if draw(st.booleans()):
            acc["tp_dst"] = (draw(st.sampled_from((22, 53, 67, 80))), 0xFFFF)
    if l3 in ("ip", "arp", "tcp", "udp") and draw(st.booleans()):
        ip = draw(st.sampled_from(IPS))
        prefix = draw(st.sampled_from((32, 24, 8)))
        mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
        acc["ip_dst"] = (ip & mask, mask)
    if draw(st.integers(0, 3)) == 0:
        acc["reg0"] = (draw(st.sampled_from((0, 1, 2))), 0xFFFFFFFF)
    if draw(st.integers(0, 4)) == 0:
        acc["tun_id"] = (draw(st.sampled_from((0, 5))), FIELDS["tun_id"].max)
    return tuple(ir.FieldMatch(n, v & m, m) for n, (v, m) in sorted(acc.items()))


# ---------------------------------------------------------------- actions


def _eth_type(match: tuple[ir.FieldMatch, ...]) -> int | None:
    for m in match:
        if m.field == "eth_type" and m.exact:
            return m.value
    return None


@st.composite
def action_lists(
    draw: st.DrawFn, match: tuple[ir.FieldMatch, ...], table: int, in_ports: tuple[int, ...]
) -> tuple[ir.Action, ...]:
    """Actions valid for this match (set_field prerequisites, goto_table last, resubmits forward)."""
    eth = _eth_type(match)
    tagged = any(m.field == "vlan_tci" and m.mask & 0x1000 and m.value & 0x1000 for m in match)
    later = [t for t in TABLES if t > table]
    n = draw(st.integers(0, 4))
    out: list[ir.Action] = []
    # OVS refuses strip_vlan (OpenFlow 1.0) and push_vlan (1.1+) in one flow whose match has no VLAN.
    vlan_style: str | None = None
    for _ in range(n):
        choices = ["output", "normal", "set_reg", "mod_vlan", "mod_dl_dst", "in_port", "drop", "load_out"]
        if vlan_style != "push":
            choices.append("strip")
        if later:
            choices += ["resubmit", "resubmit"]
        if eth == ETH_TYPE_IP:
            choices += ["mod_nw_dst", "dec_ttl"]
        if not tagged and vlan_style != "strip":
            choices.append("push")
        kind = draw(st.sampled_from(choices))
        if kind in ("strip", "push"):
            vlan_style = kind
        if kind == "output":
            out.append(ir.Output(draw(st.sampled_from(in_ports))))
        elif kind == "normal":
            out.append(ir.Normal())
        elif kind == "set_reg":
            out.append(ir.SetField("reg0", draw(st.sampled_from((1, 2))), 0xFFFFFFFF))
        elif kind == "mod_vlan":
            out.append(ir.SetVlanVid(draw(st.sampled_from(VLANS))))
        elif kind == "strip":
            out.append(ir.PopVlan())
        elif kind == "mod_dl_dst":
            out.append(ir.SetField("eth_dst", draw(st.sampled_from(MACS)), FIELDS["eth_dst"].max))
        elif kind == "in_port":
            out.append(ir.OutputInPort())
        elif kind == "drop":
            out.append(ir.Controller() if draw(st.booleans()) else ir.SetField("reg1", 7, 0xFFFFFFFF))
        elif kind == "load_out":
            out.append(ir.SetField("reg2", draw(st.sampled_from(in_ports)), 0xFFFF))
            out.append(ir.OutputField(ir.FieldSlice("reg2", 0, 16)))
        elif kind == "resubmit":
            out.append(ir.Resubmit(None, draw(st.sampled_from(later))))
        elif kind == "mod_nw_dst":
            out.append(ir.SetField("ip_dst", draw(st.sampled_from(IPS)), 0xFFFFFFFF, frozenset({ETH_TYPE_IP})))
        elif kind == "dec_ttl":
            out.append(ir.DecTtl())
        elif kind == "push":
            # push_vlan followed by set_field:vlan_vid would read back as mod_vlan_vid (one IR for both).
            out.append(ir.PushVlan(0x8100))
            out.append(ir.SetVlanVid(draw(st.sampled_from(VLANS))))
            tagged = True
    if later and draw(st.integers(0, 3)) == 0:
        out.append(ir.Resubmit(None, draw(st.sampled_from(later))))
    return tuple(out)


@st.composite
def flow_tables(draw: st.DrawFn, in_ports: tuple[int, ...] = PORTS) -> tuple[ir.Flow, ...]:
    """Flows over a few tables; priorities distinct within a table, so OVS's choice is determined."""
    flows: list[ir.Flow] = []
    for table in TABLES:
        count = draw(st.integers(0 if table else 1, 4))
        priorities = draw(st.lists(st.integers(1, 200), min_size=count, max_size=count, unique=True))
        for prio in priorities:
            match = draw(matches(in_ports))
            actions = draw(action_lists(match, table, in_ports))
            flows.append(ir.Flow(table=table, priority=prio, match=match, actions=actions))
    return tuple(flows)


@st.composite
def vlan_configs(draw: st.DrawFn) -> tuple[int | None, tuple[int, ...], str | None]:
    """(tag, trunks, vlan_mode) with an explicit mode, so OVS's NORMAL is determined."""
    mode = draw(st.sampled_from(("access", "trunk", "trunk-some")))
    if mode == "access":
        return draw(st.sampled_from(VLANS)), (), "access"
    if mode == "trunk":
        return None, (), "trunk"
    return None, tuple(sorted(draw(st.sets(st.sampled_from((0, *VLANS)), min_size=1)))), "trunk"


@st.composite
def bridges(draw: st.DrawFn, name: str = "br-x") -> ir.Bridge:
    """A bridge with ports p1..p4 (numbers 1..4), random VLAN modes and a random flow table."""
    ports = []
    of_ports = []
    for n in PORTS:
        tag, trunks, mode = draw(vlan_configs())
        pname = f"p{n}"
        ports.append(ir.Port(pname, (ir.Interface(pname),), tag=tag, trunks=trunks, vlan_mode=mode))
        of_ports.append(ir.OFPort(n, pname))
    flows = draw(flow_tables())
    return ir.Bridge(name, ports=tuple(ports), of_ports=tuple(of_ports), flows=flows, fail_mode="secure")
