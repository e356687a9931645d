"""Snapshot directories: read_snapshot and write_snapshot, layout rules, notes, errors, lenient mode."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verifier.errors import SnapshotError
from verifier.header import OFPP_LOCAL
from verifier.ir import (
    Address,
    Bridge,
    Dataplane,
    FieldSlice,
    Flow,
    Host,
    Interface,
    Learn,
    LearnSpec,
    OFPort,
    Output,
    Port,
)
from verifier.snapshot.flows import parse_dump_flows, port_resolver
from verifier.snapshot.reader import read_snapshot, synthetic_of_ports
from verifier.snapshot.writer import bridge_dpid, host_uuid, snapshot_files, write_snapshot

DATA = Path(__file__).parent.parent / "data" / "snapshot_formats"

BR_INT_PORTS = (
    Port("tap-vm1", (Interface("tap-vm1"),), tag=1),
    Port("qr-r1", (Interface("qr-r1", "internal"),), tag=4095, trunks=(4095,)),
    Port("patch-tun", (Interface("patch-tun", "patch", (("peer", "patch-int"),)),)),
    Port("br-int", (Interface("br-int", "internal"),)),
)
BR_INT_OF = (
    OFPort(1, "patch-tun", "6a:e1:ed:80:08:1e"),
    OFPort(11, "tap-vm1", "aa:55:aa:55:00:0f", ("NO_FLOOD",)),
    OFPort(21, "qr-r1", "aa:55:aa:55:00:0e", ("PORT_DOWN",), ("LINK_DOWN",)),
    OFPort(OFPP_LOCAL, "br-int", "ca:22:50:91:69:43"),
)
BR_INT_FLOWS = """\
table=0, priority=2,in_port=patch-tun,dl_vlan=1 actions=NORMAL
table=0, priority=1 actions=resubmit(,60)
table=60, priority=3,in_port=tap-vm1 actions=output:patch-tun,LOCAL
"""
BR_TUN_PORTS = (
    Port(
        "gre-c0000202",
        (
            Interface(
                "gre-c0000202",
                "gre",
                (("in_key", "flow"), ("local_ip", "192.0.2.1"), ("out_key", "flow"), ("remote_ip", "192.0.2.2")),
            ),
        ),
    ),
    Port("patch-int", (Interface("patch-int", "patch", (("peer", "patch-tun"),)),)),
    Port("br-tun", (Interface("br-tun", "internal"),)),
)
BR_TUN_OF = (
    OFPort(1, "patch-int", "22:cc:07:8b:03:19"),
    OFPort(2, "gre-c0000202", "aa:93:76:2b:09:0a"),
    OFPort(OFPP_LOCAL, "br-tun", "16:cb:82:ae:d8:42"),
)


def flows(text: str, of_ports: tuple[OFPort, ...]) -> tuple[Flow, ...]:
    parsed, _ = parse_dump_flows(text, "test", port_resolver({p.name: p.number for p in of_ports}))
    return tuple(sorted(parsed, key=lambda f: (f.table, -f.priority)))


def dataplane() -> Dataplane:
    br_int = Bridge("br-int", BR_INT_PORTS, BR_INT_OF, flows(BR_INT_FLOWS, BR_INT_OF), fail_mode="secure")
    br_tun = Bridge(
        "br-tun",
        BR_TUN_PORTS,
        BR_TUN_OF,
        flows("table=0, priority=1,in_port=2 actions=set_tunnel:0x5,output:1\n", BR_TUN_OF),
        fail_mode="secure",
        datapath_type="system",
    )
    compute = Host(
        "compute1", (br_int, br_tun), (Address("eth0", "192.0.2.1", 24), Address("eth0", "fe80::1", 64)), "3.1.0"
    )
    br_ex = Bridge("br-ex", (Port("br-ex", (Interface("br-ex", "internal"),)),), (OFPort(OFPP_LOCAL, "br-ex"),))
    network = Host("network1", (br_ex,))
    return Dataplane((compute, network))


NEUTRON = {"networks": [{"id": "n1", "name": "private"}], "ports": []}


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    root = tmp_path / "snap"
    write_snapshot(root, dataplane(), NEUTRON)
    return root


def error_of(root: Path, *, lenient: bool = False) -> SnapshotError:
    with pytest.raises(SnapshotError) as info:
        read_snapshot(root, lenient=lenient)
    return info.value


# ---------------------------------------------------------------- write then read


def test_read_what_write_snapshot_wrote(snap: Path) -> None:
    snapshot = read_snapshot(snap)
    assert snapshot.dataplane == dataplane()
    assert snapshot.neutron_json == NEUTRON
    assert snapshot.root == str(snap)
    assert snapshot.notes == () and snapshot.skipped == ()
    assert snapshot.missing == ("hosts/network1/ip-addr.txt",)
    assert not snapshot.flows_missing("compute1", "br-int")
    assert snapshot.file_missing("hosts/network1/ip-addr.txt")
    flow = snapshot.dataplane.hosts[0].bridges[0].flows[0]
    assert flow.provenance.file == "hosts/compute1/ovs-ofctl-dump-flows-br-int.txt" and flow.provenance.line == 2


def test_layout_and_determinism(snap: Path, tmp_path: Path) -> None:
    files = sorted(str(p.relative_to(snap)) for p in snap.rglob("*") if p.is_file())
    assert files == [
        "hosts/compute1/ip-addr.txt",
        "hosts/compute1/ovs-ofctl-dump-flows-br-int.txt",
        "hosts/compute1/ovs-ofctl-dump-flows-br-tun.txt",
        "hosts/compute1/ovs-ofctl-show-br-int.txt",
        "hosts/compute1/ovs-ofctl-show-br-tun.txt",
        "hosts/compute1/ovs-vsctl-show.txt",
        "hosts/network1/ovs-ofctl-dump-flows-br-ex.txt",
        "hosts/network1/ovs-ofctl-show-br-ex.txt",
        "hosts/network1/ovs-vsctl-show.txt",
        "neutron.json",
    ]
    shuffled = Dataplane(tuple(reversed([replace(h, bridges=h.bridges[::-1]) for h in dataplane().hosts])))
    again = tmp_path / "again"
    write_snapshot(again, shuffled, NEUTRON)
    for rel in files:
        assert (again / rel).read_bytes() == (snap / rel).read_bytes()
    vsctl = (snap / "hosts/compute1/ovs-vsctl-show.txt").read_text()
    assert vsctl.startswith(host_uuid("compute1") + "\n    Bridge br-int\n        fail_mode: secure\n")
    assert host_uuid("compute1") != host_uuid("network1")
    show = (snap / "hosts/compute1/ovs-ofctl-show-br-int.txt").read_text()
    assert show.startswith("OFPT_FEATURES_REPLY (xid=0x2): dpid:0000ca2250916943\n")
    assert bridge_dpid("h", Bridge("b")) == bridge_dpid("h", Bridge("b")) != bridge_dpid("h", Bridge("c"))


_names = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)


@st.composite
def _dataplanes(draw: st.DrawFn) -> Dataplane:
    hosts = []
    for host_name in sorted(draw(st.lists(_names, min_size=1, max_size=2, unique=True))):
        bridges = []
        bridge_names = sorted(draw(st.lists(_names, max_size=2, unique=True)))
        taken = set(bridge_names)  # OVSDB names are unique per host: no interface twice, none named as a bridge
        for bridge_name in bridge_names:
            iface_names = draw(
                st.lists(_names.filter(lambda n, t=frozenset(taken): n not in t), max_size=3, unique=True)
            )
            taken.update(iface_names)
            ports = tuple(Port(n, (Interface(n, draw(st.sampled_from(["", "internal"]))),)) for n in iface_names)
            of_ports = tuple(OFPort(i, n, None) for i, n in enumerate(iface_names, start=1))
            out = tuple(Flow(0, 100 - i, (), (Output(p.number),)) for i, p in enumerate(of_ports))
            bridges.append(Bridge(bridge_name, ports, of_ports, out, fail_mode=draw(st.none() | st.just("secure"))))
        addresses = tuple(Address("eth0", str(draw(st.ip_addresses(v=4))), 24) for _ in range(draw(st.integers(0, 2))))
        hosts.append(Host(host_name, tuple(bridges), addresses, draw(st.none() | st.just("2.17.9"))))
    return Dataplane(tuple(hosts))


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_dataplanes())
def test_roundtrip_generated(tmp_path: Path, dp: Dataplane) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    write_snapshot(root, dp)
    assert read_snapshot(root).dataplane == dp
    shutil.rmtree(root)


# ---------------------------------------------------------------- the writer's refusals


def test_writer_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(SnapshotError) as info:
        write_snapshot(tmp_path, dataplane())
    assert info.value.where == str(tmp_path) and "not empty" in info.value.problem


def test_overwrite_replaces_only_its_own_files(snap: Path) -> None:
    stale = snap / "hosts/compute1/ovs-ofctl-dump-flows-br-old.txt"
    stale.write_text("")
    (snap / "hosts/compute1/ovs-vsctl-show.txt").write_text("garbage")
    write_snapshot(snap, dataplane(), overwrite=True)
    assert stale.exists()  # never deleted
    assert (snap / "neutron.json").exists()  # not written this time, kept
    snapshot = read_snapshot(snap)
    assert snapshot.dataplane.hosts[0].bridge("br-old") is not None
    assert snapshot.dataplane.hosts[0].bridge("br-int") == dataplane().hosts[0].bridges[0]


def test_writer_refuses_a_file_path_and_a_directory_in_the_way(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(SnapshotError, match="exists and is not a directory"):
        write_snapshot(target, dataplane())
    (tmp_path / "d/hosts/compute1/ip-addr.txt").mkdir(parents=True)
    with pytest.raises(SnapshotError, match="is a directory; cannot write the file"):
        write_snapshot(tmp_path / "d", dataplane(), overwrite=True)


@pytest.mark.parametrize(
    ("dp", "where", "problem"),
    [
        (Dataplane(()), "hosts", "at least one host is required"),
        (Dataplane((Host("a/b"),)), "hosts/a/b", "the host name cannot be part of a file name"),
        (Dataplane((Host(".."),)), "hosts/..", "the host name cannot be part of a file name"),
        (Dataplane((Host("h"), Host("h"))), "hosts/h", "two hosts of this name"),
        (
            Dataplane((Host("h", (Bridge("b/c"),)),)),
            "hosts/h/ovs-ofctl-show-b/c.txt",
            "the bridge name cannot be part of a file name",
        ),
        (Dataplane((Host("h", (Bridge("b"), Bridge("b"))),)), "hosts/h/ovs-vsctl-show.txt", "two bridges of this name"),
        (
            Dataplane((Host("h", (Bridge("b", of_ports=(OFPort(OFPP_LOCAL, "x"),)),)),)),
            "hosts/h/ovs-ofctl-show-b.txt",
            "LOCAL port of bridge 'b' is named 'x'",
        ),
        (
            Dataplane(
                (
                    Host(
                        "h",
                        (
                            Bridge(
                                "b",
                                flows=(
                                    Flow(
                                        0,
                                        1,
                                        (),
                                        (Learn(LearnSpec(1, 1, ((FieldSlice("vlan_tci", 0, 12), 5),), (), ())),),
                                    ),
                                ),
                            ),
                        ),
                    ),
                )
            ),
            "hosts/h/ovs-ofctl-dump-flows-b.txt",
            "cannot print a flow: learn: constant match on part of a field",
        ),
    ],
)
def test_writer_errors_name_the_file(dp: Dataplane, where: str, problem: str) -> None:
    with pytest.raises(SnapshotError) as info:
        snapshot_files(dp)
    assert info.value.where == where and problem in info.value.problem


# ---------------------------------------------------------------- layout errors


def test_not_a_directory(tmp_path: Path) -> None:
    assert error_of(tmp_path / "nope").problem == "not a snapshot: no such directory"
    (tmp_path / "f").write_text("")
    assert error_of(tmp_path / "f").problem == "not a snapshot: is not a directory"


def test_unknown_top_level_entry(snap: Path) -> None:
    (snap / "README").write_text("hi")
    error = error_of(snap)
    assert error.where == "README" and "not part of the snapshot format" in error.problem


@pytest.mark.parametrize(
    ("setup", "where", "problem"),
    [
        (lambda r: shutil.rmtree(r / "hosts"), "hosts", "at least one host is required: there is no hosts/ directory"),
        (lambda r: [shutil.rmtree(p) for p in (r / "hosts").iterdir()], "hosts", "hosts/ is empty"),
        (lambda r: (r / "hosts/notes.txt").write_text(""), "hosts/notes.txt", "not a host directory"),
    ],
)
def test_hosts_are_required(snap: Path, setup: Callable[[Path], object], where: str, problem: str) -> None:
    setup(snap)
    error = error_of(snap)
    assert error.where == where and problem in error.problem


@pytest.mark.parametrize(
    "name", ["ovs-ofctl-dumpflows-br-int.txt", "ovs-vsctl-show", "ip_addr.txt", "ovs-ofctl-show-.txt", ".swp"]
)
def test_misspelt_host_file_is_an_error(snap: Path, name: str) -> None:
    (snap / "hosts/compute1" / name).write_text("")
    error = error_of(snap)
    assert error.where == f"hosts/compute1/{name}" and "misspelt" in error.problem and error.text == name


def test_spec_file_that_is_a_directory(snap: Path) -> None:
    (snap / "hosts/network1/ip-addr.txt").mkdir()
    error = error_of(snap)
    assert error.where == "hosts/network1/ip-addr.txt" and error.problem == "expected a file, found a directory"


def test_linux_files_are_read(snap: Path) -> None:
    """Empty Linux files are read as empty (known), a namespace's absent files as unknown and missing."""
    host = snap / "hosts/compute1"
    for name in ("ip-route.txt", "iptables-save.txt", "brctl-show.txt"):
        (host / name).write_text("")
    (host / "netns/qrouter-r1").mkdir(parents=True)
    (host / "netns/qrouter-r1/ip-addr.txt").write_text("")
    (host / "netns/qrouter-r1/iptables-save.txt").write_text("")
    snapshot = read_snapshot(snap)
    compute = snapshot.dataplane.hosts[0]
    assert snapshot.notes == ()
    assert compute.routes == () and compute.netfilter is not None and compute.netfilter.tables == ()
    assert compute.linux_bridges == ()
    (ns,) = compute.namespaces
    assert ns.name == "qrouter-r1" and ns.routes is None and ns.netfilter is not None
    assert "hosts/compute1/netns/qrouter-r1/ip-route.txt" in snapshot.missing


