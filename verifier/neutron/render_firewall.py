"""The hybrid iptables firewall of one compute host's root namespace (``neutron-dataplane.md`` §7).

``OVSHybridIptablesFirewallDriver`` (``neutron/agent/linux/iptables_firewall.py``)
driven by ``neutron/agent/securitygroups_rpc.py``, with the rules the server adds
(``neutron/db/securitygroups_rpc_base.py``), as a freshly started OVS agent
programs them for all its ports in one batch.  The manager is ``state_less``:
tables filter, raw and nat only.  Per port (device = the port id):

* trusted ``network:*`` ports (DHCP, router): ``$FORWARD`` ACCEPT for
  ``--physdev-out``/``--physdev-in tap<id>``, and the nat ``$PREROUTING``
  short circuit;
* filtered ports (security on), sorted by port id: raw ``$PREROUTING``
  ``CT --zone`` (zones from 4097 in that order; a port whose first group is
  stateless gets ``CT --notrack`` but still uses up its zone number, as
  ``_get_jump_rules`` allocates before it looks); nat short circuit; ``$FORWARD`` (top) and
  ``$sg-chain`` jumps; ``$INPUT`` to the egress chain; chains ``$i<id>``,
  ``$o<id>`` and ``$s<id>`` (see ``_ingress_rules``, ``_egress_rules``);
  ``$sg-chain`` ends with ACCEPT, ``$sg-fallback`` is DROP;
* ports with port security off: ``$FORWARD`` and ``$INPUT`` ACCEPT, nat short circuit.

Trusted ACCEPTs come before the port-security ACCEPTs in ``$FORWARD``: the
latter are removed and re-added on every batch.  Trusted rules name
``tap<id>`` even for ``qr-``/``qg-`` ports, so on a network node they match
nothing.  MACs are written in lowercase, as ``iptables-nft-save`` prints them
(Neutron passes them uppercase).

Decisions the API does not make: a port's groups are taken in id order (the
binding table's primary-key order) and a group's rules in id order; trusted
and port-security-disabled ports in port-id order.  Remote groups use ipsets
(``enable_ipset`` default): ``NIPv4<group id>[:29]``; the set exists as soon as
a rule names the group, so the rule is written even while the set is empty.
Only IPv4 is rendered: the ip6tables rules (ICMPv6, DHCPv6, RA drop) are not.
"""

from __future__ import annotations

import ipaddress

from verifier import linux as lx
from verifier.neutron import constants as c
from verifier.neutron import naming
from verifier.neutron.model import IPNetwork, Neutron, Port, SecurityGroup, SecurityGroupRule
from verifier.neutron.render_iptables import IptablesManager, physdev
from verifier.neutron.render_plan import HostPlan, Plug

# neutron_lib.constants.IP_PROTOCOL_MAP plus the numbers iptables-save prints by name.
PROTOCOL_NUMBERS: dict[str, int] = {
    "ah": 51,
    "dccp": 33,
    "egp": 8,
    "esp": 50,
    "gre": 47,
    "hopopt": 0,
    "icmp": 1,
    "igmp": 2,
    "ip": 0,
    "ipip": 4,
    "ipencap": 4,
    "ipv6-encap": 41,
    "ipv6-frag": 44,
    "ipv6-icmp": 58,
    "icmpv6": 58,
    "ipv6-nonxt": 59,
    "ipv6-opts": 60,
    "ipv6-route": 43,
    "ospf": 89,
    "pgm": 113,
    "rsvp": 46,
    "sctp": 132,
    "tcp": 6,
    "udp": 17,
    "udplite": 136,
    "vrrp": 112,
}
PORT_PROTOCOLS = frozenset({6, 17, 33, 132, 136})
"""``SG_PORT_PROTO_NUMS``: --sport/--dport and multiport apply (dccp, sctp, tcp, udp, udplite)."""
MULTIPORT_ONLY = frozenset({136})
"""``IPTABLES_MULTIPORT_ONLY_PROTOCOLS``: udplite takes ``-m multiport`` even for one port."""
ANY_PROTOCOL = (None, "", "0", "any")


