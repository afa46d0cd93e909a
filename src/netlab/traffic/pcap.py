"""Write captures as pcap files (nanosecond timestamps, Ethernet), readable by tcpdump and Wireshark."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from netlab.traffic.packet import Frame

MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535


class PcapWriter:
    """Appends frames to a pcap file as they arrive (so a Ctrl-C keeps what was captured)."""

    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("wb")
        self._file.write(struct.pack("<IHHiIII", MAGIC_NS, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        self._file.flush()

    def write(self, frame: Frame) -> None:
        """One record."""
        sec = int(frame.timestamp)
        nsec = min(round((frame.timestamp - sec) * 1e9), 999_999_999)
        data = frame.data[:SNAPLEN]
        self._file.write(struct.pack("<IIII", sec, nsec, len(data), frame.wire_length) + data)
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def write(path: Path, frames: Iterable[Frame]) -> int:
    """Write ``frames`` to a new pcap file; returns how many."""
    writer = PcapWriter(path)
    count = 0
    try:
        for frame in frames:
            writer.write(frame)
            count += 1
    finally:
        writer.close()
    return count
