"""Physical bridges (br-ex...) as the OVS agent programs them (``neutron-dataplane.md`` §5).

``native/br_phys.py``: ``setup_default_table`` (t0 p0 NORMAL) and
``provision_local_vlan`` (t0 p4 ``in_port=phy-<br>, dl_vlan=<lvid>`` ->
strip the tag for a flat network, rewrite it to the segmentation id for a VLAN
network, then NORMAL); ``setup_physical_bridges``: t0 p2 drop of everything
else from ``phy-<br>``.  The NIC is a plain (trunk) port.
"""

from __future__ import annotations

from verifier import ir
from verifier.neutron import constants as c
from verifier.neutron.flowtext import FlowBook
from verifier.neutron.render_plan import HostPlan, PhysBridge, derived_mac


def build_phys_bridges(plan: HostPlan) -> tuple[ir.Bridge, ...]:
    return tuple(_bridge(plan, phys) for phys in plan.phys)


def _bridge(plan: HostPlan, phys: PhysBridge) -> ir.Bridge:
    name = phys.bridge
    ports = (
        ir.Port(name, (ir.Interface(name, "internal"),)),
        ir.Port(phys.nic, (ir.Interface(phys.nic),)),
        ir.Port(phys.phy_patch, (ir.Interface(phys.phy_patch, "patch", (("peer", phys.int_patch),)),)),
    )
    of_ports = (
        ir.OFPort(phys.nic_ofport, phys.nic, derived_mac(plan.host, name, phys.nic)),
        ir.OFPort(phys.phy_ofport, phys.phy_patch, derived_mac(plan.host, name, phys.phy_patch)),
        ir.OFPort(c.OFPP_LOCAL, name, derived_mac(plan.host, name, name)),
    )
    book = FlowBook(plan.cookie, {p.name: p.number for p in of_ports})
    book.add(0, 0, "", "NORMAL", plan.agent_id)
    book.add(0, c.PRIO_PHYS_PORT_DROP, f"in_port={phys.phy_ofport}", "drop", plan.agent_id)
    for vlan in plan.vlans:
        network = vlan.network
        if network.physical_network != phys.physical_network:
            continue
        if network.network_type == "flat":
            rewrite = "strip_vlan"
        elif network.network_type == "vlan":
            rewrite = f"mod_vlan_vid:{network.segmentation_id}"
        else:
            continue
        book.add(
            0,
            c.PRIO_PHYS_LVID_OUT,
            f"in_port={phys.phy_ofport},dl_vlan={vlan.lvid}",
            f"{rewrite},NORMAL",
            network.id,
        )
    return ir.Bridge(
        name=name,
        ports=tuple(sorted(ports, key=lambda p: p.name)),
        of_ports=tuple(sorted(of_ports, key=lambda p: p.number)),
        flows=book.flows(),
        fail_mode=c.FAIL_MODE,
        datapath_type=c.DATAPATH_TYPE,
    )
