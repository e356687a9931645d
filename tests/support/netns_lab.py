"""Real Linux network namespaces to test the Linux-side models against.

``Lab`` builds small dataplanes out of network namespaces — veth pairs, Linux
bridges, addresses, routes (ECMP included), sysctls and iptables rules — and
sends real Ethernet frames through them with AF_PACKET sockets, capturing
what arrives elsewhere.  The frames are built from, and parsed back into,
header-table packets (``support.packets``), so a test can put a model's
concrete packet on a wire and compare the kernel's output with the model's.

Typical use::

    with Lab() as lab:
        lab.add_namespace("router", router=True)
        lab.add_namespace("vm")
        lab.veth(("router", "qr-a"), ("vm", "eth0"), mac_a=QR_MAC, mac_b=VM_MAC)
        lab.address("router", "qr-a", "10.0.0.1/24")
        lab.iptables_restore("router", RULES)
        got = lab.send("vm", "eth0", packet, expect_on=[("router", "qg-a")])
        assert [r.packet["ip_src"] for r in got] == [ip("203.0.113.2")]

Design choices (see ``HARNESS_NOTES`` for the rest):

* Everything lives in namespaces named ``vl-<token>-<name>``, ``<token>``
  random per ``Lab``; tests use the short ``<name>``.  Links are created with
  ``ip -n`` directly inside their namespaces (a veth's peer directly in the
  peer namespace), so the root namespace's links, routes, sysctls and
  firewall are never touched.  ``close()`` (also ``__exit__`` and, as a last
  resort, interpreter exit) closes the sockets the lab opened, stops the
  processes it spawned (by PID) and deletes exactly the namespaces it created,
  by name; their interfaces vanish with them.
* Sockets are opened *inside* a namespace by a short-lived thread that joins
  the namespace with ``setns(2)`` (``os.setns`` on Python 3.12+, ``ctypes``
  and libc on 3.11), creates the socket and exits.  A socket belongs for
  life to the namespace it was created in, whichever thread uses it later,
  so the main thread — and with it every subprocess pytest starts, the OVS
  sandbox included — never changes namespace.  A child process would work
  too but must pass descriptors back over SCM_RIGHTS and forks a large pytest
  process; the thread costs ~0.1 ms.  The same trick reads and writes
  ``/proc/sys/net`` (resolved against the *calling thread's* namespace) and
  ``/proc/thread-self/net/nf_conntrack`` (``/proc/self/net`` would be the
  main thread's namespace!).  Commands that need a namespace (``iptables-
  restore``) run under ``ip netns exec``.
* ``send`` opens one capture socket per listed interface *before* it
  transmits, drains what was queued, transmits one frame, and collects until
  every listed interface has seen a kept frame (then ``settle`` seconds more,
  for duplicates) or until ``timeout``.  A "dropped" verdict therefore costs
  the whole timeout; keep it short (0.3 s is plenty on one host).
* Every namespace starts with IPv6 disabled (no router solicitations, MLD or
  DAD noise in captures), rp_filter 0 and ip_forward 0 set explicitly
  (a new namespace otherwise *inherits* the root namespace's IPv4 ``all``/
  ``default`` settings while ``net.core.devconf_inherit_init_net`` is 0, so a
  Docker/Ubuntu host would leak ip_forward=1 or rp_filter=2 into the lab).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from support.packets import Frame, FrameError, build_frame, parse_frame

if TYPE_CHECKING:
    from verifier.linux import Namespace as IrNamespace
    from verifier.linux import Netfilter, Route

__all__ = [
    "BASE_SYSCTLS",
    "HARNESS_NOTES",
    "LINUX_BEHAVIOURS",
    "NETNS_DIR",
    "ROUTER_SYSCTLS",
    "Capture",
    "ConntrackEntry",
    "Lab",
    "LabError",
    "Point",
    "Received",
    "arrivals",
    "in_netns",
    "netns_available",
    "parse_conntrack",
]

T = TypeVar("T")
Point = tuple[str, str]
"""(namespace, interface) as a test names it: the lab's short namespace name."""

NETNS_DIR = Path("/run/netns")
REQUIRED_BINARIES = ("ip", "iptables-restore", "iptables-save")
CLONE_NEWNET = 0x40000000

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_CSUMNOTREADY = 1 << 3
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
_AUXDATA = struct.Struct("=IIIHHHH")

NETLINK_NETFILTER = 12
_NFNL_SUBSYS_CTNETLINK = 1
_IPCTNL_MSG_CT_DELETE = 2
_NLM_F_REQUEST = 0x1
_NLM_F_ACK = 0x4
_NLMSG_ERROR = 0x2

BASE_SYSCTLS: Mapping[str, str] = {
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv4.ip_forward": "0",
    "net.ipv4.igmp_link_local_mcast_reports": "0",
}
"""Set in every namespace before any interface is created (``add_namespace``).

The last one silences the IGMPv3 reports a bridge sends for the link-local
groups multicast snooping joins (224.0.0.106), which would otherwise show up in
captures for a few seconds after a bridge comes up."""

ROUTER_SYSCTLS: Mapping[str, str] = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.arp_ignore": "1",
    "net.ipv4.conf.all.arp_announce": "2",
}
"""What Neutron's ``RouterNamespace.create`` sets (IPv6 forwarding aside: IPv6 is off in the lab)."""

BRIDGE_NF_SYSCTLS = (
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.bridge.bridge-nf-call-arptables",
)

