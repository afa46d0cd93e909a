"""The drop-reason catalogue, from a matrix's data: defined, reproduced, explained, unreachable."""

from __future__ import annotations

import json
from pathlib import Path

from netlab.expect import catalogue
from netlab.expect.catalogue import Kernel

KERNELS = [
    Kernel("5.10", "5.10.0-32-amd64", frozenset()),
    Kernel("6.1", "6.1.0-50-amd64", frozenset({"NO_SOCKET", "QDISC_DROP", "NOT_SPECIFIED", "MAX"})),
    Kernel("7.2", "7.2.13+deb14-amd64", frozenset({"NO_SOCKET", "QDISC_DROP", "TCP_LISTEN_OVERFLOW", "NOT_SPECIFIED"})),
]


def cell(outcome: str, *reasons: str | None) -> dict[str, object]:
    return {"outcome": outcome, "asserted": [{"location": "f", "reason": r, "node": "n"} for r in reasons]}


MATRIX = {
    "scenarios": [
        {
            "scenario": "scenarios/test_x.py::test_udp",
            "cells": {
                "5.10.0-32-amd64": cell("passed", None),
                "6.1.0-50-amd64": cell("passed", "NO_SOCKET"),
                "7.2.13+deb14-amd64": cell("failed", "NO_SOCKET"),  # a failed cell reproduces nothing
            },
        },
        {
            "scenario": "scenarios/test_x.py::test_listen",
            "cells": {"7.2.13+deb14-amd64": cell("passed", "TCP_LISTEN_OVERFLOW")},
        },
    ]
}


def test_cells_say_reproduced_defined_or_not_defined() -> None:
    found = catalogue.build(KERNELS, MATRIX, {"NO_SOCKET"}, {"QDISC_DROP": "why not"})
    rows = {r.reason: r for r in found.rows}
    assert "MAX" not in rows
    assert [rows["NO_SOCKET"].cell(k) for k in KERNELS] == ["not defined", "reproduced", "defined"]
    assert rows["NO_SOCKET"].explained and not rows["TCP_LISTEN_OVERFLOW"].explained
    assert rows["TCP_LISTEN_OVERFLOW"].reproduced == {"scenarios/test_x.py::test_listen": ("7.2",)}
    assert rows["QDISC_DROP"].unreachable == "why not"
    assert found.coverage(KERNELS[1]) == (1, 2)  # NO_SOCKET of NO_SOCKET, QDISC_DROP (NOT_SPECIFIED aside)
    assert found.coverage(KERNELS[2]) == (1, 3)
    assert found.reproduced() == ["NO_SOCKET", "TCP_LISTEN_OVERFLOW"]
    assert found.summary().endswith("5.10 no reasons, 6.1 1/2, 7.2 1/3")


def test_a_kernels_table_comes_from_its_report_else_the_recorded_tables(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"kernel": {"reasons": ["NO_SOCKET"]}}))
    (tmp_path / "b.json").write_text(json.dumps({"kernel": {}}))
    kernels = [
        {"name": "6.1", "release": "r1", "report": "a.json"},
        {"name": "7.2", "release": "r2", "report": "b.json"},
    ]
    (tmp_path / "matrix.json").write_text(json.dumps({"kernels": kernels, "scenarios": []}))
    found, _matrix = catalogue.kernels_of(tmp_path, {"r2": frozenset({"OTHERHOST"})})
    assert [(k.name, set(k.reasons)) for k in found] == [("6.1", {"NO_SOCKET"}), ("7.2", {"OTHERHOST"})]


def test_the_unreachable_file_names_real_reasons() -> None:
    tables = json.loads((Path(catalogue.__file__).parents[1] / "workshop" / "kernel_reasons.json").read_text())
    known = set().union(*tables["kernels"].values())
    assert set(catalogue.unreachable()) <= known


def test_a_snapshot_gives_the_same_catalogue_and_takes_this_machines_kernel_beside_it() -> None:
    """What netlab ships of its last full run (last_run.json) is the run's catalogue again, with
    the running kernel as one more column, reproduced by nothing yet."""
    found = catalogue.build(KERNELS, MATRIX, {"NO_SOCKET"}, {"QDISC_DROP": "why not"})
    data = json.loads(json.dumps(catalogue.snapshot(found, "2026-12-07")))
    assert catalogue.from_snapshot(data, {"NO_SOCKET"}, {"QDISC_DROP": "why not"}) == found
    here = Kernel("this machine", "6.18.0", frozenset({"NO_SOCKET", "SKB_CSUM"}))
    widened = catalogue.from_snapshot(data, {"NO_SOCKET"}, {}, here)
    rows = {r.reason: r for r in widened.rows}
    assert [rows["NO_SOCKET"].cell(k) for k in widened.kernels] == ["not defined", "reproduced", "defined", "defined"]
    assert rows["SKB_CSUM"].defined == ("this machine",)
    same = catalogue.from_snapshot(data, set(), {}, Kernel("again", KERNELS[1].release, frozenset()))
    assert [k.name for k in same.kernels] == ["5.10", "6.1", "7.2"]  # a kernel of the run is not added twice


def test_netlab_ships_a_catalogue_of_a_full_run() -> None:
    data = json.loads(catalogue.LAST_RUN.read_text())
    assert {k["name"] for k in data["kernels"]} >= {"5.10", "6.1", "6.12", "7.2"}
    found = catalogue.from_snapshot(data, set(), {})
    assert len(found.reproduced()) >= 60
