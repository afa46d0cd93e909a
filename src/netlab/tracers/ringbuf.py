"""Decode tracefs's binary ring buffer (``per_cpu/cpuN/trace_pipe_raw``), as libtraceevent does.

Why binary: the text output is the kernel *printing* the event, and what it prints differs by
kernel in ways that hide the answer. 6.1 prints ``location=%p``, which tracefs hashes
(``options/hash-ptr``), so every drop reads ``000000001feea2ce``; 5.10 has no ``hash-ptr``
switch at all. The raw record always holds the real pointer, which :mod:`netlab.tracers.symbols`
turns into ``function+offset`` through /proc/kallsyms (the seeds' arithmetic, done by the tool).

Layout, as ``events/header_page`` and ``events/header_event`` describe it: a page starts with
a u64 timestamp and a ``long`` commit (the byte count of data, flags in the high bits), then
entries. Each entry begins with a u32 of ``type_len:5, time_delta:27``: type_len 1..28 means
``type_len*4`` bytes of data follow; 0 means the length is in the next u32 (minus itself);
29 is padding, 30 a time extend (``array[0] << 27``), 31 an absolute time stamp. The data is
the event record, whose fields are found by *name* at the offsets and sizes of the event's
``format`` file: fields move between kernels (``rx_sk`` was inserted in 6.11), and 5.10's
``kfree_skb`` has no ``reason`` at all.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from netlab.tracers.records import HeldBack, Record

COMMIT_MASK = (1 << 27) - 1
TS_SHIFT = 27
TS_MSB = 0xF8 << 56
PADDING, TIME_EXTEND, TIME_STAMP = 29, 30, 31
_FIELD = re.compile(r"field:(?P<decl>[^;]+);\s*offset:(?P<off>\d+);\s*size:(?P<size>\d+);\s*signed:(?P<signed>\d)")
_ID = re.compile(r"^ID:\s*(\d+)", re.MULTILINE)
_NAME = re.compile(r"^name:\s*(\S+)", re.MULTILINE)
_INT = {1: "b", 2: "h", 4: "i", 8: "q"}


@dataclass(frozen=True)
class Field:
    """One field of an event record: where it is and how to read it."""

    name: str
    offset: int
    size: int
    signed: bool
    kind: str  # "int", "data_loc" (dynamic string), "chars" (fixed char array), "bytes"

    def read(self, data: bytes) -> int | str | bytes:
        end = self.offset + self.size
        if self.kind == "int":
            code = _INT[self.size]
            return struct.unpack_from("<" + (code if self.signed else code.upper()), data, self.offset)[0]  # type: ignore[no-any-return]
        if self.kind == "data_loc":
            loc = struct.unpack_from("<I", data, self.offset)[0]
            start, length = loc & 0xFFFF, loc >> 16
            return data[start : start + length].split(b"\0", 1)[0].decode(errors="replace")
        if self.kind == "chars":
            return data[self.offset : end].split(b"\0", 1)[0].decode(errors="replace")
        return data[self.offset : end]


@dataclass(frozen=True)
class EventFormat:
    """An event's ``format`` file: its id, name and fields by name."""

    name: str
    id: int
    fields: dict[str, Field]
    text: str

    @classmethod
    def parse(cls, text: str) -> EventFormat:
        m_id, m_name = _ID.search(text), _NAME.search(text)
        if m_id is None or m_name is None:
            raise ValueError("not an event format (no name/ID)")
        fields = {}
        for m in _FIELD.finditer(text):
            decl = m.group("decl").strip()
            words = decl.replace("[", " [").split()
            name = next(w for w in reversed(words) if not w.startswith("["))
            size, signed = int(m.group("size")), m.group("signed") == "1"
            if decl.startswith("__data_loc"):
                kind = "data_loc"
            elif "[" in decl and decl.startswith("char"):
                kind = "chars"
            elif "[" not in decl and size in _INT:
                kind = "int"
            else:
                kind = "bytes"
            fields[name] = Field(name, int(m.group("off")), size, signed, kind)
        return cls(m_name.group(1), int(m_id.group(1)), fields, text)

    def has(self, field: str) -> bool:
        return field in self.fields


@dataclass(frozen=True)
class RawEvent:
    """One entry of the ring buffer: timestamp in ns, the event id, and the record's bytes."""

    ts: int
    type_id: int
    data: bytes


