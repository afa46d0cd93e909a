"""The two-instruction programs netlab loads without a compiler."""

from __future__ import annotations

import struct

from netlab.runtime import bpf


def test_a_program_that_returns_one_value_is_a_move_and_an_exit() -> None:
    code = bpf.returning(bpf.XDP_ACTIONS["drop"])
    assert len(code) == 16
    assert struct.unpack("<BBhi", code[:8]) == (0xB7, 0, 0, 1)  # r0 = 1 (XDP_DROP)
    assert struct.unpack("<BBhi", code[8:]) == (0x95, 0, 0, 0)  # exit
