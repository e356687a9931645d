"""Rendered flows are written as ``ovs-ofctl dump-flows`` text, then parsed into the IR.

The text is what plain ``ovs-ofctl dump-flows <bridge>`` (OpenFlow 1.0 + NXM,
numeric ports) on OVS 3.1 prints for the flows the native os-ken driver
installs with OpenFlow 1.3.  In that encoding ``goto_table:N`` reads back as
``resubmit(,N)``, ``push_vlan`` + ``set_field:<vid|0x1000>->vlan_vid`` as
``mod_vlan_vid:<vid>``, ``pop_vlan`` as ``strip_vlan`` and
``set_field:<key>->tun_id`` as ``load:<key>->NXM_NX_TUN_ID[]``
(``lib/ofp-actions.c``: ``encode_GOTO_TABLE``, ``encode_PUSH_VLAN``,
``set_field_to_legacy_openflow``).  Going through the text keeps one reader for
rendered and collected flows, and ``Provenance.text`` shows the exact line.
"""

from __future__ import annotations

from collections.abc import Mapping

from verifier.ir import Flow, Provenance
from verifier.neutron.constants import PROVENANCE_FILE
from verifier.snapshot.flows import parse_flow, port_resolver


class FlowBook:
    """Collects one bridge's flows; every flow carries the agent's cookie."""

    def __init__(self, cookie: int, ports: Mapping[str, int]) -> None:
        self.cookie = cookie
        self._resolve = port_resolver(dict(ports))
        self._flows: list[Flow] = []

    def add(self, table: int, priority: int, match: str, actions: str, neutron_id: str | None) -> None:
        """Add ``table=<table>, priority=<priority>[,<match>] actions=<actions>``."""
        head = f"priority={priority}" + (f",{match}" if match else "")
        line = (
            f" cookie={self.cookie:#x}, duration=0.0s, table={table}, n_packets=0, n_bytes=0, "
            f"idle_age=0, {head} actions={actions}"
        )
        flow = parse_flow(line, self._resolve, Provenance(PROVENANCE_FILE, 0, line.strip(), neutron_id))
        if flow.unsupported:
            raise AssertionError(f"rendered flow uses unmodelled constructs {flow.unsupported}: {line}")
        self._flows.append(flow)

    def flows(self) -> tuple[Flow, ...]:
        """The flows in table, descending priority, then text order."""
        return tuple(sorted(self._flows, key=lambda f: (f.table, -f.priority, f.provenance.text)))
