"""The NORMAL action (OVS's built-in L2 switch) on symbolic packets.

MAC learning is over-approximated by flooding: a frame goes to every port that
carries its VLAN except its input port.  Whatever a MAC table holds, a real
frame reaches a subset of those ports (a learned entry never points outside the
VLAN, and a learned port equal to the input port drops the frame), so the flood
covers every learning state.  Reachability questions read the same result as
"the destination is among the copies", which holds when MAC tables are empty
or correct.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models.vlan import Reading, VlanPort, vlans_in_use
from verifier import symbolic as sy
from verifier.packet import Context, PacketState

# eth_addr_is_reserved() in lib/packets.c: frames to these are dropped by NORMAL
# unless other_config:forward-bpdu is set (not visible in a snapshot; assumed unset).
RESERVED_MACS: tuple[int, ...] = (
    *(0x0180C2000000 + i for i in range(16)),
    0x00E02B000000,
    0x00E02B000004,
    0x00E02B000006,
    0x01000C000000,
    0x01000CCCCCCC,
    0x01000CCCCCCD,
    0x01000CCDCDCD,
    *(0x01000CCCCCC0 + i for i in range(8)),
)


@dataclass(frozen=True)
class NormalResult:
    """One way NORMAL handles the packet: the copies it emits, or why it emits none."""

    pkt: PacketState
    outputs: tuple[tuple[int, PacketState], ...]
    note: str


def normal(ctx: Context, ports: dict[int, VlanPort], pkt: PacketState) -> list[NormalResult]:
    """Every way NORMAL may handle ``pkt`` (input port taken from the packet)."""
    in_port = pkt.fields["in_port"]
    if not isinstance(in_port, int):
        raise ValueError("NORMAL with a symbolic input port")
    inp = ports.get(in_port)
    if inp is None:
        return [NormalResult(pkt, (), f"NORMAL: input port {in_port} has no OVSDB port, dropping")]
    results: list[NormalResult] = []
    in_use = vlans_in_use(ports)
    for reading in inp.readings:
        for branch, vid in _vid_cases(ctx, pkt, _candidates(reading, in_use)):
            results.extend(_admit(ctx, ports, inp, reading, branch, vid))
    return results


def _candidates(reading: Reading, in_use: frozenset[int]) -> list[int]:
    """The VIDs worth telling apart for this input reading (all others behave alike)."""
    if reading.mode == "access":
        return [0]
    if reading.trunks is not None:
        return sorted(reading.trunks | {0})
    return sorted(in_use | {0})


def _vid_cases(ctx: Context, pkt: PacketState, candidates: list[int]) -> list[tuple[PacketState, int | None]]:
    """Split on the frame's VID: one branch per candidate value, and one for "any other" (None)."""
    tci = pkt.fields["vlan_tci"]
    vid = sy.extract(tci, 0, 12, 16)
    if isinstance(vid, int):
        return [(pkt, vid)]
    out: list[tuple[PacketState, int | None]] = []
    for c in candidates:
        branch = ctx.assume(pkt, sy.test(tci, c, 0x0FFF))
        if branch is not None:
            out.append((branch, c))
    other = ctx.assume(pkt, sy.and_(*(sy.not_(sy.test(tci, c, 0x0FFF)) for c in candidates)))
    if other is not None:
        out.append((other, None))
    return out


def _admit(
    ctx: Context,
    ports: dict[int, VlanPort],
    inp: VlanPort,
    reading: Reading,
    pkt: PacketState,
    vid: int | None,
) -> list[NormalResult]:
    if vid is None:
        # A VID no port names: only a trunk of every VLAN admits it, and only
        # such trunks carry it on.
        if reading.mode == "access" or reading.trunks is not None:
            return [NormalResult(pkt, (), f"NORMAL: VLAN-tagged frame refused by {inp.name} ({reading.mode})")]
        vlan: int | None = None
    else:
        if not reading.accepts_vid(vid):
            what = f"VLAN {vid} tagged frame" if vid else "untagged frame"
            return [NormalResult(pkt, (), f"NORMAL: {what} refused by {inp.name} ({_describe(reading)})")]
        vlan = reading.input_vlan(vid)
    results: list[NormalResult] = []
    reserved = sy.or_(*(sy.test(pkt.fields["eth_dst"], m, (1 << 48) - 1) for m in RESERVED_MACS))
    dropped = ctx.assume(pkt, reserved)
    if dropped is not None:
        results.append(NormalResult(dropped, (), "NORMAL: reserved destination MAC, dropping"))
    admitted = ctx.assume(pkt, sy.not_(reserved))
    if admitted is None:
        return results
    outputs = tuple(_flood(ports, inp, admitted, vlan))
    where = f"VLAN {vlan}" if vlan is not None else "an unconfigured VLAN"
    note = f"NORMAL: flood in {where} (MAC learning over-approximated)"
    if not outputs:
        note = f"NORMAL: no other port carries {where}"
    results.append(NormalResult(admitted, outputs, note))
    return results


def _flood(
    ports: dict[int, VlanPort], inp: VlanPort, pkt: PacketState, vlan: int | None
) -> Iterable[tuple[int, PacketState]]:
    tci = pkt.fields["vlan_tci"]
    for number in sorted(ports):
        port = ports[number]
        if port.bundle == inp.bundle or not port.floodable or not port.forwards:
            continue
        encodings: set[bool] = set()
        for r in port.readings:
            if vlan is None:
                if r.mode != "access" and r.trunks is None:
                    encodings.add(True)
            elif r.includes(vlan):
                encodings.add(r.tagged_on_output(vlan))
        for tagged in sorted(encodings):
            if vlan is None:
                out_tci: sy.Value = tci
            elif tagged:
                out_tci = _tagged_tci(tci, vlan)
            else:
                out_tci = 0
            yield number, pkt.with_fields({"vlan_tci": out_tci})


def _tagged_tci(tci: sy.Value, vlan: int) -> sy.Value:
    """The header NORMAL writes: the VLAN and the frame's PCP, CFI set unless both are 0 (xvlan_put)."""
    tagged = sy.set_bits(tci, 0x1000 | vlan, 0x1FFF, 16)
    if vlan:
        return tagged
    no_pcp = sy.test(tci, 0, 0xE000)
    return sy.ite(no_pcp, 0, tagged, 16)


def _describe(r: Reading) -> str:
    if r.mode == "access":
        return f"access port of VLAN {r.tag}"
    trunks = "all VLANs" if r.trunks is None else "VLANs " + ",".join(map(str, sorted(r.trunks)))
    return f"{r.mode} port of {trunks}"
