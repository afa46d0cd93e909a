"""Name rules, and the naming scheme that lets several labs share one kernel.

Interface names follow the kernel's ``dev_valid_name()``: 1 to 15 bytes (IFNAMSIZ is 16 with
the NUL), not ``.`` or ``..``, and none of ``/``, ``:`` or whitespace. We also refuse ``%``,
which the kernel treats as a template (``eth%d``) and would silently rename.

Lab and node names become part of the network namespace name, ``<lab>.<node>``, so that
``ip netns`` shows whose namespace it is and ``ip netns exec bridge3.ns-calm1 bash`` works as
in the seeds. Because ``.`` separates the two, neither may contain it; nor ``/`` (it would be a
path under /run/netns). Two labs, or two instances of one topology (``--instance``), differ in
their lab name, so their namespaces never collide; interface names live inside a namespace and
may repeat freely across labs.
"""

from __future__ import annotations

import re

IFNAMSIZ = 16
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
MAX_NAME = 48
NETNS_SEPARATOR = "."


def ifname_problem(name: str) -> str | None:
    """Why ``name`` cannot be a Linux interface name, or None when it can."""
    size = len(name.encode())
    if size == 0:
        return "an interface name cannot be empty"
    if size >= IFNAMSIZ:
        return f"interface name '{name}' is {size} bytes; the kernel allows at most {IFNAMSIZ - 1}"
    if name in (".", ".."):
        return f"'{name}' is not a valid interface name"
    for ch in name:
        if ch in "/:%" or ch.isspace():
            shown = repr(ch) if ch.isspace() else f"'{ch}'"
            return f"interface name '{name}' contains {shown}; the kernel forbids '/', ':', '%' and whitespace"
    return None


def label_problem(kind: str, name: str) -> str | None:
    """Why ``name`` cannot be a lab or node name (``kind`` says which), or None."""
    if not name:
        return f"{kind} name cannot be empty"
    if "/" in name or ".." in name:
        return f"{kind} name '{name}' contains '/' or '..'; it becomes part of a path under /run/netns"
    if len(name) > MAX_NAME:
        return f"{kind} name '{name}' is longer than {MAX_NAME} characters"
    if not _NAME_RE.match(name):
        return (
            f"{kind} name '{name}' may only use letters, digits, '-' and '_' and must start with a"
            " letter or digit (it becomes part of the namespace name <lab>.<node>)"
        )
    return None


def netns_name(lab: str, node: str) -> str:
    """The network namespace a lab's node lives in, as ``ip netns`` lists it."""
    return f"{lab}{NETNS_SEPARATOR}{node}"


def lab_name(topology: str, instance: str | None) -> str:
    """The lab name for a topology brought up as ``instance`` (None: the topology's own name)."""
    return f"{topology}-{instance}" if instance else topology


def ownership_alias(lab: str) -> str:
    """The ifalias of ``lo`` that marks a namespace as lab ``lab``'s: teardown and ``clean``
    remove only namespaces that carry it (and whose inode the journal recorded)."""
    return f"netlab:{lab}"


#: sysctl directories that have one entry per interface (plus ``all`` and ``default``)
INTERFACE_SYSCTL_DIRS = ("net.ipv4.conf.", "net.ipv6.conf.", "net.ipv4.neigh.", "net.ipv6.neigh.")


def sysctl_interface(key: str) -> tuple[str, str, str] | None:
    """(directory, interface, leaf) of a per-interface sysctl such as
    ``net.ipv4.conf.eth0.rp_filter``; None for any other key."""
    for prefix in INTERFACE_SYSCTL_DIRS:
        if key.startswith(prefix):
            ifname, _, leaf = key[len(prefix) :].partition(".")
            return prefix, ifname, leaf
    return None
