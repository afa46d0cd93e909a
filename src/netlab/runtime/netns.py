"""Named network namespaces, the way ``ip netns`` makes them, without forking.

A named namespace is a bind mount of ``/proc/thread-self/ns/net`` onto ``/run/netns/NAME``;
that is what keeps it alive with no process in it, and what makes ``ip netns list/exec`` see
it. iproute2 forks to create one; we switch the *calling thread* into a fresh namespace with
``unshare(CLONE_NEWNET)``, bind-mount it, and switch back with ``setns``. The network namespace
is per thread, so other threads never notice, and the switch back happens in a ``finally``.

The same thread switch opens sockets inside a namespace (a socket stays in the namespace it
was created in), and reads or writes ``/proc/sys/net`` there (sysctl lookups use the
namespace of the calling thread).

Child processes enter a node like ``ip netns exec`` does: join the network namespace, take a
private mount namespace and mount a fresh sysfs, so ``/sys/class/net`` shows the node's
interfaces rather than the host's.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from netlab.errors import KernelFeatureError, PrivilegeError
from netlab.runtime import procs

NETNS_DIR = Path("/run/netns")

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_BIND = 0x1000
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_lock = threading.RLock()


def _oserror(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


def _call(ret: int, what: str) -> None:
    if ret != 0:
        raise _oserror(what)


def _mount(src: str, target: str, fstype: str | None, flags: int) -> None:
    _call(
        _libc.mount(src.encode(), target.encode(), fstype.encode() if fstype else None, flags, None),
        f"mount {target}",
    )


def require_root() -> None:
    """Fail early, with one message, when we cannot manage namespaces."""
    if os.geteuid() != 0:
        raise PrivilegeError(
            "netlab needs root to create namespaces and links (CAP_SYS_ADMIN, CAP_NET_ADMIN)",
            hint="run it with sudo, or as root",
        )


def _prepare_dir() -> None:
    """Make /run/netns a shared mount point, exactly as ``ip netns add`` does.

    Shared propagation lets a namespace's bind mount be removed even while a process in
    another mount namespace (e.g. ``ip netns exec`` or ``netlab shell``) still sees it.
    """
    NETNS_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    if _libc.mount(b"", str(NETNS_DIR).encode(), b"none", MS_SHARED | MS_REC, None) == 0:
        return
    if ctypes.get_errno() != errno.EINVAL:
        raise _oserror("make /run/netns shared")
    _mount(str(NETNS_DIR), str(NETNS_DIR), "none", MS_BIND | MS_REC)
    _mount("", str(NETNS_DIR), "none", MS_SHARED | MS_REC)


def path(name: str) -> Path:
    """Where namespace ``name`` is bind-mounted."""
    return NETNS_DIR / name


def exists(name: str) -> bool:
    """True when ``/run/netns/NAME`` exists (mounted or a stale file)."""
    return path(name).exists()


def inode(name: str) -> int | None:
    """The nsfs inode of a namespace: its identity while it lives, None if it is gone."""
    try:
        return path(name).stat().st_ino
    except OSError:
        return None


NSFS_MAGIC_DEV = os.stat("/proc/self/ns/net").st_dev if os.path.exists("/proc/self/ns/net") else -1


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the body is done (they are delivered right after).

    Between unshare() and the setns() back, this thread is inside the new namespace; a
    Python-level exception raised there by a signal handler must not interrupt that.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def create(name: str, identify: Callable[[int], None] | None = None) -> int:
    """Create named namespace ``name`` and return its inode; refuses to reuse a name.

    ``identify(inode)`` is called *before* the namespace is pinned by its bind mount, so a
    journal that records the inode there never misses a namespace that exists: killed before
    the mount, only an empty placeholder file is left (see :func:`is_placeholder`).
    """
    with _lock, _signals_deferred():
        _prepare_dir()
        target = path(name)
        try:
            fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, f"namespace {name} already exists") from None
        os.close(fd)
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            if _libc.unshare(CLONE_NEWNET) != 0:
                err = _oserror(f"unshare a network namespace for {name}")
                target.unlink()
                if err.errno == errno.EINVAL:
                    raise KernelFeatureError("this kernel has no network namespaces (CONFIG_NET_NS)")
                raise err
            try:
                ino = os.stat("/proc/thread-self/ns/net").st_ino
                if identify is not None:
                    identify(ino)
                _mount("/proc/thread-self/ns/net", str(target), "none", MS_BIND)
            except BaseException:
                target.unlink()
                raise
            finally:
                _call(_libc.setns(home, CLONE_NEWNET), "return to the original namespace")
        finally:
            os.close(home)
        return ino


def is_placeholder(name: str) -> bool:
    """True when /run/netns/NAME is an empty file, not a namespace (a create cut short)."""
    try:
        st = path(name).stat()
    except OSError:
        return False
    return st.st_dev != NSFS_MAGIC_DEV and st.st_size == 0


def remove(name: str) -> bool:
    """Unmount and unlink namespace ``name``; False if it was not there.

    The kernel frees the namespace, and every link, route and rule inside it, once the last
    process and socket in it are gone.
    """
    target = path(name)
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"umount {target}: {os.strerror(err)}")
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    return True


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with the calling thread inside namespace ``name``."""
    fd = os.open(path(name), os.O_RDONLY)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _call(_libc.setns(fd, CLONE_NEWNET), f"enter namespace {name}")
        try:
            yield
        finally:
            _call(_libc.setns(home, CLONE_NEWNET), "return to the original namespace")
    finally:
        os.close(fd)
        os.close(home)


