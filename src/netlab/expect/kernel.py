"""Kernel facts a test depends on, and the state it must leave the kernel in.

Needs: ``@pytest.mark.netlab_needs("act_gact", "cls_matchall", config=["NET_ACT_GACT"])``
skips a test, with the kernel's reason, where a module is neither built in nor loadable or a
config option is off. Distribution kernels differ exactly here (Debian builds most of
net/sched as modules; a minimal CI kernel may lack them).

Clean: the kernel's own selftests check after each test that the taint flags did not change
and that the kernel logged no WARN or BUG. :func:`mark` remembers the taint flags and the end
of the kernel log; :func:`problems_since` reads what was logged after it.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

TAINTED = Path("/proc/sys/kernel/tainted")
KMSG = "/dev/kmsg"
#: lines that mean the kernel hit a bug or a warning (what the selftests grep dmesg for)
_BAD = re.compile(r"\b(WARNING:|BUG:|Oops|kernel BUG at|general protection fault|UBSAN:|KASAN:|refcount_t:)")


def module_refusal(name: str) -> str | None:
    """None if module ``name`` is loaded, built in or loadable; else why not (or why it cannot
    be told: a kernel without /lib/modules has every driver built in or none, and does not
    list which; name the config option then)."""
    release = platform.release()
    if Path("/sys/module", name).exists():
        return None
    tree = Path("/lib/modules", release)
    if not tree.is_dir():
        return f"cannot tell whether kernel {release} has {name} built in (no {tree}); use config=[...] instead"
    with contextlib.suppress(OSError):
        builtin = (tree / "modules.builtin").read_text().split()
        if any(Path(entry).name.split(".", 1)[0].replace("-", "_") == name.replace("-", "_") for entry in builtin):
            return None
    try:
        found = subprocess.run(["modprobe", "-n", "-q", name], capture_output=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot ask modprobe about {name}: {exc}"
    if found.returncode == 0:
        return None
    return f"kernel {release} has no module {name} (not built in, and modprobe -n {name} finds none)"


def read_config(candidates: list[Path]) -> dict[str, str] | None:
    """Build options (``CONFIG_X`` -> ``y``/``m``/value, ``n`` where "is not set") from the
    first readable of ``candidates`` (``.gz`` or plain); None if none can be read."""
    for candidate in candidates:
        try:
            raw = candidate.read_bytes()
        except OSError:
            continue
        return parse_config(gzip.decompress(raw).decode() if candidate.suffix == ".gz" else raw.decode())
    return None


def kernel_config() -> dict[str, str] | None:
    """The running kernel's build options, or None when it publishes none (no
    /proc/config.gz, no /boot/config-RELEASE: a matrix guest sees the host's /boot)."""
    return read_config([Path("/proc/config.gz"), Path(f"/boot/config-{platform.release()}")])


def parse_config(text: str) -> dict[str, str]:
    """``CONFIG_X=y`` lines; ``# CONFIG_X is not set`` becomes ``n``."""
    out = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_"):
            key, _, value = line.partition("=")
            out[key] = value
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            out[line[2:].split()[0]] = "n"
    return out


def config_refusal(option: str, config: dict[str, str] | None) -> str | None:
    """None if ``option`` (with or without ``CONFIG_``) is on; else why it cannot be said or is off."""
    key = option if option.startswith("CONFIG_") else f"CONFIG_{option}"
    if config is None:
        return f"cannot tell whether {key} is set: kernel {platform.release()} publishes no config"
    if config.get(key) in ("y", "m"):
        return None
    return f"kernel {platform.release()} is built without {key}"


def needs_refusal(modules: tuple[str, ...], options: tuple[str, ...]) -> str | None:
    """The first reason the kernel cannot run a test that needs ``modules`` and ``options``."""
    for name in modules:
        why = module_refusal(name)
        if why:
            return why
    config = kernel_config() if options else None
    for option in options:
        why = config_refusal(option, config)
        if why:
            return why
    return None


@dataclass
class Mark:
    """The kernel's state when a test began."""

    tainted: int
    log: int | None  # an open /dev/kmsg positioned at the end of the log, or None


def tainted() -> int:
    """The kernel's taint flags (0: untainted)."""
    return int(TAINTED.read_text().strip() or 0)


def mark() -> Mark:
    """Remember the taint flags and where the kernel log ends now."""
    fd = None
    with contextlib.suppress(OSError):
        fd = os.open(KMSG, os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(fd, 0, os.SEEK_END)
    return Mark(tainted(), fd)


def _read_log(fd: int) -> list[str]:
    lines = []
    while True:
        try:
            record = os.read(fd, 8192)
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # records were overwritten while we read: go on
                continue
            if exc.errno == errno.EAGAIN:
                break
            raise
        if not record:
            break
        lines.append(record.decode(errors="replace").split(";", 1)[-1].rstrip("\n"))
    return lines


def bad_lines(lines: list[str]) -> list[str]:
    """The log lines that report a kernel warning or bug."""
    return [line for line in lines if _BAD.search(line)]


def first_trace(lines: list[str], after: int = 40) -> str:
    """The first WARN, BUG or oops of a kernel log with the ``after`` lines that follow it (the
    call trace), or "" when the log has none: what a matrix page shows for a kernel."""
    for i, line in enumerate(lines):
        if _BAD.search(line):
            return "\n".join(lines[i : i + 1 + after])
    return ""


def log_since(start: Mark) -> list[str]:
    """The kernel log's lines since ``start`` (consumes the mark's position)."""
    if start.log is None:
        return []
    try:
        return _read_log(start.log)
    finally:
        os.close(start.log)
        start.log = None


def problems_since(start: Mark) -> list[str]:
    """What went wrong in the kernel since ``start``: taint flags that appeared, WARN/BUG lines."""
    found = []
    now = tainted()
    if now != start.tainted:
        found.append(f"the kernel's taint flags changed from {start.tainted} to {now} (/proc/sys/kernel/tainted)")
    if start.log is not None:
        try:
            found += [f"kernel log: {line}" for line in bad_lines(_read_log(start.log))]
        finally:
            os.close(start.log)
            start.log = None
    return found


def assert_kernel_clean(start: Mark) -> None:
    """The kernel is as untainted as at ``start`` and logged no WARN or BUG since."""
    problems = problems_since(start)
    if problems:
        raise AssertionError("the kernel complained during the test:\n  " + "\n  ".join(problems))
