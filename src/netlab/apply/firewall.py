"""iptables rules of a node, loaded with ``iptables-restore -w`` inside its namespace.

The nf_tables backend keeps each namespace's tables apart, so a node's rules can never touch
the host's. iptables cannot check a rule without trying it (``--test`` does not resolve
targets with the nf_tables backend), so a bad rule is found here, early in the build, and its
error line is mapped back to the rule in the topology file.
"""

from __future__ import annotations

import re
import subprocess

from netlab import programs
from netlab.plan.steps import LoadNftables, ModelPath, RestoreFirewall
from netlab.runtime.netns import preexec

_LINE_RE = re.compile(r"(?:Error occurred at line: |line )(\d+)")
_VERSION_RE = re.compile(r"^\S+ v[\d.]+ \([^)]*\): ")


class RestoreError(Exception):
    """iptables-restore or nft refused the rules; ``origin`` is the model path of the bad
    line, and for a ruleset given as one text, ``line``/``column`` the place inside it."""

    def __init__(
        self, message: str, origin: ModelPath | None, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message)
        self.origin = origin
        self.line, self.column = line, column


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


def _feed(netns: str, argv: list[str], text: str) -> subprocess.CompletedProcess[str]:
    """Run a ruleset loader inside ``netns`` with ``text`` on its stdin."""

    return subprocess.run(
        [programs.require(argv[0]), *argv[1:]],
        input=text,
        capture_output=True,
        text=True,
        preexec_fn=preexec(netns, sysfs=False),
        timeout=30,
        check=False,
    )


def restore(netns: str, step: RestoreFirewall) -> None:
    """Load ``step``'s ruleset into ``netns`` atomically (all of it or nothing)."""
    tool = "iptables-restore" if step.family == 4 else "ip6tables-restore"
    proc = _feed(netns, [tool, "-w"], step.text)
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


_NFT_ERROR = re.compile(r"^[^:\n]*:(\d+):(\d+)(?:-\d+)?: Error: (.*)$", re.M)


def load_nft(netns: str, step: LoadNftables) -> None:
    """``nft -f -`` inside ``netns``: one transaction, so a bad line leaves no rule behind."""
    proc = _feed(netns, ["nft", "-f", "-"], step.text)
    if proc.returncode == 0:
        return
    found = _NFT_ERROR.search(proc.stderr)
    if found is None:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise RestoreError(f"nft: {lines[0] if lines else f'exited {proc.returncode}'}", step.origin)
    line, column, message = int(found.group(1)), int(found.group(2)), found.group(3)
    text = step.text.splitlines()
    culprit = text[line - 1].strip() if 1 <= line <= len(text) else ""
    raise RestoreError(f"nft: {message}" + (f" in: {culprit}" if culprit else ""), step.origin, line, column)
