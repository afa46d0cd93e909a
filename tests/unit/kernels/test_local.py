"""Kernels named by path (build tree, image, .deb): what each must hold, and the one message when
it does not. The .deb path is exercised for real, with a package from the kernel cache, in
tests/integration/test_kernel_vm.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.errors import NetlabError
from netlab.kernels import local
from netlab.kernels.runner import resolve_names, schedule


def test_a_path_is_told_from_a_catalogue_name() -> None:
    assert [local.is_path(n) for n in ("6.1", "6.12-cloud", "./x.deb", "~/src/linux", "/boot/vmlinuz-6.1")] == [
        False,
        False,
        True,
        True,
        True,
    ]


def test_a_build_tree_is_its_release_and_boots_as_a_directory(tmp_path: Path) -> None:
    (tmp_path / "arch" / "x86" / "boot").mkdir(parents=True)
    (tmp_path / "arch" / "x86" / "boot" / "bzImage").write_bytes(b"MZ")
    (tmp_path / "include" / "config").mkdir(parents=True)
    (tmp_path / "include" / "config" / "kernel.release").write_text("6.13.0-rc1+\n")
    kernel = local.prepare(str(tmp_path))
    assert (kernel.release, kernel.kind, kernel.vmlinuz) == ("6.13.0-rc1+", "build", tmp_path)
    assert resolve_names([str(tmp_path), "6.1"]) == [str(tmp_path), "6.1"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nothing-here", "no such file or directory; expected a kernel build tree"),
        (lambda p: p, "a directory, but not a built kernel tree"),
        (lambda p: _file(p / "kernel.img"), "an image must be named vmlinuz-RELEASE"),
        (lambda p: _file(p / "vmlinuz-0.0.0-none"), "its modules are not installed (/lib/modules/0.0.0-none"),
    ],
)
def test_an_unusable_path_gets_one_clear_message(tmp_path: Path, make: object, message: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(NetlabError) as err:
        resolve_names([str(path)])
    assert message in str(err.value)


def test_a_file_that_is_no_debian_package_says_so(tmp_path: Path) -> None:
    with pytest.raises(NetlabError, match="not a Debian package dpkg-deb can unpack"):
        local.prepare(str(_file(tmp_path / "linux-image.deb")), root=tmp_path / "cache")


def test_paths_start_after_the_catalogue_and_before_the_running_kernel() -> None:
    assert schedule(["running", "/k/vmlinuz-6.13", "6.12-rt", "5.10"]) == [
        "5.10",
        "6.12-rt",
        "/k/vmlinuz-6.13",
        "running",
    ]


def _file(path: Path) -> Path:
    path.write_bytes(b"not a kernel")
    return path
