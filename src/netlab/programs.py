"""The programs netlab runs and the Debian package of each, read from ``programs.txt``.

One list serves three readers: ``scripts/bootstrap.sh`` installs its packages, a missing program's
message names its package from here, and ``tests/unit/test_programs.py`` checks that every
program the code names is listed (and, on a machine that has them, that each package provides its
program). A hint that names a package by hand would drift from what bootstrap installs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from netlab.errors import KernelFeatureError

LIST = Path(__file__).with_name("programs.txt")


@dataclass(frozen=True)
class Program:
    """One row of the list: ``name`` is ``-`` for a package netlab needs for no program of its own."""

    name: str
    package: str
    group: str
    why: str


def parse(text: str) -> list[Program]:
    """The rows of ``programs.txt``; comments and blank lines skipped."""
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, package, group, *why = line.split(None, 3)
        rows.append(Program(name, package, group, why[0] if why else ""))
    return rows


@cache
def table() -> dict[str, Program]:
    """Programs by name (packages without a program left out)."""
    return {p.name: p for p in parse(LIST.read_text()) if p.name != "-"}


def package(program: str) -> str:
    """The Debian package that provides ``program``; a program missing from the list is a bug."""
    return table()[program].package


def install_hint(program: str) -> str:
    """What to run when ``program`` is missing."""
    return f"apt-get install {package(program)} (scripts/bootstrap.sh installs it)"


def require(program: str) -> str:
    """The path of ``program``, or one clear error that names its package."""
    found = shutil.which(program)
    if found is None:
        raise KernelFeatureError(f"{program} is not installed", hint=install_hint(program))
    return found
