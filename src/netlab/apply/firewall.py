"""iptables rules of a node, loaded with ``iptables-restore -w`` inside its namespace.

The nf_tables backend keeps each namespace's tables apart, so a node's rules can never touch
the host's. iptables cannot check a rule without trying it (``--test`` does not resolve
targets with the nf_tables backend), so a bad rule is found here, early in the build, and its
error line is mapped back to the rule in the topology file.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from netlab.apply.netns import preexec
from netlab.errors import KernelFeatureError
from netlab.plan.steps import ModelPath, RestoreFirewall

_LINE_RE = re.compile(r"(?:Error occurred at line: |line )(\d+)")
_VERSION_RE = re.compile(r"^\S+ v[\d.]+ \([^)]*\): ")


class RestoreFailed(Exception):
    """iptables-restore refused the rules; ``origin`` is the model path of the bad line."""

    def __init__(self, message: str, origin: ModelPath | None) -> None:
        super().__init__(message)
        self.origin = origin


def restore(netns: str, step: RestoreFirewall) -> None:
    """Load ``step``'s ruleset into ``netns`` atomically (all of it or nothing)."""
    tool = "iptables-restore" if step.family == 4 else "ip6tables-restore"
    binary = shutil.which(tool)
    if binary is None:
        raise KernelFeatureError(f"{tool} is not installed", hint="apt-get install iptables (scripts/bootstrap.sh)")
    proc = subprocess.run(
        [binary, "-w"],
        input=step.text,
        capture_output=True,
        text=True,
        preexec_fn=preexec(netns, sysfs=False),  # noqa: PLW1509 - single-threaded here
        timeout=30,
        check=False,
    )
    if proc.returncode == 0:
        return
    lines = [ln for ln in proc.stderr.splitlines() if ln and not ln.startswith("Try `")]
    origin = None
    match = _LINE_RE.search(proc.stderr)
    if match:
        n = int(match.group(1))
        if 1 <= n <= len(step.line_origins):
            origin = step.line_origins[n - 1]
            rule = step.text.splitlines()[n - 1]
            lines.append(f"rule: {rule}")
    message = "; ".join(_VERSION_RE.sub("", ln) for ln in lines) or f"exited {proc.returncode}"
    raise RestoreFailed(f"{tool}: {message}", origin)
