"""Neutron's device, namespace and tunnel-port names, in both directions.

Sources (``neutron-dataplane.md`` §2): nova/os-vif cut VM device names to 14
characters (prefix + 11 characters of the port id): ``tap``/``qbr``/``qvb``/``qvo``;
the DHCP device is ``tap`` + id[:11] (``N/agent/linux/interface.py``), router
ports ``qr-``/``qg-`` + id[:11] (``N/agent/l3/router_info.py``); namespaces are
``qrouter-<router_id>`` and ``qdhcp-<network_id>``; a tunnel port is
``<type>-<remote IPv4 as 8 hex digits>`` or, for IPv6, a base32 blake2b hash
(``ovs_neutron_agent.get_tunnel_name``); physical-bridge patch ports are
``int-<bridge>``/``phy-<bridge>``, hashed when longer than 15 characters
(``neutron_lib.plugins.utils.get_interface_name``).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re

DEVICE_NAME_MAX_LEN = 15
"""Linux interface names: 15 characters plus the NUL (``neutron_lib.constants``)."""

PORT_ID_PREFIX_LEN = 11
"""Characters of the port id in a device name (14-character names, 3-character prefixes)."""

INTERFACE_HASH_LEN = 6
"""Hex digits of sha1 kept when ``get_interface_name`` shortens a name."""

INT_PEER_PATCH_PORT = "patch-tun"
"""The br-int end of the br-int/br-tun patch (``ovs_conf.int_peer_patch_port``)."""

TUN_PEER_PATCH_PORT = "patch-int"
"""The br-tun end of the patch (``ovs_conf.tun_peer_patch_port``)."""

PEER_INTEGRATION_PREFIX = "int-"
PEER_PHYSICAL_PREFIX = "phy-"

ROUTER_NS_PREFIX = "qrouter-"
DHCP_NS_PREFIX = "qdhcp-"

# Role -> prefix as it appears in the device name.
DEVICE_PREFIXES: dict[str, str] = {
    "tap": "tap",
    "qbr": "qbr",
    "qvb": "qvb",
    "qvo": "qvo",
    "qr": "qr-",
    "qg": "qg-",
}

# The first 11 characters of a UUID: 8 hex digits, a dash, 2 hex digits.
_ID_PREFIX = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{2}"
_DEVICE = re.compile(r"(tap|qbr|qvb|qvo|qr-|qg-)(" + _ID_PREFIX + r")")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_NAMESPACE = re.compile(r"(qrouter|qdhcp)-(" + _UUID + r")")
_TUNNEL = re.compile(r"(gre|vxlan|geneve)-([0-9a-z]+)")


def port_id_prefix(port_id: str) -> str:
    """The part of a port id that Neutron puts into device names."""
    return port_id[:PORT_ID_PREFIX_LEN]


def device_name(role: str, port_id: str) -> str:
    """The device name of a port in one role: ``device_name("qvo", id)`` -> ``qvo1234abcd-ef``."""
    return DEVICE_PREFIXES[role] + port_id_prefix(port_id)


def tap_name(port_id: str) -> str:
    """The VM tap device, and the DHCP port's device in ``qdhcp-``."""
    return device_name("tap", port_id)


def qbr_name(port_id: str) -> str:
    return device_name("qbr", port_id)


def qvb_name(port_id: str) -> str:
    return device_name("qvb", port_id)


def qvo_name(port_id: str) -> str:
    return device_name("qvo", port_id)


def qr_name(port_id: str) -> str:
    return device_name("qr", port_id)


def qg_name(port_id: str) -> str:
    return device_name("qg", port_id)


def parse_device_name(name: str) -> tuple[str, str] | None:
    """``(role, port id prefix)`` for a Neutron device name, None for anything else.

    ``parse_device_name("qvo1234abcd-ef")`` is ``("qvo", "1234abcd-ef")``;
    ``parse_device_name("qr-1234abcd-ef")`` is ``("qr", "1234abcd-ef")``.
    """
    match = _DEVICE.fullmatch(name)
    if match is None:
        return None
    return match.group(1).rstrip("-"), match.group(2)


def device_belongs_to(name: str, port_id: str) -> bool:
    """Whether a device name denotes that port (in any role)."""
    parsed = parse_device_name(name)
    return parsed is not None and port_id.lower().startswith(parsed[1].lower())


def router_namespace(router_id: str) -> str:
    return ROUTER_NS_PREFIX + router_id


def dhcp_namespace(network_id: str) -> str:
    return DHCP_NS_PREFIX + network_id


def parse_namespace(name: str) -> tuple[str, str] | None:
    """``("qrouter", router_id)`` or ``("qdhcp", network_id)``; None for other names."""
    match = _NAMESPACE.fullmatch(name)
    return None if match is None else (match.group(1), match.group(2))


def tunnel_hash(remote_ip: str, hashlen: int) -> str:
    """``get_tunnel_hash``: 8 hex digits for IPv4, else base32(blake2b-160) cut to ``hashlen``."""
    address = ipaddress.ip_address(remote_ip)
    if address.version == 4:
        return f"{int(address):08x}"
    digest = hashlib.blake2b(remote_ip.encode(), digest_size=20).digest()
    return base64.b32encode(digest)[:hashlen].decode().lower()


def tunnel_port_name(network_type: str, remote_ip: str) -> str:
    """``gre-0a000002`` for a GRE tunnel to 10.0.0.2 (``get_tunnel_name``)."""
    hashlen = DEVICE_NAME_MAX_LEN - len(network_type) - 1
    return f"{network_type}-{tunnel_hash(remote_ip, hashlen)}"


def parse_tunnel_port_name(name: str) -> tuple[str, ipaddress.IPv4Address | None] | None:
    """``(tunnel type, remote IPv4)`` for a tunnel port name; the address is None for IPv6 hashes."""
    match = _TUNNEL.fullmatch(name)
    if match is None:
        return None
    tunnel_type, suffix = match.groups()
    if re.fullmatch(r"[0-9a-f]{8}", suffix):
        return tunnel_type, ipaddress.IPv4Address(int(suffix, 16))
    if len(name) == DEVICE_NAME_MAX_LEN and re.fullmatch(r"[a-z2-7]+", suffix):
        return tunnel_type, None
    return None


def interface_name(name: str, prefix: str) -> str:
    """``get_interface_name``: ``prefix + name``, shortened with a sha1 suffix past 15 characters."""
    requested = prefix + name
    if len(requested) <= DEVICE_NAME_MAX_LEN:
        return requested
    keep = DEVICE_NAME_MAX_LEN - len(prefix) - INTERFACE_HASH_LEN
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()
    return f"{prefix}{name[:keep]}{digest[:INTERFACE_HASH_LEN]}"


def int_patch_name(bridge: str) -> str:
    """The br-int end of the patch to a physical bridge: ``int-br-ex``."""
    return interface_name(bridge, PEER_INTEGRATION_PREFIX)


def phy_patch_name(bridge: str) -> str:
    """The physical bridge's end of the patch to br-int: ``phy-br-ex``."""
    return interface_name(bridge, PEER_PHYSICAL_PREFIX)


def parse_patch_name(name: str) -> tuple[str, str] | None:
    """``("int" | "phy", bridge)`` for an unshortened physical-bridge patch port name."""
    for side, prefix in (("int", PEER_INTEGRATION_PREFIX), ("phy", PEER_PHYSICAL_PREFIX)):
        if name.startswith(prefix) and len(name) > len(prefix):
            return side, name[len(prefix) :]
    return None
