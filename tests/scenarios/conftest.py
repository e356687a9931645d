"""Fixtures for the isolation scenarios built in real Open vSwitch (see test_isolation_scenarios.py).

The seed deployment (the built-in ``seed-gre`` example rendered as the
Neutron agents program it) is loaded once per session.  Each scenario class
starts its own set of sandboxes (``support.ovs_network.OvsHosts``, one per
host) through the class-scoped ``scenario`` fixture defined in the test
module; the time each step took is gathered in ``scenario_timings`` and
printed at the end of the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from verifier.deployment import Deployment, load_example
from verifier.examples import load_example_json

SEED = "seed-gre"

_TIMINGS: dict[str, dict[str, float]] = {}


@pytest.fixture(scope="session")
def seed_deployment() -> Deployment:
    """The rendered seed-gre example: what every scenario starts from."""
    return load_example(SEED)


@pytest.fixture(scope="session")
def seed_neutron_json() -> dict[str, Any]:
    """The seed-gre Neutron API view, written into each scenario's snapshot as neutron.json."""
    return load_example_json(SEED)


@pytest.fixture(scope="session")
def scenario_timings() -> Iterator[dict[str, dict[str, float]]]:
    """Scenario name -> step -> seconds; printed by ``pytest_terminal_summary``."""
    yield _TIMINGS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how long each scenario's steps took in real OVS and in the verifier."""
    if not _TIMINGS:
        return
    terminalreporter.section("isolation scenarios: seconds per step")
    for name, steps in _TIMINGS.items():
        text = ", ".join(f"{step} {seconds:.2f}" for step, seconds in steps.items())
        terminalreporter.write_line(f"{name}: {text}")
