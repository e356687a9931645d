"""ip route: real iproute2 6.1 outputs, a 3.12-era layout, every error, lenient mode and the writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support.linux_strategies import routes
from verifier.errors import SnapshotError
from verifier.ir import Skipped
from verifier.linux import NextHop, Route
from verifier.snapshot.iproute import format_ip_route, parse_ip_route

DATA = Path(__file__).parent.parent / "data" / "snapshot_formats"
FILE = "hosts/n1/netns/qrouter-r1/ip-route.txt"
QR = "qr-2d9c6b4e-5f"
QG = "qg-0b7e3c95-4d"


def parse(text: str) -> tuple[Route, ...]:
    return parse_ip_route(text, FILE)


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_real_qrouter_namespace() -> None:
    routes = parse(read("ip-route-iproute2-6.1-qrouter.txt"))
    assert routes == (
        Route("default", "203.0.113.1", QG, proto="static"),
        Route("10.0.22.0/24", None, QR, scope="link", source="10.0.22.1", proto="kernel"),
        Route("10.8.0.0/16", "10.0.22.7", QR, metric=100),
        Route(
            "10.9.0.0/24",
            nexthops=(NextHop("10.0.22.8", QR, 1), NextHop("10.0.22.9", QR, 2)),
            proto="static",
        ),
        Route("10.66.0.0/16", kind="blackhole"),
        Route("10.67.0.0/16", kind="unreachable"),
        Route("10.68.0.0/16", kind="prohibit", metric=5),
        Route("10.70.0.0/16", "192.0.2.99", QR, onlink=True),
        Route("198.51.100.1/32", None, QG, scope="link"),  # a host route is printed without /32
        Route("203.0.113.0/24", None, QG, scope="link", source="203.0.113.74", proto="kernel"),
    )
    ecmp = routes[3]
    assert ecmp.provenance.line == 4 and ecmp.provenance.text == "10.9.0.0/24 proto static"
    assert routes[-1].provenance.line == 12


def test_real_linkdown_dead_onlink_throw_and_a_gateway_of_the_other_family() -> None:
    routes = parse(read("ip-route-iproute2-6.1-linkdown.txt"))
    by_destination = {r.destination: r for r in routes}
    assert by_destination["default"] == Route(
        "default", "10.1.0.1", "eth0", metric=100, source="10.1.0.2", proto="dhcp"
    )
    assert by_destination["10.3.0.0/24"].linkdown
    assert by_destination["10.9.0.0/24"].nexthops == (
        NextHop("10.1.0.1", "eth0", 1),
        NextHop("10.3.0.1", "tapdown", 3, linkdown=True),
    )
    assert by_destination["10.10.0.0/24"].nexthops[1] == NextHop("10.2.0.1", "eth1", 1, onlink=True)
    assert by_destination["10.11.0.0/24"] == Route("10.11.0.0/24", "10.3.0.1", "tapdown", metric=7, linkdown=True)
    assert by_destination["10.12.0.0/16"].kind == "throw"
    assert by_destination["10.13.0.0/24"].gateway == "fe80::1"


def test_one_line_output_reads_like_the_multi_line_output() -> None:
    assert parse(read("ip-route-iproute2-6.1-oneline.txt")) == parse(read("ip-route-iproute2-6.1-linkdown.txt"))
    one_line = "10.9.0.0/24 proto static nexthop via 10.0.22.8 dev a weight 1 nexthop via 10.0.22.9 dev b weight 2\n"
    assert parse(one_line)[0].nexthops == (NextHop("10.0.22.8", "a", 1), NextHop("10.0.22.9", "b", 2))


def test_table_all_with_local_broadcast_multicast_and_ipv6() -> None:
    routes = parse(read("ip-route-iproute2-6.1-table-all.txt"))
    assert routes[0] == Route("10.72.0.0/16", "10.0.22.10", QR, table="100")
    local = [r for r in routes if r.kind == "local"]
    assert local[0] == Route(
        "10.0.22.1/32", None, QR, kind="local", table="local", scope="host", source="10.0.22.1", proto="kernel"
    )
    assert {r.kind for r in routes} == {
        "unicast",
        "local",
        "broadcast",
        "blackhole",
        "unreachable",
        "prohibit",
        "multicast",
    }
    v6 = [r for r in routes if ":" in r.destination]
    assert v6[0] == Route("fe80::/64", None, QR, metric=256, proto="kernel")  # 'pref medium' is not kept
    assert Route("::1/128", None, "lo", kind="local", table="local", metric=0, proto="kernel") in v6


def test_iproute2_3_12_double_spaces_and_a_dead_next_hop() -> None:
    routes = parse(read("ip-route-iproute2-3.12.txt"))
    assert routes[0] == Route("default", "192.0.2.254", "eth0", proto="static")
    assert routes[1] == parse(read("ip-route-iproute2-6.1-qrouter.txt"))[1]
    assert routes[2].nexthops == (NextHop("10.0.22.8", QR, 1), NextHop("10.0.22.9", QR, 2, dead=True))
    assert routes[3] == Route("169.254.0.0/16", None, "eth0", metric=1002, scope="link")
    assert routes[5] == Route("198.51.100.7/32", "192.0.2.254", "eth0")


def test_qdhcp_and_compute_and_crlf() -> None:
    assert parse(read("ip-route-iproute2-6.1-qdhcp.txt"))[0] == Route("default", "10.0.22.1", "tap6e5d4c3b-2a")
    assert parse(read("ip-route-iproute2-6.1-compute.txt"))[0].gateway == "192.0.2.254"
    assert parse("\r\n0.0.0.0/0 via 10.0.0.1 dev eth0 \r\n\r\n") == (Route("default", "10.0.0.1", "eth0"),)
    assert parse("") == ()


def test_ignored_keywords() -> None:
    text = "default nhid 7 via fe80::1 dev eth0 proto ra metric 1024 expires 1799sec mtu lock 1400 pref high\n"
    assert parse(text) == (Route("default", "fe80::1", "eth0", metric=1024, proto="ra"),)


@pytest.mark.parametrize(
    "name",
    [
        "ip-route-iproute2-6.1-qrouter.txt",
        "ip-route-iproute2-6.1-linkdown.txt",
        "ip-route-iproute2-6.1-compute.txt",
        "ip-route-iproute2-6.1-qdhcp.txt",
    ],
)
def test_real_output_is_what_the_writer_prints(name: str) -> None:
    text = read(name)
    assert format_ip_route(parse(text)) == text


@pytest.mark.parametrize(
    "name", ["ip-route-iproute2-6.1-table-all.txt", "ip-route-iproute2-6.1-oneline.txt", "ip-route-iproute2-3.12.txt"]
)
def test_other_layouts_read_back_equal_through_the_writer(name: str) -> None:
    routes = parse(read(name))
    assert parse(format_ip_route(routes)) == routes


def test_writer_layout() -> None:
    text = format_ip_route(
        [
            Route("10.0.0.5/32", "192.0.2.1", "eth0", table="7", metric=3, dead=True, onlink=True, linkdown=True),
            Route("10.9.0.0/24", nexthops=(NextHop("10.0.0.1", "a", 2, onlink=True), NextHop(None, "b"))),
            Route("10.13.0.0/24", "fe80::1", "eth1"),
        ]
    )
    assert text == (
        "10.0.0.5 via 192.0.2.1 dev eth0 table 7 metric 3 dead onlink linkdown \n"
        "10.9.0.0/24 \n"
        "\tnexthop via 10.0.0.1 dev a weight 2 onlink \n"
        "\tnexthop dev b weight 1 \n"
        "10.13.0.0/24 via inet6 fe80::1 dev eth1 \n"
    )
    with pytest.raises(ValueError, match="a multipath route has no gateway or device of its own"):
        format_ip_route([Route("10.9.0.0/24", device="x", nexthops=(NextHop("10.0.0.1", "a"),))])


@given(st.lists(routes(), max_size=5))
def test_roundtrip_generated(generated: list[Route]) -> None:
    assert parse(format_ip_route(generated)) == tuple(generated)


# ---------------------------------------------------------------- errors

DEV = "10.0.0.0/8 dev eth0"


@pytest.mark.parametrize(
    ("text", "line", "problem", "bad"),
    [
        ("nexthop via 10.0.0.1 dev a\n", 1, "a nexthop line must follow the route", "nexthop via 10.0.0.1 dev a"),
        ("\tnexthop via 10.0.0.1 dev a\n", 1, "a nexthop line must follow the route", "nexthop via 10.0.0.1 dev a"),
        ("blackhole\n", 1, "route has no destination", "blackhole"),
        ("10.0.0.1/33 dev a\n", 1, "bad destination '10.0.0.1/33'", "10.0.0.1/33 dev a"),
        ("10.0.0.1/8 dev a\n", 1, "bad destination '10.0.0.1/8'", "10.0.0.1/8 dev a"),
        ("10.0.0.0/8 dev a dev b\n", 1, "'dev' given twice", "10.0.0.0/8 dev a dev b"),
        (DEV + " metric\n", 1, "'metric' without a value", DEV + " metric"),
        (DEV + " realm 5\n", 1, "unknown ip route keyword 'realm'", DEV + " realm 5"),
        (DEV + "\n\tnexthop via 10.0.0.1 dev a\n", 1, "a multipath route has no gateway or device of its own", DEV),
        ("10.0.0.0/8 via 10.0.0.1\n", 1, "route has neither a device nor next hops", "10.0.0.0/8 via 10.0.0.1"),
        ("10.0.0.0/8\n\tnexthop weight 2\n", 2, "nexthop has neither a gateway nor a device", "nexthop weight 2"),
        ("10.0.0.0/8 via gw dev a\n", 1, "bad gateway address 'gw'", "10.0.0.0/8 via gw dev a"),
        (DEV + " src me\n", 1, "bad src address 'me'", DEV + " src me"),
        (DEV + " src ::1\n", 1, "src address '::1' is not IPv4 like the destination", DEV + " src ::1"),
        (DEV + " metric x\n", 1, "bad metric 'x' (expected 0 to 4294967295)", DEV + " metric x"),
        ("10.0.0.0/8\n\tnexthop dev a weight 0\n", 2, "bad weight '0' (expected 1 to 256)", "nexthop dev a weight 0"),
        ("10.0.0.0/8\n\tnexthop dev a realm 3\n", 2, "unknown ip route keyword 'realm'", "nexthop dev a realm 3"),
    ],
)
def test_errors_name_file_line_and_text(text: str, line: int, problem: str, bad: str) -> None:
    with pytest.raises(SnapshotError) as info:
        parse(text)
    assert info.value.where == f"{FILE}:{line}"
    assert problem in info.value.problem
    assert info.value.text == bad


def test_lenient_skips_the_whole_route_with_its_next_hops() -> None:
    text = "default via 10.0.0.1 dev eth0\n10.9.0.0/24\n\tnexthop via x dev a\n\tnexthop via 10.0.0.2 dev b\nbogus\n"
    skipped: list[Skipped] = []
    routes = parse_ip_route(text, FILE, lenient=True, skipped=skipped)
    assert routes == (Route("default", "10.0.0.1", "eth0"),)
    assert [(s.line, s.reason) for s in skipped] == [
        (2, "belongs to the route at line 2, skipped"),
        (3, "bad gateway address 'x'"),
        (4, "belongs to the route at line 2, skipped"),
        (5, "bad destination 'bogus' (expected 'default' or a network)"),
    ]
    assert skipped[2].file == FILE and skipped[2].text == "nexthop via 10.0.0.2 dev b"


def test_lenient_needs_a_list() -> None:
    with pytest.raises(ValueError, match="needs a list"):
        parse_ip_route("", FILE, lenient=True)
