"""Fixtures for the real-OVS oracle tests: one sandbox per session, scratch bridges per test.

When Open vSwitch is missing the tests are skipped with the reason, except in
CI (``CI`` set) or with ``VERIFIER_REQUIRE_OVS=1``, where they fail: CI
installs openvswitch-switch, so a skip there would hide a broken install.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator

import pytest

from oracle import topology
from support.oracle_compare import BridgeInstaller
from support.ovs_sandbox import OvsSandbox

_scratch_names = (f"br-x{n}" for n in itertools.count())


def require_ovs() -> None:
    """Skip (or, in CI, fail) loudly when a sandbox cannot run here."""
    ok, reason = OvsSandbox.available()
    if ok:
        return
    message = f"REAL OPEN VSWITCH UNAVAILABLE, oracle tests not run: {reason}"
    if os.environ.get("CI") or os.environ.get("VERIFIER_REQUIRE_OVS"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def ovs() -> Iterator[OvsSandbox]:
    """A running sandbox holding the Neutron-like br-int/br-tun pair with their flows.

    Tests must not change br-int or br-tun; they add their own bridges
    (``scratch``) instead.
    """
    require_ovs()
    sandbox = OvsSandbox()
    sandbox.start()
    try:
        for bridge in (topology.br_int(), topology.br_tun()):
            sandbox.add_bridge(bridge)
            sandbox.load_flows(bridge.name, bridge.flows)
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def scratch(ovs: OvsSandbox) -> Iterator[str]:
    """A fresh bridge (ports p1=1, p2=2, p3=3, no flows) on the shared sandbox; deleted afterwards."""
    bridge = topology.scratch_bridge(next(_scratch_names))
    ovs.add_bridge(bridge)
    try:
        yield bridge.name
    finally:
        ovs.delete_bridge(bridge.name)


@pytest.fixture
def bridge_installer(ovs: OvsSandbox) -> Iterator[BridgeInstaller]:
    """Installs IR bridges into the session sandbox; every bridge it installed is deleted after the test.

    Within one test (all examples of a Hypothesis test) a bridge wired like
    the one installed before is reused: only VLAN settings and flows change.
    Use it with ``support.oracle_compare.compare``/``compare_bridge`` to run
    the concrete twin and real OVS on the same bridge and packet.
    """
    installer = BridgeInstaller(ovs)
    try:
        yield installer
    finally:
        installer.remove_all()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many generated packets each known twin/OVS divergence filtered out."""
    module = sys.modules.get("oracle.test_differential")
    skipped = getattr(module, "SKIPPED", None)
    if not skipped:
        return
    terminalreporter.section("known twin/OVS divergences (filtered, see KNOWN_DIVERGENCES)")
    for name, count in sorted(skipped.items()):
        terminalreporter.write_line(f"{name}: {count}")
