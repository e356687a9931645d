"""A private, userspace-only Open vSwitch to test the models against.

``OvsSandbox`` runs its own ``ovsdb-server`` and ``ovs-vswitchd`` in a short
private directory under /tmp, on the *dummy* datapath
(``--enable-dummy=system --disable-system``): no kernel module, no kernel
device, nothing on the host network changes, and no packet is ever sent.  It
builds bridges from ``verifier.ir.Bridge`` objects, loads ``verifier.ir.Flow``
lists, and traces packets with ``ofproto/trace`` (side-effect free: no
``--generate``, so ``learn`` does not run and NORMAL does not learn MACs).

The recipe, its gotchas and timings are in
``shared/reference/ovs-userspace-oracle.md``.  Behaviours of real OVS (3.1)
a model must reproduce, and the limits of this harness, are listed in
``OVS_BEHAVIOURS`` and ``HARNESS_LIMITS`` below; ``tests/oracle/test_sandbox.py``
checks each behaviour.

Typical use::

    with OvsSandbox() as ovs:
        ovs.add_bridge(br_int)
        ovs.load_flows("br-int", br_int.flows)
        result = ovs.trace("br-int", packet, "tap-vm1")
        assert {e.port for e in result.outputs} == {"tap-vm2"}
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType

from support.odp import (
    CONTROLLER_PORT,
    TUNNEL_VPORT,
    WIRE_FIELDS,
    Emission,
    OdpError,
    TracePass,
    TunnelInfo,
    run_passes,
)
from verifier import ir
from verifier.header import (
    ETH_TYPE_IP,
    ETH_TYPE_IPV6,
    FIELDS,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_SCTP,
    IPPROTO_UDP,
    OFPP_LOCAL,
    describe,
    normalize,
)
from verifier.snapshot.flow_writer import format_flow

__all__ = [
    "CONTROLLER_PORT",
    "HARNESS_LIMITS",
    "OVS_BEHAVIOURS",
    "WIRE_FIELDS",
    "Emission",
    "FlowLoadError",
    "OdpError",
    "OvsSandbox",
    "SandboxError",
    "TraceError",
    "TraceResult",
    "TunnelInfo",
    "UnixctlConnection",
    "UnixctlError",
    "daemon_running",
]

REQUIRED_BINARIES = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl")
VSWITCHD_DUMMY_ARGS = ("--enable-dummy=system", "--disable-system", "--disable-system-route")
DEFAULT_FAIL_MODE = "secure"
LOCAL_NO_FLOOD_DEFAULT = True
"""The LOCAL port (``br-int`` on bridge br-int) is a NORMAL *trunk*: left
floodable it receives every flood, tagged with the frame's VLAN.  Unless the
IR carries a LOCAL ``OFPort`` (then its ``config`` is applied as it is, so a
snapshot reproduces the node), the sandbox sets NO_FLOOD on LOCAL, as the
reference topology does, so that hand-built IR bridges without a LOCAL
OFPort see no LOCAL output.  PORT_DOWN would not do: OVS still floods to a
down port (OVS_BEHAVIOURS["port_down_flooded"]).  ``OvsSandbox(local_no_flood=
False)`` leaves LOCAL floodable instead."""

OFPORT_CONFIG_MOD_PORT = {
    "NO_FLOOD": "no-flood",
    "NO_FWD": "no-forward",
    "NO_RECV": "no-receive",
    "NO_PACKET_IN": "no-packet-in",
    "PORT_DOWN": "down",
}
"""OFPort.config flags (as ``ovs-ofctl show`` prints them) the sandbox applies with ``mod-port``."""

TUNNEL_TYPES = {"gre": "gre", "vxlan": "vxlan", "geneve": "genev"}
"""Tunnel interface types the sandbox creates, and the prefix of their datapath vport."""
_DEFAULT_DST_PORT = {"vxlan": 4789, "geneve": 6081}
_PASSTHROUGH_TYPES = frozenset({"", "internal", "patch", "dummy", *TUNNEL_TYPES})
_ENDPOINT_TYPES = frozenset({"system", "tap", "dpdk", "dpdkvhostuser", "dpdkvhostuserclient", "afxdp"})
"""Interface types that are only endpoints to the models: created as plain dummy ports."""

OVS_BEHAVIOURS: Mapping[str, str] = {
    # ---- trace mechanics
    "no_side_effects": "A trace without --generate runs no learn() and NORMAL learns no MAC: "
    "'>> suppressing side effects, so learn action ignored'; a later trace still floods.",
    "patch_followed": "Output to a patch port continues in the peer bridge (a new bridge(...) block); "
    "patch ports never appear in Datapath actions.",
    "patch_peer_missing": "A patch port whose peer does not exist yet gets its ofport but the error "
    "\"No usable peer 'X' exists in 'system' datapath.\"; it clears once the peer is added.",
    "flood_order": "NORMAL/FLOOD output order is hash order and differs between runs; compare as a multiset.",
    "lazy_commit": "Header rewrites reach the datapath lazily, just before the next output, grouped per "
    "header (set(eth(...)),set(ipv4(...)),set(udp(...))) and not in OpenFlow action order; "
    "mod_vlan_pcp on a tagged frame shows as pop_vlan,push_vlan(vid=..,pcp=..).",
    "recirc_ids": "recirc ids come from a global counter and grow from trace to trace: never compare them.",
    "trace_flow_syntax": "In a trace flow tp_src/tp_dst are TCP-only (udp_src/sctp_src otherwise), nd_sll "
    "is refused unless icmpv6_type=135 and nd_tll unless 136, 'ip' with 'tcp' is 'Ethernet type set "
    "multiple times'; a field left out is 0 (nw_ttl=0 breaks dec_ttl): always give full headers.",
    # ---- NORMAL and ports
    "local_is_trunk": "The LOCAL port is a NORMAL trunk: a flood reaches it tagged (push_vlan(vid=v)) "
    "unless NO_FLOOD is set on it.",
    "port_down_flooded": "PORT_DOWN (dummy LOCAL ports start PORT_DOWN/LINK_DOWN) does not keep a port "
    "out of NORMAL floods in a trace; NO_FLOOD and NO_FWD do.",
    "access_tagged_drop": "NORMAL drops a frame tagged VLAN v (v != 0) on an access port, even when v is "
    "the port's own tag: '>>>> dropping VLAN v tagged packet received on port P configured as VLAN t "
    "access port <<<<', Datapath actions: drop.",
    "priority_tag": "A priority-tagged frame (VID 0) on an access port is taken as untagged: pop_vlan "
    "first; the PCP is kept when NORMAL re-tags it for a trunk (push_vlan(vid=t,pcp=p)).",
    "trunk_rules": "On a trunks=[...] port without tag, an untagged frame is dropped ('dropping VLAN 0 "
    "packet received on port P not configured for trunking VLAN 0') and so is a VLAN not listed.",
    # ---- tunnels
    "tunnel_output": "With tnl_push_pop false, output to a tunnel port is "
    "set(tunnel(tun_id=K,src=<local_ip>,dst=<remote_ip>,ttl=64,flags(df|key))),gre_sys; src= is "
    "absent without local_ip; VXLAN/Geneve add tp_dst=4789/6081 and use vxlan_sys_<port>/"
    "genev_sys_<port>; every GRE port shares gre_sys, so the tunnel is told by dst (and tun_id).",
    "tunnel_fixed_key": "A tunnel port with a fixed key/out_key sends that key whatever set_tunnel said.",
    "tunnel_ingress": "A packet from a tunnel port is traced with tun_id/tun_src/tun_dst; table-3 style "
    "tun_id matches work on it and the tunnel metadata never reaches a non-tunnel output.",
    # ---- OpenFlow pipeline corner cases
    "missing_table": "resubmit to a table with no flows (or no match): the trace prints 'N. No match.' "
    "and 'drop' for that lookup, then processing continues after the resubmit.",
    "table_miss": "A table-0 miss in a secure bridge drops (Datapath actions: drop, no packet-in).",
    "miss_packet_in": "While any OpenFlow 1.0-1.2 connection with controller id 0 is open (an ovs-ofctl "
    "session counts, even one that has just exited and that vswitchd has not reaped yet), a table-0 "
    "or goto_table miss is a packet-in instead: userspace(...controller(reason=7...)), the implicit "
    "miss.  A table-miss config of drop (OpenFlow 1.1 table-mod) keeps it a drop.",
    "nonexistent_port": "output:<no such port> prints '>> Nonexistent output port' and outputs nothing; "
    "the remaining actions still run.",
    "in_port_skip": "Output to the packet's input port prints '>> skipping output to input port' and "
    "outputs nothing (the in_port action hair-pins it).",
    "max_depth": "A resubmit loop stops at '>>>> over max translation depth 64 <<<<' and 'Translation "
    "failed (Recursion too deep), packet is dropped.': Datapath actions is 'drop', so outputs made "
    "before the loop are lost too.",
    "dec_ttl": "dec_ttl on nw_ttl 0 or 1 prints '>> IPv4 decrement TTL exception' and sends "
    "userspace(pid=0,controller(reason=2,...)): a packet-in (reason invalid TTL) of the packet with its "
    "TTL unchanged; outputs before it stay, the rest of its flow's actions never run, but the actions "
    "of a flow that resubmitted to it do (compose_dec_ttl stops only the current action list).  On a "
    "non-IP frame dec_ttl does nothing.",
    # ---- conntrack
    "ct_fork": "ct(table=N) gives 'ct(...),recirc(id)': the resumed pass has its own block and "
    "'Datapath actions:'; the original pipeline goes on after ct() untracked, its later outputs "
    "following recirc in the same list.  The resumed ct_state is assumed: trk|new, or per ct() from "
    "--ct-next in OVS flag syntax ('trk,est'; '+trk+est' is refused).",
    "ct_nat": "NAT is simulated only for a recirculating ct() with explicit nat(...) addresses: the "
    "first address and first port of the range replace nw_dst/tp_dst (nw_src/tp_src for src) in "
    "the resumed pass ('Modified flow:'); a bare nat changes nothing; ct(commit,nat(...)) without "
    "table= rewrites only inside the datapath ct action.",
    # ---- flow installation and dumps
    "openflow13_prerequisites": "OpenFlow 1.1+ refuses an action whose prerequisite the match lacks "
    "(dec_ttl/mod_nw_* without ip, strip_vlan without a VLAN match): 'none of the usable flow formats'; "
    "OpenFlow 1.0 + NXM accepts them.",
    "openflow13_mod_vlan": "Installed under OpenFlow 1.1+, mod_vlan_vid/mod_vlan_pcp in a flow whose match "
    "does not require a VLAN header is encoded as push_vlan + set_field: a tagged frame gets a second "
    "tag.  Installed under OpenFlow 1.0 it rewrites the tag in place and pushes one only on an "
    "untagged frame.  An OpenFlow 1.0 dump-flows prints both as mod_vlan_vid:N, and leaves out a "
    "push_vlan:0x8100 installed through OpenFlow 1.3 altogether.",
    "openflow10_goto_table": "Installed under OpenFlow 1.0, goto_table:N becomes resubmit(,N); an "
    "OpenFlow 1.0 dump-flows prints an installed goto_table as resubmit(,N) too.",
    "dump_spellings": "-O OpenFlow13 dumps print mod_vlan_vid:N as push_vlan:0x8100,set_field:"
    "<4096+N>->vlan_vid and set_tunnel as set_field:..->tun_id; OpenFlow 1.0 dumps print set_tunnel "
    "installed via OpenFlow 1.3 as load:..->NXM_NX_TUN_ID[].",
}
"""Real-OVS behaviours a concrete model must match; each is checked in tests/oracle."""

HARNESS_LIMITS: Mapping[str, str] = {
    "datapath": "All bridges use the dummy 'system' datapath; the IR's datapath_type is ignored "
    "(netdev would create persistent kernel taps; patch ports need one type).",
    "tunnels": "Tunnel output is kernel-style (tnl_push_pop false): a DPDK node's native tunnelling "
    "(tnl_push, then the underlay bridge) is not reproduced.",
    "endpoint_types": "Interfaces of type system/tap/dpdk*/afxdp are created as plain dummy ports; other "
    "unknown types raise.",
    "tunnel_name": "A tunnel Emission is named after the tunnel interface whose remote_ip (and local_ip "
    "and a fixed out_key, if set) match the outer header, when exactly one does (else the one "
    "remote_ip=flow tunnel of that vport); otherwise it keeps the datapath vport name (gre_sys...).",
    "nat": "Outputs after ct(nat) in the same pass raise (they depend on a real connection); a resumed "
    "pass takes NAT from the trace's own 'Modified flow'.",
    "fields": "Emission.packet holds only wire fields of verifier.header; metadata (registers, "
    "ct_*, pkt_mark) is not observable in Datapath actions.",
    "openflow10_fallback": "A flow OpenFlow 1.3 refuses (action prerequisite missing from the match), and "
    "every flow holding mod_vlan_vid/mod_vlan_pcp (OVS_BEHAVIOURS['openflow13_mod_vlan']), is "
    "installed with OpenFlow 1.0 + NXM; there a goto_table would be encoded as resubmit(,N).",
    "table_miss_drop": "Every table's miss is set to drop (ovs-ofctl -O OpenFlow11 mod-table BR all drop), "
    "as on a node whose controller speaks OpenFlow 1.3; otherwise the ovs-ofctl runs of the harness "
    "itself would now and then turn a miss into a packet-in (OVS_BEHAVIOURS['miss_packet_in']).",
    "mac_learning": "No fdb/add helper: NORMAL always floods unknown unicast in a trace.",
    "patches": "A patch port whose peer is never added stays unresolved (unresolved_patches) and "
    "forwards nothing; it is not an error.",
    "metadata_in": "Trace flows carry the header table's fields only: nw_tos, nw_ecn, nw_frag, tcp_flags, "
    "ipv6_label and the other tunnel metadata are 0.",
}
"""What this harness does not reproduce or interpret."""


class SandboxError(RuntimeError):
    """The sandbox could not do what it was asked; the message carries OVS's own error."""


