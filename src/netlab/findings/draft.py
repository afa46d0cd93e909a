"""The one mutable stage of a trace's result: what the tracer saw, while findings are added.

A tracer returns a :class:`~netlab.tracers.events.TraceResult` of what it saw; the findings
(which rule dropped a packet, what netlab sent, whose a contested drop is) each take drops out,
put drops back and add notes. They do that on a :class:`Draft`, and the result the caller gets
is built from it once (:meth:`Draft.result`) and not edited afterwards.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from netlab.tracers.events import DropEvent, TraceResult


@dataclass
class Draft:
    """The fields of a result that findings change, as lists."""

    drops: list[DropEvent] = field(default_factory=list)
    unplaced: list[DropEvent] = field(default_factory=list)
    contested: list[DropEvent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unattributed: int = 0
    ambiguous: int = 0

    @classmethod
    def of(cls, seen: TraceResult) -> Draft:
        """A draft of what the tracer returned."""
        lists = (list(seen.drops), list(seen.unplaced), list(seen.contested), list(seen.notes))
        return cls(*lists, seen.unattributed, seen.ambiguous)

    def result(self, seen: TraceResult) -> TraceResult:
        """The result: what the tracer saw, with this draft's drops, counts and notes."""
        return dataclasses.replace(
            seen,
            drops=tuple(sorted(self.drops, key=lambda d: d.time)),
            unplaced=tuple(self.unplaced),
            contested=tuple(self.contested),
            notes=tuple(self.notes),
            unattributed=self.unattributed,
            ambiguous=self.ambiguous,
        )