LINUX_BEHAVIOURS: Mapping[str, str] = {
    # ---- conntrack (tests/linux/test_lab.py::test_conntrack_state_of_first_packets unless said otherwise)
    "nat_first_packet_only": "nat-table chains see only the first packet of a connection; later packets in "
    "both directions are translated from the conntrack entry without traversing them.",
    "reply_translated_back": "A reply to a SNATed connection is un-SNATed before the routing decision, a "
    "reply to a DNATed one is un-DNATed on the way out: the VM sees its real peer, the peer the FIP or "
    "the gateway IP (test_snat_..., test_floating_ip_dnat_...).",
    "random_fully": "SNAT --random-fully (Neutron's default) picks a random source port, and for ICMP echo a "
    "random id, even when the original is free; without it the original port/id is kept when free.  A "
    "model must leave the translated port unknown and map replies through the conntrack entry.",
    "unreplied_is_new": "Until a reply has been seen, every further packet of the original direction is "
    "still ctstate NEW (not ESTABLISHED); the nat table is not consulted again for it though.",
    "tcp_loose": "With nf_conntrack_tcp_loose=1 (the default) a TCP segment with ACK (no SYN/FIN/RST) and no "
    "entry is picked up mid-stream: ctstate NEW, not INVALID.  With 0 it is INVALID.",
    "invalid_tcp": "Without an entry, conntrack marks INVALID (and tracks nothing for) SYN+FIN, no flags, FIN, "
    "FIN+ACK, RST, RST+ACK, SYN+ACK and SYN+RST segments; only SYN and ACK(/PSH) start a connection.",
    "icmp_states": "An ICMP echo reply without a request is INVALID; an echo request is NEW.  An ICMP error "
    "quoting a tracked connection (in either direction) is RELATED, one quoting nothing tracked is INVALID.",
    "lazy_tracking": "A namespace tracks connections only once something needs it (a state/conntrack match, "
    "a nat table, a CT target); before that nf_conntrack is empty.  No verdict depends on it.",
    "conntrack_zone": "CT --zone in raw PREROUTING puts both directions of a bridged flow in that zone "
    "(the hybrid firewall's per-port zones); the entry shows zone=N (test_hybrid_firewall_port_chains).",
    # ---- NAT targets
    "redirect_primary_address": "REDIRECT rewrites the destination to the first (primary) address of the "
    "input interface, not a secondary one, and the given port: the proxy's getsockname() is "
    "10.0.0.1:9697 while the client's getpeername() stays 169.254.169.254:80; the answer leaves "
    "un-NATed with TTL 64 (test_metadata_redirect_...).",
    "metadata_port_closed": "A SYN straight to the router's port 9697 gets no answer at all (INPUT DROP, no "
    "RST): only REDIRECTed packets carry mark 0x1/0xffff from mangle.",
    "dnat_keeps_source": "External -> FIP: DNAT to the fixed IP, source kept (snat rule 4 skipped: mangle "
    "marked it 0x2 on qg).",
    "hairpin_snat": "VM without FIP -> FIP of a VM behind the same router: DNAT, then SNAT to the gateway IP "
    "(rule 4: ctstate DNAT and no 0x2 mark), on a random port.",
    "nat_is_not_a_firewall": "External -> a fixed IP without FIP is routed in (no address scopes); only a "
    "FORWARD rule stops it, and a ctstate NEW rule there also stops new FIP connections (it runs after "
    "DNAT) while replies of VM-initiated connections pass (test_unsolicited_inbound_...).",
    # ---- routing, ARP, L2 admission
    "forwarding_rewrite": "The router decrements the TTL and rewrites both MACs (its egress interface -> the "
    "next hop's, resolved by ARP; the first packet waits in the neighbour queue meanwhile).",
    "router_drops": "Not forwarded: a unicast frame for another MAC, an 802.1Q-tagged frame on an interface "
    "without a VLAN device, TTL 1 (answered with ICMP time exceeded from the ingress address), a bad IPv4 "
    "header checksum.  A bad TCP/UDP checksum is forwarded as is.",
    "ecmp_hash": "ECMP (fib_multipath_hash_policy 0) picks a next hop by a hash of source and destination "
    "address only, with a per-boot random key: the same pair always takes the same hop whatever the "
    "ports, different pairs spread, and which hop is not predictable.  A model must allow any next hop.",
    "arp_ignore": "With arp_ignore=1 the router answers ARP only for addresses on the receiving interface: "
    "the FIP (/32 on qg) is answered on qg, a qr address asked on qg or on another qr is not.",
    "rp_filter": "rp_filter is max(conf.all, conf.<if>); with 1 a packet whose source routes back through "
    "another interface is dropped at the routing decision (after PREROUTING DNAT, before FORWARD).  "
    "Neutron leaves the value inherited from the root namespace.",
    # ---- bridge netfilter (test_bridge_physdev_in_drop, test_hybrid_firewall_port_chains)
    "br_netfilter_per_netns": "net.bridge.bridge-nf-call-* are per namespace since Linux 5.3 and default to 1 "
    "in a new namespace once br_netfilter is loaded; bridged IPv4 then traverses that namespace's "
    "raw PREROUTING and filter FORWARD with --physdev-in/--physdev-out set to the bridge ports.  With "
    "bridge-nf-call-iptables 0 the rules are never consulted.",
    "bridged_arp_not_iptables": "ARP crossing a bridge never sees iptables (arptables only): a physdev DROP "
    "does not stop it and a spoofed ARP from a VM crosses the hybrid firewall.",
    "bridged_vlan_not_filtered": "An 802.1Q-tagged frame crosses a br_netfilter bridge unfiltered while "
    "net.bridge.bridge-nf-filter-vlan-tagged is 0 (the default): a VM sending tagged frames bypasses the "
    "hybrid firewall's chains (the qvo access port in br-int then drops them).",
    "bridge_no_rewrite": "A bridged frame is delivered byte for byte: no TTL change, MACs kept.",
}
"""Real-Linux behaviours a model must match; ``tests/linux/test_lab.py`` checks the ones marked there."""

