"""iptables matches read into the typed IR: the basic options (``-s -d -i -o -p``) and match modules (``-m``).

``basic`` reads one basic option, ``module`` one ``-m NAME ...`` instance
(or the options an implied protocol module takes after ``-p tcp``).  A
module the models know gives typed matches; a module they do not know, or a
known module with an option they do not know, gives one MatchUnsupported
holding the instance's text as written, so nothing is dropped.  A known
option with a value iptables could not have printed is a RuleError.
``iptables_print`` prints them back.
"""

from __future__ import annotations

import ipaddress
import re

from verifier.linux import (
    Match,
    MatchAddress,
    MatchComment,
    MatchIcmp,
    MatchInterface,
    MatchMac,
    MatchMark,
    MatchPhysdev,
    MatchPorts,
    MatchProtocol,
    MatchSet,
    MatchState,
    MatchUnsupported,
)
from verifier.snapshot.iptables_names import (
    CT_STATES,
    ICMP_TYPES,
    ICMPV6_TYPES,
    PROTOCOL_NUMBERS,
)
from verifier.snapshot.iptables_text import MAX_U32, Option, RuleError, Unsupported, value_mask

BASIC = {
    "-s": "-s", "--source": "-s", "--src": "-s",
    "-d": "-d", "--destination": "-d", "--dst": "-d",
    "-i": "-i", "--in-interface": "-i",
    "-o": "-o", "--out-interface": "-o",
    "-p": "-p", "--protocol": "-p",
}  # fmt: skip
"""Basic option spellings to the short form iptables-save prints."""

IMPLIED_OPTIONS: dict[str, frozenset[str]] = {
    "tcp": frozenset(
        {"--sport", "--source-port", "--dport", "--destination-port", "--tcp-flags", "--syn", "--tcp-option"}
    ),
    "udp": frozenset({"--sport", "--source-port", "--dport", "--destination-port"}),
    "sctp": frozenset({"--sport", "--source-port", "--dport", "--destination-port", "--chunk-types"}),
    "icmp": frozenset({"--icmp-type"}),
    "icmp6": frozenset({"--icmpv6-type"}),
}
"""Options that load their protocol's module without ``-m`` (``-p tcp --dport 80``)."""

_SPORT = frozenset({"--sport", "--source-port"})
_DPORT = frozenset({"--dport", "--destination-port"})
_MULTIPORT = {
    "--sports": "src", "--source-ports": "src",
    "--dports": "dst", "--destination-ports": "dst",
    "--ports": "any",
}  # fmt: skip
_PHYSDEV = ("--physdev-in", "--physdev-out", "--physdev-is-in", "--physdev-is-out", "--physdev-is-bridged")
_MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")


# ---------------------------------------------------------------- reading


def basic(option: Option, family: int) -> Match | None:
    """One of ``-s -d -i -o -p`` (None: it matches every packet, as ``-p all`` or ``-s 0.0.0.0/0``).

    Raises Unsupported for what the models cannot express (a non-contiguous
    netmask, ``! -p all``).
    """
    short = BASIC[option.name]
    text = option.value()
    if short in ("-s", "-d"):
        network = _network(text, family)
        if network is None:
            raise Unsupported(option.text)
        if network.prefixlen == 0 and not option.negated:
            return None
        return MatchAddress("src" if short == "-s" else "dst", str(network), option.negated)
    if short in ("-i", "-o"):
        if not text or len(text) > 15 or "/" in text:
            raise RuleError(f"bad interface name {text!r}")
        return MatchInterface("in" if short == "-i" else "out", text, option.negated)
    number = protocol_number(text)
    if number is None:
        if option.negated:
            raise Unsupported(option.text)  # '! -p all' matches nothing
        return None
    return MatchProtocol(number, option.negated)


def protocol_number(text: str) -> int | None:
    """The protocol a ``-p`` value names (None for ``all``/``0``)."""
    name = text.lower()
    if name in ("all", "0"):
        return None
    if name.isdigit() and int(name) <= 255:
        return int(name)
    if name in PROTOCOL_NUMBERS:
        return PROTOCOL_NUMBERS[name]
    raise RuleError(f"unknown protocol {text!r}")


