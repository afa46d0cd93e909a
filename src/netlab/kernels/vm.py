"""Boot a cached kernel in a throwaway VM (virtme-ng over QEMU) and run one command inside.

The guest sees the host's filesystem read-only (``--force-9p``; the project and its venv are
used as they are) with one writable directory, the run's work directory. Everything the guest
reports comes back through files there, because virtme-ng falls back to the console for a
command's output when the kernel has no virtio-serial port for it::

    WORK/guest.sh   the script the guest runs (written by the host)
    WORK/uptime     /proc/uptime when the command starts: how long the kernel took to boot
    WORK/stdout, WORK/stderr, WORK/rc   the command's output and exit status
    WORK/console.log   the VM's console (host side), kept for a hang or a panic

A run is bounded: past its timeout, or when QEMU exits without an ``rc`` (a panic, a hang of
init), the VM's whole process group is killed and :class:`VmError` names the kernel and quotes
the console's last lines. The work directory is removed afterwards unless the caller owns it.

Acceleration: KVM when it can boot a stock kernel, else QEMU TCG. A PVM host (``kvm_pvm``) has
a ``/dev/kvm`` on which stock kernels hang silently, so KVM is *probed* with a short bounded boot
and the verdict cached per host kernel (``accel.json`` in the kernel cache).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from netlab import programs
from netlab.errors import KernelFeatureError, NetlabError
from netlab.kernels.debian import CachedKernel, cache_root, modules_image
from netlab.runtime import procs

CONSOLE_TAIL = 25
#: written to the guest's kernel log as the command starts: what the kernel logs after it
#: (WARN, BUG, oops) happened during the command (:attr:`VmRun.kernel_log`)
SUITE_MARK = "netlab: command starts"
#: the serial of the modules disk; the guest finds it by that (``/sys/block/vd*/serial``)
MODULES_SERIAL = "netlab-modules"
#: the guest mounts the modules disk over its /lib/modules/RELEASE (a 9p tree otherwise); any
#: step that fails leaves the 9p tree in place, slower but the same modules
MOUNT_MODULES = f"""\
modprobe -q virtio_blk 2>/dev/null; modprobe -q ext4 2>/dev/null
m=/lib/modules/$(uname -r)
for d in /sys/block/vd*; do
  if [ "$(cat "$d/serial" 2>/dev/null)" = {MODULES_SERIAL} ]; then
    # virtme-ng makes $m a symlink into the 9p tree, and every lookup through it walks that
    # 9p path again: the disk goes on a directory of its own where the symlink was
    t=$(readlink "$m")
    if [ -n "$t" ]; then rm -f "$m" && mkdir "$m"; fi
    if ! mount -t ext4 -o ro,noload "/dev/${{d##*/}}" "$m" 2>/dev/null; then
      echo "netlab: the modules disk did not mount; modules come over 9p" >&2
      if [ -n "$t" ]; then rmdir "$m" && ln -s "$t" "$m"; fi
    fi
  fi
done
"""
#: the mount tag of a second share of the host's root, which the guest mounts with a page cache
HOST_TAG = "netlabhost"
#: where the guest mounts it; the directories of :func:`cached_dirs` are bound from there
HOST_VIEW = "/run/netlab-host"


def mount_cached(dirs: Sequence[Path]) -> str:
    """Guest shell that reads ``dirs`` through the cached share.

    Why: virtme-ng mounts the host's root over 9p without a cache (``cache=none``), so every
    ``stat``, ``open`` and page of every Python module and program is a round trip to QEMU, which
    a guest spends most of pytest's start-up and much of each scenario on (Debian's 5.10 the
    most). The share is read-only and the host does not change these directories while a VM
    runs, so the guest may keep what it read (``cache=loose``). Any step that fails leaves the
    uncached view in place: slower, the same files.
    """
    binds = " ".join(shlex.quote(str(d)) for d in dirs)
    return f"""\
