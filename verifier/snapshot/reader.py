"""A snapshot directory (``shared/spec/snapshot.md``) to the dataplane IR.

``read_snapshot`` reads ``neutron.json`` (as an unvalidated JSON object) and,
per ``hosts/<host>/``, ``ovs-vsctl-show.txt``, ``ovs-ofctl-show-<bridge>.txt``,
``ovs-ofctl-dump-flows-<bridge>.txt``, the root namespace's ``ip-addr.txt``
(``Host.addresses`` and ``Host.links``), ``ip-route.txt``, ``iptables-save.txt``
and ``brctl-show.txt``, and ``netns/<namespace>/{ip-addr,ip-route,
iptables-save}.txt`` (``Host.namespaces``, in name order).  A name the format
does not have is an error, so a typo never hides a file.  ``ip6tables-save``
is not part of the format: IPv6 filtering is not read.

Missing files: ``Snapshot.missing`` lists every expected file that is absent
where the IR alone could not tell (the OVS files, ``ip-addr.txt`` of the host),
and every absent file of a namespace directory that exists (a captured
namespace is expected to have all three).  The root namespace's
``ip-route.txt``, ``iptables-save.txt`` and ``brctl-show.txt`` are optional
(OVS-only snapshots, the native OVS firewall, older collectors): without them
``Host.routes``, ``Host.netfilter`` and ``Host.linux_bridges`` are None, as a
namespace's ``routes``/``netfilter`` are without their file, which is never
the same as empty.  Every guess the reader had to make is said in the notes
(``Snapshot.notes`` and the bridge's ``notes``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from verifier.errors import SnapshotError
from verifier.header import OFPP_LOCAL
from verifier.ir import Bridge, Dataplane, Flow, Host, OFPort, Output, Resubmit, Skipped, iter_actions
from verifier.linux import LinuxBridge, Namespace, Netfilter, Route
from verifier.snapshot.brctl import parse_brctl_show
from verifier.snapshot.flows import parse_dump_flows, port_resolver
from verifier.snapshot.ipaddr import IpAddr, parse_ip_addr
from verifier.snapshot.iproute import parse_ip_route
from verifier.snapshot.iptables import parse_iptables_save
from verifier.snapshot.ofctl_show import parse_ofctl_show
from verifier.snapshot.vsctl import parse_vsctl_show

VSCTL_SHOW = "ovs-vsctl-show.txt"
IP_ADDR = "ip-addr.txt"
IP_ROUTE = "ip-route.txt"
IPTABLES_SAVE = "iptables-save.txt"
BRCTL_SHOW = "brctl-show.txt"
LINUX_FILES = frozenset({IP_ROUTE, IPTABLES_SAVE, BRCTL_SHOW})
"""Optional root-namespace files besides ip-addr.txt."""
NETNS_FILES = (IP_ADDR, IP_ROUTE, IPTABLES_SAVE)
"""The files of one ``netns/<namespace>/`` directory, all expected."""
_OFCTL_SHOW = re.compile(r"ovs-ofctl-show-(.+)\.txt")
_DUMP_FLOWS = re.compile(r"ovs-ofctl-dump-flows-(.+)\.txt")


@dataclass(frozen=True)
class Snapshot:
    """A read snapshot: the dataplane, the raw Neutron view and what the reader noticed.

    ``missing`` lists, relative to ``root``, every expected file that is absent
    (``hosts/<host>/ovs-ofctl-dump-flows-<bridge>.txt`` for each known bridge,
    ``ovs-ofctl-show-<bridge>.txt``, ``ovs-vsctl-show.txt``, ``ip-addr.txt``,
    ``netns/<namespace>/<file>`` of each captured namespace, ``neutron.json``).
    ``skipped`` holds every line skipped under ``lenient``.
    """

    root: str
    dataplane: Dataplane
    neutron_json: dict[str, Any] | None
    notes: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    missing: tuple[str, ...] = ()

    def flows_missing(self, host: str, bridge: str) -> bool:
        """Whether the bridge's flow table is unknown (its dump-flows file is absent)."""
        return f"hosts/{host}/ovs-ofctl-dump-flows-{bridge}.txt" in self.missing

    def file_missing(self, relpath: str) -> bool:
        """Whether the expected file ``relpath`` (relative to the root) is absent."""
        return relpath in self.missing