class FlowLoadError(SandboxError):
    """``ovs-ofctl`` rejected a flow; ``line`` is the offending flow text when known."""

    def __init__(self, message: str, line: str | None = None) -> None:
        super().__init__(message if line is None else f"{message}\n  offending flow: {line}")
        self.line = line

    @property
    def protocol_mismatch(self) -> bool:
        """ovs-ofctl found no OpenFlow version that can express every flow given."""
        return "usable flow formats" in str(self)


class TraceError(SandboxError):
    """``ofproto/trace`` refused the flow, or its output could not be interpreted."""


class UnixctlError(SandboxError):
    """A unixctl command returned an error (the text is vswitchd's reply)."""


# ---------------------------------------------------------------- unixctl


class UnixctlConnection:
    """A persistent JSON-RPC connection to a daemon's ``.ctl`` socket (what ``ovs-appctl`` speaks).

    Replies are not newline-delimited, so they are decoded from a growing
    buffer.  One connection serves any number of calls.
    """

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._sock.connect(path)
        self._next_id = 0
        self._buffer = b""
        self._decoder = json.JSONDecoder()

    def call(self, method: str, *params: str) -> str:
        """Run one command; returns its text, raises UnixctlError with the daemon's error text."""
        self._next_id += 1
        request = {"method": method, "params": list(params), "id": self._next_id}
        self._sock.sendall(json.dumps(request).encode())
        reply = self._read_message()
        if reply.get("id") != self._next_id:
            raise UnixctlError(f"{method}: reply for id {reply.get('id')}, expected {self._next_id}")
        if reply.get("error") is not None:
            raise UnixctlError(f"{method} {' '.join(params)}: {str(reply['error']).strip()}")
        return str(reply.get("result") or "")

    def _read_message(self) -> dict[str, object]:
        while True:
            text = self._buffer.lstrip()
            if text:
                with contextlib.suppress(UnicodeDecodeError, json.JSONDecodeError):
                    decoded = text.decode()
                    message, end = self._decoder.raw_decode(decoded)
                    self._buffer = decoded[end:].encode()
                    return dict(message)
            chunk = self._sock.recv(65536)
            if not chunk:
                raise UnixctlError("connection closed by the daemon")
            self._buffer += chunk

    def close(self) -> None:
        self._sock.close()


