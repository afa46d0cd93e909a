"""Whether the kernel's receive backlogs have drained: the condition a trace's end waits for.

What a lab sends is processed in its sender's own softirq before the send returns, except what
the other end of a veth hands to a CPU's backlog (``netif_rx``), which ksoftirqd may process a
little later, and frees that come from a timer. ``/proc/net/softnet_stat`` has, per CPU, how many
packets its backlog processed (first column) and, since 5.10, how many wait in it (eleventh):
when none wait and the processed counts stand still for one interval, what was sent has been
dealt with. The wait is bounded: another workload's traffic can keep the counters moving.
"""

from __future__ import annotations

import time

STAT = "/proc/net/softnet_stat"
#: how long the counts must stand still, and how often they are read
INTERVAL = 0.02
#: the longest the wait lasts, drained or not
BOUND = 1.0


def _state() -> tuple[tuple[int, int], ...]:
    """(processed, waiting) of each CPU's backlog (waiting 0 where the kernel does not say)."""
    out = []
    with open(STAT) as f:
        for line in f:
            cols = line.split()
            out.append((int(cols[0], 16), int(cols[11], 16) if len(cols) > 11 else 0))
    return tuple(out)


def wait_drained(bound: float = BOUND) -> bool:
    """Return once no packet waits in a backlog and none was processed for :data:`INTERVAL`
    (True), or after ``bound`` seconds (False)."""
    deadline = time.monotonic() + bound
    last = _state()
    while time.monotonic() < deadline:
        time.sleep(INTERVAL)
        now = _state()
        if now == last and not any(waiting for _done, waiting in now):
            return True
        last = now
    return False
