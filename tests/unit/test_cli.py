"""The command-line contract: exit codes, outputs, error messages, and the README's usage."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from verifier.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snap") / "seed"
    code, _out, err = run("render", "--example", "seed-gre", "--out", str(path))
    assert code == 0, err
    return path


def copy_tree(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_example_is_violated_through_a_router_with_the_golden_text() -> None:
    """The example attaches tenant-c's subnet to tenant-a's router on purpose: A -> C and C -> A."""
    code, out, err = run("check", "isolation", "--example", "seed-gre")
    assert code == 1, err
    golden = (GOLDEN / "isolation-seed-gre.txt").read_text()
    assert out == golden


def test_allow_turns_the_router_paths_into_findings() -> None:
    code, out, err = run("check", "isolation", "--example", "seed-gre", "--allow", "tenant-a:tenant-c")
    assert code == 0, err
    assert "isolation: HOLDS" in out
    assert out.count("  allowed: ") == 2


def test_allow_naming_an_unknown_project_is_exit_2() -> None:
    code, out, err = run("check", "isolation", "--example", "seed-gre", "--allow", "tenant-a:tenant-x")
    assert code == 2 and out == ""
    assert "--allow" in err and "tenant-x" in err
    assert run("check", "isolation", "--example", "seed-gre", "--allow", "tenant-a")[0] == 2


def test_json_report_follows_the_schema() -> None:
    code, out, _ = run("check", "isolation", "--example", "seed-gre", "--json")
    doc = json.loads(out)
    assert code == 1 == doc["exit_code"]
    assert doc["schema"] == "neutron-verifier/verdicts" and doc["version"] == 1
    (v,) = doc["verdicts"]
    assert v["property"] == "isolation" and v["status"] == "violated" and v["exit_code"] == 1
    for key in ("summary", "reasons", "assumptions", "coverage", "findings", "stats", "counterexamples"):
        assert key in v
    assert {c["title"].split(":")[0] for c in v["counterexamples"]} == {"tenant-a -> tenant-c", "tenant-c -> tenant-a"}
    assert all(c["hops"] for c in v["counterexamples"])


def test_rendered_snapshot_gives_the_same_verdicts_as_the_example(snapshot: Path) -> None:
    code, out, _ = run("check", "all", "--snapshot", str(snapshot))
    code_example, out_example, _ = run("check", "all", "--example", "seed-gre")
    assert code == code_example == 1

    def gist(text: str) -> list[str]:
        """Verdict lines, counterexample titles and packets (provenance differs: file:line against render)."""
        keep = ("isolation:", "dhcp:", "floating-ip:", "counterexample", "packet:", "outcome:", "security groups:")
        return [line for line in text.splitlines() if line.strip().startswith(keep)]

    assert gist(out) == gist(out_example)
    assert len(gist(out)) >= 10


def test_all_runs_every_property(snapshot: Path) -> None:
    code, out, _ = run("check", "all", "--snapshot", str(snapshot), "--json", "--allow", "tenant-a:tenant-c")
    assert code == 0, out
    verdicts = json.loads(out)["verdicts"]
    assert [v["property"] for v in verdicts] == ["isolation", "dhcp", "floating-ip"]
    assert [v["status"] for v in verdicts] == ["holds", "holds", "holds"]


def test_violation_exits_1_with_a_replayable_counterexample(snapshot: Path, tmp_path: Path) -> None:
    """compute1 floods tenant-a's VLAN with tenant-b's key (0x123): A -> B."""
    snap = copy_tree(snapshot, tmp_path / "broken")
    flows = snap / "hosts" / "compute1" / "ovs-ofctl-dump-flows-br-tun.txt"
    text = flows.read_text()
    assert "load:0x266->NXM_NX_TUN_ID[]" in text
    flows.write_text(text.replace("load:0x266->NXM_NX_TUN_ID[]", "load:0x123->NXM_NX_TUN_ID[]"))
    code, out, _ = run("check", "isolation", "--snapshot", str(snap))
    assert code == 1
    assert "isolation: VIOLATED" in out
    assert "tenant-a -> tenant-b" in out
    assert "replay: ovs-appctl ofproto/trace --names br-tun '" in out
    assert re.search(r"\[hosts/compute1/ovs-ofctl-dump-flows-br-tun.txt:\d+\]", out)


def test_unparseable_flow_line_is_exit_2_naming_file_line_and_text(snapshot: Path, tmp_path: Path) -> None:
    snap = copy_tree(snapshot, tmp_path / "bad")
    flows = snap / "hosts" / "compute2" / "ovs-ofctl-dump-flows-br-int.txt"
    lines = flows.read_text().splitlines()
    lines.insert(3, " cookie=0x0, table=0, priority=5,in_port=2,frobnicate=7 actions=drop")
    flows.write_text("\n".join(lines) + "\n")
    code, out, err = run("check", "isolation", "--snapshot", str(snap))
    assert code == 2
    assert out == ""
    assert "hosts/compute2/ovs-ofctl-dump-flows-br-int.txt:4" in err
    assert "frobnicate=7" in err


def test_lenient_turns_the_line_into_an_unknown_verdict(snapshot: Path, tmp_path: Path) -> None:
    snap = copy_tree(snapshot, tmp_path / "lenient")
    flows = snap / "hosts" / "compute2" / "ovs-ofctl-dump-flows-br-int.txt"
    lines = flows.read_text().splitlines()
    lines.insert(3, " cookie=0x0, table=0, priority=5,in_port=2,frobnicate=7 actions=drop")
    flows.write_text("\n".join(lines) + "\n")
    code, out, _ = run(
        "check", "isolation", "--snapshot", str(snap), "--lenient", "--json", "--allow", "tenant-a:tenant-c"
    )
    assert code == 3
    (v,) = json.loads(out)["verdicts"]
    assert v["status"] == "unknown"
    assert any("ovs-ofctl-dump-flows-br-int.txt:4" in r for r in v["reasons"] + v["coverage"])


def test_missing_snapshot_is_exit_2() -> None:
    code, _, err = run("check", "isolation", "--snapshot", "/nonexistent/snap")
    assert code == 2
    assert "/nonexistent/snap" in err


def test_unknown_example_is_exit_2() -> None:
    code, _, err = run("check", "isolation", "--example", "nope")
    assert code == 2
    assert "nope" in err and "seed-gre" in err


def test_usage_errors_are_exit_2() -> None:
    assert run("check", "isolation")[0] == 2
    assert run("check", "bogus", "--example", "seed-gre")[0] == 2


def test_trace_from_a_vm_lists_outcomes() -> None:
    code, out, _ = run("trace", "--example", "seed-gre", "--from", "vm-a1", "--to", "10.0.22.203", "--tcp", "22")
    assert code == 0
    assert "delivered to vm vm-a2" in out
    assert "dropped: compute1 br-int table 25: no flow matches (table miss)" in out
    assert "replay: ovs-appctl ofproto/trace" in out


def test_trace_concrete_packet_has_one_destination_per_copy() -> None:
    """Every header field fixed: no branch on headers is left (no spoofing or tag drops); the only
    copies that stop are flood copies: the one the network node's br-ex refuses (a tenant VLAN on the
    physical bridge's patch port) and those the DHCP and router namespaces of net-tenant-a ignore
    (not their MAC).  A qvo device names its VM: the packet starts at the tap."""
    fields = [
        "dl_src=fa:16:3e:19:65:62",
        "dl_dst=fa:16:3e:7c:2e:91",
        "vlan_tci=0",
        "ip",
        "nw_src=10.0.22.202",
        "nw_dst=10.0.22.203",
        "nw_proto=6",
        "nw_ttl=64",
        "tp_src=40000",
        "tp_dst=22",
    ]
    code, out, _ = run("trace", "--example", "seed-gre", "--from", "qvo6a2f8d4c-0b", "--json", *fields)
    assert code == 0
    outcomes = {o["outcome"] for o in json.loads(out)["outcomes"]}
    assert any(o.startswith("delivered to vm vm-a2") for o in outcomes)
    drops = sorted(o for o in outcomes if o.startswith("dropped"))
    assert len(drops) == 3
    assert drops[0].startswith("dropped: network br-ex table 0 priority 2")
    assert drops[1].startswith("dropped: network qdhcp-d24963da") and "frame not addressed" in drops[1]
    assert drops[2].startswith("dropped: network qrouter-71c3e9a5") and "frame not addressed" in drops[2]


def test_trace_errors_name_the_argument() -> None:
    code, _, err = run("trace", "--example", "seed-gre", "--from", "no-such-vm")
    assert code == 2 and "--from" in err and "no-such-vm" in err
    code, _, err = run("trace", "--example", "seed-gre", "--from", "vm-a1", "dl_dst=zz")
    assert code == 2 and "dl_dst=zz" in err
    code, _, err = run("trace", "--example", "seed-gre", "--from", "vm-a1", "--to", "300.1.1.1")
    assert code == 2 and "--to" in err


def test_help_documents_the_exit_codes() -> None:
    for argv in (["--help"], ["check", "--help"], ["trace", "--help"]):
        code, out, _ = run(*argv)
        assert code == 0
        assert "0  the property holds" in out and "2  bad input" in out and "3  unknown" in out


def test_readme_starts_with_the_two_commands_and_matches_the_cli() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert block[0].endswith("verify check isolation --example seed-gre")
    assert block[1] == "scripts/test"
    assert (ROOT / ".ci" / "run").read_text().count("scripts/test") >= 1
    from verifier.cli import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    for command in commands:
        assert f"verify {command}" in readme


def test_trace_that_runs_out_of_budget_says_it_is_incomplete(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every header open through routers splits into very many paths: the listing stops and says so."""
    import properties.trace

    monkeypatch.setattr(properties.trace, "TRACE_BUDGET", 20)
    code, out, _ = run("trace", "--example", "seed-gre", "--from", "vm-a1")
    assert code == 0
    assert "undecided: search stopped after 20 states" in out
    assert "the listing above is incomplete" in out
