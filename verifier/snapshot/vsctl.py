"""``ovs-vsctl show`` text to OVSDB bridges, ports and interfaces, and back.

The reader accepts the layout of every OVS release from 1.10 to 3.x: the
Open_vSwitch row UUID, then one record per line indented four spaces per level
(``Bridge``, ``Port``, ``Interface``, ``Controller``, ``Manager``) and its
columns (``tag: 1``, ``options: {peer=patch-int}``).  Strings are bare or
JSON-quoted (older releases quote every string holding a digit, so
``Port "qvo1234abcd-ef"`` and ``Port qvo1234abcd-ef`` mean the same).  Lines
end at ``\n``; a trailing ``\r`` is dropped.

Columns the IR has no place for are recognised and dropped only when they are
known display-only columns (``HARMLESS_COLUMNS``); an ``error:`` column is kept
as an ``InterfaceError``.  Anything else, and any unexpected indentation, is an
error naming the file, line and text (a skipped line under ``lenient``).
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field

from verifier.errors import SnapshotError
from verifier.ir import Bridge, Interface, Port, Skipped

# Columns `ovs-vsctl show` prints that say nothing about forwarding, by record kind.
HARMLESS_COLUMNS: dict[str, frozenset[str]] = {
    "Controller": frozenset({"is_connected"}),
    "Manager": frozenset({"is_connected"}),
    "Interface": frozenset({"bfd_status"}),
}

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_RECORD = re.compile(r"([A-Z][A-Za-z_]*) (.+)")
_COLUMN = re.compile(r"([a-z_]+):(?: (.*))?")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_BARE = re.compile(r'[^\s",={}\[\]]+')
_BARE_TAIL = frozenset(string.ascii_letters + string.digits + "_-.")


class _LineError(ValueError):
    """A line that does not fit the layout (the caller adds file and line)."""


@dataclass(frozen=True)
class InterfaceError:
    """An interface's ``error:`` column: OVS could not set the interface up."""

    where: str
    bridge: str
    interface: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: interface {self.interface!r} on bridge {self.bridge!r}: {self.message}"


@dataclass(frozen=True)
class VsctlShow:
    """One parsed ``ovs-vsctl show``: bridges hold OVSDB ports only (no OpenFlow data)."""

    uuid: str
    bridges: tuple[Bridge, ...]
    ovs_version: str | None = None
    errors: tuple[InterfaceError, ...] = ()
    skipped: tuple[Skipped, ...] = ()


def ovsdb_string(value: str) -> str:
    """``value`` as OVS 3.1 prints an OVSDB string: bare when identifier-like, else JSON-quoted."""
    bare = (
        value[:1].isascii()
        and (value[:1].isalpha() or value[:1] == "_")
        and all(c in _BARE_TAIL for c in value[1:])
        and value not in ("true", "false")
        and not _UUID.fullmatch(value)
    )
    return value if bare else json.dumps(value, ensure_ascii=False)


def format_vsctl_show(uuid: str, bridges: tuple[Bridge, ...] | list[Bridge], ovs_version: str | None) -> str:
    """The ``ovs-vsctl show`` text OVS 3.1 prints for these bridges (in the order given).

    ``vlan_mode`` is not part of ``show`` output and is not written.
    """
    lines = [uuid]
    for bridge in bridges:
        lines.append(f"    Bridge {ovsdb_string(bridge.name)}")
        if bridge.fail_mode is not None:
            lines.append(f"        fail_mode: {ovsdb_string(bridge.fail_mode)}")
        if bridge.datapath_type is not None:
            lines.append(f"        datapath_type: {ovsdb_string(bridge.datapath_type)}")
        for port in bridge.ports:
            lines.append(f"        Port {ovsdb_string(port.name)}")
            if port.tag is not None:
                lines.append(f"            tag: {port.tag}")
            if port.trunks:
                lines.append(f"            trunks: [{', '.join(str(t) for t in port.trunks)}]")
            for iface in port.interfaces:
                lines.append(f"            Interface {ovsdb_string(iface.name)}")
                if iface.type:
                    lines.append(f"                type: {ovsdb_string(iface.type)}")
                if iface.options:
                    pairs = (f"{ovsdb_string(k)}={ovsdb_string(v)}" for k, v in sorted(iface.options))
                    lines.append(f"                options: {{{', '.join(pairs)}}}")
    if ovs_version is not None:
        lines.append(f"    ovs_version: {ovsdb_string(ovs_version)}")
    return "\n".join(lines) + "\n"


