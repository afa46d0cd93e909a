"""Kernel ranges, expectations and the report diff (no root needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from netlab.expect.drops import Drop, NewBehaviour, by_kernel, in_range, parse_version
from netlab.expect.report import changes, diff, kernel_config
from netlab.tracers.events import DropEvent, Location


def test_versions_and_ranges() -> None:
    v = parse_version("6.18.44-fc-v657")
    assert v == (6, 18, 44)
    assert in_range(v, ">=6.8") and not in_range(v, "<6.0")
    assert in_range(v, "6.1-6.18") and not in_range(v, "5.17-6.7")
    assert in_range(v, ">=5.17,<7") and in_range(v, "*") and in_range(v, "6.18")
    with pytest.raises(ValueError, match="bad kernel range"):
        in_range(v, "~6")


def test_by_kernel_picks_the_range_or_reports_new() -> None:
    table = {">=6.8": Drop("stp_pdu_rcv", "NOT_SPECIFIED"), "5.17-6.7": Drop("__netif_receive_skb_core", None)}
    assert by_kernel(table, "6.18.2") == table[">=6.8"]
    assert by_kernel(table, "6.1.0") == table["5.17-6.7"]
    new = by_kernel(table, "5.10.0")
    assert isinstance(new, NewBehaviour) and "5.10.0" in str(new)


def test_drop_matches_without_compiler_suffixes() -> None:
    event = DropEvent(
        time=0,
        location=Location("__netif_receive_skb_core.constprop.0", 0x7E6),
        reason="UNHANDLED_PROTO",
        node="ns2",
        device="veth2",
    )
    assert Drop("__netif_receive_skb_core", "UNHANDLED_PROTO").matches(event)
    assert Drop("__netif_receive_skb_core.constprop.0", "UNHANDLED_PROTO", "ns2").matches(event)
    assert not Drop("__netif_receive_skb_core", "NO_SOCKET").matches(event)
    assert not Drop(None, "UNHANDLED_PROTO", node="ns1").matches(event)


def _report(
    release: str,
    drops: dict[str, list[tuple[str, str | None]]],
    asserted: dict[str, list[tuple[str, str | None]]] | None = None,
) -> dict[str, object]:
    def entries(items: list[tuple[str, str | None]]) -> list[dict[str, str | None]]:
        return [{"location": loc, "reason": r} for loc, r in items]

    return {
        "kernel": {"release": release},
        "scenarios": [
            {
                "scenario": name,
                "outcome": "passed",
                "drops": entries(items),
                "asserted": entries((asserted or {}).get(name, items)),
            }
            for name, items in drops.items()
        ],
    }


def test_diff_new_vanished_moved() -> None:
    a = _report(
        "6.1",
        {
            "stp": [("__netif_receive_skb_core", "NOT_SPECIFIED")],
            "udp": [("__udp4_lib_rcv", "NO_SOCKET")],
            "gone": [("x", "Y")],
        },
    )
    b = _report(
        "6.18",
        {
            "stp": [("stp_pdu_rcv", "NOT_SPECIFIED")],
            "udp": [("__udp4_lib_rcv", "NO_SOCKET"), ("ip_rcv_core", "OTHERHOST")],
        },
    )
    lines = diff(a, b)
    assert "kernel: 6.1 -> 6.18" in lines
    assert "stp: moved __netif_receive_skb_core NOT_SPECIFIED -> stp_pdu_rcv NOT_SPECIFIED" in lines
    assert "udp: new drop ip_rcv_core OTHERHOST" in lines
    assert "gone: scenario gone" in lines
    assert diff(a, a) == []


def test_a_reason_that_changed_in_place_is_told_from_a_move() -> None:
    """Same function, another reason: the kernel named what it used to leave NOT_SPECIFIED."""
    stp_61: list[tuple[str, str | None]] = [
        ("br_handle_frame", "NOT_SPECIFIED"),
        ("ip_rcv_finish_core", "NOT_SPECIFIED"),
    ]
    a = _report("6.1", {"stp": stp_61, "old": [("f", None)]}, {"stp": stp_61[:1]})
    b = _report(
        "7.2",
        {"stp": [("br_handle_frame", "BRIDGE_INGRESS_STP_STATE")], "old": [("f", "R")]},
    )
    kinds = {(c.scenario, c.kind) for c in changes(a, b)}
    assert kinds == {("stp", "reason changed"), ("stp", "vanished drop"), ("old", "reason appeared")}
    # what the scenario asserted leaves the background drop (ip_rcv_finish_core) out
    assert [(c.scenario, c.kind) for c in changes(a, b, "asserted")] == [
        ("old", "reason appeared"),
        ("stp", "reason changed"),
    ]
    assert "stp: reason changed br_handle_frame NOT_SPECIFIED -> br_handle_frame BRIDGE_INGRESS_STP_STATE" in diff(
        a, b, "asserted"
    )


def test_report_diff_cli(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_report("6.1", {"s": [("f", "R")]})))
    b.write_text(json.dumps(_report("6.1", {"s": [("g", "R")]})))
    run = [sys.executable, "-m", "netlab", "report", "diff"]
    changed = subprocess.run([*run, str(a), str(b)], capture_output=True, text=True, check=False)
    assert changed.returncode == 1 and "s: moved f R -> g R" in changed.stdout
    same = subprocess.run([*run, str(a), str(a)], capture_output=True, text=True, check=False)
    assert same.returncode == 0 and "no differences" in same.stdout
    (tmp_path / "bad.json").write_text("[]")
    bad = subprocess.run([*run, str(a), str(tmp_path / "bad.json")], capture_output=True, text=True, check=False)
    assert bad.returncode != 0 and "not a netlab report" in bad.stderr and "Traceback" not in bad.stderr


def test_kernel_config_reads_options(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "config.gz"
    path.write_bytes(gzip.compress(b"CONFIG_KPROBES=y\n# CONFIG_NET_DROP_MONITOR is not set\n"))
    cfg = kernel_config(path)
    assert cfg["CONFIG_KPROBES"] == "y" and cfg["CONFIG_NET_DROP_MONITOR"] == "n"
