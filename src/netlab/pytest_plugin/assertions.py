"""Assertions that read like the question a user asks, and fail with what *was* seen.

``assert_dropped(result, Drop("nft_do_chain", "NETFILTER_DROP"), node="host")`` fails with the
table of drops the tracer observed (node, device, function, reason, count) and the packet
paths, so a changed kernel shows its new behaviour in the failure message itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import pytest

from netlab.expect.drops import Drop, NewBehaviour, Untraced
from netlab.tracers.events import DropEvent, Location, TraceResult, devices, reason_text

NEW_PREFIX = "new behaviour"
#: where the running test's successful expectations go: the ``netlab_trace`` fixture's list, for
#: the test's duration (:func:`recording`); outside a test using it, nowhere
_ASSERTED: ContextVar[list[Drop | Untraced] | None] = ContextVar("netlab_asserted", default=None)


@contextlib.contextmanager
def recording() -> Iterator[list[Drop | Untraced]]:
    """Collect what the assertions in the ``with`` block confirmed (for the scenario report)."""
    asserted: list[Drop | Untraced] = []
    token = _ASSERTED.set(asserted)
    try:
        yield asserted
    finally:
        _ASSERTED.reset(token)


def _confirmed(expect: Drop | Untraced) -> None:
    asserted = _ASSERTED.get()
    if asserted is not None:
        asserted.append(expect)


class DropAssertionError(AssertionError):
    """An expectation about drops, paths or counters did not hold."""


def observed(result: TraceResult) -> str:
    """What the tracer saw, as an indented table (for failure messages)."""
    rows = result.summary()
    lines = [f"observed by {result.tracer} in lab {result.lab} ({result.total_drops} drops):"]
    if not rows:
        lines.append("    (no drops)")
    for node, device, function, reason, count in rows[:20]:
        lines.append(f"    {count:>5} x {function} {reason_text(reason)}  node={node or '?'} device={device or '-'}")
    if len(rows) > 20:
        lines.append(f"    ... and {len(rows) - 20} more kinds")
    if result.paths:
        taken = {" -> ".join(devices(p)) for p in result.paths}
        lines.append("  packet paths:")
        lines += [f"    {p}" for p in sorted(taken)[:10]]
    for what in ("lost", "ambiguous", "unattributed"):
        n = getattr(result, what)
        if n:
            lines.append(f"  {what}: {n}")
    return "\n".join(lines)


def _new(result: TraceResult, expect: NewBehaviour) -> None:
    pytest.skip(f"{NEW_PREFIX}: {expect}; {observed(result)}")


def matching(result: TraceResult, expect: Drop, *, marker_run: int | None = None) -> list[DropEvent]:
    """Drops of ``result`` that fit ``expect`` (and carry a marker of ``marker_run``, if given)."""
    hits = [d for d in result.drops if expect.matches(d)]
    if marker_run is not None:
        hits = [d for d in hits if d.packet.marker and d.packet.marker.startswith(f"{marker_run:08x}:")]
    return hits


def assert_dropped(
    result: TraceResult,
    expect: Drop | Untraced | NewBehaviour,
    *,
    count: int | None = None,
    at_least: int = 1,
    marker_run: int | None = None,
) -> list[DropEvent]:
    """These packets were dropped at this function for this reason (``count`` exactly, or at least one).

    With :class:`Untraced` (a kernel that frees them without the tracepoint): no drop was traced
    in its node.
    """
    if isinstance(expect, NewBehaviour):
        _new(result, expect)
        return []
    if isinstance(expect, Untraced):
        traced = [d for d in result.drops if expect.counts(d.node, d.base)]
        if traced:
            raise DropAssertionError(f"expected {expect}, but {len(traced)} were traced\n{observed(result)}")
        _confirmed(expect)
        return []
    hits = matching(result, expect, marker_run=marker_run)
    if expect.reason is not None and result.drops and all(d.reason is None for d in result.drops):
        raise DropAssertionError(
            f"expected drops with reason {expect.reason}, but this kernel has no drop reasons (they came in 5.17):"
            f" expect Drop({expect.function!r}, None) here, matching on the location\n{observed(result)}"
        )
    totals: int = sum(
        n for (node, function, reason), n in result.totals.items() if expect.matches(_as_event(node, function, reason))
    )
    seen = len(hits) + totals
    wanted = f"exactly {count}" if count is not None else f"at least {at_least}"
    if (count is not None and seen != count) or (count is None and seen < at_least):
        raise DropAssertionError(f"expected {wanted} drop(s) at {expect}, saw {seen}\n{observed(result)}")
    _confirmed(expect)
    return hits


def assert_not_dropped(result: TraceResult, expect: Drop | NewBehaviour) -> None:
    """No drop fits ``expect`` (e.g. "with the ACCEPT rule, nothing dies in nft_do_chain")."""
    if isinstance(expect, NewBehaviour):
        _new(result, expect)
        return
    hits = matching(result, expect)
    if hits:
        raise DropAssertionError(f"expected no drop at {expect}, saw {len(hits)}\n{observed(result)}")


def assert_path(result: TraceResult, expected: list[str]) -> None:
    """Some packet crossed exactly these devices, in this order."""
    seen = [devices(p) for p in result.paths]
    if expected not in seen:
        raise DropAssertionError(f"no packet took the path {' -> '.join(expected)}\n{observed(result)}")


def assert_counter(result: TraceResult, node: str, name: str, delta: int, scope: str | None = None) -> None:
    """Counter ``name`` of ``node`` moved by exactly ``delta`` during the trace."""
    moved = result.counter(node, name, scope)
    if moved != delta:
        nearby = [f"    {c.scope} {c.name} {c.delta:+d}" for c in result.counters if c.node == node][:15]
        raise DropAssertionError(
            f"expected {node} {scope + ' ' if scope else ''}{name} to move by {delta:+d}, it moved by {moved:+d}\n"
            "  counters that moved in that node:\n" + ("\n".join(nearby) or "    (none)")
        )


def _as_event(node: str | None, function: str, reason: str | None) -> DropEvent:

    return DropEvent(time=0.0, location=Location(function), reason=reason, node=node, device=None)