HARNESS_NOTES: Mapping[str, str] = {
    "ipv6_off": "IPv6 is disabled in every lab namespace: no IPv6 traffic can be tested as is "
    "(pass sysctls= to add_namespace to re-enable it).",
    "checksum_offload": "A frame sent by a local socket through a veth may carry a partial TCP/UDP checksum "
    "(offload never done): Received.checksum_partial is then True and Frame.checksums['l4'] False.",
    "veth_rx_checksum": "Frames injected on a veth are CHECKSUM_UNNECESSARY for the peer: the kernel does not "
    "verify the L4 checksum of injected frames, so a bad checksum is not detected by the receiver.",
    "drop_costs_timeout": "A dropped packet is only known by the timeout expiring; delivered packets return "
    "as soon as every listed interface saw one (plus settle).",
    "kernel_endpoints": "Hosts with addresses are real kernels: they answer ARP, and reply to what they "
    "receive (TCP RST, ICMP port unreachable), which can reach captures and conntrack; load an INPUT "
    "policy that accepts only RELATED,ESTABLISHED to make a host quiet (tests/linux QUIET_HOST).  "
    "send() keeps only frames of the sent Ethernet type by default.",
    "igmp_noise": "A bridge sends IGMPv3 reports for 224.0.0.106 for seconds after it comes up; "
    "net.ipv4.igmp_link_local_mcast_reports=0 (BASE_SYSCTLS) silences them.",
    "no_conntrack_tool": "conntrack(8) is not needed: flush_conntrack speaks ctnetlink directly, "
    "conntrack() reads /proc/net/nf_conntrack of the namespace (CONFIG_NF_CONNTRACK_PROCFS).",
    "vlan_auxdata": "Received VLAN tags are rebuilt from PACKET_AUXDATA (the kernel strips them into "
    "skb metadata on veth), so Frame.packet['vlan_tci'] reflects the wire.",
}
"""What this harness does, or does not, reproduce."""


class LabError(RuntimeError):
    """A lab operation failed; the message carries the command and the kernel's or tool's error."""


# ---------------------------------------------------------------- namespaces and threads


def _libc_setns() -> Callable[[int, int], None]:
    setns = getattr(os, "setns", None)
    if setns is not None:  # Python 3.12+
        return setns
    libc = ctypes.CDLL(None, use_errno=True)

    def call(fd: int, nstype: int) -> None:
        if libc.setns(fd, nstype) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns: {os.strerror(err)}")

    return call


_setns = _libc_setns()


def in_netns(path: str | Path, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread that joined the network namespace at ``path``; return its result.

    The calling thread never changes namespace.  Sockets ``fn`` creates stay
    in that namespace for life; files under ``/proc/sys/net`` and
    ``/proc/thread-self/net`` it opens are the namespace's.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd, CLONE_NEWNET)
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name=f"netns:{Path(path).name}", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def netns_available() -> tuple[bool, str]:
    """Whether this process can build a lab here, and why not (creates and deletes one probe namespace)."""
    if os.geteuid() != 0:
        return False, "needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces"
    missing = [b for b in REQUIRED_BINARIES if shutil.which(b) is None]
    if missing:
        return False, f"binaries not on PATH: {', '.join(missing)} (apt-get install iproute2 iptables)"
    if not Path("/proc/self/ns/net").exists():
        return False, "kernel without network namespaces (/proc/self/ns/net missing)"
    name = f"vl-{secrets.token_hex(3)}-probe"
    proc = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        return False, f"ip netns add failed: {proc.stderr.strip()}"
    try:
        proc = subprocess.run(
            ["ip", "netns", "exec", name, "iptables-save"], capture_output=True, text=True, timeout=10
        )
        if proc.returncode != 0:
            return False, f"iptables-save inside a namespace failed: {proc.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
    return True, "ok"


def _delete_namespaces(
    names: list[str], sockets: list[socket.socket], processes: list[subprocess.Popen[bytes]]
) -> list[str]:
    """Close sockets, stop processes (by PID), delete namespaces by name; return the errors."""
    errors: list[str] = []
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.close()
    sockets.clear()
    for proc in processes:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=3)
    processes.clear()
    for name in reversed(names):
        if not (NETNS_DIR / name).exists():
            continue
        done = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            errors.append(f"ip netns del {name}: {done.stderr.strip()}")
    names.clear()
    return errors


# ---------------------------------------------------------------- captures


@dataclass(frozen=True)
class Received:
    """One frame captured on a lab interface.

    ``ns`` is the lab's short namespace name.  ``outgoing`` is True for a frame
    the interface transmitted (only captured with ``outgoing=True``);
    ``checksum_partial`` is the kernel's TP_STATUS_CSUMNOTREADY (L4 checksum
    left to an offload that a veth never does).  ``elapsed`` is seconds since
    the capture started.
    """

    ns: str
    ifname: str
    data: bytes
    frame: Frame | None
    outgoing: bool = False
    checksum_partial: bool = False
    elapsed: float = 0.0
    error: str | None = None

    @property
    def point(self) -> Point:
        return (self.ns, self.ifname)

    @property
    def packet(self) -> Mapping[str, int]:
        """The header-table packet (raises for a frame ``parse_frame`` could not read)."""
        if self.frame is None:
            raise LabError(f"unparsable frame on {self.ns}/{self.ifname}: {self.error}")
        return self.frame.packet

    def summary(self) -> str:
        where = f"{self.ns}/{self.ifname}{' (out)' if self.outgoing else ''}"
        if self.frame is None:
            return f"{where}: unparsable ({self.error}) {self.data[:32].hex()}"
        return f"{where}: {self.frame.summary()}"