@pytest.mark.parametrize(
    ("make", "where", "problem"),
    [
        (lambda n: (n.parent / "netns").write_text(""), "hosts/compute1/netns", "expected a directory of namespaces"),
        (lambda n: (n / "qdhcp-x").write_text(""), "hosts/compute1/netns/qdhcp-x", "expected a namespace directory"),
        (
            lambda n: (n / "qdhcp-x").mkdir() or (n / "qdhcp-x/ip-adr.txt").write_text(""),
            "hosts/compute1/netns/qdhcp-x/ip-adr.txt",
            "not a file of the snapshot format",
        ),
        (
            lambda n: (n / "qdhcp-x/ip-route.txt").mkdir(parents=True),
            "hosts/compute1/netns/qdhcp-x/ip-route.txt",
            "not a file of the snapshot format",
        ),
    ],
)
def test_netns_layout_errors(snap: Path, make: Callable[[Path], object], where: str, problem: str) -> None:
    netns = snap / "hosts/compute1/netns"
    if not where.endswith("/netns"):
        netns.mkdir()
    make(netns)
    error = error_of(snap)
    assert error.where == where and problem in error.problem


# ---------------------------------------------------------------- neutron.json and encodings


@pytest.mark.parametrize(
    ("text", "where", "problem", "bad"),
    [
        (
            '{\n  "networks": [\n    {"id": 1,}\n  ]\n}\n',
            "neutron.json:3",
            "invalid JSON at column 14",
            '    {"id": 1,}',
        ),
        ("", "neutron.json:1", "invalid JSON at column 1: Expecting value", ""),
        ("[1, 2]", "neutron.json", "must hold one JSON object, not a JSON list", None),
    ],
)
def test_neutron_json_errors(snap: Path, text: str, where: str, problem: str, bad: str | None) -> None:
    (snap / "neutron.json").write_text(text)
    error = error_of(snap)
    assert (error.where, error.text) == (where, bad) and error.problem.startswith(problem)