def entries(page: bytes, long_size: int = 8) -> Iterator[RawEvent]:
    """The events of one ring-buffer page (as read from ``trace_pipe_raw``)."""
    if len(page) < 8 + long_size:
        return
    ts = struct.unpack_from("<Q", page, 0)[0]
    commit = struct.unpack_from("<Q" if long_size == 8 else "<I", page, 8)[0] & COMMIT_MASK
    pos, end = 8 + long_size, min(len(page), 8 + long_size + commit)
    while pos + 4 <= end:
        header = struct.unpack_from("<I", page, pos)[0]
        type_len, delta = header & 0x1F, header >> 5
        pos += 4
        if type_len == PADDING:
            if pos + 4 > end:
                return
            length = struct.unpack_from("<I", page, pos)[0]
            if delta == 0 and length == 0:
                return  # the rest of the page is padding
            ts += delta
            pos += length
            continue
        if type_len in (TIME_EXTEND, TIME_STAMP):
            extend = (struct.unpack_from("<I", page, pos)[0] << TS_SHIFT) + delta
            ts = (ts & TS_MSB) | extend if type_len == TIME_STAMP else ts + extend
            pos += 4
            continue
        if type_len == 0:
            length = struct.unpack_from("<I", page, pos)[0] - 4
            length = (length + 3) & ~3
            pos += 4
        else:
            length = type_len * 4
        ts += delta
        data = page[pos : pos + length]
        pos += length
        if len(data) >= 2:
            yield RawEvent(ts, struct.unpack_from("<H", data, 0)[0], data)


def has_entries(page: bytes, long_size: int = 8) -> bool:
    """Does the page carry any committed data?"""
    if len(page) < 8 + long_size:
        return False
    return bool(struct.unpack_from("<Q" if long_size == 8 else "<I", page, 8)[0] & COMMIT_MASK)


def kernel_stack(data: bytes, fmt: EventFormat) -> list[int]:
    """Return addresses of a ``kernel_stack`` entry (the ``stacktrace`` trigger's record)."""
    size_field, caller = fmt.fields.get("size"), fmt.fields.get("caller")
    if size_field is None or caller is None:
        return []
    count = size_field.read(data)
    if not isinstance(count, int):
        return []
    room = (len(data) - caller.offset) // 8
    n = max(0, min(count, room))
    return [a for a in struct.unpack_from(f"<{n}Q", data, caller.offset) if a]


class RecordDecoder(HeldBack):
    """Raw entries of one CPU -> :class:`~netlab.tracers.records.Record`, the shape the text
    parsers give, so correlation and attribution do not care where a record came from.

    ``location`` and stack addresses become ``function+0xoff/0xsize`` through ``symbolize``;
    ``reason`` becomes the kernel's name from the format's ``__print_symbolic`` table, and is
    absent (not invented) on a kernel whose event has no reason field.
    """

    def __init__(
        self,
        formats: list[EventFormat],
        stack_format: EventFormat | None,
        symbolize: Callable[[int], str],
        reasons: dict[int, str],
        cpu: int,
    ) -> None:
        self.by_id = {f.id: f for f in formats}
        self.stack_format = stack_format
        self.symbolize = symbolize
        self.reasons = reasons
        self.cpu = cpu
        super().__init__()

    def feed(self, page: bytes) -> list[Record]:
        """Records completed by one page; the last is held until we know no stack follows it."""
        out: list[Record] = []
        for entry in entries(page):
            if self.stack_format is not None and entry.type_id == self.stack_format.id:
                if self._last is not None:
                    self._last.stack.extend(self.symbolize(a) for a in kernel_stack(entry.data, self.stack_format))
                continue
            fmt = self.by_id.get(entry.type_id)
            if fmt is None:
                continue
            self._hold(self._record(entry, fmt), out)
        return out

    def _record(self, entry: RawEvent, fmt: EventFormat) -> Record:
        data = entry.data
        fields: dict[str, str] = {}
        for name, field in fmt.fields.items():
            if name.startswith("common_") or field.offset + field.size > len(data):
                continue
            value = field.read(data)
            if name == "location" and isinstance(value, int):
                fields[name] = self.symbolize(value)
            elif name == "reason" and isinstance(value, int):
                fields[name] = self.reasons.get(value, f"REASON_{value}")
            elif isinstance(value, int):
                fields[name] = f"{value:x}" if field.size == 8 and not field.signed else str(value)
            elif isinstance(value, str):
                fields[name] = value
        pid = struct.unpack_from("<i", data, 4)[0] if len(data) >= 8 else 0
        return Record(entry.ts / 1e9, self.cpu, pid, "", fmt.name, fields)
