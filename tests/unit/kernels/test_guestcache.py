"""A matrix guest's caches: the walker built on the host, a kernel's plans kept between runs."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from netlab.errors import NetlabError
from netlab.kernels import guestcache
from netlab.runtime import cachedir


def test_the_walker_and_the_kernels_plans_go_in_and_the_plans_come_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "ringwalk-abc.so"
    library.write_bytes(b"\x7fELF")
    monkeypatch.setattr(guestcache.native, "build", lambda: library)
    monkeypatch.setattr(guestcache, "PLANS", tmp_path / "kept")
    (tmp_path / "kept" / "6.1.0-50-amd64").mkdir(parents=True)
    (tmp_path / "kept" / "6.1.0-50-amd64" / "old").write_text("plan")
    work = tmp_path / "work"
    work.mkdir()
    env = guestcache.prepare(work, "6.1.0-50-amd64")
    assert env == {"NETLAB_NATIVE": str(work / "native"), "NETLAB_PLAN_CACHE": str(work / "plans")}
    assert (work / "native" / library.name).read_bytes() == b"\x7fELF"
    assert (work / "plans" / "old").read_text() == "plan"
    for directory in (work / "native", work / "plans"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700 and cachedir.private(directory)
    (work / "plans" / "new").write_text("made in the guest")
    guestcache.keep(work, "6.1.0-50-amd64")
    assert sorted(p.name for p in (tmp_path / "kept" / "6.1.0-50-amd64").iterdir()) == ["new", "old"]
    # another kernel starts with no plans, and a walker that cannot be built is left out
    monkeypatch.setattr(guestcache.native, "build", lambda: (_ for _ in ()).throw(NetlabError("no gcc")))
    other = tmp_path / "other"
    other.mkdir()
    assert guestcache.prepare(other, "5.10.0-32-amd64") == {"NETLAB_PLAN_CACHE": str(other / "plans")}
    assert list((other / "plans").iterdir()) == []
