"""The VM runner's pure parts: the guest script, the vng command line, the KVM verdict."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from netlab.expect.kernel import first_trace
from netlab.kernels import vm
from netlab.kernels.debian import CachedKernel
from netlab.kernels.vm import Accel, VmError, choose_accel, guest_env, guest_script, vng_command


def kernel(tmp_path: Path) -> CachedKernel:
    return CachedKernel("6.1", "bookworm", "6.1.0-50-amd64", "6.1.176-1", [], 0, 0.0, "", tree=str(tmp_path))


def test_guest_script_reports_through_files_and_quotes_everything(tmp_path: Path) -> None:
    work = tmp_path / "w d"
    text = guest_script(work, ["python", "-c", "print('a b')"], Path("/srv/x y"), {"K": "v w"})
    q = shlex.quote(str(work))
    assert f"cat /proc/uptime > {q}/uptime.tmp && mv {q}/uptime.tmp {q}/uptime" in text
    assert "export K='v w'" in text and "cd '/srv/x y' || exit 1" in text
    assert f"python -c 'print('\"'\"'a b'\"'\"')' > {q}/stdout 2> {q}/stderr < /dev/null" in text
    assert text.rstrip().endswith(f"mv {q}/rc.tmp {q}/rc")  # rc last, renamed: never half-written


def test_guest_env_puts_the_venv_first_and_writes_no_bytecode() -> None:
    env = guest_env({"EXTRA": "1"})
    assert env["PATH"].split(":")[0].endswith("/bin")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["EXTRA"] == "1" and env["NETLAB_IN_VM"] == "1"


def test_vng_command_tcg_readonly_root_and_writable_dirs(tmp_path: Path) -> None:
    argv = vng_command(kernel(tmp_path), Accel("tcg", "test"), tmp_path, memory="2G", cpus=2, writable=[tmp_path])
    assert argv[1:3] == ["--run", str(tmp_path / "boot" / "vmlinuz-6.1.0-50-amd64")]
    assert "--force-9p" in argv and "--disable-kvm" in argv and "--rw" not in argv
    assert argv.count("--rwdir") == 2  # the work directory and the one asked for
    assert argv[argv.index("--exec") + 1] == f"sh {tmp_path / 'guest.sh'}"


def test_kvm_runs_without_disable_and_a_shell_has_no_exec(tmp_path: Path) -> None:
    argv = vng_command(kernel(tmp_path), Accel("kvm", "probed"), None, memory="2G", cpus=2)
    assert "--disable-kvm" not in argv and "--exec" not in argv and "--rwdir" not in argv


def _probe_failing(monkeypatch: pytest.MonkeyPatch, message: str) -> None:
    def boot(*_args: object, **_kwargs: object) -> object:
        raise VmError(message)

    monkeypatch.setattr(vm, "run", boot)
    monkeypatch.setattr("netlab.kernels.vm.os.access", lambda *_a: True)


def test_a_kvm_probe_that_hangs_is_cached_as_the_verdict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _probe_failing(monkeypatch, "kernel 6.1 (kvm): no result after 45 s; the VM was stopped.\n  x")
    first = choose_accel(kernel(tmp_path), cache=tmp_path)
    assert first.kind == "tcg" and "hung" in first.why
    assert choose_accel(kernel(tmp_path), cache=tmp_path).why.endswith("(probed earlier)")


def test_a_kvm_probe_that_fails_for_another_reason_is_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing busybox once made every later run TCG 'because KVM failed'."""
    _probe_failing(
        monkeypatch,
        "kernel 6.1 (kvm): the VM ended (exit 1) without running the command (panic or failed boot). "
        "Console's last lines:\n    vng: a statically linked busybox could not be found",
    )
    accel = choose_accel(kernel(tmp_path), cache=tmp_path)
    assert accel.kind == "tcg" and "busybox" in accel.why and "not cached" in accel.why
    assert not (tmp_path / "accel.json").exists()


