"""``brctl show`` (bridge-utils) text to Linux bridges, and back.

bridge-utils 1.5 to 1.7 print a header ``bridge name<TAB>bridge id<TAB><TAB>STP
enabled<TAB>interfaces``, then per bridge ``NAME<TAB><TAB>ID<TAB>yes|no<TAB><TAB>
[FIRST]`` and one indented line per further interface.  Columns are read by
whitespace, so bridges with long names (whose columns slip) read the same.

A bridge without ports has the id ``8000.000000000000`` (no MAC to derive
one from); the reader reads that id as None (unknown) and the writer prints
an unknown id that way, as the ``ovs-ofctl show`` reader and writer do with
port MACs.  Any line that does not fit
is an error naming the file, line and text; under ``lenient`` it is skipped
(with the interface lines of a skipped bridge) and listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from verifier.errors import SnapshotError
from verifier.ir import Skipped
from verifier.linux import LinuxBridge

HEADER = "bridge name\tbridge id\t\tSTP enabled\tinterfaces"
NO_BRIDGE_ID = "8000.000000000000"
"""The id the writer prints for a bridge whose id is unknown; the reader reads it as None."""

_BRIDGE_ID = re.compile(r"[0-9a-fA-F]{4}\.[0-9a-fA-F]{12}")


class _LineError(ValueError):
    """A line that does not fit the layout (the caller adds file and line)."""


def parse_brctl_show(
    text: str, file: str, *, lenient: bool = False, skipped: list[Skipped] | None = None
) -> tuple[LinuxBridge, ...]:
    """Parse a whole ``brctl show`` output into bridges, in file order.

    Raises SnapshotError naming file, line and text for a line that does not
    fit, unless ``lenient``: then the line (and, for a bridge line, its
    interface lines) is appended to ``skipped``, which lenient parsing requires.
    """
    if lenient and skipped is None:
        raise ValueError("lenient parsing needs a list to report the skipped lines in")
    bridges: list[LinuxBridge] = []
    seen_header = False
    skipping: int | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip()
        if not line.strip():
            continue
        indented = line[0].isspace()
        if indented and skipping is not None:
            assert skipped is not None
            skipped.append(Skipped(file, number, line.strip(), f"belongs to the bridge skipped at line {skipping}"))
            continue
        skipping = None
        try:
            if not seen_header:
                if line.split() != HEADER.split():
                    raise _LineError(f"expected the header {HEADER.expandtabs(1)!r}")
                seen_header = True
            elif indented:
                bridges[-1:] = [_more(line, bridges)]
            else:
                bridges.append(_bridge(line, bridges))
        except _LineError as exc:
            if not lenient:
                raise SnapshotError(f"{file}:{number}", str(exc), line.strip()) from exc
            assert skipped is not None
            skipped.append(Skipped(file, number, line.strip(), str(exc)))
            if not indented and seen_header:
                skipping = number
    return tuple(bridges)


def _bridge(line: str, bridges: list[LinuxBridge]) -> LinuxBridge:
    words = line.split()
    if len(words) not in (3, 4):
        raise _LineError("expected 'NAME ID yes|no [INTERFACE]'")
    name, bridge_id, stp = words[:3]
    if any(b.name == name for b in bridges):
        raise _LineError(f"bridge {name!r} listed twice")
    if not _BRIDGE_ID.fullmatch(bridge_id):
        raise _LineError(f"bad bridge id {bridge_id!r} (expected like 8000.0242ac110002)")
    if stp not in ("yes", "no"):
        raise _LineError(f"STP enabled must be 'yes' or 'no', not {stp!r}")
    return LinuxBridge(
        name=name,
        interfaces=tuple(words[3:]),
        bridge_id=None if bridge_id == NO_BRIDGE_ID else bridge_id.lower(),
        stp=stp == "yes",
    )


def _more(line: str, bridges: list[LinuxBridge]) -> LinuxBridge:
    """The last bridge with one more interface (an indented continuation line)."""
    words = line.split()
    if not bridges:
        raise _LineError("interface line before the first bridge")
    if len(words) != 1:
        raise _LineError("expected one interface name on a continuation line")
    last = bridges[-1]
    if not last.interfaces:
        raise _LineError(f"bridge {last.name!r} has no first interface but a continuation line")
    if words[0] in last.interfaces:
        raise _LineError(f"interface {words[0]!r} listed twice on bridge {last.name!r}")
    return LinuxBridge(last.name, (*last.interfaces, words[0]), last.bridge_id, last.stp)


def format_brctl_show(bridges: Iterable[LinuxBridge]) -> str:
    """``brctl show`` text (bridge-utils 1.7 layout) for these bridges, in order."""
    out = [HEADER]
    for b in bridges:
        first = b.interfaces[0] if b.interfaces else ""
        out.append(f"{b.name}\t\t{b.bridge_id or NO_BRIDGE_ID}\t{'yes' if b.stp else 'no'}\t\t{first}")
        out += [f"\t\t\t\t\t\t\t{name}" for name in b.interfaces[1:]]
    return "".join(line + "\n" for line in out)
