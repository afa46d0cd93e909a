"""What the CLI does with errors it did not see coming: one message, the documented exit code."""

from __future__ import annotations

import errno

import pytest

import netlab.cli.lifecycle
from netlab.cli.main import main


def test_permission_denied_anywhere_is_exit_3_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a non-root user meets reading /run/netlab (status) is the documented exit 3."""

    def denied(_lab: object = None) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", "/run/netlab/x.journal")

    monkeypatch.setattr(netlab.cli.lifecycle, "lab_status", denied)
    with pytest.raises(SystemExit) as info:
        main(["status"])
    assert info.value.code == 3
    err = capsys.readouterr().err
    assert "permission denied: /run/netlab/x.journal" in err and "needs root" in err


def test_down_needs_root_before_anything(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(SystemExit) as info:
        main(["down", "some-lab"])
    assert info.value.code == 3
    assert "netlab needs root" in capsys.readouterr().err
