"""The journal: claims a lab name once, survives truncation, knows who holds the lab."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from netlab.errors import LabStateError
from netlab.runtime import journal, procs


@pytest.fixture(autouse=True)
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NETLAB_RUN_DIR", str(tmp_path))
    return tmp_path


def test_create_append_read() -> None:
    j = journal.Journal.create("lab1", {"netns": {"a": "lab1.a"}})
    j.append(journal.NamespacePlanned("lab1.a", "a"))
    j.append(journal.NamespaceMade("lab1.a", 42))
    j.close()
    rec = journal.read("lab1")
    assert rec is not None
    assert rec.netns == ["lab1.a"]
    assert rec.netns_inodes == {"lab1.a": 42}
    assert rec.state == "building"  # not ready, and we (the builder) are alive


def test_second_claim_is_refused() -> None:
    journal.Journal.create("lab1", {}).append(journal.Ready(0.1))
    with pytest.raises(LabStateError, match="already up"):
        journal.Journal.create("lab1", {})


def test_truncated_last_line_is_ignored(run_dir: Path) -> None:
    j = journal.Journal.create("lab1", {})
    j.append(journal.NamespacePlanned("lab1.a"))
    j.close()
    with open(run_dir / "lab1.journal", "a") as f:
        f.write('{"op":"netns","na')
    rec = journal.read("lab1")
    assert rec is not None and rec.netns == ["lab1.a"]


def test_dead_builder_means_crashed(run_dir: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(child.stdout)
    (run_dir / "lab1.journal").write_text(f'{{"op":"header","lab":"lab1","builder":{{"pid":{dead_pid},"start":1}}}}\n')
    rec = journal.read("lab1")
    assert rec is not None and rec.state == "crashed"
    with pytest.raises(LabStateError, match="half-built or orphaned"):
        journal.Journal.create("lab1", {})


def test_held_lab_with_dead_holder_is_crashed(run_dir: Path) -> None:
    pid, start = procs.me()
    header = {
        "op": "header",
        "lab": "lab1",
        "builder": {"pid": pid, "start": start},
        "holder": {"pid": pid, "start": start + 1},
    }
    (run_dir / "lab1.journal").write_text(json.dumps(header) + '\n{"op":"ready"}\n')
    rec = journal.read("lab1")
    assert rec is not None and rec.state == "crashed"


def test_pid_identity_includes_start_time() -> None:
    pid, start = procs.me()
    assert procs.alive(pid, start)
    assert not procs.alive(pid, start + 1)


def test_locked_refuses_while_builder_holds_lock() -> None:
    j = journal.Journal.create("lab1", {})
    try:
        # flock is per open file description: a second open in this process conflicts too
        with pytest.raises(LabStateError, match="busy"), journal.locked("lab1"):
            pass
    finally:
        j.close()
    with journal.locked("lab1") as held:
        assert held is not None


def test_every_kind_of_entry_reads_back_as_written(run_dir: Path) -> None:
    written: list[journal.Entry] = [
        journal.NamespacePlanned("lab1.a", "a"),
        journal.NamespaceMade("lab1.a", 42),
        journal.Ready(0.25),
        journal.TracefsOpened("netlab_1_2_t0", "/sys/kernel/tracing/instances/netlab_1_2_t0"),
        journal.HelperStarted("pid7", 7, 1234),
        journal.HelperEnded("pid7"),
        journal.Released(),
    ]
    j = journal.Journal.create("lab1", {})
    for entry in written:
        j.append(entry)
    j.close()
    rec = journal.read("lab1")
    assert rec is not None and rec.entries == written
    assert [e.key for e in rec.trace_buffers] == ["netlab_1_2_t0"]
    assert rec.helpers == []  # started, then recorded as ended
    assert set(journal.KINDS) == {type(e).op for e in written} | {"tracefs-done"}


def test_a_line_of_a_kind_this_version_does_not_know_is_skipped(run_dir: Path) -> None:
    pid, start = procs.me()
    header = {"op": "header", "lab": "lab1", "builder": {"pid": pid, "start": start}}
    lines = [header, {"op": "future-thing", "x": 1}, {"op": "netns-made", "name": "lab1.a"}, {"op": "ready"}]
    (run_dir / "lab1.journal").write_text("".join(json.dumps(line) + "\n" for line in lines))
    rec = journal.read("lab1")
    assert rec is not None and rec.entries == [journal.Ready()]  # the netns-made without ino is not one
