"""Member offsets from BTF blobs built here type by type, in the kernel's layout rules: forward
declarations, members inside anonymous structs and unions, typedef and const on the way,
bitfield offsets; and the messages for a blob that cannot be read."""

from __future__ import annotations

import struct

import pytest

from netlab.errors import KernelFeatureError
from netlab.tracers.kernel.btf import Btf, minimal


class Blob:
    """A BTF blob under construction: types get ids from 1 in the order they are added."""

    def __init__(self) -> None:
        self.types = b""
        self.strings = b"\0"

    def name(self, text: str) -> int:
        if not text:
            return 0
        at = self.strings.find(b"\0" + text.encode() + b"\0")
        if at >= 0:
            return at + 1
        offset = len(self.strings)
        self.strings += text.encode() + b"\0"
        return offset

    def add(self, name: str, kind: int, size_or_type: int, tail: bytes = b"", vlen: int = 0, flag: int = 0) -> None:
        info = (flag << 31) | (kind << 24) | vlen
        self.types += struct.pack("<III", self.name(name), info, size_or_type) + tail

    def record(self, kind: int, name: str, size: int, members: list[tuple[str, int, int]], flag: int = 0) -> None:
        tail = b"".join(struct.pack("<III", self.name(n), t, off) for n, t, off in members)
        self.add(name, kind, size, tail, vlen=len(members), flag=flag)

    def bytes(self, magic: int = 0xEB9F) -> bytes:
        header = struct.pack("<HBBIIIII", magic, 1, 0, 24, 0, len(self.types), len(self.types), len(self.strings))
        return header + self.types + self.strings


def skb_like() -> Blob:
    b = Blob()
    b.add("int", 1, 4, struct.pack("<I", 32))  # 1
    b.add("sk_buff", 7, 0)  # 2: a forward declaration, no members
    b.add("", 2, 4)  # 3: pointer to net_device
    b.record(4, "net_device", 16, [("ifindex", 1, 64)])  # 4
    b.record(5, "", 8, [("dev", 3, 0), ("dev_scratch", 1, 0)])  # 5: anonymous union
    b.add("wrapped", 8, 5)  # 6: typedef of the union
    b.add("", 10, 6)  # 7: const of the typedef
    b.record(4, "", 16, [("next", 3, 0), ("", 7, 64)])  # 8: anonymous struct
    b.record(4, "sk_buff", 32, [("", 8, 0), ("len", 1, 128), ("mac_header", 1, (16 << 24) | 176)], flag=1)  # 9
    b.add("fn", 13, 1, struct.pack("<II", 0, 1), vlen=1)  # 10: a function prototype, skipped over
    return b


def test_a_member_is_found_through_anonymous_members_and_qualifiers() -> None:
    btf = Btf(skb_like().bytes())
    assert btf.struct_id("sk_buff") == 9  # not the forward declaration (2)
    assert btf.offset("sk_buff.dev") == 8
    assert btf.offset("sk_buff.next") == 0
    assert btf.offset("sk_buff.len") == 16
    assert btf.offset("sk_buff.mac_header") == 22  # bitfield: the offset is the low 24 bits
    assert btf.offset("net_device.ifindex") == 8


def test_an_embedded_member_path_adds_up() -> None:
    b = skb_like()
    b.record(4, "ns_common", 8, [("pad", 1, 0), ("inum", 1, 32)])  # 11
    b.record(4, "net", 24, [("refs", 1, 0), ("ns", 11, 64)])  # 12
    assert Btf(b.bytes()).offset("net.ns.inum") == 12


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nope.dev", "the kernel's BTF has no struct nope"),
        ("sk_buff.nope", "the kernel's BTF has no member nope in sk_buff.nope"),
        ("int.x", "the kernel's BTF has no struct int"),
    ],
)
def test_what_is_not_there_is_named(path: str, message: str) -> None:
    with pytest.raises(KernelFeatureError, match=message):
        Btf(skb_like().bytes()).offset(path)


def test_a_blob_that_is_not_btf_is_refused() -> None:
    with pytest.raises(KernelFeatureError, match="magic 0x1234"):
        Btf(skb_like().bytes(magic=0x1234))
    with pytest.raises(KernelFeatureError, match="truncated"):
        Btf(b"\x9f\xeb")
    unknown = Blob()
    unknown.add("x", 30, 0, b"\0" * 4)  # a kind from a future kernel: its size is unknown
    with pytest.raises(KernelFeatureError, match="a type of kind 30, which netlab does not know"):
        Btf(unknown.bytes())


def test_the_stand_in_for_the_kernels_btf_is_btf_with_one_type() -> None:
    """What bpftrace is given instead of the kernel's BTF (see bpftrace.py): valid, and tiny."""
    stand_in = Btf(minimal())
    with pytest.raises(KernelFeatureError, match="no struct sk_buff"):
        stand_in.offset("sk_buff.dev")
    assert len(minimal()) < 64
