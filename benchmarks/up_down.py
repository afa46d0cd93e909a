"""Time `netlab up linear50` + `netlab down linear50` against Mininet's linear,50, in one run.

    sudo .venv/bin/python benchmarks/up_down.py [--rounds 5] [--settle 3]

Both tools run as the commands a user types, so both pay their interpreter start-up and
imports. Mininet runs as ``mn --topo linear,50 --switch lxbr --controller none --test none``
(build, then tear down: its whole cycle in one command; Debian packages mininet and
bridge-utils, ``NETLAB_EXTRAS=bench scripts/bootstrap.sh`` installs them).

The kernel destroys network namespaces asynchronously, after the command that removed them
has returned, and that work holds the rtnl lock the next build needs. Back-to-back cycles
therefore measure the previous run's cleanup as much as the current build, so every run
starts after ``--settle`` seconds of quiet; ``--settle 0`` shows the back-to-back figure.
Rounds alternate netlab and Mininet so drift affects both alike. The figures are medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results import save

ROOT = Path(__file__).resolve().parents[1]
NETLAB = [sys.executable, "-m", "netlab"]
MININET = ["mn", "--topo", "linear,50", "--switch", "lxbr", "--controller", "none", "--test", "none"]


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall-clock seconds of one command, which must succeed."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    """Run the rounds and print both tools side by side."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--settle", type=float, default=3.0, help="quiet seconds before each run")
    parser.add_argument("--no-mininet", action="store_true", help="time netlab only")
    args = parser.parse_args()

    mininet = not args.no_mininet and shutil.which("mn") is not None and shutil.which("brctl") is not None
    if not args.no_mininet and not mininet:
        print("mininet or bridge-utils missing: NETLAB_EXTRAS=bench scripts/bootstrap.sh installs them")
    # as an installed package has it: without bytecode every run compiles the changed modules
    # again (where PYTHONDONTWRITEBYTECODE is set, as in this project's tool environment)
    from netlab.kernels.runner import warm_bytecode

    warm_bytecode()
    ups: list[float] = []
    downs: list[float] = []
    mns: list[float] = []
    cold: list[float] = []  # up with the plan cache off: the file loaded, validated, planned
    uncached = {**os.environ, "NETLAB_PLAN_CACHE": "off"}
    timed([*NETLAB, "up", "--dry-run", "linear50"])
    for i in range(args.rounds):
        time.sleep(args.settle)
        ups.append(timed([*NETLAB, "up", "linear50"]))
        downs.append(timed([*NETLAB, "down", "linear50"]))
        time.sleep(args.settle)
        cold.append(timed([*NETLAB, "up", "linear50"], uncached))
        timed([*NETLAB, "down", "linear50"])
        if mininet:
            time.sleep(args.settle)
            mns.append(timed(MININET))
        extra = f"  mininet {mns[-1]:.2f} s" if mns else ""
        print(
            f"round {i + 1}: netlab up {ups[-1]:.3f} s (without the plan cache {cold[-1]:.3f} s)"
            f"  down {downs[-1]:.3f} s{extra}",
            flush=True,
        )

    up, down, up_cold = statistics.median(ups), statistics.median(downs), statistics.median(cold)
    print(f"\nlinear50 (51 namespaces, 50 bridges, 99 veth pairs), median of {args.rounds}, settle {args.settle:g} s")
    print(f"{'':28}{'netlab':>10}{'mininet':>10}")
    print(f"{'up':28}{up:>9.3f}s{'':>10}")
    print(f"{'up, plan cache off':28}{up_cold:>9.3f}s{'':>10}")
    print(f"{'down':28}{down:>9.3f}s{'':>10}")
    mn = statistics.median(mns) if mns else None
    if mn is not None:
        print(f"{'up + down':28}{up + down:>9.3f}s{mn:>9.3f}s")
        print(f"netlab is {mn / (up + down):.1f}x faster than Mininet for up + down")
        print(f"({mn / (up_cold + down):.1f}x with the plan cache off)")
    else:
        print(f"{'up + down':28}{up + down:>9.3f}s{'n/a':>10}")
    save(
        "up_down",
        {
            "rounds": args.rounds,
            "settle": args.settle,
            "up": round(up, 3),
            "up_uncached": round(up_cold, 3),
            "down": round(down, 3),
            "mininet": round(mn, 3) if mn is not None else None,
        },
    )


if __name__ == "__main__":
    main()
