"""One iptables rule printed as iptables-save 1.8 prints it.

The basic options come first in the order ``-s -d -i -o -p``, then the other
matches in order (a ``--sport`` followed by a ``--dport`` share one ``-m tcp``,
as iptables-save writes them), then ``-j``/``-g`` with the target's options
in iptables-save's order.  Texts the reader kept verbatim (MatchUnsupported,
NoEffect, TargetUnsupported) are printed as they are.
"""

from __future__ import annotations

import ipaddress

from verifier.linux import (
    ConnMark,
    Conntrack,
    Jump,
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
    Nat,
    NoEffect,
    Rule,
    SetMark,
    Target,
    TargetUnsupported,
    Verdict,
)
from verifier.snapshot.iptables_names import CT_STATES, PORT_MODULES, PROTOCOLS
from verifier.snapshot.iptables_text import MAX_U32, hex_mask, save_string

_BASIC = (MatchAddress, MatchInterface, MatchProtocol)


def format_rule(chain: str, rule: Rule) -> str:
    """``-A CHAIN MATCHES [-j TARGET]``; ValueError for a rule iptables could not hold."""
    if rule.chain != chain:
        raise ValueError(f"rule of chain {rule.chain!r} listed in chain {chain!r}")
    words = ["-A", chain, *format_matches(rule.matches)]
    if rule.target is not None:
        words.append(format_target(rule.target))
    line = " ".join(words)
    if "\n" in line or "\r" in line:
        raise ValueError(f"rule of chain {chain!r} holds a line break")
    return line


def format_matches(matches: tuple[Match, ...]) -> list[str]:
    """The matches of one rule as iptables-save prints them (one string per option group)."""
    basics = sorted((m for m in matches if isinstance(m, _BASIC)), key=_basic_key)
    rest = [m for m in matches if not isinstance(m, _BASIC)]
    protocol = next((m.protocol for m in basics if isinstance(m, MatchProtocol) and not m.negated), None)
    out = [_format_basic(m) for m in basics]
    i = 0
    while i < len(rest):
        m = rest[i]
        nxt = rest[i + 1] if i + 1 < len(rest) else None
        if (
            isinstance(m, MatchPorts)
            and isinstance(nxt, MatchPorts)
            and _single(m)
            and _single(nxt)
            and (m.direction, nxt.direction) == ("src", "dst")
        ):
            out.append(f"{_port_module(protocol)} {_port_option(m)} {_port_option(nxt)}")
            i += 2
            continue
        out.append(_format_match(m, protocol))
        i += 1
    return out


def _basic_key(m: Match) -> tuple[int, int]:
    if isinstance(m, MatchAddress):
        return 0, 0 if m.direction == "src" else 1
    if isinstance(m, MatchInterface):
        return 1, 0 if m.direction == "in" else 1
    return 2, 0


def _bang(negated: bool) -> str:
    return "! " if negated else ""


def _format_basic(m: Match) -> str:
    if isinstance(m, MatchAddress):
        return f"{_bang(m.negated)}-{m.direction[0]} {ipaddress.ip_network(m.network)}"
    if isinstance(m, MatchInterface):
        return f"{_bang(m.negated)}-{m.direction[0]} {m.name}"
    assert isinstance(m, MatchProtocol)
    return f"{_bang(m.negated)}-p {PROTOCOLS.get(m.protocol, str(m.protocol))}"


def _single(m: MatchPorts) -> bool:
    """Printed with the protocol's own module (``--sport``/``--dport``) rather than multiport."""
    return not m.multiport and m.direction != "any" and len(m.ranges) == 1


def _port_module(protocol: int | None) -> str:
    if protocol not in PORT_MODULES:
        raise ValueError("a port match needs '-p tcp', '-p udp' or '-p sctp' in the same rule")
    return f"-m {PORT_MODULES[protocol]}"


def _range(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}:{hi}"


def _port_option(m: MatchPorts) -> str:
    return f"{_bang(m.negated)}--{m.direction[0]}port {_range(*m.ranges[0])}"


