"""The journal of what a lab created, written *before* each creation.

``/run/netlab/LAB.journal`` is append-only JSON lines: a header (the lab, the topology as
data, who built it), then one line per root-level object *before* it is made
(:class:`NamespacePlanned`, later :class:`TracefsOpened` and :class:`HelperStarted`), a line
with its identity once made (:class:`NamespaceMade` with the namespace inode), and
:class:`Ready` when ``up`` finished. Each kind of line is one class here; this module alone
writes and reads them. Appending a line
is one ``write(2)`` on an ``O_APPEND`` fd, so a lab of 51 namespaces pays microseconds for its
crash safety, and a ``kill -9`` can at worst leave a truncated last line, which readers skip.

Only root-level objects are journaled: veths, bridges, addresses, routes, sysctls and
firewall rules live inside the lab's namespaces and vanish with them.

Creating the journal with ``O_EXCL`` is what claims a lab name, so two ``up`` of one name
cannot both proceed; ``flock`` on it serialises ``up`` and ``down`` of one lab.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from netlab.errors import LabStateError
from netlab.runtime import procs

FORMAT = 1
E = TypeVar("E", bound="Entry")


def run_dir() -> Path:
    """Where labs' journals live; ``NETLAB_RUN_DIR`` moves it (tests of the journal itself)."""
    return Path(os.environ.get("NETLAB_RUN_DIR", "/run/netlab"))


def sent_path(lab: str) -> Path:
    """What netlab sent into the lab (:mod:`netlab.traffic.sent`); removed with the journal."""
    return run_dir() / f"{lab}.sent"


def journal_path(lab: str) -> Path:
    """The journal of lab ``lab``."""
    return run_dir() / f"{lab}.journal"


@dataclass(frozen=True)
class Entry:
    """One line of a journal after its header; ``op`` is its kind as written in the file."""

    op: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        """The line's JSON object."""
        return {"op": self.op, **asdict(self)}


@dataclass(frozen=True)
class NamespacePlanned(Entry):
    """A namespace is about to be made (written before it exists, so a crash cannot hide it)."""

    name: str
    node: str = ""
    op: ClassVar[str] = "netns"


@dataclass(frozen=True)
class NamespaceMade(Entry):
    """The namespace exists, with this inode (teardown removes only a namespace it made)."""

    name: str
    ino: int
    op: ClassVar[str] = "netns-made"


@dataclass(frozen=True)
class Ready(Entry):
    """``up`` finished: the lab is usable."""

    seconds: float = 0.0
    op: ClassVar[str] = "ready"


@dataclass(frozen=True)
class Released(Entry):
    """The holding process let the lab outlive it (``Lab.release``)."""

    op: ClassVar[str] = "released"


@dataclass(frozen=True)
class TracefsOpened(Entry):
    """A tool's private trace buffer (tracefs instance), about to be made."""

    key: str
    path: str
    op: ClassVar[str] = "tracefs"


@dataclass(frozen=True)
class TracefsClosed(Entry):
    """That instance is gone."""

    key: str
    op: ClassVar[str] = "tracefs-done"


@dataclass(frozen=True)
class HelperStarted(Entry):
    """A helper process (perf, bpftrace, dropwatch) running for the lab."""

    key: str
    pid: int
    start: int | None = None
    op: ClassVar[str] = "pid"


@dataclass(frozen=True)
class HelperEnded(Entry):
    """That helper has been stopped."""

    key: str
    op: ClassVar[str] = "pid-done"


KINDS: dict[str, type[Entry]] = {
    kind.op: kind
    for kind in (
        NamespacePlanned,
        NamespaceMade,
        Ready,
        Released,
        TracefsOpened,
        TracefsClosed,
        HelperStarted,
        HelperEnded,
    )
}


def parse_entry(data: dict[str, Any]) -> Entry | None:
    """The entry a journal line holds; None for a kind or shape this version does not know."""
    kind = KINDS.get(str(data.get("op")))
    if kind is None:
        return None
    names = {f.name for f in fields(kind)}
    try:
        return kind(**{k: v for k, v in data.items() if k in names})
    except TypeError:
        return None


