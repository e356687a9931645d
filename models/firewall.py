"""The hybrid iptables firewall: one ``qbr`` Linux bridge between a VM's tap and its qvb/qvo veth.

The bridge has two ports, so it forwards every frame from one to the other.
With br_netfilter, bridged IPv4 frames go through the host's iptables
(``-m physdev`` sees the bridge ports): raw PREROUTING (the per-port conntrack
zone, or NOTRACK for stateless groups), conntrack, mangle and nat PREROUTING,
filter FORWARD (Neutron's per-port chains: anti-spoofing, DHCP rules, security
groups, the fallback drop), mangle and nat POSTROUTING.  Frames that are not
IPv4 (ARP, IPv6: ip6tables-save is not in a snapshot) and VLAN-tagged frames
(bridge-nf-filter-vlan-tagged is off by default) cross unfiltered.

Port 1 is the VM's tap, port 2 the qvb end of the veth to OVS.
"""

from __future__ import annotations

from models.netfilter import Hook, Netfilter
from verifier import symbolic as sy
from verifier.device import Branch, Emission, Step
from verifier.header import CT_STATE_BITS, ETH_TYPE_IP
from verifier.packet import Context, PacketState

TAP = 1
QVB = 2
NEW = CT_STATE_BITS["trk"] | CT_STATE_BITS["new"]


class HybridFirewall:
    """The ``qbr<id>`` bridge of one VM port and the host's iptables that filter it."""

    def __init__(
        self, host: str, bridge: str, tap: str, qvb: str, netfilter: Netfilter | None, *, enforce: bool = True
    ) -> None:
        self.host = host
        self.name = bridge
        self.tap = tap
        self.qvb = qvb
        self.nf = netfilter
        self.enforce = enforce

    def port_name(self, number: int) -> str:
        return {TAP: self.tap, QVB: self.qvb}.get(number, str(number))

    def _step(self, note: str) -> Step:
        return Step(self.host, self.name, None, "note", note=note)

    def transfer(self, ctx: Context, pkt: PacketState) -> list[Branch]:
        in_port = pkt.fields["in_port"]
        if in_port not in (TAP, QVB):
            step = self._step(f"no port {in_port}")
            return [Branch(pkt, (), (step,), (step,), ())]
        out_port = QVB if in_port == TAP else TAP
        hook = Hook(
            in_iface=self.name,
            out_iface=self.name,
            physdev_in=self.port_name(in_port),
            physdev_out=self.port_name(out_port),
            bridged=True,
        )
        branches: list[Branch] = []
        if not self.enforce:
            steps = (self._step("security groups not applied (the dataplane alone)"),)
            return [Branch(pkt, (Emission(out_port, pkt, steps),), steps, (), ())]
        unfiltered = sy.or_(
            sy.not_(sy.test(pkt.fields["vlan_tci"], 0, 0xFFFF)),
            sy.not_(sy.test(pkt.fields["eth_type"], ETH_TYPE_IP, 0xFFFF)),
        )
        bypass = ctx.assume(pkt, unfiltered)
        if bypass is not None:
            steps = (self._step("not an untagged IPv4 frame: bridged without iptables"),)
            branches.append(Branch(bypass, (Emission(out_port, bypass, steps),), steps, (), ()))
        ip = ctx.assume(pkt, sy.not_(unfiltered))
        if ip is None:
            return branches
        if self.nf is None:
            why = f"{self.host}: no iptables-save.txt for the root namespace, so the firewall of {self.name} is unknown"
            branches.append(Branch(ip, (), (), (), (why,)))
            return branches
        branches.extend(self._filter(ctx, ip, hook, out_port))
        return branches

    def _filter(self, ctx: Context, pkt: PacketState, hook: Hook, out_port: int) -> list[Branch]:
        assert self.nf is not None
        out: list[Branch] = []
        stages = [("raw", "PREROUTING"), ("mangle", "PREROUTING"), ("nat", "PREROUTING"), ("mangle", "FORWARD")]
        stages += [("filter", "FORWARD"), ("mangle", "POSTROUTING"), ("nat", "POSTROUTING")]
        flows: list[tuple[PacketState, tuple[Step, ...], bool]] = [(pkt, (), True)]
        for table, chain in stages:
            nxt: list[tuple[PacketState, tuple[Step, ...], bool]] = []
            for cur, steps, tracked in flows:
                if table == "nat" and not tracked:
                    nxt.append((cur, steps, tracked))
                    continue
                for o in self.nf.run(ctx, cur, table, chain, hook):
                    here = (*steps, *o.steps)
                    if o.unknown:
                        out.append(Branch(o.pkt, (), here, (), o.unknown))
                    elif o.verdict != "ACCEPT":
                        step = self._step(f"{table} {chain}: {o.verdict}")
                        out.append(Branch(o.pkt, (), (*here, step), (step,), ()))
                    elif o.nat is not None:
                        why = f"{o.nat_rule.provenance if o.nat_rule else self.name}: NAT on a bridged frame is not modelled"
                        out.append(Branch(o.pkt, (), here, (), (why,)))
                    elif table == "raw":
                        state = 0 if o.notrack else NEW
                        nxt.append(
                            (o.pkt.with_fields({"ct_state": state, "ct_zone": o.zone or 0}), here, not o.notrack)
                        )
                    else:
                        nxt.append((o.pkt, here, tracked))
            flows = nxt
        for cur, steps, _ in flows:
            done = cur.with_fields({"ct_state": 0, "ct_zone": 0, "ct_mark": 0, "pkt_mark": 0})
            final = (*steps, self._step(f"out of {self.port_name(out_port)}"))
            out.append(Branch(done, (Emission(out_port, done, final),), final, (), ()))
        return out
