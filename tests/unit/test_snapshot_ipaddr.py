"""ip addr: outputs of several iproute2 releases, every error, and the writer."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier.errors import SnapshotError
from verifier.ir import Address
from verifier.linux import Link
from verifier.snapshot.ipaddr import IpAddr, format_ip_addr, parse_ip_addr

DATA = Path(__file__).parent.parent / "data" / "snapshot_formats"
FILE = "hosts/c1/ip-addr.txt"


def parse(text: str, *, lenient: bool = False) -> IpAddr:
    return parse_ip_addr(text, FILE, lenient=lenient)


def test_iproute2_6_1_compute_node() -> None:
    parsed = parse((DATA / "ip-addr-iproute2-6.1.txt").read_text())
    assert parsed.addresses == (
        Address("lo", "127.0.0.1", 8),
        Address("lo", "::1", 128),
        Address("ens3", "192.0.2.1", 24),
        Address("ens3", "198.51.100.7", 24),
        Address("ens3", "2001:db8::5054:ff:fe12:3456", 64),
        Address("ens3", "fe80::5054:ff:fe12:3456", 64),
    )
    links = {link.name: link for link in parsed.links}
    assert list(links)[:4] == ["lo", "ens3", "ovs-system", "br-int"]
    assert links["qvb8b2e8c3a-1f"] == Link(
        "qvb8b2e8c3a-1f",
        9,
        ("BROADCAST", "MULTICAST", "PROMISC", "UP", "LOWER_UP"),
        1450,
        "UP",
        "qbr8b2e8c3a-1f",
        "qvo8b2e8c3a-1f",
        "ether",
        "2e:3f:4a:5b:6c:7d",
    )
    assert links["qvo8b2e8c3a-1f"].master == "ovs-system"
    assert links["gre0"].peer == "NONE" and links["gre0"].kind == "gre" and links["gre0"].mac is None
    assert links["lo"].kind == "loopback" and links["lo"].state == "UNKNOWN"


def test_iproute2_3_12_without_group_and_with_a_label() -> None:
    parsed = parse((DATA / "ip-addr-iproute2-3.12.txt").read_text())
    assert Address("eth0", "192.168.10.100", 32) in parsed.addresses  # label eth0:1 belongs to eth0
    assert Address("qbr8b2e8c3a-1f", "fe80::2c3f:4aff:fe5b:6c7d", 64) in parsed.addresses
    links = {link.name: link for link in parsed.links}
    assert links["lo"].mtu == 16436 and links["qvb8b2e8c3a-1f"].peer is None
    assert links["tap8b2e8c3a-1f"].state == "UNKNOWN" and links["tap8b2e8c3a-1f"].master == "qbr8b2e8c3a-1f"


def test_namespace_with_link_netnsid_and_peer_address() -> None:
    parsed = parse((DATA / "ip-addr-netns-qrouter.txt").read_text())
    links = {link.name: link for link in parsed.links}
    assert links["eth0"].peer == "if12" and links["eth0"].mac == "02:42:ac:11:00:02"
    assert links["tun0"].kind == "none" and links["tun0"].mac is None
    assert Address("tun0", "10.8.0.1", 32) in parsed.addresses
    assert Address("qg-2a3b4c5d-6e", "203.0.113.20", 32) in parsed.addresses
    assert Address("qr-5e7c3d2a-9b", "10.0.0.1", 24) in parsed.addresses


def test_crlf_and_blank_lines() -> None:
    text = "\r\n1: eth0: <UP> mtu 1500 state UP\r\n    inet 10.0.0.5/24 scope global eth0\r\n\r\n"
    assert parse(text).addresses == (Address("eth0", "10.0.0.5", 24),)


def test_real_layout_roundtrips_through_the_writer() -> None:
    parsed = parse((DATA / "ip-addr-iproute2-6.1.txt").read_text())
    again = parse(format_ip_addr(parsed.addresses, parsed.links))
    assert again.links == parsed.links and again.addresses == parsed.addresses


def test_writer_layout() -> None:
    text = format_ip_addr([Address("eth0", "192.0.2.1", 24), Address("eth0", "fe80::1", 64)])
    assert text == (
        "0: eth0: <> qdisc noqueue group default qlen 1000\n"
        "    inet 192.0.2.1/24 scope global eth0\n"
        "       valid_lft forever preferred_lft forever\n"
        "    inet6 fe80::1/64 scope link \n"
        "       valid_lft forever preferred_lft forever\n"
    )


def test_unknown_link_attributes_are_left_out_and_bare_headers_carry_addresses_only() -> None:
    bare = Link("br0")
    assert format_ip_addr((), [bare]) == "0: br0: <> qdisc noqueue group default qlen 1000\n"
    assert parse(format_ip_addr((), [bare])).links == (bare,)  # no addresses: the header is the link
    with_address = [Address("br0", "10.0.0.1", 24)]
    assert parse(format_ip_addr(with_address, [bare])) == IpAddr((), tuple(with_address))
    partial = Link("eth0", 2, ("UP",), kind="ether")
    assert parse(format_ip_addr(with_address, [partial])).links == (partial,)


# ---------------------------------------------------------------- errors

HEAD = "2: eth0: <BROADCAST,UP> mtu 1500 qdisc noqueue state UP\n"


@pytest.mark.parametrize(
    ("text", "line", "problem", "bad"),
    [
        ("eth0: <UP>\n", 1, "expected a link header", "eth0: <UP>"),
        ("    inet 10.0.0.5/24\n", 1, "indented line before the first link header", "inet 10.0.0.5/24"),
        (HEAD + "    vxlan id 42\n", 2, "unknown ip addr line 'vxlan'", "vxlan id 42"),
        (HEAD + "    inet 10.0.0.256/24\n", 2, "bad IPv4 address '10.0.0.256'", "inet 10.0.0.256/24"),
        (HEAD + "    inet6 10.0.0.1/24\n", 2, "'10.0.0.1' is not an IPv6 address", "inet6 10.0.0.1/24"),
        (HEAD + "    inet 10.0.0.1\n", 2, "bad or missing prefix length", "inet 10.0.0.1"),
        (HEAD + "    inet 10.0.0.1/33\n", 2, "bad or missing prefix length", "inet 10.0.0.1/33"),
        (HEAD + "    inet\n", 2, "address missing", "inet"),
        (HEAD + "    inet 10.0.0.1/8 peer 10.0.0.2/32\n", 2, "has a prefix length", "inet 10.0.0.1/8 peer 10.0.0.2/32"),
        (HEAD + HEAD, 2, "link 'eth0' listed twice", HEAD.strip()),
        (HEAD + "    link/ether aa:bb:cc:dd:ee:ff\n    link/none\n", 3, "second link/ line", "link/none"),
        ("2: eth0: <UP> mtu big\n", 1, "bad mtu 'big'", "2: eth0: <UP> mtu big"),
    ],
)
def test_errors_name_file_line_and_text(text: str, line: int, problem: str, bad: str) -> None:
    with pytest.raises(SnapshotError) as info:
        parse(text)
    assert info.value.where == f"{FILE}:{line}"
    assert problem in info.value.problem
    assert info.value.text == bad


def test_lenient_skips_a_bad_header_with_its_lines() -> None:
    text = "garbage\n    inet 10.0.0.1/24\n" + HEAD + "    inet 10.0.0.2/24 scope global eth0\n    bogus\n"
    parsed = parse(text, lenient=True)
    assert [(s.line, s.reason) for s in parsed.skipped] == [
        (1, "expected a link header like '2: eth0: <BROADCAST,UP> mtu 1500 ...'"),
        (2, "belongs to the link skipped at line 1"),
        (5, "unknown ip addr line 'bogus' (was the output made with 'ip -d' or 'ip -o'?)"),
    ]
    assert parsed.addresses == (Address("eth0", "10.0.0.2", 24),)


# ---------------------------------------------------------------- round trip

_ifnames = st.from_regex(r"[a-z][a-z0-9-]{0,14}", fullmatch=True)


@st.composite
def _grouped_addresses(draw: st.DrawFn) -> list[Address]:
    out = []
    for name in draw(st.lists(_ifnames, max_size=4, unique=True)):
        for _ in range(draw(st.integers(1, 3))):
            if draw(st.booleans()):
                ip: ipaddress.IPv4Address | ipaddress.IPv6Address = draw(st.ip_addresses(v=4))
            else:
                ip = draw(st.ip_addresses(v=6))
            out.append(Address(name, str(ip), draw(st.integers(0, ip.max_prefixlen))))
    return out


@given(_grouped_addresses())
def test_roundtrip_addresses(addresses: list[Address]) -> None:
    assert parse(format_ip_addr(addresses)).addresses == tuple(addresses)


@given(_grouped_addresses())
def test_writer_groups_by_interface(addresses: list[Address]) -> None:
    shuffled = addresses[::-1]
    names = list(dict.fromkeys(a.interface for a in shuffled))
    grouped = [a for n in names for a in shuffled if a.interface == n]
    assert parse(format_ip_addr(shuffled)).addresses == tuple(grouped)


_flags = st.lists(st.sampled_from(["BROADCAST", "MULTICAST", "UP", "LOWER_UP", "PROMISC", "NOARP"]), unique=True)


@st.composite
def _links(draw: st.DrawFn) -> list[Link]:
    names = draw(st.lists(_ifnames, max_size=4, unique=True))
    indices = sorted(draw(st.lists(st.integers(1, 9999), min_size=len(names), max_size=len(names), unique=True)))
    links = []
    for index, name in zip(indices, names):
        kind = draw(st.sampled_from(["ether", "loopback", "none", "gre"]))
        mac = (
            draw(st.from_regex(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", fullmatch=True))
            if kind in ("ether", "loopback")
            else None
        )
        links.append(
            Link(
                name,
                index,
                tuple(draw(_flags)),
                draw(st.none() | st.integers(68, 65536)),
                draw(st.sampled_from(["UP", "DOWN", "UNKNOWN"])),
                draw(st.none() | _ifnames),
                draw(st.none() | _ifnames),
                kind,
                mac,
            )
        )
    return links


@given(_links())
def test_roundtrip_links(links: list[Link]) -> None:
    assert parse(format_ip_addr((), links)).links == tuple(links)
