"""The Linux files of a snapshot: root namespace, netns/ directories, missing files, errors, lenient mode, writer."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.linux_strategies import links_and_addresses, linux_bridges, namespaces, netfilters, routes
from verifier.errors import SnapshotError
from verifier.ir import Address, Dataplane, Host
from verifier.linux import Chain, Link, LinuxBridge, Namespace, Nat, Netfilter, NextHop, Route, Rule, Table
from verifier.snapshot.reader import read_snapshot
from verifier.snapshot.writer import snapshot_files, write_snapshot

DATA = Path(__file__).parent.parent / "data" / "snapshot_formats"
ROUTER = "qrouter-5a1b2c3d-4e5f-6789-abcd-ef0123456789"
DHCP = "qdhcp-9f8e7d6c-5b4a-3210-fedc-ba9876543210"


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    """A snapshot of real iproute2 6.1 / iptables 1.8.9 / bridge-utils 1.7.1 output: one host, two namespaces."""
    host = tmp_path / "snap/hosts/node1"
    for rel, name in {
        "ip-addr.txt": "ip-addr-iproute2-6.1.txt",
        "ip-route.txt": "ip-route-iproute2-6.1-compute.txt",
        "iptables-save.txt": "iptables-save-1.8.9-nft-compute.txt",
        "brctl-show.txt": "brctl-show-1.7.1.txt",
        f"netns/{ROUTER}/ip-addr.txt": "ip-addr-iproute2-6.1-netns-qrouter.txt",
        f"netns/{ROUTER}/ip-route.txt": "ip-route-iproute2-6.1-qrouter.txt",
        f"netns/{ROUTER}/iptables-save.txt": "iptables-save-1.8.9-nft-qrouter.txt",
        f"netns/{DHCP}/ip-addr.txt": "ip-addr-iproute2-6.1-netns-qdhcp.txt",
        f"netns/{DHCP}/ip-route.txt": "ip-route-iproute2-6.1-qdhcp.txt",
        f"netns/{DHCP}/iptables-save.txt": "iptables-save-1.8.9-nft-qdhcp.txt",
    }.items():
        (host / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / name, host / rel)
    return tmp_path / "snap"


def node(root: Path, *, lenient: bool = False) -> Host:
    (host,) = read_snapshot(root, lenient=lenient).dataplane.hosts
    return host


def test_real_linux_files(snap: Path) -> None:
    snapshot = read_snapshot(snap)
    (host,) = snapshot.dataplane.hosts
    assert host.links[1].name == "ens3" and Address("ens3", "192.0.2.1", 24) in host.addresses
    assert host.routes is not None and host.routes[0] == Route("default", "192.0.2.254", "ens3")
    assert host.netfilter is not None and host.netfilter.table("raw") is not None
    assert host.linux_bridges is not None and host.linux_bridges[1].interfaces == ("qvb8b2e8c3a-1f", "tap8b2e8c3a-1f")
    assert [ns.name for ns in host.namespaces] == [DHCP, ROUTER]  # name order
    router = host.namespace(ROUTER)
    assert router is not None and router.routes is not None and router.netfilter is not None
    qg = router.link("qg-0b7e3c95-4d")
    assert qg is not None and qg.up and qg.peer == "if3"
    assert Address("qg-0b7e3c95-4d", "203.0.113.141", 32) in router.addresses
    assert router.routes[3].nexthops[1] == NextHop("10.0.22.9", "qr-2d9c6b4e-5f", 2)
    nat = router.netfilter.table("nat")
    assert nat is not None
    rule = nat.chains[6].rules[1]
    assert rule.target == Nat("DNAT", "10.0.22.202")
    assert rule.provenance.file == f"hosts/node1/netns/{ROUTER}/iptables-save.txt" and rule.provenance.line == 85
    assert router.routes[0].provenance.file == f"hosts/node1/netns/{ROUTER}/ip-route.txt"
    dhcp = host.namespace(DHCP)
    assert dhcp is not None and Address("tap6e5d4c3b-2a", "169.254.169.254", 32) in dhcp.addresses
    assert host.root_namespace().routes == host.routes
    assert snapshot.skipped == () and snapshot.notes[-1].endswith("no OVSDB ports, VLAN tags or tunnel options")
    assert all("netns" not in m and "ip-route" not in m for m in snapshot.missing)


def test_read_write_read(snap: Path, tmp_path: Path) -> None:
    dataplane = read_snapshot(snap).dataplane
    again = tmp_path / "again"
    write_snapshot(again, dataplane)
    assert read_snapshot(again).dataplane == dataplane
    for rel in ("ip-route.txt", "brctl-show.txt", f"netns/{ROUTER}/ip-route.txt"):
        assert (again / "hosts/node1" / rel).read_text() == (snap / "hosts/node1" / rel).read_text()


def test_absent_root_files_are_unknown_but_optional(snap: Path) -> None:
    for name in ("ip-route.txt", "iptables-save.txt", "brctl-show.txt", "ip-addr.txt"):
        (snap / "hosts/node1" / name).unlink()
    snapshot = read_snapshot(snap)
    (host,) = snapshot.dataplane.hosts
    assert host.routes is None and host.netfilter is None and host.linux_bridges is None
    assert host.links == () and host.addresses == ()
    assert [m for m in snapshot.missing if m.startswith("hosts/node1/i")] == ["hosts/node1/ip-addr.txt"]


def test_absent_namespace_files_are_unknown_and_missing(snap: Path) -> None:
    ns = snap / "hosts/node1/netns" / ROUTER
    (ns / "iptables-save.txt").unlink()
    (ns / "ip-route.txt").unlink()
    (ns / "ip-addr.txt").unlink()
    (snap / f"hosts/node1/netns/{DHCP}/iptables-save.txt").write_text("")
    snapshot = read_snapshot(snap)
    (host,) = snapshot.dataplane.hosts
    assert host.namespace(ROUTER) == Namespace(ROUTER)  # routes and netfilter None: unknown
    dhcp = host.namespace(DHCP)
    assert dhcp is not None and dhcp.netfilter == Netfilter(())  # empty file: known to be empty
    assert [m for m in snapshot.missing if "netns" in m] == [
        f"hosts/node1/netns/{ROUTER}/{name}" for name in ("ip-addr.txt", "ip-route.txt", "iptables-save.txt")
    ]
    assert snapshot.file_missing(f"hosts/node1/netns/{ROUTER}/iptables-save.txt")
    (snap / "hosts/node1/netns/qrouter-empty").mkdir()
    assert node(snap).namespace("qrouter-empty") == Namespace("qrouter-empty")


@pytest.mark.parametrize(
    ("rel", "extra", "problem"),
    [
        ("ip-route.txt", "10.0.0.0/8 dev eth0 realm 3\n", "unknown ip route keyword 'realm'"),
        ("iptables-save.txt", "-A INPUT -j ACCEPT\n", "outside a table"),
        ("brctl-show.txt", "br0 8000.0a0b no\n", "bad bridge id"),
        (f"netns/{ROUTER}/ip-addr.txt", "    vxlan id 42\n", "unknown ip addr line 'vxlan'"),
        (f"netns/{ROUTER}/ip-route.txt", "bogus\n", "bad destination 'bogus'"),
        (f"netns/{DHCP}/iptables-save.txt", "*nat\n", "table 'nat' has no COMMIT line"),
    ],
)
def test_strict_errors_name_file_and_line(snap: Path, rel: str, extra: str, problem: str) -> None:
    path = snap / "hosts/node1" / rel
    original = path.read_text()
    path.write_text(original + extra)
    with pytest.raises(SnapshotError) as info:
        read_snapshot(snap)
    assert info.value.where == f"hosts/node1/{rel}:{original.count(chr(10)) + 1}"
    assert problem in info.value.problem and info.value.text == extra.strip()


def test_lenient_collects_skipped_lines_of_every_linux_file(snap: Path) -> None:
    extras = {
        "ip-route.txt": "10.0.0.0/8 dev eth0 realm 3\n",
        "iptables-save.txt": "-A INPUT -j ACCEPT\n",
        "brctl-show.txt": "br0 8000.0a0b no\n",
        f"netns/{ROUTER}/ip-addr.txt": "    vxlan id 42\n",
        f"netns/{ROUTER}/ip-route.txt": "bogus\n",
        f"netns/{DHCP}/iptables-save.txt": "*nat\nbogus\nCOMMIT\n",
    }
    expected = read_snapshot(snap).dataplane
    for rel, extra in extras.items():
        path = snap / "hosts/node1" / rel
        path.write_text(path.read_text() + extra)
    snapshot = read_snapshot(snap, lenient=True)
    assert sorted({s.file for s in snapshot.skipped}) == sorted(f"hosts/node1/{rel}" for rel in extras)
    (host,) = snapshot.dataplane.hosts
    (old,) = expected.hosts
    assert host.routes == old.routes and host.linux_bridges == old.linux_bridges
    dhcp = host.namespace(DHCP)
    assert (
        dhcp is not None
        and dhcp.netfilter is not None
        and [t.name for t in dhcp.netfilter.tables]
        == [
            "mangle",
            "nat",
        ]
    )


def test_netns_entries_outside_the_format(snap: Path) -> None:
    (snap / f"hosts/node1/netns/{ROUTER}/ip6tables-save.txt").write_text("")
    with pytest.raises(SnapshotError) as info:
        read_snapshot(snap)
    assert info.value.where == f"hosts/node1/netns/{ROUTER}/ip6tables-save.txt"


# ---------------------------------------------------------------- the writer


def test_writer_layout_and_none_versus_empty() -> None:
    host = Host(
        "n1",
        links=(Link("lo", 1, ("LOOPBACK", "UP"), 65536, "UNKNOWN", kind="loopback", mac="00:00:00:00:00:00"),),
        routes=(),
        netfilter=Netfilter(()),
        linux_bridges=(LinuxBridge("qbr1", ("tap1",)),),
        namespaces=(Namespace("qdhcp-b", routes=(Route("default", "10.0.0.1", "tap1"),)), Namespace("qrouter-a")),
    )
    files = snapshot_files(Dataplane((host,)))
    assert sorted(files) == [
        "hosts/n1/brctl-show.txt",
        "hosts/n1/ip-addr.txt",
        "hosts/n1/ip-route.txt",
        "hosts/n1/iptables-save.txt",
        "hosts/n1/netns/qdhcp-b/ip-addr.txt",
        "hosts/n1/netns/qdhcp-b/ip-route.txt",
        "hosts/n1/netns/qrouter-a/ip-addr.txt",
        "hosts/n1/ovs-vsctl-show.txt",
    ]
    assert files["hosts/n1/ip-route.txt"] == "" and files["hosts/n1/iptables-save.txt"] == ""
    assert files["hosts/n1/netns/qdhcp-b/ip-route.txt"] == "default via 10.0.0.1 dev tap1 \n"
    assert files["hosts/n1/netns/qrouter-a/ip-addr.txt"] == ""


def test_a_host_known_only_by_its_addresses_reads_back_without_links(tmp_path: Path) -> None:
    host = Host("n1", addresses=(Address("eth0", "192.0.2.5", 24),), links=(Link("br0", 4, kind="ether"),))
    write_snapshot(tmp_path / "s", Dataplane((host,)))
    assert read_snapshot(tmp_path / "s").dataplane.hosts[0] == host


_bad_rule = Netfilter((Table("filter", (Chain("INPUT", "ACCEPT", (Rule("INPUT", (), Nat("NETMAP")),)),)),))


@pytest.mark.parametrize(
    ("host", "where", "problem"),
    [
        (Host("h", namespaces=(Namespace("a/b"),)), "hosts/h/netns/a/b", "the namespace name cannot be part"),
        (Host("h", namespaces=(Namespace("x"), Namespace("x"))), "hosts/h/netns/x", "two namespaces of this name"),
        (
            Host("h", routes=(Route("10.0.0.0/8", device="a", nexthops=(NextHop("10.0.0.1", "b"),)),)),
            "hosts/h/ip-route.txt",
            "cannot print a route: route 10.0.0.0/8: a multipath route has no gateway or device of its own",
        ),
        (Host("h", netfilter=_bad_rule), "hosts/h/iptables-save.txt", "cannot print a rule: unknown NAT kind"),
        (
            Host("h", namespaces=(Namespace("x", netfilter=Netfilter((), family=6)),)),
            "hosts/h/netns/x/iptables-save.txt",
            "iptables-save.txt holds IPv4 rules, not IPv6",
        ),
    ],
)
def test_writer_errors_name_the_file(host: Host, where: str, problem: str) -> None:
    with pytest.raises(SnapshotError) as info:
        snapshot_files(Dataplane((host,)))
    assert info.value.where == where and problem in info.value.problem


@st.composite
def _hosts(draw: st.DrawFn) -> Host:
    links, addresses = draw(links_and_addresses())
    return Host(
        draw(st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)),
        addresses=addresses,
        links=links,
        routes=draw(st.none() | st.lists(routes(), max_size=3).map(tuple)),
        netfilter=draw(st.none() | netfilters()),
        namespaces=draw(namespaces()),
        linux_bridges=draw(st.none() | linux_bridges()),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_hosts())
def test_roundtrip_generated(tmp_path: Path, host: Host) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    write_snapshot(root, Dataplane((host,)))
    assert read_snapshot(root).dataplane == Dataplane((host,))
    shutil.rmtree(root)
