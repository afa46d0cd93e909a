"""Send 10,000 frames from a lab node: netlab's one-socket burst vs a loop of scapy's sendp.

    sudo .venv/bin/python benchmarks/inject_burst.py [--frames 10000]

Both send the same prebuilt frames (ethertype 0x88b5, 60 bytes) from ns1:veth1 of a
veth-two-ns lab, in the same run. scapy's ``sendp`` opens and closes a packet socket per call;
it runs with the thread inside the node's namespace and is given the interface by name (its
root-namespace interface cache is no help there). netlab opens one socket for the burst.

Most of sendp's cost is not Python: closing a packet socket waits for an RCU grace period in
the kernel (``packet_release`` -> ``synchronize_net``), ~14 ms on the 2-core development VM,
the same for ``lo`` in the root namespace. At 10,000 frames the scapy loop takes ~4 minutes;
``--scapy-frames 1000`` samples it and reports the same rate.
"""

from __future__ import annotations

import argparse
import time

from results import save

import netlab
from netlab.traffic.packet import PacketSocket


def main() -> None:
    """Run both senders and print frames per second side by side."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--scapy-frames", type=int, default=None, help="frames for the scapy loop (default: --frames)")
    args = parser.parse_args()

    from scapy.config import conf
    from scapy.sendrecv import sendp

    conf.verb = 0
    frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + bytes(46)
    frames = [frame] * args.frames
    with netlab.up("veth-two-ns", instance="bench") as lab:
        node = lab.node("ns1")
        start = time.perf_counter()
        with PacketSocket.sender(node.netns, "veth1") as sock:
            sock.send(frames)
        ours = time.perf_counter() - start

        scapy_frames = args.scapy_frames or args.frames
        start = time.perf_counter()
        with node.entered():
            for f in frames[:scapy_frames]:
                sendp(f, iface="veth1", verbose=False)  # type: ignore[arg-type]  # scapy sends bytes as Raw
        theirs = time.perf_counter() - start

    ours_rate, theirs_rate = args.frames / ours, scapy_frames / theirs
    print("frames from a lab node (ns1:veth1), same run")
    print(f"{'':28}{'frames':>8}{'seconds':>10}{'frames/s':>12}")
    print(f"{'netlab (one socket)':28}{args.frames:>8}{ours:>10.3f}{ours_rate:>12.0f}")
    print(f"{'scapy sendp loop':28}{scapy_frames:>8}{theirs:>10.3f}{theirs_rate:>12.0f}")
    print(f"netlab sends {ours_rate / theirs_rate:.0f}x more frames per second")
    save(
        "inject_burst",
        {
            "frames": args.frames,
            "seconds": round(ours, 4),
            "scapy_frames": scapy_frames,
            "scapy_seconds": round(theirs, 3),
        },
    )


if __name__ == "__main__":
    main()
