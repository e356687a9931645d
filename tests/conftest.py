"""Shared pytest configuration: makes tests/support importable as ``support``, and turns SIGTERM
into an interrupt so that a test run stopped by ``kill`` (or a CI timeout) still tears its fixtures
down: the OVS sandboxes and network namespaces the tests started are stopped and removed."""

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_sessionstart() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
