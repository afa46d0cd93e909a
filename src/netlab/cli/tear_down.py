"""What ``netlab down`` does: one body, whether click parsed the arguments (:mod:`netlab.cli.lifecycle`)
or the plain ``netlab down NAME...`` of :mod:`netlab.cli.entry` did. It imports no more than a
teardown needs (no planner, no model), so a plain ``down`` stays a few tens of milliseconds."""

from __future__ import annotations

from collections.abc import Sequence

from netlab import teardown
from netlab.cli.commands import err
from netlab.errors import LabStateError
from netlab.runtime.netns import require_root


def tear_down(labs: Sequence[str], *, missing_ok: bool = False) -> None:
    """Tear down each lab; one that is not up does not keep the others up."""
    require_root()
    failed: list[LabStateError] = []
    for lab in labs:
        try:
            removal = teardown.down(lab, missing_ok=missing_ok)
        except LabStateError as exc:
            failed.append(exc)
            continue
        extra = f", killed {len(removal.killed)} processes" if removal.killed else ""
        print(f"{lab}: removed {len(removal.namespaces)} namespaces{extra}", flush=True)
        for left in removal.skipped:
            err(f"{lab}: left {left}")
    if len(failed) == 1:
        raise failed[0]
    if failed:
        raise LabStateError("; ".join(str(e).split("\n", 1)[0] for e in failed))
