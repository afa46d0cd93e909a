"""The ``netlab`` command's entry point: a plain ``up NAME`` or ``down NAME...`` runs without click.

Those two are what workshops, scripts and the regression suite run over and over, and what
``benchmarks/up_down.py`` times against Mininet; importing click and building the command tree
cost ~60 ms of each, a sixth of ``up`` + ``down`` of linear50. So an argv of exactly those shapes
(names only, none starting with ``-``) calls the command's body in :mod:`netlab.cli.commands`
directly, the same body the click command calls. Anything else (an option, ``--help``, a missing
name, another command) goes to the click CLI, which parses, validates and explains as always.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def _plain(args: Sequence[str], least: int, most: int | None) -> bool:
    """``args`` are between ``least`` and ``most`` names, and none could be an option."""
    return len(args) >= least and (most is None or len(args) <= most) and not any(a.startswith("-") for a in args)


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``netlab`` with ``argv`` (default: the process's arguments) and exit."""
    args = list(sys.argv[1:] if argv is None else argv)
    command, rest = (args[0], args[1:]) if args else ("", [])
    if command == "up" and _plain(rest, 1, 1):
        from netlab.cli import commands

        commands.guarded(lambda: commands.up(rest[0]))
    elif command == "down" and _plain(rest, 1, None):
        from netlab.cli import commands

        commands.guarded(lambda: commands.down(rest))
    else:
        from netlab.cli.main import main as full

        full(args)
