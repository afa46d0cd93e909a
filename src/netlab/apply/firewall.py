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


class RestoreError(Exception):
    """iptables-restore refused the rules; ``origin`` is the model path of the bad line."""

    def __init__(self, message: str, origin: ModelPath | None) -> None:
        super().__init__(message)
        self.origin = origin


def _culprit(step: RestoreFirewall, line: int, stderr: str) -> int:
    """The line to blame. The nf_tables backend checks some things (a jump to a chain that does
    not exist) only at COMMIT and blames that line; then blame the rule naming the quoted
    object instead."""
    lines = step.text.splitlines()
    if not 1 <= line <= len(lines) or lines[line - 1] != "COMMIT":
        return line
    for name in re.findall(r"'([^']+)'", stderr):
        for i in range(line - 1, 0, -1):
            if step.line_origins[i - 1] is not None and re.search(rf"(^|\s){re.escape(name)}(\s|$)", lines[i - 1]):
                return i
    return line


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
        preexec_fn=preexec(netns, sysfs=False),
        timeout=30,
        check=False,
    )
    if proc.returncode == 0:
        return
    lines = [ln for ln in proc.stderr.splitlines() if ln and not ln.startswith("Try `")]
    origin = None
    match = _LINE_RE.search(proc.stderr)
    if match:
        n = _culprit(step, int(match.group(1)), proc.stderr)
        if 1 <= n <= len(step.line_origins):
            origin = step.line_origins[n - 1]
            lines = [ln for ln in lines if not ln.startswith("Error occurred at line")]
            lines.append(f"rule: {step.text.splitlines()[n - 1]}")
    message = "; ".join(_VERSION_RE.sub("", ln) for ln in lines) or f"exited {proc.returncode}"
    raise RestoreError(f"{tool}: {message}", origin)
