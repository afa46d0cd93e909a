"""A network namespace and the ways to act inside it: the node of a lab, or one of the
machine's namespaces when a trace runs over the whole host (:mod:`netlab.host`)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator, Sequence
from typing import Any

from netlab.apply.sysctl import read as read_sysctl
from netlab.errors import NetlabError
from netlab.runtime import netns
from netlab.status import LiveInterface, live_interfaces


class Namespace:
    """A network namespace called ``name``, entered by ``netns`` (a name under /run/netns or a path)."""

    def __init__(self, name: str, netns_name: str) -> None:
        self.name = name
        self.netns = netns_name

    def __repr__(self) -> str:
        return f"<Namespace {self.name} netns={self.netns}>"

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = False,
        timeout: float = 30.0,
        input: str | None = None,
        sysfs: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace and wait; output is captured as text."""
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            check=check,
            preexec_fn=netns.preexec(self.netns, sysfs=sysfs),
        )

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the namespace (a lab's ``down`` kills it if it still runs)."""
        return subprocess.Popen(list(argv), preexec_fn=netns.preexec(self.netns), **kwargs)  # noqa: PLW1509

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run the body with this thread inside the namespace (sockets, /proc/sys/net)."""
        with netns.entered(self.netns):
            yield

    def socket(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        """A socket living in the namespace."""
        return netns.open_socket(self.netns, family, kind, proto)

    def sysctl(self, key: str) -> str:
        """Read a net.* sysctl as the namespace sees it."""
        return read_sysctl(self.netns, key)

    def interfaces(self) -> list[LiveInterface]:
        """Its interfaces as the kernel has them now."""
        return live_interfaces(self.netns)

    def xdp(self, ifname: str, action: str | None) -> None:
        """Give interface ``ifname`` an XDP program (generic mode) that answers every frame with
        ``action`` ("drop", "pass", "aborted", or "redirect" to nowhere); None takes it off. No
        compiler is involved: the program is two instructions (:mod:`netlab.runtime.bpf`)."""
        from netlab.runtime import bpf  # lazy: pyroute2, which a cached up does without

        found = [i.index for i in self.interfaces() if i.name == ifname]
        if not found:
            raise NetlabError(f"{self.name} has no interface {ifname}")
        if action is None:
            bpf.no_xdp(self.netns, found[0])
        elif action not in bpf.XDP_ACTIONS:
            raise NetlabError(f"XDP action {action!r}: one of {', '.join(bpf.XDP_ACTIONS)}")
        else:
            bpf.xdp(self.netns, found[0], action)
