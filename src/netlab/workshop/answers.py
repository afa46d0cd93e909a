"""Checks of what an attendee found, for labs that read evidence instead of building a lab.

Lab 06 ships two scenario reports from a real matrix run (6.1 and 7.2); the attendee compares
them and writes what they found in an answers file. The truth is not written in the lab: it is
computed here from the same reports with :func:`netlab.expect.report.changes` (on what the
scenarios asserted), so a lab whose reports are refreshed from a newer run stays right.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from netlab.errors import NetlabError
from netlab.expect.report import changes, load
from netlab.model.yamlsrc import parse_file
from netlab.workshop.explain import explanations

#: the kinds of change an answer can be about (see report.Change)
ChangeKind = Literal["reason changed", "reason appeared", "moved"]


class Answer(BaseModel):
    """One key of the answers file, and what it must hold.

    With ``changes``: the scenarios (test function names) whose asserted drop changed in one
    of these ways from report ``before`` to ``after``, all of them and no other. With
    ``explains``: one reason that a scenario of those changes newly gives, and that
    ``netlab explain`` explains.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    before: str
    after: str
    changes: list[ChangeKind]
    explains: bool = False


def scenario_name(text: str) -> str:
    """``scenarios/test_x.py::test_y[param]`` and ``test_y`` name the same scenario."""
    return text.rsplit("::", 1)[-1].split("[", 1)[0].strip()


def truth(directory: Path, spec: Answer) -> dict[str, set[str]]:
    """The scenarios with a change of the asked kinds, each with the reasons it gives after."""
    before, after = (load(directory / p) for p in (spec.before, spec.after))
    out: dict[str, set[str]] = {}
    for change in changes(before, after, "asserted"):
        if change.kind in spec.changes and isinstance(change.new, tuple):
            reasons = out.setdefault(scenario_name(change.scenario), set())
            if change.new[1]:
                reasons.add(change.new[1])
    return out


def read_answers(path: Path) -> dict[str, Any]:
    """The attendee's answers file (a YAML mapping); a clear message when it is missing."""
    if not path.is_file():
        raise NetlabError(f"{path}: no answers file yet (copy the lab's answers.yaml there and fill it in)")
    data = parse_file(path).data
    if not isinstance(data, dict):
        raise NetlabError(f"{path}: the answers file must be a mapping of keys to answers")
    return data


def check(directory: Path, answers: dict[str, Any], spec: Answer) -> tuple[bool, str]:
    """Compare one answer with the truth; the detail says how far off, not what is missing."""
    expected = truth(directory, spec)
    given = answers.get(spec.key)
    if given in (None, "", []):
        return False, f"'{spec.key}' is not answered yet"
    if spec.explains:
        reason = str(given).strip().upper()
        new_reasons = set().union(*expected.values()) if expected else set()
        if reason not in new_reasons:
            return False, f"{reason} is not a reason that one of those scenarios newly gives"
        if reason not in explanations():
            return False, f"netlab explain has no entry for {reason}"
        return True, f"{reason}: netlab explain {reason} tells what the kernel checked"
    if not isinstance(given, list):
        return False, f"'{spec.key}' must be a list of scenario names"
    named = {scenario_name(str(x)) for x in given}
    right, wrong = named & set(expected), named - set(expected)
    detail = f"{len(right)} of {len(expected)} found"
    if wrong:
        detail += f"; not such a scenario: {', '.join(sorted(wrong))}"
    return right == set(expected) and not wrong, detail
