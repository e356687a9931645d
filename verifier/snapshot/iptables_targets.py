"""iptables targets (``-j``/``-g``) read into the typed IR.

Verdicts, jumps to declared chains, NAT (DNAT, SNAT, MASQUERADE, REDIRECT,
with the old ``--to``/``--to-port`` spellings), MARK and CONNMARK (every
spelling turned into the xmark form iptables-save 1.8 prints), CT
``--zone``/``--notrack`` and NOTRACK are typed; CHECKSUM, LOG, NFLOG, ULOG
and TRACE are NoEffect; any other target, or a known one with an option the
models do not know, is TargetUnsupported with its text as written.
"""

from __future__ import annotations

import ipaddress

from verifier.linux import ConnMark, Conntrack, Jump, Nat, NoEffect, SetMark, Target, TargetUnsupported, Verdict
from verifier.snapshot.iptables_names import NO_EFFECT_TARGETS, REJECT_WITH
from verifier.snapshot.iptables_text import MAX_U32, Option, RuleError, Unsupported, u32, value_mask

_NAT_TO = {"DNAT": ("--to-destination", "--to"), "SNAT": ("--to-source", "--to")}
_NAT_PORTS = {"MASQUERADE": ("--to-ports",), "REDIRECT": ("--to-ports", "--to-port")}
_NAT_FLAGS = {
    "DNAT": ("--random", "--random-fully", "--persistent"),
    "SNAT": ("--random", "--random-fully", "--persistent"),
    "MASQUERADE": ("--random", "--random-fully"),
    "REDIRECT": ("--random",),
}
_MARK_OPS = ("--set-xmark", "--set-mark", "--and-mark", "--or-mark", "--xor-mark")


_TYPED = frozenset({"ACCEPT", "DROP", "RETURN", "REJECT", "NOTRACK", "MARK", "CONNMARK", "CT", *_NAT_FLAGS})


