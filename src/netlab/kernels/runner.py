"""``netlab matrix``: the scenario suite on each kernel, several kernels at a time.

For each kernel: fetch it (or reuse the cache), boot it, run ``pytest --netlab-report`` inside,
copy the report out as ``RELEASE.json`` and pytest's whole output as ``RELEASE.log`` (the
failures' details), and note how long each phase took. ``running`` runs
the same pytest on this machine without a VM. A kernel that cannot be fetched or booted, or
whose VM hangs, becomes a row with its error; the others still run.

Kernels run ``jobs`` at a time (default: one per core, as each TCG guest has one vCPU and QEMU
runs it on one host thread), oldest kernel first (the slowest) and the running kernel last; the
report lists them in the order given. KVM or TCG is decided once, before the second guest boots.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import netlab
from netlab.errors import NetlabError
from netlab.expect.kernel import first_trace, log_since, mark
from netlab.expect.report import load as load_report
from netlab.kernels import debian, guestcache, local, suite, vm
from netlab.kernels.catalogue import CATALOGUE, RUNNING, lookup
from netlab.kernels.matrix import KernelRun
from netlab.kernels.matrix import write as write_matrix
from netlab.runtime import procs

DEFAULT_PYTEST_ARGS = ("scenarios/",)
_COLLECTED = re.compile(r"collected (\d+) items?")
_SELECTED = re.compile(r"/ (\d+) selected")
_RESULT = re.compile(r"^(\S+::\S+)\s+(PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b")

Say = Callable[[str], None]


@dataclass
class SuiteProgress:
    """Turns ``pytest -v`` lines into "scenario n/N" for the user."""

    kernel: str
    say: Say
    total: int = 0
    done: int = 0
    #: "" on the first run; "again" while the failed scenarios run once more
    round: str = ""

    def line(self, text: str) -> None:
        if text.startswith(suite.RERUN_PREFIX):
            self.round, self.done, self.total = "again", 0, 0
            self.say(f"[{self.kernel}] running the failed scenarios once more")
            return
        m = _COLLECTED.search(text)
        if m:
            if self.round:
                chosen = _SELECTED.search(text)
                self.total = int(chosen.group(1)) if chosen else 0
            else:
                self.total = int(m.group(1))
                self.say(f"[{self.kernel}] booted; {self.total} scenarios")
            return
        m = _RESULT.match(text)
        if m:
            self.done += 1
            outcome = m.group(2).lower()
            name = m.group(1).split("::", 1)[1]
            again = f" {self.round}" if self.round else ""
            self.say(f"[{self.kernel}]{again} {self.done}/{self.total or '?'} {outcome:7} {name}")


@dataclass(frozen=True)
class MatrixOptions:
    """Everything a matrix run is told; one place, so the CLI and the Python API agree."""

    kernels: tuple[str, ...]
    output: Path
    pytest_args: tuple[str, ...] = DEFAULT_PYTEST_ARGS
    timeout: float = 1500.0
    accel: str | None = None  # None: probe
    retries: int = 1  # boots again after a guest wedged (VmHangError), at most this often
    memory: str = "4G"
    #: one vCPU: under TCG a second one buys little, and Debian's 6.1 guest wedged twice in 20
    #: minutes with two (the whole guest, mid-scenario, at 100 % CPU); see README
    cpus: int = 1
    #: kernels run at once; None: one per host core the guests' vCPUs fit on
    jobs: int | None = None

    @property
    def parallel(self) -> int:
        cores = os.cpu_count() or 1
        return max(1, self.jobs if self.jobs is not None else cores // self.cpus)


@dataclass
class Shared:
    """What the kernels running at once share: the acceleration verdict (probed once), the
    user's output (one line at a time), the stop signal and the host pytest to end with it."""

    say: Say
    accel: vm.Accel | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    probing: threading.Lock = field(default_factory=threading.Lock)
    children: list[subprocess.Popen[str]] = field(default_factory=list)

    def line(self, text: str) -> None:
        with self.lock:
            self.say(text)


#: per scenario, in seconds: room for a TCG guest several times slower than usual; the thread
#: method ends a test stuck in C code too (a signal would wait for it)
SCENARIO_TIMEOUT = 480
#: pytest's usual traceback asks inspect for every loaded module's real path, one 9p round trip
#: each: in a TCG guest that took minutes per failure. Python's own traceback is enough there.
TRACEBACK = "--tb=native"


def _pytest_argv(report: Path, args: Sequence[str]) -> list[str]:
    """The suite on one kernel: pytest, then its failures once more (:mod:`netlab.kernels.suite`:
    one that then passes is flaky on the page, a defect to find but not the kernel's regression)."""
    options = ["-v", "-p", "no:cacheprovider", "-o", "timeout_method=thread", "--timeout", str(SCENARIO_TIMEOUT)]
    return suite.command(report, [*options, TRACEBACK], args)