# ---------------------------------------------------------------- trace result


@dataclass(frozen=True)
class TraceResult:
    """What ``ofproto/trace`` said about one packet.

    ``text`` is the raw trace; ``flow`` the flow string traced;
    ``datapath_actions`` one ``Datapath actions:`` string per pass (the first
    pass, then each recirculation in trace order); ``outputs`` every packet
    that leaves the switch, in canonical sorted order; ``notes`` the trace's
    ``>>`` lines (warnings such as nonexistent port or TTL exception);
    ``bridges`` the bridges visited, in order.
    """

    text: str
    flow: str
    datapath_actions: list[str]
    outputs: list[Emission]
    passes: list[TracePass] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bridges: list[str] = field(default_factory=list)

    @property
    def ports(self) -> list[str]:
        """The output port names, sorted (with repeats)."""
        return [e.port for e in self.outputs]

    @property
    def dropped(self) -> bool:
        return not self.outputs

    def has_note(self, fragment: str) -> bool:
        return any(fragment in note for note in self.notes)


_RECIRC_HEADER = re.compile(r"^recirc\((0x[0-9a-fA-F]+|\d+)\) - ")
_DP_ACTIONS = "Datapath actions: "
_BRIDGE_LINE = re.compile(r'^bridge\("([^"]+)"\)')
_NAT_FIELDS = {
    "nw_src": "ip_src",
    "nw_dst": "ip_dst",
    "ipv6_src": "ipv6_src",
    "ipv6_dst": "ipv6_dst",
    "tp_src": "tp_src",
    "tp_dst": "tp_dst",
}


_L4_SPELLING = {IPPROTO_UDP: "udp", IPPROTO_SCTP: "sctp"}
ND_NS, ND_NA = 135, 136


def ovs_normalize(packet: Mapping[str, int]) -> dict[str, int]:
    """``verifier.header.normalize``, plus what OVS's flow extraction also zeroes.

    A neighbour solicitation carries only a source link-layer address
    (``nd_sll`` = ``arp_sha``) and an advertisement only a target one
    (``nd_tll`` = ``arp_tha``); OVS holds the other as 0 and its flow parser
    refuses it ("prerequisites not met for setting nd_tll").  OVS parses ICMP
    only in IPv4 and ICMPv6 only in IPv6 (``icmp_type`` on an IPv6 packet is
    refused), so the other pairing carries no ``tp_src``/``tp_dst``; and ICMP
    type and code are one byte each ("value too large for 1-byte field
    icmp_code"), so they are cut to 8 bits.
    """
    pkt = normalize(packet)
    icmp = {ETH_TYPE_IP: IPPROTO_ICMP, ETH_TYPE_IPV6: IPPROTO_ICMPV6}
    if pkt["ip_proto"] in icmp.values() and pkt["eth_type"] in icmp:
        keep = pkt["ip_proto"] == icmp[pkt["eth_type"]]
        pkt["tp_src"] = pkt["tp_src"] & 0xFF if keep else 0
        pkt["tp_dst"] = pkt["tp_dst"] & 0xFF if keep else 0
    if pkt["eth_type"] == ETH_TYPE_IPV6 and pkt["ip_proto"] == IPPROTO_ICMPV6:
        if pkt["tp_src"] == ND_NS:
            pkt["arp_tha"] = 0
        elif pkt["tp_src"] == ND_NA:
            pkt["arp_sha"] = 0
    return pkt