class _Collector:
    """Notes, skipped lines and missing files gathered while reading."""

    def __init__(self, root: Path, lenient: bool) -> None:
        self.root = root
        self.lenient = lenient
        self.notes: list[str] = []
        self.skipped: list[Skipped] = []
        self.missing: list[str] = []

    def read(self, rel: str) -> str:
        """The UTF-8 text of ``rel`` (a BOM is dropped; the parsers accept CRLF line ends)."""
        try:
            data = (self.root / rel).read_bytes()
        except OSError as exc:
            raise SnapshotError(rel, f"cannot read file ({exc.strerror or exc})") from exc
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            bad = data[exc.start : exc.start + 1].hex()
            raise SnapshotError(f"{rel}:{line}", f"not UTF-8 text (byte 0x{bad} at offset {exc.start})") from exc


def read_snapshot(path: str | os.PathLike[str], *, lenient: bool = False) -> Snapshot:
    """Read a snapshot directory.

    Raises SnapshotError (naming the file, and the line where there is one) for
    anything that does not follow the format, unless ``lenient``: then lines
    that cannot be parsed are skipped and listed in ``Snapshot.skipped`` (flow
    lines also in their ``Bridge.skipped``).  Layout errors are never lenient.
    """
    root = Path(path)
    if not root.is_dir():
        problem = "is not a directory" if root.exists() else "no such directory"
        raise SnapshotError(str(path), f"not a snapshot: {problem}")
    ctx = _Collector(root, lenient)
    entries = sorted(entry.name for entry in root.iterdir())
    for name in entries:
        if name not in ("neutron.json", "hosts"):
            raise SnapshotError(name, "not part of the snapshot format (expected neutron.json and hosts/)")
    neutron = _read_neutron(ctx) if "neutron.json" in entries else None
    if neutron is None:
        ctx.missing.append("neutron.json")
    hosts_dir = root / "hosts"
    if not hosts_dir.is_dir():
        raise SnapshotError("hosts", "at least one host is required: there is no hosts/ directory")
    host_dirs = sorted(hosts_dir.iterdir())
    for entry in host_dirs:
        if not entry.is_dir():
            raise SnapshotError(f"hosts/{entry.name}", "not a host directory (hosts/ holds one directory per host)")
    if not host_dirs:
        raise SnapshotError("hosts", "at least one host is required: hosts/ is empty")
    hosts = tuple(_read_host(ctx, entry.name) for entry in host_dirs)
    return Snapshot(
        root=str(root),
        dataplane=Dataplane(hosts),
        neutron_json=neutron,
        notes=tuple(ctx.notes),
        skipped=tuple(ctx.skipped),
        missing=tuple(ctx.missing),
    )


def _read_neutron(ctx: _Collector) -> dict[str, Any]:
    rel = "neutron.json"
    if (ctx.root / rel).is_dir():
        raise SnapshotError(rel, "expected a file, found a directory")
    text = ctx.read(rel)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.split("\n")
        bad = lines[exc.lineno - 1].rstrip("\r") if exc.lineno <= len(lines) else ""
        raise SnapshotError(f"{rel}:{exc.lineno}", f"invalid JSON at column {exc.colno}: {exc.msg}", bad) from exc
    if not isinstance(value, dict):
        raise SnapshotError(rel, f"must hold one JSON object, not a JSON {type(value).__name__}")
    return value


@dataclass
class _HostFiles:
    """The files of one host directory: flags, and bridge name -> relative path."""

    vsctl: bool = False
    ip_addr: bool = False
    ofctl_show: dict[str, str] = field(default_factory=dict)
    dump_flows: dict[str, str] = field(default_factory=dict)
    linux: set[str] = field(default_factory=set)
    namespaces: dict[str, set[str]] = field(default_factory=dict)


