"""Sending a plan's netlink requests (:mod:`netlab.plan.requests`) in batches: the part of
applying a plan that needs no message library.
"""

from __future__ import annotations

import errno as errno_mod
import os
import socket

from netlab.plan.steps import Step
from netlab.runtime import netlink as nl
from netlab.runtime.netns import open_fd


class NetnsFds:
    """The fds of the namespaces veth peers are sent to, opened once each while a plan applies."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def fd(self, netns: str) -> int:
        if netns not in self._fds:
            self._fds[netns] = open_fd(netns)
        return self._fds[netns]

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class NetlinkStepError(Exception):
    """The kernel refused ``step``; ``detail`` is its message."""

    def __init__(self, step: Step, err: int, detail: str) -> None:
        super().__init__(detail)
        self.step = step
        self.errno = err
        self.detail = detail


def send_batch(sock: socket.socket, items: list[tuple[Step, bytes]]) -> None:
    """Send ``items`` (:func:`netlab.runtime.netlink.exchange`: as few datagrams as fit, every
    ack read); raise :class:`NetlinkStepError` for the first step the kernel refused."""
    try:
        answers = nl.exchange(sock, [raw for _step, raw in items])
    except nl.NoAnswerError as exc:
        pending = ", ".join(items[i][0].describe() for i in exc.pending)
        raise NetlinkStepError(
            items[exc.pending[0]][0],
            errno_mod.ETIMEDOUT,
            f"no answer from the kernel within {nl.TIMEOUT:.0f}s for: {pending}",
        ) from None
    for (step, _raw), answer in zip(items, answers, strict=True):
        if answer.errno:
            raise NetlinkStepError(step, answer.errno, answer.detail)
