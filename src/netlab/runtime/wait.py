"""How long netlab waits for what, in one place; tenacity does the waiting.

Every wait of netlab is one of the :class:`Patience` below: a condition the kernel or a helper
will make true (links getting carrier, bpftrace attaching), or a transient answer worth asking
again (ENOBUFS from a full device queue, EBUSY from a trace buffer still switching off). Each
is polled with a pause that doubles from ``first`` to ``most`` and is bounded by ``timeout``,
so nothing sleeps for a fixed time it hopes is enough, and nothing waits forever. A wait that
runs out hands its last answer (or the last transient error) back to the caller, which words the
timeout with what it knows: a lab's readiness names the links that are still down, bpftrace's
start what bpftrace said.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import tenacity

T = TypeVar("T")


@dataclass(frozen=True)
class Patience:
    """How to wait for one thing: ``what`` (said when it runs out), at most ``timeout``
    seconds, pauses doubling from ``first`` to ``most`` seconds."""

    what: str
    timeout: float
    first: float = 0.001
    most: float = 0.05

    def within(self, timeout: float) -> Patience:
        """The same wait with another bound (a user's ``--timeout``)."""
        return replace(self, timeout=timeout)

    def _retrying(self, retry: tenacity.retry_base, **kwargs: object) -> tenacity.Retrying:
        doubling = tenacity.wait_exponential(multiplier=self.first, min=self.first, max=self.most)

        def pause(state: tenacity.RetryCallState) -> float:
            # the last try falls on the deadline, not a pause before it
            return max(0.0, min(doubling(state), self.timeout - (state.seconds_since_start or 0.0)))

        return tenacity.Retrying(
            stop=tenacity.stop_after_delay(self.timeout),
            wait=pause,
            retry=retry,
            sleep=tenacity.nap.sleep,
            **kwargs,  # type: ignore[arg-type]
        )

    def poll(self, attempt: Callable[[], T], done: Callable[[T], bool]) -> T:
        """Call ``attempt`` until ``done`` holds for its answer or time runs out; the last
        answer either way (the caller words a timeout with what it knows)."""
        retrying = self._retrying(
            tenacity.retry_if_result(lambda answer: not done(answer)),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        return retrying(attempt)

    def until(self, condition: Callable[[], bool]) -> bool:
        """Poll ``condition`` until it holds (True) or time runs out (False)."""
        return bool(self.poll(condition, bool))

    def retry(self, call: Callable[[], T], errnos: frozenset[int], between: Callable[[], None] | None = None) -> T:
        """``call()``, again while it raises an :class:`OSError` whose errno is in ``errnos``
        (``between()`` runs before each new try); the last such error is raised when time runs
        out, for the caller to word. Any other error is raised at once."""
        retrying = self._retrying(
            tenacity.retry_if_exception(lambda e: isinstance(e, OSError) and e.errno in errnos),
            reraise=True,
            before_sleep=(lambda _state: between()) if between is not None else None,
        )
        return retrying(call)


# what netlab waits for, and for how long (the bounds a user may change are the defaults of
# their options: `netlab up --timeout`)
LINKS_USABLE = Patience("the lab's links to come up with carrier", 10.0)
#: a full device queue drains in milliseconds; a qdisc or tc filter that drops every frame never
#: does, and each try is one more drop in a trace, so the bound is short and the pause fixed
FRAME_REFUSED = Patience("the device's egress to take the frame (ENOBUFS)", 1.0, first=0.0005, most=0.0005)
#: the kernel says EBUSY while anything in a trace buffer is still on
TRACE_BUFFER_BUSY = Patience("the trace buffer to be switched off (EBUSY) and removed", 2.0, most=0.02)
#: bpftrace compiles with LLVM before it attaches, which a TCG guest does slowly
BPFTRACE_ATTACHED = Patience("bpftrace to attach its probes", 240.0, first=0.02, most=0.1)
DROPWATCH_MONITORING = Patience("dropwatch to start monitoring", 60.0, first=0.02, most=0.1)
#: a helper flushing what its buffers hold after the drops: quiet for a while means done
HELPER_DRAINED = Patience("the helper's output to stop growing", 60.0, first=0.05, most=0.05)
#: SIGTERM, then SIGKILL after this, for the processes a lab or a trace started
PROCESSES_GONE = Patience("the processes to exit after SIGTERM", 3.0, first=0.01, most=0.01)
#: perf reads every process's maps before it records: minutes in a slow guest
PERF_RECORDING = Patience("perf record to acknowledge 'enable'", 180.0, first=0.1, most=0.1)
#: what a test waits for in a scenario (a counter moving, a socket state): callers give the bound
CONDITION = Patience("the condition", 5.0)

TRANSIENT_SEND = frozenset({errno.ENOBUFS})
TRANSIENT_BUSY = frozenset({errno.EBUSY})


def poll(
    attempt: Callable[[], T], done: Callable[[T], bool], timeout: float, *, first: float = 0.001, most: float = 0.05
) -> T:
    """:meth:`Patience.poll` for a wait without a name of its own (tests, one-off checks)."""
    return replace(CONDITION, timeout=timeout, first=first, most=most).poll(attempt, done)


def until(condition: Callable[[], bool], timeout: float, *, most: float = 0.05) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds have passed (False)."""
    return replace(CONDITION, timeout=timeout, most=most).until(condition)
