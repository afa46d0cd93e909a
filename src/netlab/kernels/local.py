"""Kernels the user has, named by path: a build tree, a kernel image, or a Debian package.

Kernel developers test their own builds, and users run more than Debian's stock kernels, so
``netlab matrix -k`` also takes:

* a **build tree** (``-k ~/src/linux``): a directory with ``arch/x86/boot/bzImage`` and
  ``include/config/kernel.release``; virtme-ng boots it as it is, with the modules built in it;
* a **kernel image** with its modules installed (``-k /boot/vmlinuz-6.1.0-50-amd64``): the
  release comes from the file's name (``vmlinuz-RELEASE``) and the modules from
  ``/lib/modules/RELEASE``;
* a **.deb** (``-k ./linux-image-6.1.0-50-amd64_6.1.176-1_amd64.deb``, a distribution's or one
  ``make bindeb-pkg`` made): unpacked into the cache (``trees/local-HASH``), nothing installed;
  it must hold both the image and its modules (from 7.x Debian splits them: give the
  ``linux-binary-`` package then, which depends on nothing netlab reads).

Each becomes a :class:`CachedKernel` labelled by its release, as the catalogue's are. A path that
is none of these gets one message saying what was expected.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from netlab import programs
from netlab.errors import NetlabError
from netlab.kernels.debian import CachedKernel, cache_root

EXPECTED = "a kernel build tree (with arch/x86/boot/bzImage), a kernel image (vmlinuz-RELEASE) or a kernel .deb"
_IMAGE_NAME = re.compile(r"^(?:vmlinuz|bzImage|vmlinux)-(.+)$")


def is_path(name: str) -> bool:
    """Does a ``-k`` value name a file rather than a catalogue kernel?"""
    return "/" in name or name.endswith(".deb") or name.startswith(("~", "."))


def _build_tree(tree: Path) -> CachedKernel:
    image = tree / "arch" / "x86" / "boot" / "bzImage"
    release_file = tree / "include" / "config" / "kernel.release"
    if not image.is_file() or not release_file.is_file():
        raise NetlabError(f"-k {tree}: a directory, but not a built kernel tree (no {image.name} or kernel.release)")
    # vng --run DIR boots a build tree and finds its modules there
    return _as_kernel(release_file.read_text().strip(), "build tree", image, tree=tree, boot=tree, kind="build")


def _image(path: Path) -> CachedKernel:
    m = _IMAGE_NAME.match(path.name)
    if m is None:
        raise NetlabError(f"-k {path}: not {EXPECTED}; an image must be named vmlinuz-RELEASE")
    release = m.group(1)
    modules = Path("/lib/modules") / release
    if not modules.is_dir():
        raise NetlabError(f"-k {path}: its modules are not installed ({modules} is missing)")
    return _as_kernel(release, "image", path, tree=Path("/"), boot=path)


def _as_kernel(release: str, suite: str, built: Path, *, tree: Path, boot: Path, kind: str = "") -> CachedKernel:
    """A kernel that is already on disk, as the runner takes kernels: ``built`` dates it, ``boot``
    is what vng runs, ``tree`` holds ``lib/modules/RELEASE``."""
    when = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(built.stat().st_mtime))
    return CachedKernel(
        series=release,
        suite=suite,
        release=release,
        version=release,
        packages=[],
        download_bytes=0,
        fetch_seconds=0.0,
        fetched=when,
        tree=str(tree),
        image=str(boot),
        kind=kind,
    )


def _deb(path: Path, root: Path) -> CachedKernel:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    tree = root / "trees" / f"local-{digest}"
    meta = tree / "kernel.json"
    if meta.is_file():
        kernel = CachedKernel(**json.loads(meta.read_text()))
        kernel.tree = str(tree)
        return kernel
    start = time.monotonic()
    tree.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".local-", dir=tree.parent))
    try:
        done = subprocess.run(
            [programs.require("dpkg-deb"), "-x", str(path), str(work)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise NetlabError(f"-k {path}: not a Debian package dpkg-deb can unpack ({done.stderr.strip()})")
        if (work / "usr" / "lib" / "modules").is_dir() and not (work / "lib").exists():
            (work / "lib").symlink_to("usr/lib")  # merged /usr
        images = sorted((work / "boot").glob("vmlinuz-*")) + sorted((work / "lib" / "modules").glob("*/vmlinuz"))
        releases = sorted(p.name for p in (work / "lib" / "modules").glob("*") if p.is_dir())
        if not images or not releases:
            raise NetlabError(
                f"-k {path}: the package holds no kernel image and modules"
                " (from 7.x Debian splits them: give its linux-binary-... package)"
            )
        release = releases[0]
        boot = work / "boot" / f"vmlinuz-{release}"
        if not boot.exists():
            boot.parent.mkdir(exist_ok=True)
            shutil.copyfile(images[0], boot)
        subprocess.run([programs.require("depmod"), "-b", str(work), release], check=True, capture_output=True)
        kernel = CachedKernel(
            series=release,
            suite="local .deb",
            release=release,
            version=release,
            packages=[path.name],
            download_bytes=path.stat().st_size,
            fetch_seconds=round(time.monotonic() - start, 1),
            fetched=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        saved = asdict(kernel)
        saved.pop("tree")
        (work / "kernel.json").write_text(json.dumps(saved, indent=2) + "\n")
        work.rename(tree)  # whole or not at all
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    kernel.tree = str(tree)
    return kernel


def prepare(name: str, root: Path | None = None) -> CachedKernel:
    """The kernel a path names, ready to boot (a .deb unpacked into the cache first)."""
    path = Path(name).expanduser()
    if not path.exists():
        raise NetlabError(f"-k {name}: no such file or directory; expected {EXPECTED}")
    path = path.resolve()
    if path.is_dir():
        return _build_tree(path)
    if path.suffix == ".deb":
        return _deb(path, root or cache_root())
    return _image(path)


def check(name: str) -> str:
    """Validate a path before anything runs (a .deb is only looked at, not unpacked): its absolute
    form, or one clear error."""
    path = Path(name).expanduser()
    if not path.exists():
        raise NetlabError(f"-k {name}: no such file or directory; expected {EXPECTED}")
    path = path.resolve()
    if path.is_dir():
        _build_tree(path)
    elif path.suffix != ".deb":
        _image(path)
    return str(path)
