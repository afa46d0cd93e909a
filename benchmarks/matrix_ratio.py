"""The kernel matrix against the host suite it repeats: `pytest scenarios/` serially on this
machine, then `netlab matrix` over every kernel, one right after the other, and their ratio.

    sudo .venv/bin/python benchmarks/matrix_ratio.py [-k 5.10 -k 6.1 ...] [-o DIR] [-j JOBS]

Machines of one kind differ about twofold in speed, so the figure that travels is the ratio of
two runs made on one machine minutes apart (issue 18's goal: at most 15). Afterwards it breaks
each kernel's time down from the matrix's own records: boot, pytest's start-up and collection
(the time before the first scenario ends, less that scenario), and the scenarios by what they
spend it on, from their per-scenario times in the reports. Nothing here is a test: it measures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from results import save

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ("5.10", "6.1", "6.12", "7.2", "running")
#: scenario groups of the breakdown, by the words in their test ids (first match wins)
GROUPS = (
    ("bpftrace", "bpftrace"),
    ("perf", "[perf]"),
    ("dropwatch", "dropwatch"),
    ("function walk", "function_by_function"),
    ("timers (ARP, TCP)", "never_answers_arp|retransmission|random_loss"),
)


def group_of(scenario: str) -> str:
    for name, words in GROUPS:
        if any(w in scenario for w in words.split("|")):
            return name
    return "other scenarios"


def host_suite() -> float:
    """Seconds of `pytest scenarios/` on this machine, serially, as a user runs it."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "scenarios/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"the host suite failed:\n{proc.stdout[-3000:]}")
    return seconds


def matrix(kernels: list[str], output: Path, jobs: int | None) -> float:
    argv = [sys.executable, "-m", "netlab", "matrix", "-o", str(output)]
    for k in kernels:
        argv += ["-k", k]
    if jobs:
        argv += ["-j", str(jobs)]
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        print(f"note: the matrix was not green (exit {proc.returncode}); see {output}/index.html")
    return seconds


def breakdown(output: Path) -> list[dict[str, Any]]:
    """Per kernel: boot, suite, and the suite's time by scenario group (from the reports)."""
    data = json.loads((output / "matrix.json").read_text())
    rows = []
    for k in data["kernels"]:
        if not k.get("report"):
            continue
        report = json.loads((output / k["report"]).read_text())
        groups: dict[str, float] = {}
        for s in report["scenarios"]:
            groups[group_of(s["scenario"])] = groups.get(group_of(s["scenario"]), 0.0) + float(s.get("seconds", 0))
        scenarios = sum(groups.values())
        rows.append(
            {
                "kernel": k["name"],
                "release": k["release"],
                "boot": k["boot_seconds"],
                "suite": k["suite_seconds"],
                "start-up, collection, between tests": round(k["suite_seconds"] - scenarios, 1),
                **{g: round(v, 1) for g, v in sorted(groups.items())},
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", "--kernel", action="append", dest="kernels")
    parser.add_argument("-o", "--output", type=Path, default=Path("/tmp/netlab-matrix-ratio"))
    parser.add_argument("-j", "--jobs", type=int, default=None)
    args = parser.parse_args()
    kernels = args.kernels or list(KERNELS)
    host = host_suite()
    print(f"host suite (pytest scenarios/, serial): {host:.1f} s")
    whole = matrix(kernels, args.output, args.jobs)
    print(f"matrix ({', '.join(kernels)}): {whole:.1f} s")
    print(f"ratio: {whole / host:.1f}x (goal: at most 15x)\n")
    rows = breakdown(args.output)
    columns = sorted(
        {c for r in rows for c in r} - {"kernel", "release"}, key=lambda c: (c not in ("boot", "suite"), c)
    )
    print("| kernel | " + " | ".join(columns) + " |")
    print("|" + " --- |" * (len(columns) + 1))
    for r in rows:
        print(f"| {r['kernel']} ({r['release']}) | " + " | ".join(f"{r.get(c, 0):.0f} s" for c in columns) + " |")
    save("matrix_ratio", {"kernels": kernels, "host_suite": round(host, 1), "matrix": round(whole, 1), "rows": rows})


if __name__ == "__main__":
    main()
