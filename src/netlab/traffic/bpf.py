"""Compile a tcpdump filter expression to classic BPF with libpcap, for any namespace.

``pcap_compile`` on a "dead" pcap handle (link type Ethernet) needs no interface, so the
filter is compiled without looking at the root namespace's interfaces, unlike tools that ask
an interface for its link type. The result is attached with SO_ATTACH_FILTER.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
from functools import cache

from netlab.errors import KernelFeatureError, NetlabError

DLT_EN10MB = 1
SNAPLEN = 262144
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF


class _BpfInsn(ctypes.Structure):
    _fields_ = (("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint))


class _BpfProgram(ctypes.Structure):
    _fields_ = (("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn)))


@cache
def _libpcap() -> ctypes.CDLL:
    name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        raise KernelFeatureError(
            "libpcap is not installed (needed to compile capture filters)",
            hint="apt-get install libpcap0.8 (scripts/bootstrap.sh installs it)",
        ) from None
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = (ctypes.c_int, ctypes.c_int)
    lib.pcap_compile.argtypes = (
        ctypes.c_void_p,
        ctypes.POINTER(_BpfProgram),
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint,
    )
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = (ctypes.c_void_p,)
    lib.pcap_freecode.argtypes = (ctypes.POINTER(_BpfProgram),)
    lib.pcap_close.argtypes = (ctypes.c_void_p,)
    return lib


def compile_filter(expression: str) -> bytes:
    """The ``struct sock_fprog`` instructions for ``expression`` as packed bytes (8 per insn)."""
    lib = _libpcap()
    handle = lib.pcap_open_dead(DLT_EN10MB, SNAPLEN)
    program = _BpfProgram()
    try:
        if lib.pcap_compile(handle, ctypes.byref(program), expression.encode(), 1, PCAP_NETMASK_UNKNOWN) != 0:
            reason = lib.pcap_geterr(handle).decode(errors="replace")
            raise NetlabError(f"bad capture filter '{expression}': {reason}")
        insns = b"".join(
            struct.pack(
                "HBBI", program.bf_insns[i].code, program.bf_insns[i].jt, program.bf_insns[i].jf, program.bf_insns[i].k
            )
            for i in range(program.bf_len)
        )
        lib.pcap_freecode(ctypes.byref(program))
        return insns
    finally:
        lib.pcap_close(handle)
