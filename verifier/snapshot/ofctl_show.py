"""``ovs-ofctl show <bridge>`` text to OpenFlow ports, and back.

The reader accepts OpenFlow 1.0 output (``OFPT_FEATURES_REPLY`` with the port
list and an ``actions:`` line) and OpenFlow 1.1+ output (``-O OpenFlow13``:
the ports follow an ``OFPST_PORT_DESC reply`` line) from OVS 1.10 to 3.x.
Port blocks are `` N(name): addr:MAC`` followed by indented ``config:``,
``state:``, ``speed:`` and the optional ``current:``/``advertised:``/
``supported:``/``peer:`` lines; ``LOCAL(name)`` is port 65534.  Any other line
is an error naming the file, line and text (a skipped line under ``lenient``).

The state flag ``LIVE`` exists only in OpenFlow 1.1+ and OVS derives it (port
and link up), so it is not kept: both spellings of one switch parse equal.
OpenFlow 1.1+ cannot show the 1.0-only config flags ``NO_FLOOD``, ``NO_STP``
and ``NO_RECV_STP``; ``OfctlShow.openflow_version`` tells the caller which it got.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from verifier.errors import SnapshotError
from verifier.header import OFPP_LOCAL
from verifier.ir import OFPort, Skipped

NO_MAC = "00:00:00:00:00:00"
"""The address the writer prints for a port whose MAC is unknown; the reader reads it as None."""

_HEADERS = (
    re.compile(
        r"OFPT_FEATURES_REPLY(?: \((?P<version>OF1\.\d)\))? \(xid=0x[0-9a-fA-F]+\): dpid:(?P<dpid>[0-9a-fA-F]{16})"
    ),
    re.compile(r"n_tables:\d+, n_buffers:\d+"),
    re.compile(r"capabilities: .*"),
    re.compile(r"actions: .*"),
    re.compile(r"OFPST_PORT_DESC reply\b.*:"),
    re.compile(r"OFPT_GET_CONFIG_REPLY\b.*"),
)
_PORT = re.compile(r"\s*(?P<number>\d+|LOCAL)\((?P<name>.*)\): addr:(?P<mac>[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})")
_PROPERTY = re.compile(r"\s+(?P<key>[a-z]+):\s*(?P<value>.*)")
_IGNORED_PROPERTIES = frozenset({"speed", "current", "advertised", "supported", "peer"})
_FLAG = re.compile(r"[A-Z][A-Z0-9_]*")


@dataclass(frozen=True)
class OfctlShow:
    """One parsed ``ovs-ofctl show``: the datapath id and the ports in file order.

    ``openflow_version`` is ``"OF1.0"`` unless the header names another
    (``OFPT_FEATURES_REPLY (OF1.3)``); None when the file has no header.
    """

    dpid: str | None
    ports: tuple[OFPort, ...]
    openflow_version: str | None = None
    skipped: tuple[Skipped, ...] = ()

    @property
    def shows_no_flood(self) -> bool:
        """Whether the output can show the NO_FLOOD flag at all (OpenFlow 1.0 only)."""
        return self.openflow_version == "OF1.0"


@dataclass
class _Port:
    number: int
    name: str
    mac: str | None
    line: int
    config: tuple[str, ...] | None = None
    state: tuple[str, ...] | None = None
    seen: set[str] = field(default_factory=set)


class _LineError(ValueError):
    """A line that does not fit the layout (the caller adds file and line)."""


def parse_ofctl_show(text: str, file: str, *, lenient: bool = False) -> OfctlShow:
    """Parse a whole ``ovs-ofctl show`` output.

    Raises SnapshotError naming file, line and text for a line that does not
    fit, unless ``lenient``; then the line is returned in ``skipped`` instead.
    """
    dpid: str | None = None
    version: str | None = None
    ports: list[_Port] = []
    skipped: list[Skipped] = []
    current: _Port | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip()
        if not line:
            continue
        try:
            header = _header(line)
            if header is not None:
                current = None
                if "dpid" in header.re.groupindex:
                    if dpid is not None:
                        raise _LineError("a second OFPT_FEATURES_REPLY (one ovs-ofctl show output per file)")
                    dpid = header.group("dpid").lower()
                    version = header.group("version") or "OF1.0"
                continue
            port = _PORT.fullmatch(line)
            if port is not None:
                current = _new_port(port, number, ports)
                ports.append(current)
                continue
            prop = _PROPERTY.fullmatch(line)
            if prop is None:
                raise _LineError("not an ovs-ofctl show line")
            if current is None:
                raise _LineError(f"{prop.group('key')}: line outside a port block")
            _property(current, prop.group("key"), prop.group("value"))
        except _LineError as exc:
            if not lenient:
                raise SnapshotError(f"{file}:{number}", str(exc), line.strip()) from exc
            skipped.append(Skipped(file, number, line.strip(), str(exc)))
    finished = tuple(_finish(p, file, lenient, skipped) for p in ports)
    return OfctlShow(dpid, finished, version, tuple(skipped))


def _header(line: str) -> re.Match[str] | None:
    for pattern in _HEADERS:
        match = pattern.fullmatch(line)
        if match is not None:
            return match
    return None


def _new_port(match: re.Match[str], line: int, ports: list[_Port]) -> _Port:
    text = match.group("number")
    number = OFPP_LOCAL if text == "LOCAL" else int(text)
    if number > 0xFFFF:
        raise _LineError(f"port number {number} is out of range")
    name = match.group("name")
    for other in ports:
        if other.number == number or other.name == name:
            raise _LineError(f"port {text}({name}) clashes with the port at line {other.line}")
    mac = match.group("mac").lower()
    return _Port(number, name, None if mac == NO_MAC else mac, line)


def _property(port: _Port, key: str, value: str) -> None:
    if key in port.seen:
        raise _LineError(f"{key}: given twice for port {port.name!r}")
    port.seen.add(key)
    if key in ("config", "state"):
        flags = () if value == "0" else tuple(value.split())
        if (not flags and value != "0") or not all(_FLAG.fullmatch(f) for f in flags):
            raise _LineError(f"expected {key} flags like PORT_DOWN or 0")
        if key == "state":
            flags = tuple(f for f in flags if f != "LIVE")
        setattr(port, key, flags)
    elif key not in _IGNORED_PROPERTIES:
        raise _LineError(f"unknown port property {key!r}")


def _finish(port: _Port, file: str, lenient: bool, skipped: list[Skipped]) -> OFPort:
    missing = [k for k in ("config", "state") if k not in port.seen]
    if missing:
        problem = f"port has no {' and no '.join(missing)} line"
        text = f"{port.number}({port.name})"
        if not lenient:
            raise SnapshotError(f"{file}:{port.line}", problem, text)
        skipped.append(Skipped(file, port.line, text, f"{problem}: read as no flags"))
    return OFPort(port.number, port.name, port.mac, port.config or (), port.state or ())


def format_ofctl_show(bridge_name: str, dpid: str, of_ports: tuple[OFPort, ...] | list[OFPort]) -> str:
    """The ``ovs-ofctl show`` text OVS 3.1 prints (OpenFlow 1.0), ports in number order.

    A port without a MAC is printed with address 00:00:00:00:00:00.  Raises
    ValueError for a malformed ``dpid`` or a LOCAL port not named after the bridge.
    """
    if not re.fullmatch(r"[0-9a-f]{16}", dpid):
        raise ValueError(f"dpid must be 16 lower-case hex digits: {dpid!r}")
    lines = [
        f"OFPT_FEATURES_REPLY (xid=0x2): dpid:{dpid}",
        "n_tables:254, n_buffers:0",
        "capabilities: FLOW_STATS TABLE_STATS PORT_STATS QUEUE_STATS ARP_MATCH_IP",
        "actions: output enqueue set_vlan_vid set_vlan_pcp strip_vlan mod_dl_src mod_dl_dst "
        "mod_nw_src mod_nw_dst mod_nw_tos mod_tp_src mod_tp_dst",
    ]
    for port in sorted(of_ports, key=lambda p: p.number):
        if port.number == OFPP_LOCAL and port.name != bridge_name:
            raise ValueError(f"LOCAL port of bridge {bridge_name!r} is named {port.name!r}")
        number = "LOCAL" if port.number == OFPP_LOCAL else str(port.number)
        lines += [
            f" {number}({port.name}): addr:{port.mac or NO_MAC}",
            f"     config:     {' '.join(port.config) or '0'}",
            f"     state:      {' '.join(port.state) or '0'}",
            "     speed: 0 Mbps now, 0 Mbps max",
        ]
    lines.append("OFPT_GET_CONFIG_REPLY (xid=0x4): frags=normal miss_send_len=0")
    return "\n".join(lines) + "\n"