def target(name: str, goto: bool, opts: list[Option], text: str, chains: frozenset[str], family: int) -> Target:
    """The target ``name`` with its options; ``text`` is how it was written (name and options)."""
    if name in chains:
        if opts:
            raise RuleError(f"a jump to chain {name!r} takes no options, got {opts[0].name}")
        return Jump(name, goto)
    if goto:
        raise RuleError(f"-g {name}: not a chain of this table")
    if name in NO_EFFECT_TARGETS:
        return NoEffect(text)
    if name not in _TYPED:
        if name != name.upper():
            raise RuleError(f"{name!r} is neither a chain of this table nor a target")
        return TargetUnsupported(text)
    if any(o.negated for o in opts):
        raise RuleError(f"{name}: target options cannot be negated")
    names = [o.name for o in opts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice and name in _NAT_TO and twice[0] in _NAT_TO[name]:
        return TargetUnsupported(text)  # several ranges (kernels before 2.6.11)
    if twice:
        raise RuleError(f"{name}: {twice[0]} given twice")
    try:
        return _typed(name, {o.name: o for o in opts}, family)
    except Unsupported:
        return TargetUnsupported(text)


def _typed(name: str, opts: dict[str, Option], family: int) -> Target:
    """A target the models know; Unsupported for any other name or option."""
    if name in ("ACCEPT", "DROP", "RETURN", "NOTRACK"):
        _allow(opts, ())
        return Conntrack(notrack=True) if name == "NOTRACK" else Verdict(name)
    if name == "REJECT":
        _allow(opts, ("--reject-with",))
        if "--reject-with" not in opts:
            return Verdict("REJECT")
        reply = opts["--reject-with"].value()
        if reply not in REJECT_WITH[family]:
            raise RuleError(f"unknown --reject-with {reply!r}")
        return Verdict("REJECT", REJECT_WITH[family][reply])
    if name in _NAT_FLAGS:
        return _nat(name, opts, family)
    if name == "MARK":
        _allow(opts, _MARK_OPS)
        value, mask = _xmark(opts, "MARK")
        return SetMark(value, mask)
    if name == "CONNMARK":
        return _connmark(opts)
    if name == "CT":
        if set(opts) == {"--notrack"}:
            opts["--notrack"].flag()
            return Conntrack(notrack=True)
        _allow(opts, ("--zone",))
        zone = opts.get("--zone")
        if zone is None:
            raise RuleError("CT without --zone or --notrack")
        if not zone.value().isdigit() or int(zone.value()) > 0xFFFF:
            raise RuleError(f"bad CT zone {zone.value()!r}")
        return Conntrack(zone=int(zone.value()))
    raise Unsupported()


def _allow(opts: dict[str, Option], allowed: tuple[str, ...]) -> None:
    if any(n not in allowed for n in opts):
        raise Unsupported()


def _nat(name: str, opts: dict[str, Option], family: int) -> Nat:
    to_names = _NAT_TO.get(name, ())
    port_names = _NAT_PORTS.get(name, ())
    _allow(opts, to_names + port_names + _NAT_FLAGS[name])
    for flag in _NAT_FLAGS[name]:
        if flag in opts:
            opts[flag].flag()
    address = ports = None
    given = [opts[n] for n in to_names + port_names if n in opts]
    if len(given) > 1:
        raise RuleError(f"{name}: {given[0].name} and {given[1].name} both given")
    if given and to_names:
        address, ports = _nat_range(given[0].value(), family)
    elif given:
        ports = _nat_ports(given[0].value())
    elif to_names:
        raise RuleError(f"{name} without {to_names[0]}")
    return Nat(
        name,
        address,
        ports,
        random_fully="--random-fully" in opts,
        persistent="--persistent" in opts,
        random="--random" in opts,
    )


def _nat_range(text: str, family: int) -> tuple[str | None, str | None]:
    """``ADDR[-ADDR][:PORT[-PORT]]`` (IPv6 addresses in brackets when a port follows)."""
    if text.startswith("["):
        address, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise RuleError(f"bad NAT range {text!r}")
        ports = rest[1:] if rest else None
    elif family == 6:
        address, ports = text, None
    else:
        address, colon, port_text = text.partition(":")
        ports = port_text if colon else None
    for part in address.split("-") if address else ():
        try:
            ip = ipaddress.ip_address(part)
        except ValueError as exc:
            raise RuleError(f"bad NAT address {part!r} in {text!r}") from exc
        if ip.version != family:
            raise RuleError(f"NAT address {part!r} is not IPv{family}")
    if address and address.count("-") > 1:
        raise RuleError(f"bad NAT address range {address!r}")
    return address or None, _nat_ports(ports) if ports is not None else None


def _nat_ports(text: str) -> str:
    """``PORT`` or ``PORT-PORT`` (1 to 65535)."""
    parts = text.split("-")
    if len(parts) > 2 or any(not p.isdigit() or not 1 <= int(p) <= 65535 for p in parts):
        raise RuleError(f"bad NAT port range {text!r}")
    if len(parts) == 2 and int(parts[0]) > int(parts[1]):
        raise RuleError(f"bad NAT port range {text!r} (first port above the last)")
    return text


def _xmark(opts: dict[str, Option], target: str) -> tuple[int, int]:
    """The one mark operation of MARK or CONNMARK in xmark form: ``mark = (mark & ~mask) ^ value``."""
    given = [n for n in _MARK_OPS if n in opts]
    if len(given) != 1:
        raise RuleError(f"{target} takes exactly one of {', '.join(_MARK_OPS)}")
    op = given[0]
    text = opts[op].value()
    if op == "--set-xmark":
        return value_mask(text, "mark")
    if op == "--set-mark":
        value, mask = value_mask(text, "mark")
        return value, value | mask
    bits = u32(text, "mark")
    if op == "--and-mark":
        return 0, ~bits & MAX_U32
    if op == "--or-mark":
        return bits, bits
    return bits, 0


def _connmark(opts: dict[str, Option]) -> ConnMark:
    modes = [n for n in ("--save-mark", "--restore-mark") if n in opts]
    if len(modes) > 1 or (modes and _any_of(opts, _MARK_OPS)):
        raise RuleError("CONNMARK takes one of --save-mark, --restore-mark or a mark operation")
    if not modes:
        _allow(opts, _MARK_OPS)
        value, mask = _xmark(opts, "CONNMARK")
        return ConnMark("set", value, mask)
    _allow(opts, (*modes, "--nfmask", "--ctmask", "--mask"))
    opts[modes[0]].flag()
    if "--mask" in opts and _any_of(opts, ("--nfmask", "--ctmask")):
        raise RuleError("CONNMARK --mask cannot go with --nfmask or --ctmask")
    both = u32(opts["--mask"].value(), "mask") if "--mask" in opts else MAX_U32
    nfmask = u32(opts["--nfmask"].value(), "nfmask") if "--nfmask" in opts else both
    ctmask = u32(opts["--ctmask"].value(), "ctmask") if "--ctmask" in opts else both
    return ConnMark("save" if modes[0] == "--save-mark" else "restore", nfmask=nfmask, ctmask=ctmask)


def _any_of(opts: dict[str, Option], names: tuple[str, ...]) -> bool:
    return any(n in opts for n in names)