def uses_hybrid_firewall(plan: HostPlan) -> bool:
    """Whether the host's OVS agent runs the hybrid iptables driver.

    The agent reports ``ovs_hybrid_plug`` = its driver's OVS_HYBRID_PLUG_REQUIRED,
    True only for ``iptables_hybrid``; a host without the flag (or without an
    agent) is taken as hybrid, as ``render_plan`` plugs its VMs.
    """
    return plan.agent is None or plan.agent.ovs_hybrid_plug is not False


def ipset_name(group_id: str, ethertype: str = "IPv4") -> str:
    """``IpsetManager.get_name``: ``N`` + ethertype + group id, cut to 29 characters."""
    return (c.IPSET_PREFIX + ethertype + group_id)[: c.IPSET_NAME_MAX_LEN]


def ipsets(neutron: Neutron) -> dict[str, tuple[str, ...]]:
    """The IPv4 ipset of every security group: fixed IPs and allowed-address-pair IPs of its ports.

    As ``_select_ips_for_remote_group``: every port bound to the group,
    whatever its host or state, including the port the rule protects.
    """
    members: dict[str, list[str]] = {ipset_name(g.id): [] for g in neutron.security_groups}
    for port in neutron.ports:
        for group in port.security_groups:
            found = members.setdefault(ipset_name(group), [])
            nets = [ipaddress.ip_network(ip) for ip in port.ips]
            nets += [pair.ip_address for pair in port.allowed_address_pairs]
            for net in nets:
                if net.version == 4 and str(net) not in found:
                    found.append(str(net))
    return {name: tuple(sorted(ips, key=_network_key)) for name, ips in sorted(members.items())}


def _network_key(text: str) -> tuple[int, int]:
    net = ipaddress.ip_network(text)
    return int(net.network_address), net.prefixlen


def build_root_netfilter(neutron: Neutron, plan: HostPlan, notes: list[str]) -> lx.Netfilter:
    """The OVS agent's tables in the root namespace (empty when it programs none)."""
    if not uses_hybrid_firewall(plan) or not plan.plugs:
        return lx.Netfilter(())
    m = IptablesManager(c.OVS_AGENT_WRAP, plan.agent_id, state_less=True)
    m.add_chain("filter", c.SG_FALLBACK_CHAIN)
    m.add_rule("filter", c.SG_FALLBACK_CHAIN, (), lx.Verdict("DROP"), comment=c.COMMENT_UNMATCH_DROP)
    vms = sorted((p for p in plan.plugs if p.kind == "vm"), key=lambda p: p.port.id)
    trusted = sorted((p for p in plan.plugs if p.kind != "vm"), key=lambda p: p.port.id)
    for plug in trusted:
        _accept_port(m, plug.port, c.COMMENT_TRUSTED_ACCEPT, input_chain=False)
        _nat_short_circuit(m, plug.port)
    filtered = [p for p in vms if p.port.port_security_enabled]
    m.add_chain("filter", c.SG_CHAIN)
    for zone, plug in enumerate(filtered, start=c.CONNTRACK_ZONE_START):
        _filtered_port(m, neutron, plug, zone, notes)
    m.add_rule("filter", c.SG_CHAIN, (), lx.Verdict("ACCEPT"))
    for plug in vms:
        if not plug.port.port_security_enabled:
            _accept_port(m, plug.port, c.COMMENT_PORT_SEC_ACCEPT, input_chain=True)
            _nat_short_circuit(m, plug.port)
    return m.netfilter()


def _accept_port(m: IptablesManager, port: Port, comment: str, *, input_chain: bool) -> None:
    """``_generate_trusted_port_rules`` / ``_update_port_sec_rules``: ACCEPT in $FORWARD (and $INPUT)."""
    tap = naming.tap_name(port.id)
    accept = lx.Verdict("ACCEPT")
    m.add_rule(
        "filter", "FORWARD", (physdev(physdev_out=tap, bridged=True),), accept, comment=comment, neutron_id=port.id
    )
    m.add_rule(
        "filter", "FORWARD", (physdev(physdev_in=tap, bridged=True),), accept, comment=comment, neutron_id=port.id
    )
    if input_chain:
        m.add_rule(
            "filter", "INPUT", (physdev(physdev_in=tap, bridged=True),), accept, comment=comment, neutron_id=port.id
        )


