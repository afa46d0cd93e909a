"""Decode tracefs's binary ring buffer (``per_cpu/cpuN/trace_pipe_raw``), as libtraceevent does.

Why binary: the text output is the kernel *printing* the event, and what it prints differs by
kernel in ways that hide the answer. 6.1 prints ``location=%p``, which tracefs hashes
(``options/hash-ptr``), so every drop reads ``000000001feea2ce``; 5.10 has no ``hash-ptr``
switch at all. The raw record always holds the real pointer, which :mod:`netlab.tracers.kernel.symbols`
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

from netlab.tracers.decode.records import HeldBack, Record

COMMIT_MASK = (1 << 27) - 1
TS_SHIFT = 27
TS_MSB = 0xF8 << 56
PADDING, TIME_EXTEND, TIME_STAMP = 29, 30, 31
_FIELD = re.compile(r"field:(?P<decl>[^;]+);\s*offset:(?P<off>\d+);\s*size:(?P<size>\d+);\s*signed:(?P<signed>\d)")
_ID = re.compile(r"^ID:\s*(\d+)", re.MULTILINE)
_NAME = re.compile(r"^name:\s*(\S+)", re.MULTILINE)
_INT = {1: "b", 2: "h", 4: "i", 8: "q"}
_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")
#: the fields correlation reads, by event; a record carries only these (a flood is 800,000
#: records, each decoded field by field): a drop's location, reason and protocol, a free's
#: address, a path event's address and device
WANTED: dict[str, frozenset[str]] = {
    "kfree_skb": frozenset({"skbaddr", "location", "reason", "protocol"}),
    "consume_skb": frozenset({"skbaddr"}),
    "*": frozenset({"skbaddr", "name", "dev"}),
}


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


def spans(page: bytes, long_size: int = 8) -> Iterator[tuple[int, int, int]]:
    """(timestamp, start, end) of each event record in one ring-buffer page, without copying."""
    if len(page) < 8 + long_size:
        return
    ts = _U64.unpack_from(page, 0)[0]
    commit = (_U64 if long_size == 8 else _U32).unpack_from(page, 8)[0] & COMMIT_MASK
    pos, end = 8 + long_size, min(len(page), 8 + long_size + commit)
    u32 = _U32.unpack_from
    while pos + 4 <= end:
        header = u32(page, pos)[0]
        type_len, delta = header & 0x1F, header >> 5
        pos += 4
        if type_len == 0:
            length = ((u32(page, pos)[0] - 4) + 3) & ~3
            pos += 4
        elif type_len < PADDING:
            length = type_len * 4
        elif type_len == PADDING:
            if pos + 4 > end:
                return
            length = u32(page, pos)[0]
            if delta == 0 and length == 0:
                return  # the rest of the page is padding
            ts += delta
            pos += length
            continue
        else:  # TIME_EXTEND, TIME_STAMP
            extend = (u32(page, pos)[0] << TS_SHIFT) + delta
            ts = (ts & TS_MSB) | extend if type_len == TIME_STAMP else ts + extend
            pos += 4
            continue
        ts += delta
        if length >= 2 and pos + length <= len(page):
            yield ts, pos, pos + length
        pos += length


def entries(page: bytes, long_size: int = 8) -> Iterator[RawEvent]:
    """The events of one ring-buffer page (as read from ``trace_pipe_raw``)."""
    for ts, start, end in spans(page, long_size):
        yield RawEvent(ts, _U16.unpack_from(page, start)[0], page[start:end])


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


class _Plan:
    """How to read one event's wanted fields with a single ``struct`` call: the common pid,
    then each field at its offset (gaps skipped), in offset order."""

    def __init__(self, fmt: EventFormat, wanted: frozenset[str]) -> None:
        self.event = fmt.name
        fields = sorted(
            (f for n, f in fmt.fields.items() if n in wanted and f.kind in ("int", "data_loc", "chars")),
            key=lambda f: f.offset,
        )
        code, pos = "<4xi", 8  # common_pid: offset 4, size 4, in every kernel's common header
        self.fields: list[tuple[str, str]] = []
        for f in fields:
            if f.offset < pos:
                continue
            code += f"{f.offset - pos}x" if f.offset > pos else ""
            if f.kind == "int":
                letter = _INT[f.size]
                code += letter if f.signed else letter.upper()
                how = "int"
                if f.name == "location":
                    how = "location"
                elif f.name == "reason":
                    how = "reason"
                elif f.size == 8 and not f.signed:
                    how = "hex"
            elif f.kind == "data_loc":
                code, how = code + "I", "data_loc"
            else:
                code, how = code + f"{f.size}s", "chars"
            self.fields.append((f.name, how))
            pos = f.offset + f.size
        self.struct = struct.Struct(code)


class RecordDecoder(HeldBack):
    """Raw entries of one CPU -> :class:`~netlab.tracers.decode.records.Record`, the shape the text
    parsers give, so correlation and attribution do not care where a record came from.

    ``location`` and stack addresses become ``function+0xoff/0xsize`` through ``symbolize``;
    ``reason`` becomes the kernel's name from the format's ``__print_symbolic`` table, and is
    absent (not invented) on a kernel whose event has no reason field. Only the fields in
    ``wanted`` are decoded, each event's with one precompiled ``struct`` (a 200,000-drop flood
    is 800,000 records).
    """

    def __init__(
        self,
        formats: list[EventFormat],
        stack_format: EventFormat | None,
        symbolize: Callable[[int], str],
        reasons: dict[int, str],
        *,
        cpu: int,
        wanted: dict[str, frozenset[str]] = WANTED,
    ) -> None:
        self.plans = {f.id: _Plan(f, wanted.get(f.name, wanted["*"])) for f in formats}
        self.stack_format = stack_format
        self.stack_id = stack_format.id if stack_format is not None else None
        self.symbolize = symbolize
        self.reasons = reasons
        self.cpu = cpu
        self._strings: dict[bytes, str] = {}
        super().__init__()

    def feed(self, page: bytes) -> list[Record]:
        """Records completed by one page; the last is held until we know no stack follows it."""
        out: list[Record] = []
        plans, u16 = self.plans, _U16.unpack_from
        for ts, start, end in spans(page):
            type_id = u16(page, start)[0]
            plan = plans.get(type_id)
            if plan is not None:
                if end - start >= plan.struct.size:
                    self._hold(self._record(page, start, ts, plan), out)
            elif type_id == self.stack_id and self._last is not None and self.stack_format is not None:
                addresses = kernel_stack(page[start:end], self.stack_format)
                self._last.stack.extend(self.symbolize(a) for a in addresses)
        return out

    def _record(self, page: bytes, start: int, ts: int, plan: _Plan) -> Record:
        values = plan.struct.unpack_from(page, start)
        fields: dict[str, str] = {}
        for (name, how), value in zip(plan.fields, values[1:], strict=True):
            if how == "hex":
                fields[name] = f"{value:x}"
            elif how == "data_loc":
                at = start + (value & 0xFFFF)
                fields[name] = self._string(page[at : at + (value >> 16)])
            elif how == "location":
                fields[name] = self.symbolize(value)
            elif how == "reason":
                fields[name] = self.reasons.get(value) or f"REASON_{value}"
            elif how == "chars":
                fields[name] = self._string(value)
            else:
                fields[name] = str(value)
        return Record(ts / 1e9, self.cpu, values[0], "", plan.event, fields)

    def _string(self, raw: bytes) -> str:
        text = self._strings.get(raw)
        if text is None:
            text = self._strings[raw] = raw.split(b"\0", 1)[0].decode(errors="replace")
        return text