def arrivals(received: Iterable[Received], ns: str, ifname: str) -> list[Received]:
    """The frames of ``received`` captured on (``ns``, ``ifname``)."""
    return [r for r in received if r.ns == ns and r.ifname == ifname]


class Capture:
    """AF_PACKET sockets bound to lab interfaces, opened before traffic is caused.

    Use ``Lab.capture`` to make one; ``collect`` reads what arrived.  A context
    manager: leaving it closes the sockets.
    """

    def __init__(self, sockets: Mapping[Point, socket.socket], *, outgoing: bool) -> None:
        self._sockets = dict(sockets)
        self._outgoing = outgoing
        self._start = time.monotonic()
        self.received: list[Received] = []

    def __enter__(self) -> Capture:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for sock in self._sockets.values():
            with contextlib.suppress(OSError):
                sock.close()
        self._sockets.clear()

    def drain(self) -> None:
        """Discard whatever was queued so far; restart the clock."""
        for sock in self._sockets.values():
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError, InterruptedError):
                while True:
                    sock.recv(65535)
        self._start = time.monotonic()
        self.received = []

    def collect(
        self,
        timeout: float,
        *,
        keep: Callable[[Received], bool] | None = None,
        until: Callable[[Sequence[Received]], bool] | None = None,
        settle: float = 0.05,
    ) -> list[Received]:
        """Read frames until ``until(kept)`` holds (then ``settle`` seconds more) or ``timeout`` passes.

        ``keep`` filters frames (all by default); ``until`` None waits the
        whole timeout.  Returns (and appends to ``self.received``) the kept
        frames in arrival order.
        """
        kept: list[Received] = []
        by_fd = {sock.fileno(): (point, sock) for point, sock in self._sockets.items()}
        deadline = time.monotonic() + timeout
        satisfied = False
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            ready, _, _ = select.select(list(by_fd), [], [], deadline - now)
            for fd in ready:
                point, sock = by_fd[fd]
                for item in self._read(point, sock):
                    if keep is None or keep(item):
                        kept.append(item)
            if not satisfied and until is not None and until(kept):
                satisfied = True
                deadline = min(deadline, time.monotonic() + settle)
        self.received.extend(kept)
        return kept

    def _read(self, point: Point, sock: socket.socket) -> list[Received]:
        out: list[Received] = []
        sock.setblocking(False)
        while True:
            try:
                data, ancdata, _flags, addr = sock.recvmsg(65535, socket.CMSG_SPACE(_AUXDATA.size))
            except (BlockingIOError, InterruptedError):
                return out
            outgoing = addr[2] == PACKET_OUTGOING
            if outgoing and not self._outgoing:
                continue
            data, partial = _apply_auxdata(data, ancdata)
            try:
                frame: Frame | None = parse_frame(data)
                error = None
            except FrameError as exc:
                frame, error = None, str(exc)
            out.append(
                Received(
                    ns=point[0],
                    ifname=point[1],
                    data=data,
                    frame=frame,
                    outgoing=outgoing,
                    checksum_partial=partial,
                    elapsed=time.monotonic() - self._start,
                    error=error,
                )
            )


def _apply_auxdata(data: bytes, ancdata: list[tuple[int, int, bytes]]) -> tuple[bytes, bool]:
    """Re-insert a VLAN tag the kernel moved into metadata; tell whether the L4 checksum is partial."""
    partial = False
    for level, kind, payload in ancdata:
        if level != SOL_PACKET or kind != PACKET_AUXDATA or len(payload) < _AUXDATA.size:
            continue
        status, _len, _snaplen, _mac, _net, tci, tpid = _AUXDATA.unpack(payload[: _AUXDATA.size])
        partial = bool(status & TP_STATUS_CSUMNOTREADY)
        if status & TP_STATUS_VLAN_VALID and len(data) >= 12:
            tpid = tpid if status & TP_STATUS_VLAN_TPID_VALID and tpid else 0x8100
            data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
    return data, partial


# ---------------------------------------------------------------- conntrack


@dataclass(frozen=True)
class ConntrackEntry:
    """One line of ``/proc/net/nf_conntrack``.

    ``original``/``reply`` hold the tuple keys as printed (``src``, ``dst``,
    ``sport``, ``dport``; ``type``, ``code``, ``id`` for ICMP); ``state`` is the
    TCP state (None for other protocols); ``flags`` holds ``ASSURED``,
    ``UNREPLIED``...
    """

    family: str
    protocol: str
    timeout: int
    state: str | None
    original: Mapping[str, str]
    reply: Mapping[str, str]
    flags: frozenset[str] = frozenset()
    mark: int = 0
    zone: int = 0
    line: str = field(default="", compare=False)

    @property
    def snat(self) -> bool:
        """The reply's destination differs from the original source (source NAT happened)."""
        return (self.original.get("src"), self.original.get("sport")) != (
            self.reply.get("dst"),
            self.reply.get("dport"),
        )

    @property
    def dnat(self) -> bool:
        """The reply's source differs from the original destination (destination NAT happened)."""
        return (self.original.get("dst"), self.original.get("dport")) != (
            self.reply.get("src"),
            self.reply.get("sport"),
        )