def _nat_short_circuit(m: IptablesManager, port: Port) -> None:
    """``_add_nat_short_ciruit``: nat $PREROUTING ACCEPT for the port's bridged traffic."""
    tap = naming.tap_name(port.id)
    for match in (physdev(physdev_out=tap), physdev(physdev_in=tap)):
        m.add_rule(
            "nat", "PREROUTING", (match,), lx.Verdict("ACCEPT"), comment=c.COMMENT_TRUSTED_ACCEPT, neutron_id=port.id
        )


def chain_name(prefix: str, port_id: str) -> str:
    """``_port_chain_name`` (OVS hybrid): ``neutron-openvswi-<prefix><port_id>`` cut to 11 characters."""
    return f"{c.OVS_AGENT_WRAP}-{(prefix + port_id)[: c.MAX_IPTABLES_CHAIN_LEN_WRAP]}"


def port_groups(neutron: Neutron, port: Port, notes: list[str]) -> list[SecurityGroup]:
    """The port's security groups in id order; unknown ids are noted and contribute no rules."""
    groups = []
    for group_id in sorted(set(port.security_groups)):
        try:
            groups.append(neutron.security_group(group_id))
        except KeyError:
            notes.append(f"port {port.id}: security group {group_id} is not in neutron.json: no rules rendered for it")
    return groups


def _filtered_port(m: IptablesManager, neutron: Neutron, plug: Plug, zone: int, notes: list[str]) -> None:
    """``_setup_chains_apply`` for one port: conntrack jump, nat short circuit, ingress then egress chain."""
    port = plug.port
    groups = port_groups(neutron, port, notes)
    _conntrack_jumps(m, port, zone, stateful=not groups or not groups[0].rules or groups[0].stateful)
    _nat_short_circuit(m, port)
    tap = naming.tap_name(port.id)
    for direction, prefix, side in (
        ("ingress", c.INGRESS_CHAIN_PREFIX, "out"),
        ("egress", c.EGRESS_CHAIN_PREFIX, "in"),
    ):
        chain = (prefix + port.id)[: c.MAX_IPTABLES_CHAIN_LEN_WRAP]
        m.add_chain("filter", chain)
        match = physdev(physdev_out=tap, bridged=True) if side == "out" else physdev(physdev_in=tap, bridged=True)
        m.add_rule(
            "filter", "FORWARD", (match,), m.jump(c.SG_CHAIN), top=True, comment=c.COMMENT_VM_INT_SG, neutron_id=port.id
        )
        m.add_rule("filter", c.SG_CHAIN, (match,), m.jump(chain), comment=c.COMMENT_SG_TO_VM_SG, neutron_id=port.id)
        if direction == "egress":
            m.add_rule("filter", "INPUT", (match,), m.jump(chain), comment=c.COMMENT_INPUT_TO_SG, neutron_id=port.id)
            rules = _egress_rules(m, port, groups)
        else:
            rules = _ingress_rules(port, groups)
        for matches, target, neutron_id in rules:
            m.add_rule("filter", chain, matches, target, neutron_id=neutron_id)


def _conntrack_jumps(m: IptablesManager, port: Port, zone: int, *, stateful: bool) -> None:
    """``_get_jump_rules``: raw $PREROUTING CT for ``physdev-in qvb``, ``-i qvb`` and ``physdev-in tap``.

    Stateful or not follows the port's *first* group that has rules
    (``_get_port_sg_rules`` looks at ``security_groups[0]`` only).
    """
    qvb, tap = naming.qvb_name(port.id), naming.tap_name(port.id)
    if stateful:
        comment, target = f"Set zone for {port.id}", lx.Conntrack(zone=zone)
    else:
        comment, target = f"Make {port.id} stateless", lx.Conntrack(notrack=True)
    matches: tuple[lx.Match, ...]
    for matches in ((physdev(physdev_in=qvb),), (lx.MatchInterface("in", qvb),), (physdev(physdev_in=tap),)):
        m.add_rule("raw", "PREROUTING", matches, target, comment=comment, neutron_id=port.id)