def _classify(ctx: _Collector, host: str) -> _HostFiles:
    """Sort the host's files by kind; any name outside the format is an error."""
    found = _HostFiles()
    base = f"hosts/{host}"
    for entry in sorted((ctx.root / base).iterdir()):
        rel = f"{base}/{entry.name}"
        if entry.name == "netns":
            found.namespaces = _check_netns(ctx, rel)
            continue
        if entry.is_dir():
            raise SnapshotError(rel, "expected a file, found a directory")
        show = _OFCTL_SHOW.fullmatch(entry.name)
        dump = _DUMP_FLOWS.fullmatch(entry.name)
        if entry.name == VSCTL_SHOW:
            found.vsctl = True
        elif entry.name == IP_ADDR:
            found.ip_addr = True
        elif show:
            found.ofctl_show[show.group(1)] = rel
        elif dump:
            found.dump_flows[dump.group(1)] = rel
        elif entry.name in LINUX_FILES:
            found.linux.add(entry.name)
        else:
            raise SnapshotError(rel, "not a file of the snapshot format (misspelt?)", entry.name)
    return found


def _check_netns(ctx: _Collector, rel: str) -> dict[str, set[str]]:
    """Namespace name to the names of its files; anything else under ``netns/`` is an error."""
    if not (ctx.root / rel).is_dir():
        raise SnapshotError(rel, "expected a directory of namespaces")
    found: dict[str, set[str]] = {}
    for ns in sorted((ctx.root / rel).iterdir()):
        if not ns.is_dir():
            raise SnapshotError(f"{rel}/{ns.name}", "expected a namespace directory")
        found[ns.name] = set()
        for entry in sorted(ns.iterdir()):
            if entry.name not in NETNS_FILES or entry.is_dir():
                raise SnapshotError(f"{rel}/{ns.name}/{entry.name}", "not a file of the snapshot format")
            found[ns.name].add(entry.name)
    return found


def _read_host(ctx: _Collector, host: str) -> Host:
    base = f"hosts/{host}"
    files = _classify(ctx, host)
    ovsdb: dict[str, Bridge] = {}
    ovs_version = None
    if files.vsctl:
        rel = f"{base}/{VSCTL_SHOW}"
        show = parse_vsctl_show(ctx.read(rel), rel, lenient=ctx.lenient)
        ctx.skipped += show.skipped
        ovs_version = show.ovs_version
        ovsdb = {b.name: b for b in show.bridges}
        for error in show.errors:
            note = f"{error.where}: OVS reports an error on interface {error.interface!r}: {error.message}"
            ovsdb[error.bridge] = replace(ovsdb[error.bridge], notes=(*ovsdb[error.bridge].notes, note))
    else:
        ctx.missing.append(f"{base}/{VSCTL_SHOW}")
        ctx.notes.append(f"{base}/{VSCTL_SHOW}: missing: no OVSDB ports, VLAN tags or tunnel options")
    names = sorted(set(ovsdb) | set(files.ofctl_show) | set(files.dump_flows))
    bridges = []
    for name in names:
        bridge = ovsdb.get(name)
        if bridge is None:
            bridge = Bridge(name)
            if files.vsctl:
                sources = [rel for rel in (files.ofctl_show.get(name), files.dump_flows.get(name)) if rel]
                bridge = _note(bridge, f"not in {VSCTL_SHOW}; known only from {', '.join(sources)}")
        bridges.append(_read_bridge(ctx, base, bridge, files))
    for bridge in bridges:
        ctx.notes += [f"{base} bridge {bridge.name}: {note}" for note in bridge.notes]
    ip = _read_ip_addr(ctx, f"{base}/{IP_ADDR}") if files.ip_addr else IpAddr((), ())
    if not files.ip_addr:
        ctx.missing.append(f"{base}/{IP_ADDR}")
    namespaces = [
        _read_namespace(ctx, f"{base}/netns/{name}", name, files.namespaces[name]) for name in sorted(files.namespaces)
    ]
    return Host(
        host,
        tuple(bridges),
        ip.addresses,
        ovs_version,
        links=ip.links,
        routes=_read_routes(ctx, f"{base}/{IP_ROUTE}") if IP_ROUTE in files.linux else None,
        netfilter=_read_netfilter(ctx, f"{base}/{IPTABLES_SAVE}") if IPTABLES_SAVE in files.linux else None,
        namespaces=tuple(namespaces),
        linux_bridges=_read_bridges(ctx, f"{base}/{BRCTL_SHOW}") if BRCTL_SHOW in files.linux else None,
    )