def test_neutron_json_optional_and_not_a_directory(snap: Path) -> None:
    (snap / "neutron.json").unlink()
    snapshot = read_snapshot(snap)
    assert snapshot.neutron_json is None and "neutron.json" in snapshot.missing
    (snap / "neutron.json").mkdir()
    assert error_of(snap).problem == "expected a file, found a directory"


def test_not_utf8_names_file_and_line(snap: Path) -> None:
    (snap / "hosts/compute1/ip-addr.txt").write_bytes(b"1: lo: <UP> mtu 1\n    inet 10.0.0.1/8 \xff\n")
    error = error_of(snap)
    assert error.where == "hosts/compute1/ip-addr.txt:2" and "not UTF-8 text (byte 0xff" in error.problem
    (snap / "hosts/compute1/ip-addr.txt").unlink()
    (snap / "neutron.json").write_bytes(b'{"a": "\xe9"}')
    assert error_of(snap).where == "neutron.json:1"


def test_unreadable_file(snap: Path) -> None:
    target = snap / "hosts/compute1/ip-addr.txt"
    target.unlink()
    target.symlink_to(snap / "nowhere")
    error = error_of(snap)
    assert error.where == "hosts/compute1/ip-addr.txt" and error.problem.startswith("cannot read file")


def test_crlf_and_bom(snap: Path) -> None:
    for path in (snap / "hosts").rglob("*.txt"):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert read_snapshot(snap).dataplane == dataplane()