def parse_conntrack(text: str) -> list[ConntrackEntry]:
    """Parse ``/proc/net/nf_conntrack`` text."""
    entries: list[ConntrackEntry] = []
    for line in text.splitlines():
        tokens = line.split()
        if len(tokens) < 5:
            continue
        family, _l3num, protocol, _l4num, timeout = tokens[:5]
        rest = tokens[5:]
        state = None
        if rest and "=" not in rest[0] and not rest[0].startswith("["):
            state = rest.pop(0)
        tuples: list[dict[str, str]] = [{}]
        flags: set[str] = set()
        extra: dict[str, str] = {}
        for token in rest:
            if token.startswith("["):
                flags.add(token.strip("[]"))
                continue
            key, _, value = token.partition("=")
            if key in ("mark", "zone", "use", "secctx", "delta-time", "timestamp"):
                extra[key] = value
                continue
            if key in tuples[-1]:
                tuples.append({})
            tuples[-1][key] = value
        original = tuples[0]
        reply = tuples[1] if len(tuples) > 1 else {}
        entries.append(
            ConntrackEntry(
                family=family,
                protocol=protocol,
                timeout=int(timeout),
                state=state,
                original=original,
                reply=reply,
                flags=frozenset(flags),
                mark=int(extra.get("mark", "0"), 0),
                zone=int(extra.get("zone", "0"), 0),
                line=line,
            )
        )
    return entries


