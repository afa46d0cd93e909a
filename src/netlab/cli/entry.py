"""The ``netlab`` command's entry point: a plain ``up NAME`` or ``down NAME...`` runs without click.

Those two are what workshops, scripts and the regression suite run over and over, and what
``benchmarks/up_down.py`` times against Mininet; importing click and building the command tree
is a large share of each (the benchmark's output shows how large). So an argv of exactly those shapes
(names only, none starting with ``-``) calls the command's body in :mod:`netlab.cli.commands`
directly, the same body the click command calls. Anything else (an option, ``--help``, a missing
name, another command) goes to the click CLI, which parses, validates and explains as always.

The plain path also turns the garbage collector off (each of these commands is a bounded piece of
work whose objects mostly live until it exits, and the collector's passes over the heap of
freshly imported modules and step objects are work with nothing to collect), and
ends the process without the interpreter's teardown (:func:`_exit_now`).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from netlab.cli import commands


def _exit_now(code: object) -> NoReturn:
    """End the process with ``code`` once what it printed is out, without the interpreter's
    teardown of every module and object, which a finished command
    has no use for: it holds no buffered file (the journal is written unbuffered and closed), no
    thread and no ``atexit`` work."""
    status = code if isinstance(code, int) else (0 if code is None else 1)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a closed pipe: what it could not take is lost either way
            stream.flush()
    os._exit(status)


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``netlab`` with ``argv`` (default: the process's arguments) and exit."""
    args = list(sys.argv[1:] if argv is None else argv)
    command, names = (args[0], args[1:]) if args else ("", [])
    plain = bool(names) and not any(name.startswith("-") for name in names)
    if plain and (command == "down" or (command == "up" and len(names) == 1)):
        gc.disable()
        try:
            if command == "up":
                from netlab.cli.bring_up import bring_up  # lazy: each plain command imports only its own

                commands.guarded(lambda: bring_up(names[0]))
            else:
                from netlab.cli.tear_down import tear_down  # lazy: down without importing the planner

                commands.guarded(lambda: tear_down(names))
        except SystemExit as done:
            if argv is not None:  # called as a function (the tests): the caller's process goes on
                gc.enable()
                raise
            _exit_now(done.code)
    from netlab.cli.main import main as full  # lazy: click and the command tree, which a plain up or down skips

    full(args)
