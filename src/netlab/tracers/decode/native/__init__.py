"""The tracefs tracer's native walker (``ringwalk.c``): built, checked and loaded through ctypes.

Why ctypes and a plain shared library rather than a CPython extension: it needs no Python
headers and no build step in ``pip install``; gcc is enough, and the library is rebuilt
whenever its source changes (its file name carries the source's hash, so a stale build is
never loaded). ``scripts/bootstrap.sh`` builds it; a tracer that finds it missing builds it on
first use, and where that cannot be done (no compiler, ``NETLAB_NATIVE=off``) the pure-Python
decoder runs instead and the tracer's probe says so. The library is loaded only from a
directory of root's own (:func:`netlab.runtime.cachedir.private`).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from netlab import programs
from netlab.errors import NetlabError
from netlab.runtime import cachedir

SOURCE = Path(__file__).with_name("ringwalk.c")
DEFAULT_DIR = cachedir.ROOT / "native"
ABI = 1
NAME_LEN = 16
#: rw_follow's answers
DONE, NEED_STEP, OUT_FULL, NOMEM = 0, 1, 2, -1
#: record kinds, as ringwalk.c numbers them
PATH, CONSUME, DROP = 1, 2, 3
NO_REASON = -(2**31)
CFLAGS = ["-O2", "-shared", "-fPIC", "-fvisibility=default", "-Wall"]


class Spec(ctypes.Structure):
    """struct rw_spec: where one event's fields are (-1: absent)."""

    _fields_ = [
        ("type_id", ctypes.c_int32),
        ("kind", ctypes.c_int32),
        ("event", ctypes.c_int32),
        ("skb_off", ctypes.c_int32),
        ("skb_size", ctypes.c_int32),
        ("name_off", ctypes.c_int32),
        ("name_size", ctypes.c_int32),
        ("name_loc", ctypes.c_int32),
        ("loc_off", ctypes.c_int32),
        ("loc_size", ctypes.c_int32),
        ("reason_off", ctypes.c_int32),
        ("reason_size", ctypes.c_int32),
        ("proto_off", ctypes.c_int32),
        ("proto_size", ctypes.c_int32),
    ]


class Rec(ctypes.Structure):
    """struct rw_rec: one decoded record."""

    _fields_ = [
        ("ts", ctypes.c_uint64),
        ("skb", ctypes.c_uint64),
        ("location", ctypes.c_uint64),
        ("pid", ctypes.c_int32),
        ("reason", ctypes.c_int32),
        ("event", ctypes.c_int32),
        ("kind", ctypes.c_int32),
        ("protocol", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("name", ctypes.c_char * NAME_LEN),
    ]


#: struct rw_out, read back with struct.iter_unpack: ts, location, kind, pid, reason, protocol,
#: node, ntimes, times_at, cpu
OUT_FORMAT = "<QQiiiIIIII"
OUT_SIZE = 48


def _directory() -> Path | None:
    return cachedir.configured("NETLAB_NATIVE", DEFAULT_DIR)


def library_name() -> str:
    """The built library's file name: the source's hash, so an edit is a new build."""
    digest = hashlib.sha256(SOURCE.read_bytes() + f"{ABI}{CFLAGS}".encode()).hexdigest()[:16]
    return f"ringwalk-{digest}.so"


def build(directory: Path | None = None) -> Path:
    """Compile ``ringwalk.c`` into ``directory`` (atomically); returns the library's path."""
    directory = directory or _directory() or DEFAULT_DIR
    target = directory / library_name()
    if target.exists():
        return target
    compiler = shutil.which("gcc")
    if compiler is None:
        raise NetlabError("no C compiler (gcc) to build the native trace walker", hint=programs.install_hint("gcc"))
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".build-", suffix=".so")
    os.close(fd)
    try:
        try:
            done = subprocess.run(
                [compiler, *CFLAGS, "-o", tmp, str(SOURCE)], capture_output=True, text=True, check=False, timeout=120
            )
        except subprocess.TimeoutExpired:
            raise NetlabError("building the native trace walker: the compiler ran for 120 s") from None
        if done.returncode != 0:
            first = next((line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip())
            raise NetlabError(f"building the native trace walker failed: {first}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


@dataclass(frozen=True)
class Native:
    """The loaded library, or why there is none."""

    lib: ctypes.CDLL | None
    why_not: str = ""


def _declare(lib: ctypes.CDLL) -> None:
    p, c_long, c_int = ctypes.c_void_p, ctypes.c_long, ctypes.c_int
    u32p, longp = ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_long)
    signatures: dict[str, tuple[object, list[object]]] = {
        "rw_abi": (c_int, []),
        "rw_decode": (c_long, [p, c_long, c_int, p, c_int, c_int, p, c_long]),
        "rw_drop_pids": (c_long, [p, c_long, ctypes.POINTER(ctypes.c_int32), c_long]),
        "rw_new": (p, [ctypes.c_uint64]),
        "rw_free": (None, [p]),
        "rw_hop": (c_int, [p, ctypes.c_uint32, ctypes.POINTER(ctypes.c_int32), ctypes.c_char_p]),
        "rw_need": (None, [p, u32p, u32p]),
        "rw_set_step": (c_int, [p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, c_int]),
        "rw_begin": (c_int, [p, c_int, ctypes.POINTER(ctypes.c_void_p), longp]),
        "rw_follow": (c_int, [p, p, c_long, longp, p, c_long, longp]),
        "rw_records": (ctypes.c_uint64, [p]),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


@functools.cache
def load() -> Native:
    """The native walker, built if need be (once per process)."""
    directory = _directory()
    if directory is None:
        return Native(None, "NETLAB_NATIVE=off")
    try:
        path = directory / library_name()
        if not path.exists():
            path = build(directory)
        if not cachedir.private(directory):
            return Native(None, f"{directory} is writable by others: not loading code from it")
        lib = ctypes.CDLL(str(path))
        _declare(lib)
        if lib.rw_abi() != ABI:
            return Native(None, f"{path} is not this version of the walker")
    except (NetlabError, OSError) as exc:
        return Native(None, str(exc))
    return Native(lib)
