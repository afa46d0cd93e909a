"""Drop-reason names, read from the running kernel's ``skb:kfree_skb`` format, never hard-coded.

The numbering of ``enum skb_drop_reason`` changes between kernel releases; the tracepoint's
``print fmt`` carries the kernel's own table (``__print_symbolic(REC->reason, { 2,
"NOT_SPECIFIED" }, ...)``), so that table is the truth for this machine.
"""

from __future__ import annotations

import re
from functools import cache

from netlab.errors import KernelFeatureError
from netlab.runtime.tracebuffers import TRACEFS

FORMAT = TRACEFS / "events" / "skb" / "kfree_skb" / "format"
_PAIR = re.compile(r'\{\s*(\d+)\s*,\s*"([A-Z0-9_]+)"\s*\}')


def parse_format(text: str) -> dict[int, str]:
    """The reason table in a ``format`` file's print fmt (empty if the event has no reason)."""
    fmt = text[text.find("print fmt:") :]
    start = fmt.find("__print_symbolic(REC->reason")
    return {int(n): name for n, name in _PAIR.findall(fmt[start:])} if start >= 0 else {}


@cache
def reasons() -> dict[int, str]:
    """number -> name on the running kernel."""
    try:
        table = parse_format(FORMAT.read_text())
    except OSError:
        raise KernelFeatureError(f"cannot read {FORMAT}: is tracefs mounted?") from None
    if not table:
        raise KernelFeatureError("this kernel's skb:kfree_skb has no drop reason (added in Linux 5.17)")
    return table


@cache
def available() -> bool:
    """Does the running kernel's ``skb:kfree_skb`` carry a reason (5.17 and later)?"""
    try:
        return "field:enum skb_drop_reason reason;" in FORMAT.read_text() or bool(reasons())
    except (OSError, KernelFeatureError):
        return False


def name(number: int) -> str:
    """The reason's name, or ``REASON_<n>`` when the kernel's table does not have it (or
    cannot be read: parsing recorded output on another machine)."""
    try:
        return reasons().get(number, f"REASON_{number}")
    except KernelFeatureError:
        return f"REASON_{number}"