# ---------------------------------------------------------------- what the files say


def test_real_ovs_3_1_files(tmp_path: Path) -> None:
    host = tmp_path / "hosts/c1"
    host.mkdir(parents=True)
    shutil.copy(DATA / "vsctl-show-ovs-3.1.txt", host / "ovs-vsctl-show.txt")
    shutil.copy(DATA / "ofctl-show-ovs-3.1-br-int.txt", host / "ovs-ofctl-show-br-int.txt")
    shutil.copy(DATA / "ofctl-show-ovs-3.1-of13-br-int.txt", host / "ovs-ofctl-show-br-tun.txt")
    (host / "ovs-ofctl-dump-flows-br-int.txt").write_text(
        "NXST_FLOW reply (xid=0x4):\n"
        " cookie=0x0, duration=5.1s, table=0, n_packets=0, n_bytes=0, priority=1,in_port=tap-vm1 actions=NORMAL\n"
    )
    error = error_of(tmp_path)  # br-tun's show file is br-int's output
    assert error.where == "hosts/c1/ovs-ofctl-show-br-tun.txt" and "LOCAL port is named 'br-int'" in error.problem
    (host / "ovs-ofctl-show-br-tun.txt").unlink()
    snapshot = read_snapshot(tmp_path)
    (c1,) = snapshot.dataplane.hosts
    br_int, br_tun = c1.bridges
    in_port = br_int.flows[0].match_value("in_port")
    assert in_port is not None and in_port.value == 11
    assert br_int.of_ports[-1] == OFPort(OFPP_LOCAL, "br-int", "ca:22:50:91:69:43")
    assert any("OVS reports an error on interface 'bogus1'" in n for n in br_tun.notes)
    assert any(
        n.startswith("hosts/c1 bridge br-tun: hosts/c1/ovs-vsctl-show.txt:38: OVS reports") for n in snapshot.notes
    )
    assert snapshot.flows_missing("c1", "br-tun") and not snapshot.flows_missing("c1", "br-int")
    assert br_tun.of_ports == synthetic_of_ports(br_tun)
    assert c1.ovs_version == "3.1.0"


