"""Plain-language explanations of drop reasons, for ``netlab explain`` and the workshops.

The text lives in ``reasons.yaml`` beside this module; names the running kernel knows but the
file does not explain get an honest "no explanation yet" with the kernel's own number.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import yaml

from netlab.errors import NetlabError
from netlab.tracers.kernel.reasons import FORMAT, parse_format

DATA = Path(__file__).with_name("reasons.yaml")


KERNEL_REASONS = Path(__file__).with_name("kernel_reasons.json")


@dataclass(frozen=True)
class Explanation:
    """What a drop reason means."""

    reason: str
    what: str
    causes: tuple[str, ...]
    confirm: str
    fix: str
    #: the kernels known to report it (the matrix's recorded tables, and the running kernel)
    kernels: tuple[str, ...] = ()

    def render(self) -> str:
        """The text ``netlab explain`` prints."""
        causes = "\n".join(f"  - {c}" for c in self.causes)
        kernels = f"\nreported by: {', '.join(self.kernels)}\n" if self.kernels else ""
        return (
            f"{self.reason}\n  {self.what}\n\ntypical causes:\n{causes}\n\nhow to confirm:\n  {self.confirm}\n\n"
            f"how to fix:\n  {self.fix}\n{kernels}"
        )


@cache
def explanations() -> dict[str, Explanation]:
    """Every explained reason."""
    data = yaml.safe_load(DATA.read_text())
    return {name: Explanation(name, e["what"], tuple(e["causes"]), e["confirm"], e["fix"]) for name, e in data.items()}


@cache
def kernel_tables() -> dict[str, frozenset[str]]:
    """Reason names by kernel release: the matrix kernels' recorded tables and the running one.

    5.10 is there with an empty table: it has no drop reasons at all.
    """
    tables = {k: frozenset(v) for k, v in json.loads(KERNEL_REASONS.read_text())["kernels"].items()}
    running = _running_kernel_reasons()
    if running:
        tables[platform.release()] = frozenset(running.values())
    return tables


def kernels_with(reason: str) -> tuple[str, ...]:
    """The known kernels that report ``reason``."""
    return tuple(k for k, names in sorted(kernel_tables().items()) if reason in names)


def explain(reason: str) -> Explanation:
    """The explanation of ``reason`` (case-insensitive); the error lists the explained ones.

    A reason netlab has no text for, but a known kernel reports, gets what is known: the
    kernel's name for it, the kernels that have it, and where the kernel documents it.
    """
    key = reason.upper().removeprefix("SKB_DROP_REASON_")
    kernels = kernels_with(key)
    found = explanations().get(key)
    if found is not None:
        return replace(found, kernels=kernels)
    if kernels:
        running = _running_kernel_reasons()
        number = next(
            (f" (number {n} in the running kernel's skb:kfree_skb format)" for n, v in running.items() if v == key), ""
        )
        return Explanation(
            key,
            f"netlab has no plain-words text for this one yet. The kernel calls it SKB_DROP_REASON_{key}{number};"
            " the comment above that name in include/net/dropreason-core.h (include/net/dropreason.h before"
            " 6.4) says what the kernel checked.",
            ("see the kernel's comment for the condition that produces it",),
            "netlab trace LAB --stack: the stack shows which check dropped the packet",
            "depends on the check; the stack and the kernel's comment point at it",
            kernels,
        )
    known = ", ".join(sorted(explanations()))
    raise NetlabError(
        f"no explanation for drop reason '{reason}', and no known kernel reports it"
        f" ({', '.join(sorted(kernel_tables())) or 'no tables'}; explained: {known})"
    )


def _running_kernel_reasons() -> dict[int, str]:

    try:
        return parse_format(FORMAT.read_text())
    except OSError:
        return {}