def _network(text: str, family: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """An address with an optional prefix length or (IPv4) dotted netmask; None for a non-contiguous mask."""
    address, slash, mask = text.partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as exc:
        raise RuleError(f"bad address {text!r}") from exc
    if ip.version != family:
        raise RuleError(f"{text!r} is not an IPv{family} address")
    if not slash:
        return ipaddress.ip_network(ip)
    if mask.isdigit() and int(mask) <= ip.max_prefixlen:
        return ipaddress.ip_network(f"{ip}/{mask}", strict=False)
    try:
        bits = int(ipaddress.IPv4Address(mask)) if family == 4 else -1
    except ValueError:
        bits = -1
    if bits < 0:
        raise RuleError(f"bad netmask in {text!r}")
    inverse = ~bits & MAX_U32
    if inverse & (inverse + 1):
        return None
    return ipaddress.ip_network(f"{ip}/{32 - inverse.bit_length()}", strict=False)


def module(name: str, opts: list[Option], text: str, family: int) -> list[Match]:
    """The matches of one module instance; one MatchUnsupported(text) when the models do not know it."""
    reader = _MODULES.get(name)
    try:
        if reader is None:
            raise Unsupported(text)
        names = [o.name for o in opts]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise RuleError(f"-m {name}: {twice[0]} given twice")
        return reader(opts, family)
    except Unsupported:
        return [MatchUnsupported(text)]


def _only(opts: list[Option], allowed: set[str] | frozenset[str]) -> dict[str, Option]:
    """The options by name; any other option makes the instance unsupported."""
    if any(o.name not in allowed for o in opts):
        raise Unsupported()
    return {o.name: o for o in opts}


def _ports(opts: list[Option], family: int) -> list[Match]:
    found = _only(opts, _SPORT | _DPORT)
    out: list[Match] = []
    for direction, spellings in (("src", _SPORT), ("dst", _DPORT)):
        given = [found[s] for s in sorted(spellings) if s in found]
        if len(given) > 1:
            raise RuleError(f"{direction} port given twice")
        if given:
            out.append(MatchPorts(direction, (_port_range(given[0].value()),), given[0].negated))
    return out


def _port_range(text: str) -> tuple[int, int]:
    """``p``, ``p:q``, ``:q`` (from 0) or ``p:`` (to 65535)."""
    low, colon, high = text.partition(":")
    if not colon:
        port = _port(low, text)
        return port, port
    lo, hi = _port(low or "0", text), _port(high or "65535", text)
    if lo > hi:
        raise RuleError(f"bad port range {text!r} (first port above the last)")
    return lo, hi


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise RuleError(f"bad port {whole!r}")
    return int(text)


def _multiport(opts: list[Option], family: int) -> list[Match]:
    found = _only(opts, set(_MULTIPORT))
    if len(found) != 1:
        raise RuleError("-m multiport takes exactly one of --sports, --dports, --ports")
    (opt,) = found.values()
    ranges = tuple(_port_range(item) for item in opt.value().split(","))
    return [MatchPorts(_MULTIPORT[opt.name], ranges, opt.negated, multiport=True)]


def _icmp(opts: list[Option], family: int) -> list[Match]:
    return _icmp_type(_only(opts, {"--icmp-type"}).get("--icmp-type"), ICMP_TYPES, v6=False)


def _icmp6(opts: list[Option], family: int) -> list[Match]:
    return _icmp_type(_only(opts, {"--icmpv6-type"}).get("--icmpv6-type"), ICMPV6_TYPES, v6=True)


def _icmp_type(opt: Option | None, names: dict[str, tuple[int, int | None] | None], *, v6: bool) -> list[Match]:
    if opt is None:
        return []
    text = opt.value()
    if text in names:
        known = names[text]
        if known is None:
            if opt.negated:
                raise Unsupported()  # '! --icmp-type any' matches nothing
            return []
        return [MatchIcmp(known[0], known[1], v6, opt.negated)]
    kind, slash, code = text.partition("/")
    if not kind.isdigit() or int(kind) > 255 or (slash and (not code.isdigit() or int(code) > 255)):
        raise RuleError(f"bad ICMP type {text!r}")
    return [MatchIcmp(int(kind), int(code) if slash else None, v6, opt.negated)]


def _physdev(opts: list[Option], family: int) -> list[Match]:
    found = _only(opts, set(_PHYSDEV))
    if not found:
        raise RuleError("-m physdev without an option")

    def port(name: str) -> tuple[str, bool] | None:
        opt = found.get(name)
        return None if opt is None else (opt.value(), opt.negated)

    def flag(name: str) -> tuple[bool, bool] | None:
        opt = found.get(name)
        if opt is None:
            return None
        opt.flag()
        return True, opt.negated

    return [
        MatchPhysdev(
            physdev_in=port("--physdev-in"),
            physdev_out=port("--physdev-out"),
            is_bridged=flag("--physdev-is-bridged"),
            is_in=flag("--physdev-is-in"),
            is_out=flag("--physdev-is-out"),
        )
    ]


def _mac(opts: list[Option], family: int) -> list[Match]:
    opt = _only(opts, {"--mac-source"}).get("--mac-source")
    if opt is None:
        raise RuleError("-m mac without --mac-source")
    if not _MAC.fullmatch(opt.value()):
        raise RuleError(f"bad MAC address {opt.value()!r}")
    return [MatchMac(opt.value().lower(), opt.negated)]


def _set(opts: list[Option], family: int) -> list[Match]:
    opt = _only(opts, {"--match-set"}).get("--match-set")
    if opt is None:
        raise RuleError("-m set without --match-set")
    if len(opt.values) != 2:
        raise RuleError("--match-set takes a set name and src/dst flags")
    flags = tuple(opt.values[1].value.split(","))
    if not 1 <= len(flags) <= 6 or any(f not in ("src", "dst") for f in flags):
        raise RuleError(f"bad --match-set flags {opt.values[1].value!r} (expected src/dst, comma-separated)")
    return [MatchSet(opt.values[0].value, flags, opt.negated)]


def _states(opt: Option, allowed: tuple[str, ...]) -> frozenset[str]:
    states = [s.upper() for s in opt.value().split(",")]
    for s in states:
        if s not in allowed:
            raise RuleError(f"unknown conntrack state {s!r}")
    return frozenset(states)


def _state(opts: list[Option], family: int) -> list[Match]:
    opt = _only(opts, {"--state"}).get("--state")
    if opt is None:
        raise RuleError("-m state without --state")
    return [MatchState(_states(opt, CT_STATES[:5]), opt.negated)]


def _conntrack(opts: list[Option], family: int) -> list[Match]:
    opt = _only(opts, {"--ctstate"}).get("--ctstate")
    if opt is None:
        raise Unsupported()  # only conntrack options other than --ctstate, or none
    return [MatchState(_states(opt, CT_STATES), opt.negated, conntrack=True)]


def _mark(opts: list[Option], family: int, connection: bool = False) -> list[Match]:
    opt = _only(opts, {"--mark"}).get("--mark")
    if opt is None:
        raise RuleError("mark match without --mark")
    value, mask = value_mask(opt.value(), "mark")
    return [MatchMark(value, mask, connection, opt.negated)]


def _connmark(opts: list[Option], family: int) -> list[Match]:
    return _mark(opts, family, connection=True)


def _comment(opts: list[Option], family: int) -> list[Match]:
    opt = _only(opts, {"--comment"}).get("--comment")
    if opt is None or opt.negated:
        raise RuleError("-m comment takes one --comment")
    return [MatchComment(opt.value())]


_MODULES = {
    "tcp": _ports,
    "udp": _ports,
    "sctp": _ports,
    "multiport": _multiport,
    "icmp": _icmp,
    "icmp6": _icmp6,
    "physdev": _physdev,
    "mac": _mac,
    "set": _set,
    "state": _state,
    "conntrack": _conntrack,
    "mark": _mark,
    "connmark": _connmark,
    "comment": _comment,
}
