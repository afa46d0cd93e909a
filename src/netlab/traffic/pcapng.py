"""Write pcapng files: one interface block per ``node:interface``, nanosecond timestamps, and a
packet comment on each frame that has something to say (stock Wireshark shows it and filters on
``frame.comment``).

The format is the IETF draft's (draft-ietf-opsawg-pcapng): a Section Header Block, Interface
Description Blocks, then Enhanced Packet Blocks, every block and option padded to 32 bits.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from netlab.traffic.packet import Frame
from netlab.traffic.pcap import LINKTYPE_ETHERNET, SNAPLEN

SHB, IDB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_END, OPT_COMMENT = 0, 1
SHB_USERAPPL = 4
IF_NAME, IF_DESCRIPTION, IF_TSRESOL = 2, 3, 9
#: EPB flags (epb_flags): inbound or outbound, as the capture saw the frame
EPB_FLAGS = 2
INBOUND, OUTBOUND = 1, 2


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _options(*pairs: tuple[int, bytes]) -> bytes:
    body = b"".join(_option(code, value) for code, value in pairs)
    return body + struct.pack("<HH", OPT_END, 0) if body else b""


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


class PcapngWriter:
    """A pcapng file written as frames arrive; interfaces are declared on first use."""

    def __init__(self, path: Path, application: str = "netlab") -> None:
        self._file: BinaryIO = path.open("wb")
        self._interfaces: dict[str, int] = {}
        body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + _options((SHB_USERAPPL, application.encode()))
        self._file.write(_block(SHB, body))

    def interface(self, name: str, description: str = "") -> int:
        """The id of interface ``name`` (``node:ifname``), declared the first time."""
        if name not in self._interfaces:
            options = [(IF_NAME, name.encode()), (IF_TSRESOL, bytes([9]))]
            if description:
                options.append((IF_DESCRIPTION, description.encode()))
            body = struct.pack("<HHI", LINKTYPE_ETHERNET, 0, SNAPLEN) + _options(*options)
            self._file.write(_block(IDB, body))
            self._interfaces[name] = len(self._interfaces)
        return self._interfaces[name]

    def write(self, interface: str, frame: Frame, comment: str | None = None) -> None:
        """One frame seen on ``interface``, with a comment if there is one."""
        nanoseconds = round(frame.timestamp * 1e9)
        data = frame.data[:SNAPLEN]
        options = [(EPB_FLAGS, struct.pack("<I", OUTBOUND if frame.outgoing else INBOUND))]
        if comment:
            options.append((OPT_COMMENT, comment.encode()))
        body = (
            struct.pack(
                "<IIIII",
                self.interface(interface),
                nanoseconds >> 32,
                nanoseconds & 0xFFFFFFFF,
                len(data),
                frame.wire_length,
            )
            + _pad(data)
            + _options(*options)
        )
        self._file.write(_block(EPB, body))

    def close(self) -> None:
        """Close the file."""
        self._file.close()
