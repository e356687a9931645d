"""Route lookup and local addresses of a namespace, on symbolic destinations.

Linux picks the longest matching prefix (lowest metric on ties) of the main
table; ``local`` routes and the addresses configured on any interface make a
destination local (the weak host model).  The limited broadcast
255.255.255.255, the directed broadcast of every configured prefix shorter than
/31 and ``broadcast`` routes of the local table are delivered locally too, as
is multicast (no namespace Neutron builds routes multicast).  A multipath route
offers every next hop that is not dead (which one a flow takes depends on a
hash: all are possible); a dead single-path route is skipped.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from verifier import linux as lx
from verifier import symbolic as sy
from verifier.ir import Address


@dataclass(frozen=True)
class Hop:
    """Where a routed packet goes: out of ``device`` towards ``gateway`` (None: directly to the destination)."""

    device: str | None
    gateway: str | None
    route: lx.Route
    kind: str = "unicast"


@dataclass(frozen=True)
class _Prefix:
    value: int
    mask: int
    length: int


def _prefix(text: str) -> _Prefix | None:
    if text == "default":
        return _Prefix(0, 0, 0)
    net = ipaddress.ip_network(text, strict=False)
    if net.version != 4:
        return None
    return _Prefix(int(net.network_address), int(net.netmask), net.prefixlen)


class RouteTable:
    """The IPv4 main-table routes and local addresses of one namespace."""

    def __init__(self, routes: tuple[lx.Route, ...], addresses: tuple[Address, ...]) -> None:
        self.entries: list[tuple[_Prefix, lx.Route]] = []
        for r in routes:
            p = _prefix(r.destination)
            if p is not None and r.table in ("main", "local"):
                self.entries.append((p, r))
        # Longest prefix first, then lowest metric.
        self.entries.sort(key=lambda e: (-e[0].length, e[1].metric or 0))
        self.local: list[int] = []
        for a in addresses:
            ip = ipaddress.ip_address(a.address)
            if ip.version == 4:
                self.local.append(int(ip))
        for p, r in self.entries:
            if r.kind == "local" and p.length == 32:
                self.local.append(p.value)
        self.local = sorted(set(self.local))
        self.broadcast: list[int] = [0xFFFFFFFF]
        for a in addresses:
            iface = ipaddress.ip_interface(f"{a.address}/{a.prefixlen}")
            if iface.version == 4 and iface.network.prefixlen < 31:
                self.broadcast.append(int(iface.network.broadcast_address))
        for p, r in self.entries:
            if r.kind == "broadcast" and p.length == 32:
                self.broadcast.append(p.value)
        self.broadcast = sorted(set(self.broadcast))

    def is_local(self, dst: sy.Value) -> sy.Cond:
        """The destination is one of the namespace's own addresses (or loopback 127/8)."""
        conds = [sy.test(dst, a, 0xFFFFFFFF) for a in self.local]
        conds.append(sy.test(dst, 0x7F000000, 0xFF000000))
        return sy.or_(*conds)

    def is_broadcast_or_multicast(self, dst: sy.Value) -> sy.Cond:
        """The destination is a broadcast address of the namespace, or multicast (224/4): delivered locally."""
        conds = [sy.test(dst, b, 0xFFFFFFFF) for b in self.broadcast]
        conds.append(sy.test(dst, 0xE0000000, 0xF0000000))
        return sy.or_(*conds)

    def lookup(self, dst: sy.Value) -> list[tuple[sy.Cond, list[Hop] | None]]:
        """The route choices for ``dst``: (condition, next hops), None meaning no route.

        Entries are in precedence order, so each one applies where it matches
        and no earlier one does.
        """
        out: list[tuple[sy.Cond, list[Hop] | None]] = []
        earlier: list[sy.Cond] = []
        for p, r in self.entries:
            if r.kind in ("local", "broadcast") or r.table != "main" or not _usable(r):
                continue
            cond = sy.test(dst, p.value & p.mask, p.mask)
            if cond is False:
                continue
            guard = sy.and_(cond, *(sy.not_(c) for c in earlier))
            if guard is not False:
                out.append((guard, _hops(r)))
            if cond is True:
                return out
            earlier.append(cond)
        missing = sy.and_(*(sy.not_(c) for c in earlier))
        if missing is not False:
            out.append((missing, None))
        return out

    def addresses_on(self, device: str, addresses: tuple[Address, ...]) -> list[str]:
        return [a.address for a in addresses if a.interface == device and ipaddress.ip_address(a.address).version == 4]


def _hops(r: lx.Route) -> list[Hop]:
    if r.kind in ("blackhole", "unreachable", "prohibit", "throw"):
        return [Hop(None, None, r, r.kind)]
    if r.nexthops:
        return [Hop(n.device, n.gateway, r) for n in r.nexthops if not n.dead]
    return [Hop(r.device, r.gateway, r)]


def _usable(r: lx.Route) -> bool:
    """A route the kernel still uses: not marked dead, and not a multipath route whose next hops are all dead."""
    if r.dead:
        return False
    return not r.nexthops or any(not n.dead for n in r.nexthops)
