"""Real Open vSwitch for a whole deployment: one userspace sandbox per host, traces across tunnels.

``OvsHosts`` starts one ``OvsSandbox`` per host of an ``ir.Dataplane``, adds
every bridge (ports, tags, ofport numbers, tunnel options) and loads its flows.
Tests then change the running switches with ordinary ``ovs-vsctl`` and
``ovs-ofctl`` commands (``hosts["compute1"].vsctl(...)``), collect a snapshot
from them (``support.collect``) and replay packets through them.

``OvsHosts.trace_network`` follows a packet through *real* OVS across hosts:
``ofproto/trace`` already follows patch ports inside one sandbox; a tunnel
output (``set(tunnel(tun_id,src,dst)),gre_sys``) is carried to the host that
owns the outer destination address and traced again from the tunnel port
there whose ``remote_ip`` is the sender, with ``tun_id``/``tun_src``/
``tun_dst`` set, as the kernel's GRE receive path does.  Every other output is
a ``Delivery``.  The underlay itself is not emulated: a tunnel packet reaches
exactly the host owning its destination address (the verifier's own
assumption), and one that no host terminates is returned as a ``Delivery``
with ``tunnel`` set instead of vanishing.

Typical use::

    with OvsHosts(dataplane) as hosts:
        hosts["compute1"].vsctl("set", "Port", "qvo1", "tag=2")
        for d in hosts.trace_network("compute1", "br-int", "qvo1", packet):
            print(d.host, d.port)

Counterexamples of ``verify check ... --json`` replay with
``replay_counterexample`` (their ``setup`` flows are installed for the replay
and removed afterwards).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from support.odp import TUNNEL_VPORT, Emission, TunnelInfo
from support.ovs_sandbox import OvsSandbox, SandboxError, TraceResult
from verifier import ir
from verifier.header import FIELDS, parse_mac

__all__ = [
    "MAX_TUNNEL_HOPS",
    "Delivery",
    "Hop",
    "NetworkTraceError",
    "OvsHosts",
    "SetupFlow",
    "TunnelPort",
    "packet_from_json",
    "parse_setup",
    "replay_counterexample",
]

MAX_TUNNEL_HOPS = 8
"""How many tunnel crossings one ``trace_network`` may make before it is called a loop."""

TUNNEL_TYPES = {"gre": "gre", "vxlan": "vxlan", "geneve": "genev"}
"""OVSDB interface type -> the prefix of its datapath vport (``gre_sys``, ``vxlan_sys_4789``...)."""


class NetworkTraceError(SandboxError):
    """A multi-host trace could not be followed (loop, unknown host or port)."""


@dataclass(frozen=True)
class Hop:
    """One ``ofproto/trace`` of a network trace: where the packet entered real OVS."""

    host: str
    bridge: str
    in_port: str

    def __str__(self) -> str:
        return f"{self.host}/{self.bridge} (in: {self.in_port})"


@dataclass(frozen=True)
class Delivery:
    """A packet leaving the deployment's switches.

    ``port`` is the interface name (the LOCAL port is the bridge's name,
    ``CONTROLLER`` a packet-in), ``bridge`` the bridge holding it (None for
    CONTROLLER), ``packet`` the wire headers as emitted.  ``path`` lists the
    traces that led here, the first one where the packet started.
    ``tunnel`` is set only for a tunnel output that no host of the
    deployment terminates (no host owns the destination address, or the
    owner has no tunnel port for this sender); ``controller_reason`` for a
    packet-in.
    """

    host: str
    bridge: str | None
    port: str
    packet: dict[str, int]
    path: tuple[Hop, ...]
    tunnel: TunnelInfo | None = None
    controller_reason: int | None = None

    def sort_key(self) -> tuple[Any, ...]:
        return (self.host, self.bridge or "", self.port, tuple(sorted(self.packet.items())), len(self.path))

    def __str__(self) -> str:
        where = f"{self.host}/{self.bridge}:{self.port}" if self.bridge else f"{self.host}:{self.port}"
        return f"{where} via {' -> '.join(str(h) for h in self.path)}"


@dataclass(frozen=True)
class TunnelPort:
    """A tunnel interface of one host, with the options that decide which packets it takes in."""

    host: str
    bridge: str
    name: str
    kind: str
    remote_ip: str | None
    local_ip: str | None
    in_key: str | None


class OvsHosts:
    """One running ``OvsSandbox`` per host of a dataplane; a context manager.

    ``start()`` starts the sandboxes one after another and builds each host's
    bridges from the IR (``OvsSandbox.add_bridge`` + ``load_flows``); if any
    step fails, every sandbox started so far is stopped.  ``stop()`` stops
    each sandbox (by the PIDs in its own pidfiles, see ``OvsSandbox.stop``),
    going on with the others if one fails.

    The topology used to carry tunnel packets between hosts (host addresses,
    tunnel ports and their options) is read from the IR given here; tests
    may change tags and flows on the running switches, but not add or remove
    tunnel ports behind this object's back.
    """

    def __init__(
        self,
        dataplane: ir.Dataplane,
        *,
        hosts: Iterable[str] | None = None,
        max_tunnel_hops: int = MAX_TUNNEL_HOPS,
    ) -> None:
        self.dataplane = dataplane
        self.host_names: tuple[str, ...] = tuple(hosts) if hosts is not None else tuple(h.name for h in dataplane.hosts)
        for name in self.host_names:
            if dataplane.host(name) is None:
                raise NetworkTraceError(f"the dataplane has no host {name!r}")
        self.max_tunnel_hops = max_tunnel_hops
        self._sandboxes: dict[str, OvsSandbox] = {}
        self._owner = _address_owners(dataplane, self.host_names)
        self._tunnels = _tunnel_ports(dataplane, self.host_names)
        self._port_bridge = {name: _port_bridges(_host(dataplane, name)) for name in self.host_names}

    # ---------------------------------------------------------- lifecycle

    def __enter__(self) -> OvsHosts:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> OvsHosts:
        """Start a sandbox per host and build its bridges and flows from the IR."""
        if self._sandboxes:
            raise SandboxError("hosts already started")
        try:
            for name in self.host_names:
                sandbox = OvsSandbox()
                self._sandboxes[name] = sandbox
                sandbox.start()
                for bridge in _host(self.dataplane, name).bridges:
                    sandbox.add_bridge(bridge)
                    sandbox.load_flows(bridge.name, bridge.flows)
                if sandbox.unresolved_patches:
                    raise SandboxError(f"{name}: patch ports without a peer: {sandbox.unresolved_patches}")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every sandbox (each one even if another fails to stop), then raise the first error."""
        errors: list[BaseException] = []
        for sandbox in self._sandboxes.values():
            try:
                sandbox.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        self._sandboxes = {}
        if errors:
            raise errors[0]

    @property
    def running(self) -> bool:
        return bool(self._sandboxes) and all(s.running for s in self._sandboxes.values())

    def __getitem__(self, host: str) -> OvsSandbox:
        return self.sandbox(host)

    def sandbox(self, host: str) -> OvsSandbox:
        """The running sandbox of one host."""
        try:
            return self._sandboxes[host]
        except KeyError:
            raise SandboxError(f"host {host!r} is not running (started: {sorted(self._sandboxes)})") from None

    def items(self) -> Iterator[tuple[str, OvsSandbox]]:
        """(host name, sandbox) in host order."""
        for name in self.host_names:
            yield name, self.sandbox(name)

    # ---------------------------------------------------------- tunnels

    def address_owner(self, address: str) -> str | None:
        """The host that owns an underlay IPv4 address (``ip addr`` or a tunnel's local_ip), if any."""
        return self._owner.get(address)

    def receiving_port(self, host: str, kind: str, sender_ips: Iterable[str], dst_ip: str, tun_id: int) -> TunnelPort:
        """The tunnel port of ``host`` that takes in a ``kind`` packet from one of ``sender_ips`` to ``dst_ip``.

        As OVS's tunnel receive lookup: a port whose ``remote_ip`` is the
        sender wins over a ``remote_ip=flow`` port; ``local_ip``, if fixed,
        must be the destination; a fixed ``in_key``/``key`` must be the
        packet's key.  Raises NetworkTraceError when no port or more than
        one port qualifies.
        """
        senders = set(sender_ips)
        candidates = [
            t
            for t in self._tunnels.get(host, ())
            if t.kind == kind and t.local_ip in (None, "flow", dst_ip) and _key_accepts(t.in_key, tun_id)
        ]
        for exact in (True, False):
            found = [t for t in candidates if (t.remote_ip in senders if exact else t.remote_ip == "flow")]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                names = ", ".join(t.name for t in found)
                raise NetworkTraceError(f"{host}: several tunnel ports take a {kind} packet from {senders}: {names}")
        raise NetworkTraceError(f"{host}: no {kind} tunnel port takes a packet from {sorted(senders)} to {dst_ip}")

    # ---------------------------------------------------------- traces

    def trace(self, host: str, bridge: str, in_port_name: str, packet: Mapping[str, int]) -> TraceResult:
        """One ``ofproto/trace`` on one host (patch ports followed, tunnels not)."""
        return self.sandbox(host).trace(bridge, packet, in_port_name)

    def trace_network(self, host: str, bridge: str, in_port_name: str, packet: Mapping[str, int]) -> list[Delivery]:
        """Every packet real OVS delivers, on any host, when ``packet`` enters ``host``/``bridge`` at ``in_port_name``.

        Tunnel outputs continue on the receiving host (see the module
        docstring); a loop or more than ``max_tunnel_hops`` crossings
        raises NetworkTraceError.  The result is sorted.
        """
        out: list[Delivery] = []
        self._follow(Hop(host, bridge, in_port_name), dict(packet), (), out)
        return sorted(out, key=Delivery.sort_key)

    def _follow(self, hop: Hop, packet: dict[str, int], path: tuple[Hop, ...], out: list[Delivery]) -> None:
        path = (*path, hop)
        if len(path) > self.max_tunnel_hops + 1:
            chain = " -> ".join(str(h) for h in path)
            raise NetworkTraceError(f"more than {self.max_tunnel_hops} tunnel crossings (a loop?): {chain}")
        result = self.trace(hop.host, hop.bridge, hop.in_port, packet)
        for emission in result.outputs:
            if emission.tunnel is None:
                out.append(self._delivery(hop.host, emission, path))
                continue
            arrival = self._arrival(hop.host, emission)
            if arrival is None:
                out.append(self._delivery(hop.host, emission, path))
                continue
            receiver, inner = arrival
            self._follow(receiver, inner, path, out)

    def _delivery(self, host: str, emission: Emission, path: tuple[Hop, ...]) -> Delivery:
        bridge = self._port_bridge[host].get(emission.port)
        return Delivery(
            host=host,
            bridge=bridge,
            port=emission.port,
            packet=dict(emission.packet),
            path=path,
            tunnel=emission.tunnel,
            controller_reason=emission.controller_reason,
        )

    def _arrival(self, sender: str, emission: Emission) -> tuple[Hop, dict[str, int]] | None:
        """Where a tunnel emission enters real OVS again, and the packet it enters with (None: nowhere)."""
        tunnel = emission.tunnel
        assert tunnel is not None
        receiver = self.address_owner(tunnel.dst_ip)
        if receiver is None or receiver not in self._sandboxes:
            return None
        vport = TUNNEL_VPORT.match(emission.datapath_port or emission.port)
        kind = vport.group("kind") if vport else _kind_of_port(self._tunnels.get(sender, ()), emission.port)
        if kind is None:
            raise NetworkTraceError(f"{sender}: cannot tell the tunnel type of output {emission.port!r}")
        sender_ips = [tunnel.src_ip] if tunnel.src else [ip for ip, h in self._owner.items() if h == sender]
        port = self.receiving_port(receiver, kind, sender_ips, tunnel.dst_ip, tunnel.tun_id)
        src = tunnel.src or int(ipaddress.IPv4Address(sender_ips[0]))
        inner = {**emission.packet, "tun_id": tunnel.tun_id, "tun_src": src, "tun_dst": tunnel.dst}
        return Hop(receiver, port.bridge, port.name), inner