def _drop_zero_nd_fields(flow: str, packet: Mapping[str, int]) -> str:
    if packet["eth_type"] != ETH_TYPE_IPV6 or packet["ip_proto"] != IPPROTO_ICMPV6:
        return flow
    absent = {ND_NS: "nd_tll", ND_NA: "nd_sll"}.get(packet["tp_src"])
    if absent is None:
        return flow
    return ",".join(part for part in flow.split(",") if not part.startswith(f"{absent}="))


def _drop_foreign_icmp_fields(flow: str, packet: Mapping[str, int]) -> str:
    """Leave out ``icmp_*`` on IPv6 and ``icmpv6_*`` on IPv4: OVS parses neither (see ovs_normalize)."""
    foreign = {(ETH_TYPE_IPV6, IPPROTO_ICMP): "icmp_", (ETH_TYPE_IP, IPPROTO_ICMPV6): "icmpv6_"}
    prefix = foreign.get((packet["eth_type"], packet["ip_proto"]))
    if prefix is None:
        return flow
    return ",".join(p for p in flow.split(",") if not p.startswith((f"{prefix}type=", f"{prefix}code=")))


def trace_flow_string(packet: Mapping[str, int], in_port_name: str) -> str:
    """``verifier.header.describe`` of a normalized packet, in_port by name, fixed for OVS 3.1.

    OVS's ``tp_src``/``tp_dst`` are aliases of ``tcp_src``/``tcp_dst`` only:
    on a UDP or SCTP packet the trace parser rejects them ("prerequisites not
    met for setting tp_src"), so they are respelled ``udp_*``/``sctp_*``.
    ``nd_tll`` on a solicitation and ``nd_sll`` on an advertisement are left
    out (``packet`` must come from ``ovs_normalize``, which zeroes them), and
    so are ICMP type/code on IPv6 and ICMPv6 type/code on IPv4.
    """
    flow = _drop_zero_nd_fields(describe(packet, port_names={packet["in_port"]: in_port_name}), packet)
    flow = _drop_foreign_icmp_fields(flow, packet)
    l4 = _L4_SPELLING.get(packet["ip_proto"])
    if l4 is not None and packet["eth_type"] in (ETH_TYPE_IP, ETH_TYPE_IPV6):
        flow = re.sub(r"(^|,)tp_(src|dst)=", rf"\1{l4}_\2=", flow)
    return flow


def split_trace(text: str) -> tuple[list[TracePass], list[str], list[str]]:
    """The passes (recirc id, datapath actions, NAT), ``>>`` notes and bridges of a trace text."""
    passes: list[TracePass] = []
    notes: list[str] = []
    bridges: list[str] = []
    recirc_id = 0
    nat: dict[str, int] = {}
    for line in text.splitlines():
        stripped = line.strip()
        header = _RECIRC_HEADER.match(stripped)
        bridge = _BRIDGE_LINE.match(stripped)
        if header:
            recirc_id, nat = int(header.group(1), 0), {}
        elif stripped.startswith("Modified flow:"):
            nat = _parse_nat(stripped.removeprefix("Modified flow:"))
        elif stripped.startswith(_DP_ACTIONS):
            passes.append(TracePass(recirc_id, stripped.removeprefix(_DP_ACTIONS), nat))
        elif bridge:
            bridges.append(bridge.group(1))
        elif stripped.startswith(">>"):
            notes.append(stripped)
    return passes, notes, bridges


