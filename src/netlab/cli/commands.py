"""How every command's messages look and its errors end, without click (the plain ``up NAME``
and ``down NAME...`` of :mod:`netlab.cli.entry` use it too)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

from netlab.errors import NetlabError, PrivilegeError


def err(message: str) -> None:
    """One line on stderr, as every netlab message is prefixed."""
    print(f"netlab: {message}", file=sys.stderr, flush=True)


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
