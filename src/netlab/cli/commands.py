"""What ``netlab up`` and ``netlab down`` do, and how every command's errors end, without click.

The click commands in :mod:`netlab.cli.main` parse and validate arguments and call these; so
does :mod:`netlab.cli.entry` for the plain ``up NAME`` / ``down NAME...`` it runs without
importing click. One body per command, whichever parser ran: the two paths cannot drift apart.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from netlab.errors import LabStateError, NetlabError, PrivilegeError


def err(message: str) -> None:
    """One line on stderr, as every netlab message is prefixed."""
    print(f"netlab: {message}", file=sys.stderr, flush=True)


def up(topology: str, *, instance: str | None = None, timeout: float | None = None, as_json: bool = False) -> None:
    """Build a lab and print what it is (a table, or JSON); ``timeout`` None: the library's default."""
    from netlab.cli import render
    from netlab.lab import DEFAULT_TIMEOUT
    from netlab.lab import up as lab_up

    timeout = DEFAULT_TIMEOUT if timeout is None else timeout

    with render.progress(f"bringing up {topology}", enabled=not as_json) as report:
        lab = lab_up(topology, instance=instance, timeout=timeout, hold=False, progress=report)
    for line in lab.modules_loaded:
        err(line)
    try:
        summary = lab.summary()
    except KeyboardInterrupt:
        err(f"interrupted; lab {lab.name} is up (netlab down {lab.name} removes it)")
        sys.exit(130)
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        render.lab_up(summary, lab.description)


def down(labs: Sequence[str], *, missing_ok: bool = False) -> None:
    """Tear down each lab; one that is not up does not keep the others up."""
    from netlab.runtime.netns import require_root
    from netlab.teardown import down as lab_down

    require_root()
    failed: list[LabStateError] = []
    for lab in labs:
        try:
            removal = lab_down(lab, missing_ok=missing_ok)
        except LabStateError as exc:
            failed.append(exc)
            continue
        extra = f", killed {len(removal.killed)} processes" if removal.killed else ""
        print(f"{lab}: removed {len(removal.namespaces)} namespaces{extra}", flush=True)
        for left in removal.skipped:
            err(f"{lab}: left {left}")
    if len(failed) == 1:
        raise failed[0]
    if failed:
        raise LabStateError("; ".join(str(e).split("\n", 1)[0] for e in failed))


def guarded(command: Callable[[], object]) -> NoReturn:
    """Run ``command`` and exit: netlab's errors become one message and their exit code; a
    traceback therefore always means a bug in netlab."""
    try:
        command()
    except NetlabError as exc:
        err(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err("interrupted; whatever this command had begun to build was removed")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except PermissionError as exc:
        # what a command meets without root where it did not ask first (the journal under
        # /run/netlab, a namespace's files): the documented exit 3, not a traceback
        where = f": {exc.filename}" if exc.filename else ""
        err(f"error: permission denied{where}; netlab needs root for this (run it with sudo, or as root)")
        sys.exit(PrivilegeError.exit_code)
    sys.exit(0)
