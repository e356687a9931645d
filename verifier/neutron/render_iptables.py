"""Neutron's ``IptablesManager`` in memory (IPv4 only), producing typed ``verifier.linux`` tables.

Mirrors ``neutron/agent/linux/iptables_manager.py`` (neutron 28.0.1): every
agent wraps the built-in chains it uses in chains of its own, named
``<binary[:16]>-<chain[:11]>`` (``neutron-l3-agent-PREROUTING``), and jumps to
them from the built-in chain; ``neutron-filter-top`` (unwrapped, shared) is
the first rule of filter FORWARD and OUTPUT and jumps to ``$local``.  Which
chains exist at start depends on the manager's flags:

* always: filter INPUT/OUTPUT/FORWARD, raw PREROUTING/OUTPUT, nat PREROUTING
  (wrapped), ``neutron-filter-top`` and ``$local``;
* unless ``state_less``: mangle PREROUTING/INPUT/FORWARD/OUTPUT/POSTROUTING
  wrapped, ``$mark`` with ``$PREROUTING -j $mark``;
* unless ``state_less`` or ``nat=False``: a fresh nat table with PREROUTING,
  OUTPUT and POSTROUTING wrapped, ``POSTROUTING -j neutron-postrouting-bottom``,
  ``neutron-postrouting-bottom -j $snat`` (commented) and ``$snat -j $float-snat``.

``_modify_rules`` writes, per chain, the rules added with ``top=True`` in
order, then the others in order, and weeds out repeated lines keeping the last
one.  The result is laid out as ``iptables-nft-save`` (1.8.x) prints it:
tables mangle, raw, filter, nat; in each, the built-in chains in kernel order
with policy ACCEPT, then the user chains sorted by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier import linux as lx
from verifier.ir import Provenance
from verifier.neutron import constants as c

BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
}
"""Tables in ``iptables-nft-save`` order, each with its built-in chains in kernel order."""


def provenance(neutron_id: str | None) -> Provenance:
    """``render:neutron <release>`` with the Neutron object id(s) a rule or route comes from."""
    return Provenance(c.PROVENANCE_FILE, 0, "", neutron_id)


def physdev(*, physdev_in: str | None = None, physdev_out: str | None = None, bridged: bool = False) -> lx.MatchPhysdev:
    """``-m physdev [--physdev-in X] [--physdev-out Y] [--physdev-is-bridged]``."""
    return lx.MatchPhysdev(
        physdev_in=None if physdev_in is None else (physdev_in, False),
        physdev_out=None if physdev_out is None else (physdev_out, False),
        is_bridged=(True, False) if bridged else None,
    )


@dataclass(frozen=True)
class _Entry:
    chain: str
    rule: lx.Rule
    top: bool


class IptablesManager:
    """One agent's ``IptablesManager`` for one namespace: chains and rules, in the order added.

    ``wrap`` is the binary name cut to 16 characters (``neutron-openvswi``);
    ``owner`` is the Neutron id stamped on the manager's own base rules.
    """

    def __init__(self, wrap: str, owner: str | None, *, state_less: bool = False, nat: bool = True) -> None:
        self.wrap = wrap
        self._owner = owner
        self._tables: dict[str, set[str]] = {"filter": set(), "raw": set(), "nat": set()}
        self._entries: dict[str, list[_Entry]] = {"filter": [], "raw": [], "nat": []}
        self.add_chain("filter", c.FILTER_TOP_CHAIN, wrap=False)
        self.add_rule("filter", "FORWARD", (), self.jump(c.FILTER_TOP_CHAIN, wrap=False), wrap=False, top=True)
        self.add_rule("filter", "OUTPUT", (), self.jump(c.FILTER_TOP_CHAIN, wrap=False), wrap=False, top=True)
        self.add_chain("filter", "local")
        self.add_rule("filter", c.FILTER_TOP_CHAIN, (), self.jump("local"), wrap=False)
        self._wrap_builtins({"filter": ("INPUT", "OUTPUT", "FORWARD"), "raw": ("PREROUTING", "OUTPUT")})
        self._wrap_builtins({"nat": ("PREROUTING",)})
        if state_less:
            return
        self._tables["mangle"], self._entries["mangle"] = set(), []
        self._wrap_builtins({"mangle": BUILTIN_CHAINS["mangle"]})
        self.add_chain("mangle", "mark")
        self.add_rule("mangle", "PREROUTING", (), self.jump("mark"))
        if nat:
            # initialize_nat_table replaces the nat table made in __init__.
            self._tables["nat"], self._entries["nat"] = set(), []
            self._wrap_builtins({"nat": ("PREROUTING", "OUTPUT", "POSTROUTING")})
            self.add_chain("nat", c.POSTROUTING_BOTTOM_CHAIN, wrap=False)
            self.add_rule("nat", "POSTROUTING", (), self.jump(c.POSTROUTING_BOTTOM_CHAIN, wrap=False), wrap=False)
            self.add_chain("nat", "snat")
            self.add_rule(
                "nat",
                c.POSTROUTING_BOTTOM_CHAIN,
                (),
                self.jump("snat"),
                wrap=False,
                comment=c.COMMENT_SNAT_OUT,
            )
            self.add_chain("nat", "float-snat")
            self.add_rule("nat", "snat", (), self.jump("float-snat"))

    def _wrap_builtins(self, chains: dict[str, tuple[str, ...]]) -> None:
        for table, names in chains.items():
            for name in names:
                self.add_chain(table, name)
                self.add_rule(table, name, (), self.jump(name), wrap=False)

    def name(self, chain: str, wrap: bool = True) -> str:
        """The full chain name: ``<wrap>-<chain[:11]>`` when wrapped (``get_chain_name``)."""
        if wrap:
            return f"{self.wrap}-{chain[: c.MAX_IPTABLES_CHAIN_LEN_WRAP]}"
        return chain

    def jump(self, chain: str, wrap: bool = True) -> lx.Jump:
        """``-j $chain`` (wrapped) or ``-j chain``."""
        return lx.Jump(self.name(chain, wrap))

    def add_chain(self, table: str, chain: str, wrap: bool = True) -> None:
        self._tables[table].add(self.name(chain, wrap))

    def add_rule(
        self,
        table: str,
        chain: str,
        matches: tuple[lx.Match, ...],
        target: lx.Target | None,
        *,
        wrap: bool = True,
        top: bool = False,
        comment: str | None = None,
        neutron_id: str | None = None,
    ) -> None:
        """``add_rule``: the comment, when given, is the last match (``comment_rule`` puts it before ``-j``)."""
        name = self.name(chain, wrap)
        if wrap and name not in self._tables[table]:
            raise LookupError(f"unknown chain {name} in {table}")
        if comment is not None:
            matches = (*matches, lx.MatchComment(comment))
        owner = neutron_id if neutron_id is not None else self._owner
        rule = lx.Rule(name, matches, target, provenance(owner))
        self._entries[table].append(_Entry(name, rule, top))

    def netfilter(self) -> lx.Netfilter:
        """Every table as ``iptables-save`` would show it after ``apply()``."""
        tables = []
        for table, builtins in BUILTIN_CHAINS.items():
            if table not in self._tables:
                continue
            entries = self._entries[table]
            ordered = [e for e in entries if e.top] + [e for e in entries if not e.top]
            rules = _weed_out_duplicates([e.rule for e in ordered])
            user = sorted(self._tables[table] | {r.chain for r in rules} - set(builtins))
            chains = [lx.Chain(name, "ACCEPT", _rules_of(rules, name)) for name in builtins]
            chains += [lx.Chain(name, None, _rules_of(rules, name)) for name in user]
            tables.append(lx.Table(table, tuple(chains)))
        return lx.Netfilter(tuple(tables))


def _rules_of(rules: list[lx.Rule], chain: str) -> tuple[lx.Rule, ...]:
    return tuple(r for r in rules if r.chain == chain)


def _weed_out_duplicates(rules: list[lx.Rule]) -> list[lx.Rule]:
    """``_weed_out_duplicates``: of identical lines only the last one stays."""
    seen: set[lx.Rule] = set()
    kept: list[lx.Rule] = []
    for rule in reversed(rules):
        if rule in seen:
            continue
        seen.add(rule)
        kept.append(rule)
    kept.reverse()
    return kept
