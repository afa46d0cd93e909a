"""Processes by PID, never by name.

A PID alone is not an identity: after a crash it may have been reused by an unrelated
process. We pair it with the process start time from ``/proc/PID/stat`` (field 22, in clock
ticks since boot), so "is the process that built this lab still alive?" and "may I kill this
PID?" are answered about the right process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator

from netlab.runtime import wait


def stat_fields(pid: int) -> list[bytes] | None:
    """``/proc/PID/stat`` from field 3 (state) on, or None if the process is gone. The command
    name (field 2) may hold spaces and ')', so the split is after the last ')'."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rindex(b")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None if it is gone."""
    fields = stat_fields(pid)
    return int(fields[19]) if fields else None


def parent(pid: int) -> int | None:
    """The parent of ``pid`` (None if it is gone)."""
    fields = stat_fields(pid)
    return int(fields[1]) if fields else None


def netns_identity(pid: int | str) -> tuple[int, int] | None:
    """(device, inode) of the network namespace ``pid`` is in, or None if it is gone."""
    try:
        st = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    return st.st_dev, st.st_ino


def alive(pid: int, started: int | None) -> bool:
    """True when ``pid`` runs and is the process that started at ``started``."""
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def me() -> tuple[int, int]:
    """This process's identity: (pid, start time)."""
    pid = os.getpid()
    started = start_time(pid)
    assert started is not None
    return pid, started


def terminate(pids: Iterable[int], *, grace: float = 1.0) -> list[int]:
    """SIGTERM ``pids``, wait up to ``grace`` seconds, SIGKILL the rest.

    Returns the PIDs still alive at the end (normally none).

    Bounded: returns after at most ``grace`` + 1 s whatever the processes do.
    """
    targets = {pid: start_time(pid) for pid in pids}
    targets = {pid: st for pid, st in targets.items() if st is not None}
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for sig_wait, sig in ((grace, signal.SIGKILL), (1.0, None)):

        def gone() -> bool:
            nonlocal targets
            targets = {pid: st for pid, st in targets.items() if _still(pid, st)}
            return not targets

        if wait.PROCESSES_GONE.within(sig_wait).until(gone):
            return []
        if sig is None:
            break
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
    return list(targets)


def _still(pid: int, started: int | None) -> bool:
    """Alive and not a zombie. Never reaps: a child's exit status belongs to its Popen."""
    if not alive(pid, started):
        return False
    fields = stat_fields(pid)
    return fields is not None and fields[0] != b"Z"


@contextlib.contextmanager
def sigterm_raises(make: Callable[[], BaseException]) -> Iterator[None]:
    """Turn SIGTERM into an exception in the main thread while the block runs, so the block's
    cleanup (a lab's rollback, a VM's process group) happens before the process ends.
    Elsewhere than in the main thread, signals cannot be caught: the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise make()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
