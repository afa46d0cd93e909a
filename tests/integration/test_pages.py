"""The pages netlab writes, opened in a real browser (Debian's Chromium, headless, driven by
playwright): what a reader sees, not what the HTML string contains. Each page's screenshot is
kept in ``.artifacts/pages/`` (CI keeps that directory)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netlab.kernels.matrix import KernelRun, write
from tests.integration.conftest import ROOT

ARTIFACTS = ROOT / ".artifacts" / "pages"
LAB06 = ROOT / "labs" / "06-kernel-upgrade" / "matrix"
WIDTH = 1366
KERNELS = [
    ("5.10", "5.10.0-32-amd64"),
    ("6.1", "6.1.0-50-amd64"),
    ("6.12", "6.12.117+deb13-amd64"),
    ("7.2", "7.2.13+deb14-amd64"),
    ("running", "6.18.44-fc-v1300"),
]
REASONS = {"NO_SOCKET", "NETFILTER_DROP", "TCP_CSUM", "QDISC_DROP"}


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("Debian's chromium is not installed (scripts/bootstrap.sh installs it)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed in the venv")
    executable = chromium()
    with sync_api.sync_playwright() as p:
        # root has no user namespace sandbox here; the pages are netlab's own files
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


def opened(browser: Any, path: Path, shot: str) -> Any:
    """``path`` in a 1366 px wide window, screenshot kept as ``shot``.png."""
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    page.goto(path.resolve().as_uri())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
    return page


def overflow(page: Any) -> int:
    """How many pixels the page is wider than its window (a horizontal scroll bar when > 0)."""
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def report(release: str, outcomes: dict[str, str]) -> dict[str, Any]:
    scenarios = []
    for name, outcome in outcomes.items():
        entry: dict[str, Any] = {
            "scenario": f"scenarios/test_transport.py::{name}",
            "outcome": outcome,
            "summary": f"{name.replace('_', ' ')}: three datagrams, each dropped where the kernel says",
            "drops": [{"location": "__udp4_lib_rcv", "reason": "NO_SOCKET", "node": "ns-calm2", "count": 3}],
            "asserted": [{"location": "__udp4_lib_rcv", "reason": "NO_SOCKET", "node": "ns-calm2"}],
            "seconds": 1.5,
        }
        if outcome == "failed":
            entry["failure"] = "AssertionError: expected NO_SOCKET x3 @ns-calm2, saw nothing"
        if outcome == "flaky":
            entry["failure"] = "first attempt: the trace started late"
        scenarios.append(entry)
    return {"format": 1, "kernel": {"release": release, "reasons": sorted(REASONS)}, "scenarios": scenarios}


@pytest.fixture(scope="module")
def matrix_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A matrix of five kernels, one failed cell (7.2) and one flaky (6.1), with long names."""
    out = tmp_path_factory.mktemp("matrix")
    names = [
        "test_udp_to_a_closed_port_is_dropped_in_the_receivers_udp_layer_with_no_socket",
        "test_each_nftables_drop_names_its_rule_and_the_chain_it_lives_in[inet-with-counter]",
        "test_bad_transport_checksum[tcp-syn-tcp_csum]",
    ]
    runs, reports = [], {}
    for short, release in KERNELS:
        outcomes = dict.fromkeys(names, "passed")
        if short == "7.2":
            outcomes[names[1]] = "failed"
        if short == "6.1":
            outcomes[names[2]] = "flaky"
        reports[f"{release}.json"] = report(release, outcomes)
        (out / f"{release}.json").write_text(json.dumps(reports[f"{release}.json"]))
        run = KernelRun(name=short, release=release, accel="tcg", report=f"{release}.json")
        run.boot_seconds, run.suite_seconds = 6, 300
        runs.append(run)
    write(out, runs, reports)
    return out


def test_the_matrix_page_shows_its_verdict_a_failure_and_a_flaky_cell(browser: Any, matrix_dir: Path) -> None:
    page = opened(browser, matrix_dir / "index.html", "matrix")
    summary = page.locator("body > p").first.inner_text()
    assert summary.startswith("3 scenarios on 5 kernels: 1 failed cells, 1 flaky (passed on a retry)."), summary
    failed = page.locator("td", has_text="expected NO_SOCKET x3 @ns-calm2, saw nothing")
    assert failed.count() == 1 and failed.first.is_visible()
    flaky = page.locator("td", has_text="flaky: passed on a retry")
    assert flaky.count() == 1 and flaky.first.is_visible()
    assert overflow(page) <= 0, f"the matrix of five kernels scrolls sideways at {WIDTH} px"


def test_the_reasons_page_links_back_to_the_matrix(browser: Any, matrix_dir: Path) -> None:
    page = opened(browser, matrix_dir / "reasons.html", "reasons")
    assert page.locator("th", has_text="running").count() == 1
    assert page.locator("td", has_text="NO_SOCKET").first.is_visible()
    assert overflow(page) <= 0
    page.get_by_role("link", name="The matrix").click()
    page.wait_for_load_state()
    assert page.url.endswith("/index.html") and page.title() == "netlab kernel matrix"


@pytest.mark.parametrize("name", ["index", "reasons"])
def test_lab_06s_pages_read_as_a_workshop_needs_them(browser: Any, name: str) -> None:
    """Lab 06 ships a two-kernel matrix for the room to read without booting a kernel."""
    page = opened(browser, LAB06 / f"{name}.html", f"lab06-{name}")
    heading = page.locator("h1").inner_text()
    assert heading == ("netlab kernel matrix" if name == "index" else "Drop reasons")
    assert page.locator("tr").count() > 5
    assert overflow(page) <= 0
