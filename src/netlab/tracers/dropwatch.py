"""dropwatch (the kernel's NET_DROP_MONITOR over generic netlink), where the kernel has it.

Kernels built without CONFIG_NET_DROP_MONITOR have no ``NET_DM`` generic-netlink family;
dropwatch then says "Unable to find NET_DM family", and :meth:`DropwatchTracer.probe` says so
up front by asking the generic-netlink controller. dropwatch reports machine-wide
``N drops at function+offset``: no device, namespace or reason, so its drops are not attributed
to a node (the ``skb:kfree_skb`` tracers are the ones that do that).
"""

from __future__ import annotations

import re
import socket
import struct
import time

from netlab.errors import NetlabError
from netlab.lab import Lab
from netlab.tracers.base import Probe, Session, TraceOptions, Tracer, tool_refusal
from netlab.tracers.events import DropEvent, Location, TraceResult
from netlab.tracers.procrun import Helper

NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_NAME = 2
_LINE = re.compile(r"^(\d+) drops? at (\S+?)(?:\+([0-9a-fx]+))? \((0x[0-9a-f]+)\)")
_LOCATION_LINE = re.compile(r"^(\d+) drops? at location (0x[0-9a-f]+)")


def genl_family_exists(name: str) -> bool:
    """Ask the generic-netlink controller whether family ``name`` is registered."""
    payload = name.encode() + b"\0"
    attr = struct.pack("HH", 4 + len(payload), CTRL_ATTR_FAMILY_NAME) + payload
    attr += b"\0" * (-len(attr) % 4)
    body = struct.pack("BBH", CTRL_CMD_GETFAMILY, 1, 0) + attr
    header = struct.pack("IHHII", 16 + len(body), GENL_ID_CTRL, 0x1 | 0x4, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_GENERIC) as sock:
        sock.settimeout(2)
        sock.send(header + body)
        data = sock.recv(65536)
    kind = struct.unpack_from("H", data, 4)[0]
    if kind == 2:  # NLMSG_ERROR: 0 is an ack, negative is "no such family"
        code: int = struct.unpack_from("i", data, 16)[0]
        return code == 0
    return True


def parse(text: str, when: float = 0.0) -> list[DropEvent]:
    """dropwatch output (``-l kas``): one DropEvent per counted drop."""
    drops: list[DropEvent] = []
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            offset = int(m.group(3), 16) if m.group(3) else 0
            location = Location(m.group(2), offset)
        else:
            m2 = _LOCATION_LINE.match(line.strip())
            if not m2:
                continue
            location = Location(m2.group(2))
            m = m2
        count = int(m.group(1))
        drops.extend(
            DropEvent(time=when, location=location, reason="UNKNOWN", node=None, device=None, tracer="dropwatch")
            for _ in range(count)
        )
    return drops


class DropwatchTracer(Tracer):
    """dropwatch -l kas."""

    name = "dropwatch"
    summary = "dropwatch (NET_DROP_MONITOR): machine-wide 'N drops at function+offset'"

    def probe(self) -> Probe:
        refusal = tool_refusal("dropwatch", "dropwatch")
        if refusal is not None:
            return refusal
        try:
            present = genl_family_exists("NET_DM")
        except OSError as exc:
            return Probe(False, f"cannot ask generic netlink for NET_DM: {exc.strerror}")
        if not present:
            return Probe(
                False,
                "the kernel has no NET_DM generic-netlink family (built without"
                " CONFIG_NET_DROP_MONITOR); dropwatch would say 'Unable to find NET_DM family'",
            )
        return Probe(True, "NET_DM family present")

    def start(self, lab: Lab, options: TraceOptions | None = None) -> Session:
        self.require()
        return DropwatchSession(lab)


class DropwatchSession(Session):
    """dropwatch running in the background."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.started = time.monotonic()
        self.helper = Helper(lab, ["dropwatch", "-l", "kas"], stdin=True)
        assert self.helper.proc.stdin is not None
        self.helper.proc.stdin.write("start\n")
        self.helper.proc.stdin.flush()
        deadline = time.monotonic() + 10
        while "monitoring activated" not in self.helper.stdout():
            if not self.helper.alive() or time.monotonic() > deadline:
                raise NetlabError(f"dropwatch did not start: {self.helper.stderr().strip()}")
            time.sleep(0.02)
        self._result: TraceResult | None = None

    def poll(self) -> list[DropEvent]:
        return []

    def stop(self) -> TraceResult:
        if self._result is None:
            self.helper.stop()
            out = self.helper.stdout()
            self.helper.cleanup()
            self._result = TraceResult(
                "dropwatch", self.lab.name, drops=parse(out), seconds=time.monotonic() - self.started
            )
            self._result.notes.append("dropwatch drops are machine-wide and not attributed to nodes")
        return self._result
