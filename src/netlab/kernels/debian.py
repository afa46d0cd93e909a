"""Debian's stock kernels, fetched into a cache without touching the host's package state.

Each suite gets a private apt root under the cache (its own ``sources.list``, lists, archives and
an empty dpkg status), so ``apt-get update``/``download`` never read or write the host's sources
or state; apt still verifies every file against the suite's signed ``InRelease`` with the keys of
``debian-archive-keyring``. Packages are unpacked with ``dpkg -x`` (nothing is installed) and
``depmod -b`` writes the ``modules.dep`` that Debian's postinst would have.

Package names are resolved, not hard-coded: the suite's ``linux-image-amd64`` depends on one
``linux-image-ABI-amd64``; from 7.x that package is only a shell that depends on
``linux-binary-ABI-amd64`` (the vmlinuz) and ``linux-modules-ABI-amd64``, so every
``linux-(image|binary|modules)-`` dependency is fetched too.

Cache layout (``$NETLAB_KERNEL_CACHE``, default ``/var/lib/netlab/kernels`` for root; not under
``/var/cache``, which virtme-ng hides behind a tmpfs in the guest, where the modules must be seen)::

    apt/SUITE/        private apt root (sources.list, lists, archives)
    debs/SUITE/       the downloaded .deb files
    trees/RELEASE/    the unpacked kernel: boot/vmlinuz-RELEASE, lib/modules/RELEASE, kernel.json
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from netlab import programs
from netlab.errors import KernelFeatureError, NetlabError
from netlab.kernels.catalogue import KernelSpec

MIRROR = "http://deb.debian.org/debian"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
LISTS_MAX_AGE = 24 * 3600.0  # seconds before `kernels` refreshes a suite's package lists
_DEP_NAME = re.compile(r"^\s*([a-z0-9][a-z0-9+.\-]*)")
_KERNEL_PART = re.compile(r"^linux-(image|binary|modules)-(\d[^ ]*-amd64)$")


def cache_root() -> Path:
    """Where fetched kernels live; outside any clone, so CI runs and sessions reuse it."""
    env = os.environ.get("NETLAB_KERNEL_CACHE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/netlab/kernels")
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "netlab" / "kernels"


# ---------------------------------------------------------------- pure: apt's output


def parse_stanzas(text: str) -> list[dict[str, str]]:
    """RFC 822 stanzas (``apt-cache show``) as dicts; continuation lines are joined."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, ""
        elif line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def depends(stanza: dict[str, str]) -> list[str]:
    """Package names of ``Depends`` (first choice of each alternative; versions dropped)."""
    names = []
    for clause in stanza.get("Depends", "").split(","):
        m = _DEP_NAME.match(clause.split("|")[0])
        if m:
            names.append(m.group(1))
    return names


def image_package(meta: dict[str, str]) -> str:
    """The ``linux-image-ABI-amd64`` the metapackage points at."""
    for name in depends(meta):
        m = _KERNEL_PART.match(name)
        if m and m.group(1) == "image":
            return name
    raise NetlabError(f"{meta.get('Package')} {meta.get('Version', '?')} depends on no linux-image-ABI-amd64")


def kernel_packages(image: dict[str, str]) -> list[str]:
    """Every package that holds a part of the kernel: the image and, from 7.x, binary and modules."""
    name = image["Package"]
    return [name] + [d for d in depends(image) if _KERNEL_PART.match(d) and d != name]


def release_of(image_name: str) -> str:
    """``linux-image-6.1.0-50-amd64`` -> ``6.1.0-50-amd64`` (what ``uname -r`` prints in the VM)."""
    m = _KERNEL_PART.match(image_name)
    if m is None:
        raise NetlabError(f"{image_name!r} is not a kernel package name")
    return m.group(2)


# ---------------------------------------------------------------- the cache


@dataclass
class CachedKernel:
    """A kernel unpacked in the cache, as ``kernel.json`` records it."""

    series: str
    suite: str
    release: str
    version: str
    packages: list[str]
    download_bytes: int
    fetch_seconds: float
    fetched: str
    tree: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    #: what vng boots when it is not ``TREE/boot/vmlinuz-RELEASE``: an image elsewhere, or a
    #: build tree's directory (:mod:`netlab.kernels.local`)
    image: str = ""
    kind: str = ""  # "" (a kernel and its modules, unpacked or installed) or "build" (a build tree)

    @property
    def vmlinuz(self) -> Path:
        return Path(self.image) if self.image else Path(self.tree) / "boot" / f"vmlinuz-{self.release}"

    @property
    def modules(self) -> Path:
        return Path(self.tree) / "lib" / "modules" / self.release

    @property
    def modules_image(self) -> Path:
        """The modules as an ext4 image (see :func:`modules_image`), in the cache whoever owns
        the modules (a kernel installed on this machine has them in /lib/modules)."""
        return cache_root() / "images" / f"{self.release}.ext4"


