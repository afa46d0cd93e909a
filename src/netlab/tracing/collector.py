"""What a trace runs beside the traffic, one lifecycle for all: the tracer's session, the rule
counters (:mod:`netlab.tracing.rules`), the nftables rule trace (:mod:`netlab.tracing.nftrace`)
and the capture (:mod:`netlab.tracing.capture`).

:meth:`Collector.refusal` says, before anything starts, whether it can run here and why not;
:meth:`~Collector.start` returns once it is collecting; :meth:`~Collector.stop` releases what
``start`` made (idempotent, and called after a failed start too); :meth:`~Collector.add` then
adds what it found to the result's :class:`~netlab.findings.draft.Draft`. The trace starts the
collectors in order and stops and asks them in reverse, so the one started last, nearest the
packets, has its say first.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from netlab.findings.draft import Draft


class Collector(abc.ABC):
    """One collector of one trace."""

    #: what the result's notes call it when it cannot run
    name: ClassVar[str]

    def refusal(self) -> str | None:
        """Why it cannot run here (None: it can); a trace runs on without it and says so."""
        return None

    @abc.abstractmethod
    def start(self) -> None:
        """Start collecting; returns once it is."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop and release what ``start`` made (idempotent; also after a failed start)."""

    def add(self, draft: Draft) -> None:  # noqa: B027 -- most collectors only name or place drops
        """Add what it found to the result, once every collector has stopped."""
