"""Benchmark: every property on rendered regions of 3, 20 and 100 hosts.

For each size, in a fresh child process (so peak memory is that size's own):
the region's neutron.json is rendered to a snapshot directory on disk, then
timed in the same process:
  parse   - reading the snapshot back (all dumps through ovs.flow, neutron.json)
  model   - building the network model (bridges, links, learned-flow templates)
  check   - proving isolation (``isolation s``), DHCP (``dhcp s``) and floating IPs
            (``floating-ip s``), each on the same model
The ratio (model+checks)/parse is the number to compare across machines: both ran in the
same process on the same data.  Usage: ``python bench/run.py [sizes...] [--write]``
(``--write`` appends the table to bench/RESULTS.md).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

# Hosts -> VMs per compute node (about 30 / 500 / 2,500 VMs in all).
SIZES = {3: 15, 20: 26, 100: 25}


def measure(hosts: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from bench.region import region
    from models.build import build_network
    from properties.dhcp import check_dhcp
    from properties.floating_ip import check_floating_ip
    from properties.isolation import check_isolation
    from verifier.deployment import load_snapshot
    from verifier.neutron.model import parse_neutron
    from verifier.neutron.render_ovs import render_dataplane
    from verifier.snapshot.writer import write_snapshot

    obj = region(hosts, SIZES.get(hosts, 25))
    dataplane = render_dataplane(parse_neutron(obj, "region"))
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        write_snapshot(os.path.join(tmp, "snap"), dataplane, obj)
        t0 = time.perf_counter()
        deployment = load_snapshot(os.path.join(tmp, "snap"))
        t1 = time.perf_counter()
        net = build_network(deployment)
        t2 = time.perf_counter()
        verdict = check_isolation(deployment, net=net)
        t3 = time.perf_counter()
        dhcp = check_dhcp(deployment, net=net)
        t4 = time.perf_counter()
        fip = check_floating_ip(deployment, net=net)
        t5 = time.perf_counter()
    flows = sum(len(b.flows) for h in dataplane.hosts for b in h.bridges)
    vms = sum(1 for p in obj["ports"] if p["device_owner"].startswith("compute:"))
    queue.put(
        {
            "hosts": hosts,
            "vms": vms,
            "flows": flows,
            "parse_s": round(t1 - t0, 2),
            "model_s": round(t2 - t1, 2),
            "check_s": round(t3 - t2, 2),
            "dhcp_s": round(t4 - t3, 2),
            "fip_s": round(t5 - t4, 2),
            "total_s": round(t5 - t0, 2),
            "ratio": round((t5 - t1) / (t1 - t0), 2),
            "states": verdict.stats.get("abstract_states"),
            "status": f"{verdict.status} / {dhcp.status} / {fip.status}",
            "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    )


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import z3

    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}, "
        f"z3 {z3.get_version_string()}, {platform.system()} {platform.release()}"
    )


def main(argv: list[str]) -> int:
    write = "--write" in argv
    sizes = [int(a) for a in argv if a.isdigit()] or list(SIZES)
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for hosts in sizes:
        queue = ctx.Queue()
        proc = ctx.Process(target=measure, args=(hosts, queue))
        proc.start()
        row = queue.get()
        proc.join()
        rows.append(row)
        print(json.dumps(row), flush=True)
    table = [
        "| hosts | VMs | flows | parse s | model s | isolation s | dhcp s | floating-ip s | (model+checks)/parse "
        "| abstract states | peak MiB | verdicts (isolation / dhcp / floating-ip) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        table.append(
            f"| {r['hosts']} | {r['vms']} | {r['flows']} | {r['parse_s']} | {r['model_s']} | {r['check_s']} "
            f"| {r['dhcp_s']} | {r['fip_s']} | {r['ratio']} | {r['states']} | {r['peak_mib']} | {r['status']} |"
        )
    text = "\n".join(table)
    print(text)
    if write:
        stamp = time.strftime("%Y-%m-%d")
        with open(HERE / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write(f"\n## {stamp}: every property on rendered regions\n\nMachine: {machine()}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
