"""Typed access to the fields of one Neutron API object, with errors that name it.

Every getter returns a default when the field is absent (the spec says unknown
and missing fields are tolerated) and raises NeutronDataError when the field
is present with the wrong type or value.  The error names the file, the
collection, the object id, the field and the value.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from verifier.errors import NeutronDataError
from verifier.header import format_mac, parse_mac

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Frozen = str | int | float | bool | None | tuple[Any, ...]
"""A JSON value made hashable: objects become sorted ``(key, value)`` tuples, lists tuples."""


def freeze(value: Any) -> Frozen:
    """Turn a JSON value into nested tuples so it can live in a frozen dataclass."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class FieldReader:
    """Reads the fields of one API object; ``where`` is ``<file>: <collection>[<id>]``."""

    def __init__(self, source: str, collection: str, obj: Mapping[str, Any], label: str, prefix: str = "") -> None:
        self.source = source
        self.collection = collection
        self.obj = obj
        self.label = label
        self.prefix = prefix

    @property
    def where(self) -> str:
        return f"{self.source}: {self.collection}[{self.label}]"

    def error(self, key: str, problem: str, value: Any) -> NeutronDataError:
        """An error naming this object, the field and the offending value."""
        return NeutronDataError(self.where, f"field '{self.prefix}{key}': {problem}", _show(value))

    def present(self, key: str) -> bool:
        return key in self.obj

    def raw(self, key: str) -> Any:
        return self.obj.get(key)

    # ------------------------------------------------------------ scalars

    def opt_str(self, key: str) -> str | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, "must be a string", value)
        return value

    def str_(self, key: str, default: str = "") -> str:
        value = self.opt_str(key)
        return default if value is None else value

    def opt_bool(self, key: str) -> bool | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false", value)
        return value

    def bool_(self, key: str, default: bool) -> bool:
        value = self.opt_bool(key)
        return default if value is None else value

    def opt_int(self, key: str, low: int, high: int) -> int | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "must be an integer", value)
        if not low <= value <= high:
            raise self.error(key, f"must be between {low} and {high}", value)
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.opt_str(key)
        if value not in allowed:
            raise self.error(key, f"must be one of {', '.join(allowed)}", value)
        return value

    # ------------------------------------------------------------ addresses

    def opt_ip(self, key: str, value: Any = None, *, given: bool = False) -> IPAddress | None:
        """An IP address (``given``: check ``value`` instead of the field)."""
        if not given:
            value = self.obj.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, "must be an IP address string", value)
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            raise self.error(key, "not an IP address", value) from None

    def ip(self, key: str, value: Any = None, *, given: bool = False) -> IPAddress:
        address = self.opt_ip(key, value, given=given)
        if address is None:
            raise self.error(key, "an IP address is required", None)
        return address

    def opt_cidr(self, key: str, value: Any = None, *, given: bool = False, strict: bool = True) -> IPNetwork | None:
        """A prefix; with ``strict`` host bits must be 0.  A bare address is a /32 or /128."""
        if not given:
            value = self.obj.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, "must be a CIDR string", value)
        try:
            return ipaddress.ip_network(value, strict=strict)
        except ValueError:
            raise self.error(key, "not a valid CIDR", value) from None

    def mac(self, key: str, value: Any = None, *, given: bool = False) -> str:
        """A MAC address, normalised to lowercase ``aa:bb:cc:dd:ee:ff``."""
        if not given:
            value = self.obj.get(key)
        if not isinstance(value, str):
            raise self.error(key, "must be a MAC address string", value)
        try:
            return format_mac(parse_mac(value))
        except ValueError:
            raise self.error(key, "not a MAC address", value) from None

    # ------------------------------------------------------------ containers

    def list_(self, key: str) -> list[Any]:
        value = self.obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(key, "must be a list", value)
        return value

    def str_list(self, key: str) -> tuple[str, ...]:
        items = self.list_(key)
        for item in items:
            if not isinstance(item, str):
                raise self.error(key, "must be a list of strings", item)
        return tuple(items)

    def dict_(self, key: str) -> Mapping[str, Any]:
        value = self.obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(key, "must be an object", value)
        return value

    def objects(self, key: str) -> list[Mapping[str, Any]]:
        """A list whose items must all be JSON objects."""
        items = self.list_(key)
        for item in items:
            if not isinstance(item, Mapping):
                raise self.error(key, "items must be objects", item)
        return items

    def sub(self, key: str, obj: Mapping[str, Any]) -> FieldReader:
        """A reader for a nested object; its errors name this object and ``key.field``."""
        return FieldReader(self.source, self.collection, obj, self.label, f"{self.prefix}{key}.")


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:197] + "..."