def open_socket(name: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket that lives in namespace ``name`` (sockets keep the namespace they were made in)."""
    with entered(name):
        return socket.socket(family, kind, proto)


def open_fd(name: str) -> int:
    """An fd for the namespace, as netlink's IFLA_NET_NS_FD wants; the caller closes it."""
    return os.open(path(name), os.O_RDONLY)


def enter_for_exec(name: str, *, sysfs: bool = True) -> None:
    """Move *this process* into a node for good, as ``ip netns exec`` does before exec.

    Only for a process that will exec or is a fresh child: it also unshares the mount
    namespace, which a multi-threaded process cannot do.
    """
    fd = os.open(path(name), os.O_RDONLY)
    try:
        _call(_libc.setns(fd, CLONE_NEWNET), f"enter namespace {name}")
    finally:
        os.close(fd)
    if not sysfs:
        return
    _call(_libc.unshare(CLONE_NEWNS), "unshare the mount namespace")
    _mount("", "/", "none", MS_SLAVE | MS_REC)
    if _libc.umount2(b"/sys", MNT_DETACH) == 0:
        _mount(name, "/sys", "sysfs", 0)


def hide_for_exec(directory: str) -> None:
    """Give *this process* a private mount namespace in which ``directory`` is an empty tmpfs
    (nothing if it does not exist); only for a fresh child about to exec, as above. The host's
    mounts are not touched: the tmpfs goes when the process does."""
    _call(_libc.unshare(CLONE_NEWNS), "unshare the mount namespace")
    _mount("", "/", "none", MS_SLAVE | MS_REC)
    if os.path.isdir(directory):
        _mount("netlab-hidden", directory, "tmpfs", 0)


def preexec(name: str, *, sysfs: bool = True) -> Callable[[], None]:
    """A ``preexec_fn`` that puts a subprocess inside a node before it execs."""

    def enter() -> None:
        enter_for_exec(name, sysfs=sysfs)

    return enter


def pids_in(names: Iterable[str]) -> dict[str, list[int]]:
    """The processes whose network namespace is one of ``names`` (one scan of /proc)."""
    wanted: dict[tuple[int, int], str] = {}
    for name in names:
        try:
            st = path(name).stat()
        except OSError:
            continue
        wanted[(st.st_dev, st.st_ino)] = name
    found: dict[str, list[int]] = {name: [] for name in wanted.values()}
    if not wanted:
        return found
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        key = procs.netns_identity(entry.name)
        if key in wanted:
            found[wanted[key]].append(int(entry.name))
    return found


def listed() -> list[str]:
    """Every namespace name under /run/netns."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []
