"""A plan's netlink requests as bytes: what the plan cache keeps of them beside the plan.

pyroute2 builds each request once (:func:`netlab.apply.rtnl.compile_plan`), when a file is
planned afresh; a file brought up again sends the same bytes from the cache without importing
pyroute2, whose import and message building were most of a cached ``up``'s Python. The one value
that differs between runs, the fd of the namespace a veth's peer goes to, is written into its
place in the bytes (:attr:`Request.fd_at`) as the request is sent.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

#: the fd a request is built with where the real one goes in as it is sent: no fd is this large
FD_PLACEHOLDER = 0x7FFF_FFF0
_FD = struct.Struct("I")


@dataclass(frozen=True)
class Request:
    """One step's request: ``raw`` with the peer namespace's fd at ``fd_at`` (None: it has none)."""

    raw: bytes
    fd_at: int | None = None
    peer_netns: str | None = None

    def bound(self, fd_of: Callable[[str], int]) -> bytes:
        """The bytes to send, with the real fd of the peer's namespace (``fd_of(netns)``) in place."""
        if self.fd_at is None or self.peer_netns is None:
            return self.raw
        raw = bytearray(self.raw)
        _FD.pack_into(raw, self.fd_at, fd_of(self.peer_netns))
        return bytes(raw)


def located(raw: bytes, peer_netns: str | None) -> Request:
    """A request built with :data:`FD_PLACEHOLDER` for ``peer_netns``'s fd, with where it is."""
    if peer_netns is None:
        return Request(raw)
    pattern = _FD.pack(FD_PLACEHOLDER)
    at = raw.find(pattern)
    if at < 0 or raw.find(pattern, at + 1) >= 0:
        raise ValueError(f"the namespace fd is not in the request exactly once ({raw.hex()})")
    return Request(raw, at, peer_netns)