def test_openflow_1_3_show_file_is_noted(snap: Path) -> None:
    shutil.copy(DATA / "ofctl-show-ovs-3.1-of13-br-int.txt", snap / "hosts/compute1/ovs-ofctl-show-br-int.txt")
    snapshot = read_snapshot(snap)
    bridge = snapshot.dataplane.hosts[0].bridges[0]
    assert any("OF1.3 output, which cannot show the NO_FLOOD port flag" in n for n in bridge.notes)


def test_bridge_known_only_from_flow_or_show_files(snap: Path) -> None:
    host = snap / "hosts/compute1"
    (host / "ovs-ofctl-dump-flows-br-ex.txt").write_text("table=0, priority=0 actions=drop\n")
    snapshot = read_snapshot(snap)
    br_ex = snapshot.dataplane.hosts[0].bridge("br-ex")
    assert br_ex is not None and len(br_ex.flows) == 1 and br_ex.ports == () and br_ex.of_ports == ()
    assert br_ex.notes[0] == "not in ovs-vsctl-show.txt; known only from hosts/compute1/ovs-ofctl-dump-flows-br-ex.txt"
    assert "hosts/compute1/ovs-ofctl-show-br-ex.txt" in snapshot.missing
    assert snapshot.notes[0].startswith("hosts/compute1 bridge br-ex: not in ovs-vsctl-show.txt")


