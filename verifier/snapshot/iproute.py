"""``ip route`` (iproute2 ``ip route show``) text to routes, and back.

Every iproute2 release from 3.x to 6.x prints one line per route:
``[TYPE] PREFIX [nhid N] [via [inet|inet6] GW] [dev DEV] [table T] [proto P]
[scope S] [src ADDR] [metric M] [dead] [onlink] [linkdown] [pref P]``, with
single (6.x) or double (3.x) spaces.  A multipath (ECMP) route is a line
without ``via``/``dev`` followed by tab-indented ``nexthop via GW dev DEV
weight W [dead] [onlink] [linkdown]`` lines; ``ip -o route`` and some older
releases put the next hops on the route's own line instead (separated by
``\\``), which reads the same.

A host route without a prefix length is stored as ``/32`` (``/128``), and
``0.0.0.0/0`` as ``default``.  ``pref``, ``expires``, ``nhid`` and ``mtu``
describe how the route was learned or cached, not where packets go, and are
not kept.  Any other keyword is an error naming the file, line and text;
under ``lenient`` the route (with its next-hop lines) is skipped instead and
every one of its lines is listed.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from verifier.errors import SnapshotError
from verifier.ir import Provenance, Skipped
from verifier.linux import NextHop, Route

ROUTE_TYPES = frozenset(
    {"unicast", "local", "broadcast", "blackhole", "unreachable", "prohibit", "throw", "anycast", "multicast"}
)
_VALUED = ("via", "dev", "table", "proto", "scope", "src", "metric")
_FLAGS = ("dead", "onlink", "linkdown")
_IGNORED = {"pref": 1, "expires": 1, "nhid": 1}
_MAX_U32 = 0xFFFFFFFF


class _LineError(ValueError):
    """A line that does not fit the layout; ``line`` is its number (the caller adds the file)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class _Block:
    """A route's head line and its indented ``nexthop`` lines, as (number, text) pairs."""

    lines: list[tuple[int, str]] = field(default_factory=list)


def parse_ip_route(
    text: str, file: str, *, lenient: bool = False, skipped: list[Skipped] | None = None
) -> tuple[Route, ...]:
    """Parse a whole ``ip route`` output into routes, in file order.

    Raises SnapshotError naming file, line and text for a line that does not
    fit, unless ``lenient``: then the route it belongs to is left out and
    its lines are appended to ``skipped`` (which lenient parsing requires).
    """
    if lenient and skipped is None:
        raise ValueError("lenient parsing needs a list to report the skipped lines in")
    routes: list[Route] = []
    for block in _blocks(text):
        try:
            routes.append(_route(block, file))
        except _LineError as exc:
            bad = dict(block.lines)[exc.line]
            if not lenient:
                raise SnapshotError(f"{file}:{exc.line}", str(exc), bad) from exc
            assert skipped is not None
            head = block.lines[0][0]
            for number, line in block.lines:
                reason = str(exc) if number == exc.line else f"belongs to the route at line {head}, skipped"
                skipped.append(Skipped(file, number, line, reason))
    return tuple(routes)


def _blocks(text: str) -> list[_Block]:
    """Group lines: each unindented line starts a block; indented ``nexthop`` lines join the last one."""
    blocks: list[_Block] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip()
        if not line.strip():
            continue
        words = line.split()
        if line[0].isspace() and words[0] == "nexthop" and blocks:
            blocks[-1].lines.append((number, line.strip()))
        else:
            blocks.append(_Block([(number, line.strip())]))
    return blocks


def _route(block: _Block, file: str) -> Route:
    """One route from its head line and next-hop lines."""
    head_number, head = block.lines[0]
    if head.split()[0] == "nexthop":
        raise _LineError("a nexthop line must follow the route it belongs to", head_number)
    words = [w for w in head.split() if w != "\\"]
    split = words.index("nexthop") if "nexthop" in words else len(words)
    hop_groups = [(head_number, words[split:])] if split < len(words) else []
    hop_groups += [(number, line.split()) for number, line in block.lines[1:]]
    kind = "unicast"
    rest = words[:split]
    if rest[0] in ROUTE_TYPES:
        kind, rest = rest[0], rest[1:]
    if not rest:
        raise _LineError("route has no destination", head_number)
    destination, version = _destination(rest[0], head_number)
    attrs, flags = _keywords(rest[1:], head_number, _VALUED, _FLAGS)
    nexthops = tuple(hop for number, group in hop_groups for hop in _nexthops(group, number))
    if nexthops and ("via" in attrs or "dev" in attrs):
        raise _LineError("a multipath route has no gateway or device of its own", head_number)
    if kind == "unicast" and not nexthops and "dev" not in attrs:
        raise _LineError("route has neither a device nor next hops", head_number)
    metric = attrs.get("metric")
    return Route(
        destination=destination,
        gateway=_gateway(attrs["via"], head_number) if "via" in attrs else None,
        device=attrs.get("dev"),
        nexthops=nexthops,
        kind=kind,
        table=attrs.get("table", "main"),
        metric=_number(metric, "metric", head_number, 0, _MAX_U32) if metric is not None else None,
        scope=attrs.get("scope"),
        source=_address(attrs["src"], "src", head_number, version) if "src" in attrs else None,
        proto=attrs.get("proto"),
        onlink="onlink" in flags,
        dead="dead" in flags,
        linkdown="linkdown" in flags,
        provenance=Provenance(file, head_number, head),
    )


