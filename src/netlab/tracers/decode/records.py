"""Parse tracepoint text (tracefs ``trace``/``trace_pipe``, ``perf script``) into records.

Only the events netlab uses are understood; anything else is skipped. A ``<stack trace>``
entry (from the ``stacktrace`` trigger) belongs to the event just before it *on the same CPU*,
which is why readers keep per-CPU streams and attach stacks before merging them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# "comm-pid [cpu] flags timestamp: event: body" (the flags column is optional in perf script)
_LINE = re.compile(
    r"^\s*(?P<comm>.+?)-(?P<pid>\d+)\s+(?:\(\s*\d+\)\s+)?\[(?P<cpu>\d+)\]\s+(?:[\w.]{4,6}\s+)?"
    r"(?P<ts>\d+\.\d+):\s+(?:\S+:)?(?P<event>\w+):\s?(?P<body>.*)$"
)
_FIELD = re.compile(r"(\w+)=(\S+)")
_REASON = re.compile(r"reason: (\w+)")
# perf script: "comm pid [cpu] ts: group:event: body"
_PERF_LINE = re.compile(
    r"^\s*(?P<comm>\S.*?)\s+(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+(?P<ts>\d+\.\d+):\s+\w+:(?P<event>\w+):\s?(?P<body>.*)$"
)
_STACK = re.compile(r"^\s*=> (\S+)")
_PERF_STACK = re.compile(r"^\s+[0-9a-f]{8,}\s+(\S+?)(?:\+0x[0-9a-f]+)?(?:\s+\(.*\))?\s*$")


@dataclass(slots=True)
class Record:
    """One tracepoint hit."""

    time: float
    cpu: int
    pid: int
    comm: str
    event: str
    fields: dict[str, str]
    stack: list[str] = field(default_factory=list)
    #: (network-namespace inode, descends from the tracing process) of ``pid``, taken when the
    #: record was read: short-lived senders (ping) are gone by the time a trace is analysed
    context: tuple[int | None, bool] | None = None

    @property
    def skbaddr(self) -> str | None:
        """The (hashed, but stable within a boot) skb pointer."""
        return self.fields.get("skbaddr")

    @property
    def device(self) -> str | None:
        """The device name of a path event."""
        return self.fields.get("dev") or self.fields.get("name")


def parse_line(line: str) -> Record | None:
    """One event line, or None for stack lines, comments and other events' noise."""
    m = _LINE.match(line) or _PERF_LINE.match(line)
    if m is None:
        return None
    body = m.group("body")
    fields = dict(_FIELD.findall(body))
    reason = _REASON.search(body)
    if reason:
        fields["reason"] = reason.group(1)
    return Record(
        float(m.group("ts")),
        int(m.group("cpu")),
        int(m.group("pid")),
        m.group("comm").strip(),
        m.group("event"),
        fields,
    )


class HeldBack:
    """A per-CPU stream of records whose last one is held back until the next shows whether a
    stack follows it (a stack entry comes after its event, possibly in the next chunk)."""

    def __init__(self) -> None:
        self._last: Record | None = None

    def _hold(self, record: Record, out: list[Record]) -> None:
        """``record`` is now the last; the one before it is complete."""
        if self._last is not None:
            out.append(self._last)
        self._last = record

    def flush(self) -> list[Record]:
        """The held-back record, at the end of the stream."""
        out = [self._last] if self._last is not None else []
        self._last = None
        return out


class StreamParser(HeldBack):
    """Records of one CPU's text stream (or a perf script dump), stacks attached to their
    event; fed in chunks as a pipe is read, or all at once by :func:`parse_stream`."""

    def feed(self, lines: Iterable[str]) -> list[Record]:
        """Records completed by ``lines``."""
        out: list[Record] = []
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            stack = _STACK.match(line) or _PERF_STACK.match(line)
            if stack:
                if self._last is not None:
                    self._last.stack.append(stack.group(1))
                continue
            record = parse_line(line)
            if record is None or "<stack trace>" in line:
                continue
            self._hold(record, out)
        return out


def parse_stream(lines: Iterable[str]) -> list[Record]:
    """Every record of a whole stream (a perf script dump, a recorded trace)."""
    parser = StreamParser()
    return parser.feed(lines) + parser.flush()
