"""Markers: a few bytes in a packet's payload that identify it later in captures and traces.

A marker is ``NLMK`` + a 4-byte run id + a 4-byte sequence number. The run id separates the
packets of one injection (or one test) from any other traffic, including another lab's; the
sequence number tells the packets of one burst apart. Tracers that see packet bytes (bpftrace,
captures) find markers by searching for the magic; :func:`find` does it for raw frames.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

MAGIC = b"NLMK"
SIZE = 12


@dataclass(frozen=True)
class Marker:
    """Identifies one injected packet."""

    run: int
    seq: int

    def encode(self) -> bytes:
        """The 12 bytes that go into the payload."""
        return MAGIC + struct.pack("!II", self.run, self.seq)

    def __str__(self) -> str:
        return f"{self.run:08x}:{self.seq}"


def new_run() -> int:
    """A random run id (never 0, so an all-zero payload is never a marker)."""
    return int.from_bytes(os.urandom(4), "big") or 1


def find(data: bytes) -> Marker | None:
    """The first marker in ``data``, or None."""
    at = data.find(MAGIC)
    if at < 0 or at + SIZE > len(data):
        return None
    run, seq = struct.unpack_from("!II", data, at + len(MAGIC))
    return Marker(run, seq)
