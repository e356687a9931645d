"""OVSDB VLAN configuration of bridge ports, as Open vSwitch's NORMAL action reads it.

Follows ``vswitchd/vswitch.xml`` and ``ofproto-dpif-xlate.c``
(``input_vid_is_valid``, ``xbundle_includes_vlan``, ``xvlan_output_translate``).
``ovs-vsctl show`` prints ``tag`` and ``trunks`` but never ``vlan_mode``, so a
port showing both is ambiguous: unset (access: trunks ignored) or ``trunk``
(Neutron's dead ports: tag 4095, trunks [4095]).  Both readings are kept and
the models take the union, which is sound for "may" questions.  The native and
dot1q-tunnel modes are used only when ``vlan_mode`` is known.
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier import ir


@dataclass(frozen=True)
class Reading:
    """One possible VLAN mode of a port: ``access``, ``trunk``, ``native-tagged`` or ``native-untagged``.

    ``trunks`` None means every VLAN.
    """

    mode: str
    tag: int | None
    trunks: frozenset[int] | None

    @property
    def native(self) -> bool:
        return self.mode in ("native-tagged", "native-untagged")

    def trunks_vlan(self, vlan: int) -> bool:
        """Whether the port carries ``vlan`` tagged.

        A native port always carries its native VLAN and never VLAN 0
        (ofproto-dpif.c bundle_set: "force trunking the native VLAN and
        prohibit trunking VLAN 0").
        """
        if self.mode == "access":
            return False
        if self.native:
            if vlan == 0:
                return False
            if vlan == self.tag:
                return True
        return self.trunks is None or vlan in self.trunks

    def accepts_vid(self, vid: int) -> bool:
        """Whether a frame with 802.1Q VID ``vid`` (0: untagged) may enter (input_vid_is_valid)."""
        if self.mode == "access":
            return vid == 0
        if self.native and vid == 0:
            return True
        return self.trunks_vlan(vid)

    def input_vlan(self, vid: int) -> int:
        """The VLAN a frame with VID ``vid`` belongs to once admitted (xvlan_input_translate)."""
        if self.mode == "access" or (self.native and vid == 0):
            assert self.tag is not None
            return self.tag
        return vid

    def includes(self, vlan: int) -> bool:
        """Whether NORMAL may output VLAN ``vlan`` here (xbundle_includes_vlan)."""
        if self.mode == "access":
            return vlan == self.tag
        return self.trunks_vlan(vlan)

    def tagged_on_output(self, vlan: int) -> bool:
        """Whether frames of ``vlan`` leave with an 802.1Q header (xvlan_output_translate).

        Access ports and a native-untagged port's native VLAN send untagged;
        otherwise the header is VID plus the frame's PCP, and is left out only
        when both are 0 (a priority-tagged VLAN-0 frame stays priority-tagged).
        """
        if self.mode == "access":
            return False
        return not (self.mode == "native-untagged" and vlan == self.tag)


@dataclass(frozen=True)
class VlanPort:
    """An OpenFlow port with the VLAN readings of its OVSDB port (its "bundle")."""

    number: int
    name: str
    bundle: str
    readings: tuple[Reading, ...]
    floodable: bool
    forwards: bool


def readings_of(port: ir.Port) -> tuple[Reading, ...]:
    """Every VLAN mode the OVSDB port may be in, given what ``ovs-vsctl show`` reveals."""
    trunks = frozenset(port.trunks) if port.trunks else None
    if port.vlan_mode is not None:
        mode = port.vlan_mode
        if mode == "access" and port.tag is None:
            return (Reading("trunk", None, trunks),)
        return (Reading(mode, port.tag, trunks if mode != "access" else None),)
    if port.tag is not None and port.trunks:
        return (Reading("access", port.tag, None), Reading("trunk", port.tag, trunks))
    if port.tag is not None:
        return (Reading("access", port.tag, None),)
    return (Reading("trunk", None, trunks),)


def vlan_ports(bridge: ir.Bridge) -> dict[int, VlanPort]:
    """The NORMAL view of every OpenFlow port of the bridge that has an OVSDB port."""
    out: dict[int, VlanPort] = {}
    for of_port in bridge.of_ports:
        name = bridge.name if of_port.number == ir.LOCAL_PORT else of_port.name
        port = bridge.ovsdb_port(name) or bridge.ovsdb_port(of_port.name)
        if port is None:
            continue
        out[of_port.number] = VlanPort(
            number=of_port.number,
            name=of_port.name,
            bundle=port.name,
            readings=readings_of(port),
            floodable=not of_port.no_flood,
            forwards="NO_FWD" not in of_port.config,
        )
    return out


def vlans_in_use(ports: dict[int, VlanPort]) -> frozenset[int]:
    """Every VLAN some port names (access tags and trunk lists)."""
    used: set[int] = set()
    for p in ports.values():
        for r in p.readings:
            if r.tag is not None:
                used.add(r.tag)
            if r.trunks is not None:
                used |= r.trunks
    return frozenset(used)
