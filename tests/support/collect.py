"""A snapshot directory taken from running (sandboxed) Open vSwitch, as an operator collects one.

``collect_snapshot`` writes the layout of ``shared/spec/snapshot.md`` from the
*real* switches of an ``OvsHosts``: per host the verbatim output of
``ovs-vsctl show``, and per bridge the switch lists (``ovs-vsctl list-br``)
``ovs-ofctl show <bridge>`` and ``ovs-ofctl dump-flows <bridge>``.  What the
verifier reads is therefore what OVS itself prints after every change a test
made with ``ovs-vsctl``/``ovs-ofctl``, not what the IR says.

Two files do not come from OVS:

* ``ip-addr.txt`` is written from the IR's ``ir.Address`` list with the
  snapshot writer's ``format_ip_addr``: the sandboxes run on the dummy
  datapath and create no kernel interfaces, so there is no ``ip addr`` to run
  (and the tunnel ``local_ip`` lives on a host NIC that does not exist here);
* ``neutron.json`` is the given Neutron API view (left out when None: the
  verifier then checks segments only), written as the snapshot writer does.

``ovs-ofctl`` output formats an operator may use are offered through
``dump_options`` (``DUMP_VARIANTS``: ``--names``, ``--no-stats``,
``-O OpenFlow13``...) and ``show_options``; the default is the plain
OpenFlow 1.0 + NXM output an operator gets with no options.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from support.ovs_network import OvsHosts
from verifier import ir
from verifier.snapshot.ipaddr import format_ip_addr

__all__ = ["DUMP_VARIANTS", "collect_snapshot", "snapshot_bridges"]

DUMP_VARIANTS: Mapping[str, tuple[str, ...]] = {
    "plain": (),
    "names": ("--names",),
    "no-stats": ("--no-stats",),
    "names-no-stats": ("--names", "--no-stats"),
    "of13": ("-O", "OpenFlow13"),
    "of13-names": ("-O", "OpenFlow13", "--names"),
}
"""``ovs-ofctl dump-flows`` option sets, by name, that an operator's collection may have used."""


def snapshot_bridges(hosts: OvsHosts, host: str) -> list[str]:
    """The bridges the real switch of ``host`` has (``ovs-vsctl list-br``), in name order."""
    return sorted(line.strip() for line in hosts[host].vsctl("list-br").splitlines() if line.strip())


def collect_snapshot(
    hosts: OvsHosts,
    dataplane: ir.Dataplane,
    neutron_json: dict[str, Any] | None,
    out_dir: str | os.PathLike[str],
    *,
    dump_options: Sequence[str] = (),
    show_options: Sequence[str] = (),
) -> None:
    """Write a snapshot of every running host of ``hosts`` into ``out_dir`` (absent or empty).

    Per host ``hosts/<host>/``: ``ovs-vsctl-show.txt`` (``ovs-vsctl show``),
    for each bridge of the real switch ``ovs-ofctl-show-<br>.txt``
    (``ovs-ofctl [show_options] show <br>``) and
    ``ovs-ofctl-dump-flows-<br>.txt`` (``ovs-ofctl [dump_options]
    dump-flows <br>``), and ``ip-addr.txt`` from the IR host's addresses
    (no kernel interfaces exist in the sandbox; see the module docstring).
    ``neutron.json`` when ``neutron_json`` is given.  ``dataplane`` is used
    for the addresses only.
    """
    root = Path(out_dir)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root}: not an empty directory; refusing to collect a snapshot into it")
    files: dict[str, str] = {}
    if neutron_json is not None:
        files["neutron.json"] = json.dumps(neutron_json, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    for name, sandbox in hosts.items():
        base = f"hosts/{name}"
        files[f"{base}/ovs-vsctl-show.txt"] = sandbox.vsctl("show")
        for bridge in snapshot_bridges(hosts, name):
            files[f"{base}/ovs-ofctl-show-{bridge}.txt"] = sandbox.ofctl(*show_options, "show", bridge)
            files[f"{base}/ovs-ofctl-dump-flows-{bridge}.txt"] = sandbox.ofctl(*dump_options, "dump-flows", bridge)
        host = dataplane.host(name)
        if host is not None and host.addresses:
            files[f"{base}/ip-addr.txt"] = format_ip_addr(host.addresses)
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")