def parse_vsctl_show(text: str, file: str, *, lenient: bool = False) -> VsctlShow:
    """Parse a whole ``ovs-vsctl show`` output.

    Raises SnapshotError naming file, line and text for a line that does not fit,
    unless ``lenient``; then the line (and every line nested under it) is
    returned in ``skipped`` instead.
    """
    parser = _Parser(file, lenient)
    skip_below: tuple[int, int] | None = None  # (level, line) of a skipped record
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip()
        if not line:
            continue
        level = _level(line)
        if skip_below is not None and level is not None and level > skip_below[0]:
            parser.skipped.append(
                Skipped(file, number, line.strip(), f"inside the record skipped at line {skip_below[1]}")
            )
            continue
        skip_below = None
        try:
            if level is None:
                raise _LineError("indentation is not a multiple of four spaces")
            parser.line(number, level, line.strip())
        except _LineError as exc:
            if not lenient:
                raise SnapshotError(f"{file}:{number}", str(exc), line.strip()) from exc
            parser.skipped.append(Skipped(file, number, line.strip(), str(exc)))
            if level is not None:
                skip_below = (level, number)
    return parser.result()


def _level(line: str) -> int | None:
    indent = len(line) - len(line.lstrip(" "))
    if indent % 4 or line[indent : indent + 1].isspace():
        return None
    return indent // 4


@dataclass
class _Iface:
    name: str
    line: int
    type: str | None = None
    options: tuple[tuple[str, str], ...] | None = None


@dataclass
class _Port:
    name: str
    line: int
    tag: int | None = None
    trunks: tuple[int, ...] | None = None
    ifaces: list[_Iface] = field(default_factory=list)


@dataclass
class _Bridge:
    name: str
    fail_mode: str | None = None
    datapath_type: str | None = None
    ports: list[_Port] = field(default_factory=list)


@dataclass
class _Node:
    """One open record on the nesting stack."""

    kind: str  # "Open_vSwitch", "Bridge", "Port", "Interface", "Controller", "Manager"
    obj: _Bridge | _Port | _Iface | None = None
    seen: set[str] = field(default_factory=set)


_CHILDREN = {
    "Open_vSwitch": {"Bridge", "Manager"},
    "Bridge": {"Controller", "Port"},
    "Port": {"Interface"},
}


class _Parser:
    def __init__(self, file: str, lenient: bool) -> None:
        self.file = file
        self.lenient = lenient
        self.uuid: str | None = None
        self.ovs_version: str | None = None
        self.stack: list[_Node] = []
        self.bridges: list[_Bridge] = []
        self.iface_names: dict[str, int] = {}
        self.errors: list[InterfaceError] = []
        self.skipped: list[Skipped] = []
        self.bridge_lines: dict[str, int] = {}

    def line(self, number: int, level: int, content: str) -> None:
        if level == 0:
            if self.uuid is not None:
                raise _LineError("a second top-level line (one ovs-vsctl show output per file)")
            if not _UUID.fullmatch(content):
                raise _LineError("expected the Open_vSwitch record UUID on the first line")
            self.uuid = content.lower()
            self.stack = [_Node("Open_vSwitch")]
            return
        if self.uuid is None:
            raise _LineError("expected the Open_vSwitch record UUID before any indented line")
        if level > len(self.stack):
            raise _LineError("indented deeper than the record above it")
        del self.stack[level:]
        parent = self.stack[-1]
        record = _RECORD.fullmatch(content)
        if record:
            self._record(number, parent, record.group(1), record.group(2))
            return
        column = _COLUMN.fullmatch(content)
        if column is None or column.group(2) is None:
            raise _LineError(f"not a record or a column of {parent.kind}")
        key, value = column.group(1), column.group(2)
        if key in parent.seen:
            raise _LineError(f"{key} given twice for one {parent.kind}")
        parent.seen.add(key)
        self._column(number, parent, key, value)

    def _record(self, number: int, parent: _Node, kind: str, name_text: str) -> None:
        if kind not in _CHILDREN.get(parent.kind, set()):
            raise _LineError(f"unexpected {kind} record inside {parent.kind}")
        name = _string(name_text)
        node = _Node(kind)
        if kind == "Bridge":
            if name in self.bridge_lines:
                raise _LineError(f"bridge {name!r} already listed at line {self.bridge_lines[name]}")
            self.bridge_lines[name] = number
            node.obj = _Bridge(name)
            self.bridges.append(node.obj)
        elif kind == "Port":
            bridge = parent.obj
            assert isinstance(bridge, _Bridge)
            if any(p.name == name for p in bridge.ports):
                raise _LineError(f"port {name!r} listed twice on bridge {bridge.name!r}")
            node.obj = _Port(name, number)
            bridge.ports.append(node.obj)
        elif kind == "Interface":
            port = parent.obj
            assert isinstance(port, _Port)
            if name in self.iface_names:
                raise _LineError(
                    f"interface {name!r} already listed at line {self.iface_names[name]} "
                    "(OVSDB interface names are unique)"
                )
            self.iface_names[name] = number
            node.obj = _Iface(name, number)
            port.ifaces.append(node.obj)
        self.stack.append(node)

    def _column(self, number: int, parent: _Node, key: str, value: str) -> None:
        obj = parent.obj
        if key in HARMLESS_COLUMNS.get(parent.kind, frozenset()):
            return
        if parent.kind == "Open_vSwitch" and key == "ovs_version":
            self.ovs_version = _string(value)
        elif isinstance(obj, _Bridge) and key in ("fail_mode", "datapath_type"):
            setattr(obj, key, _string(value))
        elif isinstance(obj, _Port) and key == "tag":
            obj.tag = _vlan(value)
        elif isinstance(obj, _Port) and key == "trunks":
            obj.trunks = _vlan_set(value)
        elif isinstance(obj, _Iface) and key == "type":
            obj.type = _string(value)
        elif isinstance(obj, _Iface) and key == "options":
            obj.options = _map(value)
        elif isinstance(obj, _Iface) and key == "error":
            bridge = self.stack[1].obj
            assert isinstance(bridge, _Bridge)
            message = _string(value)
            self.errors.append(InterfaceError(f"{self.file}:{number}", bridge.name, obj.name, message))
        else:
            raise _LineError(f"unknown column {key!r} for {parent.kind}")

    def result(self) -> VsctlShow:
        if self.uuid is None:
            if self.skipped:  # lenient, and the UUID line itself was skipped
                return VsctlShow("", (), None, (), tuple(self.skipped))
            raise SnapshotError(self.file, "empty: no ovs-vsctl show output (expected the Open_vSwitch UUID)")
        bridges = []
        for b in self.bridges:
            ports = []
            for p in b.ports:
                if not p.ifaces:
                    problem = "port has no Interface"
                    if not self.lenient:
                        raise SnapshotError(f"{self.file}:{p.line}", problem, f"Port {p.name}")
                    self.skipped.append(Skipped(self.file, p.line, f"Port {p.name}", problem))
                    continue
                ifaces = tuple(Interface(i.name, i.type or "", i.options or ()) for i in p.ifaces)
                ports.append(Port(p.name, ifaces, p.tag, p.trunks or ()))
            bridges.append(Bridge(b.name, tuple(ports), fail_mode=b.fail_mode, datapath_type=b.datapath_type))
        return VsctlShow(self.uuid, tuple(bridges), self.ovs_version, tuple(self.errors), tuple(self.skipped))