mkdir -p {HOST_VIEW}
if mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=524288,cache=loose {HOST_TAG} {HOST_VIEW} 2>/dev/null; then
  for d in {binds}; do
    [ -d "{HOST_VIEW}$d" ] && mount --bind "{HOST_VIEW}$d" "$d" 2>/dev/null ||
      echo "netlab: $d comes over uncached 9p" >&2
  done
else
  echo "netlab: the cached share did not mount; everything comes over uncached 9p" >&2
fi
"""


def cached_dirs(cwd: Path, writable: Sequence[Path]) -> list[Path]:
    """What the guest reads through the cached share: programs and libraries (/usr's, not
    /usr/lib/modules, where virtme-ng mounts its own), this Python's stdlib and venv, and the
    working directory, or where a writable directory lies inside it, its other directories
    (a bind over a writable directory's parent would hide it)."""
    python = Path(sys.base_prefix).resolve()  # a Python of its own (pyenv, /opt): the whole installation
    # resolved: a venv reached through a symlink (a checkout's .venv pointing at a shared one)
    # is read where it really is, and a bind of the symlink would leave it uncached
    found = [Path("/usr/bin"), Path("/usr/sbin"), Path(sys.prefix).resolve()]
    found.append(Path(sysconfig.get_path("stdlib")) if python == Path("/usr") else python)
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:
        found.append(Path("/usr/lib") / multiarch)
    inside = [w for w in writable if w.is_relative_to(cwd)]
    if not inside:
        found.append(cwd)
    else:
        found += [
            d
            for d in sorted(cwd.iterdir())
            if d.is_dir() and not d.name.startswith(".") and not any(w.is_relative_to(d) for w in inside)
        ]
    kept = [d for d in found if not any(w.is_relative_to(d) for w in writable)]
    return [d for d in dict.fromkeys(kept) if not any(d != o and d.is_relative_to(o) for o in kept)]


#: directories virtme-ng mounts an empty tmpfs over in the guest
GUEST_TMPFS = tuple(Path(p) for p in ("/var/cache", "/var/tmp", "/var/log", "/var/lib/apt", "/var/lib/private"))  # noqa: S108
PROBE_TIMEOUT = 45.0  # a KVM boot takes seconds; TCG boots in 10-20 s


class VmError(NetlabError):
    """A VM did not finish its command: hang, panic, or it never booted."""

    exit_code = 8


@dataclass(frozen=True)
class Accel:
    """How VMs are run here and why."""

    kind: str  # "kvm" or "tcg"
    why: str

    @property
    def vng_args(self) -> list[str]:
        return [] if self.kind == "kvm" else ["--disable-kvm"]


@dataclass
class VmRun:
    """What one VM run gave."""

    release: str
    accel: str
    rc: int
    boot_seconds: float
    seconds: float
    stdout: str
    stderr: str
    #: the guest's kernel log from the command's start (see :data:`SUITE_MARK`)
    kernel_log: list[str] = field(default_factory=list)


def vng_binary() -> str:
    """``vng`` beside this Python (the venv) or on PATH; a clear error otherwise."""
    beside = Path(sys.executable).parent / "vng"
    if beside.is_file():
        return str(beside)
    found = shutil.which("vng")
    if found is None:
        raise KernelFeatureError("virtme-ng (vng) is not installed", hint="scripts/bootstrap.sh installs it")
    return found


def _host_env(work: Path | None = None) -> dict[str, str]:
    """vng's own environment: it runs ``virtme-run`` from PATH, which lives beside it in the venv,
    and its temporary files go into the work directory, so a killed VM leaves none in /tmp."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(vng_binary()).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    if work is not None:
        env["TMPDIR"] = str(work)
    return env


class VmHangError(VmError):
    """The guest went silent: neither the command nor the console printed for too long."""


class TerminatedError(VmError):
    """SIGTERM arrived while a VM ran; raised in the main thread so the VM is stopped first."""


def _require_qemu() -> None:
    programs.require("qemu-system-x86_64")
    programs.require("busybox")  # virtme-ng builds the guest's initramfs around a static busybox


def guest_script(
    work: Path,
    argv: Sequence[str],
    cwd: Path,
    env: dict[str, str],
    *,
    modules_disk: bool = False,
    cached: Sequence[Path] = (),
) -> str:
    """The shell script the guest runs; everything it says goes to files in ``work``."""
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))
    w = shlex.quote(str(work))
    return (
        "#!/bin/sh\n"
        f"cat /proc/uptime > {w}/uptime.tmp && mv {w}/uptime.tmp {w}/uptime\n"
        + (MOUNT_MODULES if modules_disk else "")
        + (mount_cached(cached) if cached else "")
        + f"{exports}"
        f"cd {shlex.quote(str(cwd))} || exit 1\n"
        f"echo {SUITE_MARK} > /dev/kmsg\n"
        f"{shlex.join(argv)} > {w}/stdout 2> {w}/stderr < /dev/null\n"
        "rc=$?\n"
        f"dmesg > {w}/dmesg 2>/dev/null\n"
        f"echo $rc > {w}/rc.tmp && mv {w}/rc.tmp {w}/rc\n"
    )


def guest_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The guest command's environment: the host venv first on PATH, no bytecode writes (read-only fs)."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env = {
        "PATH": f"{venv_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:{path}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "NETLAB_IN_VM": "1",
        "HOME": "/root",
        "TERM": "dumb",
    }
    for key in ("NETLAB_PATH", "NETLAB_KERNEL_CACHE", "PYTHONPATH"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra or {})
    return env


def vng_command(
    kernel: CachedKernel,
    accel: Accel,
    work: Path | None,
    *,
    memory: str,
    cpus: int,
    writable: Sequence[Path] = (),
    modules: Path | None = None,
) -> list[str]:
    """The ``vng`` invocation; ``work`` None gives an interactive shell. ``writable``: host
    directories the guest may write to (everything else it sees read-only). ``modules``: the
    kernel's modules image, attached read-only as a virtio disk (serial :data:`MODULES_SERIAL`)."""
    argv = [vng_binary(), "--run", str(kernel.vmlinuz), "--force-9p", *accel.vng_args]
    argv += ["--memory", memory, "--cpus", str(cpus), "--name", f"netlab-{kernel.series}"]
    for directory in writable:
        argv += ["--rwdir", str(directory.resolve())]
    if work is not None:
        argv += ["--verbose", "--rwdir", str(work), "--exec", f"sh {work / 'guest.sh'}"]
    # a second share of the root, which the guest mounts with a cache (see mount_cached)
    fsdev = "local,id=netlabhost,path=/,security_model=none,readonly=on,multidevs=remap"
    argv += [f"--qemu-opts=-fsdev {fsdev} -device virtio-9p-pci,fsdev=netlabhost,mount_tag={HOST_TAG}"]
    if modules is not None:
        drive = f"if=none,id=netlabmods,file={modules},format=raw,readonly=on"
        # "=": argparse would take a separate "-drive ..." for an option of its own
        argv += [f"--qemu-opts=-drive {drive} -device virtio-blk-pci,drive=netlabmods,serial={MODULES_SERIAL}"]
    return argv


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _tail(path: Path, lines: int = CONSOLE_TAIL) -> str:
    with contextlib.suppress(OSError):
        text = path.read_text(errors="replace")
        return "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:])
    return "    (no console output)"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """End the VM: QEMU and vng are in their own process group, which we started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class _Follower:
    """Hands the guest's stdout to a callback line by line while the VM runs."""

    def __init__(self, path: Path, on_line: Callable[[str], None] | None) -> None:
        self.path, self.on_line, self.offset, self.partial = path, on_line, 0, ""

    def poll(self, final: bool = False) -> None:
        if self.on_line is None:
            return
        with contextlib.suppress(OSError), self.path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read()
            self.offset += len(chunk)
            self.partial += chunk.decode(errors="replace")
        *lines, self.partial = self.partial.split("\n")
        if final and self.partial:
            lines.append(self.partial)
            self.partial = ""
        for line in lines:
            self.on_line(line)


def run(
    kernel: CachedKernel,
    argv: Sequence[str],
    *,
    accel: Accel,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    memory: str = "4G",
    cpus: int = 1,
    on_line: Callable[[str], None] | None = None,
    work: Path | None = None,
    writable: Sequence[Path] = (),
    silence: float | None = None,
    stop: threading.Event | None = None,
) -> VmRun:
    """Boot ``kernel``, run ``argv`` inside as root, return its output; bounded by ``timeout``.

    ``stop``: another thread's way to end the VM (a matrix running several at once stops them all
    on SIGTERM, which only its main thread receives); the run then raises :class:`TerminatedError`.

    ``silence``: stop a guest whose command and console both printed nothing for that long.
    ``work`` is the guest's writable directory; by default a temporary one, removed afterwards.
    A caller that passes its own keeps what the guest wrote there (a report, say) and removes it.
    """
    _require_qemu()
    if not kernel.vmlinuz.exists():
        raise NetlabError(f"kernel {kernel.release}: {kernel.vmlinuz} is missing", hint="netlab kernels fetch")
    for what, path, hint in (
        ("the kernel cache", Path(kernel.tree), "set NETLAB_KERNEL_CACHE elsewhere (default /var/lib/netlab/kernels)"),
        ("the working directory", (cwd or Path.cwd()).resolve(), "run from a checkout outside those directories"),
        ("this Python", Path(sys.executable), "use a venv outside those directories"),
    ):
        hidden = [d for d in GUEST_TMPFS if path.is_relative_to(d)]
        if hidden:
            raise NetlabError(f"{what} {path} is under {hidden[0]}, which the guest sees as an empty tmpfs", hint=hint)
    own = work is None
    # Absolute: the guest starts elsewhere, and vng shares a relative path as "cannot access".
    work = Path(tempfile.mkdtemp(prefix=f"netlab-vm-{kernel.series}-")) if work is None else work.resolve()
    try:
        return _run_in(
            kernel,
            argv,
            work,
            accel,
            timeout,
            cwd or Path.cwd(),
            guest_env(env),
            memory,
            cpus,
            on_line,
            writable,
            silence,
            stop,
        )
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def _run_in(  # noqa: PLR0917 -- the private half of run(), which takes keywords
    kernel: CachedKernel,
    argv: Sequence[str],
    work: Path,
    accel: Accel,
    timeout: float,
    cwd: Path,
    env: dict[str, str],
    memory: str,
    cpus: int,
    on_line: Callable[[str], None] | None,
    writable: Sequence[Path],
    silence: float | None,
    stop: threading.Event | None,
) -> VmRun:
    image = modules_image(kernel)
    cached = cached_dirs(cwd.resolve(), [work, *(Path(w).resolve() for w in writable)])
    (work / "guest.sh").write_text(guest_script(work, argv, cwd, env, modules_disk=image is not None, cached=cached))
    console = work / "console.log"
    follower = _Follower(work / "stdout", on_line)
    rc_file = work / "rc"
    start = time.monotonic()
    stopped = TerminatedError("terminated (SIGTERM); the VM was stopped")
    with procs.sigterm_raises(lambda: stopped), console.open("wb") as out:
        proc = subprocess.Popen(
            vng_command(kernel, accel, work, memory=memory, cpus=cpus, writable=writable, modules=image),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=work,
            env=_host_env(work),
        )
        try:
            heard, heard_at = (-1, -1), time.monotonic()
            while not rc_file.exists() and proc.poll() is None:
                follower.poll()
                if stop is not None and stop.is_set():
                    raise stopped
                now = time.monotonic()
                sizes = (_size(work / "stdout"), _size(console))
                if sizes != heard:
                    heard, heard_at = sizes, now
                if now - start > timeout:
                    raise VmError(
                        f"kernel {kernel.release} ({accel.kind}): no result after {timeout:.0f} s; "
                        f"the VM was stopped. Console's last lines:\n{_tail(console)}"
                    )
                if silence is not None and now - heard_at > silence:
                    raise VmHangError(
                        f"kernel {kernel.release} ({accel.kind}): the guest printed nothing for {silence:.0f} s"
                        f" (wedged); the VM was stopped. Console's last lines:\n{_tail(console)}"
                    )
                time.sleep(0.5)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)  # the guest powers off after the command
        finally:
            if proc.poll() is None:
                _kill(proc)
    follower.poll(final=True)
    if not rc_file.exists():
        raise VmError(
            f"kernel {kernel.release} ({accel.kind}): the VM ended (exit {proc.returncode}) without running "
            f"the command (panic or failed boot). Console's last lines:\n{_tail(console)}"
        )
    uptime = (work / "uptime").read_text().split() if (work / "uptime").exists() else ["0"]
    return VmRun(
        release=kernel.release,
        accel=accel.kind,
        rc=int(rc_file.read_text().strip() or "255"),
        boot_seconds=float(uptime[0]),
        seconds=round(time.monotonic() - start, 1),
        stdout=(work / "stdout").read_text(errors="replace") if (work / "stdout").exists() else "",
        stderr=(work / "stderr").read_text(errors="replace") if (work / "stderr").exists() else "",
        kernel_log=_since_mark(work / "dmesg"),
    )