def resolve_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """Validate ``-k`` names in the order given (a path made absolute, a suite or flavour given
    its catalogue name); duplicates removed. ``running`` stays as is."""
    out: list[str] = []
    for name in names:
        if name == RUNNING:
            key = RUNNING
        elif local.is_path(name):
            key = local.check(name)
        else:
            key = lookup(name).name
        if key not in out:
            out.append(key)
    if not out:
        raise NetlabError("no kernels given", hint=f"use -k {CATALOGUE[0].series} or -k {RUNNING}")
    return out


def _run_running(opts: MatrixOptions, shared: Shared) -> KernelRun:
    release = platform.release()
    run = KernelRun(name=RUNNING, release=release, accel="host", accel_why="the kernel this machine runs")
    report = opts.output / f"{release}.json"
    progress = SuiteProgress(RUNNING, shared.line)
    start = time.monotonic()
    with shared.lock:
        if shared.stop.is_set():
            raise vm.TerminatedError("terminated (SIGTERM) before the host suite started")
        log = mark()  # where the kernel log ends: what the suite makes it log comes after
        proc = subprocess.Popen(
            _pytest_argv(report, opts.pytest_args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        shared.children.append(proc)
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        progress.line(line.rstrip("\n"))
        lines.append(line)
    (opts.output / f"{release}.log").write_text("".join(lines))
    tail = [line.rstrip("\n") for line in lines[-40:]]
    run.exit_code = suite.settle(report, proc.wait())
    run.suite_seconds = round(time.monotonic() - start, 1)
    run.kernel_log = first_trace(log_since(log))
    _finish(run, report, "\n".join(tail))
    return run


def _finish(run: KernelRun, report: Path, output_tail: str) -> None:
    """Attach the report, or say why there is none."""
    if report.is_file():
        run.report = report.name
        run.counts = dict(Counter(s["outcome"] for s in load_report(report)["scenarios"]))
    else:
        run.error = f"pytest wrote no report (exit {run.exit_code}); its last lines:\n{output_tail}"


def _accel(kernel: debian.CachedKernel, opts: MatrixOptions, shared: Shared, name: str) -> vm.Accel:
    """KVM or TCG, decided by the first guest to ask; the others wait for its verdict."""
    with shared.probing:
        if shared.accel is None:
            if opts.accel is None:
                shared.line(f"[{name}] choosing KVM or TCG (a bounded boot under KVM, unless probed before)")
            shared.accel = vm.choose_accel(kernel, force=opts.accel)
        return shared.accel


def _obtain(name: str, run: KernelRun, say: Say) -> debian.CachedKernel:
    """The kernel ``name`` names, fetched (Debian's) or prepared (a path), with ``run`` told."""
    start = time.monotonic()
    if local.is_path(name):
        say(f"[{name}] preparing the kernel at {name}")
        kernel = local.prepare(name)
        run.name, run.suite = kernel.release, kernel.suite  # labelled by its release, as the others
    else:
        spec = lookup(name)
        have = debian.cached(spec)
        say(f"[{name}] {'checking the cache' if have else 'downloading'} ({spec.suite})")
        kernel = debian.fetch(spec)
        fresh = not (have and have.release == kernel.release)
        run.download_seconds = round(time.monotonic() - start, 1) if fresh else 0.0
    run.release, run.version = kernel.release, kernel.version
    return kernel


def _label(name: str) -> str:
    """A kernel's name before it is known: the catalogue's (``6.1``), or the path's last part."""
    return Path(name).name if local.is_path(name) else lookup(name).name


def _run_vm(name: str, opts: MatrixOptions, shared: Shared) -> KernelRun:
    say = shared.line
    label = _label(name)
    archive = "" if local.is_path(name) else lookup(name).suite
    run = KernelRun(name=label, release=f"{label} (not fetched)", suite=archive)
    kernel = _obtain(name, run, say)
    accel = _accel(kernel, opts, shared, name)
    run.accel, run.accel_why = accel.kind, accel.why
    say(f"[{name}] booting {kernel.release} ({accel.kind}: {accel.why})")
    work = (opts.output / f".work-{kernel.series}").resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = guestcache.prepare(work)
    try:
        progress = SuiteProgress(name, say)
        result = _keeping_output(
            work,
            opts.output / f"{kernel.release}.log",
            lambda: vm.run(
                kernel,
                _pytest_argv(work / "report.json", opts.pytest_args),
                accel=accel,
                timeout=opts.timeout,
                memory=opts.memory,
                cpus=opts.cpus,
                on_line=progress.line,
                work=work,
                env=env,
                silence=SCENARIO_TIMEOUT + 150.0,
                stop=shared.stop,
            ),
        )
        run.exit_code = suite.settle(work / "report.json", result.rc)
        run.boot_seconds = round(result.boot_seconds, 1)
        run.kernel_log = first_trace(result.kernel_log)
        run.suite_seconds = round(result.seconds - result.boot_seconds, 1)
        report = opts.output / f"{kernel.release}.json"
        (opts.output / f"{kernel.release}.log").write_text(result.stdout + result.stderr)
        if (work / "report.json").is_file():
            shutil.copyfile(work / "report.json", report)
        _finish(run, report, "\n".join((result.stdout + result.stderr).splitlines()[-40:]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return run


def warm_bytecode(pytest_args: Sequence[str] | None = None) -> None:
    """Compile netlab and let pytest rewrite the tests on the host, once, before the VMs.

    A guest reads the project over 9p, read-only, several times slower than the host under
    TCG: compiling every module there again cost minutes per kernel. Best effort: a guest
    without the bytecode is only slower.
    """

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    package = str(Path(netlab.__file__).parent)
    commands = [[sys.executable, "-m", "compileall", "-q", package]]
    if pytest_args is not None:
        commands.append(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *pytest_args]
        )
    for argv in commands:
        subprocess.run(argv, env=env, capture_output=True, check=False)


def _run_vm_retrying(name: str, opts: MatrixOptions, shared: Shared) -> KernelRun:
    """A wedged guest is booted again (``opts.retries`` times); the run says that it was."""
    hangs: list[str] = []
    while True:
        try:
            run = _run_vm(name, opts, shared)
        except vm.VmHangError as exc:
            hangs.append(str(exc).splitlines()[0])
            if len(hangs) > opts.retries:
                raise
            shared.line(f"[{name}] the guest wedged; booting it again ({len(hangs)} of {opts.retries})")
            continue
        run.hangs = hangs
        return run


def _keeping_output(work: Path, log: Path, boot: Callable[[], vm.VmRun]) -> vm.VmRun:
    """Run the VM; if it hangs or dies, keep what pytest had printed as the kernel's log."""
    try:
        return boot()
    except vm.VmError:
        if (work / "stdout").exists():
            log.write_text((work / "stdout").read_text(errors="replace"))
        raise


def _one(name: str, opts: MatrixOptions, shared: Shared) -> KernelRun:
    """One kernel's run; an error that is this kernel's alone becomes its row."""
    try:
        run = _run_running(opts, shared) if name == RUNNING else _run_vm_retrying(name, opts, shared)
    except vm.TerminatedError:
        raise  # the user stopped the whole matrix, not one kernel
    except NetlabError as exc:
        run = KernelRun(name=name, release=_release_of(name), error=str(exc))
        shared.line(f"[{name}] error: {exc}")
    shared.line(f"[{name}] done: {_summary(run)}")
    return run


def schedule(kernels: Sequence[str]) -> list[str]:
    """The order kernels start in, longest suite first so that the last to start are short and
    no slot idles while one long guest finishes: the oldest catalogue kernel (5.10's suite is
    the slowest under TCG by far), then the others newest first (newer kernels run a little
    longer), the host's own last."""
    catalogue = [k for k in kernels if k != RUNNING and not local.is_path(k)]
    vms = sorted(catalogue, key=lambda k: tuple(int(p) for p in re.findall(r"\d+", k.partition("-")[0])))
    ordered = vms[:1] + vms[:0:-1]
    return ordered + [k for k in kernels if local.is_path(k)] + [k for k in kernels if k == RUNNING]


def run_matrix(opts: MatrixOptions, say: Say) -> dict[str, Any]:
    """Run every kernel of ``opts``, ``opts.parallel`` at a time, and write the matrix; returns it
    (see :func:`matrix.failures`). SIGTERM stops every VM and the host suite, then raises."""
    opts.output.mkdir(parents=True, exist_ok=True)
    if any(name != RUNNING for name in opts.kernels):
        say("compiling netlab and the tests on the host, for the guests")
        warm_bytecode(opts.pytest_args)
    shared = Shared(say)
    jobs = min(opts.parallel, len(opts.kernels))
    if jobs > 1:
        say(f"running {jobs} kernels at a time")
    stopped = vm.TerminatedError("terminated (SIGTERM); every VM was stopped")
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="kernel") as pool:
        futures = {name: pool.submit(_one, name, opts, shared) for name in schedule(opts.kernels)}
        try:
            with procs.sigterm_raises(lambda: stopped):
                while not all(f.done() for f in futures.values()):
                    time.sleep(0.2)
        except vm.TerminatedError:
            _stop_all(shared, pool)
            raise
    runs = [futures[name].result() for name in opts.kernels]
    reports = {r.report: load_report(opts.output / r.report) for r in runs if r.report}
    return write_matrix(opts.output, runs, reports)


def _stop_all(shared: Shared, pool: ThreadPoolExecutor) -> None:
    """End every VM (their loops see the event) and the host suite (ours, by its pid)."""
    with shared.lock:
        shared.stop.set()
        for child in shared.children:
            if child.poll() is None:
                child.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _release_of(name: str) -> str:
    """The release a kernel that failed would have had: the cached one, else its name."""
    if name == RUNNING:
        return platform.release()
    if local.is_path(name):
        return Path(name).name
    have = debian.cached(lookup(name))
    return have.release if have else name


def _summary(run: KernelRun) -> str:
    if run.error:
        return "error"
    counts = ", ".join(f"{n} {k}" for k, n in sorted(run.counts.items()))
    counts = counts or f"exit {run.exit_code}"
    times = f"download {run.download_seconds:.0f} s, boot {run.boot_seconds:.0f} s, suite {run.suite_seconds:.0f} s"
    return f"{counts}; {times}"