def test_missing_vsctl_show(snap: Path) -> None:
    (snap / "hosts/compute1/ovs-vsctl-show.txt").unlink()
    snapshot = read_snapshot(snap)
    compute = snapshot.dataplane.hosts[0]
    assert [b.name for b in compute.bridges] == ["br-int", "br-tun"]
    assert compute.bridges[0].ports == () and compute.bridges[0].of_ports == BR_INT_OF
    assert compute.bridges[0].flows == dataplane().hosts[0].bridges[0].flows
    assert "hosts/compute1/ovs-vsctl-show.txt" in snapshot.missing
    assert "hosts/compute1/ovs-vsctl-show.txt: missing: no OVSDB ports, VLAN tags or tunnel options" in snapshot.notes


def test_missing_dump_flows(snap: Path) -> None:
    (snap / "hosts/compute1/ovs-ofctl-dump-flows-br-tun.txt").unlink()
    snapshot = read_snapshot(snap)
    assert snapshot.flows_missing("compute1", "br-tun") and not snapshot.flows_missing("compute1", "br-int")
    assert snapshot.missing == ("hosts/compute1/ovs-ofctl-dump-flows-br-tun.txt", "hosts/network1/ip-addr.txt")
    assert snapshot.dataplane.hosts[0].bridges[1].flows == ()


def test_missing_ofctl_show_with_named_ports(snap: Path) -> None:
    host = snap / "hosts/compute1"
    (host / "ovs-ofctl-show-br-int.txt").unlink()
    (host / "ovs-ofctl-dump-flows-br-int.txt").write_text(BR_INT_FLOWS)
    snapshot = read_snapshot(snap)
    bridge = snapshot.dataplane.hosts[0].bridges[0]
    assert bridge.of_ports == (
        OFPort(1, "patch-tun"),
        OFPort(2, "qr-r1"),
        OFPort(3, "tap-vm1"),
        OFPort(OFPP_LOCAL, "br-int"),
    )
    assert bridge.flows == flows(BR_INT_FLOWS, bridge.of_ports)
    assert "OpenFlow port numbers are synthetic" in bridge.notes[0]
    assert any("synthetic" in n and n.startswith("hosts/compute1 bridge br-int:") for n in snapshot.notes)
    assert "hosts/compute1/ovs-ofctl-show-br-int.txt" in snapshot.missing


def test_missing_ofctl_show_with_numeric_ports(snap: Path) -> None:
    host = snap / "hosts/compute1"
    (host / "ovs-ofctl-show-br-int.txt").unlink()
    error = error_of(snap)  # the written dump uses numbers
    assert error.where == "hosts/compute1/ovs-ofctl-dump-flows-br-int.txt:2"
    assert error.problem == (
        "port 1 is given by number, and hosts/compute1/ovs-ofctl-show-br-int.txt "
        "(which maps numbers to ports) is missing"
    )
    assert error.text is not None and "in_port=1" in error.text
    snapshot = read_snapshot(snap, lenient=True)
    bridge = snapshot.dataplane.hosts[0].bridges[0]
    assert [s.line for s in bridge.skipped] == [2, 4]  # line 3 (priority 1, no port) is kept
    assert len(bridge.flows) == 1 and bridge.skipped[0] in snapshot.skipped


