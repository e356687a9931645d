"""Fixtures for the real-Linux tests: a fresh ``Lab`` of network namespaces per test.

When namespaces cannot be built here (not root, no iproute2/iptables, no
namespace support) the tests are skipped with the reason, except in CI
(``CI`` set) or with ``VERIFIER_REQUIRE_NETNS=1``, where they fail: CI runs
as root with iproute2 and iptables installed, so a skip there would hide a
broken setup.  ``require_bridge_netfilter`` does the same for per-namespace
br_netfilter (``VERIFIER_REQUIRE_BR_NETFILTER=1``, or CI).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator

import pytest

from support.netns_lab import NETNS_DIR, Lab, netns_available


@functools.cache
def _availability() -> tuple[bool, str]:
    return netns_available()


def _skip_or_fail(message: str, variable: str) -> None:
    if os.environ.get("CI") or os.environ.get(variable):
        pytest.fail(message)
    pytest.skip(message)


def require_netns() -> None:
    """Skip (or, in CI / with VERIFIER_REQUIRE_NETNS, fail) loudly when a lab cannot be built here."""
    ok, reason = _availability()
    if not ok:
        _skip_or_fail(f"REAL LINUX NAMESPACES UNAVAILABLE, tests/linux not run: {reason}", "VERIFIER_REQUIRE_NETNS")


def require_bridge_netfilter(lab: Lab) -> None:
    """Skip (or fail, in CI / with VERIFIER_REQUIRE_BR_NETFILTER) when bridged frames cannot reach iptables."""
    if not lab.bridge_netfilter:
        _skip_or_fail(
            f"PER-NAMESPACE BR_NETFILTER UNAVAILABLE, bridged firewall not tested: {lab.bridge_netfilter_reason}",
            "VERIFIER_REQUIRE_BR_NETFILTER",
        )


def leftover_namespaces(prefix: str) -> list[str]:
    """Namespaces whose name starts with ``prefix`` that still exist."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(name for name in os.listdir(NETNS_DIR) if name.startswith(prefix))


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A fresh, empty ``Lab``; its namespaces are deleted after the test, which fails if any is left."""
    require_netns()
    instance = Lab()
    try:
        yield instance
    finally:
        instance.close()
    left = leftover_namespaces(instance.prefix)
    assert not left, f"lab cleanup left namespaces behind: {left}"