def test_the_kernel_log_is_read_from_the_commands_start_and_its_first_trace_kept(tmp_path: Path) -> None:
    (tmp_path / "dmesg").write_text(
        "[ 1.0] WARNING: at boot, not the suite's\n"
        f"[ 2.0] {vm.SUITE_MARK}\n[ 3.0] calmbr: port 1 entered forwarding state\n"
        "[ 4.0] WARNING: CPU: 0 PID: 9 at net/core/dev.c:3150 skb_warn_bad_offload+0x1/0x2\n"
        "[ 4.0] Call Trace:\n[ 4.0]  <TASK>\n"
    )
    lines = vm._since_mark(tmp_path / "dmesg")
    assert lines[0].endswith("forwarding state")
    trace = first_trace(lines, after=1)
    assert trace.splitlines() == [lines[1], "[ 4.0] Call Trace:"]
    assert first_trace(lines[:1]) == ""


def test_the_modules_image_is_attached_read_only_and_mounted_where_the_symlink_was(tmp_path: Path) -> None:
    image = tmp_path / "modules.ext4"
    argv = vng_command(kernel(tmp_path), Accel("tcg", "test"), tmp_path, memory="2G", cpus=1, modules=image)
    share, opts = [a for a in argv if a.startswith("--qemu-opts=")]
    assert f"file={image},format=raw,readonly=on" in opts and f"serial={vm.MODULES_SERIAL}" in opts
    assert f"mount_tag={vm.HOST_TAG}" in share and "path=/," in share and "readonly=on" in share
    assert argv[-2:] == [share, opts]  # vng takes QEMU's options last
    script = guest_script(tmp_path, ["true"], tmp_path, {}, modules_disk=True)
    assert 'mount -t ext4 -o ro,noload "/dev/${d##*/}" "$m"' in script
    assert script.index("/proc/uptime") < script.index("mount -t ext4")  # boot time is the kernel's own
    assert "mount -t ext4" not in guest_script(tmp_path, ["true"], tmp_path, {})


def test_the_guest_reads_programs_python_and_the_project_through_the_cached_share(tmp_path: Path) -> None:
    """Everything the guest only reads comes through the cached view, but no bind may cover a
    directory the guest writes to: the working directory's other directories are bound instead."""
    project = tmp_path / "project"
    for d in ("src", "scenarios", "matrix/.work-6.1", ".git"):
        (project / d).mkdir(parents=True)
    work = project / "matrix" / ".work-6.1"
    inside = vm.cached_dirs(project, [work])
    assert {project / "src", project / "scenarios"} <= set(inside)
    assert not any(work.is_relative_to(d) for d in inside)
    assert project / ".git" not in inside  # nothing a guest reads
    assert {Path("/usr/bin"), Path(sys.prefix).resolve()} <= set(inside)
    assert not any(Path("/usr/lib/modules").is_relative_to(d) for d in inside)  # virtme-ng's own mount
    elsewhere = vm.cached_dirs(project, [tmp_path / "out"])
    assert project in elsewhere and project / "src" not in elsewhere  # no bind inside another
    script = guest_script(work, ["true"], project, {}, cached=inside)
    assert f"cache=loose {vm.HOST_TAG} {vm.HOST_VIEW}" in script
    assert f"{project / 'src'}" in script and script.index("cache=loose") < script.index("true >")


def test_a_venv_reached_through_a_symlink_is_read_where_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout whose .venv links to a shared venv: the bind must be the venv itself (a bind
    of the project would cover only the link, and every import would go uncached)."""
    shared = tmp_path / "shared-venv"
    shared.mkdir()
    project = tmp_path / "checkout"
    project.mkdir()
    (project / ".venv").symlink_to(shared)
    monkeypatch.setattr(sys, "prefix", str(project / ".venv"))
    assert shared in vm.cached_dirs(project, [tmp_path / "out"])