def test_missing_ofctl_show_with_an_unknown_name(snap: Path) -> None:
    host = snap / "hosts/compute1"
    (host / "ovs-ofctl-show-br-int.txt").unlink()
    (host / "ovs-ofctl-dump-flows-br-int.txt").write_text("priority=1,in_port=LOCAL actions=output:nosuch\n")
    error = error_of(snap)
    assert error.where == "hosts/compute1/ovs-ofctl-dump-flows-br-int.txt:1"
    assert error.problem == (
        "unknown port name 'nosuch' (ports resolved with ovs-vsctl-show.txt because "
        "hosts/compute1/ovs-ofctl-show-br-int.txt is missing)"
    )


def test_no_vsctl_and_no_ofctl_show(snap: Path) -> None:
    host = snap / "hosts/compute1"
    for name in ("ovs-vsctl-show.txt", "ovs-ofctl-show-br-tun.txt", "ovs-ofctl-dump-flows-br-tun.txt"):
        (host / name).unlink()
    (host / "ovs-ofctl-dump-flows-br-tun.txt").write_text("priority=0 actions=drop\n")
    snapshot = read_snapshot(snap)
    br_tun = snapshot.dataplane.hosts[0].bridges[1]
    assert br_tun.of_ports == () and len(br_tun.flows) == 1
    assert "hosts/compute1/ovs-ofctl-show-br-tun.txt is missing and no OVSDB interfaces are known" in br_tun.notes


def test_strict_errors_in_each_file_name_file_and_line(snap: Path) -> None:
    host = snap / "hosts/compute1"
    cases = {
        "ovs-vsctl-show.txt": ("    link_state: up\n", "unknown column 'link_state' for Open_vSwitch"),
        "ovs-ofctl-show-br-int.txt": ("bogus line\n", "not an ovs-ofctl show line"),
        "ip-addr.txt": ("    bogus\n", "unknown ip addr line"),
        "ovs-ofctl-dump-flows-br-int.txt": ("not a flow\n", "not a flow"),
    }
    for name, (extra, problem) in cases.items():
        original = (host / name).read_text()
        (host / name).write_text(original + extra)
        error = error_of(snap)
        assert error.where == f"hosts/compute1/{name}:{original.count(chr(10)) + 1}"
        assert problem in error.problem and error.text == extra.strip()
        (host / name).write_text(original)


def test_lenient_collects_every_skipped_line(snap: Path) -> None:
    host = snap / "hosts/compute1"
    for name, extra in {
        "ovs-vsctl-show.txt": "    link_state: up\n",
        "ovs-ofctl-show-br-int.txt": "bogus line\n",
        "ip-addr.txt": "    bogus\n",
        "ovs-ofctl-dump-flows-br-int.txt": "not a flow\n",
    }.items():
        (host / name).write_text((host / name).read_text() + extra)
    snapshot = read_snapshot(snap, lenient=True)
    assert sorted(s.file for s in snapshot.skipped) == sorted(
        f"hosts/compute1/{n}"
        for n in ("ovs-vsctl-show.txt", "ovs-ofctl-show-br-int.txt", "ip-addr.txt", "ovs-ofctl-dump-flows-br-int.txt")
    )
    br_int = snapshot.dataplane.hosts[0].bridges[0]
    assert [s.text for s in br_int.skipped] == ["not a flow"]
    assert snapshot.dataplane == dataplane()


def test_neutron_json_is_kept_verbatim(snap: Path) -> None:
    payload = {"networks": [{"id": "x", "provider:network_type": "gre", "unknown": [1, {"a": None}]}]}
    (snap / "neutron.json").write_text(json.dumps(payload))
    assert read_snapshot(snap).neutron_json == payload


def test_ovsdb_and_openflow_port_lists_are_compared(snap: Path) -> None:
    host = snap / "hosts/compute1"
    show = (host / "ovs-ofctl-show-br-int.txt").read_text()
    (host / "ovs-ofctl-show-br-int.txt").write_text(show.replace(" 11(tap-vm1)", " 11(tap-other)"))
    snapshot = read_snapshot(snap)
    notes = snapshot.dataplane.hosts[0].bridges[0].notes
    assert notes == (
        "interfaces in ovs-vsctl-show.txt but not in hosts/compute1/ovs-ofctl-show-br-int.txt: 'tap-vm1'",
        "interfaces in hosts/compute1/ovs-ofctl-show-br-int.txt but not in ovs-vsctl-show.txt: 'tap-other'",
    )
