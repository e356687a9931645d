"""The ``verify`` command line.

Command functions take their arguments and output streams and return the exit
code; only ``main`` touches ``sys``.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO

from verifier.errors import InputError, UsageError
from verifier.verdict import EXIT_BAD_INPUT, EXIT_HOLDS, EXIT_UNKNOWN

EPILOG = """exit codes:
  0  the property holds (a proof, under the assumptions printed with it)
  1  the property is violated (counterexamples printed)
  2  bad input (the message names the file, line, object and value)
  3  unknown: something could not be decided (or there was nothing to check)
"""

PROPERTIES = ("isolation", "dhcp", "floating-ip")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verify",
        description="Prove or refute properties of OpenStack Neutron (ML2/OVS) dataplanes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser(
        "check", help="prove or refute a property", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    check.add_argument(
        "property", choices=(*PROPERTIES, "all"), help="the property to check (all: every property, one exit code)"
    )
    _input_args(check)
    check.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="P:Q",
        help="isolation: projects P and Q may talk (both ways); their paths become findings (repeatable)",
    )
    check.add_argument("--json", action="store_true", help="print the versioned JSON report instead of text")
    check.add_argument("--verbose", action="store_true", help="also print statistics")

    tr = sub.add_parser(
        "trace",
        help="where packets from one port go, hop by hop",
        epilog="FIELD=VALUE uses Open vSwitch field names (dl_dst, nw_dst, tp_dst, ...) and the shorthands "
        "ip, arp, tcp, udp, icmp; fields not given are left open.\n\n" + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _input_args(tr)
    tr.add_argument("--from", dest="source", required=True, help="VM or port: Neutron port name or id, or device name")
    tr.add_argument("--to", help="destination IPv4 address (sets nw_dst and ip)")
    proto = tr.add_mutually_exclusive_group()
    proto.add_argument("--tcp", type=int, metavar="PORT", help="TCP destination port")
    proto.add_argument("--udp", type=int, metavar="PORT", help="UDP destination port")
    proto.add_argument("--icmp", action="store_true", help="ICMP")
    tr.add_argument("fields", nargs="*", metavar="FIELD=VALUE", help="header fields to fix")
    tr.add_argument("--json", action="store_true", help="print JSON")

    render = sub.add_parser("render", help="write the snapshot Neutron intent renders to (as the agents program it)")
    src = render.add_mutually_exclusive_group(required=True)
    src.add_argument("--example", help="a built-in example (see `verify examples`)")
    src.add_argument("--neutron", help="a neutron.json file")
    render.add_argument("--out", required=True, help="the snapshot directory to write (must be empty or absent)")

    sub.add_parser("examples", help="list the built-in examples")
    return parser


def _input_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--snapshot", metavar="DIR", help="a snapshot directory (spec/snapshot.md)")
    src.add_argument("--example", metavar="NAME", help="a built-in example, e.g. seed-gre (no files needed)")
    p.add_argument(
        "--lenient",
        action="store_true",
        help="report unparseable lines as warnings instead of errors (affected verdicts become unknown)",
    )


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        if args.command == "check":
            return cmd_check(args, out)
        if args.command == "trace":
            return cmd_trace(args, out)
        if args.command == "render":
            return cmd_render(args, out)
        return cmd_examples(out)
    except InputError as exc:
        print(str(exc), file=err)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_UNKNOWN
    except Exception:  # a crash must never look like a verdict
        print("verify: internal error (please report it with the traceback below); nothing was proved", file=err)
        traceback.print_exc(file=err)
        return EXIT_UNKNOWN


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from verifier.deployment import load_example, load_snapshot

    if args.snapshot:
        return load_snapshot(args.snapshot, lenient=args.lenient)
    return load_example(args.example)


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    from models.build import build_network
    from verifier.report import render_json, render_text
    from verifier.verdict import combine_exit

    allow = [_project_pair(text) for text in args.allow]
    deployment = _load(args)
    _known_projects(deployment, allow)
    net = build_network(deployment)
    names = PROPERTIES if args.property == "all" else (args.property,)
    verdicts = [_check(name, deployment, net, allow) for name in names]
    if args.json:
        out.write(render_json(deployment.name, verdicts))
    else:
        out.write(render_text(deployment.name, verdicts, verbose=args.verbose))
    return combine_exit(verdicts)


def _check(name: str, deployment, net, allow: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    """One property's verdict on one deployment (``net`` is its composed network, built once)."""
    if name == "isolation":
        from properties.isolation import check_isolation

        return check_isolation(deployment, net=net, allow=allow)
    if name == "dhcp":
        from properties.dhcp import check_dhcp

        return check_dhcp(deployment, net=net)
    from properties.floating_ip import check_floating_ip

    return check_floating_ip(deployment, net=net)


def _project_pair(text: str) -> tuple[str, str]:
    a, sep, b = text.partition(":")
    if not sep or not a or not b or ":" in b:
        raise UsageError("--allow", "expected two project ids as P:Q", text)
    return a, b


