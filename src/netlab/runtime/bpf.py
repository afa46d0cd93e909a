"""Tiny eBPF programs netlab loads itself, and attaching one to a node's interface as XDP.

A scenario that needs "an XDP program that drops everything" should not need clang, a
compiled object file or libbpf: such a program is two instructions. They are written here as
bytes, loaded with the bpf(2) system call and attached over rtnetlink (IFLA_XDP), from inside
the node's namespace. Generic (skb) mode, so any device takes it, veth included, and the drop
goes through the stack's own free path, where the tracers see it.
"""

from __future__ import annotations

import ctypes
import os
import struct

from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_SETLINK
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from netlab.errors import KernelFeatureError
from netlab.runtime.netlink import open_route_socket, request

SYS_BPF = 321  # x86_64
BPF_PROG_LOAD = 5
BPF_PROG_TYPE_XDP = 6
#: XDP's verdicts (enum xdp_action)
#: (a redirect with no target set, as this program makes, fails in the kernel)
XDP_ACTIONS = {"aborted": 0, "drop": 1, "pass": 2, "redirect": 4}
XDP_FLAGS_SKB_MODE = 2
_INSN = struct.Struct("<BBhi")  # opcode, dst/src registers, offset, immediate
MOV64_IMM, EXIT = 0xB7, 0x95
LOG_SIZE = 4096


def returning(value: int) -> bytes:
    """A program that does nothing but return ``value`` (``r0 = value; exit``)."""
    return _INSN.pack(MOV64_IMM, 0, 0, value) + _INSN.pack(EXIT, 0, 0, 0)


def load(prog_type: int, instructions: bytes, name: str) -> int:
    """Load a program; its file descriptor (the caller closes it). The verifier's words are in
    the error when it refuses."""
    insns = ctypes.create_string_buffer(instructions, len(instructions))
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(LOG_SIZE)
    # union bpf_attr, BPF_PROG_LOAD's members up to prog_name (include/uapi/linux/bpf.h)
    attr = struct.pack(
        "<IIQQIIQII16s",
        prog_type,
        len(instructions) // _INSN.size,
        ctypes.addressof(insns),
        ctypes.addressof(license_),
        1,
        LOG_SIZE,
        ctypes.addressof(log),
        0,
        0,
        name.encode()[:15],
    )
    buffer = ctypes.create_string_buffer(attr, len(attr))
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(SYS_BPF, BPF_PROG_LOAD, buffer, len(attr))
    if fd < 0:
        err = ctypes.get_errno()
        words = log.value.decode(errors="replace").strip()
        raise KernelFeatureError(
            f"the kernel refuses a BPF program: {os.strerror(err)}{f' ({words})' if words else ''}"
        )
    return int(fd)


def attach_xdp(netns: str, ifindex: int, prog_fd: int) -> None:
    """Attach program ``prog_fd`` to interface ``ifindex`` of ``netns`` in generic mode (-1:
    detach what is there)."""
    msg = ifinfmsg()
    msg["index"] = ifindex
    msg["attrs"] = [("IFLA_XDP", {"attrs": [("IFLA_XDP_FD", prog_fd), ("IFLA_XDP_FLAGS", XDP_FLAGS_SKB_MODE)]})]
    msg["header"]["type"] = RTM_SETLINK
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
    msg.encode()
    with open_route_socket(netns) as sock:
        try:
            request(sock, bytes(msg.data))
        except OSError as exc:
            raise KernelFeatureError(f"cannot attach XDP to interface {ifindex}: {exc.strerror}") from None


def xdp(netns: str, ifindex: int, action: str) -> None:
    """Make interface ``ifindex`` of ``netns`` answer every frame with XDP ``action`` (drop,
    pass, aborted); the program lives as long as the interface or until :func:`no_xdp`."""
    fd = load(BPF_PROG_TYPE_XDP, returning(XDP_ACTIONS[action]), f"netlab_{action}")
    try:
        attach_xdp(netns, ifindex, fd)
    finally:
        os.close(fd)


def no_xdp(netns: str, ifindex: int) -> None:
    """Take the XDP program off interface ``ifindex`` of ``netns``."""
    attach_xdp(netns, ifindex, -1)
