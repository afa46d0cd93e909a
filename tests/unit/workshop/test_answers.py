"""Lab 06's answer checks: the attendee's answers against what the shipped reports say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netlab.errors import NetlabError
from netlab.workshop import checks
from netlab.workshop.answers import Answer, check, read_answers, scenario_name, truth

ROOT = Path(__file__).resolve().parents[3]
LAB = ROOT / "labs" / "06-kernel-upgrade"
STP = "test_a_port_stp_has_not_opened_drops_frames"


def report(release: str, asserted: dict[str, tuple[str, str]]) -> dict[str, object]:
    return {
        "kernel": {"release": release},
        "scenarios": [
            {
                "scenario": f"scenarios/t.py::{name}",
                "outcome": "passed",
                "drops": [],
                "asserted": [{"location": loc, "reason": reason, "node": "n"}],
            }
            for name, (loc, reason) in asserted.items()
        ],
    }


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    (tmp_path / "a.json").write_text(
        json.dumps(
            report(
                "6.1",
                {
                    "stp": ("br_handle_frame", "NOT_SPECIFIED"),
                    "udp": ("__udp4_lib_rcv", "NO_SOCKET"),
                    "same": ("ip_rcv_core", "OTHERHOST"),
                },
            )
        )
    )
    (tmp_path / "b.json").write_text(
        json.dumps(
            report(
                "7.2",
                {
                    "stp": ("br_handle_frame", "BRIDGE_INGRESS_STP_STATE"),
                    "udp": ("udp_rcv", "NO_SOCKET"),
                    "same": ("ip_rcv_core", "OTHERHOST"),
                },
            )
        )
    )
    return tmp_path


def spec(key: str, kind: str, explains: bool = False) -> Answer:
    return Answer.model_validate(
        {"key": key, "before": "a.json", "after": "b.json", "changes": [kind], "explains": explains}
    )


def test_the_truth_is_computed_from_the_reports(reports: Path) -> None:
    assert truth(reports, spec("r", "reason changed")) == {"stp": {"BRIDGE_INGRESS_STP_STATE"}}
    assert truth(reports, spec("m", "moved")) == {"udp": {"NO_SOCKET"}}


def test_answers_are_right_only_when_whole(reports: Path) -> None:
    moved = spec("moved", "moved")
    assert check(reports, {"moved": ["scenarios/t.py::udp[tracefs]"]}, moved) == (True, "1 of 1 found")
    assert check(reports, {"moved": []}, moved) == (False, "'moved' is not answered yet")
    ok, detail = check(reports, {"moved": ["udp", "same"]}, moved)
    assert not ok and detail == "1 of 1 found; not such a scenario: same"
    assert check(reports, {"moved": "udp"}, moved)[0] is False


def test_the_explained_reason_must_be_new_and_explained(reports: Path) -> None:
    explained = spec("explained", "reason changed", explains=True)
    assert check(reports, {"explained": "bridge_ingress_stp_state"}, explained)[0]
    ok, detail = check(reports, {"explained": "NO_SOCKET"}, explained)
    assert not ok and "not a reason that one of those scenarios newly gives" in detail


def test_a_missing_answers_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NetlabError, match="no answers file yet"):
        read_answers(tmp_path / "nope.yaml")


def test_scenario_names_compare_without_file_and_parameters() -> None:
    assert scenario_name("scenarios/test_x.py::test_y[tracefs]") == scenario_name("test_y") == "test_y"


def test_the_shipped_lab_asks_about_the_stp_case() -> None:
    """Lab 06's reports are a real run: the STP port state case changed its reason there."""
    lab = checks.load(LAB)
    assert lab.topology is None
    (first,) = [c.answer for c in lab.checks if c.answer is not None and c.answer.key == "reason_changed"]
    assert STP in truth(LAB, first)


def test_the_lab_check_reads_the_answers_file(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("reason_changed: []\nmoved: []\nexplained: BRIDGE_INGRESS_STP_STATE\n")
    _, outcomes = checks.run(LAB, answers=answers)
    assert [o.ok for o in outcomes] == [False, False, True]
    assert outcomes[0].detail == "'reason_changed' is not answered yet"