def _parse_nat(text: str) -> dict[str, int]:
    """The header-table fields of a trace's ``Modified flow:`` line (raises on any other key)."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        target = _NAT_FIELDS.get(key)
        if target is None:
            raise TraceError(f"NAT simulation changed {key!r}, which is not interpreted: {text.strip()}")
        kind = FIELDS[target].kind
        out[target] = int(ipaddress.ip_address(value)) if kind in ("ipv4", "ipv6") else int(value)
    return out


# ---------------------------------------------------------------- sandbox


@dataclass(frozen=True)
class _TunnelPort:
    name: str
    kind: str
    remote_ip: str | None
    local_ip: str | None
    out_key: str | None
    dst_port: int | None


class OvsSandbox:
    """A private ovsdb-server + ovs-vswitchd on the dummy datapath; a context manager.

    ``stop()`` (also run by ``__exit__`` and, as a last resort, at interpreter
    exit) terminates only the two PIDs read from this sandbox's own pidfiles,
    after checking their command line names this sandbox's directory, and
    removes the directory.
    """

    def __init__(self, *, timeout: float = 10.0, local_no_flood: bool = LOCAL_NO_FLOOD_DEFAULT) -> None:
        self.timeout = timeout
        self.local_no_flood = local_no_flood
        self.dir: Path | None = None
        self.pids: dict[str, int] = {}
        self.notes: list[str] = []
        self._env: dict[str, str] = {}
        self._ctl: UnixctlConnection | None = None
        self._ports: dict[str, dict[str, int]] = {}
        self._tunnels: dict[str, _TunnelPort] = {}
        self._unresolved_patches: set[str] = set()
        self._finalizer: weakref.finalize | None = None

    # ---------------------------------------------------------- lifecycle

    @staticmethod
    def available() -> tuple[bool, str]:
        """Whether a sandbox can run here, and why not."""
        missing = [b for b in REQUIRED_BINARIES if shutil.which(b) is None]
        if missing:
            names = ", ".join(missing)
            return False, f"Open vSwitch binaries not on PATH: {names} (apt-get install openvswitch-switch)"
        try:
            import ovs.flow.odp  # noqa: F401
        except ImportError as exc:
            return False, f"python package ovs[flow] not importable: {exc}"
        return True, "ok"

    def __enter__(self) -> OvsSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> OvsSandbox:
        """Create the directory and database, start both daemons, connect to vswitchd."""
        if self.dir is not None:
            raise SandboxError("sandbox already started")
        self.dir = Path(tempfile.mkdtemp(prefix="ovs-", dir="/tmp"))
        self.pids = {}
        self._env = {**os.environ, **{f"OVS_{k}DIR": str(self.dir) for k in ("RUN", "DB", "LOG", "SYSCONF")}}
        self._finalizer = weakref.finalize(self, _stop_daemons, self.dir, self.pids)
        try:
            self._start_daemons()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_daemons(self) -> None:
        d = self._path
        self._run(["ovsdb-tool", "create", str(d / "conf.db")])
        self._spawn(
            "ovsdb-server",
            [str(d / "conf.db"), f"--remote=punix:{d / 'db.sock'}", "-vconsole:off"],
        )
        self.vsctl("--no-wait", "init")
        self._spawn("ovs-vswitchd", [f"unix:{d / 'db.sock'}", *VSWITCHD_DUMMY_ARGS, "-vconsole:off"])
        self.vsctl("set", "Open_vSwitch", ".", "external_ids:ready=true")  # waits for vswitchd
        ctl = d / f"ovs-vswitchd.{self.pids['ovs-vswitchd']}.ctl"
        self._ctl = UnixctlConnection(str(ctl), self.timeout)

    def _spawn(self, daemon: str, args: list[str]) -> None:
        d = self._path
        pidfile = d / f"{daemon}.pid"
        argv = [daemon, *args, f"--pidfile={pidfile}", f"--log-file={d / daemon}.log", "--detach", "--no-chdir"]
        with open(d / f"{daemon}.stderr", "wb") as err:
            proc = subprocess.run(
                argv, env=self._env, stdin=subprocess.DEVNULL, stdout=err, stderr=err, timeout=self.timeout
            )
        if proc.returncode != 0:
            raise SandboxError(f"{daemon} failed to start (rc {proc.returncode}):\n{self._tail(daemon)}")
        self.pids[daemon] = int(pidfile.read_text().strip())

    def stop(self) -> None:
        """Stop both daemons (by PID only), wait until they are gone, remove the directory."""
        if self._ctl is not None:
            with contextlib.suppress(OSError):
                self._ctl.close()
            self._ctl = None
        if self._finalizer is not None:
            self._finalizer()  # runs _stop_daemons once
            self._finalizer = None
        self.dir = None

    @property
    def running(self) -> bool:
        return self.dir is not None and all(_alive(pid) for pid in self.pids.values())

    @property
    def environment(self) -> dict[str, str]:
        """The environment that points OVS tools at this sandbox, for a process a test starts itself."""
        if self.dir is None:
            raise SandboxError("sandbox not started")
        return dict(self._env)

    @property
    def _path(self) -> Path:
        if self.dir is None:
            raise SandboxError("sandbox not started")
        return self.dir

    # ---------------------------------------------------------- commands

    def _run(self, argv: Sequence[str], stdin: str | None = None) -> str:
        proc = subprocess.run(
            list(argv),
            env=self._env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=self.timeout,
        )
        if proc.returncode != 0:
            raise SandboxError(f"{' '.join(argv[:4])}... failed (rc {proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def vsctl(self, *args: str) -> str:
        """Run ``ovs-vsctl`` against this sandbox's database."""
        return self._run(["ovs-vsctl", f"--timeout={int(self.timeout)}", *args])

    def ofctl(self, *args: str, stdin: str | None = None) -> str:
        """Run ``ovs-ofctl`` (bridges are found through OVS_RUNDIR)."""
        return self._run(["ovs-ofctl", *args], stdin)

    def appctl(self, method: str, *params: str) -> str:
        """Run a vswitchd unixctl command over the persistent connection."""
        if self._ctl is None:
            raise SandboxError("sandbox not started")
        return self._ctl.call(method, *params)

    def ovs_version(self) -> str:
        """The running vswitchd's version, e.g. ``3.1.0``."""
        text = self.appctl("version")
        match = re.search(r"Open vSwitch\)\s+(\S+)", text)
        return match.group(1) if match else text.strip()

    def log(self, daemon: str = "ovs-vswitchd") -> str:
        """A daemon's whole log file."""
        path = self._path / f"{daemon}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _tail(self, daemon: str, lines: int = 15) -> str:
        text = self.log(daemon)
        stderr = self._path / f"{daemon}.stderr"
        if stderr.exists():
            text += stderr.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # ---------------------------------------------------------- topology

    def add_bridge(self, bridge: ir.Bridge) -> None:
        """Create a bridge, its ports and interfaces in one ovs-vsctl transaction, then check them.

        Every interface gets ``ofport_request`` = its ``OFPort`` number (by
        name) and must end up with exactly that ofport and an empty error
        column.  ``OFPort`` entries with no OVSDB port become plain dummy
        ports.  Then OFPort.config flags are applied with ``mod-port``
        (NO_FLOOD on LOCAL unless the IR has a LOCAL OFPort, see
        LOCAL_NO_FLOOD_DEFAULT), every table's miss is set to drop
        (``HARNESS_LIMITS["table_miss_drop"]``) and ``tnl_push_pop`` is
        switched off.
        """
        if bridge.datapath_type not in (None, "", "system"):
            self.notes.append(f"{bridge.name}: datapath_type {bridge.datapath_type!r} ignored (dummy system)")
        requested = {p.name: p.number for p in bridge.of_ports if p.number != OFPP_LOCAL}
        self.vsctl(*_bridge_commands(bridge, requested))
        self._ports[bridge.name] = self._check_interfaces(bridge, requested)
        for port in _all_interfaces(bridge):
            self._remember_tunnel(port)
        self._apply_port_config(bridge)
        self.ofctl("-O", "OpenFlow11", "mod-table", bridge.name, "all", "drop")
        self.appctl("dpif/set-dp-features", bridge.name, "tnl_push_pop", "false")

    def _check_interfaces(self, bridge: ir.Bridge, requested: Mapping[str, int]) -> dict[str, int]:
        """Every interface of the bridge has its requested ofport and no error; returns name -> ofport.

        A patch port whose peer is not in the sandbox yet carries the error
        "No usable peer"; it is tolerated and checked again once a later
        bridge brings the peer (``unresolved_patches`` lists those waiting).
        """
        names = [i.name for i in _all_interfaces(bridge)] + [n for n in requested if bridge.interface(n) is None]
        patches = {i.name for i in _all_interfaces(bridge) if i.type == "patch"}
        rows = self._interface_rows()
        numbers: dict[str, int] = {}
        problems: list[str] = []
        for name in [bridge.name, *names]:
            ofport, error = rows.get(name, (-1, "interface not in the database"))
            want = OFPP_LOCAL if name == bridge.name else requested.get(name)
            if name in patches and error.startswith("No usable peer"):
                self._unresolved_patches.add(name)
                error = ""
            if ofport in (-1, None) or error or (want is not None and ofport != want):
                problems.append(f"{name}: ofport {ofport} (requested {want}) error {error!r}")
            elif ofport is not None:
                numbers[name] = ofport
        for name in sorted(self._unresolved_patches - patches):
            _, error = rows.get(name, (None, "interface not in the database"))
            if not error:
                self._unresolved_patches.discard(name)
            elif not error.startswith("No usable peer"):
                problems.append(f"{name}: error {error!r}")
        if problems:
            raise SandboxError(
                f"bridge {bridge.name}: " + "; ".join(problems) + "\nvswitchd log:\n" + self._tail("ovs-vswitchd")
            )
        return numbers

    @property
    def unresolved_patches(self) -> list[str]:
        """Patch interfaces whose peer has not been added (they forward nothing)."""
        return sorted(self._unresolved_patches)

    def _interface_rows(self) -> dict[str, tuple[int | None, str]]:
        raw = self.vsctl("--format=json", "--data=json", "--columns=name,ofport,error", "list", "Interface")
        rows: dict[str, tuple[int | None, str]] = {}
        for name, ofport, error in json.loads(raw)["data"]:
            number = ofport if isinstance(ofport, int) else None
            rows[name] = (number, error if isinstance(error, str) else "")
        return rows

    def _apply_port_config(self, bridge: ir.Bridge) -> None:
        configs = {p.name: p.config for p in bridge.of_ports}
        local = next((p for p in bridge.of_ports if p.number == OFPP_LOCAL), None)
        if local is None:
            configs[bridge.name] = ("NO_FLOOD",) if self.local_no_flood else ()
        else:
            configs.pop(local.name, None)  # LOCAL may carry another name in the IR
            configs[bridge.name] = local.config
        for port, config in configs.items():
            for flag in config:
                if flag in OFPORT_CONFIG_MOD_PORT:
                    self.ofctl("mod-port", bridge.name, port, OFPORT_CONFIG_MOD_PORT[flag])

    def _remember_tunnel(self, iface: ir.Interface) -> None:
        if iface.type not in TUNNEL_TYPES:
            return
        dst_port = iface.option("dst_port")
        self._tunnels[iface.name] = _TunnelPort(
            name=iface.name,
            kind=TUNNEL_TYPES[iface.type],
            remote_ip=iface.option("remote_ip"),
            local_ip=iface.option("local_ip"),
            out_key=iface.option("out_key") or iface.option("key"),
            dst_port=int(dst_port) if dst_port else _DEFAULT_DST_PORT.get(iface.type),
        )

    def delete_bridge(self, bridge_name: str) -> None:
        """Delete a bridge (and its ports) and forget what the sandbox knew about it."""
        self.vsctl("--if-exists", "del-br", bridge_name)
        for name in self._ports.pop(bridge_name, {}):
            self._tunnels.pop(name, None)
            self._unresolved_patches.discard(name)

    def port_numbers(self, bridge_name: str) -> dict[str, int]:
        """Interface name -> OpenFlow port number on a bridge added here (LOCAL included)."""
        if bridge_name not in self._ports:
            raise SandboxError(f"bridge {bridge_name} was not added to this sandbox")
        return dict(self._ports[bridge_name])

    # ---------------------------------------------------------- flows

    def load_flows(self, bridge_name: str, flows: Iterable[ir.Flow]) -> None:
        """Replace all flows of a bridge with ``flows`` (``format_flow(style="add")`` text).

        Each flow goes in under the OpenFlow version that keeps its meaning:

        * OpenFlow 1.3 by default, in one atomic ``ovs-ofctl -O OpenFlow13
          --bundle replace-flows`` (OpenFlow 1.3 is needed for ``goto_table``;
          Nicira extensions such as ``learn``, ``resubmit``, NXM ``load``/``move``
          work under it too);
        * OpenFlow 1.0 + NXM for a flow holding ``mod_vlan_vid``/``mod_vlan_pcp``:
          OpenFlow 1.3 encodes them as ``push_vlan`` + ``set_field`` whenever
          the match does not require a VLAN header, so a tagged frame would get
          a second tag (``OVS_BEHAVIOURS["openflow13_mod_vlan"]``), while the IR
          (``ir.SetVlanVid``) means "rewrite the tag, push one if there is none";
        * OpenFlow 1.0 + NXM for a flow OpenFlow 1.3 refuses because an action's
          prerequisite is missing from the match (``dec_ttl`` or ``mod_nw_dst``
          without ``ip``, ``strip_vlan`` without a VLAN match: "none of the usable
          flow formats"), which OpenFlow 1.0 + NXM accepts.  Such flows are
          recognised from the IR; one that is missed makes the bundle fail,
          and then the OpenFlow 1.3 flows are added in halves, each flow that
          still fails alone going in under OpenFlow 1.0.

        Every flow installed under OpenFlow 1.0 is listed in ``notes``
        (``HARNESS_LIMITS["openflow10_fallback"]``); one that OpenFlow 1.0
        refuses too (``push_vlan`` with ``mod_vlan_vid``) goes in under
        OpenFlow 1.3 with a note.  Only the OpenFlow 1.3 bundle is atomic: when
        an OpenFlow 1.0 flow is refused for another reason, the error is raised
        with the OpenFlow 1.3 flows already in place.
        """
        modern: list[str] = []
        legacy: list[str] = []
        for f in flows:
            (legacy if _prefers_openflow10(f) else modern).append(format_flow(f, style="add"))
        try:
            self._ofctl_flows(("-O", "OpenFlow13", "--bundle"), "replace-flows", bridge_name, modern)
        except FlowLoadError as exc:
            if not exc.protocol_mismatch:
                raise
            self.delete_flows(bridge_name)
            self._add_in_halves(bridge_name, modern)
        self._add_legacy(bridge_name, legacy)

    def add_flow_text(self, bridge_name: str, text: str) -> None:
        """Add flows given as ``ovs-ofctl add-flows`` text (one per line), keeping the others.

        As in ``load_flows``, a flow whose actions hold ``mod_vlan_vid`` or
        ``mod_vlan_pcp`` goes in under OpenFlow 1.0 + NXM, the others under
        OpenFlow 1.3 when it accepts them.
        """
        lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        self._add_in_halves(bridge_name, [line for line in lines if not _MOD_VLAN.search(line)])
        self._add_legacy(bridge_name, [line for line in lines if _MOD_VLAN.search(line)])

    def _add_in_halves(self, bridge_name: str, lines: list[str]) -> None:
        """OpenFlow 1.3 first; a single flow it refuses goes in under OpenFlow 1.0 + NXM."""
        if not lines:
            return
        try:
            self._ofctl_flows(("-O", "OpenFlow13", "--bundle"), "add-flows", bridge_name, lines)
            return
        except FlowLoadError as exc:
            if not exc.protocol_mismatch:
                raise
        if len(lines) == 1:
            self._ofctl_flows((), "add-flows", bridge_name, lines)
            self.notes.append(f"{bridge_name}: loaded with OpenFlow 1.0 + NXM: {lines[0]}")
            return
        middle = len(lines) // 2
        self._add_in_halves(bridge_name, lines[:middle])
        self._add_in_halves(bridge_name, lines[middle:])

    def _add_legacy(self, bridge_name: str, lines: list[str]) -> None:
        """OpenFlow 1.0 + NXM first; a single flow it refuses goes in under OpenFlow 1.3."""
        if not lines:
            return
        try:
            self._ofctl_flows((), "add-flows", bridge_name, lines)
            self.notes.extend(f"{bridge_name}: loaded with OpenFlow 1.0 + NXM: {line}" for line in lines)
            return
        except FlowLoadError as exc:
            if not exc.protocol_mismatch:
                raise
        if len(lines) == 1:
            self._ofctl_flows(("-O", "OpenFlow13"), "add-flows", bridge_name, lines)
            self.notes.append(f"{bridge_name}: OpenFlow 1.0 refused it, loaded with OpenFlow 1.3: {lines[0]}")
            return
        middle = len(lines) // 2
        self._add_legacy(bridge_name, lines[:middle])
        self._add_legacy(bridge_name, lines[middle:])

    def _ofctl_flows(self, options: Sequence[str], command: str, bridge_name: str, lines: list[str]) -> None:
        argv = ["ovs-ofctl", *options, command, bridge_name, "-"]
        proc = subprocess.run(
            argv, env=self._env, input="".join(f"{line}\n" for line in lines),
            capture_output=True, text=True, timeout=self.timeout,
        )  # fmt: skip
        if proc.returncode != 0:
            message = proc.stderr.strip()
            raise FlowLoadError(f"{command} {bridge_name}: {message}", _offending_line(message, lines))

    def dump_flows(self, bridge_name: str, match: str = "", *, options: Sequence[str] = ()) -> str:
        """``ovs-ofctl [options] dump-flows <bridge> [match]``.

        The default is OpenFlow 1.0 + NXM text with numeric ports, the format
        ``verifier.snapshot.flows`` reads.  Beware: OpenFlow 1.0 prints an
        installed ``goto_table:N`` as ``resubmit(,N)``, and ``-O OpenFlow13``
        prints ``mod_vlan_vid:N`` as ``push_vlan:0x8100,set_field:...->vlan_vid``.
        """
        return self.ofctl(*options, "dump-flows", bridge_name, *([match] if match else []))

    def delete_flows(self, bridge_name: str) -> None:
        self.ofctl("del-flows", bridge_name)

    # ---------------------------------------------------------- trace

    def trace_flow(self, bridge_name: str, flow: str, *, ct_next: Sequence[str] | None = None) -> str:
        """Raw ``ofproto/trace --names`` text for a flow string."""
        params = ["--names"]
        for state in ct_next or ():
            params += ["--ct-next", state]
        try:
            return self.appctl("ofproto/trace", *params, bridge_name, flow)
        except UnixctlError as exc:
            raise TraceError(f"trace {bridge_name} {flow}: {exc}") from exc

    def trace(
        self,
        bridge_name: str,
        packet: Mapping[str, int],
        in_port_name: str,
        *,
        ct_next: list[str] | None = None,
    ) -> TraceResult:
        """Trace a concrete packet (a ``verifier.header`` dict) arriving on ``in_port_name``.

        Every field is given to the trace (``nw_ttl`` included); tunnel
        metadata (``tun_id``/``tun_src``/``tun_dst``) is passed when non-zero.
        """
        number = self.port_numbers(bridge_name).get(in_port_name)
        if number is None:
            raise TraceError(f"bridge {bridge_name} has no port {in_port_name}")
        start = ovs_normalize({**packet, "in_port": number})
        flow = trace_flow_string(start, in_port_name)
        text = self.trace_flow(bridge_name, flow, ct_next=ct_next)
        passes, notes, bridges = split_trace(text)
        if not passes:
            raise TraceError(f"no 'Datapath actions:' in the trace of {flow}:\n{text}")
        try:
            emissions = run_passes(passes, start)
        except OdpError as exc:
            raise TraceError(f"{exc}\ntrace of {flow}:\n{text}") from exc
        outputs = sorted((self._name_output(e) for e in emissions), key=Emission.sort_key)
        return TraceResult(text, flow, [p.actions for p in passes], outputs, passes, notes, bridges)

    def _name_output(self, emission: Emission) -> Emission:
        """Name a tunnel vport output after its tunnel interface, when exactly one matches.

        Tunnels with a fixed ``remote_ip`` equal to the outer ``dst`` are
        tried first, then ``remote_ip=flow`` tunnels on the same vport.
        """
        if TUNNEL_VPORT.match(emission.port) is None or emission.tunnel is None:
            return emission
        for exact in (True, False):
            names = [t.name for t in self._tunnels.values() if _tunnel_matches(t, emission, exact=exact)]
            if names:
                return replace(emission, port=names[0]) if len(names) == 1 else emission
        return emission