def _read_namespace(ctx: _Collector, base: str, name: str, present: set[str]) -> Namespace:
    """One ``netns/<name>/`` directory; each absent file is listed as missing (routes/netfilter None)."""
    ctx.missing += [f"{base}/{n}" for n in NETNS_FILES if n not in present]
    ip = _read_ip_addr(ctx, f"{base}/{IP_ADDR}") if IP_ADDR in present else IpAddr((), ())
    return Namespace(
        name,
        ip.links,
        ip.addresses,
        _read_routes(ctx, f"{base}/{IP_ROUTE}") if IP_ROUTE in present else None,
        _read_netfilter(ctx, f"{base}/{IPTABLES_SAVE}") if IPTABLES_SAVE in present else None,
    )


def _read_ip_addr(ctx: _Collector, rel: str) -> IpAddr:
    parsed = parse_ip_addr(ctx.read(rel), rel, lenient=ctx.lenient)
    ctx.skipped += parsed.skipped
    return parsed


def _read_routes(ctx: _Collector, rel: str) -> tuple[Route, ...]:
    return parse_ip_route(ctx.read(rel), rel, lenient=ctx.lenient, skipped=ctx.skipped)


def _read_netfilter(ctx: _Collector, rel: str) -> Netfilter:
    return parse_iptables_save(ctx.read(rel), rel, lenient=ctx.lenient, skipped=ctx.skipped)


def _read_bridges(ctx: _Collector, rel: str) -> tuple[LinuxBridge, ...]:
    return parse_brctl_show(ctx.read(rel), rel, lenient=ctx.lenient, skipped=ctx.skipped)


def _note(bridge: Bridge, note: str) -> Bridge:
    return replace(bridge, notes=(*bridge.notes, note))


def _read_bridge(ctx: _Collector, base: str, bridge: Bridge, files: _HostFiles) -> Bridge:
    """The bridge with its OpenFlow ports and flows read (or synthesised, or noted missing)."""
    show_rel = files.ofctl_show.get(bridge.name)
    flows_rel = files.dump_flows.get(bridge.name)
    if show_rel is not None:
        shown = parse_ofctl_show(ctx.read(show_rel), show_rel, lenient=ctx.lenient)
        ctx.skipped += shown.skipped
        for port in shown.ports:
            if port.number == OFPP_LOCAL and port.name != bridge.name:
                raise SnapshotError(
                    show_rel,
                    f"the LOCAL port is named {port.name!r}: this is not the show output of bridge {bridge.name!r}",
                    port.name,
                )
        bridge = _compare_ports(replace(bridge, of_ports=shown.ports), show_rel, files.vsctl)
        if shown.openflow_version not in (None, "OF1.0"):
            bridge = _note(
                bridge,
                f"{show_rel} is {shown.openflow_version} output, which cannot show the "
                "NO_FLOOD port flag: every port is taken to flood",
            )
    else:
        missing_show = f"{base}/ovs-ofctl-show-{bridge.name}.txt"
        ctx.missing.append(missing_show)
        bridge = replace(bridge, of_ports=synthetic_of_ports(bridge))
        if bridge.of_ports:
            bridge = _note(
                bridge,
                f"{missing_show} is missing: OpenFlow port numbers are synthetic (the "
                f"interfaces of {VSCTL_SHOW} numbered from 1 in name order, the bridge's own "
                "interface LOCAL); flows that name ports were resolved with them",
            )
        else:
            bridge = _note(bridge, f"{missing_show} is missing and no OVSDB interfaces are known")
    if flows_rel is None:
        ctx.missing.append(f"{base}/ovs-ofctl-dump-flows-{bridge.name}.txt")
        return bridge
    text = ctx.read(flows_rel)
    if show_rel is not None:
        names = {p.name: p.number for p in bridge.of_ports}
        flows, skipped = parse_dump_flows(text, flows_rel, port_resolver(names), lenient=ctx.lenient)
    else:
        flows, skipped = _parse_flows_by_name(
            text, flows_rel, bridge.of_ports, f"{base}/ovs-ofctl-show-{bridge.name}.txt", lenient=ctx.lenient
        )
    ctx.skipped += skipped
    return replace(bridge, flows=tuple(flows), skipped=tuple(skipped))