def _since_mark(path: Path) -> list[str]:
    """The lines of a guest's ``dmesg`` after :data:`SUITE_MARK` (all of them if it is missing)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    starts = [i for i, line in enumerate(lines) if SUITE_MARK in line]
    return lines[starts[-1] + 1 :] if starts else lines


def shell(
    kernel: CachedKernel, accel: Accel, *, memory: str = "4G", cpus: int = 1, writable: Sequence[Path] = ()
) -> int:
    """An interactive shell in the VM (the user's terminal is the console)."""
    _require_qemu()
    argv = vng_command(kernel, accel, None, memory=memory, cpus=cpus, writable=writable)
    return subprocess.call(argv, env=_host_env())


def _host_key() -> dict[str, object]:
    modules = sorted(p.name for p in Path("/sys/module").glob("kvm*"))
    return {"host": os.uname().release, "kvm_modules": modules}


def choose_accel(kernel: CachedKernel, *, force: str | None = None, cache: Path | None = None) -> Accel:
    """KVM if a bounded boot of ``kernel`` under it finishes, TCG otherwise; cached per host kernel."""
    if force in ("kvm", "tcg"):
        return Accel(force, "chosen with --accel")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Accel("tcg", "no usable /dev/kvm")
    path = (cache or cache_root()) / "accel.json"
    key = _host_key()
    with contextlib.suppress(OSError, ValueError, KeyError):
        saved = json.loads(path.read_text())
        if saved["key"] == key:
            return Accel(saved["kind"], saved["why"] + " (probed earlier)")
    try:
        probe = run(kernel, ["true"], accel=Accel("kvm", "probe"), timeout=PROBE_TIMEOUT, memory="1G")
        verdict = Accel("kvm", f"a KVM boot of {kernel.release} took {probe.seconds:.0f} s")
    except VmError as exc:
        mods = ", ".join(key["kvm_modules"]) or "kvm"  # type: ignore[arg-type]
        lines = str(exc).splitlines()
        if "no result after" not in lines[0]:
            # not a verdict about KVM (a missing busybox, a kernel that panics anywhere): say so
            # and use TCG this once, but cache nothing, or a fixed machine would keep TCG for good
            last = lines[-1].strip() if len(lines) > 1 else lines[0]
            return Accel("tcg", f"the KVM probe failed for another reason ({last}); not cached")
        verdict = Accel("tcg", f"a bounded boot of {kernel.release} under KVM ({mods}) hung")
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"key": key, "kind": verdict.kind, "why": verdict.why}) + "\n")
    return verdict
