"""How many drop events per second each tracer captures, against how many were generated.

    sudo .venv/bin/python benchmarks/trace_throughput.py [--frames 200000]

One node of a veth-two-ns lab floods the other with frames of an ethertype no handler takes;
every frame is dropped exactly once in the receiving node (UNHANDLED_PROTO, or CPU_BACKLOG when
the backlog overflows), and the receiving device's ``rx_dropped`` counter is the ground truth
for how many drops there were. Each tracer runs over the same flood in the same run:
tracefs (pages read from the per-CPU ring buffers, walked and followed by the native walker,
attributed in Python; losses counted by the ring buffer), tracefs with its pure-Python decoder,
bpftrace in count mode (aggregated in a kernel map) and in events mode. The
flood comes from a separate process, as real traffic does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from results import save

import netlab
from netlab.lab import Lab
from netlab.tracers.backends.bpftrace import BpftraceSession
from netlab.tracers.backends.tracefs import TracefsSession
from netlab.tracers.base import TraceOptions
from netlab.tracers.decode import native
from netlab.tracers.registry import get

FRAME = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + bytes(46)


def rx_dropped(lab: Lab) -> int:
    with lab.node("ns2").entered(), open("/proc/thread-self/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "veth2":
                return int(rest.split()[3])
    raise SystemExit("veth2 not found")


SENDER = """
import sys, time
from netlab.traffic.packet import PacketSocket
frame = bytes.fromhex(sys.argv[2])
with PacketSocket.sender(sys.argv[1], "veth1") as sock:
    start = time.perf_counter()
    sock.send([frame] * int(sys.argv[3]))
    print(time.perf_counter() - start)
"""


def flood(lab: Lab, frames: int) -> float:
    """Send from a separate process, as real traffic would: the tracer's reader threads must
    not share an interpreter lock with the traffic source."""
    out = subprocess.run(
        [sys.executable, "-c", SENDER, lab.node("ns1").netns, FRAME.hex(), str(frames)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


def run(lab: Lab, label: str, frames: int, start: object) -> dict[str, float]:
    before = rx_dropped(lab)
    session = start() if callable(start) else None
    try:
        seconds = flood(lab, frames)
        time.sleep(0.5)
    finally:
        analysed = time.perf_counter()
        result = session.stop() if session is not None else None
        analysed = time.perf_counter() - analysed
    return {
        "label": label,  # type: ignore[dict-item]
        "generated": rx_dropped(lab) - before,
        "captured": result.total_drops if result is not None else 0,
        "lost": result.lost if result is not None else 0,
        "events": result.events if result is not None else 0,
        "flood": seconds,
        "stop": analysed,
    }


def python_tracefs(lab: Lab) -> TracefsSession:
    """The tracefs tracer with its pure-Python decoder (what runs where the native walker cannot
    be built), for the comparison."""
    os.environ["NETLAB_NATIVE"] = "off"
    native.load.cache_clear()
    try:
        return TracefsSession(lab, TraceOptions(buffer_kb=262144))
    finally:
        del os.environ["NETLAB_NATIVE"]
        native.load.cache_clear()


def main() -> None:
    """Flood once per tracer; print generated vs captured side by side."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=200_000)
    args = parser.parse_args()
    rows = []
    with netlab.up("veth-two-ns", instance="tput") as lab:
        flood(lab, 1000)  # warm up
        rows.append(run(lab, "no tracer", args.frames, None))
        rows.append(run(lab, "tracefs", args.frames, lambda: TracefsSession(lab, TraceOptions(buffer_kb=262144))))
        rows.append(run(lab, "tracefs (Python)", args.frames, lambda: python_tracefs(lab)))
        if get("perf").probe().usable:
            rows.append(run(lab, "perf", args.frames, lambda: get("perf").start(lab)))
        if get("bpftrace").probe().usable:
            rows.append(run(lab, "bpftrace (count)", args.frames, lambda: BpftraceSession(lab, "count")))
            rows.append(run(lab, "bpftrace (events)", args.frames, lambda: BpftraceSession(lab, "events")))
    print(f"{args.frames} frames flooded from ns1 to ns2, each dropped once in ns2; same run")
    print(
        f"{'tracer':20}{'generated':>11}{'captured':>10}{'lost':>8}{'flood s':>9}{'drops/s':>10}"
        f"{'stop s':>8}{'events':>9}{'analysed/s':>12}"
    )
    for r in rows:
        rate = r["generated"] / r["flood"]
        total = r["flood"] + r["stop"]
        analysed = r["events"] / total if r["events"] else 0
        print(
            f"{r['label']:20}{r['generated']:>11}{r['captured']:>10}{r['lost']:>8}{r['flood']:>9.3f}{rate:>10.0f}"
            f"{r['stop']:>8.2f}{r['events']:>9}{analysed:>12.0f}"
        )
    print("stop s: from stopping the tracer to its result (what is left to read, decode and attribute)")
    save("trace_throughput", {"frames": args.frames, "rows": rows})
    print("events: trace records analysed (drops, path events, frees); analysed/s: events / (flood s + stop s)")


if __name__ == "__main__":
    main()