def _known_projects(deployment, allow: list[tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
    """An --allow naming a project the deployment does not have is a typo, not a no-op."""
    neutron = deployment.neutron
    if neutron is None:
        if allow:
            raise UsageError("--allow", "projects are only known with a neutron.json", f"{allow[0][0]}:{allow[0][1]}")
        return
    known = {n.project_id for n in neutron.networks} | {p.project_id for p in neutron.ports}
    for a, b in allow:
        for project in (a, b):
            if project not in known:
                raise UsageError("--allow", f"no network or port of project {project!r} in neutron.json", f"{a}:{b}")


def cmd_trace(args: argparse.Namespace, out: TextIO) -> int:
    from properties.trace import trace
    from verifier.header import FIELDS
    from verifier.report import packet_json

    fixed = parse_fields(args.fields)
    if args.to:
        fixed.update({"eth_type": 0x0800, "ip_dst": _ipv4("--to", args.to)})
    if args.tcp is not None:
        fixed.update({"eth_type": 0x0800, "ip_proto": 6, "tp_dst": _port("--tcp", args.tcp)})
    elif args.udp is not None:
        fixed.update({"eth_type": 0x0800, "ip_proto": 17, "tp_dst": _port("--udp", args.udp)})
    elif args.icmp:
        fixed.update({"eth_type": 0x0800, "ip_proto": 1})
    deployment = _load(args)
    report = trace(deployment, args.source, fixed)
    if args.json:
        doc = {
            "schema": "neutron-verifier/trace",
            "version": 1,
            "source": str(report.source),
            "outcomes": [
                {
                    "outcome": o.outcome,
                    "paths": o.paths,
                    "conditions": list(o.conditions),
                    "note": o.note,
                    "example": None
                    if o.example is None
                    else {"packet": packet_json(o.example.packet), "hops": [h.__dict__ for h in o.example.hops]},
                }
                for o in report.outcomes
            ],
        }
        out.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        return EXIT_HOLDS
    out.write(f"trace from {report.source}\n")
    shown = ", ".join(f"{k}={FIELDS[k].format(v)}" for k, v in sorted(fixed.items()))
    out.write(f"fixed fields: {shown or 'none (every header field open)'}\n")
    out.write(f"{len(report.outcomes)} distinct outcome(s):\n")
    for o in report.outcomes:
        out.write(f"  - {o.outcome} ({o.paths} path(s))\n")
    for o in report.outcomes:
        out.write(f"\n{o.outcome} ({o.paths} path(s))\n")
        if o.note:
            out.write(f"  note: {o.note}\n")
        out.write("  decided by:\n")
        for c in o.conditions:
            out.write(f"    {c}\n")
        if o.example is not None:
            out.write(f"  example packet: {o.example.packet_text}\n")
            for n, hop in enumerate(o.example.hops, start=1):
                out.write(f"    {n}. {hop.host} {hop.device} (in: {hop.in_port})\n")
                for step in hop.steps:
                    out.write(f"         {step}\n")
                for rw in hop.rewrites:
                    out.write(f"         rewrite {rw}\n")
                if hop.out_port is not None:
                    out.write(f"         out: {hop.out_port}{' via ' + hop.via if hop.via else ''}\n")
                out.write(f"         replay: {hop.replay}\n")
    return EXIT_HOLDS


def cmd_render(args: argparse.Namespace, out: TextIO) -> int:
    from verifier.examples import load_example_json
    from verifier.neutron.model import parse_neutron
    from verifier.neutron.render_ovs import render_dataplane
    from verifier.snapshot.writer import write_snapshot

    if args.example:
        obj = load_example_json(args.example)
        source = f"example {args.example}"
    else:
        try:
            with open(args.neutron, encoding="utf-8") as fh:
                obj = json.load(fh)
        except OSError as exc:
            raise InputError(args.neutron, f"cannot read: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise InputError(f"{args.neutron}:{exc.lineno}:{exc.colno}", f"not JSON: {exc.msg}") from exc
        source = args.neutron
    neutron = parse_neutron(obj, source)
    write_snapshot(args.out, render_dataplane(neutron), obj)
    out.write(f"wrote {args.out}\n")
    return EXIT_HOLDS


def cmd_examples(out: TextIO) -> int:
    from verifier.examples import example_names

    for name in example_names():
        out.write(name + "\n")
    return EXIT_HOLDS


def parse_fields(tokens: Sequence[str]) -> dict[str, int]:
    """``FIELD=VALUE`` tokens (OVS names and shorthands) as header-table values."""
    from verifier.header import FIELDS
    from verifier.snapshot.fields import SHORTHANDS, view

    fixed: dict[str, int] = {}
    for token in tokens:
        if token in SHORTHANDS:
            eth_type, proto = SHORTHANDS[token]
            fixed["eth_type"] = eth_type
            if proto is not None:
                fixed["ip_proto"] = proto
            continue
        name, eq, text = token.partition("=")
        v = view(name)
        if not eq or v is None or v.start or v.n_bits != FIELDS[v.field].width:
            raise UsageError("FIELD=VALUE", f"unknown or partial field {name!r}", token)
        fixed[v.field] = _value(token, FIELDS[v.field].kind, text)
    return fixed


def _value(token: str, kind: str, text: str) -> int:
    from verifier.header import parse_mac

    try:
        if kind == "mac":
            return parse_mac(text)
        if kind in ("ipv4", "ipv6"):
            return int(ipaddress.ip_address(text))
        return int(text, 0)
    except ValueError as exc:
        raise UsageError("FIELD=VALUE", f"bad value ({exc})", token) from exc


def _ipv4(arg: str, text: str) -> int:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError as exc:
        raise UsageError(arg, "not an IPv4 address", text) from exc


def _port(arg: str, value: int) -> int:
    if not 0 <= value <= 0xFFFF:
        raise UsageError(arg, "not a port number (0-65535)", str(value))
    return value


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
