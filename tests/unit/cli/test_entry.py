"""The entry point's click-free path for a plain ``up NAME`` / ``down NAME...``: the same words
and exit codes as the click CLI, and everything else handed to click."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from netlab.cli import entry
from netlab.cli import main as click_cli

Main = Callable[[Sequence[str]], None]


def outcome(main: Main, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[object, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture
def empty_run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No lab is up: the journal directory is an empty one of this test's."""
    monkeypatch.setenv("NETLAB_RUN_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    "argv",
    [["down", "nosuch"], ["down", "nosuch", "other"], ["up", "no-such-topology"]],
    ids=["down one", "down two", "up unknown"],
)
def test_the_plain_path_says_what_the_click_cli_says(
    argv: list[str], empty_run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fast = outcome(entry.main, argv, capsys)
    full = outcome(click_cli.main, argv, capsys)
    assert fast == full
    assert fast[0] != 0 and fast[2].startswith("netlab: error: ")


def test_names_with_an_option_go_to_click(empty_run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, _err = outcome(entry.main, ["down", "--missing-ok", "nosuch"], capsys)
    assert code == (0 if os.geteuid() == 0 else 3)  # click's option, not a lab named so (without root: exit 3)
    code, out, _err = outcome(entry.main, ["up", "--help"], capsys)
    assert code == 0 and "Usage: netlab up [OPTIONS] TOPOLOGY" in out


@pytest.mark.parametrize("argv", [["down"], ["up"], ["up", "a", "b"], []], ids=["down", "up", "up two", "nothing"])
def test_what_is_not_plain_gets_clicks_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = outcome(entry.main, argv, capsys)
    assert (code, out, err) == outcome(click_cli.main, argv, capsys)
    assert "Usage: netlab" in out + err


def test_a_plain_down_does_not_import_click(tmp_path: Path) -> None:
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('click' in sys.modules, 'pyroute2' in sys.modules, file=sys.stderr))\n"
        "from netlab.cli.entry import main\n"
        "main(['down', 'nosuch'])\n"
    )
    env = {"NETLAB_RUN_DIR": str(tmp_path), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=False, timeout=60
    )
    assert proc.returncode in (3, 5), proc.stderr  # not root: 3; root: no such lab, 5
    assert proc.stderr.splitlines()[-1] == "False False"


@pytest.mark.parametrize(
    ("argv", "said"),
    [(["down", "nosuch", "other"], "no lab named 'other' is up"), (["up", "no-such-topology"], "no topology named")],
    ids=["down", "up"],
)
def test_a_plain_command_ends_its_process_with_everything_said(argv: list[str], said: str, tmp_path: Path) -> None:
    """The process path ends with os._exit: what was printed must be out, the exit code kept."""
    env = {"NETLAB_RUN_DIR": str(tmp_path), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "netlab", *argv], capture_output=True, text=True, env=env, check=False, timeout=60
    )
    if argv[0] == "down" and os.geteuid() != 0:
        assert proc.returncode == 3 and "needs root" in proc.stderr
        return
    assert proc.returncode == (5 if argv[0] == "down" else 2), proc.stderr
    assert said in proc.stderr and proc.stderr.endswith("\n") and "Traceback" not in proc.stderr