def _destination(text: str, line: int) -> tuple[str, int | None]:
    """``default`` or the network in CIDR form, with its IP version (None for ``default``)."""
    if text == "default":
        return "default", None
    try:
        net = ipaddress.ip_network(text)
    except ValueError as exc:
        raise _LineError(f"bad destination {text!r} (expected 'default' or a network)", line) from exc
    if net.prefixlen == 0:
        return "default", net.version
    return str(net), net.version


def _keywords(
    words: list[str], line: int, valued: tuple[str, ...], flags: tuple[str, ...]
) -> tuple[dict[str, str], set[str]]:
    """``keyword value`` pairs and bare flags; ``via`` may carry an ``inet``/``inet6`` family word."""
    attrs: dict[str, str] = {}
    seen: set[str] = set()
    i = 0
    while i < len(words):
        word = words[i]
        if word in seen:
            raise _LineError(f"{word!r} given twice", line)
        seen.add(word)
        if word in flags:
            i += 1
            continue
        if word == "mtu" and i + 1 < len(words) and words[i + 1] == "lock":
            i += 1
        if word in valued or word in _IGNORED or word == "mtu":
            if i + 1 >= len(words):
                raise _LineError(f"{word!r} without a value", line)
            value = words[i + 1]
            if word == "via" and value in ("inet", "inet6") and i + 2 < len(words):
                i += 1
                value = words[i + 1]
            if word in valued:
                attrs[word] = value
            i += 2
            continue
        raise _LineError(f"unknown ip route keyword {word!r}", line)
    return attrs, seen & set(flags)


def _nexthops(words: list[str], line: int) -> list[NextHop]:
    """The ``nexthop ...`` groups of one line (one per line, or several in the one-line form)."""
    hops: list[NextHop] = []
    starts = [i for i, w in enumerate(words) if w == "nexthop"] + [len(words)]
    for start, end in itertools.pairwise(starts):
        attrs, flags = _keywords(words[start + 1 : end], line, ("via", "dev", "weight"), _FLAGS)
        if "dev" not in attrs and "via" not in attrs:
            raise _LineError("nexthop has neither a gateway nor a device", line)
        weight = attrs.get("weight")
        hops.append(
            NextHop(
                gateway=_gateway(attrs["via"], line) if "via" in attrs else None,
                device=attrs.get("dev"),
                weight=_number(weight, "weight", line, 1, 256) if weight is not None else 1,
                onlink="onlink" in flags,
                dead="dead" in flags,
                linkdown="linkdown" in flags,
            )
        )
    return hops


def _gateway(text: str, line: int) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError as exc:
        raise _LineError(f"bad gateway address {text!r}", line) from exc


def _address(text: str, what: str, line: int, version: int | None) -> str:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError as exc:
        raise _LineError(f"bad {what} address {text!r}", line) from exc
    if version is not None and ip.version != version:
        raise _LineError(f"{what} address {text!r} is not IPv{version} like the destination", line)
    return str(ip)


def _number(text: str, what: str, line: int, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise _LineError(f"bad {what} {text!r} (expected {low} to {high})", line)
    return int(text)


# ---------------------------------------------------------------- writer


def format_ip_route(routes: Iterable[Route]) -> str:
    """``ip route`` text (iproute2 6.1 layout, trailing space included) for these routes, in order.

    Raises ValueError for a route that ``ip route`` could not print (a
    multipath route with its own gateway or device).
    """
    out: list[str] = []
    for route in routes:
        if route.nexthops and (route.gateway or route.device):
            raise ValueError(f"route {route.destination}: a multipath route has no gateway or device of its own")
        words = [] if route.kind == "unicast" else [route.kind]
        words.append(_format_destination(route.destination))
        if route.gateway is not None:
            words += ["via", *_format_gateway(route.gateway, route.destination)]
        if route.device is not None:
            words += ["dev", route.device]
        if route.table != "main":
            words += ["table", route.table]
        for key, value in (("proto", route.proto), ("scope", route.scope), ("src", route.source)):
            if value is not None:
                words += [key, value]
        if route.metric is not None:
            words += ["metric", str(route.metric)]
        words += _format_flags(route.dead, route.onlink, route.linkdown)
        out.append(" ".join(words) + " ")
        for hop in route.nexthops:
            nh = ["nexthop"]
            if hop.gateway is not None:
                nh += ["via", *_format_gateway(hop.gateway, route.destination)]
            if hop.device is not None:
                nh += ["dev", hop.device]
            nh += ["weight", str(hop.weight), *_format_flags(hop.dead, hop.onlink, hop.linkdown)]
            out.append("\t" + " ".join(nh) + " ")
    return "".join(line + "\n" for line in out)


def _format_destination(destination: str) -> str:
    if destination == "default":
        return destination
    net = ipaddress.ip_network(destination)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def _format_gateway(gateway: str, destination: str) -> list[str]:
    """``GW``, or ``inet6 GW`` for a gateway of the other family (an IPv4 route via an IPv6 next hop)."""
    ip = ipaddress.ip_address(gateway)
    if destination == "default" or ip.version == ipaddress.ip_network(destination).version:
        return [str(ip)]
    return ["inet6" if ip.version == 6 else "inet", str(ip)]


def _format_flags(dead: bool, onlink: bool, linkdown: bool) -> list[str]:
    return [name for name, on in (("dead", dead), ("onlink", onlink), ("linkdown", linkdown)) if on]