def _compare_ports(bridge: Bridge, show_rel: str, have_ovsdb: bool) -> Bridge:
    """Note interfaces that only one of ovs-vsctl-show and ovs-ofctl-show knows."""
    if not have_ovsdb or not bridge.ports:
        return bridge
    in_ovsdb = {i.name for p in bridge.ports for i in p.interfaces}
    in_openflow = {p.name for p in bridge.of_ports}
    for names, where, other in (
        (in_ovsdb - in_openflow, VSCTL_SHOW, show_rel),
        (in_openflow - in_ovsdb, show_rel, VSCTL_SHOW),
    ):
        if names:
            listed = ", ".join(repr(n) for n in sorted(names))
            bridge = _note(bridge, f"interfaces in {where} but not in {other}: {listed}")
    return bridge


def synthetic_of_ports(bridge: Bridge) -> tuple[OFPort, ...]:
    """OpenFlow ports made up from the OVSDB interfaces: 1.. in name order, the bridge's own LOCAL."""
    names = sorted(i.name for p in bridge.ports for i in p.interfaces)
    others = [n for n in names if n != bridge.name]
    ports = [OFPort(number, name) for number, name in enumerate(others, start=1)]
    if bridge.name in names:
        ports.append(OFPort(OFPP_LOCAL, bridge.name))
    return tuple(ports)


def _parse_flows_by_name(
    text: str, rel: str, of_ports: tuple[OFPort, ...], show_rel: str, *, lenient: bool
) -> tuple[list[Flow], list[Skipped]]:
    """Flows of a bridge whose ovs-ofctl-show file is missing.

    Port names resolve to the synthetic ports; a port written as a number
    cannot be resolved, so its flow is an error (skipped under ``lenient``).
    The text is parsed twice with two numberings of the names: a port number
    that comes out the same both times was written as a number.
    """
    first = {p.name: p.number for p in of_ports}
    shift = len(first) + 1
    second = {name: n if n == OFPP_LOCAL else n + shift for name, n in first.items()}
    try:
        flows, skipped = parse_dump_flows(text, rel, port_resolver(first), lenient=lenient)
    except SnapshotError as exc:
        problem = f"{exc.problem} (ports resolved with {VSCTL_SHOW} because {show_rel} is missing)"
        raise SnapshotError(exc.where, problem, exc.text) from exc
    again, _ = parse_dump_flows(text, rel, port_resolver(second), lenient=lenient)
    assert len(again) == len(flows)
    kept = []
    for flow, twin in zip(flows, again):
        numbers = [a for a, b in zip(_port_refs(flow), _port_refs(twin)) if a == b and a < _RESERVED_PORTS]
        if not numbers:
            kept.append(flow)
            continue
        p = flow.provenance
        problem = f"port {numbers[0]} is given by number, and {show_rel} (which maps numbers to ports) is missing"
        if not lenient:
            raise SnapshotError(f"{p.file}:{p.line}", problem, p.text)
        skipped.append(Skipped(p.file, p.line, p.text, problem))
    return kept, sorted(skipped, key=lambda s: s.line)


_RESERVED_PORTS = 0xFF00
"""OpenFlow 1.0 port numbers from here up are reserved (LOCAL, NORMAL...), never a bridge's port."""


def _port_refs(flow: Flow) -> list[int]:
    """Every OpenFlow port number a flow mentions, in a fixed order."""
    refs = []
    in_port = flow.match_value("in_port")
    if in_port is not None:
        refs.append(in_port.value)
    for action in iter_actions(flow.actions):
        port = action.port if isinstance(action, (Output, Resubmit)) else None
        if port is not None:
            refs.append(port)
    return refs
