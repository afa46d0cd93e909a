"""Expectations as data: a drop (function + reason), possibly different per kernel version.

    STP = by_kernel({
        ">=5.17": Drop("stp_pdu_rcv", "NOT_SPECIFIED"),     # LLC built in: STP's handler frees it
        "<5.17": Drop("__netif_receive_skb_core", None),    # no drop reasons before 5.17
    })

``by_kernel`` picks the entry whose range contains the running kernel. On a kernel outside
every range it returns :class:`NewBehaviour`, and the assertion reports what was observed as
new instead of guessing which old expectation still applies.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from netlab.tracers.events import DropEvent, base_function

T = TypeVar("T")
_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_RANGE = re.compile(r"^\s*(>=|<=|>|<|==)?\s*(\d+(?:\.\d+){0,2})\s*$")


@dataclass(frozen=True)
class Drop:
    """A drop the kernel should make: function (compared without compiler suffixes) and reason."""

    function: str | None
    reason: str | None
    node: str | None = None
    #: text the firewall rule that dropped it must contain ("policy DROP", "-p udp"); see
    #: :mod:`netlab.tracing.rules`
    rule: str | None = None

    def matches(self, event: DropEvent) -> bool:
        """Does ``event`` fit this expectation?"""
        if self.function is not None and event.base != base_function(self.function):
            return False
        if self.reason is not None and event.reason != self.reason:
            return False
        if self.rule is not None and (event.rule is None or self.rule not in event.rule):
            return False
        return self.node is None or event.node == self.node

    def __str__(self) -> str:
        where = f" in node {self.node}" if self.node else ""
        rule = f" by a rule with '{self.rule}'" if self.rule else ""
        return f"{self.function or 'any function'} {self.reason or 'any reason'}{where}{rule}"


@dataclass(frozen=True)
class Untraced:
    """The kernel frees these packets without firing ``skb:kfree_skb`` (before 5.17 many paths
    used ``__kfree_skb``, which has no tracepoint): a tracer sees nothing, and ``why`` says so.
    Asserting it checks that nothing was traced in ``node``, so a kernel that starts reporting
    the drop shows up as a failure to update, not as silence. ``within``: only drops in
    functions whose names start so count (``("tcp_",)``: the layer the packets die in), so a
    neighbour's multicast that IP drops meanwhile is not taken for them; on a kernel without
    reasons the location is all there is to tell them apart."""

    why: str
    node: str | None = None
    within: tuple[str, ...] = ()
    function: None = None
    reason: None = None

    def counts(self, node: str | None, function: str) -> bool:
        """Would a drop at ``function`` in ``node`` contradict this expectation?"""
        return (self.node is None or node == self.node) and (not self.within or function.startswith(self.within))

    def __str__(self) -> str:
        where = f" in node {self.node}" if self.node else ""
        layer = f" in {'/'.join(f + '*' for f in self.within)}" if self.within else ""
        return f"no traced drop{layer}{where} ({self.why})"


@dataclass(frozen=True)
class NewBehaviour:
    """No expectation covers this kernel: observed drops are to be reported, not judged."""

    kernel: str
    ranges: tuple[str, ...]

    def __str__(self) -> str:
        return f"no expectation for kernel {self.kernel} (ranges: {', '.join(self.ranges)})"


def kernel_release() -> str:
    """The running kernel's release string."""
    return platform.release()


def parse_version(text: str) -> tuple[int, int, int]:
    """``6.18.44-fc-v657`` -> (6, 18, 44)."""
    m = _VERSION.match(text)
    if m is None:
        raise ValueError(f"not a kernel version: {text!r}")
    return int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)


def in_range(version: tuple[int, int, int], spec: str) -> bool:
    """Does ``version`` satisfy ``spec`` (``*``, ``>=6.8``, ``5.17-6.7``, ``>=5.17,<6.8``)?"""
    spec = spec.strip()
    if spec == "*":
        return True
    if "," in spec:
        return all(in_range(version, part) for part in spec.split(","))
    if "-" in spec and not spec.startswith(("<", ">", "=")):
        low, high = spec.split("-", 1)
        parts = len(high.split("."))  # "6.7" includes every 6.7.x
        return parse_version(low) <= version and version[:parts] <= parse_version(high)[:parts]
    m = _RANGE.match(spec)
    if m is None:
        raise ValueError(f"bad kernel range {spec!r} (use *, >=6.8, <6.0, 5.17-6.7)")
    op, bound = m.group(1) or "==", parse_version(m.group(2))
    return {
        ">=": version >= bound,
        "<=": version <= bound,
        ">": version > bound,
        "<": version < bound,
        "==": version[: len(m.group(2).split("."))] == bound[: len(m.group(2).split("."))],
    }[op]


def by_kernel(table: Mapping[str, T], release: str | None = None) -> T | NewBehaviour:
    """The entry of ``table`` whose range contains the running (or given) kernel."""
    release = release or kernel_release()
    version = parse_version(release)
    for spec, value in table.items():
        if in_range(version, spec):
            return value
    return NewBehaviour(release, tuple(table))
