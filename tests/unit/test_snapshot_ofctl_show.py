"""ovs-ofctl show: real outputs (OpenFlow 1.0 and 1.3, several OVS releases), every error, the writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier.errors import SnapshotError
from verifier.header import OFPP_LOCAL
from verifier.ir import OFPort
from verifier.snapshot.ofctl_show import NO_MAC, OfctlShow, format_ofctl_show, parse_ofctl_show

DATA = Path(__file__).parent.parent / "data" / "snapshot_formats"
FILE = "hosts/c1/ovs-ofctl-show-br-int.txt"


def parse(text: str, *, lenient: bool = False) -> OfctlShow:
    return parse_ofctl_show(text, FILE, lenient=lenient)


def test_real_ovs_3_1_openflow_1_0() -> None:
    text = (DATA / "ofctl-show-ovs-3.1-br-int.txt").read_text()
    show = parse(text)
    assert show.dpid == "0000ca2250916943" and show.openflow_version == "OF1.0" and show.shows_no_flood
    assert [p.number for p in show.ports] == [1, 2, 3, 4, 5, 11, 21, OFPP_LOCAL]
    by_name = {p.name: p for p in show.ports}
    assert by_name["weird name"].number == 2
    assert by_name["tap-vm1"] == OFPort(11, "tap-vm1", "aa:55:aa:55:00:17", ("NO_FLOOD",), ())
    assert by_name["tap-vm1"].no_flood
    assert by_name["qr-r1"] == OFPort(21, "qr-r1", "aa:55:aa:55:00:16", ("PORT_DOWN", "NO_RECV"), ("LINK_DOWN",))
    assert by_name["eth9"].config == ("NO_FWD",)
    assert by_name["br-int"] == OFPort(OFPP_LOCAL, "br-int", "ca:22:50:91:69:43")


def test_writer_reproduces_real_ovs_3_1_exactly() -> None:
    text = (DATA / "ofctl-show-ovs-3.1-br-int.txt").read_text()
    show = parse(text)
    assert show.dpid is not None
    assert format_ofctl_show("br-int", show.dpid, show.ports) == text


def test_real_ovs_3_1_openflow_1_3_differs_only_where_1_3_cannot_say() -> None:
    of10 = parse((DATA / "ofctl-show-ovs-3.1-br-int.txt").read_text())
    of13 = parse((DATA / "ofctl-show-ovs-3.1-of13-br-int.txt").read_text())
    assert of13.openflow_version == "OF1.3" and not of13.shows_no_flood
    assert of13.dpid == of10.dpid
    # LIVE is dropped; NO_FLOOD does not exist in OpenFlow 1.3.
    expected = tuple(
        OFPort(p.number, p.name, p.mac, tuple(f for f in p.config if f != "NO_FLOOD"), p.state) for p in of10.ports
    )
    assert of13.ports == expected


def test_ovs_2_0_2_with_port_features() -> None:
    show = parse((DATA / "ofctl-show-ovs-2.0.2-br-int.txt").read_text())
    assert show.openflow_version == "OF1.0"
    assert show.ports == (
        OFPort(1, "patch-tun", "7a:4e:1c:2b:3d:4f"),
        OFPort(2, "qvo8b2e8c3a-1f", "ce:1f:2e:3d:4c:5b"),
        OFPort(3, "qr-5e7c3d2a-9b", "fa:16:3e:aa:bb:01", ("PORT_DOWN",), ("LINK_DOWN",)),
        OFPort(OFPP_LOCAL, "br-int", "a6:f1:b2:c3:d4:e5", ("PORT_DOWN",), ("LINK_DOWN",)),
    )


def test_ovs_1_10_with_advertised_and_supported() -> None:
    show = parse((DATA / "ofctl-show-ovs-1.10.2-br-ex.txt").read_text())
    assert show.dpid == "0000525400aabbcd"
    assert [(p.number, p.name) for p in show.ports] == [(1, "eth2"), (2, "qg-2a3b4c5d-6e"), (OFPP_LOCAL, "br-ex")]


def test_openflow_1_5_header_and_crlf() -> None:
    text = (
        "OFPT_FEATURES_REPLY (OF1.5) (xid=0x2): dpid:000016cb82aed842\r\n"
        "n_tables:254, n_buffers:0\r\n"
        "capabilities: FLOW_STATS TABLE_STATS PORT_STATS GROUP_STATS QUEUE_STATS BUNDLES\r\n"
        "OFPST_PORT_DESC reply (OF1.5) (xid=0x3):\r\n"
        " 1(patch-int): addr:22:CC:07:8B:03:19\r\n"
        "     config:     0\r\n"
        "     state:      LIVE\r\n"
        "     speed: 0 Mbps now, 0 Mbps max\r\n"
        "OFPT_GET_CONFIG_REPLY (OF1.5) (xid=0x5): frags=normal miss_send_len=0\r\n"
    )
    show = parse(text)
    assert show.openflow_version == "OF1.5"
    assert show.ports == (OFPort(1, "patch-int", "22:cc:07:8b:03:19"),)


def test_port_list_without_header_and_zero_mac() -> None:
    show = parse(" 7(x): addr:00:00:00:00:00:00\n     config:     0\n     state:      0\n")
    assert show.dpid is None and show.openflow_version is None
    assert show.ports == (OFPort(7, "x", None),)


def test_names_with_spaces_and_parentheses() -> None:
    show = parse(" 2(a (b)): addr:aa:55:aa:55:00:1c\n     config:     0\n     state:      0\n")
    assert show.ports[0].name == "a (b)"


# ---------------------------------------------------------------- errors

HEADER = "OFPT_FEATURES_REPLY (xid=0x2): dpid:0000ca2250916943\n"
PORT = " 1(p): addr:aa:55:aa:55:00:11\n     config:     0\n     state:      0\n"


@pytest.mark.parametrize(
    ("text", "line", "problem", "bad"),
    [
        (HEADER + "garbage here\n", 2, "not an ovs-ofctl show line", "garbage here"),
        (HEADER + "     config:     0\n", 2, "config: line outside a port block", "config:     0"),
        (PORT + "     colour:     red\n", 4, "unknown port property 'colour'", "colour:     red"),
        (PORT.replace("config:     0", "config:     no_flood"), 2, "expected config flags", "config:     no_flood"),
        (PORT.replace("config:     0", "config:"), 2, "expected config flags", "config:"),
        (PORT + "     state:      0\n", 4, "state: given twice for port 'p'", "state:      0"),
        (PORT + PORT, 4, "port 1(p) clashes with the port at line 1", "1(p): addr:aa:55:aa:55:00:11"),
        (PORT + PORT.replace("1(p)", "2(p)"), 4, "clashes with the port at line 1", "2(p): addr:aa:55:aa:55:00:11"),
        (HEADER + HEADER, 2, "a second OFPT_FEATURES_REPLY", HEADER.strip()),
        (
            " 70000(p): addr:aa:55:aa:55:00:11\n",
            1,
            "port number 70000 is out of range",
            "70000(p): addr:aa:55:aa:55:00:11",
        ),
        (" 1(p): addr:aa:55:aa:55:00\n", 1, "not an ovs-ofctl show line", "1(p): addr:aa:55:aa:55:00"),
    ],
)
def test_errors_name_file_line_and_text(text: str, line: int, problem: str, bad: str) -> None:
    with pytest.raises(SnapshotError) as info:
        parse(text)
    assert info.value.where == f"{FILE}:{line}"
    assert problem in info.value.problem
    assert info.value.text == bad


def test_port_without_config_or_state_is_an_error() -> None:
    with pytest.raises(SnapshotError) as info:
        parse(HEADER + " 1(p): addr:aa:55:aa:55:00:11\n     speed: 0 Mbps now, 0 Mbps max\n")
    assert info.value.where == f"{FILE}:2"
    assert info.value.problem == "port has no config and no state line"
    assert info.value.text == "1(p)"


def test_lenient_collects_bad_lines() -> None:
    text = HEADER + PORT + "     colour:     red\nnonsense\n" + " 2(q): addr:aa:55:aa:55:00:12\n     config:     0\n"
    show = parse(text, lenient=True)
    assert [(s.line, s.text) for s in show.skipped] == [(5, "colour:     red"), (6, "nonsense"), (7, "2(q)")]
    assert show.skipped[2].reason == "port has no state line: read as no flags"
    assert [p.name for p in show.ports] == ["p", "q"]
    assert all(s.file == FILE for s in show.skipped)


# ---------------------------------------------------------------- writer


def test_writer_rejects_bad_dpid_and_foreign_local_port() -> None:
    with pytest.raises(ValueError, match="dpid must be 16 lower-case hex digits"):
        format_ofctl_show("br-int", "xyz", ())
    with pytest.raises(ValueError, match="LOCAL port of bridge 'br-int' is named 'br-tun'"):
        format_ofctl_show("br-int", "0" * 16, (OFPort(OFPP_LOCAL, "br-tun"),))


def test_writer_prints_unknown_mac_as_zero() -> None:
    text = format_ofctl_show("b", "0" * 16, (OFPort(3, "p"),))
    assert f" 3(p): addr:{NO_MAC}\n" in text
    assert parse(text).ports == (OFPort(3, "p"),)


_names = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=12)
_macs = st.binary(min_size=6, max_size=6).filter(any).map(lambda b: ":".join(f"{x:02x}" for x in b))
_config = st.lists(
    st.sampled_from(["PORT_DOWN", "NO_STP", "NO_RECV", "NO_RECV_STP", "NO_FLOOD", "NO_FWD"]), unique=True
)
_state = st.lists(st.sampled_from(["LINK_DOWN", "BLOCKED", "STP_LISTEN", "STP_FORWARD"]), unique=True)


@st.composite
def _ports(draw: st.DrawFn) -> tuple[OFPort, ...]:
    numbers = sorted(draw(st.sets(st.integers(1, 0xFEFF), max_size=6)))
    names = draw(
        st.lists(_names.filter(lambda n: n != "br-x"), min_size=len(numbers), max_size=len(numbers), unique=True)
    )
    ports = [
        OFPort(n, name, draw(st.none() | _macs), tuple(draw(_config)), tuple(draw(_state)))
        for n, name in zip(numbers, names)
    ]
    if draw(st.booleans()):
        ports.append(OFPort(OFPP_LOCAL, "br-x", draw(st.none() | _macs)))
    return tuple(ports)


@given(_ports(), st.binary(min_size=8, max_size=8).map(bytes.hex))
def test_roundtrip(ports: tuple[OFPort, ...], dpid: str) -> None:
    show = parse(format_ofctl_show("br-x", dpid, ports))
    assert show.ports == ports
    assert show.dpid == dpid and show.skipped == ()