#: the image's slack over the modules' size (ext4's metadata), and its floor
IMAGE_SLACK, IMAGE_FLOOR = 1.25, 32 << 20


def modules_image(kernel: CachedKernel) -> Path | None:
    """The kernel's modules as a read-only ext4 image the guest mounts over its ``/lib/modules``
    (built once per kernel in the cache, a few seconds; None where it cannot be built).

    Why: the guest reads the host's files over 9p without a page cache, a round trip per ``stat``.
    ``perf record`` walks the whole modules tree on every start (4,900 files): 13-18 s a
    trace on 6.1, 60-80 s on 5.10, against 1.6 s with the tree on a block device, whose pages
    the guest caches. ``modprobe`` reads the modules from there too.
    """
    if kernel.kind == "build":
        return None  # virtme-ng installs a build tree's modules its own way
    image = kernel.modules_image
    if not kernel.modules.is_dir():
        return None
    if image.is_file() and image.stat().st_mtime >= kernel.modules.stat().st_mtime:
        return image
    if shutil.which("mke2fs") is None or " " in str(image):
        return None
    image.parent.mkdir(parents=True, exist_ok=True)
    size = sum(f.stat().st_size for f in kernel.modules.rglob("*") if f.is_file() and not f.is_symlink())
    blocks = max(IMAGE_FLOOR, int(size * IMAGE_SLACK)) // 4096
    tmp = image.with_suffix(f".tmp{os.getpid()}")
    argv = [programs.require("mke2fs"), "-q", "-F", "-t", "ext4", "-b", "4096", "-O", "^has_journal"]
    argv += ["-E", "root_owner=0:0", "-L", "netlab-mods", "-d", str(kernel.modules), str(tmp), str(blocks)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        return None
    tmp.replace(image)  # whole or not at all: a parallel build of the same kernel loses nothing
    return image


def cached(spec: KernelSpec, root: Path | None = None) -> CachedKernel | None:
    """The newest unpacked kernel of this series in the cache, or None."""
    trees = (root or cache_root()) / "trees"
    found: list[CachedKernel] = []
    for meta in trees.glob("*/kernel.json"):
        try:
            data = json.loads(meta.read_text())
            kernel = CachedKernel(**data)
        except (OSError, ValueError, TypeError):
            continue  # a half-written tree (interrupted fetch) is ignored and redone
        kernel.tree = str(meta.parent)
        if kernel.series == spec.name and kernel.vmlinuz.is_file():
            found.append(kernel)
    return max(found, key=lambda k: k.fetched, default=None)


class AptRoot:
    """A private apt configuration for one suite, inside the cache."""

    def __init__(self, spec: KernelSpec, root: Path) -> None:
        self.spec = spec
        self.dir = root / "apt" / spec.suite
        self.debs = root / "debs" / spec.suite

    def _options(self) -> list[str]:
        d = self.dir
        return [
            "-o", f"Dir::Etc::SourceList={d / 'sources.list'}",
            "-o", f"Dir::Etc::SourceParts={d / 'sources.list.d'}",
            "-o", f"Dir::Etc::Preferences={d / 'preferences'}",
            "-o", f"Dir::Etc::PreferencesParts={d / 'preferences.d'}",
            "-o", f"Dir::State={d / 'state'}",
            "-o", f"Dir::State::status={d / 'status'}",
            "-o", f"Dir::Cache={d / 'cache'}",
            "-o", "Dir::Cache::pkgcache=pkgcache.bin",  # some images turn the binary cache off
            "-o", "Dir::Cache::srcpkgcache=srcpkgcache.bin",
            "-o", "APT::Architecture=amd64",
            "-o", "APT::Sandbox::User=root",
            "-o", "Debug::NoLocking=1",
        ]  # fmt: skip

    def prepare(self) -> None:
        if not KEYRING.is_file():
            raise KernelFeatureError(f"{KEYRING} is missing", hint="apt-get install debian-archive-keyring")
        for sub in ("sources.list.d", "preferences.d", "state/lists/partial", "cache/archives/partial"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "status").touch()
        line = f"deb [signed-by={KEYRING}] {MIRROR} {self.spec.suite} main\n"
        (self.dir / "sources.list").write_text(line)

    def lists_age(self) -> float | None:
        lists = list((self.dir / "state" / "lists").glob("*_Packages"))
        if not lists:
            return None
        return time.time() - min(p.stat().st_mtime for p in lists)

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        argv = [programs.require(tool), *self._options(), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise NetlabError(f"{tool} {' '.join(args)} for {self.spec.suite} failed:\n{tail}")
        return proc.stdout

    def update(self, *, force: bool = False) -> None:
        self.prepare()
        age = self.lists_age()
        if force or age is None or age > LISTS_MAX_AGE:
            self.run("apt-get", "-q", "update")

    def show(self, *packages: str) -> dict[str, dict[str, str]]:
        """The stanzas of ``packages`` by name (one apt-cache call: each loads the whole cache)."""
        stanzas = parse_stanzas(self.run("apt-cache", "show", "--no-all-versions", *packages))
        found = {s.get("Package", ""): s for s in stanzas}
        missing = [p for p in packages if p not in found]
        if missing:
            raise NetlabError(f"{', '.join(missing)} not found in {self.spec.suite}")
        return found


def _boot_layout(tree: Path, release: str) -> None:
    """From 7.x the image lives in ``lib/modules/RELEASE/`` (``vmlinuz``, ``config``...); put a copy
    where older packages had it, so every tree looks the same to the VM runner."""
    boot = tree / "boot"
    boot.mkdir(exist_ok=True)
    for name in ("vmlinuz", "config", "System.map"):
        src, dst = tree / "lib" / "modules" / release / name, boot / f"{name}-{release}"
        if src.is_file() and not dst.exists():
            shutil.copyfile(src, dst)


@dataclass(frozen=True)
class Resolved:
    """What fetching a series means right now: its release, version and packages with sizes."""

    spec: KernelSpec
    release: str
    version: str
    sizes: dict[str, int]

    @property
    def download_bytes(self) -> int:
        return sum(self.sizes.values())


def resolve(spec: KernelSpec, root: Path | None = None, *, refresh: bool = False) -> Resolved:
    """The suite's current kernel and the packages that make it (lists refreshed when stale)."""
    apt = AptRoot(spec, root or cache_root())
    apt.update(force=refresh)
    meta = apt.show(spec.meta_package)[spec.meta_package]
    name = image_package(meta)
    image = apt.show(name)[name]
    names = kernel_packages(image)
    stanzas = apt.show(*names[1:]) if len(names) > 1 else {}
    stanzas[name] = image
    sizes = {n: int(stanzas[n].get("Size", "0")) for n in names}
    release = release_of(image["Package"])
    if not release.startswith(spec.series + ".") and not release.startswith(spec.series + "-"):
        raise NetlabError(f"{spec.suite}'s kernel is now {release}, not of series {spec.series}")
    return Resolved(spec, release, image.get("Version", "?"), sizes)


def fetch(spec: KernelSpec, root: Path | None = None, *, refresh: bool = False) -> CachedKernel:
    """Download (apt verifies), unpack and depmod the suite's kernel; reuse the cache when current."""
    root = root or cache_root()
    start = time.monotonic()
    resolved = resolve(spec, root, refresh=refresh)
    have = cached(spec, root)
    if have is not None and have.release == resolved.release and have.version == resolved.version:
        return have
    apt = AptRoot(spec, root)
    apt.debs.mkdir(parents=True, exist_ok=True)
    for old in apt.debs.glob("*.deb"):
        old.unlink()
    apt.run("apt-get", "-q", "download", *resolved.sizes, cwd=apt.debs)
    tree = root / "trees" / resolved.release
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    for deb in sorted(apt.debs.glob("*.deb")):
        subprocess.run([programs.require("dpkg-deb"), "-x", str(deb), str(tree)], check=True, capture_output=True)
    if (tree / "usr" / "lib" / "modules").is_dir() and not (tree / "lib").exists():
        (tree / "lib").symlink_to("usr/lib")  # merged /usr (trixie on): depmod -b and vng look in lib/
    modules = tree / "lib" / "modules" / resolved.release
    _boot_layout(tree, resolved.release)
    if not (tree / "boot" / f"vmlinuz-{resolved.release}").is_file() or not modules.is_dir():
        raise NetlabError(f"{spec.label}: the packages hold no vmlinuz or modules for {resolved.release}")
    subprocess.run([programs.require("depmod"), "-b", str(tree), resolved.release], check=True, capture_output=True)
    kernel = CachedKernel(
        series=spec.name,
        suite=spec.suite,
        release=resolved.release,
        version=resolved.version,
        packages=list(resolved.sizes),
        download_bytes=resolved.download_bytes,
        fetch_seconds=round(time.monotonic() - start, 1),
        fetched=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    meta = asdict(kernel)
    meta.pop("tree")
    (tree / "kernel.json").write_text(json.dumps(meta, indent=2) + "\n")  # last: marks the tree complete
    kernel.tree = str(tree)
    return kernel