# ---------------------------------------------------------------- counterexample replay


@dataclass(frozen=True)
class SetupFlow:
    """One ``setup`` command of a counterexample: a learned flow to install before the replay."""

    host: str
    bridge: str
    flow: str

    @property
    def match(self) -> str:
        """The flow's table, priority and match, for ``ovs-ofctl --strict del-flows``."""
        head = self.flow.split(" actions=", 1)[0]
        keep = [p.strip() for p in head.split(",") if p.strip() and not _NOT_A_MATCH.match(p.strip())]
        return ",".join(keep)


_SETUP = re.compile(r"^ovs-ofctl add-flow (?P<bridge>\S+) '(?P<flow>[^']+)'\s+# on (?P<host>\S+)\s*$")
_NOT_A_MATCH = re.compile(r"^(cookie|hard_timeout|idle_timeout|importance|duration|n_packets|n_bytes)=")


def parse_setup(command: str) -> SetupFlow:
    """``ovs-ofctl add-flow BR 'FLOW'   # on HOST`` (a counterexample's ``setup`` line)."""
    match = _SETUP.match(command.strip())
    if match is None:
        raise ValueError(f"not a setup command this harness can run: {command!r}")
    return SetupFlow(match.group("host"), match.group("bridge"), match.group("flow"))


