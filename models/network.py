"""The composed network: every bridge of every host, and the links between them.

Links are patch pairs (a wire between two bridges of one host: crossing one
clears registers, metadata, tunnel and conntrack fields, as
``patch_port_output`` does), tunnels between hosts (models.tunnel), and
endpoints (VM NICs, DHCP and router ports, physical uplinks, bridge-internal
ports) where packets leave the modelled dataplane.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from models.learning import LearnedTemplate
from models.linux_wiring import wire_linux
from models.openflow import OpenFlowBridge
from models.symmetry import port_classes, reads_tunnel_addresses
from models.templates import discover_templates
from models.tunnel import TunnelPort, specificity, tunnel_port
from verifier import ir
from verifier import symbolic as sy
from verifier.device import Branch, Device
from verifier.header import FIELD_NAMES, FIELDS, PATH_EXTERNAL
from verifier.neutron.model import Neutron
from verifier.packet import Context, PacketState
from verifier.topology import (
    Arrival,
    Delivered,
    Dropped,
    Endpoint,
    Enter,
    LeftCloud,
    Location,
    Terminal,
)


@functools.cache
def _ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


# Fields a patch port or a tunnel clears (patch_port_output, tunnel receive).
_METADATA = tuple(n for n in FIELD_NAMES if not FIELDS[n].wire and not FIELDS[n].bookkeeping and n != "in_port")


class UnmodelledBridge:
    """A bridge whose flows are unknown (no dump-flows file): every packet is undecided."""

    def __init__(self, host: str, name: str, reason: str) -> None:
        self.host = host
        self.name = name
        self.reason = reason

    def transfer(self, ctx: Context, pkt: PacketState) -> list[Branch]:
        return [Branch(pkt, (), (), (), (self.reason,))]

    def port_name(self, number: int) -> str:
        return str(number)


class TaintedBridge:
    """A bridge whose dump had lines skipped under --lenient: results hold, plus an Unknown."""

    def __init__(self, inner: OpenFlowBridge, reason: str) -> None:
        self.inner = inner
        self.host = inner.host
        self.name = inner.name
        self.reason = reason

    def transfer(self, ctx: Context, pkt: PacketState) -> list[Branch]:
        return [
            Branch(b.pkt, b.emissions, b.steps, b.ends, (*b.unknown, self.reason))
            for b in self.inner.transfer(ctx, pkt)
        ]

    def port_name(self, number: int) -> str:
        return self.inner.port_name(number)


@dataclass(frozen=True)
class Wire:
    """A point-to-point link into another device (a patch pair, a veth, an OVS internal port in a namespace).

    Crossing it clears OVS pipeline metadata; ``external`` marks the packet as
    having been on an external network (models.linux_wiring sets it on links
    out of a router's gateway interface, the way a packet leaves a router for
    the outside).  With the network option ``external_sink`` the packet stops
    there instead, delivered to "the external network" (public).
    """

    location: Location
    port: int
    name: str
    external: bool = False


def external_endpoint(location: Location, port: int, via: str) -> Endpoint:
    """Where a packet ends when it leaves a router for the outside and the network stops it there."""
    return Endpoint(
        id=f"external:{location.host}:{location.device}:{port}",
        host=location.host,
        bridge=location.device,
        port=port,
        device=via,
        kind="external",
        label=f"the external network (public), through {via} on {location.host}",
    )


@dataclass(frozen=True)
class _Dead:
    reason: str


Classifier = Callable[[str, str, ir.OFPort, ir.Interface | None], Endpoint]


def generic_endpoint(host: str, bridge: str, of_port: ir.OFPort, iface: ir.Interface | None) -> Endpoint:
    """An endpoint known only by its device name (no Neutron data)."""
    kind = "host" if of_port.number == ir.LOCAL_PORT or of_port.name == bridge else "other"
    return Endpoint(
        id=f"{host}:{of_port.name}",
        host=host,
        bridge=bridge,
        port=of_port.number,
        device=of_port.name,
        kind=kind,
        label=f"{of_port.name} on {host} ({bridge})",
    )


class OvsNetwork:
    """Hosts' bridges as devices, joined by patch ports and tunnels."""

    def __init__(
        self,
        dataplane: ir.Dataplane,
        *,
        classify: Classifier = generic_endpoint,
        missing_flows: Mapping[tuple[str, str], str] | None = None,
        extra_addresses: Mapping[str, set[str]] | None = None,
        symmetry: bool = True,
        learning: bool = True,
        neutron: Neutron | None = None,
        linux: bool = True,
        enforce_firewall: bool = True,
        ipsets: Mapping[str, tuple[str, ...]] | None = None,
        external_sink: bool = False,
    ) -> None:
        self.dataplane = dataplane
        self.options = {
            "classify": classify,
            "missing_flows": missing_flows,
            "extra_addresses": extra_addresses,
            "neutron": neutron,
            "linux": linux,
            "enforce_firewall": enforce_firewall,
            "ipsets": ipsets,
            "external_sink": external_sink,
        }
        self.external_sink = external_sink
        self.devices: dict[Location, Device] = {}
        self.links: dict[tuple[Location, int], Wire | TunnelPort | Endpoint | _Dead] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.tunnels: list[TunnelPort] = []
        self.templates: dict[Location, tuple[LearnedTemplate, ...]] = {}
        self.notes: list[str] = []
        self.owners: dict[str, str] = {}
        self.classes: dict[Location, dict[int, frozenset[int]]] = {}
        self.tunnel_blind: set[Location] = set()
        self._receiver_cache: dict[tuple[str, str, str | None, str], tuple[TunnelPort, ...]] = {}
        missing = dict(missing_flows or {})
        for host in dataplane.hosts:
            for addr in host.addresses:
                self.owners.setdefault(addr.address, host.name)
            for ip in sorted((extra_addresses or {}).get(host.name, set())):
                self.owners.setdefault(ip, host.name)
            for bridge in host.bridges:
                loc = Location(host.name, bridge.name)
                reason = missing.get((host.name, bridge.name))
                if reason is not None:
                    self.devices[loc] = UnmodelledBridge(host.name, bridge.name, reason)
                else:
                    classes = port_classes(bridge) if symmetry else {}
                    self.classes[loc] = classes
                    if not reads_tunnel_addresses(bridge):
                        self.tunnel_blind.add(loc)
                    templates = discover_templates(host.name, bridge, classes) if learning else ()
                    self.templates[loc] = templates
                    model = OpenFlowBridge(host.name, bridge, templates)
                    if bridge.skipped:
                        why = (
                            f"{len(bridge.skipped)} line(s) of the flow dump of {bridge.name} on {host.name} "
                            f"were skipped (--lenient), first {bridge.skipped[0]}"
                        )
                        self.devices[loc] = TaintedBridge(model, why)
                    else:
                        self.devices[loc] = model
                self._wire(host, bridge, classify)
            if linux and (host.namespaces or host.linux_bridges or host.links):
                wire_linux(
                    self,
                    host,
                    neutron=neutron,
                    classify=classify,
                    ipsets=dict(ipsets or {}),
                    enforce_firewall=enforce_firewall,
                )
        self.receivers: dict[tuple[str, str], list[TunnelPort]] = {}
        for t in self.tunnels:
            if t.local_ip and t.local_ip != "flow":
                self.owners.setdefault(t.local_ip, t.host)
            self.receivers.setdefault((t.host, t.family), []).append(t)

    def _wire(self, host: ir.Host, bridge: ir.Bridge, classify: Classifier) -> None:
        loc = Location(host.name, bridge.name)
        for of_port in bridge.of_ports:
            iface = bridge.interface(of_port.name)
            if of_port.number == ir.LOCAL_PORT and iface is None:
                iface = bridge.interface(bridge.name)
            key = (loc, of_port.number)
            if iface is not None and iface.type == "patch":
                peer = iface.option("peer")
                target = self._find_interface(host, peer) if peer else None
                if target is None:
                    self.links[key] = _Dead(f"patch port {of_port.name} on {host.name} has no peer {peer!r}")
                else:
                    target_loc, target_port, target_name = target
                    self.links[key] = Wire(target_loc, target_port, f"patch {target_name}")
                continue
            tunnel = tunnel_port(host.name, bridge.name, of_port.number, iface) if iface is not None else None
            if tunnel is not None:
                self.links[key] = tunnel
                self.tunnels.append(tunnel)
                continue
            endpoint = classify(host.name, bridge.name, of_port, iface)
            self.links[key] = endpoint
            self.endpoints[endpoint.id] = endpoint

    @staticmethod
    def _find_interface(host: ir.Host, name: str) -> tuple[Location, int, str] | None:
        for bridge in host.bridges:
            number = bridge.port_number(name)
            if number is not None and bridge.interface(name) is not None:
                return Location(host.name, bridge.name), number, name
        return None

    # ------------------------------------------------------------ Network

    def device(self, location: Location) -> Device | None:
        return self.devices.get(location)

    def symmetric_ports(self, location: Location, port: int) -> frozenset[int]:
        """The ports of the bridge interchangeable with ``port`` (models.symmetry); empty if none."""
        return self.classes.get(location, {}).get(port, frozenset())

    def canonical(self, location: Location, pkt: PacketState) -> PacketState:
        """The packet as if it had arrived on the first port of its symmetry class.

        The tunnel source address, which tells the members of a class of
        tunnel ports apart, is cleared too when no flow of the bridge reads it.
        """
        in_port = pkt.fields["in_port"]
        members = self.symmetric_ports(location, in_port) if isinstance(in_port, int) else frozenset()
        if not members:
            return pkt
        updates: dict[str, sy.Value] = {"in_port": min(members)}
        if location in self.tunnel_blind and isinstance(self.links.get((location, min(members))), TunnelPort):
            updates["tun_src"] = 0
        return pkt.with_fields(updates)

    def follow(self, ctx: Context, location: Location, port: int, pkt: PacketState) -> list[Arrival]:
        link = self.links.get((location, port))
        if link is None:
            return [Terminal(Dropped(f"{location} port {port} is not connected to anything"), pkt)]
        if isinstance(link, Endpoint):
            return [Terminal(Delivered(link), pkt)]
        if isinstance(link, _Dead):
            return [Terminal(Dropped(link.reason), pkt)]
        if isinstance(link, Wire):
            cleared: dict[str, sy.Value] = {name: 0 for name in _METADATA}
            cleared["in_port"] = link.port
            if link.external and self.external_sink:
                return [Terminal(Delivered(external_endpoint(location, port, link.name)), pkt)]
            if link.external:
                cleared["path_flags"] = sy.set_bits(pkt.fields["path_flags"], PATH_EXTERNAL, PATH_EXTERNAL, 8)
            return [Enter(link.location, link.port, pkt.with_fields(cleared), via=link.name)]
        return self._tunnel(ctx, link, pkt)

    def _tunnel(self, ctx: Context, t: TunnelPort, pkt: PacketState) -> list[Arrival]:
        src = t.local_ip if t.local_ip not in (None, "flow") else None
        if t.remote_ip is None:
            return [Terminal(Dropped(f"tunnel {t.name} on {t.host} has no remote_ip"), pkt)]
        fixed = t.fixed_out_key()
        key: sy.Value = fixed if fixed is not None else sy.extract(pkt.fields["tun_id"], 0, t.key_bits, 64)
        out: list[Arrival] = []
        for dst, branch in self._destinations(ctx, t, pkt):
            out.extend(self._receive(ctx, t, src, dst, key, branch))
        return out

    def _destinations(self, ctx: Context, t: TunnelPort, pkt: PacketState) -> list[tuple[str | None, PacketState]]:
        if t.remote_ip != "flow":
            return [(t.remote_ip, pkt)]
        value = pkt.fields["tun_dst"]
        if isinstance(value, int):
            return [(str(ipaddress.IPv4Address(value)), pkt)]
        out: list[tuple[str | None, PacketState]] = []
        known = sorted(self.owners)
        for ip in known:
            hit = ctx.assume(pkt, sy.test(value, int(ipaddress.IPv4Address(ip)), 0xFFFFFFFF))
            if hit is not None:
                out.append((ip, hit))
        other = ctx.assume(
            pkt, sy.and_(*(sy.not_(sy.test(value, int(ipaddress.IPv4Address(ip)), 0xFFFFFFFF)) for ip in known))
        )
        if other is not None:
            out.append((None, other))
        return out

    def _receive(
        self, ctx: Context, t: TunnelPort, src: str | None, dst: str | None, key: sy.Value, pkt: PacketState
    ) -> list[Arrival]:
        via = f"{t.type} tunnel {t.name} from {t.host} to {dst or 'an address outside the snapshot'}"
        host = self.owners.get(dst) if dst is not None else None
        if host is None or dst is None:
            where = f"{via}: no host of the snapshot has address {dst}" if dst else via
            return [Terminal(LeftCloud(where), pkt, via=via)]
        chosen = self._receivers(host, t.family, src, dst)
        if not chosen:
            return [Terminal(Dropped(f"{via}: {host} has no {t.type} port for packets from {src}"), pkt, via=via)]
        out: list[Arrival] = []
        for r in chosen:
            accepted = pkt
            if r.in_key != "flow":
                want = int(r.in_key, 0) if r.in_key else 0
                accepted_or_none = ctx.assume(pkt, sy.test(key, want, sy.full(t.key_bits)))
                if accepted_or_none is None:
                    out.append(Terminal(Dropped(f"{via}: key refused by {r.name} (in_key={r.in_key})"), pkt, via=via))
                    continue
                accepted = accepted_or_none
            fields: dict[str, sy.Value] = {name: 0 for name in _METADATA}
            fields["in_port"] = r.port
            fields["tun_id"] = sy.deposit(0, key, 0, t.key_bits, 64)
            fields["tun_src"] = _ip(src) if src else ctx.fresh("tun_src", 32)
            fields["tun_dst"] = _ip(dst)
            out.append(Enter(Location(r.host, r.bridge), r.port, accepted.with_fields(fields), via=via))
        return out

    def _receivers(self, host: str, family: str, src: str | None, dst: str) -> tuple[TunnelPort, ...]:
        """The tunnel ports of ``host`` that take packets from ``src`` to ``dst`` (the most specific ones)."""
        key = (host, family, src, dst)
        cached = self._receiver_cache.get(key)
        if cached is not None:
            return cached
        scored = []
        for r in self.receivers.get((host, family), ()):
            score = specificity(r, src, dst) if src is not None else (0 if r.local_ip in (None, dst) else None)
            if score is not None:
                scored.append((score, r))
        best = max((score for score, _ in scored), default=None)
        chosen = tuple(sorted((r for score, r in scored if score == best), key=lambda r: r.name))
        self._receiver_cache[key] = chosen
        return chosen

    # ------------------------------------------------------------ queries

    def without_learning(self) -> OvsNetwork:
        """The same network with empty learned tables (what frames do before anything is learned)."""
        return OvsNetwork(self.dataplane, learning=False, **self.options)  # type: ignore[arg-type]

    def variant(self, **changes: object) -> OvsNetwork:
        """The same network built with some options changed (``linux``, ``enforce_firewall``...).

        The network itself when it already has them: its devices (and what they cached) are reused.
        """
        if all(k in self.options and self.options[k] == v for k, v in changes.items()):
            return self
        return OvsNetwork(self.dataplane, **{**self.options, **changes})  # type: ignore[arg-type]

    def endpoint_at(self, location: Location, port: int) -> Endpoint | None:
        link = self.links.get((location, port))
        return link if isinstance(link, Endpoint) else None
