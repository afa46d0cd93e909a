"""The command table: ``netlab --help`` lists every command without importing any, and says of
each what the command's own help says."""

from __future__ import annotations

import re
import subprocess
import sys

import click
import pytest

from netlab.cli.main import COMMANDS, cli


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_table_says_what_the_command_says(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None and command.help
    first = " ".join(command.help.split("\n\n")[0].split())
    found = re.match(r"(.+?\.)(\s|$)", first)
    assert COMMANDS[name][2] == (found.group(1) if found else first)


def test_help_lists_every_command_and_imports_none() -> None:
    probe = (
        "import sys\n"
        "from netlab.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith('netlab.cli.') and m.count('.') == 2))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s", out, re.M), name
    loaded = out.rsplit("LOADED", 1)[1]
    assert all(f"netlab.cli.{module}'" not in loaded for module, _a, _h in COMMANDS.values()), loaded


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from netlab.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
    assert "No such command" in capsys.readouterr().err
