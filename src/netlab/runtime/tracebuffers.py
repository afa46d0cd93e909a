"""netlab's private trace buffers: their names, creation, journal and removal.

A trace buffer is what the kernel calls a tracefs *instance*: a directory under
``/sys/kernel/tracing/instances`` with a ring buffer and settings of its own. Every tracer that
needs tracefs state (the tracepoint tracer, the function tracers, a probe that tries whether a
tracer is allowed) works in a buffer of its own, so it never touches the global buffer other
tools use and never shares a setting with another session. (netlab's own "instance" is a copy
of a lab, ``--instance``; the two words never mean each other here.)

The name is ``netlab_<pid>_<start>_<tag><n>``: the creating process's pid and start time,
which is how ``netlab clean`` tells a buffer whose owner died from one in use, even when the
pid has been reused. A buffer made for a lab is written to the lab's journal *before* it is
made, so ``netlab down`` removes it if the tracing process is killed mid-trace.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from pathlib import Path

from netlab.errors import NetlabError
from netlab.runtime import procs, wait
from netlab.runtime.journal import Entry, TracefsClosed, TracefsOpened

TRACEFS = Path("/sys/kernel/tracing")
INSTANCES = TRACEFS / "instances"
PREFIX = "netlab_"
_counter = itertools.count()


def mounted() -> bool:
    """True when tracefs (with instances: trace buffers) is mounted where we look for it."""
    return INSTANCES.is_dir()


def new_name(tag: str = "") -> str:
    """A fresh buffer name owned by this process."""
    pid, start = procs.me()
    return f"{PREFIX}{pid}_{start}_{tag}{next(_counter)}"


def owner(name: str) -> tuple[int, int] | None:
    """(pid, start time) of the process that made buffer ``name``; None if not ours."""
    if not name.startswith(PREFIX):
        return None
    parts = name.split("_")
    try:
        return int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        return None


class TraceBuffer:
    """A private trace buffer; ``close()`` (or leaving the ``with``) removes it."""

    def __init__(self, tag: str = "", keep: Callable[[Entry], bool] | None = None) -> None:
        """``keep``: where the buffer is recorded before it is made, so ``down`` removes it if
        we die (a scope's :meth:`~netlab.scope.Scope.keep`); False or None: not recorded."""
        self.name = new_name(tag)
        self.path = INSTANCES / self.name
        self._keep = keep if keep is not None and keep(TracefsOpened(self.name, str(self.path))) else None
        try:
            self.path.mkdir()
        except OSError as exc:
            self._forget()
            raise NetlabError(f"cannot create trace buffer {self.path}: {exc.strerror}") from None

    def __enter__(self) -> TraceBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, relative: str, value: str) -> None:
        """Write a control file of the buffer (errors are the caller's to word)."""
        (self.path / relative).write_text(value)

    def close(self) -> None:
        """Stop tracing in the buffer and remove it; journaled as done."""
        if self.path.exists():
            try:
                remove(self.path)
            except OSError as exc:
                raise NetlabError(f"cannot remove trace buffer {self.path}: {exc.strerror}") from None
        self._forget()

    def _forget(self) -> None:
        if self._keep is not None:
            with contextlib.suppress(Exception):
                self._keep(TracefsClosed(self.name))


def _quiesce(path: Path) -> None:
    """Turn everything off that keeps a buffer busy: tracing, triggers, events, tracer."""
    for relative, value in (
        ("tracing_on", "0"),
        ("events/skb/kfree_skb/trigger", "!stacktrace"),
        ("events/enable", "0"),
        ("current_tracer", "nop"),
    ):
        with contextlib.suppress(OSError):
            (path / relative).write_text(value)


def remove(path: Path) -> None:
    """rmdir a buffer; the kernel says EBUSY while anything in it is still on, so that is
    switched off and the rmdir retried. FileNotFoundError if it is already gone."""
    _quiesce(path)
    wait.TRACE_BUFFER_BUSY.retry(path.rmdir, wait.TRANSIENT_BUSY, between=lambda: _quiesce(path))


def leftovers() -> list[Path]:
    """Buffers named like ours whose owning process is gone."""
    if not INSTANCES.is_dir():
        return []
    found = []
    for inst in INSTANCES.iterdir():
        who = owner(inst.name)
        if who is not None and not procs.alive(*who):
            found.append(inst)
    return found


def clean_leftovers() -> list[str]:
    """Remove the buffers of dead netlab processes; returns their names."""
    removed = []
    for inst in leftovers():
        with contextlib.suppress(OSError):
            remove(inst)
            removed.append(inst.name)
    return removed
