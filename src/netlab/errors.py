"""One error hierarchy for the whole project.

Every failure a user can cause or meet (bad topology, missing privilege, a kernel feature this
machine lacks, a lab in the wrong state) is a :class:`NetlabError`. The CLI turns any of them
into one message and a non-zero exit, so a traceback always means a bug in netlab, never in
the user's input. Each error says *what* went wrong, *where* (file:line:column or
node:interface) and, when there is one, *what to do*.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    """A place in a source file, 1-based, as editors and compilers print it."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class NetlabError(Exception):
    """Base of every error netlab reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


@dataclass(frozen=True)
class Issue:
    """One thing wrong with a topology, located in its file."""

    position: Position | None
    message: str

    def __str__(self) -> str:
        return f"{self.position}: {self.message}" if self.position else self.message


class TopologyError(NetlabError):
    """The topology file cannot be turned into a lab; nothing was created."""

    exit_code = 2

    def __init__(self, issues: list[Issue]) -> None:
        ordered = sorted(
            issues,
            key=lambda i: (i.position.line, i.position.column) if i.position else (0, 0),
        )
        super().__init__("\n".join(str(i) for i in ordered))
        self.issues = ordered


class UsageError(NetlabError):
    """The command asked for something that does not go together (a tracer option the tracer
    does not have); nothing was started."""

    exit_code = 2


class PrivilegeError(NetlabError):
    """The operation needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)."""

    exit_code = 3


class KernelFeatureError(NetlabError):
    """This kernel (or machine) lacks something the operation needs."""

    exit_code = 4


class LabStateError(NetlabError):
    """The lab is not in the state the operation needs (already up, not up, busy)."""

    exit_code = 5


class ApplyError(NetlabError):
    """The kernel refused a step while building a lab; the lab was rolled back."""

    exit_code = 6


class ReadyTimeoutError(NetlabError):
    """The lab was built but did not become usable in time; it was rolled back."""

    exit_code = 7