def _ctnetlink_flush() -> None:
    """Flush the conntrack table of the calling thread's namespace (IPCTNL_MSG_CT_DELETE without a tuple)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
        sock.settimeout(5)
        sock.bind((0, 0))
        for family in (socket.AF_INET, socket.AF_INET6):
            seq = int(time.monotonic_ns() & 0x7FFFFFFF)
            msg_type = (_NFNL_SUBSYS_CTNETLINK << 8) | _IPCTNL_MSG_CT_DELETE
            body = struct.pack("=BBH", family, 0, 0)
            header = struct.pack("=IHHII", 16 + len(body), msg_type, _NLM_F_REQUEST | _NLM_F_ACK, seq, 0)
            sock.send(header + body)
            reply = sock.recv(65535)
            _length, kind, _flags, _seq, _pid = struct.unpack("=IHHII", reply[:16])
            if kind == _NLMSG_ERROR:
                (err,) = struct.unpack("=i", reply[16:20])
                if err not in (0, -errno.ENOENT):
                    raise OSError(-err, f"ctnetlink flush: {os.strerror(-err)}")


# ---------------------------------------------------------------- the lab


class Lab:
    """A set of network namespaces built for one test; a context manager.

    Namespaces, links and everything else are addressed by the short names
    the test chose; ``real(name)`` gives the kernel's namespace name.
    ``bridge_netfilter`` tells whether bridged frames can be filtered by
    iptables inside a lab namespace, ``bridge_netfilter_reason`` why (not).
    """

    def __init__(self, *, prefix: str = "vl", timeout: float = 10.0) -> None:
        self.token = secrets.token_hex(3)
        self.prefix = f"{prefix}-{self.token}-"
        self.timeout = timeout
        self.notes: list[str] = []
        self._names: dict[str, str] = {}
        self._created: list[str] = []
        self._sockets: list[socket.socket] = []
        self._processes: list[subprocess.Popen[bytes]] = []
        self._bridge_nf: tuple[bool, str] | None = None
        self._finalizer = weakref.finalize(self, _delete_namespaces, self._created, self._sockets, self._processes)

    # ---------------------------------------------------------- lifecycle

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the lab's sockets, stop its processes, delete its namespaces (idempotent)."""
        errors = _delete_namespaces(self._created, self._sockets, self._processes)
        self._names.clear()
        if errors:
            raise LabError("; ".join(errors))

    @property
    def namespaces(self) -> dict[str, str]:
        """Short name -> kernel name of every namespace the lab created and has not deleted."""
        return dict(self._names)

    def real(self, ns: str) -> str:
        """The kernel's name of lab namespace ``ns``."""
        try:
            return self._names[ns]
        except KeyError:
            raise LabError(f"no namespace {ns!r} in this lab (have: {', '.join(self._names) or 'none'})") from None

    def _path(self, ns: str) -> Path:
        return NETNS_DIR / self.real(ns)

    # ---------------------------------------------------------- commands

    def _run(
        self, argv: Sequence[str], *, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=self.timeout)
        if check and proc.returncode != 0:
            raise LabError(f"{' '.join(argv)} failed (rc {proc.returncode}): {proc.stderr.strip()}")
        return proc

    def ip(self, ns: str, *args: str) -> str:
        """Run ``ip -n <ns> <args>``; return its output."""
        return self._run(["ip", "-n", self.real(ns), *args]).stdout

    def run(
        self, ns: str, *argv: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside a namespace (``ip netns exec``)."""
        return self._run(["ip", "netns", "exec", self.real(ns), *argv], stdin=stdin, check=check)

    def spawn(self, ns: str, *argv: str) -> subprocess.Popen[bytes]:
        """Start a long-running process inside a namespace; ``close()`` stops it (by PID)."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.real(ns), *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._processes.append(proc)
        return proc

    def in_namespace(self, ns: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` in a thread that joined namespace ``ns`` (see ``in_netns``)."""
        return in_netns(self._path(ns), fn)

    # ---------------------------------------------------------- topology

    def add_namespace(self, name: str, *, router: bool = False, sysctls: Mapping[str, str | int] | None = None) -> str:
        """Create namespace ``name`` with loopback up and ``BASE_SYSCTLS`` (``ROUTER_SYSCTLS`` if ``router``).

        ``sysctls`` are applied last.  Returns the kernel's name.
        """
        if name in self._names:
            raise LabError(f"namespace {name!r} already exists in this lab")
        real = f"{self.prefix}{name}"
        self._run(["ip", "netns", "add", real])
        self._created.append(real)
        self._names[name] = real
        self.ip(name, "link", "set", "dev", "lo", "up")
        settings: dict[str, str | int] = dict(BASE_SYSCTLS)
        if router:
            settings.update(ROUTER_SYSCTLS)
        settings.update(sysctls or {})
        self.sysctl(name, settings)
        return real

    def veth(
        self,
        a: Point,
        b: Point,
        *,
        mac_a: str | None = None,
        mac_b: str | None = None,
        mtu: int | None = None,
        up: bool = True,
    ) -> None:
        """A veth pair: end ``a`` = (namespace, ifname), end ``b`` likewise; created in place, brought up."""
        (ns_a, if_a), (ns_b, if_b) = a, b
        argv = ["link", "add", "name", if_a]
        if mac_a:
            argv += ["address", mac_a]
        if mtu:
            argv += ["mtu", str(mtu)]
        argv += ["type", "veth", "peer", "name", if_b]
        if mac_b:
            argv += ["address", mac_b]
        if mtu:
            argv += ["mtu", str(mtu)]
        if ns_b != ns_a:
            argv += ["netns", self.real(ns_b)]
        self.ip(ns_a, *argv)
        if up:
            self.ip(ns_a, "link", "set", "dev", if_a, "up")
            self.ip(ns_b, "link", "set", "dev", if_b, "up")

    def bridge(
        self, ns: str, name: str, ports: Iterable[str] = (), *, netfilter: bool = True, mac: str | None = None
    ) -> bool:
        """A Linux bridge as Neutron builds qbr (STP off, forward delay 0) with ``ports`` enslaved.

        ``netfilter`` sets the namespace's ``net.bridge.bridge-nf-call-*``
        sysctls to 1 (else 0) when the kernel has them per namespace.  Returns
        whether bridged frames in this namespace will traverse iptables.
        """
        argv = ["link", "add", "name", name]
        if mac:
            argv += ["address", mac]
        self.ip(ns, *argv, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        for port in ports:
            self.ip(ns, "link", "set", "dev", port, "master", name)
        self.ip(ns, "link", "set", "dev", name, "up")
        available, reason = self._probe_bridge_netfilter(ns)
        if available:
            self.sysctl(ns, {key: "1" if netfilter else "0" for key in BRIDGE_NF_SYSCTLS})
            return netfilter
        self.notes.append(f"bridge {name} in {ns}: no bridge netfilter ({reason})")
        return False

    def bridge_port(self, ns: str, bridge: str, port: str) -> None:
        """Enslave ``port`` to ``bridge``."""
        self.ip(ns, "link", "set", "dev", port, "master", bridge)

    @property
    def bridge_netfilter(self) -> bool:
        """Whether bridged IPv4 frames in a lab namespace can traverse that namespace's iptables."""
        return self._bridge_netfilter_probe()[0]

    @property
    def bridge_netfilter_reason(self) -> str:
        """Why ``bridge_netfilter`` is what it is."""
        return self._bridge_netfilter_probe()[1]

    def _bridge_netfilter_probe(self) -> tuple[bool, str]:
        if self._bridge_nf is None:
            if self._names:
                ns = next(iter(self._names))
                self._bridge_nf = self._probe_bridge_netfilter(ns)
            else:
                name = f"__probe{secrets.token_hex(2)}"
                self.add_namespace(name)
                try:
                    self._bridge_nf = self._probe_bridge_netfilter(name)
                finally:
                    real = self._names.pop(name)
                    self._run(["ip", "netns", "del", real])
                    self._created.remove(real)
        return self._bridge_nf

    def _probe_bridge_netfilter(self, ns: str) -> tuple[bool, str]:
        if self._bridge_nf is not None:
            return self._bridge_nf
        if not Path("/proc/sys/net/bridge").is_dir():
            result = (
                False,
                "br_netfilter is not loaded (no /proc/sys/net/bridge in the root namespace; "
                "`modprobe br_netfilter` on the host would change that)",
            )
        else:

            def look() -> tuple[bool, str]:
                path = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
                if not path.exists():
                    return (
                        False,
                        "net.bridge.bridge-nf-call-iptables is not per network namespace on this kernel "
                        "(Linux < 5.3): only the root namespace's global setting applies",
                    )
                return True, f"per-namespace net.bridge.bridge-nf-call-iptables present (kernel {os.uname().release})"

            result = self.in_namespace(ns, look)
        self._bridge_nf = result
        return result

    def address(self, ns: str, ifname: str, cidr: str) -> None:
        """Add ``cidr`` (``10.0.0.1/24``; a bare address is /32) to an interface."""
        self.ip(ns, "addr", "add", cidr, "dev", ifname)

    def link_up(self, ns: str, ifname: str, up: bool = True) -> None:
        """Set an interface up or down."""
        self.ip(ns, "link", "set", "dev", ifname, "up" if up else "down")

    def route(
        self,
        ns: str,
        destination: str | Route,
        *,
        via: str | None = None,
        dev: str | None = None,
        nexthops: Sequence[tuple[str | None, str | None] | tuple[str | None, str | None, int]] = (),
        onlink: bool = False,
        metric: int | None = None,
        kind: str | None = None,
        table: str | None = None,
        src: str | None = None,
    ) -> None:
        """``ip route replace``: a plain route, or ECMP with ``nexthops`` = [(via, dev[, weight]), ...].

        ``destination`` may also be a ``verifier.linux.Route`` from the IR
        (then the keywords are ignored).
        """
        if not isinstance(destination, str):
            self.ip(ns, "route", "replace", *_route_argv(destination))
            return
        argv = [kind] if kind and kind != "unicast" else []
        argv.append(destination)
        if via:
            argv += ["via", via]
        if dev:
            argv += ["dev", dev]
        if onlink:
            argv.append("onlink")
        if metric is not None:
            argv += ["metric", str(metric)]
        if table:
            argv += ["table", table]
        if src:
            argv += ["src", src]
        for hop in nexthops:
            argv.append("nexthop")
            if hop[0]:
                argv += ["via", hop[0]]
            if hop[1]:
                argv += ["dev", hop[1]]
            if len(hop) > 2:
                argv += ["weight", str(hop[2])]
        self.ip(ns, "route", "replace", *argv)

    def routes(self, ns: str) -> list[dict[str, object]]:
        """``ip -j route show`` of a namespace (table main)."""
        result: list[dict[str, object]] = json.loads(self.ip(ns, "-j", "route", "show") or "[]")
        return result

    def neighbor(self, ns: str, address: str, mac: str, dev: str) -> None:
        """A permanent neighbour (ARP) entry, so that no ARP is needed towards ``address``."""
        self.ip(ns, "neigh", "replace", address, "lladdr", mac, "dev", dev, "nud", "permanent")

    def mac(self, ns: str, ifname: str) -> str:
        """An interface's MAC address."""
        info = json.loads(self.ip(ns, "-j", "link", "show", "dev", ifname))
        return str(info[0]["address"])

    def sysctl(self, ns: str, settings: Mapping[str, str | int]) -> None:
        """Write sysctls (``net.ipv4.ip_forward`` style keys, or ``/proc/sys``-relative paths) in ``ns``.

        Dotted keys name interfaces without dots; for ``eth0.100`` use the
        path form ``net/ipv4/conf/eth0.100/rp_filter``.
        """

        def write() -> None:
            for key, value in settings.items():
                path = Path("/proc/sys") / (key if "/" in key else key.replace(".", "/"))
                try:
                    path.write_text(f"{value}\n")
                except OSError as exc:
                    raise LabError(f"sysctl {key}={value} in {ns}: {exc}") from exc

        self.in_namespace(ns, write)

    def read_sysctl(self, ns: str, key: str) -> str:
        """Read one sysctl in ``ns``."""
        path = Path("/proc/sys") / (key if "/" in key else key.replace(".", "/"))
        return self.in_namespace(ns, lambda: path.read_text().strip())

    def apply_ir(self, ns: str, namespace: IrNamespace) -> None:
        """Give lab namespace ``ns`` the addresses, routes and iptables of an IR ``Namespace``.

        The links must exist already, under the IR's names (create them with
        ``veth``/``bridge`` and the IR's MACs): the IR does not say where the
        other end of a link is.  Kernel-made routes (``proto kernel``, tables
        local/broadcast) are left to the kernel; a ``netfilter`` of None
        leaves iptables empty.
        """
        for addr in namespace.addresses:
            if addr.interface == "lo" and addr.address.startswith("127."):
                continue
            self.address(ns, addr.interface, f"{addr.address}/{addr.prefixlen}")
        for route in namespace.routes or ():
            if route.proto == "kernel" or route.table in ("local", "broadcast") or route.kind in ("local", "broadcast"):
                continue
            self.route(ns, route)
        if namespace.netfilter is not None:
            self.iptables_restore(ns, namespace.netfilter)

    # ---------------------------------------------------------- iptables

    def iptables_restore(self, ns: str, rules: str | Netfilter, *, noflush: bool = False) -> None:
        """Load ``iptables-save`` text (or an IR ``Netfilter``) with ``iptables-restore`` inside ``ns``.

        Without ``noflush`` every table named in the text is replaced.  An IR
        ``Netfilter`` is formatted with ``verifier.snapshot.iptables.
        format_iptables_save``; ``family`` 6 goes to ``ip6tables-restore``.
        """
        tool = "iptables-restore"
        if not isinstance(rules, str):
            try:
                from verifier.snapshot.iptables import format_iptables_save
            except ImportError as exc:
                raise LabError(f"cannot format an IR Netfilter: {exc}; pass iptables-save text") from exc
            if rules.family == 6:
                tool = "ip6tables-restore"
            text = format_iptables_save(rules)
        else:
            text = rules
        if not text.endswith("\n"):
            text += "\n"
        argv = [tool, *(["--noflush"] if noflush else [])]
        proc = self.run(ns, *argv, stdin=text, check=False)
        if proc.returncode != 0:
            raise LabError(_restore_error(ns, proc.stderr, text))

    def iptables_save(self, ns: str, *, counters: bool = False, table: str | None = None) -> str:
        """``iptables-save`` inside ``ns`` (``-c``: with [packets:bytes] counters)."""
        argv = ["iptables-save", *(["-c"] if counters else []), *(["-t", table] if table else [])]
        return self.run(ns, *argv).stdout

    def rule_counters(self, ns: str, table: str = "filter") -> list[tuple[int, str]]:
        """Every rule of ``table`` as (packets matched, ``-A ...`` text), in order."""
        out: list[tuple[int, str]] = []
        for line in self.iptables_save(ns, counters=True, table=table).splitlines():
            match = re.match(r"^\[(\d+):\d+\] (-A .*)$", line)
            if match:
                out.append((int(match.group(1)), match.group(2)))
        return out

    # ---------------------------------------------------------- conntrack

    def conntrack(self, ns: str) -> list[ConntrackEntry]:
        """The connection-tracking table of ``ns`` (empty when the namespace tracks nothing yet)."""

        def read() -> str:
            path = Path("/proc/thread-self/net/nf_conntrack")
            return path.read_text() if path.exists() else ""

        return parse_conntrack(self.in_namespace(ns, read))

    def flush_conntrack(self, ns: str) -> None:
        """Forget every tracked connection of ``ns`` (ctnetlink; no conntrack(8) needed)."""
        self.in_namespace(ns, _ctnetlink_flush)

    # ---------------------------------------------------------- sockets and packets

    def open_socket(
        self, ns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        """A socket created inside ``ns``; the lab closes it on ``close()`` if the test did not."""
        sock = self.in_namespace(ns, lambda: socket.socket(family, kind, proto))
        self._sockets.append(sock)
        return sock

    def _packet_socket(self, ns: str, ifname: str, *, listen: bool) -> socket.socket:
        def make() -> socket.socket:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                if listen:
                    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
                    sock.bind((ifname, ETH_P_ALL))
                else:
                    sock.bind((ifname, 0))
            except OSError as exc:
                sock.close()
                raise LabError(f"cannot open a packet socket on {ns}/{ifname}: {exc}") from exc
            return sock

        return self.in_namespace(ns, make)

    def capture(self, points: Iterable[Point], *, outgoing: bool = False) -> Capture:
        """Start capturing on ``points`` now (frames received; also transmitted ones with ``outgoing``)."""
        sockets: dict[Point, socket.socket] = {}
        try:
            for ns, ifname in points:
                sockets[(ns, ifname)] = self._packet_socket(ns, ifname, listen=True)
        except BaseException:
            for sock in sockets.values():
                sock.close()
            raise
        capture = Capture(sockets, outgoing=outgoing)
        capture.drain()
        return capture

    def transmit(self, ns: str, ifname: str, frame: bytes) -> None:
        """Put one frame on the wire of an interface (as if its namespace had sent it)."""
        sock = self._packet_socket(ns, ifname, listen=False)
        try:
            sock.send(frame)
        finally:
            sock.close()

    def send(
        self,
        ns: str,
        ifname: str,
        frame_or_packet: bytes | Mapping[str, int],
        *,
        expect_on: Iterable[Point] = (),
        timeout: float = 0.5,
        settle: float = 0.05,
        keep: Callable[[Received], bool] | None = None,
        outgoing: bool = False,
        **build: object,
    ) -> list[Received]:
        """Transmit one frame on ``ns``/``ifname``; return what ``expect_on`` interfaces received.

        ``frame_or_packet`` is raw bytes or a header-table packet, built with
        ``support.packets.build_frame(packet, **build)`` (payload, tcp_flags,
        icmp_id...).  Frames are kept when ``keep`` says so; by default, those
        of the sent frame's Ethernet type (ARP resolution traffic is left out
        of an IPv4 test, ICMP errors are not).  Collection stops ``settle``
        seconds after every listed interface got a kept frame, else at
        ``timeout``: an empty list means "dropped everywhere listed".
        """
        frame = frame_or_packet if isinstance(frame_or_packet, bytes) else build_frame(frame_or_packet, **build)  # type: ignore[arg-type]
        points = list(dict.fromkeys(expect_on))
        if keep is None:
            eth_type = parse_frame(frame).packet["eth_type"]

            def keep(r: Received) -> bool:
                return r.frame is not None and r.frame.packet["eth_type"] == eth_type

        def everywhere(kept: Sequence[Received]) -> bool:
            return bool(points) and all(any(r.point == p for r in kept) for p in points)

        with self.capture(points, outgoing=outgoing) as capture:
            self.transmit(ns, ifname, frame)
            return capture.collect(timeout, keep=keep, until=everywhere, settle=settle)


def _route_argv(route: Route) -> list[str]:
    argv = [route.kind] if route.kind and route.kind != "unicast" else []
    argv.append(route.destination)
    if route.gateway:
        argv += ["via", route.gateway]
    if route.device:
        argv += ["dev", route.device]
    if route.onlink:
        argv.append("onlink")
    if route.metric is not None:
        argv += ["metric", str(route.metric)]
    if route.table and route.table != "main":
        argv += ["table", route.table]
    if route.scope:
        argv += ["scope", route.scope]
    if route.source:
        argv += ["src", route.source]
    if route.proto:
        argv += ["proto", route.proto]
    for hop in route.nexthops:
        argv.append("nexthop")
        if hop.gateway:
            argv += ["via", hop.gateway]
        if hop.device:
            argv += ["dev", hop.device]
        if hop.weight != 1:
            argv += ["weight", str(hop.weight)]
        if getattr(hop, "onlink", False):
            argv.append("onlink")
    return argv


def _restore_error(ns: str, stderr: str, text: str) -> str:
    message = f"iptables-restore in {ns} failed: {stderr.strip()}"
    match = re.search(r"line:? (\d+)", stderr)
    if match:
        lines = text.splitlines()
        number = int(match.group(1))
        if 0 < number <= len(lines):
            message += f"\n  line {number}: {lines[number - 1]}"
    return message