def _format_match(m: Match, protocol: int | None) -> str:
    if isinstance(m, MatchPorts):
        if _single(m):
            return f"{_port_module(protocol)} {_port_option(m)}"
        option = {"src": "--sports", "dst": "--dports", "any": "--ports"}[m.direction]
        return f"-m multiport {_bang(m.negated)}{option} {','.join(_range(lo, hi) for lo, hi in m.ranges)}"
    if isinstance(m, MatchIcmp):
        value = str(m.type) if m.code is None else f"{m.type}/{m.code}"
        if m.v6:
            return f"-m icmp6 {_bang(m.negated)}--icmpv6-type {value}"
        return f"-m icmp {_bang(m.negated)}--icmp-type {value}"
    if isinstance(m, MatchPhysdev):
        return "-m physdev" + _format_physdev(m)
    if isinstance(m, MatchMac):
        return f"-m mac {_bang(m.negated)}--mac-source {m.mac}"
    if isinstance(m, MatchSet):
        return f"-m set {_bang(m.negated)}--match-set {m.name} {','.join(m.flags)}"
    if isinstance(m, MatchState):
        states = ",".join(s for s in CT_STATES if s in m.states)
        if m.conntrack or m.states & {"SNAT", "DNAT"}:
            return f"-m conntrack {_bang(m.negated)}--ctstate {states}"
        return f"-m state {_bang(m.negated)}--state {states}"
    if isinstance(m, MatchMark):
        value = f"{m.value:#x}" if m.mask == MAX_U32 else hex_mask(m.value, m.mask)
        return f"-m {'connmark' if m.connection else 'mark'} {_bang(m.negated)}--mark {value}"
    if isinstance(m, MatchComment):
        return f"-m comment --comment {save_string(m.text)}"
    assert isinstance(m, MatchUnsupported)
    return m.text


def _format_physdev(m: MatchPhysdev) -> str:
    out = ""
    for option, given in (("--physdev-in", m.physdev_in), ("--physdev-out", m.physdev_out)):
        if given is not None:
            out += f" {_bang(given[1])}{option} {given[0]}"
    for option, flag in (
        ("--physdev-is-in", m.is_in),
        ("--physdev-is-out", m.is_out),
        ("--physdev-is-bridged", m.is_bridged),
    ):
        if flag is not None:
            out += f" {_bang(flag[1])}{option}"
    if not out:
        raise ValueError("a physdev match with no criterion")
    return out


def format_target(t: Target) -> str:
    """``-j TARGET [OPTIONS]`` or ``-g CHAIN``."""
    if isinstance(t, Jump):
        return f"{'-g' if t.goto else '-j'} {t.chain}"
    if isinstance(t, Verdict):
        if t.kind not in ("ACCEPT", "DROP", "RETURN", "REJECT") or (t.reject_with and t.kind != "REJECT"):
            raise ValueError(f"not an iptables verdict: {t}")
        return f"-j {t.kind}" + (f" --reject-with {t.reject_with}" if t.reject_with else "")
    if isinstance(t, Nat):
        return "-j " + _format_nat(t)
    if isinstance(t, SetMark):
        return f"-j MARK --set-xmark {hex_mask(t.value, t.mask)}"
    if isinstance(t, ConnMark):
        if t.mode == "set":
            return f"-j CONNMARK --set-xmark {hex_mask(t.value, t.mask)}"
        if t.mode not in ("save", "restore"):
            raise ValueError(f"unknown CONNMARK mode {t.mode!r}")
        return f"-j CONNMARK --{t.mode}-mark --nfmask {t.nfmask:#x} --ctmask {t.ctmask:#x}"
    if isinstance(t, Conntrack):
        if t.notrack == (t.zone is not None):
            raise ValueError("a CT target has either a zone or notrack")
        return "-j CT --notrack" if t.notrack else f"-j CT --zone {t.zone}"
    assert isinstance(t, (NoEffect, TargetUnsupported))
    return f"-j {t.text}"


def _format_nat(t: Nat) -> str:
    if t.kind in ("DNAT", "SNAT"):
        if t.address is None and t.ports is None:
            raise ValueError(f"{t.kind} without an address or ports")
        where = t.address or ""
        if t.ports is not None:
            where = f"[{where}]:{t.ports}" if ":" in where else f"{where}:{t.ports}"
        words = [t.kind, "--to-destination" if t.kind == "DNAT" else "--to-source", where]
    elif t.kind in ("MASQUERADE", "REDIRECT"):
        if t.address is not None or t.persistent or (t.random_fully and t.kind == "REDIRECT"):
            raise ValueError(f"{t.kind} has no address, --persistent or (REDIRECT) --random-fully")
        words = [t.kind] + (["--to-ports", t.ports] if t.ports is not None else [])
    else:
        raise ValueError(f"unknown NAT kind {t.kind!r}")
    words += [flag for flag, on in (("--random", t.random), ("--random-fully", t.random_fully)) if on]
    if t.persistent:
        words.append("--persistent")
    return " ".join(words)
