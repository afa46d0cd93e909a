"""Plain-language explanations of drop reasons, for ``netlab explain`` and the workshops.

The text lives in ``reasons.yaml`` beside this module; names the running kernel knows but the
file does not explain get an honest "no explanation yet" with the kernel's own number.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from netlab.errors import NetlabError

DATA = Path(__file__).with_name("reasons.yaml")


@dataclass(frozen=True)
class Explanation:
    """What a drop reason means."""

    reason: str
    what: str
    causes: tuple[str, ...]
    confirm: str
    fix: str

    def render(self) -> str:
        """The text ``netlab explain`` prints."""
        causes = "\n".join(f"  - {c}" for c in self.causes)
        return (
            f"{self.reason}\n  {self.what}\n\ntypical causes:\n{causes}\n\nhow to confirm:\n  {self.confirm}\n\n"
            f"how to fix:\n  {self.fix}\n"
        )


@cache
def explanations() -> dict[str, Explanation]:
    """Every explained reason."""
    data = yaml.safe_load(DATA.read_text())
    return {name: Explanation(name, e["what"], tuple(e["causes"]), e["confirm"], e["fix"]) for name, e in data.items()}


def explain(reason: str) -> Explanation:
    """The explanation of ``reason`` (case-insensitive); the error lists the explained ones."""
    key = reason.upper().removeprefix("SKB_DROP_REASON_")
    found = explanations().get(key)
    if found is not None:
        return found
    kernel = _running_kernel_reasons()
    if key in kernel.values():
        number = next(n for n, name in kernel.items() if name == key)
        return Explanation(
            key,
            f"netlab has no plain-words text for this one yet. The running kernel reports it as"
            f" SKB_DROP_REASON_{key} (number {number} in its skb:kfree_skb format); the comment above"
            " that name in include/net/dropreason-core.h says what the kernel checked.",
            ("see the kernel's comment for the condition that produces it",),
            "netlab trace LAB --stack: the stack shows which check dropped the packet",
            "depends on the check; the stack and the kernel's comment point at it",
        )
    known = ", ".join(sorted(explanations()))
    raise NetlabError(
        f"no explanation for drop reason '{reason}', and the running kernel does not know it either"
        f" (explained: {known})"
    )


def _running_kernel_reasons() -> dict[int, str]:
    from netlab.tracers.reasons import FORMAT, parse_format

    try:
        return parse_format(FORMAT.read_text())
    except OSError:
        return {}
