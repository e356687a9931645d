"""ovs-vsctl show: real outputs of several OVS releases, every error, and the writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier.errors import SnapshotError
from verifier.ir import Bridge, Interface, Port
from verifier.snapshot.vsctl import VsctlShow, format_vsctl_show, ovsdb_string, parse_vsctl_show

DATA = Path(__file__).parent.parent / "data" / "snapshot_formats"
UUID = "3d40c18d-9e87-4990-8d5c-0976e1d9ed09"

LEAD_SAMPLE = """\
3d40c18d-9e87-4990-8d5c-0976e1d9ed09
    Bridge br-int
        fail_mode: secure
        Port tap-vm1
            tag: 1
            Interface tap-vm1
        Port qr-r1
            tag: 4095
            trunks: [4095]
            Interface qr-r1
                type: internal
        Port br-int
            Interface br-int
                type: internal
        Port patch-tun
            Interface patch-tun
                type: patch
                options: {peer=patch-int}
    Bridge br-tun
        fail_mode: secure
        Port gre-c0000202
            Interface gre-c0000202
                type: gre
                options: {in_key=flow, local_ip="192.0.2.1", out_key=flow, remote_ip="192.0.2.2"}
    ovs_version: "3.1.0"
"""

LEAD_BRIDGES = (
    Bridge(
        "br-int",
        ports=(
            Port("tap-vm1", (Interface("tap-vm1"),), tag=1),
            Port("qr-r1", (Interface("qr-r1", "internal"),), tag=4095, trunks=(4095,)),
            Port("br-int", (Interface("br-int", "internal"),)),
            Port("patch-tun", (Interface("patch-tun", "patch", (("peer", "patch-int"),)),)),
        ),
        fail_mode="secure",
    ),
    Bridge(
        "br-tun",
        ports=(
            Port(
                "gre-c0000202",
                (
                    Interface(
                        "gre-c0000202",
                        "gre",
                        (
                            ("in_key", "flow"),
                            ("local_ip", "192.0.2.1"),
                            ("out_key", "flow"),
                            ("remote_ip", "192.0.2.2"),
                        ),
                    ),
                ),
            ),
        ),
        fail_mode="secure",
    ),
)


def parse(text: str, *, lenient: bool = False) -> VsctlShow:
    return parse_vsctl_show(text, "hosts/c1/ovs-vsctl-show.txt", lenient=lenient)


def error_of(text: str) -> SnapshotError:
    with pytest.raises(SnapshotError) as info:
        parse(text)
    return info.value


# ---------------------------------------------------------------- real outputs


def test_lead_sample_parses_to_the_ir() -> None:
    show = parse(LEAD_SAMPLE)
    assert show.uuid == "3d40c18d-9e87-4990-8d5c-0976e1d9ed09"
    assert show.bridges == LEAD_BRIDGES
    assert show.ovs_version == "3.1.0"
    assert show.errors == () and show.skipped == ()
    assert all(p.vlan_mode is None for b in show.bridges for p in b.ports)


def test_writer_reproduces_the_lead_sample_exactly() -> None:
    assert format_vsctl_show("3d40c18d-9e87-4990-8d5c-0976e1d9ed09", LEAD_BRIDGES, "3.1.0") == LEAD_SAMPLE


def test_real_ovs_3_1_output() -> None:
    text = (DATA / "vsctl-show-ovs-3.1.txt").read_text()
    show = parse(text)
    assert [b.name for b in show.bridges] == ["br-int", "br-tun"]
    br_int, br_tun = show.bridges
    assert br_int.datapath_type == "system" and br_int.fail_mode == "secure"
    weird = br_int.ovsdb_port("weird name")
    assert weird is not None and weird.trunks == (1, 2, 3) and weird.tag is None
    bond = br_int.ovsdb_port("a2")
    assert bond is not None and [i.name for i in bond.interfaces] == ["a1", "a2"]
    tap = br_int.interface("tap-vm1")
    assert tap is not None
    options = dict(tap.options)
    assert options["ak"] == "a\\b" and options["foo"] == "a b" and options["w"] == "true" and options["ah"] == "1"
    assert list(tap.options) == sorted(tap.options)
    gre = br_tun.interface("gre-c0000202")
    assert gre is not None and gre.option("df_default") == "true" and gre.option("remote_ip") == "192.0.2.2"
    assert show.ovs_version == "3.1.0"
    (error,) = show.errors
    assert error.bridge == "br-tun" and error.interface == "bogus1"
    assert error.where == "hosts/c1/ovs-vsctl-show.txt:38"
    assert "could not open network device bogus1" in error.message
    assert "bogus1" in str(error) and br_tun.interface("bogus1") is not None


def test_writer_matches_real_ovs_3_1_quoting() -> None:
    """Every line the IR can express is printed exactly as OVS 3.1 printed it."""
    text = (DATA / "vsctl-show-ovs-3.1.txt").read_text()
    show = parse(text)
    not_in_ir = ("Manager", "Controller", "error:", "bfd_status:")
    expected = "".join(line for line in text.splitlines(True) if not line.strip().startswith(not_in_ir))
    assert format_vsctl_show(show.uuid, show.bridges, show.ovs_version) == expected


def test_ovs_2_0_2_quotes_names_with_digits() -> None:
    show = parse((DATA / "vsctl-show-ovs-2.0.2.txt").read_text())
    br_int, br_tun = show.bridges
    assert br_int.ovsdb_port("qvo8b2e8c3a-1f") == Port("qvo8b2e8c3a-1f", (Interface("qvo8b2e8c3a-1f"),), tag=1)
    assert br_tun.fail_mode is None
    gre = br_tun.interface("gre-c0a80a0b")
    assert gre is not None and gre.type == "gre" and gre.option("local_ip") == "192.168.10.10"
    assert show.ovs_version == "2.0.2"


def test_same_switch_quoted_or_bare_parses_equal() -> None:
    quoted = parse((DATA / "vsctl-show-ovs-2.0.2.txt").read_text())
    rewritten = format_vsctl_show(quoted.uuid, quoted.bridges, quoted.ovs_version)
    assert 'Port "qvo8b2e8c3a-1f"' not in rewritten and "Port qvo8b2e8c3a-1f" in rewritten
    assert parse(rewritten) == quoted


def test_ovs_1_10_manager_and_interface_error() -> None:
    show = parse((DATA / "vsctl-show-ovs-1.10.2.txt").read_text())
    assert [b.name for b in show.bridges] == ["br-ex", "br-int"]
    assert show.bridges[0].interface("eth2") == Interface("eth2")
    (error,) = show.errors
    assert error.interface == "qvo11111111-22" and error.message.endswith("(No such device)")
    assert show.bridges[1].interface("qvo11111111-22") is not None
    assert show.ovs_version == "1.10.2"


def test_ovs_2_5_controllers_are_recognised() -> None:
    show = parse((DATA / "vsctl-show-ovs-2.5.0.txt").read_text())
    br_tun = show.bridges[0]
    assert br_tun.name == "br-tun" and br_tun.fail_mode == "secure"
    vxlan = br_tun.interface("vxlan-0a00000c")
    assert vxlan is not None and vxlan.type == "vxlan" and vxlan.option("df_default") == "true"
    assert show.bridges[1].ovsdb_port("tap9a8b7c6d-5e") is not None


def test_crlf_trailing_spaces_and_no_version() -> None:
    text = "3d40c18d-9e87-4990-8d5c-0976e1d9ed09\r\n    Bridge br0  \r\n        Port p\r\n            Interface p\r\n"
    show = parse(text)
    assert show.bridges == (Bridge("br0", (Port("p", (Interface("p"),)),)),)
    assert show.ovs_version is None


def test_bridge_without_ports() -> None:
    show = parse("3d40c18d-9e87-4990-8d5c-0976e1d9ed09\n    Bridge br0\n")
    assert show.bridges == (Bridge("br0"),)


def test_trunks_single_value_and_tight_list() -> None:
    base = f"{UUID}\n    Bridge b\n        Port p\n            trunks: {{}}\n            Interface p\n"
    assert parse(base.format("7")).bridges[0].ports[0].trunks == (7,)
    assert parse(base.format("[1,2]")).bridges[0].ports[0].trunks == (1, 2)


# ---------------------------------------------------------------- the quoting rule


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        ("flow", "flow"),
        ("192.0.2.1", '"192.0.2.1"'),
        ("br-int", "br-int"),
        ("ab1", "ab1"),
        ("_x", "_x"),
        ("a.b", "a.b"),
        ("true", '"true"'),
        ("false", '"false"'),
        ("null", "null"),
        ("", '""'),
        ("a b", '"a b"'),
        ("a:b", '"a:b"'),
        ("-1", '"-1"'),
        ("é", '"é"'),
        ("a\\b", '"a\\\\b"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("line\nbreak", '"line\\nbreak"'),
        ("3d40c18d-9e87-4990-8d5c-0976e1d9ed09", '"3d40c18d-9e87-4990-8d5c-0976e1d9ed09"'),
        ("abcdef01-9e87-4990-8d5c-0976e1d9ed09", '"abcdef01-9e87-4990-8d5c-0976e1d9ed09"'),
    ],
)
def test_ovsdb_string_follows_ovs_3_1(value: str, printed: str) -> None:
    assert ovsdb_string(value) == printed


# ---------------------------------------------------------------- errors

HEAD = f"{UUID}\n    Bridge br0\n        Port p\n            Interface p\n"


@pytest.mark.parametrize(
    ("text", "line", "problem", "bad"),
    [
        (f"{UUID}\n  Bridge br0\n", 2, "indentation is not a multiple of four spaces", "Bridge br0"),
        (f"{UUID}\n    \tBridge br0\n", 2, "indentation is not a multiple of four spaces", "Bridge br0"),
        (f"{UUID}\n        Port p\n", 2, "indented deeper than the record above it", "Port p"),
        (HEAD + "                link_state: up\n", 5, "unknown column 'link_state' for Interface", "link_state: up"),
        (HEAD + "            is_connected: true\n", 5, "unknown column 'is_connected' for Port", "is_connected: true"),
        (
            f"{UUID}\n    Bridge br0\n        Interface p\n",
            3,
            "unexpected Interface record inside Bridge",
            "Interface p",
        ),
        (f"{UUID}\n    Mirror m\n", 2, "unexpected Mirror record inside Open_vSwitch", "Mirror m"),
        (f"{UUID}\n{UUID}\n", 2, "a second top-level line", UUID),
        ("Bridge br0\n", 1, "expected the Open_vSwitch record UUID on the first line", "Bridge br0"),
        ("    Bridge br0\n", 1, "expected the Open_vSwitch record UUID before any indented line", "Bridge br0"),
        (f"{UUID}\n    Bridge br0\n        fail_mode\n", 3, "not a record or a column of Bridge", "fail_mode"),
        (f"{UUID}\n    Bridge br0\n        fail_mode:\n", 3, "not a record or a column of Bridge", "fail_mode:"),
        (f"{UUID}\n    ovs_version: 1\n    ovs_version: 2\n", 3, "ovs_version given twice", "ovs_version: 2"),
        (f"{UUID}\n    Bridge b\n    Bridge b\n", 3, "bridge 'b' already listed at line 2", "Bridge b"),
        (HEAD + "        Port p\n", 5, "port 'p' listed twice on bridge 'br0'", "Port p"),
        (
            HEAD + "        Port q\n            Interface p\n",
            6,
            "interface 'p' already listed at line 4",
            "Interface p",
        ),
        (HEAD.replace("Port p\n", "Port p\n            tag: 4096\n"), 4, "expected a VLAN number 0-4095", "tag: 4096"),
        (HEAD.replace("Port p\n", "Port p\n            tag: one\n"), 4, "expected a VLAN number 0-4095", "tag: one"),
        (HEAD.replace("Port p\n", "Port p\n            trunks: [1 2]\n"), 4, "expected a VLAN set", "trunks: [1 2]"),
        (HEAD + "                options: peer=x\n", 5, "expected a map like {key=value, ...}", "options: peer=x"),
        (HEAD + "                options: {peer}\n", 5, "expected '=' after map key 'peer'", "options: {peer}"),
        (HEAD + "                options: {a=1, a=2}\n", 5, "map key 'a' given twice", "options: {a=1, a=2}"),
        (HEAD + "                options: {a=1 b=2}\n", 5, "expected ', ' between map entries", "options: {a=1 b=2}"),
        (HEAD + "                options: {a=1, }\n", 5, "expected ', ' between map entries", "options: {a=1, }"),
        (HEAD + "                options: {=1}\n", 5, "expected a string", "options: {=1}"),
        (HEAD + '                type: "bad \\q"\n', 5, "bad quoted string", 'type: "bad \\q"'),
        (HEAD + "                type: internal extra\n", 5, "expected one string, found more", "type: internal extra"),
        (f'{UUID}\n    Bridge "br0\n', 2, "expected a string", 'Bridge "br0'),
    ],
)
def test_errors_name_file_line_and_text(text: str, line: int, problem: str, bad: str) -> None:
    error = error_of(text)
    assert error.where == f"hosts/c1/ovs-vsctl-show.txt:{line}"
    assert problem in error.problem
    assert error.text == bad
    assert str(error).startswith(f"hosts/c1/ovs-vsctl-show.txt:{line}: error: ")


def test_empty_file_is_an_error() -> None:
    error = error_of("\n\n")
    assert error.where == "hosts/c1/ovs-vsctl-show.txt" and "empty" in error.problem


def test_port_without_interface_is_an_error() -> None:
    error = error_of(f"{UUID}\n    Bridge br0\n        Port p\n")
    assert error.where == "hosts/c1/ovs-vsctl-show.txt:3" and error.problem == "port has no Interface"
    assert error.text == "Port p"


# ---------------------------------------------------------------- lenient


def test_lenient_skips_the_line_and_everything_under_it() -> None:
    text = (
        f"{UUID}\n    Bridge br0\n        Port p\n            Interface p\n"
        "                link_state: up\n"
        "        Port q\n            tag: x\n            Interface q\n"
        "        Port r\n            Interface r\n"
        "                type: internal\n"
    )
    text = text.replace("        Port q\n", "        Port q q\n")
    show = parse(text, lenient=True)
    assert [s.line for s in show.skipped] == [5, 6, 7, 8]
    assert "link_state" in show.skipped[0].reason
    assert show.skipped[2].reason == "inside the record skipped at line 6"
    assert [p.name for p in show.bridges[0].ports] == ["p", "r"]
    assert show.bridges[0].interface("r") == Interface("r", "internal")


def test_lenient_bad_indentation_skips_one_line() -> None:
    show = parse(f"{UUID}\n    Bridge br0\n       Port x\n        Port p\n            Interface p\n", lenient=True)
    assert [(s.line, s.reason) for s in show.skipped] == [(3, "indentation is not a multiple of four spaces")]
    assert show.bridges[0].ports == (Port("p", (Interface("p"),)),)


def test_lenient_port_without_interface_is_reported() -> None:
    show = parse(f"{UUID}\n    Bridge br0\n        Port p\n            Interface\n", lenient=True)
    assert [(s.line, s.reason) for s in show.skipped] == [
        (4, "not a record or a column of Port"),
        (3, "port has no Interface"),
    ]
    assert show.bridges == (Bridge("br0"),)


# ---------------------------------------------------------------- round trip

_names = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=10)
_strings = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)
_vlan = st.integers(0, 4095)


@st.composite
def _bridges(draw: st.DrawFn) -> tuple[Bridge, ...]:
    bridge_names = draw(st.lists(_names, max_size=3, unique=True))
    iface_names = iter(draw(st.lists(_names, min_size=18, max_size=18, unique=True)))
    bridges = []
    for name in bridge_names:
        ports = []
        for port_name in draw(st.lists(_names, max_size=3, unique=True)):
            ifaces = tuple(
                Interface(
                    next(iface_names),
                    draw(st.sampled_from(["", "internal", "patch", "gre", "vxlan", "a b"])),
                    tuple(sorted(draw(st.dictionaries(_strings, _strings, max_size=3)).items())),
                )
                for _ in range(draw(st.integers(1, 2)))
            )
            trunks = tuple(sorted(draw(st.sets(_vlan, max_size=4))))
            ports.append(Port(port_name, ifaces, draw(st.none() | _vlan), trunks))
        bridges.append(
            Bridge(
                name,
                tuple(ports),
                fail_mode=draw(st.none() | st.sampled_from(["secure", "standalone"])),
                datapath_type=draw(st.none() | st.sampled_from(["system", "netdev"])),
            )
        )
    return tuple(bridges)


@given(_bridges(), st.uuids(), st.none() | _strings)
def test_roundtrip(bridges: tuple[Bridge, ...], uuid: object, version: str | None) -> None:
    text = format_vsctl_show(str(uuid), bridges, version)
    show = parse(text)
    assert show.bridges == bridges
    assert show.uuid == str(uuid) and show.ovs_version == version
    assert show.skipped == () and show.errors == ()


def test_lenient_without_a_uuid_skips_everything() -> None:
    show = parse("not-a-uuid\n    Bridge br0\n", lenient=True)
    assert show.uuid == "" and show.bridges == ()
    assert [(s.line, s.reason) for s in show.skipped] == [
        (1, "expected the Open_vSwitch record UUID on the first line"),
        (2, "inside the record skipped at line 1"),
    ]
    with pytest.raises(SnapshotError, match="empty"):
        parse("", lenient=True)
