"""How devices are wired: locations, endpoints, outcomes and the Network interface.

The engine walks a ``Network``: it asks a device what it does with a packet,
then asks the network where each emitted copy goes (``follow``): into another
device (``Enter``) or to an end (``Terminal``: delivered to an endpoint, left
the cloud, or undecidable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from verifier.device import Device, Step
from verifier.packet import Context, PacketState


@dataclass(frozen=True, order=True)
class Location:
    """A device on a host (an OVS bridge: ``device`` is its name)."""

    host: str
    device: str

    def __str__(self) -> str:
        return f"{self.host}/{self.device}"


@dataclass(frozen=True)
class Endpoint:
    """A port where packets leave (or enter) the modelled dataplane.

    ``kind``: ``vm``, ``dhcp``, ``router-interface``, ``router-gateway``,
    ``uplink`` (a physical NIC of a provider bridge), ``host`` (a bridge's own
    internal port), or ``other``.  ``network`` is the Neutron network id (or,
    without neutron.json, a segment name such as ``tunnel key 0x5``);
    ``project`` the project owning that network; ``carries`` every network
    whose frames the port legitimately carries (several for an uplink).
    """

    id: str
    host: str
    bridge: str
    port: int
    device: str
    kind: str
    neutron_port: str | None = None
    network: str | None = None
    project: str | None = None
    label: str = ""
    carries: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.label or f"{self.device} on {self.host}"


@dataclass(frozen=True)
class Delivered:
    endpoint: Endpoint

    def describe(self) -> str:
        return f"delivered to {self.endpoint}"


@dataclass(frozen=True)
class Dropped:
    reason: str
    step: Step | None = None

    def describe(self) -> str:
        return f"dropped: {self.reason}"


@dataclass(frozen=True)
class Looped:
    where: str

    def describe(self) -> str:
        return f"looped: {self.where}"


@dataclass(frozen=True)
class LeftCloud:
    where: str

    def describe(self) -> str:
        return f"left the snapshot: {self.where}"


@dataclass(frozen=True)
class Undecided:
    """The models cannot tell what happens (an unknown construct, a missing file)."""

    reason: str

    def describe(self) -> str:
        return f"undecided: {self.reason}"


Outcome = Delivered | Dropped | Looped | LeftCloud | Undecided


@dataclass(frozen=True)
class Enter:
    """The copy enters device ``location`` on port ``port`` as ``pkt``."""

    location: Location
    port: int
    pkt: PacketState
    via: str = ""


@dataclass(frozen=True)
class Terminal:
    outcome: Outcome
    pkt: PacketState
    via: str = ""


Arrival = Enter | Terminal


class Network(Protocol):
    """Devices plus the links between their ports."""

    def device(self, location: Location) -> Device | None: ...

    def follow(self, ctx: Context, location: Location, port: int, pkt: PacketState) -> list[Arrival]: ...

    def symmetric_ports(self, location: Location, port: int) -> frozenset[int]:
        """Ports of the device interchangeable with ``port`` (empty: none).

        Any permutation of such a class maps the device's behaviour onto
        itself, so a packet arriving on one member behaves as on another, up
        to renaming members in what it emits.
        """
        ...

    def canonical(self, location: Location, pkt: PacketState) -> PacketState:
        """The packet renamed onto its symmetry class's representative (itself if none)."""
        ...
