"""Sending on a packet socket when the device's egress refuses: retried while it is a full queue,
ended with the reason when it refuses for good (a qdisc or tc filter dropping every frame)."""

from __future__ import annotations

import errno
import socket
from typing import Any, cast

import pytest

from netlab.errors import NetlabError
from netlab.runtime import wait
from netlab.traffic.packet import PacketSocket


class Refusing:
    """A socket whose send fails with ENOBUFS ``times`` times (forever: -1), then succeeds."""

    def __init__(self, times: int) -> None:
        self.times, self.tries, self.sent = times, 0, 0

    def send(self, _frame: bytes) -> int:
        self.tries += 1
        if self.times < 0 or self.tries <= self.times:
            raise OSError(errno.ENOBUFS, "No buffer space available")
        self.sent += 1
        return len(_frame)


def packet_socket(fake: Any) -> PacketSocket:
    return PacketSocket(cast(socket.socket, fake), "lab.ns1", "veth1")


def test_a_full_queue_is_waited_out() -> None:
    fake = Refusing(5)
    assert packet_socket(fake).send([b"a", b"b"]) == 2
    assert fake.tries == 7 and fake.sent == 2


def test_an_egress_that_drops_everything_ends_the_send(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wait, "FRAME_REFUSED", wait.FRAME_REFUSED.within(0.05))
    fake = Refusing(-1)
    with pytest.raises(NetlabError, match=r"egress refused frame 1 for 0.05 s .*tc -s qdisc show dev veth1.*0 frames"):
        packet_socket(fake).send([b"a"])
    assert fake.tries > 1