@dataclass
class Written:
    """A journal read back: its header and the entries after it."""

    lab: str
    header: dict[str, Any]
    entries: list[Entry] = field(default_factory=list)

    def _of(self, kind: type[E]) -> list[E]:
        return [e for e in self.entries if isinstance(e, kind)]

    @property
    def ready(self) -> bool:
        """``up`` completed."""
        return bool(self._of(Ready))

    @property
    def netns(self) -> list[str]:
        """Namespaces the lab meant to create, in creation order."""
        return [e.name for e in self._of(NamespacePlanned)]

    @property
    def netns_inodes(self) -> dict[str, int]:
        """Namespaces known to have been created, with their inode."""
        return {e.name: e.ino for e in self._of(NamespaceMade)}

    @property
    def helpers(self) -> list[HelperStarted]:
        """Helper processes started and not recorded as stopped."""
        ended = {e.key for e in self._of(HelperEnded)}
        return [e for e in self._of(HelperStarted) if e.key not in ended]

    @property
    def trace_buffers(self) -> list[TracefsOpened]:
        """Trace buffers made and not recorded as removed."""
        closed = {e.key for e in self._of(TracefsClosed)}
        return [e for e in self._of(TracefsOpened) if e.key not in closed]

    @property
    def owner(self) -> tuple[int, int | None]:
        """The process that holds the lab (built it, or keeps it for a ``with`` block)."""
        holder = self.header.get("holder") or self.header["builder"]
        return holder["pid"], holder.get("start")

    @property
    def state(self) -> str:
        """``up``; ``building`` (up is running); ``crashed`` (its builder or holder died)."""
        pid, start = self.owner
        alive = procs.alive(pid, start)
        if not self.ready:
            return "building" if alive else "crashed"
        released = bool(self._of(Released))
        if self.header.get("holder") and not released and not alive:
            return "crashed"
        return "up"


class Journal:
    """An open journal; appends are atomic lines."""

    def __init__(self, lab: str, fd: int) -> None:
        self.lab = lab
        self.fd = fd

    @classmethod
    def create(cls, lab: str, header: dict[str, Any]) -> Journal:
        """Claim ``lab`` and write its header; refuses a lab name already claimed."""
        directory = run_dir()
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        target = journal_path(lab)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        except FileExistsError:
            raise _already(lab) from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        journal = cls(lab, fd)
        pid, start = procs.me()
        journal._write(
            {
                "op": "header",
                "format": FORMAT,
                "lab": lab,
                "created": time.time(),
                "builder": {"pid": pid, "start": start},
                **header,
            }
        )
        return journal

    def append(self, entry: Entry) -> None:
        """Add one entry; it is in the file when this returns."""
        self._write(entry.to_json())

    def _write(self, data: dict[str, Any]) -> None:
        os.write(self.fd, (json.dumps(data, separators=(",", ":")) + "\n").encode())

    def close(self) -> None:
        """Release the lock and the fd (the file stays: it describes a live lab)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _already(lab: str) -> LabStateError:
    written = read(lab)
    if written is not None and written.state == "crashed":
        return LabStateError(
            f"lab '{lab}' was left half-built or orphaned by a process that died",
            hint=f"netlab down {lab} (or netlab clean) removes it",
        )
    if written is not None and written.state == "building":
        return LabStateError(f"lab '{lab}' is being built by pid {written.owner[0]}")
    return LabStateError(
        f"lab '{lab}' is already up",
        hint=f"netlab down {lab} first, or bring up another copy with --instance NAME",
    )


def read(lab: str) -> Written | None:
    """Read lab ``lab``'s journal, or None when there is none."""
    try:
        raw = journal_path(lab).read_bytes()
    except FileNotFoundError:
        return None
    lines: list[dict[str, Any]] = []
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by kill -9: what it announced never happened
        if isinstance(data, dict):
            lines.append(data)
    header = {"op": "header", "lab": lab, "builder": {"pid": 0}}
    if lines and lines[0].get("op") == "header":
        header = lines.pop(0)
    entries = [e for e in map(parse_entry, lines) if e is not None]
    return Written(lab, header, entries)


def append(lab: str, entry: Entry) -> None:
    """Journal a root-level object a tool made for lab ``lab`` after ``up`` (a trace buffer, a
    helper's pid), so ``down``/``clean`` remove it even if the tool's process dies."""
    try:
        fd = os.open(journal_path(lab), os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError:
        raise LabStateError(f"lab '{lab}' is not up") from None
    with contextlib.closing(Journal(lab, fd)) as log:
        log.append(entry)


def not_up(lab: str) -> LabStateError:
    """The one error for a lab that is not up, naming those that are."""
    known = ", ".join(all_labs()) or "none"
    return LabStateError(f"no lab named '{lab}' is up (labs: {known})", hint="netlab status lists labs")


def all_labs() -> list[str]:
    """Names of every lab with a journal."""
    directory = run_dir()
    if not directory.is_dir():
        return []
    return sorted(p.name.removesuffix(".journal") for p in directory.glob("*.journal"))


@contextlib.contextmanager
def locked(lab: str) -> Iterator[Journal | None]:
    """Hold the lab's lock for a teardown; yields None when the lab has no journal.

    Raises when another live process holds it (an ``up`` in progress).
    """
    try:
        fd = os.open(journal_path(lab), os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            written = read(lab)
            pid = written.owner[0] if written else "?"
            raise LabStateError(
                f"lab '{lab}' is busy: pid {pid} is building or tearing it down",
                hint="wait for it, or stop that process (Ctrl-C rolls the lab back)",
            ) from None
        yield Journal(lab, fd)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
