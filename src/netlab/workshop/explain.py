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
    if found is None:
        known = ", ".join(sorted(explanations()))
        raise NetlabError(f"no explanation for drop reason '{reason}' (explained: {known})")
    return found
