"""Flow tables indexed like Open vSwitch's classifier partitions them.

Each table picks the (field, mask) pair that most of its flows match exactly
and buckets flows by that value; flows that do not match on it stay in a
wildcard list.  A lookup whose packet already knows those bits reads one
bucket merged with the wildcards, so a table of thousands of per-port or
per-network flows costs a dict lookup, not a scan.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from verifier import symbolic as sy
from verifier.header import FIELDS
from verifier.ir import FieldMatch
from verifier.packet import PacketState


class HasMatch(Protocol):
    @property
    def priority(self) -> int: ...

    @property
    def match(self) -> tuple[FieldMatch, ...]: ...


E = TypeVar("E", bound=HasMatch)


@dataclass
class Table(Generic[E]):
    """One table's entries, partitioned on ``key`` (a field and mask) when that helps."""

    entries: list[E]
    key: tuple[str, int] | None = None
    buckets: dict[int, list[E]] = field(default_factory=dict)
    wildcard: list[E] = field(default_factory=list)
    _merged: dict[int, list[E]] = field(default_factory=dict)

    @classmethod
    def build(cls, entries: Iterable[E]) -> Table[E]:
        ordered = sorted(entries, key=lambda e: -e.priority)
        counts: Counter[tuple[str, int]] = Counter()
        for e in ordered:
            for fm in e.match:
                counts[(fm.field, fm.mask)] += 1
        table = cls(ordered)
        if not counts:
            return table
        (name, mask), n = counts.most_common(1)[0]
        if n < 4:
            return table
        table.key = (name, mask)
        for e in ordered:
            keyed = next((m for m in e.match if m.field == name and m.mask == mask), None)
            if keyed is None:
                table.wildcard.append(e)
            else:
                table.buckets.setdefault(keyed.value, []).append(e)
        return table

    def candidates(self, pkt: PacketState) -> Sequence[E]:
        """Entries that may match, highest priority first."""
        if self.key is None:
            return self.entries
        name, mask = self.key
        bits, care = sy.known_bits(pkt.fields[name], FIELDS[name].width)
        if mask & ~care:
            return self.entries
        value = bits & mask
        merged = self._merged.get(value)
        if merged is None:
            bucket = self.buckets.get(value, [])
            merged = list(heapq.merge(bucket, self.wildcard, key=lambda e: -e.priority))
            self._merged[value] = merged
        return merged


def priority_groups(entries: Sequence[E]) -> Iterable[list[E]]:
    """Consecutive runs of equal priority (entries are sorted by priority, highest first)."""
    group: list[E] = []
    for e in entries:
        if group and e.priority != group[0].priority:
            yield group
            group = []
        group.append(e)
    if group:
        yield group
