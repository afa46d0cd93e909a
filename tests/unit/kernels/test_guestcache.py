"""A matrix guest's native walker, built on the host."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from netlab.errors import NetlabError
from netlab.kernels import guestcache
from netlab.runtime import cachedir
from netlab.tracers.decode import native


def test_the_walker_built_here_goes_into_the_guests_private_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "ringwalk-abc.so"
    library.write_bytes(b"\x7fELF")
    monkeypatch.setattr(native, "build", lambda: library)
    work = tmp_path / "work"
    work.mkdir()
    assert guestcache.prepare(work) == {"NETLAB_NATIVE": str(work / "native")}
    assert (work / "native" / library.name).read_bytes() == b"\x7fELF"
    assert stat.S_IMODE((work / "native").stat().st_mode) == 0o700 and cachedir.private(work / "native")


def test_a_walker_that_cannot_be_built_is_left_to_the_guest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fails() -> Path:
        raise NetlabError("no C compiler (gcc) to build the native trace walker")

    monkeypatch.setattr(native, "build", fails)
    assert guestcache.prepare(tmp_path) == {}
    assert not (tmp_path / "native").exists()
