"""Built-in examples: Neutron exports shipped as package data, one directory per example.

``seed-gre`` (directory ``seed_gre``) reproduces the classic three-node GRE lab of
``shared/reference/seed-lab.md`` as a neutron 29.0.0 admin export.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from verifier.errors import UsageError

_NEUTRON_FILE = "neutron.json"


def _directory(name: str) -> str:
    return name.replace("-", "_")


def example_names() -> list[str]:
    """The names of the built-in examples (``seed-gre``...), sorted."""
    root = resources.files(__name__)
    names = [
        entry.name.replace("_", "-")
        for entry in root.iterdir()
        if entry.is_dir() and entry.joinpath(_NEUTRON_FILE).is_file()
    ]
    return sorted(names)


def load_example_json(name: str) -> dict[str, Any]:
    """The decoded ``neutron.json`` of the example ``name``."""
    if name not in example_names():
        raise UsageError("--example", f"no built-in example of that name (have: {', '.join(example_names())})", name)
    text = resources.files(__name__).joinpath(_directory(name), _NEUTRON_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise TypeError(f"example {name}: {_NEUTRON_FILE} is not a JSON object")
    return data


def example_source(name: str) -> str:
    """How messages name the example's file: ``example:seed-gre/neutron.json``."""
    return f"example:{name}/{_NEUTRON_FILE}"
