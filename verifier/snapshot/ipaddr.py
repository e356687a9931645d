"""``ip addr`` (iproute2 ``ip address show``) text to links and addresses, and back.

Every iproute2 release prints one header per link, ``N: name[@peer]: <FLAGS>
mtu M qdisc Q [master B] state S ...``, then indented lines: ``link/<type>
[MAC brd MAC ...]``, ``inet``/``inet6 ADDR/LEN [peer P/LEN] ... scope ...``,
``valid_lft ...`` and (newer releases) ``altname X``.  Header attributes
other than mtu, master and state are not kept; any other indented line is an
error naming the file, line and text (a skipped line under ``lenient``).

A point-to-point ``inet LOCAL peer PEER/LEN`` is read as LOCAL/LEN.  The text
after ``@`` in a link name is the link's peer (``qvb1@qvo1``, ``eth0@if12``).
Links are ``verifier.linux.Link`` objects (``kind`` is the ``link/<kind>`` word).

The writer prints a link's unknown attributes (index 0, no mtu, state or
``link/`` line) by leaving them out, so every ``Link`` reads back equal.  An
interface that the IR knows only by its addresses gets a bare header
(``0: eth0: <> qdisc noqueue group default qlen 1000``), which real systems
never print (the kernel numbers links from 1 and always shows a state and a
``link/`` line); the parser reads a bare header that has addresses as those
addresses alone, without a ``Link``, so ``parse(format(x)) == x`` also holds
for hosts whose links are not modelled.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from verifier.errors import SnapshotError
from verifier.ir import Address, Skipped
from verifier.linux import Link

_HEADER = re.compile(r"(?P<index>\d+): (?P<name>[^\s:@]+)(?:@(?P<peer>[^\s:]+))?: <(?P<flags>[^>]*)>(?P<rest>.*)")
_MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")
_HARMLESS = frozenset({"valid_lft", "altname"})


@dataclass(frozen=True)
class IpAddr:
    """One parsed ``ip addr`` output: links in file order (bare address-only headers left out) and their addresses."""

    links: tuple[Link, ...]
    addresses: tuple[Address, ...]
    skipped: tuple[Skipped, ...] = ()


class _LineError(ValueError):
    """A line that does not fit the layout (the caller adds file and line)."""


def parse_ip_addr(text: str, file: str, *, lenient: bool = False) -> IpAddr:
    """Parse a whole ``ip addr`` output.

    Raises SnapshotError naming file, line and text for a line that does not
    fit, unless ``lenient``; then the line is returned in ``skipped`` instead
    (with the lines of a skipped link header).
    """
    links: list[Link] = []
    addresses: list[Address] = []
    skipped: list[Skipped] = []
    current: Link | None = None
    skipping_link: int | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip()
        if not line:
            continue
        indented = line[0].isspace()
        if indented and skipping_link is not None:
            skipped.append(Skipped(file, number, line.strip(), f"belongs to the link skipped at line {skipping_link}"))
            continue
        skipping_link = None
        try:
            if not indented:
                current = _header(line, links)
                links.append(current)
                continue
            if current is None:
                raise _LineError("indented line before the first link header")
            updated = _detail(line.split(), current, addresses)
            if updated is not current:
                links[-1] = current = updated
        except _LineError as exc:
            if not lenient:
                raise SnapshotError(f"{file}:{number}", str(exc), line.strip()) from exc
            skipped.append(Skipped(file, number, line.strip(), str(exc)))
            if not indented:
                current = None
                skipping_link = number
    addressed = {a.interface for a in addresses}
    real = tuple(link for link in links if link != Link(link.name) or link.name not in addressed)
    return IpAddr(real, tuple(addresses), tuple(skipped))


def _header(line: str, links: list[Link]) -> Link:
    match = _HEADER.fullmatch(line)
    if match is None:
        raise _LineError("expected a link header like '2: eth0: <BROADCAST,UP> mtu 1500 ...'")
    name = match.group("name")
    if any(link.name == name for link in links):
        raise _LineError(f"link {name!r} listed twice")
    words = match.group("rest").split()
    attrs = {w: words[i + 1] for i, w in enumerate(words[:-1]) if w in ("mtu", "state", "master")}
    mtu = attrs.get("mtu")
    if mtu is not None and not mtu.isdigit():
        raise _LineError(f"bad mtu {mtu!r}")
    return Link(
        name=name,
        index=int(match.group("index")),
        flags=tuple(f for f in match.group("flags").split(",") if f),
        mtu=int(mtu) if mtu is not None else None,
        state=attrs.get("state"),
        master=attrs.get("master"),
        peer=match.group("peer"),
    )


def _detail(words: list[str], link: Link, addresses: list[Address]) -> Link:
    """Apply one indented line to ``link``; returns the (possibly updated) link."""
    head = words[0]
    if head.startswith("link/"):
        if link.kind is not None:
            raise _LineError(f"second link/ line for {link.name!r}")
        mac = words[1].lower() if len(words) > 1 and _MAC.fullmatch(words[1]) else None
        return replace(link, kind=head[5:], mac=mac)
    if head in ("inet", "inet6"):
        addresses.append(_address(words, link.name, 4 if head == "inet" else 6))
        return link
    if head in _HARMLESS:
        return link
    raise _LineError(f"unknown ip addr line {head!r} (was the output made with 'ip -d' or 'ip -o'?)")


def _address(words: list[str], interface: str, version: int) -> Address:
    if len(words) < 2:
        raise _LineError("address missing")
    text = words[1]
    if len(words) > 3 and words[2] == "peer":
        # Point-to-point: 'inet LOCAL peer PEER/LEN'; the length belongs to the peer.
        local, _, plen = text, "", words[3].partition("/")[2]
        if "/" in local:
            raise _LineError("local address of a peer pair has a prefix length")
    else:
        local, _, plen = text.partition("/")
    try:
        ip = ipaddress.ip_address(local)
    except ValueError as exc:
        raise _LineError(f"bad IPv{version} address {local!r}") from exc
    if ip.version != version:
        raise _LineError(f"{local!r} is not an IPv{version} address")
    if not plen.isdigit() or int(plen) > ip.max_prefixlen:
        raise _LineError(f"bad or missing prefix length in {text!r}")
    return Address(interface, str(ip), int(plen))


def format_ip_addr(addresses: Iterable[Address], links: Iterable[Link] = ()) -> str:
    """``ip addr`` text (iproute2 6.x layout) for these links and addresses.

    Links are printed in the order given, then one bare header (``Link(name)``)
    per other interface that has addresses, in order of first appearance.  An
    interface's addresses keep their relative order.
    """
    by_name: dict[str, list[Address]] = {}
    for a in addresses:
        by_name.setdefault(a.interface, []).append(a)
    all_links = list(links)
    known = {link.name for link in all_links}
    for name in by_name:
        if name not in known:
            all_links.append(Link(name))
    out: list[str] = []
    for link in all_links:
        out += _format_link(link, by_name.get(link.name, []))
    return "".join(line + "\n" for line in out)


def _format_link(link: Link, addresses: list[Address]) -> list[str]:
    name = f"{link.name}@{link.peer}" if link.peer else link.name
    header = f"{link.index}: {name}: <{','.join(link.flags)}>"
    if link.mtu is not None:
        header += f" mtu {link.mtu}"
    header += " qdisc noqueue"
    if link.master:
        header += f" master {link.master}"
    if link.state is not None:
        header += f" state {link.state}"
    header += " group default qlen 1000"
    lines = [header]
    if link.kind == "none":
        lines.append("    link/none ")
    elif link.kind is not None and link.mac is None:
        lines.append(f"    link/{link.kind}")
    elif link.kind is not None:
        brd = "00:00:00:00:00:00" if link.kind == "loopback" else "ff:ff:ff:ff:ff:ff"
        lines.append(f"    link/{link.kind} {link.mac} brd {brd}")
    for a in addresses:
        ip = ipaddress.ip_address(a.address)
        scope = "host" if ip.is_loopback else "link" if ip.is_link_local else "global"
        if ip.version == 4:
            lines.append(f"    inet {ip}/{a.prefixlen} scope {scope} {link.name}")
        else:
            lines.append(f"    inet6 {ip}/{a.prefixlen} scope {scope} ")
        lines.append("       valid_lft forever preferred_lft forever")
    return lines