RuleSpec = tuple[tuple[lx.Match, ...], lx.Target, str]
"""(matches, target, Neutron id) of one rule of a port chain."""


def _ingress_rules(port: Port, groups: list[SecurityGroup]) -> list[RuleSpec]:
    """``$i<id>``: RELATED,ESTABLISHED; the server's DHCP rules; the groups' ingress rules; INVALID; fallback."""
    dhcp = (lx.MatchProtocol(17), _ports("src", c.DHCP_SERVER_PORT), _ports("dst", c.DHCP_CLIENT_PORT))
    provider = [
        ((lx.MatchAddress("dst", f"{ip}/32"), *dhcp), lx.Verdict("RETURN"), port.id)
        for ip in port.ips
        if ip.version == 4
    ]
    provider.append(((lx.MatchAddress("dst", "255.255.255.255/32"), *dhcp), lx.Verdict("RETURN"), port.id))
    return _convert(port, provider + _group_rules(port, groups, "ingress"))


def _egress_rules(m: IptablesManager, port: Port, groups: list[SecurityGroup]) -> list[RuleSpec]:
    """``$o<id>``: DHCP client, spoof chain, DHCP client, no DHCP server; then as ingress."""
    dhcp_client = (lx.MatchProtocol(17), _ports("src", c.DHCP_CLIENT_PORT), _ports("dst", c.DHCP_SERVER_PORT))
    dhcp_server = (lx.MatchProtocol(17), _ports("src", c.DHCP_SERVER_PORT), _ports("dst", c.DHCP_CLIENT_PORT))
    client_comment = lx.MatchComment(c.COMMENT_DHCP_CLIENT)
    rules: list[RuleSpec] = [
        (
            (
                lx.MatchAddress("src", "0.0.0.0/32"),
                lx.MatchAddress("dst", "255.255.255.255/32"),
                *dhcp_client,
                client_comment,
            ),
            lx.Verdict("RETURN"),
            port.id,
        )
    ]
    spoof = _spoof_chain(m, port)
    if spoof is not None:
        rules.append(((), m.jump(spoof), port.id))
    rules.append(((*dhcp_client, client_comment), lx.Verdict("RETURN"), port.id))
    rules.append(((*dhcp_server, lx.MatchComment(c.COMMENT_DHCP_SPOOF)), lx.Verdict("DROP"), port.id))
    return rules + _convert(port, _group_rules(port, groups, "egress"))


def _spoof_chain(m: IptablesManager, port: Port) -> str | None:
    """``_setup_spoof_filter_chain``: allowed-address pairs first, then the fixed IPs; the chain's own name."""
    pairs: list[tuple[str, IPNetwork | None]] = [
        (pair.mac_address, pair.ip_address) for pair in port.allowed_address_pairs if pair.ip_address.version == 4
    ]
    pairs += [(port.mac_address, ipaddress.ip_network(ip)) for ip in port.ips if ip.version == 4]
    if not port.fixed_ips:
        pairs.append((port.mac_address, None))
    if not pairs:
        return None
    chain = (c.SPOOF_CHAIN_PREFIX + port.id)[: c.MAX_IPTABLES_CHAIN_LEN_WRAP]
    m.add_chain("filter", chain)
    for mac, net in pairs:
        matches = (*_address("src", net), lx.MatchMac(mac.lower()))
        m.add_rule("filter", chain, matches, lx.Verdict("RETURN"), comment=c.COMMENT_PAIR_ALLOW, neutron_id=port.id)
    m.add_rule("filter", chain, (), lx.Verdict("DROP"), comment=c.COMMENT_PAIR_DROP, neutron_id=port.id)
    return chain


