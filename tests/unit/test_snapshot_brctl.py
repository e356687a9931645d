"""brctl show: bridge-utils 1.7.1 (real) and 1.5 layouts, every error, lenient mode and the writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given

from support.linux_strategies import linux_bridges
from verifier.errors import SnapshotError
from verifier.ir import Skipped
from verifier.linux import LinuxBridge
from verifier.snapshot.brctl import format_brctl_show, parse_brctl_show

DATA = Path(__file__).parent.parent / "data" / "snapshot_formats"
FILE = "hosts/c1/brctl-show.txt"
HEADER = "bridge name\tbridge id\t\tSTP enabled\tinterfaces\n"


def parse(text: str) -> tuple[LinuxBridge, ...]:
    return parse_brctl_show(text, FILE)


def test_real_bridge_utils_1_7_1() -> None:
    text = (DATA / "brctl-show-1.7.1.txt").read_text()
    assert parse(text) == (
        LinuxBridge("qbr5c1d2e3f-4a", ("tap5c1d2e3f-4a",), "8000.c26e20b9f12c", stp=True),
        LinuxBridge("qbr8b2e8c3a-1f", ("qvb8b2e8c3a-1f", "tap8b2e8c3a-1f"), "8000.02439ee23dc6"),
        LinuxBridge("qbr9f8e7d6c-5b", ()),  # no ports: id 8000.000000000000, read as unknown
    )
    assert format_brctl_show(parse(text)) == text


def test_bridge_utils_1_5_layout() -> None:
    bridges = parse((DATA / "brctl-show-1.5.txt").read_text())
    assert [b.name for b in bridges] == ["qbr8b2e8c3a-1f", "qbrd4e5f6a7-b8", "virbr0"]
    assert bridges[0].interfaces == ("qvb8b2e8c3a-1f", "tap8b2e8c3a-1f") and bridges[1].bridge_id is None
    assert bridges[2] == LinuxBridge("virbr0", ("virbr0-nic",), "8000.525400a1b2c3", stp=True)


def test_spacing_case_crlf_and_an_empty_listing() -> None:
    text = "bridge name  bridge id  STP enabled  interfaces\r\nbr0  8000.AABBCCDDEEFF  no  eth0\r\n      eth1\r\n"
    assert parse(text) == (LinuxBridge("br0", ("eth0", "eth1"), "8000.aabbccddeeff"),)
    assert parse(HEADER) == () and parse("") == ()


def test_writer_layout() -> None:
    text = format_brctl_show([LinuxBridge("qbr1", ("qvb1", "tap1"), "8000.0a0b0c0d0e0f", True), LinuxBridge("b", ())])
    assert text == HEADER + (
        "qbr1\t\t8000.0a0b0c0d0e0f\tyes\t\tqvb1\n\t\t\t\t\t\t\ttap1\nb\t\t8000.000000000000\tno\t\t\n"
    )
    assert format_brctl_show([]) == HEADER


@given(linux_bridges())
def test_roundtrip_generated(bridges: tuple[LinuxBridge, ...]) -> None:
    assert parse(format_brctl_show(bridges)) == bridges


@pytest.mark.parametrize(
    ("text", "line", "problem", "bad"),
    [
        ("qbr1 8000.0a0b0c0d0e0f no\n", 1, "expected the header", "qbr1 8000.0a0b0c0d0e0f no"),
        (HEADER + "qbr1 8000.0a0b0c0d0e0f\n", 2, "expected 'NAME ID yes|no [INTERFACE]'", "qbr1 8000.0a0b0c0d0e0f"),
        (HEADER + "qbr1 8000.0a0b no\n", 2, "bad bridge id '8000.0a0b'", "qbr1 8000.0a0b no"),
        (HEADER + "qbr1 8000.0a0b0c0d0e0f on\n", 2, "STP enabled must be 'yes' or 'no', not 'on'", None),
        (HEADER + "b 8000.0a0b0c0d0e0f no\nb 8000.0a0b0c0d0e0f no\n", 3, "bridge 'b' listed twice", None),
        (HEADER + "\t\tqvb1\n", 2, "interface line before the first bridge", "qvb1"),
        (HEADER + "b 8000.0a0b0c0d0e0f no x\n\t\ty z\n", 3, "expected one interface name", "y z"),
        (HEADER + "b 8000.0a0b0c0d0e0f no\n\t\ty\n", 3, "bridge 'b' has no first interface", "y"),
        (HEADER + "b 8000.0a0b0c0d0e0f no x\n\t\tx\n", 3, "interface 'x' listed twice on bridge 'b'", "x"),
        (HEADER + "can't get info Operation not supported\n", 2, "expected 'NAME ID yes|no [INTERFACE]'", None),
    ],
)
def test_errors_name_file_line_and_text(text: str, line: int, problem: str, bad: str | None) -> None:
    with pytest.raises(SnapshotError) as info:
        parse(text)
    assert info.value.where == f"{FILE}:{line}"
    assert problem in info.value.problem
    assert info.value.text == (bad if bad is not None else text.split("\n")[line - 1].strip())


def test_lenient_skips_a_bridge_with_its_interface_lines() -> None:
    text = HEADER + "b 8000.0a0b0c0d0e0f maybe x\n\t\ty\nc 8000.0a0b0c0d0e0f no z\n\t\tz\n"
    skipped: list[Skipped] = []
    assert parse_brctl_show(text, FILE, lenient=True, skipped=skipped) == (
        LinuxBridge("c", ("z",), "8000.0a0b0c0d0e0f"),
    )
    assert [(s.line, s.reason) for s in skipped] == [
        (2, "STP enabled must be 'yes' or 'no', not 'maybe'"),
        (3, "belongs to the bridge skipped at line 2"),
        (5, "interface 'z' listed twice on bridge 'c'"),
    ]
    with pytest.raises(ValueError, match="needs a list"):
        parse_brctl_show("", FILE, lenient=True)
