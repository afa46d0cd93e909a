"""A tracer's helper process (perf, bpftrace, dropwatch): started with a ready barrier, sent
SIGINT by the kernel if we die (and journaled where the scope keeps a journal, so ``down`` and
``clean`` end one that outlived us all the same), stopped by PID with SIGINT so it flushes what
it holds."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from netlab.runtime import procs, wait
from netlab.runtime.journal import HelperEnded, HelperStarted
from netlab.scope import Scope

PR_SET_PDEATHSIG = 1


def _dying_with_parent(then: Callable[[], None] | None) -> Callable[[], None]:
    """A preexec that asks the kernel to send the child SIGINT when we die (then ``then``)."""

    def preexec() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)
        if then is not None:
            then()

    return preexec


class Helper:
    """One helper process of one trace session."""

    def __init__(
        self,
        scope: Scope,
        argv: list[str],
        *,
        stdin: bool = False,
        pass_fds: tuple[int, ...] = (),
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.scope = scope
        preexec = _dying_with_parent(preexec)
        self.workdir = Path(tempfile.mkdtemp(prefix="netlab-trace-"))
        self.stderr_path = self.workdir / "stderr"
        self.stdout_path = self.workdir / "stdout"
        self._stderr = self.stderr_path.open("w")
        self._stdout = self.stdout_path.open("w")
        self.proc = subprocess.Popen(
            argv,
            stdout=self._stdout,
            stderr=self._stderr,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            pass_fds=pass_fds,
            env={**os.environ, **env} if env else None,
            preexec_fn=preexec,  # noqa: PLW1509 -- a mount-namespace change only, before exec
        )
        started = procs.start_time(self.proc.pid)
        self.key = f"pid{self.proc.pid}"
        self.kept = scope.keep(HelperStarted(self.key, self.proc.pid, started))

    def stdout(self) -> str:
        """What the helper printed so far (it writes to the file directly, we only read)."""
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        """Its diagnostics so far."""
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        """Still running."""
        return self.proc.poll() is None

    def drained(self, quiet: float = 0.3) -> None:
        """Wait until the helper has printed nothing new for ``quiet`` seconds (bounded by
        :data:`~netlab.runtime.wait.HELPER_DRAINED`): a helper stopped while its buffers still
        hold events exits without printing them."""
        seen = {"size": -1, "since": time.monotonic()}

        def quiet_now() -> bool:
            if not self.alive():
                return True
            size = self.stdout_path.stat().st_size
            if size != seen["size"]:
                seen.update(size=size, since=time.monotonic())
                return False
            return time.monotonic() - seen["since"] >= quiet

        wait.HELPER_DRAINED.until(quiet_now)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGINT (helpers flush and exit on it), SIGKILL if it hangs; returns the exit code."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._stdout.close()
        self._stderr.close()
        if self.kept:
            with contextlib.suppress(Exception):
                self.scope.keep(HelperEnded(self.key))
        return self.proc.returncode

    def cleanup(self) -> None:
        """Remove the work directory."""
        for f in self.workdir.iterdir():
            f.unlink()
        self.workdir.rmdir()