def _group_rules(port: Port, groups: list[SecurityGroup], direction: str) -> list[RuleSpec]:
    """The IPv4 rules of the port's groups in one direction, translated (``_convert_sg_rule_to_iptables_args``)."""
    out: list[RuleSpec] = []
    for group in groups:
        for rule in group.rules:
            if rule.direction == direction and rule.ethertype == "IPv4":
                out.append((sg_rule_matches(rule), lx.Verdict("RETURN"), f"{port.id},{rule.id}"))
    return out


def _convert(port: Port, rules: list[RuleSpec]) -> list[RuleSpec]:
    """``_convert_sgr_to_iptables_rules``: RELATED,ESTABLISHED, the rules without repeats, INVALID, fallback."""
    established = lx.MatchState(frozenset({"RELATED", "ESTABLISHED"}))
    out: list[RuleSpec] = [((established, lx.MatchComment(c.COMMENT_ALLOW_ASSOC)), lx.Verdict("RETURN"), port.id)]
    seen: set[tuple[tuple[lx.Match, ...], lx.Target]] = set()
    for matches, target, neutron_id in rules:
        if (matches, target) not in seen:
            seen.add((matches, target))
            out.append((matches, target, neutron_id))
    invalid = lx.MatchState(frozenset({"INVALID"}))
    out.append(((invalid, lx.MatchComment(c.COMMENT_INVALID_DROP)), lx.Verdict("DROP"), port.id))
    fallback = lx.Jump(f"{c.OVS_AGENT_WRAP}-{c.SG_FALLBACK_CHAIN}")
    out.append(((lx.MatchComment(c.COMMENT_UNMATCHED),), fallback, port.id))
    return out


def sg_rule_matches(rule: SecurityGroupRule) -> tuple[lx.Match, ...]:
    """One IPv4 security-group rule as iptables matches (``_generate_plain_rule_args``/``_generate_ipset_rule_args``).

    ``remote_ip_prefix`` becomes ``-s`` (ingress) or ``-d`` (egress), dropped
    when /0; a remote group becomes ``-m set --match-set NIPv4<id> src|dst``
    after the protocol and ports.
    """
    protocol = _protocol_matches(rule)
    remote = rule.remote_group_id or rule.remote_address_group_id
    if remote:
        flag = "src" if rule.direction == "ingress" else "dst"
        return (*protocol, lx.MatchSet(ipset_name(remote, rule.ethertype), (flag,)))
    side = "src" if rule.direction == "ingress" else "dst"
    return (*_address(side, rule.remote_ip_prefix), *protocol)


def _protocol_matches(rule: SecurityGroupRule) -> tuple[lx.Match, ...]:
    """``_protocol_arg`` + ``_port_arg``: ``-p``, then ICMP type/code or destination ports."""
    if rule.protocol in ANY_PROTOCOL:
        return ()
    name = str(rule.protocol).lower()
    number = int(name) if name.isdigit() else PROTOCOL_NUMBERS.get(name)
    if number is None:
        return (lx.MatchUnsupported(f"-p {rule.protocol}"),)
    if number == 0:
        return ()
    out: list[lx.Match] = [lx.MatchProtocol(number)]
    low, high = rule.port_range_min, rule.port_range_max
    if low is None:
        return tuple(out)
    if number == 1:
        out.append(lx.MatchIcmp(low, high))
    elif number in PORT_PROTOCOLS:
        high = low if high is None else high
        multiport = low != high or number in MULTIPORT_ONLY
        out.append(lx.MatchPorts("dst", ((low, high),), multiport=multiport))
    return tuple(out)


def _ports(direction: str, port: int) -> lx.MatchPorts:
    return lx.MatchPorts(direction, ((port, port),))


def _address(direction: str, net: IPNetwork | None) -> tuple[lx.Match, ...]:
    """``-s/-d <prefix>``; nothing for no prefix or /0 (iptables-save prints no address then)."""
    if net is None or net.prefixlen == 0:
        return ()
    return (lx.MatchAddress(direction, str(net)),)
