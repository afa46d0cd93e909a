"""Matrix building, merging and rendering from scenario reports (no VM)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from netlab.kernels.matrix import KernelRun, build, failures, merge, write
from netlab.kernels.render import html, markdown


def report(release: str, scenarios: list[tuple[str, str, list[tuple[str, str | None]]]]) -> dict[str, Any]:
    return {
        "format": 1,
        "kernel": {"release": release},
        "scenarios": [
            {
                "scenario": name,
                "outcome": outcome,
                "summary": f"about {name}",
                "drops": [{"location": loc, "reason": reason, "node": "n", "count": 3} for loc, reason in drops],
            }
            for name, outcome, drops in scenarios
        ],
    }


OLD = report("5.10.0-32-amd64", [("t::udp", "passed", [("__udp4_lib_rcv", None)]), ("t::arp", "passed", [])])
NEW = report("7.2.13+deb14-amd64", [("t::udp", "passed", [("udp_rcv", "NO_SOCKET")]), ("t::arp", "passed", [])])


def runs() -> list[KernelRun]:
    return [
        KernelRun(name="5.10", release="5.10.0-32-amd64", accel="tcg", report="5.10.0-32-amd64.json"),
        KernelRun(name="7.2", release="7.2.13+deb14-amd64", accel="tcg", report="7.2.13+deb14-amd64.json"),
    ]


def test_rows_where_kernels_differ_are_marked() -> None:
    m = build(runs(), {"5.10.0-32-amd64.json": OLD, "7.2.13+deb14-amd64.json": NEW})
    rows = {r["scenario"]: r for r in m["scenarios"]}
    assert rows["t::udp"]["differs"] is True
    assert rows["t::arp"]["differs"] is False
    assert m["kernels"][0]["counts"] == {"passed": 2}
    assert failures(m) == []


def test_failed_new_and_missing_kernels_are_failures() -> None:
    bad = report("7.2.13+deb14-amd64", [("t::udp", "new", []), ("t::arp", "failed", [])])
    broken = KernelRun(name="6.1", release="6.1", error="VM hung\nconsole...")
    m = build([*runs(), broken], {"5.10.0-32-amd64.json": OLD, "7.2.13+deb14-amd64.json": bad})
    assert failures(m) == [
        "6.1 (6.1): VM hung",
        "t::arp: failed on 7.2.13+deb14-amd64",
        "t::udp: new on 7.2.13+deb14-amd64",
    ]


def test_a_kernel_whose_pytest_failed_is_a_failure_even_when_its_report_looks_green() -> None:
    first, second = runs()
    first.exit_code, second.exit_code = 0, 1  # e.g. a collection error: no scenario row says so
    m = build([first, second], {"5.10.0-32-amd64.json": OLD, "7.2.13+deb14-amd64.json": NEW})
    assert failures(m) == ["7.2 (7.2.13+deb14-amd64): pytest exited 1 (see 7.2.13+deb14-amd64.log)"]
    bad = report("7.2.13+deb14-amd64", [("t::udp", "failed", []), ("t::arp", "passed", [])])
    m = build([first, second], {"5.10.0-32-amd64.json": OLD, "7.2.13+deb14-amd64.json": bad})
    assert failures(m) == ["t::udp: failed on 7.2.13+deb14-amd64"]  # the row says it; no second line


def test_merge_combines_directories_and_later_sources_win(tmp_path: Path) -> None:
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "all"
    first, second = runs()
    for directory, run, rep in ((a, first, OLD), (b, second, NEW)):
        directory.mkdir()
        (directory / str(run.report)).write_text(json.dumps(rep))
        write(directory, [run], {str(run.report): rep})
    merged = merge([b, a], out)
    assert [k["name"] for k in merged["kernels"]] == ["5.10", "7.2"]  # catalogue order, not argument order
    # a kernel that failed in one place and ran in another: the later source wins
    failed = KernelRun(name="7.2", release="7.2", error="hung")
    (tmp_path / "c").mkdir()
    write(tmp_path / "c", [failed], {})
    assert merge([tmp_path / "c", b], tmp_path / "again")["kernels"][0]["error"] is None
    assert (out / "5.10.0-32-amd64.json").is_file() and (out / "index.html").is_file()
    assert json.loads((out / "matrix.json").read_text())["scenarios"][1]["differs"] is True


def test_html_shows_each_cell_and_marks_differences() -> None:
    matrix = build(runs(), {"5.10.0-32-amd64.json": OLD, "7.2.13+deb14-amd64.json": NEW})
    page = html(matrix)
    assert '<tr class="differs">' in page
    assert "__udp4_lib_rcv (no reason) x3" in page and "udp_rcv NO_SOCKET x3" in page
    assert page.count("<tr") == 3  # header + 2 scenarios
    text = markdown(matrix).splitlines()
    assert text[0] == "| scenario | 5.10 (5.10.0-32-amd64) | 7.2 (7.2.13+deb14-amd64) |"
    assert "| udp * | passed: __udp4_lib_rcv (no reason) x3 @n | passed: udp_rcv NO_SOCKET x3 @n |" in text
    assert "differs: 5.10 | 7.2" in page


def test_a_kernel_without_reasons_differs_only_by_function_node_or_count() -> None:
    """5.10 names no reasons: that alone marks no row (it marked every row, so the marker found
    nothing); a reason is compared between kernels that both name one."""
    same = report("5.10.0-32-amd64", [("t::udp", "passed", [("udp_rcv", None)]), ("t::arp", "passed", [])])
    m = build(runs(), {"5.10.0-32-amd64.json": same, "7.2.13+deb14-amd64.json": NEW})
    assert [r["differs"] for r in m["scenarios"]] == [False, False]
    other_reason = report("5.10.0-32-amd64", [("t::udp", "passed", [("udp_rcv", "NOT_SPECIFIED")])])
    m = build(runs(), {"5.10.0-32-amd64.json": other_reason, "7.2.13+deb14-amd64.json": NEW})
    assert {r["scenario"]: r["groups"] for r in m["scenarios"]}["t::udp"] == [
        ["5.10.0-32-amd64"],
        ["7.2.13+deb14-amd64"],
    ]


def test_a_kernel_without_reasons_does_not_join_two_kernels_whose_reasons_differ() -> None:
    """Seen on the page: 5.10 first, alike with 6.1 and with 7.2, had put 6.1's NOT_SPECIFIED and
    7.2's IP_INVALID_DEST in one group: the row of a reason that changed was not marked."""
    names = ["5.10.0-32-amd64", "6.1.0-50-amd64", "7.2.13+deb14-amd64"]
    reasons: list[str | None] = [None, "NOT_SPECIFIED", "IP_INVALID_DEST"]
    runs3 = [KernelRun(name=n.split(".0")[0], release=n, report=f"{n}.json") for n in names]
    reports = {
        f"{n}.json": report(n, [("t::dst", "passed", [("ip_rcv_finish_core", r)])])
        for n, r in zip(names, reasons, strict=True)
    }
    (row,) = build(runs3, reports)["scenarios"]
    assert row["differs"] and row["groups"] == [names[:2], names[2:]]