def _atom(text: str, pos: int) -> tuple[str, int]:
    """One OVSDB string atom (quoted or bare) starting at ``pos``; returns it and the end."""
    quoted = _QUOTED.match(text, pos)
    if quoted:
        try:
            return json.loads(quoted.group(0)), quoted.end()
        except json.JSONDecodeError as exc:
            raise _LineError(f"bad quoted string ({exc.msg})") from exc
    bare = _BARE.match(text, pos)
    if bare is None:
        raise _LineError(f"expected a string at {text[pos : pos + 20]!r}")
    return bare.group(0), bare.end()


def _string(text: str) -> str:
    value, end = _atom(text, 0)
    if end != len(text):
        raise _LineError(f"expected one string, found more after {text[:end]!r}")
    return value


def _vlan(text: str) -> int:
    if not re.fullmatch(r"\d+", text) or int(text) > 4095:
        raise _LineError("expected a VLAN number 0-4095")
    return int(text)


def _vlan_set(text: str) -> tuple[int, ...]:
    if re.fullmatch(r"\d+", text):
        return (_vlan(text),)
    match = re.fullmatch(r"\[(\d+(?:, ?\d+)*)\]", text)
    if match is None:
        raise _LineError("expected a VLAN set like [1, 2]")
    return tuple(_vlan(v.strip()) for v in match.group(1).split(","))


def _map(text: str) -> tuple[tuple[str, str], ...]:
    """``{k=v, k2="v 2"}`` as sorted (key, value) pairs."""
    if not (text.startswith("{") and text.endswith("}")):
        raise _LineError("expected a map like {key=value, ...}")
    body = text[1:-1]
    pairs: dict[str, str] = {}
    pos = 0
    while pos < len(body):
        key, pos = _atom(body, pos)
        if body[pos : pos + 1] != "=":
            raise _LineError(f"expected '=' after map key {key!r}")
        value, pos = _atom(body, pos + 1)
        if key in pairs:
            raise _LineError(f"map key {key!r} given twice")
        pairs[key] = value
        if pos < len(body):
            sep = re.compile(r", ?").match(body, pos)
            if sep is None or sep.end() == len(body):
                raise _LineError(f"expected ', ' between map entries at {body[pos : pos + 20]!r}")
            pos = sep.end()
    return tuple(sorted(pairs.items()))