def packet_from_json(fields: Mapping[str, str]) -> dict[str, int]:
    """A header dict from a report's ``packet`` object (field name -> value as OVS prints it)."""
    packet: dict[str, int] = {}
    for name, text in fields.items():
        f = FIELDS.get(name)
        if f is None:
            raise ValueError(f"unknown header field {name!r} in a report packet")
        if f.kind == "mac":
            packet[name] = parse_mac(text)
        elif f.kind in ("ipv4", "ipv6"):
            packet[name] = int(ipaddress.ip_address(text))
        else:
            packet[name] = int(text, 0)
    return packet


def replay_counterexample(hosts: OvsHosts, example: Mapping[str, Any], *, setup: bool = True) -> list[Delivery]:
    """Replay one JSON counterexample through real OVS; returns every delivery.

    Installs its ``setup`` flows (learned entries) with ``ovs-ofctl
    add-flow`` on their hosts first (unless ``setup`` is False) and removes
    them again (``--strict del-flows``) afterwards, then traces the packet
    from the first hop's host, bridge and input port across hosts.
    """
    hops: Sequence[Mapping[str, Any]] = example["hops"]
    if not hops:
        raise ValueError("counterexample without hops")
    first = hops[0]
    packet = packet_from_json(example["packet"])
    packet.pop("in_port", None)
    flows = [parse_setup(cmd) for cmd in example.get("setup", ())] if setup else []
    installed: list[SetupFlow] = []
    try:
        for s in flows:
            hosts[s.host].ofctl("add-flow", s.bridge, s.flow)
            installed.append(s)
        return hosts.trace_network(first["host"], first["device"], first["in_port"], packet)
    finally:
        for s in installed:
            hosts[s.host].ofctl("--strict", "del-flows", s.bridge, s.match)


