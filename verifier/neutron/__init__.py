"""Neutron intent: read ``neutron.json`` and render what the OVS agents program from it.

- ``model``: typed, frozen view of the API collections; ``parse_neutron`` checks them.
- ``naming``: Neutron's device, namespace and tunnel-port names, both directions.
- ``constants``: the OVS agent's tables, priorities and magic numbers (one release).
- ``render_ovs``: ``render_dataplane(neutron) -> ir.Dataplane`` (br-int, br-tun, physical
  bridges), with per-bridge modules ``render_br_int``/``render_br_tun``/``render_br_phys``
  and the deterministic choices in ``render_plan``.
"""

from verifier.neutron.model import Neutron, parse_neutron
from verifier.neutron.render_ovs import render_dataplane

__all__ = ["Neutron", "parse_neutron", "render_dataplane"]