# ---------------------------------------------------------------- helpers


def _all_interfaces(bridge: ir.Bridge) -> list[ir.Interface]:
    return [i for p in bridge.ports if p.name != bridge.name for i in p.interfaces]


def _quote(value: str) -> str:
    """An OVSDB string value, always quoted (option values may hold , : =)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _bridge_commands(bridge: ir.Bridge, requested: Mapping[str, int]) -> list[str]:
    """The arguments of one ovs-vsctl transaction that creates the whole bridge."""
    br = bridge.name
    args = ["--", "add-br", br, "--", "set", "Bridge", br, f"fail_mode={bridge.fail_mode or DEFAULT_FAIL_MODE}"]
    covered: set[str] = set()
    for n, port in enumerate(bridge.ports):
        if port.name == br:
            settings = _port_settings(port)
            if settings:
                args += ["--", "set", "Port", br, *settings]
            continue
        iface_ids = []
        for m, iface in enumerate(port.interfaces):
            iface_id = f"@i{n}_{m}"
            iface_ids.append(iface_id)
            covered.add(iface.name)
            args += ["--", f"--id={iface_id}", "create", "Interface", *_interface_settings(iface, requested)]
        args += [
            "--", f"--id=@p{n}", "create", "Port", f"name={_quote(port.name)}",
            f"interfaces=[{','.join(iface_ids)}]", *_port_settings(port),
            "--", "add", "Bridge", br, "ports", f"@p{n}",
        ]  # fmt: skip
    for name, number in requested.items():
        if name not in covered:
            args += ["--", "add-port", br, name, "--", "set", "Interface", name, f"ofport_request={number}"]
    return args


def _port_settings(port: ir.Port) -> list[str]:
    out = []
    if port.tag is not None:
        out.append(f"tag={port.tag}")
    if port.trunks:
        out.append(f"trunks=[{','.join(str(t) for t in port.trunks)}]")
    if port.vlan_mode:
        out.append(f"vlan_mode={port.vlan_mode}")
    return out


def _interface_settings(iface: ir.Interface, requested: Mapping[str, int]) -> list[str]:
    out = [f"name={_quote(iface.name)}"]
    kind = iface.type
    if kind in _ENDPOINT_TYPES:
        kind = ""
    elif kind not in _PASSTHROUGH_TYPES:
        raise SandboxError(f"interface {iface.name}: type {kind!r} cannot be created in the sandbox")
    if kind:
        out.append(f"type={kind}")
        out += [f"options:{key}={_quote(value)}" for key, value in iface.options]
    if iface.name in requested:
        out.append(f"ofport_request={requested[iface.name]}")
    return out


def _tunnel_matches(t: _TunnelPort, emission: Emission, *, exact: bool) -> bool:
    """Whether tunnel port ``t`` can have produced a tunnel emission (``exact``: fixed remote_ip)."""
    tunnel = emission.tunnel
    vport = TUNNEL_VPORT.match(emission.port)
    if tunnel is None or vport is None or vport.group("kind") != t.kind:
        return False
    if t.dst_port is not None and not emission.port.endswith(f"_{t.dst_port}"):
        return False
    if exact and t.remote_ip != tunnel.dst_ip:
        return False
    if not exact and t.remote_ip != "flow":
        return False
    if t.local_ip not in (None, "flow") and tunnel.src and t.local_ip != tunnel.src_ip:
        return False
    return t.out_key in (None, "flow") or int(t.out_key, 0) == tunnel.tun_id


_MOD_VLAN = re.compile(r"actions=.*\bmod_vlan_(vid|pcp):")


def _prefers_openflow10(flow: ir.Flow) -> bool:
    """Whether a flow must (mod_vlan_*) or will have to (OpenFlow 1.3 refuses it) go in under OpenFlow 1.0.

    OpenFlow 1.3 refusals are predicted as ovs-ofctl checks action
    prerequisites: ``strip_vlan`` needs a VLAN header (from the match or a
    ``push_vlan`` before it), ``dec_ttl`` an IP match, ``mod_nw_*``/``mod_tp_*``
    (``SetField`` with ``only_eth_types``) a match on one of those types.
    A missed refusal costs only time (``load_flows`` falls back); a flow sent
    to OpenFlow 1.0 that OpenFlow 1.3 would have taken differs only in that a
    ``goto_table`` in it becomes ``resubmit(,N)``.
    """
    eth_type = flow.match_value("eth_type")
    eth = eth_type.value if eth_type is not None and eth_type.exact else None
    vlan = flow.match_value("vlan_tci")
    tagged = vlan is not None and bool(vlan.mask & vlan.value & 0x1000)
    for a in ir.iter_actions(flow.actions):
        if isinstance(a, ir.PushVlan):
            tagged = True
            continue
        if isinstance(a, ir.PopVlan):
            if not tagged:
                return True
            tagged = False
            continue
        needs_ip = isinstance(a, ir.DecTtl) and eth not in (ETH_TYPE_IP, ETH_TYPE_IPV6)
        needs_type = isinstance(a, ir.SetField) and a.only_eth_types is not None and eth not in a.only_eth_types
        if isinstance(a, (ir.SetVlanVid, ir.SetVlanPcp)) or needs_ip or needs_type:
            return True
    return False


def _offending_line(message: str, lines: Sequence[str]) -> str | None:
    """The flow an ovs-ofctl error refers to (``-:N:`` names a 1-based input line)."""
    match = re.search(r"-:(\d+):", message)
    if match and 0 < int(match.group(1)) <= len(lines):
        return lines[int(match.group(1)) - 1]
    return None


def daemon_running(pid: int, directory: Path | str) -> bool:
    """Whether ``pid`` is a live (non-zombie) process started for the sandbox in ``directory``."""
    return _alive(pid) and _ours(pid, Path(directory))


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (a zombie has exited; init reaps it late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _ours(pid: int, directory: Path) -> bool:
    """Whether ``pid`` still runs a daemon started for ``directory`` (guards against PID reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(directory).encode() in cmdline


def _stop_daemons(directory: Path, pids: Mapping[str, int], grace: float = 5.0) -> None:
    """SIGTERM vswitchd then ovsdb-server (only these PIDs), wait, SIGKILL stragglers, remove the dir.

    Writes nothing to stdout/stderr and ignores SIGPIPE meanwhile, so a
    closed pipe cannot abort the stop half way (reference gotcha 12).
    """
    old = _ignore_sigpipe()
    try:
        for daemon in ("ovs-vswitchd", "ovsdb-server"):
            pid = pids.get(daemon)
            if pid is not None and _ours(pid, directory):
                _terminate(pid, grace)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        _restore_sigpipe(old)


def _terminate(pid: int, grace: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.005)


def _ignore_sigpipe() -> object:
    try:
        return signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    except (ValueError, OSError):  # not the main thread
        return None


def _restore_sigpipe(old: object) -> None:
    if old is not None:
        with contextlib.suppress(ValueError, OSError, TypeError):
            signal.signal(signal.SIGPIPE, old)  # type: ignore[arg-type]