# ---------------------------------------------------------------- helpers


def _host(dataplane: ir.Dataplane, name: str) -> ir.Host:
    host = dataplane.host(name)
    if host is None:
        raise NetworkTraceError(f"the dataplane has no host {name!r}")
    return host


def _address_owners(dataplane: ir.Dataplane, names: Sequence[str]) -> dict[str, str]:
    """Underlay IPv4 address -> host, from ``ip addr`` addresses and tunnel ``local_ip`` options."""
    owner: dict[str, str] = {}
    for name in names:
        host = _host(dataplane, name)
        addresses = {a.address for a in host.addresses}
        for bridge in host.bridges:
            for port in bridge.ports:
                for iface in port.interfaces:
                    local = iface.option("local_ip")
                    if iface.type in TUNNEL_TYPES and local not in (None, "flow"):
                        addresses.add(str(local))
        for address in addresses:
            if owner.get(address, name) != name:
                raise NetworkTraceError(f"address {address} belongs to both {owner[address]} and {name}")
            owner[address] = name
    return owner


def _tunnel_ports(dataplane: ir.Dataplane, names: Sequence[str]) -> dict[str, tuple[TunnelPort, ...]]:
    out: dict[str, tuple[TunnelPort, ...]] = {}
    for name in names:
        ports = []
        for bridge in _host(dataplane, name).bridges:
            for port in bridge.ports:
                for iface in port.interfaces:
                    if iface.type in TUNNEL_TYPES:
                        ports.append(
                            TunnelPort(
                                host=name,
                                bridge=bridge.name,
                                name=iface.name,
                                kind=TUNNEL_TYPES[iface.type],
                                remote_ip=iface.option("remote_ip"),
                                local_ip=iface.option("local_ip"),
                                in_key=iface.option("in_key") or iface.option("key"),
                            )
                        )
        out[name] = tuple(ports)
    return out


def _port_bridges(host: ir.Host) -> dict[str, str]:
    """Interface name (and each bridge's own LOCAL name) -> bridge."""
    out: dict[str, str] = {}
    for bridge in host.bridges:
        out[bridge.name] = bridge.name
        for p in bridge.of_ports:
            out.setdefault(p.name, bridge.name)
        for port in bridge.ports:
            for iface in port.interfaces:
                out.setdefault(iface.name, bridge.name)
    return out


def _kind_of_port(ports: Iterable[TunnelPort], name: str) -> str | None:
    for t in ports:
        if t.name == name:
            return t.kind
    return None


def _key_accepts(in_key: str | None, tun_id: int) -> bool:
    """Whether a tunnel port with this ``in_key`` (or ``key``) option takes a packet with key ``tun_id``."""
    if in_key == "flow":
        return True
    return (int(in_key, 0) if in_key else 0) == tun_id
