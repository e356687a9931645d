"""The dataplane IR back to a snapshot directory (``shared/spec/snapshot.md``).

``snapshot_files`` renders every file as text (deterministic: hosts, bridges
and namespaces in name order, a UUID and datapath ids derived from the names);
``write_snapshot`` puts them on disk.  The Linux files are written where the
IR knows them: ``ip-addr.txt`` when the host has addresses or links,
``ip-route.txt``, ``iptables-save.txt`` and ``brctl-show.txt`` when the
host's routes, netfilter and Linux bridges are not None (an empty tuple gives
an empty listing), and per namespace ``netns/<name>/ip-addr.txt`` always and
its ``ip-route.txt``/``iptables-save.txt`` likewise.  Reading the result back
with ``read_snapshot`` gives an equal dataplane when its hosts, bridges and
namespaces are in name order and its flows in table and descending priority
order (the order ``ovs-ofctl dump-flows`` output is written in).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from verifier.errors import SnapshotError
from verifier.header import OFPP_LOCAL
from verifier.ir import Bridge, Dataplane, Host
from verifier.linux import Namespace
from verifier.snapshot.brctl import format_brctl_show
from verifier.snapshot.flow_writer import UnprintableFlow, format_dump
from verifier.snapshot.ipaddr import format_ip_addr
from verifier.snapshot.iproute import format_ip_route
from verifier.snapshot.iptables import format_iptables_save
from verifier.snapshot.ofctl_show import format_ofctl_show
from verifier.snapshot.vsctl import format_vsctl_show

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "neutron-verifier.snapshot")


def host_uuid(host: str) -> str:
    """The Open_vSwitch row UUID written for ``host`` (stable across runs)."""
    return str(uuid.uuid5(_NAMESPACE, host))


def bridge_dpid(host: str, bridge: Bridge) -> str:
    """The datapath id written for a bridge: from its LOCAL port's MAC as OVS does, else from the names."""
    for port in bridge.of_ports:
        if port.number == OFPP_LOCAL and port.mac:
            return "0000" + port.mac.replace(":", "")
    return hashlib.sha256(f"{host}\0{bridge.name}".encode()).hexdigest()[:16]


def snapshot_files(dataplane: Dataplane, neutron_json: dict[str, Any] | None = None) -> dict[str, str]:
    """Every file of the snapshot, relative path to text.

    Raises SnapshotError naming the file for a host or bridge whose name
    cannot be a file name, duplicates, no hosts, or a flow that cannot be printed.
    """
    if not dataplane.hosts:
        raise SnapshotError("hosts", "at least one host is required")
    files: dict[str, str] = {}
    if neutron_json is not None:
        files["neutron.json"] = json.dumps(neutron_json, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    seen: set[str] = set()
    for host in sorted(dataplane.hosts, key=lambda h: h.name):
        base = f"hosts/{host.name}"
        _check_name(host.name, base, "host")
        if host.name in seen:
            raise SnapshotError(base, "two hosts of this name")
        seen.add(host.name)
        files.update(_host_files(host, base))
    return files


def _host_files(host: Host, base: str) -> dict[str, str]:
    files: dict[str, str] = {}
    bridges = sorted(host.bridges, key=lambda b: b.name)
    names = [b.name for b in bridges]
    for bridge in bridges:
        _check_name(bridge.name, f"{base}/ovs-ofctl-show-{bridge.name}.txt", "bridge")
        if names.count(bridge.name) > 1:
            raise SnapshotError(f"{base}/ovs-vsctl-show.txt", "two bridges of this name", bridge.name)
    files[f"{base}/ovs-vsctl-show.txt"] = format_vsctl_show(host_uuid(host.name), bridges, host.ovs_version)
    for bridge in bridges:
        show = f"{base}/ovs-ofctl-show-{bridge.name}.txt"
        try:
            files[show] = format_ofctl_show(bridge.name, bridge_dpid(host.name, bridge), bridge.of_ports)
        except ValueError as exc:
            raise SnapshotError(show, str(exc)) from exc
        dump = f"{base}/ovs-ofctl-dump-flows-{bridge.name}.txt"
        try:
            files[dump] = format_dump(bridge.flows)
        except UnprintableFlow as exc:
            raise SnapshotError(dump, f"cannot print a flow: {exc}") from exc
    if host.addresses or host.links:
        files[f"{base}/ip-addr.txt"] = format_ip_addr(host.addresses, host.links)
    files.update(_linux_files(base, host.root_namespace()))
    if host.linux_bridges is not None:
        files[f"{base}/brctl-show.txt"] = format_brctl_show(host.linux_bridges)
    seen: set[str] = set()
    for ns in sorted(host.namespaces, key=lambda n: n.name):
        ns_base = f"{base}/netns/{ns.name}"
        _check_name(ns.name, ns_base, "namespace")
        if ns.name in seen:
            raise SnapshotError(ns_base, "two namespaces of this name")
        seen.add(ns.name)
        files[f"{ns_base}/ip-addr.txt"] = format_ip_addr(ns.addresses, ns.links)
        files.update(_linux_files(ns_base, ns))
    return files


def _linux_files(base: str, ns: Namespace) -> dict[str, str]:
    """``ip-route.txt`` and ``iptables-save.txt`` of a namespace, where known."""
    files: dict[str, str] = {}
    if ns.routes is not None:
        try:
            files[f"{base}/ip-route.txt"] = format_ip_route(ns.routes)
        except ValueError as exc:
            raise SnapshotError(f"{base}/ip-route.txt", f"cannot print a route: {exc}") from exc
    if ns.netfilter is not None:
        rel = f"{base}/iptables-save.txt"
        if ns.netfilter.family != 4:
            raise SnapshotError(rel, f"iptables-save.txt holds IPv4 rules, not IPv{ns.netfilter.family}")
        try:
            files[rel] = format_iptables_save(ns.netfilter)
        except ValueError as exc:
            raise SnapshotError(rel, f"cannot print a rule: {exc}") from exc
    return files


def _check_name(name: str, where: str, kind: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name or name != name.strip():
        raise SnapshotError(where, f"the {kind} name cannot be part of a file name", name)


def write_snapshot(
    path: str | os.PathLike[str],
    dataplane: Dataplane,
    neutron_json: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> None:
    """Write ``dataplane`` (and ``neutron_json``) as a snapshot directory at ``path``.

    Refuses a non-empty directory unless ``overwrite``; then only the files this
    writer produces are replaced and nothing is deleted, so files of an older
    snapshot that this one does not have stay (and are read back).
    """
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise SnapshotError(str(path), "exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise SnapshotError(str(path), "directory is not empty; refusing to write a snapshot into it")
    files = snapshot_files(dataplane, neutron_json)
    for rel in files:
        if (root / rel).is_dir():
            raise SnapshotError(str(root / rel), "is a directory; cannot write the file")
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")
