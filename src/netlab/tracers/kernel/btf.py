"""Byte offsets of struct members, read from the kernel's BTF (``/sys/kernel/btf/vmlinux``).

bpftrace 0.17 resolves ``$skb->dev->name`` by turning the kernel's BTF into C and parsing it
with clang, once per program: most of its start-up, and under TCG most of a scenario. A program
that reads members at offsets this module found once per process starts without clang, and
runs where bpftrace refuses the kernel's BTF (Debian's 5.10) but the file is there.

Only what offsets need is read (the format: linux/Documentation/bpf/btf.rst): the type
section is walked once, struct and union members are kept, and a member inside an anonymous
struct or union (``sk_buff.dev`` is three levels down) is found through it.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path

from netlab.errors import KernelFeatureError

VMLINUX = Path("/sys/kernel/btf/vmlinux")
MAGIC = 0xEB9F
_HEADER = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")
_MEMBER = struct.Struct("<III")
STRUCT, UNION = 4, 5
#: kinds that qualify a type without changing its layout: followed to find a member's struct
_QUALIFIERS = frozenset({8, 9, 10, 11, 18})  # typedef, volatile, const, restrict, type tag
#: bytes after the common 12-byte header: fixed, and per vlen entry
_FIXED = {1: 4, 3: 12, 14: 4, 17: 4}
_PER_ENTRY = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
#: int, pointer, array, struct, union, enum, fwd, typedef, volatile, const, restrict, func,
#: func proto, var, datasec, float, decl tag, type tag, enum64: a later kind's size is unknown
KINDS = range(1, 20)


@dataclass(frozen=True)
class Member:
    name: str
    type_id: int
    bit_offset: int


class Btf:
    """The types of one BTF blob, indexed lazily by name."""

    def __init__(self, data: bytes) -> None:
        if len(data) < _HEADER.size:
            raise KernelFeatureError("the kernel's BTF is truncated")
        magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise KernelFeatureError(f"the kernel's BTF has magic {magic:#x}, not {MAGIC:#x}")
        self._data = data
        self._types = (hdr_len + type_off, hdr_len + type_off + type_len)
        self._strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
        self._starts = self._index()

    def _index(self) -> list[int]:
        """The byte position of each type (index = type id; id 0 is void)."""
        data, (pos, end) = self._data, self._types
        starts = [0]
        while pos < end:
            starts.append(pos)
            info = _TYPE.unpack_from(data, pos)[1]
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            if kind not in KINDS:
                raise KernelFeatureError(f"the kernel's BTF has a type of kind {kind}, which netlab does not know")
            pos += 12 + _FIXED.get(kind, 0) + _PER_ENTRY.get(kind, 0) * vlen
        if pos != end:
            raise KernelFeatureError("the kernel's BTF has a type section that does not end on a type")
        return starts

    def _name(self, offset: int) -> str:
        end = self._strings.index(b"\0", offset)
        return self._strings[offset:end].decode()

    def _string_offset(self, name: str) -> int | None:
        """Where ``name`` is in the string section (names are stored once each)."""
        needle = b"\0" + name.encode() + b"\0"
        at = self._strings.find(needle)
        return None if at < 0 else at + 1

    def _kind(self, type_id: int) -> tuple[int, int, int, int]:
        """(kind, vlen, kind_flag, size or referenced type) of a type."""
        _name_off, info, size_or_type = _TYPE.unpack_from(self._data, self._starts[type_id])
        return (info >> 24) & 0x1F, info & 0xFFFF, info >> 31, size_or_type

    @functools.cache  # noqa: B019 -- one Btf per kernel per process: it lives as long as the cache
    def struct_id(self, name: str) -> int:
        """The id of ``struct name`` (the first with members: forward declarations have none)."""
        offset = self._string_offset(name)
        for type_id in range(1, len(self._starts)) if offset is not None else ():
            name_off, info, _ = _TYPE.unpack_from(self._data, self._starts[type_id])
            if name_off == offset and (info >> 24) & 0x1F == STRUCT and info & 0xFFFF:
                return type_id
        raise KernelFeatureError(f"the kernel's BTF has no struct {name}")

    def members(self, type_id: int) -> list[Member]:
        kind, vlen, bitfields, _ = self._kind(type_id)
        if kind not in (STRUCT, UNION):
            raise KernelFeatureError(f"BTF type {type_id} is not a struct or union")
        base = self._starts[type_id] + 12
        out = []
        for i in range(vlen):
            name_off, member_type, offset = _MEMBER.unpack_from(self._data, base + 12 * i)
            out.append(Member(self._name(name_off), member_type, offset & 0xFFFFFF if bitfields else offset))
        return out

    def _resolved(self, type_id: int) -> int:
        """Through typedefs and qualifiers to the type that has the layout."""
        while True:
            kind, _vlen, _flag, target = self._kind(type_id)
            if kind not in _QUALIFIERS:
                return type_id
            type_id = target

    def _find(self, type_id: int, name: str) -> tuple[int, int] | None:
        """(byte offset, type id) of member ``name``, looking inside anonymous members."""
        for m in self.members(type_id):
            if m.name == name:
                return m.bit_offset // 8, m.type_id
            if not m.name:
                inner = self._resolved(m.type_id)
                if self._kind(inner)[0] in (STRUCT, UNION):
                    found = self._find(inner, name)
                    if found is not None:
                        return m.bit_offset // 8 + found[0], found[1]
        return None

    def offset(self, path: str) -> int:
        """Byte offset of ``struct.member[.member...]``, the members embedded (not pointers):
        ``net_device.nd_net.net`` or ``sock.__sk_common.skc_net``."""
        head, *names = path.split(".")
        type_id, total = self.struct_id(head), 0
        for name in names:
            found = self._find(self._resolved(type_id), name)
            if found is None:
                raise KernelFeatureError(f"the kernel's BTF has no member {name} in {path}")
            total += found[0]
            type_id = found[1]
        return total


def minimal() -> bytes:
    """A BTF blob of one type (``int``): what bpftrace reads as the kernel's BTF when the
    program needs none of it. Why: bpftrace 0.17 loads the kernel's BTF whenever it exists and
    looks names up in it with libbpf's linear search, over and over while it compiles: under TCG
    that was two thirds of its start-up even for a program that reads no struct."""
    types = _TYPE.pack(1, 1 << 24, 4) + struct.pack("<I", 32)  # INT "int", 4 bytes, 32 bits
    strings = b"\0int\0"
    return _HEADER.pack(MAGIC, 1, 0, _HEADER.size, 0, len(types), len(types), len(strings)) + types + strings


@functools.cache
def kernel_btf() -> Btf:
    """The running kernel's BTF, read once per process."""
    try:
        return Btf(VMLINUX.read_bytes())
    except OSError as e:
        raise KernelFeatureError(f"cannot read the kernel's BTF ({VMLINUX}): {e.strerror}") from None