def test_drops_beside_what_the_scenario_asserted_are_not_a_change() -> None:
    old = report("5.10.0-32-amd64", [("t::udp", "passed", [("udp_rcv", None), ("icmpv6_rcv", None)])])
    new = report("7.2.13+deb14-amd64", [("t::udp", "passed", [("udp_rcv", "NO_SOCKET")])])
    for r in (old, new):
        r["scenarios"][0]["asserted"] = [{"location": "udp_rcv", "reason": None, "node": "n"}]
    m = build(runs(), {"5.10.0-32-amd64.json": old, "7.2.13+deb14-amd64.json": new})
    assert m["scenarios"][0]["differs"] is False
    # an assertion of the node alone covers all its drops: another function there is a change
    new["scenarios"][0]["drops"] = [{"location": "udp_queue_rcv_one_skb", "reason": "X", "node": "n", "count": 3}]
    for r in (old, new):
        r["scenarios"][0]["asserted"] = [{"location": None, "reason": None, "node": "n"}]
    m = build(runs(), {"5.10.0-32-amd64.json": old, "7.2.13+deb14-amd64.json": new})
    assert m["scenarios"][0]["differs"] is True


def test_a_skip_is_no_change_of_behaviour_and_cells_show_time_failure_and_flakiness() -> None:
    old = report("5.10.0-32-amd64", [("t::udp", "skipped", []), ("t::arp", "failed", [])])
    old["scenarios"][1].update(seconds=2.5, failure="AssertionError: assert 0 == 1\n  where ...")
    new = report("7.2.13+deb14-amd64", [("t::udp", "passed", [("udp_rcv", "NO_SOCKET")]), ("t::arp", "flaky", [])])
    new["scenarios"][1]["failure"] = "first attempt: timed out"
    m = build(runs(), {"5.10.0-32-amd64.json": old, "7.2.13+deb14-amd64.json": new})
    assert [r["differs"] for r in m["scenarios"]] == [False, False]
    page = html(m)
    assert "2.5 s" in page and "AssertionError: assert 0 == 1" in page
    assert "flaky: passed on a retry" in page and "first attempt: timed out" in page
    assert "1 failed cells, 1 flaky" in page
    assert failures(m) == ["t::arp: failed on 5.10.0-32-amd64"]  # flaky is shown, not failed


def test_a_kernel_that_logged_a_warning_shows_its_trace() -> None:
    first, second = runs()
    second.kernel_log = "WARNING: CPU: 0 PID: 1 at net/core/dev.c:1 x+0x1/0x2\nCall Trace:\n ..."
    m = build([first, second], {"5.10.0-32-amd64.json": OLD, "7.2.13+deb14-amd64.json": NEW})
    page = html(m)
    assert "logged a WARN/BUG" in page and "net/core/dev.c:1" in page
